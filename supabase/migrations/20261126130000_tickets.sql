-- Support tickets: tickets, their messages and internal notes, attachments, SLA
-- policies and the ticket timeline. Integrity rules live here (status machine,
-- assignee role, per-tenant gap-free numbers, SLA due dates, first response); the
-- tickets function shapes the API around them.

-- ------------------------------------------------------------------ prerequisites

-- Automatic assignment, configured per team; agents can be marked unavailable.
alter table public.teams
  add column auto_assign text not null default 'none' check (auto_assign in ('none', 'round_robin', 'least_open')),
  add column last_assigned_user_id uuid;
grant insert (auto_assign), update (auto_assign) on public.teams to authenticated;
alter table public.memberships add column available boolean not null default true;
grant update (available) on public.memberships to authenticated;

-- Gap-free ticket numbers per tenant: the counter row is locked by the inserting
-- transaction, so concurrent creates queue on it and a rolled-back create gives its
-- number back. Private: nothing but the trigger touches it.
create table private.ticket_counters (
  tenant_id uuid primary key references public.tenants (id) on delete cascade,
  last_number bigint not null default 0
);

-- The status machine, as data: every allowed (from, to). Everything else is refused.
create table private.ticket_status_transitions (
  from_status text not null,
  to_status text not null,
  primary key (from_status, to_status)
);
insert into private.ticket_status_transitions (from_status, to_status) values
  ('open', 'pending'), ('open', 'escalated'), ('open', 'resolved'),
  ('pending', 'open'), ('pending', 'escalated'), ('pending', 'resolved'),
  ('escalated', 'open'), ('escalated', 'pending'), ('escalated', 'resolved'),
  ('resolved', 'closed'), ('resolved', 'open'),
  ('closed', 'open'); -- reopening a closed ticket: only within the tenant's window

-- Where a ticket may go from a status, for the API's 409 details.
create function private.allowed_ticket_transitions(p_from text) returns text[]
language sql stable security definer
set search_path = ''
as $$
  select coalesce(array_agg(to_status order by to_status), '{}')
  from private.ticket_status_transitions where from_status = p_from
$$;
revoke all on function private.allowed_ticket_transitions(text) from public, anon;
grant execute on function private.allowed_ticket_transitions(text) to authenticated, service_role;

-- ------------------------------------------------------------------ tables

