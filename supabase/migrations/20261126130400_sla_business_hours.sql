-- SLA targets counted in business hours when a policy has them:
-- {"timezone": "Europe/Paris", "days": [1, 2, 3, 4, 5], "start": "09:00", "end": "17:00"}
-- (ISO weekdays, 1 = Monday). Without business hours, targets run on the wall clock.

create function private.add_business_minutes(p_start timestamptz, p_minutes int, p_hours jsonb) returns timestamptz
language plpgsql immutable
set search_path = ''
as $$
declare
  v_tz text := coalesce(p_hours ->> 'timezone', 'UTC');
  v_days int[] := coalesce((select array_agg(d::int) from jsonb_array_elements_text(p_hours -> 'days') d), '{1,2,3,4,5}');
  v_open time := coalesce((p_hours ->> 'start')::time, '09:00');
  v_close time := coalesce((p_hours ->> 'end')::time, '17:00');
  v_local timestamp := p_start at time zone v_tz;
  v_left double precision := p_minutes;
  v_day_end timestamp;
  v_take double precision;
  i int := 0;
begin
  if v_close <= v_open or cardinality(v_days) = 0 then
    raise exception 'business hours need a start before the end and at least one day' using errcode = '22023';
  end if;
  while v_left > 0 loop
    i := i + 1;
    if i > 3700 then -- ten years of days: a target that long is a configuration error
      raise exception 'the SLA target is out of range' using errcode = '22003';
    end if;
    if extract(isodow from v_local)::int = any (v_days) and v_local::time < v_close then
      if v_local::time < v_open then
        v_local := v_local::date + v_open;
      end if;
      v_day_end := v_local::date + v_close;
      v_take := least(v_left, extract(epoch from v_day_end - v_local) / 60);
      v_local := v_local + make_interval(secs => v_take * 60);
      v_left := v_left - v_take;
    else
      v_local := (v_local::date + 1) + v_open;
    end if;
  end loop;
  return v_local at time zone v_tz;
end;
$$;

-- Due dates from the tenant's SLA policy for the priority, counted from creation — in
-- business hours when the policy has them.
create or replace function private.apply_sla(p_ticket public.tickets) returns public.tickets
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
  if v_policy.business_hours is null then
    p_ticket.first_response_due_at := p_ticket.created_at + make_interval(mins => v_policy.first_response_minutes);
    p_ticket.due_date := p_ticket.created_at + make_interval(mins => v_policy.resolution_minutes);
  else
    p_ticket.first_response_due_at := private.add_business_minutes(p_ticket.created_at, v_policy.first_response_minutes, v_policy.business_hours);
    p_ticket.due_date := private.add_business_minutes(p_ticket.created_at, v_policy.resolution_minutes, v_policy.business_hours);
  end if;
  return p_ticket;
end;
$$;

-- A policy's business hours must make sense when they are saved, not when a ticket needs them.
alter table public.sla_policies add constraint sla_policies_business_hours_valid
  check (business_hours is null or private.add_business_minutes('2026-01-05 00:00+00', 1, business_hours) is not null);

revoke all on function private.add_business_minutes(timestamptz, int, jsonb) from public, anon;
grant execute on function private.add_business_minutes(timestamptz, int, jsonb) to authenticated, service_role;
