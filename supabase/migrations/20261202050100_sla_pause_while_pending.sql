-- The SLA clocks stop while a ticket waits for the customer (issue 16 §2). Entering
-- `pending` notes when; leaving it pushes the open due dates out by the time it waited,
-- counted in the policy's business hours when it has them, and adds that time to the
-- ticket's paused total, which a later priority change (private.apply_sla) keeps. The
-- sweep never breaches a pending ticket.

alter table public.tickets
  add column sla_paused_at timestamptz,
  add column sla_paused_minutes int not null default 0 check (sla_paused_minutes >= 0);
-- The audit trigger renders timestamptz columns from its arguments: give it the new one.
select private.enable_audit('public.tickets');

-- ------------------------------------------------------------------ business time between two instants

-- Minutes of business time between two instants under the business hours of
-- private.add_business_minutes (its inverse: add_business_minutes(a, between(a, b)) is b
-- when b falls in business hours); the wall-clock minutes when p_hours is null. Rounded
-- to the minute, the unit SLA targets are counted in.
create function private.business_minutes_between(p_from timestamptz, p_to timestamptz, p_hours jsonb) returns int
language plpgsql immutable
set search_path = ''
as $$
declare
  v_tz text := coalesce(p_hours ->> 'timezone', 'UTC');
  v_days int[] := coalesce((select array_agg(d::int) from jsonb_array_elements_text(p_hours -> 'days') d), '{1,2,3,4,5}');
  v_open time := coalesce((p_hours ->> 'start')::time, '09:00');
  v_close time := coalesce((p_hours ->> 'end')::time, '17:00');
  v_from timestamp;
  v_to timestamp;
  v_day date;
  v_seconds double precision := 0;
begin
  if p_to <= p_from then
    return 0;
  end if;
  if p_hours is null then
    return round(extract(epoch from p_to - p_from) / 60)::int;
  end if;
  v_from := p_from at time zone v_tz;
  v_to := p_to at time zone v_tz;
  if v_to::date - v_from::date > 3700 then -- ten years: as add_business_minutes, out of range
    raise exception 'the paused time is out of range' using errcode = '22003';
  end if;
  v_day := v_from::date;
  while v_day <= v_to::date loop
    if extract(isodow from v_day)::int = any (v_days) then
      v_seconds := v_seconds + greatest(0, extract(epoch from
        least(v_to, v_day + v_close) - greatest(v_from, v_day + v_open)));
    end if;
    v_day := v_day + 1;
  end loop;
  return round(v_seconds / 60)::int;
end;
$$;
revoke all on function private.business_minutes_between(timestamptz, timestamptz, jsonb) from public, anon, authenticated;
grant execute on function private.business_minutes_between(timestamptz, timestamptz, jsonb) to service_role;

-- ------------------------------------------------------------------ pausing and resuming

-- Runs after tickets_before_update (trigger names fire in order), so the transition is
-- already checked and a priority change has already recomputed the due dates.
create function private.tickets_sla_pause() returns trigger
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
    select s.business_hours into v_hours from public.sla_policies s
    where s.tenant_id = new.tenant_id and s.priority = new.priority;
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
      new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
    end if;
    new.sla_paused_at := null;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_sla_pause() from public, anon, authenticated;
create trigger tickets_sla_pause before update of status on public.tickets
  for each row when (old.status is distinct from new.status and (old.status = 'pending' or new.status = 'pending'))
  execute function private.tickets_sla_pause();

-- ------------------------------------------------------------------ due dates keep the paused time

-- As before (20261126100800_sla.sql), plus the time the ticket already waited for the
-- customer: a priority change after a pause must not take the pause back.
create or replace function private.apply_sla(p_ticket public.tickets) returns public.tickets
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_policy public.sla_policies;
  v_paused int := coalesce(p_ticket.sla_paused_minutes, 0);
begin
  select * into v_policy from public.sla_policies s
  where s.tenant_id = p_ticket.tenant_id and s.priority = p_ticket.priority;
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

-- ------------------------------------------------------------------ the sweep skips waiting tickets

-- As before (20261126100800_sla.sql), except that a ticket waiting for the customer
-- (pending) is never breached: its clock is stopped.
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
  loop
    v_kind := v_due.kind;
    -- Re-read under a row lock; a concurrent sweep that got there first wins.
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null or v_ticket.status = 'pending';
    continue when (v_kind = 'first_response' and (v_ticket.sla_first_response_breached_at is not null or v_ticket.first_response_at is not null))
               or (v_kind = 'resolution' and (v_ticket.sla_resolution_breached_at is not null or v_ticket.resolved_at is not null));
    update public.tickets set
      sla_first_response_breached_at = case when v_kind = 'first_response' then p_now else sla_first_response_breached_at end,
      sla_resolution_breached_at = case when v_kind = 'resolution' then p_now else sla_resolution_breached_at end,
      status = case when status = 'open' then 'escalated' else status end
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
revoke all on function private.run_sla_sweep(timestamptz, int) from public, anon, authenticated;
grant execute on function private.run_sla_sweep(timestamptz, int) to service_role;
