-- SLA policies per priority and optionally per team (issue 16 §2). A policy may name a
-- team: for that team's tickets it wins over the tenant-wide policy of the priority.
-- "The policy of this ticket" is looked up in one place, private.sla_policy_for, by the
-- due dates (apply_sla), the pause, the next-response clock and the sweep's warnings;
-- and a ticket that changes team gets its due dates again, as a priority change does.

-- ------------------------------------------------------------------ the team of a policy

alter table public.sla_policies
  add column team_id uuid,
  -- Composite: a policy can never name another tenant's team. A team's policies leave with it.
  add constraint sla_policies_tenant_id_team_id_fkey
    foreign key (tenant_id, team_id) references public.teams (tenant_id, id) on delete cascade;
-- One policy per priority tenant-wide and one per priority and team (null is one value).
-- Also the lookup's index: (tenant_id, team_id) leads it, so it serves the foreign key too.
alter table public.sla_policies drop constraint sla_policies_tenant_id_priority_key;
alter table public.sla_policies add constraint sla_policies_tenant_id_team_id_priority_key
  unique nulls not distinct (tenant_id, team_id, priority);
-- Set when a policy is made; a policy moves to another team by being removed and made again.
grant insert (team_id) on public.sla_policies to authenticated;

-- ------------------------------------------------------------------ the one lookup

-- The SLA policy that governs a ticket of this team and priority: the team's own for the
-- priority if it has one, else the tenant-wide one; null when neither exists. Read as the
-- owner by the definer code that needs it; not executable by API roles (it reads
-- policies by a tenant it is given).
create function private.sla_policy_for(p_tenant_id uuid, p_team_id uuid, p_priority text) returns public.sla_policies
language sql stable security definer
set search_path = ''
as $$
  select s.* from public.sla_policies s
  where s.tenant_id = p_tenant_id and s.priority = p_priority
    and (s.team_id is null or s.team_id = p_team_id)
  order by s.team_id nulls last
  limit 1;
$$;
revoke all on function private.sla_policy_for(uuid, uuid, text) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ due dates

-- As before (20261202050100_sla_pause_while_pending.sql), from the ticket's policy —
-- its team's, else the tenant's.
create or replace function private.apply_sla(p_ticket public.tickets) returns public.tickets
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_policy public.sla_policies := private.sla_policy_for(p_ticket.tenant_id, p_ticket.team_id, p_ticket.priority);
  v_paused int := coalesce(p_ticket.sla_paused_minutes, 0);
begin
  if v_policy.id is null then
    return p_ticket;
  end if;
  if v_policy.business_hours is null then
    p_ticket.first_response_due_at := p_ticket.created_at + make_interval(mins => v_policy.first_response_minutes + v_paused);
    p_ticket.due_date := p_ticket.created_at + make_interval(mins => v_policy.resolution_minutes + v_paused);
  else
    p_ticket.first_response_due_at := private.add_business_minutes(p_ticket.created_at, v_policy.first_response_minutes + v_paused, v_policy.business_hours);
    p_ticket.due_date := private.add_business_minutes(p_ticket.created_at, v_policy.resolution_minutes + v_paused, v_policy.business_hours);
  end if;
  return p_ticket;
end;
$$;
revoke all on function private.apply_sla(public.tickets) from public, anon, authenticated, service_role;

-- As before (20261126100900_tickets_rules.sql), and the due dates are computed again when
-- the team changes, as when the priority does (the team may have its own policy). An
-- update that sets due_date itself keeps it, as before.
create or replace function private.tickets_before_update() returns trigger
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
  if (new.priority is distinct from old.priority or new.team_id is distinct from old.team_id)
     and new.due_date is not distinct from old.due_date then
    new := private.apply_sla(new);
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_before_update() from public, anon;

-- ------------------------------------------------------------------ the pause

-- As before (20261202050200_sla_next_response_warnings_holidays.sql), in the business
-- hours of the ticket's policy.
create or replace function private.tickets_sla_pause() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_hours jsonb;
  v_minutes int;
