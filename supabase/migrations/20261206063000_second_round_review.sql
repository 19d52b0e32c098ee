-- After review of this day's second round (20261206050000 to 20261206062000).
--
-- 1. A call's first ticket is also one no other call is linked to: staff may edit a
--    ticket's metadata, so metadata.voice_call_id alone let two calls share a ticket.
-- 2. A tenant is deleted outright also past a service that failed before making
--    anything (a partner not configured on this deployment: its removal can never run).
-- 3. Only services the plan paused are resumed when the plan has their feature again;
--    an admin may set a service suspended through PostgREST, and it stays so. The plan's
--    pauses are marked (private.services_paused_by_plan).
-- 4. A rotated secret's overlap ends when it is set to null or the past, and is never
--    lengthened on the direct path (past the API's week, or past what the rotation gave);
--    setting it null was a check violation.
-- 5. Followers a merge copies are staff's follows added by the merger (the notification
--    named the person who had added them to the other ticket); customers' stay theirs.

create table private.services_paused_by_plan (
  tenant_id uuid not null,
  service text not null,
  paused_at timestamptz not null default now(),
  primary key (tenant_id, service),
  foreign key (tenant_id, service) references public.tenant_services (tenant_id, service) on delete cascade
);
revoke all on private.services_paused_by_plan from public, anon, authenticated;
-- Those the plan paused already (20261206061000).
insert into private.services_paused_by_plan (tenant_id, service)
select s.tenant_id, s.service from public.tenant_services s join public.tenants t on t.id = s.tenant_id
where s.desired_state = 'suspended' and t.status = 'active' and not private.tenant_has_feature(s.tenant_id, s.service);

-- Redefined (20261206057000_call_links_both_ways.sql): 1.
create or replace function private.voice_call_ticket_once() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- Linked both ways: a call's first ticket is one opened from it (the ticket names the
  -- call in metadata.voice_call_id, as POST /voice/calls/{id}/ticket writes it).
  -- (Staff may edit a ticket's metadata: a ticket another call is linked to already is
  -- that call's, whatever its metadata now says.)
  if old.ticket_id is null and new.ticket_id is not null
    and (not exists (select 1 from public.tickets t
                     where t.tenant_id = new.tenant_id and t.id = new.ticket_id
                       and t.metadata ->> 'voice_call_id' = new.id::text)
         or exists (select 1 from public.voice_calls c
                    where c.tenant_id = new.tenant_id and c.ticket_id = new.ticket_id and c.id <> new.id)) then
    raise exception 'A call is linked only to the ticket opened from it' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_opened_from_call', 'details', jsonb_build_object('ticket_id', new.ticket_id))::text;
  end if;
  if old.ticket_id is not null and new.ticket_id is distinct from old.ticket_id
    and not exists (select 1 from public.tickets t
                    where t.tenant_id = old.tenant_id and t.id = old.ticket_id and t.merged_into_id = new.ticket_id)
    and not (new.ticket_id is null
             and not exists (select 1 from public.tickets t where t.tenant_id = old.tenant_id and t.id = old.ticket_id)) then
    raise exception 'This call already has a ticket' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'already_linked', 'details', jsonb_build_object('ticket_id', old.ticket_id))::text;
  end if;
  return new;
end;
$$;

-- Redefined (20261206055000_tenants_purged_after_their_services.sql): 2.
create or replace function private.tenant_delete_after_services() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_left text[];
begin
  select array_agg(s.service order by s.service) into v_left
  from public.tenant_services s
  where s.tenant_id = old.id and s.state <> 'removed'
    and not (s.state in ('pending', 'failed') and s.external_ids = '{}'::jsonb and s.credentials_encrypted is null);
  if v_left is not null then
    raise exception 'The tenant''s partner services are not removed yet (%): set the tenant deleted, and delete it once they are',
      array_to_string(v_left, ', ')
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'services_not_removed', 'details', jsonb_build_object('services', to_jsonb(v_left)));
  end if;
  return old;
end;
$$;