-- array_to_string is only marked stable (it could format other element types by the
-- session's settings); for text[] it is immutable, which the search column needs.
create function private.tags_text(p_tags text[]) returns text
language sql immutable parallel safe
set search_path = ''
as $$ select array_to_string(p_tags, ' ') $$;

create table public.sla_policies (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  priority text not null check (priority in ('low', 'medium', 'high', 'urgent')),
  first_response_minutes int not null check (first_response_minutes between 1 and 525600),
  resolution_minutes int not null check (resolution_minutes between 1 and 525600),
  -- Optional business hours the targets are counted in (see 20261126130400).
  business_hours jsonb check (business_hours is null or jsonb_typeof(business_hours) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (tenant_id, priority),
  check (resolution_minutes >= first_response_minutes)
);

create table public.tickets (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  number bigint not null,
  title text not null check (char_length(title) between 5 and 200),
  description text check (char_length(description) <= 5000),
  status text not null default 'open' check (status in ('open', 'pending', 'escalated', 'resolved', 'closed')),
  priority text not null default 'medium' check (priority in ('low', 'medium', 'high', 'urgent')),
  department text not null default 'support' check (department in ('sales', 'support', 'marketing', 'technical')),
  team_id uuid,
  created_by uuid references public.users (id) on delete set null,
  assigned_to uuid,
  due_date timestamptz,
  first_response_due_at timestamptz,
  first_response_at timestamptz,
  resolved_at timestamptz,
  closed_at timestamptz,
  sla_first_response_breached_at timestamptz,
  sla_resolution_breached_at timestamptz,
  tags text[] not null default '{}' check (cardinality(tags) <= 20),
  metadata jsonb not null default '{}'::jsonb
    check (jsonb_typeof(metadata) = 'object' and octet_length(metadata::text) <= 16384),
  merged_into_id uuid,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  deleted_at timestamptz,
  search tsvector generated always as (
    setweight(to_tsvector('english', coalesce(title, '')), 'A')
    || setweight(to_tsvector('english', coalesce(description, '')), 'B')
    || setweight(to_tsvector('english', private.tags_text(tags)), 'C')
  ) stored,
  primary key (tenant_id, id),
  unique (tenant_id, number),
  foreign key (tenant_id, team_id) references public.teams (tenant_id, id) on delete set null (team_id),
  -- The assignee is a member of this tenant (the trigger checks the role); losing the
  -- membership unassigns.
  foreign key (tenant_id, assigned_to) references public.memberships (tenant_id, user_id) on delete set null (assigned_to),
  foreign key (tenant_id, merged_into_id) references public.tickets (tenant_id, id),
  check (merged_into_id is null or merged_into_id <> id),
  check (merged_into_id is null or status = 'closed')
);
create index tickets_tenant_created_idx on public.tickets (tenant_id, created_at desc, id desc);
create index tickets_tenant_updated_idx on public.tickets (tenant_id, updated_at desc, id desc);
create index tickets_tenant_status_idx on public.tickets (tenant_id, status, priority);
create index tickets_assignee_idx on public.tickets (tenant_id, assigned_to, status);
create index tickets_team_idx on public.tickets (tenant_id, team_id, status);
create index tickets_requester_idx on public.tickets (tenant_id, created_by);
create index tickets_created_by_idx on public.tickets (created_by);
create index tickets_merged_into_idx on public.tickets (tenant_id, merged_into_id) where merged_into_id is not null;
create index tickets_search_idx on public.tickets using gin (search);
create index tickets_tags_idx on public.tickets using gin (tags);
-- The SLA sweep's work lists: only tickets still waiting can breach.
create index tickets_first_response_due_idx on public.tickets (first_response_due_at)
  where first_response_at is null and sla_first_response_breached_at is null and deleted_at is null;
create index tickets_resolution_due_idx on public.tickets (due_date)
  where resolved_at is null and sla_resolution_breached_at is null and deleted_at is null;

create table public.ticket_messages (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  ticket_id uuid not null,
  author_id uuid references public.users (id) on delete set null,
  type text not null default 'message' check (type in ('message', 'note', 'system')),
  content text not null check (char_length(content) between 1 and 10000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  edited_at timestamptz,
  primary key (tenant_id, id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
create index ticket_messages_ticket_idx on public.ticket_messages (tenant_id, ticket_id, created_at);
create index ticket_messages_author_idx on public.ticket_messages (author_id);

create table public.attachments (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  ticket_id uuid not null,
  -- On a message of the ticket, or (null) on the ticket itself: exactly one parent.
  message_id uuid,
  file_name text not null
    check (char_length(file_name) between 1 and 255 and file_name !~ '[/\\[:cntrl:]]' and file_name not in ('.', '..')),
  content_type text not null default 'application/octet-stream' check (char_length(content_type) <= 255),
  size_bytes bigint not null check (size_bytes between 1 and 52428800),
  -- Both set by the database (set_attachment_location), never by a caller.
  bucket text not null default 'attachments',
  path text not null,
  status text not null default 'pending' check (status in ('pending', 'uploaded')),
  uploaded_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (bucket, path),
  -- Every object lives at <tenant>/<ticket>/<attachment>/<file name>: under its tenant's
  -- prefix, so storage policies can key on it, and with no room for ".." segments.
  check (path ~ ('^' || tenant_id::text || '/[0-9a-f-]{36}/[0-9a-f-]{36}/[^/]+$')),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade,
  foreign key (tenant_id, message_id) references public.ticket_messages (tenant_id, id) on delete cascade
);
create index attachments_ticket_idx on public.attachments (tenant_id, ticket_id);
create index attachments_message_idx on public.attachments (tenant_id, message_id) where message_id is not null;
create index attachments_uploaded_by_idx on public.attachments (uploaded_by);

create table public.ticket_events (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id bigint generated always as identity,
  ticket_id uuid not null,
  type text not null check (type in (
    'created', 'status_changed', 'assigned', 'unassigned', 'priority_changed', 'team_changed',
    'sla_breached', 'merged', 'merged_into', 'deleted', 'restored')),
  data jsonb not null default '{}'::jsonb,
  actor_user_id uuid references public.users (id) on delete set null,
  created_at timestamptz not null default clock_timestamp(),
  primary key (tenant_id, id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
create index ticket_events_ticket_idx on public.ticket_events (tenant_id, ticket_id, id);
create index ticket_events_actor_idx on public.ticket_events (actor_user_id);

-- ------------------------------------------------------------------ access helpers

-- Teams the caller belongs to (in the active tenant, or all of theirs).
create function private.my_team_ids() returns uuid[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_ids uuid[];
begin
  select coalesce(array_agg(tm.team_id), '{}') into v_ids
  from public.team_members tm
  where tm.user_id = private.current_user_id()
    and tm.tenant_id = any (private.tenant_ids('agent'));
  return v_ids;
end;
$$;

-- The caller's role in a tenant ('user', 'agent', 'admin'), 'super_admin' for platform
-- admins, null for outsiders.
create function private.role_in(p_tenant_id uuid) returns text
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_role text;
begin
  if private.is_platform_admin() then
    return 'super_admin';
  end if;
  select m.role into v_role from public.memberships m
  where m.tenant_id = p_tenant_id and m.user_id = private.current_user_id()
    and m.tenant_id = any (private.tenant_ids('user'));
  return v_role;
end;
$$;

-- The tickets RLS predicate, for the few security definer paths (merge) that must
-- check a ticket against the caller explicitly. Kept equal to tickets_select by a test.
create function private.can_see_ticket(p_tenant_id uuid, p_ticket_id uuid) returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_role text := private.role_in(p_tenant_id);
begin
  return exists (
    select 1 from public.tickets t
    where t.tenant_id = p_tenant_id and t.id = p_ticket_id
      and (
        v_role in ('admin', 'super_admin')
        or (t.deleted_at is null and v_role = 'agent'
            and (t.assigned_to = v_me or t.created_by = v_me or t.team_id = any (private.my_team_ids())))
        or (t.deleted_at is null and v_role = 'user' and t.created_by = v_me)
      )
  );
end;
$$;

revoke all on function private.my_team_ids(), private.role_in(uuid), private.can_see_ticket(uuid, uuid) from public, anon;
grant execute on function private.my_team_ids(), private.role_in(uuid), private.can_see_ticket(uuid, uuid)
  to authenticated, service_role;

-- ------------------------------------------------------------------ ticket triggers

-- The assignee must be an agent or admin of the ticket's tenant (the composite foreign
-- key already keeps them in the tenant).
create function private.check_ticket_assignee(p_tenant_id uuid, p_user_id uuid) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_user_id is not null and not exists (
    select 1 from public.memberships m
    where m.tenant_id = p_tenant_id and m.user_id = p_user_id and m.role in ('agent', 'admin')
  ) then
    raise exception 'the assignee must be an agent or admin of this tenant'
      using errcode = '23514', constraint = 'tickets_assignee_role_check', column = 'assigned_to';
  end if;
end;
$$;

-- Due dates from the tenant's SLA policy for the priority, counted from creation.
create function private.apply_sla(p_ticket public.tickets) returns public.tickets
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_policy public.sla_policies;
begin
  select * into v_policy from public.sla_policies s
  where s.tenant_id = p_ticket.tenant_id and s.priority = p_ticket.priority;
  if v_policy.id is null then
    return p_ticket;
  end if;
  p_ticket.first_response_due_at := p_ticket.created_at + make_interval(mins => v_policy.first_response_minutes);
  p_ticket.due_date := p_ticket.created_at + make_interval(mins => v_policy.resolution_minutes);
  return p_ticket;
end;
$$;

-- Automatic assignment inside the creating transaction. The team row is locked, so
-- concurrent creates in one team take turns and never pick the same slot twice.
create function private.auto_assignee(p_tenant_id uuid, p_team_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_team public.teams;
  v_pick uuid;
begin
  select * into v_team from public.teams t where t.tenant_id = p_tenant_id and t.id = p_team_id for update;
  if v_team.id is null or v_team.auto_assign = 'none' then
    return null;
  end if;
  if v_team.auto_assign = 'round_robin' then
    -- The next available agent after the last one picked, in a stable order.
    select tm.user_id into v_pick
    from public.team_members tm
    join public.memberships m on m.tenant_id = tm.tenant_id and m.user_id = tm.user_id
    where tm.tenant_id = p_tenant_id and tm.team_id = p_team_id
      and m.role in ('agent', 'admin') and m.available
    order by (tm.user_id <= coalesce(v_team.last_assigned_user_id, '00000000-0000-0000-0000-000000000000')), tm.user_id
    limit 1;
  else
    select tm.user_id into v_pick
    from public.team_members tm
    join public.memberships m on m.tenant_id = tm.tenant_id and m.user_id = tm.user_id
    where tm.tenant_id = p_tenant_id and tm.team_id = p_team_id
      and m.role in ('agent', 'admin') and m.available
    order by (
      select count(*) from public.tickets t
      where t.tenant_id = p_tenant_id and t.assigned_to = tm.user_id
        and t.status in ('open', 'pending', 'escalated') and t.deleted_at is null
    ), tm.user_id
    limit 1;
  end if;
  if v_pick is not null then
    update public.teams set last_assigned_user_id = v_pick where tenant_id = p_tenant_id and id = p_team_id;
  end if;
  return v_pick;
end;
$$;

create function private.next_ticket_number(p_tenant_id uuid) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_number bigint;
begin
  insert into private.ticket_counters as c (tenant_id, last_number) values (p_tenant_id, 1)
  on conflict (tenant_id) do update set last_number = c.last_number + 1
  returning c.last_number into v_number;
  return v_number;
end;
$$;

create function private.is_member(p_tenant_id uuid, p_user_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.memberships m where m.tenant_id = p_tenant_id and m.user_id = p_user_id)
$$;

-- Runs as the invoker (not security definer), so current_user tells an API request
-- (authenticated) from a trusted path; the privileged steps are definer helpers.
create function private.tickets_before_insert() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_role text;
begin
  -- Requests from the API: the caller is the requester unless staff file it for a member;
  -- customers cannot route or assign their own tickets.
  if current_user = 'authenticated' then
    v_role := private.role_in(new.tenant_id);
    if v_role is null then
      raise exception 'not a member of this tenant' using errcode = '42501';
    end if;
    if new.created_by is null or v_role = 'user' then
      new.created_by := private.current_user_id();
    end if;
    if v_role = 'user' and (new.assigned_to is not null or new.team_id is not null) then
      raise exception 'customers cannot assign or route tickets' using errcode = 'PT403';
    end if;
    if v_role = 'user' then
      new.due_date := null; -- the SLA policy decides a customer's due date
    end if;
  end if;
  -- The requester is a member of the tenant (platform admins may file anywhere).
  if new.created_by is not null and not private.is_member(new.tenant_id, new.created_by)
     and not exists (select 1 from public.platform_admins p where p.user_id = new.created_by) then
    raise exception 'the requester must be a member of this tenant'
      using errcode = '23503', constraint = 'tickets_tenant_id_created_by_fkey';
  end if;
  if new.status <> 'open' or new.merged_into_id is not null or new.first_response_at is not null
     or new.resolved_at is not null or new.closed_at is not null
     or new.sla_first_response_breached_at is not null or new.sla_resolution_breached_at is not null then
    raise exception 'a new ticket starts open, with no history' using errcode = '23514', constraint = 'tickets_new_state_check';
  end if;

  new.number := private.next_ticket_number(new.tenant_id);

  if new.assigned_to is null and new.team_id is not null then
    new.assigned_to := private.auto_assignee(new.tenant_id, new.team_id);
  end if;
  perform private.check_ticket_assignee(new.tenant_id, new.assigned_to);
  if new.due_date is null then
    new := private.apply_sla(new);
  else
    new.first_response_due_at := (private.apply_sla(new)).first_response_due_at;
  end if;
  return new;
end;
$$;
create trigger tickets_before_insert before insert on public.tickets
  for each row execute function private.tickets_before_insert();

create function private.tickets_before_update() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_window_days numeric;
begin
  if new.status is distinct from old.status then
    if new.merged_into_id is not null and old.merged_into_id is null then
      null; -- merging closes the ticket whatever its state
    elsif not exists (
      select 1 from private.ticket_status_transitions s where s.from_status = old.status and s.to_status = new.status
    ) then
      raise exception 'a ticket cannot go from % to %', old.status, new.status using errcode = 'PT409';
    elsif old.status = 'closed' then
      select case when t.settings ->> 'reopen_window_days' ~ '^\d{1,4}(\.\d+)?$'
                  then (t.settings ->> 'reopen_window_days')::numeric else 7 end into v_window_days
      from public.tenants t where t.id = new.tenant_id;
      if old.closed_at + make_interval(secs => v_window_days * 86400) < now() then
        raise exception 'the ticket was closed more than % days ago and cannot be reopened', v_window_days
          using errcode = 'PT409';
      end if;
    end if;
    case new.status
      when 'resolved' then new.resolved_at := now();
      when 'closed' then new.closed_at := now(); new.resolved_at := coalesce(new.resolved_at, now());
      when 'open' then
        if old.status in ('resolved', 'closed') then
          new.resolved_at := null;
          new.closed_at := null;
        end if;
      else null;
    end case;
  end if;
  if new.assigned_to is distinct from old.assigned_to then
    perform private.check_ticket_assignee(new.tenant_id, new.assigned_to);
  end if;
  if new.priority is distinct from old.priority and new.due_date is not distinct from old.due_date then
    new := private.apply_sla(new);
  end if;
  return new;
end;
$$;
create trigger tickets_before_update before update on public.tickets
  for each row execute function private.tickets_before_update();

-- The timeline: one event per meaningful change, by trigger.
create function private.ticket_events_from_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_actor uuid := private.current_user_id();
begin
  if tg_op = 'INSERT' then
    insert into public.ticket_events (tenant_id, ticket_id, type, data, actor_user_id)
    values (new.tenant_id, new.id, 'created',
            jsonb_build_object('status', new.status, 'priority', new.priority, 'assigned_to', new.assigned_to), v_actor);
    return null;
  end if;
  if new.merged_into_id is not null and old.merged_into_id is null then
    insert into public.ticket_events (tenant_id, ticket_id, type, data, actor_user_id) values
      (new.tenant_id, new.id, 'merged_into', jsonb_build_object('into', new.merged_into_id), v_actor),
      (new.tenant_id, new.merged_into_id, 'merged', jsonb_build_object('from', new.id), v_actor);
  elsif new.status is distinct from old.status then
    insert into public.ticket_events (tenant_id, ticket_id, type, data, actor_user_id)
    values (new.tenant_id, new.id, 'status_changed', jsonb_build_object('from', old.status, 'to', new.status), v_actor);
  end if;
  if new.assigned_to is distinct from old.assigned_to then
    insert into public.ticket_events (tenant_id, ticket_id, type, data, actor_user_id)
    values (new.tenant_id, new.id, case when new.assigned_to is null then 'unassigned' else 'assigned' end,
            jsonb_build_object('from', old.assigned_to, 'to', new.assigned_to), v_actor);
  end if;
  if new.priority is distinct from old.priority then
    insert into public.ticket_events (tenant_id, ticket_id, type, data, actor_user_id)
    values (new.tenant_id, new.id, 'priority_changed', jsonb_build_object('from', old.priority, 'to', new.priority), v_actor);
  end if;
  if new.team_id is distinct from old.team_id then
    insert into public.ticket_events (tenant_id, ticket_id, type, data, actor_user_id)
    values (new.tenant_id, new.id, 'team_changed', jsonb_build_object('from', old.team_id, 'to', new.team_id), v_actor);
  end if;
  if new.deleted_at is distinct from old.deleted_at then
    insert into public.ticket_events (tenant_id, ticket_id, type, actor_user_id)
    values (new.tenant_id, new.id, case when new.deleted_at is null then 'restored' else 'deleted' end, v_actor);
  end if;
  return null;
end;
$$;
create trigger ticket_events_from_change after insert or update on public.tickets
  for each row execute function private.ticket_events_from_change();

-- ------------------------------------------------------------------ message triggers

create function private.ticket_messages_before_insert() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_role text;
begin
  if current_user = 'authenticated' then
    v_role := private.role_in(new.tenant_id);
    new.author_id := private.current_user_id();
    if new.type = 'system' then
      raise exception 'system messages are written by the platform' using errcode = 'PT403';
    end if;
    if new.type = 'note' and v_role not in ('agent', 'admin', 'super_admin') then
      raise exception 'internal notes are for staff' using errcode = 'PT403';
    end if;
  end if;
  return new;
end;
$$;
create trigger ticket_messages_before_insert before insert on public.ticket_messages
  for each row execute function private.ticket_messages_before_insert();

-- A staff member's first public reply is the first response; the requester replying
-- to a pending ticket hands it back to the agents. Either way the ticket shows activity.
create function private.ticket_messages_after_insert() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_staff boolean;
begin
  select * into v_ticket from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for update;
  -- Only public replies with an author count; notes, system and imported messages
  -- leave v_staff null and fall through to the activity touch.
  if new.type = 'message' and new.author_id is not null then
    v_staff := exists (
      select 1 from public.memberships m
      where m.tenant_id = new.tenant_id and m.user_id = new.author_id and m.role in ('agent', 'admin')
    ) or exists (select 1 from public.platform_admins p where p.user_id = new.author_id);
  end if;
  if v_staff and new.author_id is distinct from v_ticket.created_by and v_ticket.first_response_at is null then
    update public.tickets set first_response_at = new.created_at
    where tenant_id = new.tenant_id and id = new.ticket_id;
  elsif v_staff is not null and new.author_id = v_ticket.created_by and v_ticket.status = 'pending' then
    update public.tickets set status = 'open' where tenant_id = new.tenant_id and id = new.ticket_id;
  else
    update public.tickets set updated_at = now() where tenant_id = new.tenant_id and id = new.ticket_id;
  end if;
  return null;
end;
$$;
create trigger ticket_messages_after_insert after insert on public.ticket_messages
  for each row execute function private.ticket_messages_after_insert();

create function private.ticket_messages_before_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.content is distinct from old.content then
    new.edited_at := now();
  end if;
  return new;
end;
$$;
create trigger ticket_messages_before_update before update on public.ticket_messages
  for each row execute function private.ticket_messages_before_update();

-- A demoted agent keeps no assigned work.
create function private.unassign_on_demotion() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role = 'user' and old.role <> 'user' then
    update public.tickets set assigned_to = null
    where tenant_id = new.tenant_id and assigned_to = new.user_id;
  end if;
  return null;
end;
$$;
create trigger unassign_on_demotion after update of role on public.memberships
  for each row execute function private.unassign_on_demotion();

create trigger set_updated_at before update on public.tickets
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.ticket_messages
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.attachments
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on public.sla_policies
  for each row execute function private.set_updated_at();

create trigger audit after insert or update or delete on public.tickets
  for each row execute function private.audit_row('tenant_id', 'tenant_id', 'id');
create trigger audit after insert or update or delete on public.ticket_messages
  for each row execute function private.audit_row('tenant_id', 'tenant_id', 'id');
create trigger audit after insert or update or delete on public.attachments
  for each row execute function private.audit_row('tenant_id', 'tenant_id', 'id');
create trigger audit after insert or update or delete on public.sla_policies
  for each row execute function private.audit_row('tenant_id', 'tenant_id', 'id');
create trigger audit after insert or update or delete on public.ticket_events
  for each row execute function private.audit_row('tenant_id', 'tenant_id', 'id');

revoke all on function private.check_ticket_assignee(uuid, uuid), private.apply_sla(public.tickets),
  private.auto_assignee(uuid, uuid), private.next_ticket_number(uuid), private.is_member(uuid, uuid),
  private.tickets_before_insert(), private.tickets_before_update(),
  private.ticket_events_from_change(), private.ticket_messages_before_insert(),
  private.ticket_messages_after_insert(), private.ticket_messages_before_update(),
  private.unassign_on_demotion() from public, anon;
-- The invoker triggers call these as the requesting role.
grant execute on function private.check_ticket_assignee(uuid, uuid), private.apply_sla(public.tickets),
  private.auto_assignee(uuid, uuid), private.next_ticket_number(uuid), private.is_member(uuid, uuid)
  to authenticated, service_role;

-- ------------------------------------------------------------------ row level security

alter table public.sla_policies enable row level security;
alter table public.tickets enable row level security;
alter table public.ticket_messages enable row level security;
alter table public.attachments enable row level security;
alter table public.ticket_events enable row level security;

revoke all on public.sla_policies, public.tickets, public.ticket_messages, public.attachments,
  public.ticket_events from anon, authenticated;
grant select on public.sla_policies, public.tickets, public.ticket_messages, public.attachments,
  public.ticket_events to authenticated;
grant insert (tenant_id, priority, first_response_minutes, resolution_minutes, business_hours),
  update (first_response_minutes, resolution_minutes, business_hours), delete
  on public.sla_policies to authenticated;
grant insert (tenant_id, id, title, description, priority, department, team_id, created_by, assigned_to,
  due_date, tags, metadata) on public.tickets to authenticated;
grant update (title, description, status, priority, department, team_id, assigned_to, due_date, tags,
  metadata, deleted_at) on public.tickets to authenticated;
grant insert (tenant_id, id, ticket_id, type, content), update (content) on public.ticket_messages to authenticated;
grant insert (tenant_id, id, ticket_id, message_id, file_name, content_type, size_bytes) on public.attachments to authenticated;

-- sla_policies: members read them (customers see their promised response times);
-- admins set them.
create policy sla_policies_select on public.sla_policies for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy sla_policies_insert on public.sla_policies for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy sla_policies_update on public.sla_policies for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy sla_policies_delete on public.sla_policies for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- tickets: customers their own; agents those of their teams, assigned to them or
-- requested by them; admins all of the tenant's, deleted ones included; super-admins everything.
create policy tickets_select on public.tickets for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and (
      (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) and created_by = (select private.current_user_id()))
      or (tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) and (
        assigned_to = (select private.current_user_id()) or created_by = (select private.current_user_id())
        or team_id = any ((select private.my_team_ids())::uuid[])))
    ))
  );
-- Any member files tickets in an active tenant (the trigger makes customers the requester).
create policy tickets_insert on public.tickets for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('user', true))::uuid[]) or (select private.is_platform_admin()));
-- Staff work the tickets they can see; only admins delete (soft) and restore.
create policy tickets_update on public.tickets for update to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]) and (
      assigned_to = (select private.current_user_id()) or created_by = (select private.current_user_id())
      or team_id = any ((select private.my_team_ids())::uuid[])))
  )
  with check (
    tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
    or (deleted_at is null and tenant_id = any ((select private.tenant_ids('agent', true))::uuid[]))
  );