begin
  if new.status = 'pending' and new.sla_paused_at is null then
    new.sla_paused_at := now();
  elsif new.status <> 'pending' and old.sla_paused_at is not null then
    v_hours := (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).business_hours;
    v_minutes := private.business_minutes_between(old.sla_paused_at, now(), v_hours);
    if v_minutes > 0 then
      if new.first_response_at is null and new.first_response_due_at is not null then
        new.first_response_due_at := case when v_hours is null
          then new.first_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.first_response_due_at, v_minutes, v_hours) end;
      end if;
      if new.resolved_at is null and new.due_date is not null then
        new.due_date := case when v_hours is null
          then new.due_date + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.due_date, v_minutes, v_hours) end;
      end if;
      -- A customer reply that ends the wait restarts this clock in the same statement:
      -- only a due time set before the pause moves.
      if new.next_response_due_at is not null and new.next_response_due_at is not distinct from old.next_response_due_at then
        new.next_response_due_at := case when v_hours is null
          then new.next_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.next_response_due_at, v_minutes, v_hours) end;
      end if;
      new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
    end if;
    new.sla_paused_at := null;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_sla_pause() from public, anon, authenticated;

-- ------------------------------------------------------------------ the next-response clock

-- As before (20261202050200_sla_next_response_warnings_holidays.sql), under the ticket's
-- policy.
create or replace function private.ticket_messages_after_insert() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_staff boolean;
  v_policy public.sla_policies;
  v_next_set boolean := false;
  v_next_due timestamptz;
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
  if v_staff and new.author_id is distinct from v_ticket.created_by then
    v_next_set := v_ticket.next_response_due_at is not null;
    v_next_due := null;
  elsif v_staff is not null then
    v_policy := private.sla_policy_for(new.tenant_id, v_ticket.team_id, v_ticket.priority);
    if v_policy.next_response_minutes is not null then
      v_next_set := true;
      v_next_due := case when v_policy.business_hours is null
        then now() + make_interval(mins => v_policy.next_response_minutes)
        else private.add_business_minutes(now(), v_policy.next_response_minutes, v_policy.business_hours) end;
    end if;
  end if;
  update public.tickets set
    first_response_at = case
      when v_staff and new.author_id is distinct from v_ticket.created_by and v_ticket.first_response_at is null
      then new.created_at else first_response_at end,
    status = case
      when v_staff is not null and new.author_id = v_ticket.created_by and v_ticket.status = 'pending'
      then 'open' else status end,
    next_response_due_at = case when v_next_set then v_next_due else next_response_due_at end,
    sla_next_response_breached_at = case when v_next_set then null else sla_next_response_breached_at end,
    updated_at = now()
  where tenant_id = new.tenant_id and id = new.ticket_id;
  return null;
end;
$$;
revoke all on function private.ticket_messages_after_insert() from public, anon;

-- ------------------------------------------------------------------ the sweep's warnings

