-- Followers, mentions and notifications (issue 16 §5). Staff follow tickets (by hand, by
-- being assigned, or by being mentioned in an internal note as Chatwoot writes mentions:
-- `mention://user/<uuid>`); a follower sees and works the ticket like the team's agents —
-- the tickets select and update policies gain one clause and stay the one rule
-- (can_see_ticket and the search read the select policy from the catalog) —, and gets a notification for every change on it made by someone else: each
-- timeline event and each new message. People see and mark only their own notifications,
-- which are in the realtime publication. Outbound events: `ticket.follower_added`,
-- `ticket.mentioned`.

-- ------------------------------------------------------------------ followers

create table public.ticket_followers (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  ticket_id uuid not null,
  user_id uuid not null,
  reason text not null default 'manual' check (reason in ('manual', 'assigned', 'mentioned')),
  added_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, ticket_id, user_id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade,
  -- A follower leaves with their membership.
  foreign key (tenant_id, user_id) references public.memberships (tenant_id, user_id) on delete cascade
);
create index ticket_followers_user_idx on public.ticket_followers (user_id, tenant_id);
create index ticket_followers_added_by_idx on public.ticket_followers (added_by);
select private.enable_audit('public.ticket_followers');

-- The tickets the caller follows, as tenant-qualified keys (as private.my_team_keys), in
-- the tenants where they are staff: followers are staff.
create function private.my_followed_ticket_keys() returns text[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_keys text[];
begin
  select coalesce(array_agg(f.tenant_id::text || '/' || f.ticket_id::text), '{}') into v_keys
  from public.ticket_followers f
  where f.user_id = private.current_user_id()
    and f.tenant_id = any (private.tenant_ids('agent'));
  return v_keys;
end;
$$;
revoke all on function private.my_followed_ticket_keys() from public, anon;
grant execute on function private.my_followed_ticket_keys() to authenticated, service_role;

-- The select policy of 20261126101000_tickets_rls.sql, plus: staff see the tickets they
-- follow (while not deleted). The uuid prefilter lets the planner test a cheap array
-- first; the tenant-qualified key is the check.
drop policy tickets_select on public.tickets;
create policy tickets_select on public.tickets for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and (
      (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) and created_by = (select private.current_user_id()))
      or (tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) and (
        assigned_to = (select private.current_user_id()) or created_by = (select private.current_user_id())
        or (team_id = any ((select array_agg(split_part(k, '/', 2)::uuid) from unnest(private.my_team_keys()) k)::uuid[])
            and (tenant_id::text || '/' || team_id::text) = any ((select private.my_team_keys())::text[]))
        or (id = any ((select array_agg(split_part(k, '/', 2)::uuid) from unnest(private.my_followed_ticket_keys()) k)::uuid[])
            and (tenant_id::text || '/' || id::text) = any ((select private.my_followed_ticket_keys())::text[]))))
    ))
  );

-- The update policy of 20261126101000_tickets_rls.sql, plus the same clause: staff who
-- see a ticket work it, as before (hand-off and merge check sight through
-- can_see_ticket), so a follower is one more way in, not a new kind of access.
drop policy tickets_update on public.tickets;
create policy tickets_update on public.tickets for update to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) and (
      assigned_to = (select private.current_user_id()) or created_by = (select private.current_user_id())
      or (team_id = any ((select array_agg(split_part(k, '/', 2)::uuid) from unnest(private.my_team_keys()) k)::uuid[])
            and (tenant_id::text || '/' || team_id::text) = any ((select private.my_team_keys())::text[]))
      or (id = any ((select array_agg(split_part(k, '/', 2)::uuid) from unnest(private.my_followed_ticket_keys()) k)::uuid[])
            and (tenant_id::text || '/' || id::text) = any ((select private.my_followed_ticket_keys())::text[]))))
  )
  with check (
    tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );

-- Who may follow, checked whichever path adds the row: a staff member (agent or admin)
-- of the ticket's tenant, and someone the adder may put there — themselves, or anyone if
-- the adder is staff who sees the ticket (the insert policy). Triggers (assignment,
-- mentions) add as definer and pass the same staff check.
create function private.ticket_followers_check() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from public.memberships m
                 where m.tenant_id = new.tenant_id and m.user_id = new.user_id and m.role in ('agent', 'admin')) then
    raise exception 'Only staff of the tenant can follow a ticket' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_staff', 'details', jsonb_build_object('user_id', new.user_id));
  end if;
  if new.added_by is null then
    new.added_by := private.current_user_id();
  end if;
  return new;
