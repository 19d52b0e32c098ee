-- SLA business hours: an unknown time zone and a target the hours cannot reach are
-- refused when the policy is written, naming the field; a ticket's due time beyond ten
-- years of business time is none instead of a failed write (issue 14, review of the
-- tickets function).
--
-- Before, an unknown time zone failed inside the policy's check constraint (22023, a 422
-- naming only "body"), and a target that takes more than ten years of the hours (525,600
-- minutes at one hour a week) was stored: add_business_minutes raised 22003 on every
-- later create, priority change or pause of a ticket under it, so the ticket writes
-- failed, not the policy. Now the policy's trigger names `business_hours.timezone` or
-- the target, and add_business_minutes answers null for a due time out of its reach (the
-- policy check reads null as invalid hours, as before; a ticket gets no due time, as a
-- ticket without a policy has none).

-- Redefined (20261202050200_sla_next_response_warnings_holidays.sql): null past ten years
-- of days instead of raising.
create or replace function private.add_business_minutes(p_start timestamptz, p_minutes int, p_hours jsonb) returns timestamptz
language plpgsql immutable
set search_path = ''
as $$
declare
  v_tz text := coalesce(p_hours ->> 'timezone', 'UTC');
  v_days int[] := coalesce((select array_agg(d::int) from jsonb_array_elements_text(p_hours -> 'days') d), '{1,2,3,4,5}');
  v_holidays date[] := coalesce((select array_agg(d::date) from jsonb_array_elements_text(
                          case when jsonb_typeof(p_hours -> 'holidays') = 'array' then p_hours -> 'holidays' else '[]' end) d), '{}');
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
  if cardinality(v_holidays) > 400 then
    raise exception 'at most 400 holidays per calendar' using errcode = '22023';
  end if;
  while v_left > 0 loop
    i := i + 1;
    if i > 3700 then -- ten years of days: no due time (a policy is refused such a target)
      return null;
    end if;
    if extract(isodow from v_local)::int = any (v_days) and not (v_local::date = any (v_holidays))
       and v_local::time < v_close then
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

-- Refuses, naming the field, business hours whose time zone Postgres does not know and
-- targets these hours cannot reach within ten years (the largest: resolution or next
-- response; first response is at most resolution). Checked in the caller's statement,
-- so the API and a direct client get the same 422.
create function private.sla_policy_hours_valid() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_field text;
begin
  if new.business_hours is null then
    return new;
  end if;
  begin
    perform now() at time zone coalesce(new.business_hours ->> 'timezone', 'UTC');
  exception when invalid_parameter_value then
    raise exception 'Unknown time zone %', new.business_hours ->> 'timezone' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'business_hours.timezone', 'message', 'is not a time zone (an IANA name, e.g. Europe/Paris)'))))::text;
  end;
  v_field := case when coalesce(new.next_response_minutes, 0) > new.resolution_minutes
                  then 'next_response_minutes' else 'resolution_minutes' end;
  -- Malformed hours (no day, start after end) raise here as in the check constraint.
  if private.add_business_minutes('2026-01-05 00:00+00',
       greatest(new.resolution_minutes, coalesce(new.next_response_minutes, 0)), new.business_hours) is null then
    raise exception 'The target takes more than ten years of these business hours' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', v_field, 'message', 'takes more than ten years of these business hours'))))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.sla_policy_hours_valid() from public, anon;
create trigger sla_policy_hours_valid before insert or update on public.sla_policies
  for each row execute function private.sla_policy_hours_valid();