-- Messages follow their ticket; internal notes are staff-only, in the database.
create policy ticket_messages_select on public.ticket_messages for select to authenticated
  using (
    exists (select 1 from public.tickets t where t.tenant_id = ticket_messages.tenant_id and t.id = ticket_messages.ticket_id)
    and (type <> 'note' or tenant_id = any ((select private.tenant_ids('agent'))::uuid[]) or (select private.is_platform_admin()))
  );
create policy ticket_messages_insert on public.ticket_messages for insert to authenticated
  with check (
    (tenant_id = any ((select private.tenant_ids('user', true))::uuid[]) or (select private.is_platform_admin()))
    and exists (select 1 from public.tickets t where t.tenant_id = ticket_messages.tenant_id and t.id = ticket_messages.ticket_id)
  );
create policy ticket_messages_update on public.ticket_messages for update to authenticated
  using (author_id = (select private.current_user_id()) and type <> 'system')
  with check (author_id = (select private.current_user_id()) and type <> 'system');

create policy attachments_select on public.attachments for select to authenticated
  using (
    exists (select 1 from public.tickets t where t.tenant_id = attachments.tenant_id and t.id = attachments.ticket_id)
    and (message_id is null or exists (
      select 1 from public.ticket_messages m where m.tenant_id = attachments.tenant_id and m.id = attachments.message_id))
  );
