-- Calls logged by hand, after a review of 20261203080100 (issue 14):
--
-- * A call logged in progress is answered at its start (20261203080100), so a past call
--   logged more than 4 hours after it started had no event within the stale-call sweep's
--   silence bound (private.voice_call_last_event_at read the start, the answer and the
--   segments): the next sweep ended it as failed and sent a provisional call.ended while
--   the person was still writing it up. Logging a manual call is an event now: its
--   row's created_at counts. (The provider's calls are as they were: their start is the
--   event the provider reported.)
-- * Clearing an answer was refused only when the status stayed in progress or completed:
--   `set status = 'failed', answered_at = null` went through, and private.voice_call_status
--   then stamped the answer again at now, making the call 0 seconds long. An answer,
--   once given, cannot be cleared by people.

-- Redefined (20261202170300_voice_stale_calls_review.sql): and when the call was logged.
create or replace function private.voice_call_last_event_at(p_tenant_id uuid, p_call_id uuid) returns timestamptz
language sql stable
set search_path = ''
as $$
  select greatest(c.started_at, c.answered_at,
                  case when c.provider_call_id like 'manual:%' then c.created_at end,
                  (select max(g.created_at) from public.voice_call_segments g
                   where g.tenant_id = c.tenant_id and g.call_id = c.id))
  from public.voice_calls c where c.tenant_id = p_tenant_id and c.id = p_call_id
$$;

-- Redefined (20261203080100_voice_call_times_and_key_events.sql): an answer is never cleared.
create or replace function private.voice_call_people_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ended boolean := new.status in ('completed', 'failed', 'missed');
  v_retimed boolean := tg_op = 'UPDATE'
    and (new.answered_at is distinct from old.answered_at or new.ended_at is distinct from old.ended_at);
begin
  -- No caller (the provider's path) or a tenant API key (on the same path): the machine.
  if private.current_user_id() is null
    or (auth.jwt() ->> 'iss' = 'tenant-platform:api-key' and auth.jwt() ->> 'role' = 'service_role') then
    return new;
  end if;
  if tg_op = 'INSERT' and new.provider_call_id not like 'manual:%' then
    raise exception 'A call logged by a person has an id starting with manual:' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'provider_call_id', 'message', 'must start with manual: (the provider''s ids are its own)'))))::text;
  end if;
  if tg_op = 'UPDATE' and old.provider_call_id not like 'manual:%'
    and (new.status is distinct from old.status or old.timed_out_at is not null or v_retimed) then
    raise exception 'The telephony provider ends its own calls' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'provider_call')::text;
  end if;
  if new.ended_at is not null and not v_ended then
    raise exception 'A call ends with its status' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'ended_at', 'message', 'is written with status completed, failed or missed'))))::text;
  end if;
  if new.answered_at is null and old.answered_at is not null then
    raise exception 'The call was answered; its answer cannot be cleared' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'answered_at', 'message', 'cannot be cleared once the call was answered'))))::text;
  end if;
  if new.answered_at is not null and new.status in ('ringing', 'missed')
    and (tg_op = 'INSERT' or new.answered_at is distinct from old.answered_at) then
    raise exception 'A % call was not answered', new.status using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'answered_at', 'message', 'is for a call in progress or ended completed or failed'))))::text;
  end if;

  -- Not ahead of now, an answer not before the start (private.voice_call_status holds the
  -- start, and the end against the start and answer, when the status changes).
  if new.answered_at is not null then
    new.answered_at := least(greatest(new.answered_at, new.started_at), now());
  end if;
  if new.ended_at is not null then
    new.ended_at := least(new.ended_at, now());
  end if;
  if tg_op = 'INSERT' and new.status = 'in_progress' then
    new.answered_at := coalesce(new.answered_at, least(new.started_at, now()));
  end if;
  -- A correction of an ended call's times: its duration follows them.
  if v_retimed and v_ended and new.status = old.status then
    if new.ended_at is null then
      raise exception 'An ended call keeps an end' using errcode = 'PT422',
        detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
          jsonb_build_object('field', 'ended_at', 'message', 'cannot be cleared on an ended call'))))::text;
    end if;
    new.ended_at := greatest(new.ended_at, new.started_at, new.answered_at);
    new.duration_seconds := case when new.answered_at is null then 0
      else least(greatest(0, floor(extract(epoch from new.ended_at - new.answered_at))), 2147483647)::int end;
  elsif tg_op = 'UPDATE' and v_ended and new.status is distinct from old.status then
    -- Ended now: private.voice_call_status computes the duration from the times.
    new.duration_seconds := null;
  end if;
  return new;
end;
$$;
