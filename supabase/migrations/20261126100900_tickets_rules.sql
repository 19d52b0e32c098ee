-- Support tickets, the rules every write obeys, whoever writes (the functions, a client
-- app through PostgREST, a trusted machine path): the status machine, the assignee's
-- role, per-tenant gap-free numbers, automatic assignment, SLA due dates, the first
-- response, and the timeline. Triggers, so no path can skip them; the tickets function
-- shapes the API around them. Each lock taken here follows the lock order
-- (20261126100000_conventions.sql).

-- ------------------------------------------------------------------ the status machine

-- Where a ticket may go from a status: the details of a refused transition.
create function private.allowed_ticket_transitions(p_from text) returns text[]
language sql stable security definer
set search_path = ''
as $$
  select coalesce(array_agg(to_status order by to_status), '{}')
  from private.ticket_status_transitions where from_status = p_from
$$;
revoke all on function private.allowed_ticket_transitions(text) from public, anon;
grant execute on function private.allowed_ticket_transitions(text) to authenticated, service_role;

-- ------------------------------------------------------------------ helpers of the ticket triggers

-- These act on whatever tenant they are given, so only definer code calls them: none is
-- executable by API roles (issue 9 found next_ticket_number advancing another tenant's
-- counter, check_ticket_assignee answering who belongs to another tenant, auto_assignee
-- rotating another tenant's team).

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
revoke all on function private.check_ticket_assignee(uuid, uuid) from public, anon, authenticated, service_role;

-- Lock level 3: the tenant's counter row, by the upsert.
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
revoke all on function private.next_ticket_number(uuid) from public, anon, authenticated, service_role;

-- Automatic assignment inside the creating transaction: round robin over available
-- agents, or the one with the fewest open tickets. The team row is locked (level 4) FOR
-- NO KEY UPDATE (the pointer is no key), so concurrent creates in one team take turns
-- and never pick the same slot twice, while tickets and team members referencing the
-- team do not wait.
create function private.auto_assignee(p_tenant_id uuid, p_team_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_team public.teams;
  v_pick uuid;
begin
  select * into v_team from public.teams t where t.tenant_id = p_tenant_id and t.id = p_team_id for no key update;
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
revoke all on function private.auto_assignee(uuid, uuid) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ creating a ticket

-- Two BEFORE INSERT triggers, fired in name order. The first runs as the invoker, so
-- `current_user` tells an API request (authenticated) from a trusted path, and keeps
-- only what concerns API requests: who the requester is, what a customer may set.
--
-- Customers file tickets for themselves and do not route or assign them: the only place
-- this is checked. A customer naming a team, an assignee or another requester is refused
-- with PT403 and, in the detail, the column (shared/errors.ts answers 403 forbidden with
-- details.field).
create function private.tickets_before_insert() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_role text;
  v_me uuid;
  v_field text;
begin
  if current_user = 'authenticated' then
    v_role := private.role_in(new.tenant_id);
    if v_role is null then
      raise exception 'not a member of this tenant' using errcode = '42501';
    end if;
    v_me := private.current_user_id();
    if v_role = 'user' then
      v_field := case
        when new.team_id is not null then 'team_id'
        when new.assigned_to is not null then 'assigned_to'
        when new.created_by is distinct from v_me and new.created_by is not null then 'created_by'
      end;
      if v_field is not null then
        raise exception 'Customers cannot route, assign or file tickets for others' using errcode = 'PT403',
          detail = jsonb_build_object('code', 'forbidden', 'details', jsonb_build_object('field', v_field));
      end if;
      new.due_date := null; -- the SLA policy decides a customer's due date
    end if;
    -- The caller is the requester unless staff file it for a member.
    new.created_by := coalesce(new.created_by, v_me);
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_before_insert() from public, anon;
create trigger tickets_before_insert before insert on public.tickets
  for each row execute function private.tickets_before_insert();

-- The second holds the rules for every insert and runs as the owner, so the helpers it
-- calls need no grant to API roles: the requester belongs to the tenant, a new ticket
-- starts open with no history, its number, its assignee, its due dates.
create function private.tickets_insert_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
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
revoke all on function private.tickets_insert_rules() from public, anon, authenticated, service_role;
create trigger tickets_before_insert_rules before insert on public.tickets
  for each row execute function private.tickets_insert_rules();

-- A person may file a ticket they cannot read afterwards (an agent filing for a customer
-- on another team), so the tickets function cannot always read its id back with
-- RETURNING (the new row must pass the select policy). The database says which ticket
-- this transaction created last, in a transaction-local setting.
create function private.remember_created_ticket() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('private.created_ticket_id', new.id::text, true);
  return null;
end;
$$;
revoke all on function private.remember_created_ticket() from public, anon, authenticated;
create trigger remember_created_ticket after insert on public.tickets
  for each row execute function private.remember_created_ticket();

-- ------------------------------------------------------------------ changing a ticket

-- Status transitions (the machine above; a closed ticket reopens only within the
-- tenant's settings.reopen_window_days, 7 by default), the timestamps they set, the
-- assignee's role, and due dates again when the priority changes.
--
-- This is the only place a transition is checked: a refused one raises PT409 with, in
-- its detail, what the API answers (shared/errors.ts): 409 invalid_transition and
-- {from, to, allowed}, the targets open to this ticket now (none for a closed ticket
-- past its reopen window, which also says the window).
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
      raise exception 'A % ticket cannot become %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(private.allowed_ticket_transitions(old.status))));
    elsif old.status = 'closed' then
      select case when t.settings ->> 'reopen_window_days' ~ '^\d{1,4}(\.\d+)?$'
                  then (t.settings ->> 'reopen_window_days')::numeric else 7 end into v_window_days
      from public.tenants t where t.id = new.tenant_id;
      if old.closed_at + make_interval(secs => v_window_days * 86400) < now() then
        raise exception 'The ticket was closed more than % days ago and cannot be reopened', v_window_days
          using errcode = 'PT409',
          detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
            'from', old.status, 'to', new.status, 'allowed', '[]'::jsonb, 'reopen_window_days', v_window_days));
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
revoke all on function private.tickets_before_update() from public, anon;
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
revoke all on function private.ticket_events_from_change() from public, anon;
create trigger ticket_events_from_change after insert or update on public.tickets
  for each row execute function private.ticket_events_from_change();

-- A demoted agent keeps no assigned work: their tickets are locked by id (level 5,
-- after the membership row being changed), then changed.
create function private.unassign_on_demotion() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.role = 'user' and old.role <> 'user' then
    perform 1 from public.tickets t
    where t.tenant_id = new.tenant_id and t.assigned_to = new.user_id
    order by t.id for no key update;
    update public.tickets set assigned_to = null
    where tenant_id = new.tenant_id and assigned_to = new.user_id;
  end if;
  return null;
end;
$$;
revoke all on function private.unassign_on_demotion() from public, anon;
create trigger unassign_on_demotion after update of role on public.memberships
  for each row execute function private.unassign_on_demotion();

-- ------------------------------------------------------------------ messages

-- Runs as the invoker: API requests write as their author, never system messages, and
-- notes only as staff.
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
revoke all on function private.ticket_messages_before_insert() from public, anon;
create trigger ticket_messages_before_insert before insert on public.ticket_messages
  for each row execute function private.ticket_messages_before_insert();

-- A new message or attachment locks its ticket first (level 5): writers of one ticket
-- take turns from here to commit. Fires after the other BEFORE triggers (name order), so
-- callers the invoker triggers refuse never take the lock. Attachments attach it in
-- their own file.
create function private.lock_parent_ticket() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform 1 from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for no key update;
  return new;
end;
$$;
revoke all on function private.lock_parent_ticket() from public, anon, authenticated;
create trigger ticket_parent_lock before insert on public.ticket_messages
  for each row execute function private.lock_parent_ticket();

-- A staff member's first public reply is the first response; the requester replying
-- to a pending ticket hands it back to the agents. Either way the ticket shows activity.
-- The ticket is already locked (ticket_parent_lock), with the strength the UPDATE below
-- needs anyway.
create function private.ticket_messages_after_insert() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_staff boolean;
begin
  select * into v_ticket from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for no key update;
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
revoke all on function private.ticket_messages_after_insert() from public, anon;
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
revoke all on function private.ticket_messages_before_update() from public, anon;
create trigger ticket_messages_before_update before update on public.ticket_messages
  for each row execute function private.ticket_messages_before_update();