create policy attachments_insert on public.attachments for insert to authenticated
  with check (
    (tenant_id = any ((select private.tenant_ids('user', true))::uuid[]) or (select private.is_platform_admin()))
    and exists (select 1 from public.tickets t where t.tenant_id = attachments.tenant_id and t.id = attachments.ticket_id)
    and (message_id is null or exists (
      select 1 from public.ticket_messages m
      where m.tenant_id = attachments.tenant_id and m.id = attachments.message_id and m.ticket_id = attachments.ticket_id))
  );

create policy ticket_events_select on public.ticket_events for select to authenticated
  using (exists (select 1 from public.tickets t where t.tenant_id = ticket_events.tenant_id and t.id = ticket_events.ticket_id));

-- Who uploaded it and where its bytes go are the database's to say.
create function private.set_attachment_location() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.uploaded_by := private.current_user_id();
  new.bucket := 'attachments';
  new.path := new.tenant_id || '/' || new.ticket_id || '/' || new.id || '/' || new.file_name;
  new.status := 'pending';
  return new;
end;
$$;
create trigger set_attachment_location before insert on public.attachments
  for each row execute function private.set_attachment_location();
revoke all on function private.set_attachment_location() from public, anon;

-- The storage confirmed the bytes arrived (the function checks before it calls this).
create function private.mark_attachment_uploaded(p_tenant_id uuid, p_attachment_id uuid) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ticket uuid;
begin
  select a.ticket_id into v_ticket from public.attachments a where a.tenant_id = p_tenant_id and a.id = p_attachment_id;
  if v_ticket is null or not private.can_see_ticket(p_tenant_id, v_ticket) then
    raise exception 'attachment not found' using errcode = 'PT404';
  end if;
  update public.attachments set status = 'uploaded' where tenant_id = p_tenant_id and id = p_attachment_id;