-- As before (20261202050200_sla_next_response_warnings_holidays.sql), with each ticket's
-- lead time from its own policy.
create or replace function private.run_sla_sweep(p_now timestamptz default now(), p_limit int default 500)
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
       and t.first_response_due_at <= p_now and t.status not in ('pending', 'resolved', 'closed')
     order by t.first_response_due_at limit p_limit)
    union all
    (select t.tenant_id, t.id, 'resolution'::text from public.tickets t
     where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
       and t.due_date <= p_now and t.status not in ('pending', 'resolved', 'closed')
     order by t.due_date limit p_limit)
    union all
    (select t.tenant_id, t.id, 'next_response'::text from public.tickets t
     where t.sla_next_response_breached_at is null and t.deleted_at is null
       and t.next_response_due_at <= p_now and t.status not in ('pending', 'resolved', 'closed')
     order by t.next_response_due_at limit p_limit)
  loop
    v_kind := v_due.kind;
    -- Re-read under a row lock; a concurrent sweep that got there first wins.
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null or v_ticket.status in ('pending', 'resolved', 'closed');
    continue when (v_kind = 'first_response' and (v_ticket.sla_first_response_breached_at is not null or v_ticket.first_response_at is not null))
               or (v_kind = 'resolution' and (v_ticket.sla_resolution_breached_at is not null or v_ticket.resolved_at is not null))
               or (v_kind = 'next_response' and (v_ticket.sla_next_response_breached_at is not null
                                                 or v_ticket.next_response_due_at is null or v_ticket.next_response_due_at > p_now));
    update public.tickets set
      sla_first_response_breached_at = case when v_kind = 'first_response' then p_now else sla_first_response_breached_at end,
      sla_resolution_breached_at = case when v_kind = 'resolution' then p_now else sla_resolution_breached_at end,
      sla_next_response_breached_at = case when v_kind = 'next_response' then p_now else sla_next_response_breached_at end,
      status = case when status = 'open' then 'escalated' else status end
    where tenant_id = v_ticket.tenant_id and id = v_ticket.id;
    insert into public.ticket_messages (tenant_id, ticket_id, type, content)
    values (v_ticket.tenant_id, v_ticket.id, 'system',
            case v_kind when 'first_response' then 'SLA breached: no first response by the due time.'
                        when 'next_response' then 'SLA breached: the customer''s reply was not answered in time.'
                        else 'SLA breached: not resolved by the due date.' end);
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', p_now));
    perform private.emit_webhook_event(v_ticket.tenant_id, 'ticket.sla_breached', 'ticket:' || v_ticket.id,
      jsonb_build_object('type', 'ticket.sla_breached', 'tenant_id', v_ticket.tenant_id,
        'data', jsonb_build_object('ticket_id', v_ticket.id, 'number', v_ticket.number, 'kind', v_kind),
        'occurred_at', private.api_timestamp(clock_timestamp())));
    v_count := v_count + 1;
  end loop;

  for v_due in
    with due as (
      (select t.tenant_id, t.id, 'first_response'::text as kind, t.first_response_due_at as due_at from public.tickets t
       where t.first_response_at is null and t.sla_first_response_breached_at is null and t.deleted_at is null
         and t.first_response_due_at > p_now and t.first_response_due_at <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed'))
      union all
      (select t.tenant_id, t.id, 'resolution', t.due_date from public.tickets t
       where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
         and t.due_date > p_now and t.due_date <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed'))
      union all
      (select t.tenant_id, t.id, 'next_response', t.next_response_due_at from public.tickets t
       where t.sla_next_response_breached_at is null and t.deleted_at is null
         and t.next_response_due_at > p_now and t.next_response_due_at <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed'))
    )
    select d.* from due d
    join public.tickets t on t.tenant_id = d.tenant_id and t.id = d.id
    cross join lateral private.sla_policy_for(t.tenant_id, t.team_id, t.priority) s
    where s.warning_minutes is not null and d.due_at - make_interval(mins => s.warning_minutes) <= p_now
      and not exists (select 1 from private.sla_warnings w
                      where w.tenant_id = d.tenant_id and w.ticket_id = d.id and w.kind = d.kind and w.due_at = d.due_at)
    order by d.due_at
    limit p_limit
  loop
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null;
    insert into private.sla_warnings (tenant_id, ticket_id, kind, due_at)
    values (v_due.tenant_id, v_due.id, v_due.kind, v_due.due_at)
    on conflict do nothing;
    continue when not found;
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_warning', jsonb_build_object('kind', v_due.kind, 'due_at', v_due.due_at, 'at', p_now));
    perform private.emit_webhook_event(v_ticket.tenant_id, 'ticket.sla_warning', 'ticket:' || v_ticket.id,
      jsonb_build_object('type', 'ticket.sla_warning', 'tenant_id', v_ticket.tenant_id,
        'data', jsonb_build_object('ticket_id', v_ticket.id, 'number', v_ticket.number, 'kind', v_due.kind,
                                   'due_at', private.api_timestamp(v_due.due_at)),
        'occurred_at', private.api_timestamp(clock_timestamp())));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
revoke all on function private.run_sla_sweep(timestamptz, int) from public, anon, authenticated;
grant execute on function private.run_sla_sweep(timestamptz, int) to service_role;
