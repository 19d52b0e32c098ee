-- Business hours name their time zone as the tz database does (review, issue 14).
--
-- The check only asked Postgres to use the zone: `UTC+3`, `GMT-5` or `EST5EDT,M3.2.0`
-- are POSIX zone specifications it takes too, with the sign the other way round (`UTC+3`
-- is three hours west of Greenwich). Such a policy was stored, documented as an IANA
-- name, and every due date under it was off by twice the offset. A zone must now be one
-- of the tz database's names (pg_timezone_names: `Europe/Paris`, `UTC`, `Etc/GMT-3` —
-- whose sign is the tz database's own, documented one), in any case (Postgres took
-- `europe/paris` too: it is stored as `Europe/Paris`). Hours are checked when written or
-- changed: an existing policy whose hours stay as they were is not refused an edit of
-- its other columns. Policies stored before with a POSIX zone are listed by
-- `select tenant_id, team_id, priority, business_hours ->> 'timezone' from public.sla_policies
--  where business_hours ->> 'timezone' not in (select name from pg_timezone_names)`.

-- Redefined (20261205213000_sla_hours_without_business_time.sql): the zone by its name.
create or replace function private.sla_policy_hours_valid() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_field text;
  v_zone text;
  v_named text;
begin
  if new.business_hours is null then
    return new;
  end if;
  if tg_op = 'UPDATE' and new.business_hours is not distinct from old.business_hours
     and new.resolution_minutes is not distinct from old.resolution_minutes
     and new.next_response_minutes is not distinct from old.next_response_minutes then
    return new;
  end if;
  v_zone := coalesce(new.business_hours ->> 'timezone', 'UTC');
  select z.name into v_named from pg_catalog.pg_timezone_names z where lower(z.name) = lower(v_zone)
  order by z.name = v_zone desc, z.name limit 1;
  if v_named is not null and v_named <> v_zone and new.business_hours ? 'timezone' then
    new.business_hours := pg_catalog.jsonb_set(new.business_hours, '{timezone}', pg_catalog.to_jsonb(v_named));
  end if;
  if v_named is null then
    raise exception 'Unknown time zone %', v_zone using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'business_hours.timezone', 'message', 'is not a time zone (an IANA name, e.g. Europe/Paris)'))))::text;
  end if;
  v_field := case when coalesce(new.next_response_minutes, 0) > new.resolution_minutes
                  then 'next_response_minutes' else 'resolution_minutes' end;
  -- Malformed hours (no day, start after end) raise here as in the check constraint.
  if private.add_business_minutes('2026-01-05 00:00+00', 1, new.business_hours) is null then
    raise exception 'No business time passes in these hours' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'business_hours', 'message', 'has no business time within ten years'))))::text;
  end if;
  if private.add_business_minutes('2026-01-05 00:00+00',
       greatest(new.resolution_minutes, coalesce(new.next_response_minutes, 0)), new.business_hours) is null then
    raise exception 'The target takes more than ten years of these business hours' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', v_field, 'message', 'takes more than ten years of these business hours'))))::text;
  end if;
  return new;
end;
$$;
