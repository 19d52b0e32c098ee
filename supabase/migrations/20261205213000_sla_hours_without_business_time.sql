-- Business hours in which no business time ever passes are named as such (issue 14,
-- review of 20261205206000_sla_hours_checked_on_write.sql): hours whose days are none
-- of 1-7 (possible past the API, which checks them) reach nothing, and the refusal named
-- resolution_minutes, "takes more than ten years", as if the target were too long.

-- Redefined (20261205206000_sla_hours_checked_on_write.sql): a minute first.
create or replace function private.sla_policy_hours_valid() returns trigger
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
