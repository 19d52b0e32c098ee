-- A call logged by hand keeps the times it happened at, and a tenant API key's call
-- events are audited under the key (issue 14 review).
--
-- People log calls the provider never saw under `manual:` ids (PostgREST, under RLS), often
-- after the fact. Before this migration they could not write answered_at or ended_at:
-- a past call inserted in progress was "answered" at the moment it was logged, and ended
-- when its status was set, so its duration (and the call.ended webhook) was the time
-- between logging and saving, not the call's. Now:
--
-- * a person's call inserted in progress is answered at its start unless they say when;
-- * people may write answered_at (insert and update) and ended_at (update) of their own
--   manual calls, never of a provider's (409 provider_call, as for its status);
-- * an end is written with the status that ends the call, or on a call already ended
--   (a correction): on a call still ringing or in progress it is refused (422), as are
--   an answer on a ringing or missed call and clearing the answer of a call in progress
--   or completed;
-- * times are held as the provider's are: not ahead of now, an answer not before the
--   start, an end not before either; correcting an ended call's times computes its
--   duration again (the row's; call.ended, sent once when the call ended, is not sent
--   again). The duration is always computed from the times on this path.
--
-- A tenant's API key (calls:write) reports its calls' events on the telephony path
-- (functions/voice/routes/provider.ts) as the provider does, through the definer
-- functions private.voice_call_*. Those ran with no claims, so their audit rows named
-- nobody; they now run under the key's claims (the trail names the key and its creator,
-- as for the key's other writes). The rules for people — who write calls through the
-- table — take a key's claims under the service role for the machine path they are
-- (shared/db.ts asApiKeyMachine): an API key is no JWT, so PostgREST never sees one, and
-- a key's other routes run as authenticated, where the people's rules hold.

-- Redefined (20261202200000_voice_calls_review.sql): and the times of manual calls.
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
  if new.answered_at is null and old.answered_at is not null and new.status in ('in_progress', 'completed') then
    raise exception 'The call was answered; its answer cannot be cleared' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'answered_at', 'message', 'cannot be cleared on a call in progress or completed'))))::text;
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

create or replace trigger people_rules before insert or update of status, answered_at, ended_at on public.voice_calls
  for each row execute function private.voice_call_people_rules();

grant insert (answered_at), update (answered_at, ended_at) on public.voice_calls to authenticated;

-- Redefined (20261202190200_voice_provider_calls.sql): a key's events are the machine's.
create or replace function private.voice_segment_people_rules() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if private.current_user_id() is null
    or (auth.jwt() ->> 'iss' = 'tenant-platform:api-key' and auth.jwt() ->> 'role' = 'service_role') then
    return new;
  end if;
  if exists (select 1 from public.voice_calls c
             where c.tenant_id = new.tenant_id and c.id = new.call_id and c.provider_call_id not like 'manual:%') then
    raise exception 'The telephony provider writes its calls'' transcripts' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'provider_call')::text;
  end if;
  return new;
end;
$$;

-- Redefined (20261202160100_voice_segments_open_calls.sql): a key's events are the
-- machine's, whose function holds the call and takes nothing for an ended one.
create or replace function private.voice_segment_call_open() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if private.current_user_id() is null
    or (auth.jwt() ->> 'iss' = 'tenant-platform:api-key' and auth.jwt() ->> 'role' = 'service_role') then
    return new;
  end if;
  select c.status into v_status from public.voice_calls c
  where c.tenant_id = new.tenant_id and c.id = new.call_id
  for share;
  if v_status is not null and v_status not in ('ringing', 'in_progress') then
    raise exception 'The call has ended; its transcript is final' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'call_ended')::text;
  end if;
  return new;
end;
$$;