end;
$$;
revoke all on function private.mark_attachment_uploaded(uuid, uuid) from public, anon;
grant execute on function private.mark_attachment_uploaded(uuid, uuid) to authenticated, service_role;

-- Realtime clients follow tickets and conversations (RLS applies to what they receive).
alter publication supabase_realtime add table public.tickets, public.ticket_messages, public.ticket_events;

-- ------------------------------------------------------------------ operations

-- Merging: the source's messages and attachments move to the target, the source is
-- closed with a pointer, both timelines say so. Staff only, both tickets visible to
-- the caller, one tenant.
create function private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)
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
  -- Lock both in a fixed order so two opposite merges cannot deadlock.
  perform 1 from public.tickets t where t.tenant_id = p_tenant_id and t.id in (p_source_id, p_target_id)
  order by t.id for update;
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
  update public.ticket_messages set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  update public.attachments set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  update public.tickets set status = 'closed', merged_into_id = p_target_id
  where tenant_id = p_tenant_id and id = p_source_id;
  insert into public.ticket_messages (tenant_id, ticket_id, type, content) values
    (p_tenant_id, p_target_id, 'system', format('Ticket #%s was merged into this ticket.', v_source.number)),
    (p_tenant_id, p_source_id, 'system', format('Merged into ticket #%s.', v_target.number));