-- Redefined (20261206061000_services_follow_the_plan.sql): 3.
create or replace function private.services_follow_the_plan(p_tenant_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  with paused as (
    update public.tenant_services s set desired_state = 'suspended'
    where s.tenant_id = p_tenant_id and s.desired_state = 'active' and not private.tenant_has_feature(p_tenant_id, s.service)
    returning s.tenant_id, s.service
  )
  insert into private.services_paused_by_plan (tenant_id, service)
  select p.tenant_id, p.service from paused p
  on conflict do nothing;
  -- A mark outlives nothing: a service removed or enabled since is not the plan's to resume.
  delete from private.services_paused_by_plan m
  where m.tenant_id = p_tenant_id and not exists (
    select 1 from public.tenant_services s
    where s.tenant_id = m.tenant_id and s.service = m.service and s.desired_state = 'suspended');
  with resumed as (
    update public.tenant_services s set desired_state = 'active'
    where s.tenant_id = p_tenant_id and s.desired_state = 'suspended' and private.tenant_has_feature(p_tenant_id, s.service)
      and exists (select 1 from public.tenants t where t.id = p_tenant_id and t.status = 'active')
      and exists (select 1 from private.services_paused_by_plan m where m.tenant_id = s.tenant_id and m.service = s.service)
    returning s.tenant_id, s.service
  )
  delete from private.services_paused_by_plan m using resumed r
  where m.tenant_id = r.tenant_id and m.service = r.service;
end;
$$;

-- Redefined (20261206062000_webhook_secret_rotation.sql): 4.
create or replace function private.webhook_endpoint_secret_rotated() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.secret_encrypted is distinct from old.secret_encrypted and old.secret_encrypted <> '' then
    new.secret_rotated_at := now();
    if new.previous_secret_expires_at > now() then
      new.previous_secret_encrypted := old.secret_encrypted;
      -- As the API allows at most: a week.
      new.previous_secret_expires_at := least(new.previous_secret_expires_at, now() + interval '168 hours');
    else
      new.previous_secret_encrypted := null;
      new.previous_secret_expires_at := null;
    end if;
  elsif new.previous_secret_expires_at is distinct from old.previous_secret_expires_at then
    if new.previous_secret_expires_at is null or new.previous_secret_expires_at <= now()
       or old.previous_secret_encrypted is null then
      -- The overlap ended now (or there is no previous secret to sign with).
      new.previous_secret_encrypted := null;
      new.previous_secret_expires_at := null;
    else
      -- Shortened only: a leaked secret is not given more time than its rotation did.
      new.previous_secret_expires_at := least(new.previous_secret_expires_at, old.previous_secret_expires_at);
    end if;
  end if;
  return new;
end;
$$;

-- Redefined (20261206058000_merged_ticket_followers_move.sql): 5.
create or replace function private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_source public.tickets;
  v_target public.tickets;
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin() then
    raise exception 'only staff merge tickets' using errcode = 'PT403';
  end if;
  if not private.can_see_ticket(p_tenant_id, p_source_id) or not private.can_see_ticket(p_tenant_id, p_target_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  if p_source_id = p_target_id then
    raise exception 'a ticket cannot be merged into itself' using errcode = 'PT409';
  end if;
  perform 1 from public.tickets t where t.tenant_id = p_tenant_id and t.id in (p_source_id, p_target_id)
  order by t.id for no key update;
  select * into v_source from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_source_id;
  select * into v_target from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_target_id;
  if v_source.merged_into_id is not null or v_target.merged_into_id is not null
     or v_source.deleted_at is not null or v_target.deleted_at is not null then
    raise exception 'merged or deleted tickets cannot be merged' using errcode = 'PT409';
  end if;
  if v_target.status = 'closed' then
    raise exception 'reopen the target ticket before merging into it' using errcode = 'PT409';
  end if;
  -- The conversation moves to the target, whose requester reads it: only one person's
  -- tickets are merged.
  if v_source.created_by is distinct from v_target.created_by then
    raise exception 'tickets of different requesters cannot be merged' using errcode = 'PT409';
  end if;
  perform 1 from public.ticket_messages m where m.tenant_id = p_tenant_id and m.ticket_id = p_source_id
  order by m.id for no key update;
  perform 1 from public.attachments a where a.tenant_id = p_tenant_id and a.ticket_id = p_source_id
  order by a.id for no key update;
  update public.ticket_messages set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  update public.attachments set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  -- Its followers follow the target: a colleague who wrote in the source reads their
  -- messages there, and staff who followed it hear of it. An assignment's follow is a
  -- plain one there (the target has its own assignee); customers follow only where the
  -- tenant still lets them. Copied as they were added (who added them stays theirs).
  insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
  -- Staff's follows are the merger's doing on the target (the notification names who
  -- did it); a customer's stay the adder's, whose to see and remove they are.
  select f.tenant_id, p_target_id, f.user_id, case when f.reason = 'assigned' then 'manual' else f.reason end,
         case when m.role = 'user' then f.added_by else private.current_user_id() end
  from public.ticket_followers f
  join public.memberships m on m.tenant_id = f.tenant_id and m.user_id = f.user_id
  where f.tenant_id = p_tenant_id and f.ticket_id = p_source_id
    and (m.role in ('agent', 'admin')
         or (f.reason = 'manual' and exists (select 1 from public.tenants t
                                             where t.id = p_tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb)))
  order by f.user_id
  on conflict (tenant_id, ticket_id, user_id) do nothing;
  update public.tickets set status = 'closed', merged_into_id = p_target_id
  where tenant_id = p_tenant_id and id = p_source_id;
  insert into public.ticket_messages (tenant_id, ticket_id, type, content) values
    (p_tenant_id, p_target_id, 'system', format('Ticket #%s was merged into this ticket.', v_source.number)),
    (p_tenant_id, p_source_id, 'system', format('Merged into ticket #%s.', v_target.number));
end;
$$;
