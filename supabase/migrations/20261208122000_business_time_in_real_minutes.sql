-- Business time is counted in real minutes across a daylight-saving change (review of
-- the SLA, issue 14).
--
-- add_business_minutes and business_minutes_between did their arithmetic on the local
-- clock (timestamp without time zone): an hour the clock skipped counted as an hour of
-- business time, and an hour it repeated counted once. A calendar open round the clock
-- in Europe/Paris (days 1–7, 00:00–24:00: "always, but holidays") breached a 120-minute
-- target 60 real minutes after a ticket filed at 01:30 on the night clocks go forward,
-- and gave 180 on the night they go back. Now each open day is the span between two
-- real instants (its opening and closing local times, each read in the calendar's zone),
-- and time is added and measured in real minutes between them. Days, holidays and the
-- hours themselves are read on the local calendar, as before.

-- Redefined (20261205206000_sla_hours_checked_on_write.sql): real instants per open day.
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
  v_day date := (p_start at time zone v_tz)::date;
  v_at timestamptz := p_start;
  v_left double precision := p_minutes;
  v_opens timestamptz;
  v_closes timestamptz;
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
    if extract(isodow from v_day)::int = any (v_days) and not (v_day = any (v_holidays)) then
      v_opens := (v_day + v_open) at time zone v_tz;
      v_closes := (v_day + v_close) at time zone v_tz;
      if v_at < v_closes then
        v_at := greatest(v_at, v_opens);
        v_take := least(v_left, extract(epoch from v_closes - v_at) / 60);
        v_at := v_at + make_interval(secs => v_take * 60);
        v_left := v_left - v_take;
      end if;
    end if;
    v_day := v_day + 1;
  end loop;
  return v_at;
end;
$$;

-- Redefined (20261202050200_sla_next_response_warnings_holidays.sql): real instants per
-- open day.
create or replace function private.business_minutes_between(p_from timestamptz, p_to timestamptz, p_hours jsonb) returns int
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
  v_day date;
  v_last date;
  v_seconds double precision := 0;
begin
  if p_to <= p_from then
    return 0;
  end if;
  if p_hours is null then
    return round(extract(epoch from p_to - p_from) / 60)::int;
  end if;
  v_day := (p_from at time zone v_tz)::date;
  v_last := (p_to at time zone v_tz)::date;
  if v_last - v_day > 3700 then -- ten years: as add_business_minutes, out of range
    raise exception 'the paused time is out of range' using errcode = '22003';
  end if;
  while v_day <= v_last loop
    if extract(isodow from v_day)::int = any (v_days) and not (v_day = any (v_holidays)) then
      v_seconds := v_seconds + greatest(0, extract(epoch from
        least(p_to, (v_day + v_close) at time zone v_tz) - greatest(p_from, (v_day + v_open) at time zone v_tz)));
    end if;
    v_day := v_day + 1;
  end loop;
  return round(v_seconds / 60)::int;
end;
$$;