end;
$$;
revoke all on function private.ticket_followers_check() from public, anon, authenticated;
create trigger ticket_followers_check before insert on public.ticket_followers
  for each row execute function private.ticket_followers_check();

alter table public.ticket_followers enable row level security;
revoke all on public.ticket_followers from anon, authenticated;
grant select, insert (tenant_id, ticket_id, user_id), delete on public.ticket_followers to authenticated;

-- Staff who see the ticket see its followers (customers do not: who watches is internal).
create policy ticket_followers_select on public.ticket_followers for select to authenticated
  using (
    (tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) or (select private.is_platform_admin()))
    and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id)
  );
-- Staff who see the ticket add followers (themselves or a colleague) in a writable tenant.
create policy ticket_followers_insert on public.ticket_followers for insert to authenticated
  with check (
    (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) or (select private.is_platform_admin()))
    and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id)
  );
-- Anyone stops following; staff who see the ticket remove others; admins anyone — all in
-- a writable tenant.
create policy ticket_followers_delete on public.ticket_followers for delete to authenticated
  using (
    (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
    or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (tenant_id = any ((select private.tenant_ids('agent', true))::uuid[])
        and exists (select 1 from public.tickets t where t.tenant_id = ticket_followers.tenant_id and t.id = ticket_followers.ticket_id))
  );

-- ------------------------------------------------------------------ notifications

create table public.notifications (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  user_id uuid not null,
  ticket_id uuid,
  -- A timeline event type (status_changed, assigned, sla_breached…), message.created,
  -- note.created, mentioned or follower_added.
  type text not null check (char_length(type) between 1 and 50),
  actor_user_id uuid references public.users (id) on delete set null,
  data jsonb not null default '{}'::jsonb,
  read_at timestamptz,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  foreign key (tenant_id, user_id) references public.memberships (tenant_id, user_id) on delete cascade,
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
-- A person's feed, newest first, and their unread count.
create index notifications_feed_idx on public.notifications (user_id, tenant_id, created_at desc, id desc);
create index notifications_unread_idx on public.notifications (user_id, tenant_id) where read_at is null;
create index notifications_ticket_idx on public.notifications (tenant_id, ticket_id);
create index notifications_actor_idx on public.notifications (actor_user_id);
create trigger set_updated_at before update on public.notifications
  for each row execute function private.set_updated_at();

alter table public.notifications enable row level security;
revoke all on public.notifications from anon, authenticated;
grant select, update (read_at), delete on public.notifications to authenticated;
-- Each person their own rows, in their own tenants; nobody else's — not even admins'.
-- Marking and deleting them is a write: not in a suspended (read-only) tenant.
create policy notifications_select on public.notifications for select to authenticated
  using (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user'))::uuid[]));
create policy notifications_update on public.notifications for update to authenticated
  using (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
  with check (user_id = (select private.current_user_id()));
create policy notifications_delete on public.notifications for delete to authenticated
  using (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]));
select private.enable_audit('public.notifications');
alter publication supabase_realtime add table public.notifications;

-- One notification per follower of the ticket but the actor.
create function private.notify_followers(p_tenant_id uuid, p_ticket_id uuid, p_type text, p_actor uuid, p_data jsonb)
returns void
language sql volatile security definer
set search_path = ''
as $$
  insert into public.notifications (tenant_id, user_id, ticket_id, type, actor_user_id, data)
  select f.tenant_id, f.user_id, f.ticket_id, p_type, p_actor, p_data
  from public.ticket_followers f
  where f.tenant_id = p_tenant_id and f.ticket_id = p_ticket_id and f.user_id is distinct from p_actor;
$$;
revoke all on function private.notify_followers(uuid, uuid, text, uuid, jsonb) from public, anon, authenticated;

-- Every timeline event notifies the ticket's followers.
create function private.ticket_events_notify() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.notify_followers(new.tenant_id, new.ticket_id, new.type, new.actor_user_id, new.data);
  return null;
end;
$$;
revoke all on function private.ticket_events_notify() from public, anon, authenticated;
create trigger ticket_events_notify after insert on public.ticket_events
  for each row execute function private.ticket_events_notify();

-- Every new message notifies the followers; mentions in an internal note make the
-- mentioned staff followers, with their own `mentioned` notification and event.
create function private.ticket_messages_followers() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_mentioned uuid;
  v_number bigint;
begin
  perform private.notify_followers(new.tenant_id, new.ticket_id,
    case new.type when 'note' then 'note.created' when 'system' then 'system.created' else 'message.created' end,
    new.author_id, jsonb_build_object('message_id', new.id));
  if new.type <> 'note' then
    return null;
  end if;
  for v_mentioned in
    select distinct m[1]::uuid from pg_catalog.regexp_matches(new.content,
      'mention://user/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})', 'g') m
  loop
    -- Only staff of this tenant can be mentioned; anyone else is text.
    continue when v_mentioned = new.author_id or not exists (
      select 1 from public.memberships ms
      where ms.tenant_id = new.tenant_id and ms.user_id = v_mentioned and ms.role in ('agent', 'admin'));
    insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
    values (new.tenant_id, new.ticket_id, v_mentioned, 'mentioned', new.author_id)
    on conflict (tenant_id, ticket_id, user_id) do nothing;
    insert into public.notifications (tenant_id, user_id, ticket_id, type, actor_user_id, data)
    values (new.tenant_id, v_mentioned, new.ticket_id, 'mentioned', new.author_id, jsonb_build_object('message_id', new.id));
    select t.number into v_number from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id;
    perform private.emit_webhook_event(new.tenant_id, 'ticket.mentioned', 'ticket:' || new.ticket_id,
      jsonb_build_object('type', 'ticket.mentioned', 'tenant_id', new.tenant_id,
        'data', jsonb_build_object('ticket_id', new.ticket_id, 'number', v_number, 'message_id', new.id,
                                   'user_id', v_mentioned, 'by', new.author_id),
        'occurred_at', private.api_timestamp(clock_timestamp())));
  end loop;
  return null;
end;
$$;
revoke all on function private.ticket_messages_followers() from public, anon, authenticated;
create trigger ticket_messages_followers after insert on public.ticket_messages
  for each row execute function private.ticket_messages_followers();

-- A new follower added by someone else hears about it (the assigned and the mentioned
-- hear of the assignment or the mention itself); every new follower is announced as
-- `ticket.follower_added`.
create function private.ticket_followers_added() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_number bigint;
begin
  if new.added_by is distinct from new.user_id and new.reason = 'manual' then
    insert into public.notifications (tenant_id, user_id, ticket_id, type, actor_user_id, data)
    values (new.tenant_id, new.user_id, new.ticket_id, 'follower_added', new.added_by, jsonb_build_object('reason', new.reason));
  end if;
  select t.number into v_number from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id;
  perform private.emit_webhook_event(new.tenant_id, 'ticket.follower_added', 'ticket:' || new.ticket_id,
    jsonb_build_object('type', 'ticket.follower_added', 'tenant_id', new.tenant_id,
      'data', jsonb_build_object('ticket_id', new.ticket_id, 'number', v_number, 'user_id', new.user_id,
                                 'reason', new.reason, 'by', new.added_by),
      'occurred_at', private.api_timestamp(clock_timestamp())));
  return null;
end;
$$;
revoke all on function private.ticket_followers_added() from public, anon, authenticated;
create trigger ticket_followers_added after insert on public.ticket_followers
  for each row execute function private.ticket_followers_added();

-- The assignee follows the ticket while they have it: an assignment that made them a
-- follower ends with it (a follow of their own, or by a mention, stays), so an agent off
-- the team still loses sight of a ticket taken from them.
create function private.tickets_assignee_follows() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'UPDATE' and old.assigned_to is not null then
    delete from public.ticket_followers f
    where f.tenant_id = old.tenant_id and f.ticket_id = old.id and f.user_id = old.assigned_to and f.reason = 'assigned';
  end if;
  if new.assigned_to is not null then
    insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
    values (new.tenant_id, new.id, new.assigned_to, 'assigned', private.current_user_id())
    on conflict (tenant_id, ticket_id, user_id) do nothing;
  end if;
  return null;
end;
$$;
revoke all on function private.tickets_assignee_follows() from public, anon, authenticated;
-- Named to fire before ticket_events_from_change, so the assignee hears of the assignment.
create trigger ticket_assignee_follows after insert on public.tickets
  for each row when (new.assigned_to is not null) execute function private.tickets_assignee_follows();
create trigger ticket_assignee_follows_change after update of assigned_to on public.tickets
  for each row when (new.assigned_to is distinct from old.assigned_to) execute function private.tickets_assignee_follows();