end;
$$;

-- Handing a ticket to another agent or team. Postgres makes an UPDATE's new row pass
-- the SELECT policy too, so an agent could not pass on a ticket that would then leave
-- their sight; this function does it for staff who can see the ticket now.
create function private.hand_off_ticket(
  p_tenant_id uuid, p_ticket_id uuid,
  p_set_assignee boolean, p_assignee uuid,
  p_set_team boolean, p_team_id uuid
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or (p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin()) then
    raise exception 'only staff assign and route tickets' using errcode = 'PT403';
  end if;
  if not private.can_see_ticket(p_tenant_id, p_ticket_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  update public.tickets set
    assigned_to = case when p_set_assignee then p_assignee else assigned_to end,
    team_id = case when p_set_team then p_team_id else team_id end
  where tenant_id = p_tenant_id and id = p_ticket_id;
end;
$$;

-- The SLA sweep, run on a schedule: marks each breach once (first response, resolution),
-- escalates the ticket if it is still open or pending, and says so in a system message
-- and the timeline. p_now is the clock, so tests and backfills can move it.
create function private.run_sla_sweep(p_now timestamptz default now(), p_limit int default 500)
returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_due record;
  v_ticket public.tickets;
  v_kind text;
  v_count int := 0;
begin
  for v_due in
    (select t.tenant_id, t.id, 'first_response'::text as kind from public.tickets t
     where t.first_response_at is null and t.sla_first_response_breached_at is null and t.deleted_at is null
       and t.first_response_due_at <= p_now and t.status not in ('resolved', 'closed')
     order by t.first_response_due_at limit p_limit)
    union all
    (select t.tenant_id, t.id, 'resolution'::text from public.tickets t
     where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
       and t.due_date <= p_now and t.status not in ('resolved', 'closed')
     order by t.due_date limit p_limit)
  loop
    v_kind := v_due.kind;
    -- Re-read under a row lock; a concurrent sweep that got there first wins.
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for update skip locked;
    continue when v_ticket.id is null;
    continue when (v_kind = 'first_response' and (v_ticket.sla_first_response_breached_at is not null or v_ticket.first_response_at is not null))
               or (v_kind = 'resolution' and (v_ticket.sla_resolution_breached_at is not null or v_ticket.resolved_at is not null));
    update public.tickets set
      sla_first_response_breached_at = case when v_kind = 'first_response' then p_now else sla_first_response_breached_at end,
      sla_resolution_breached_at = case when v_kind = 'resolution' then p_now else sla_resolution_breached_at end,
      status = case when status in ('open', 'pending') then 'escalated' else status end
    where tenant_id = v_ticket.tenant_id and id = v_ticket.id;
    insert into public.ticket_messages (tenant_id, ticket_id, type, content)
    values (v_ticket.tenant_id, v_ticket.id, 'system',
            case v_kind when 'first_response' then 'SLA breached: no first response by the due time.'
                        else 'SLA breached: not resolved by the due date.' end);
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', p_now));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;

revoke all on function private.merge_tickets(uuid, uuid, uuid), private.run_sla_sweep(timestamptz, int),
  private.hand_off_ticket(uuid, uuid, boolean, uuid, boolean, uuid) from public, anon, authenticated;
grant execute on function private.merge_tickets(uuid, uuid, uuid), private.hand_off_ticket(uuid, uuid, boolean, uuid, boolean, uuid)
  to authenticated, service_role;
grant execute on function private.run_sla_sweep(timestamptz, int) to service_role;

-- ------------------------------------------------------------------ idempotent creates

-- Remembered responses of requests sent with an Idempotency-Key, per tenant and user,
-- for 24 hours. Private: only the two functions below touch it.
create table private.idempotency_keys (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references public.users (id) on delete cascade,
  key text not null check (char_length(key) between 1 and 255),
  request_hash text not null,
  status_code int,
  response jsonb,
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id, key)
);

-- Claims the key for this request, or returns what the first request with it stored.
-- A concurrent duplicate waits here until the first one commits (the unique key), so
-- it never runs the create twice.
create function private.claim_idempotency_key(p_tenant_id uuid, p_key text, p_request_hash text)
returns table (claimed boolean, request_hash text, status_code int, response jsonb)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
begin
  delete from private.idempotency_keys k
  where k.tenant_id = p_tenant_id and k.user_id = v_user and k.key = p_key and k.created_at < now() - interval '24 hours';
  insert into private.idempotency_keys (tenant_id, user_id, key, request_hash)
  values (p_tenant_id, v_user, p_key, p_request_hash)
  on conflict do nothing;
  if found then
    return query select true, p_request_hash, null::int, null::jsonb;
  else
    return query select false, k.request_hash, k.status_code, k.response from private.idempotency_keys k
      where k.tenant_id = p_tenant_id and k.user_id = v_user and k.key = p_key;
  end if;
end;
$$;

create function private.store_idempotent_response(p_tenant_id uuid, p_key text, p_status_code int, p_response jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  update private.idempotency_keys k set status_code = p_status_code, response = p_response
  where k.tenant_id = p_tenant_id and k.user_id = private.current_user_id() and k.key = p_key;
end;
$$;

revoke all on function private.claim_idempotency_key(uuid, text, text), private.store_idempotent_response(uuid, text, int, jsonb)
  from public, anon;
grant execute on function private.claim_idempotency_key(uuid, text, text), private.store_idempotent_response(uuid, text, int, jsonb)
  to authenticated, service_role;
