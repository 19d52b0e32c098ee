-- A call's answer time the platform had to guess gives way to the one the provider sends.
--
-- A call moves out of ringing without an answer time in three ways: its first transcript
-- segments (answered at their arrival), a `call.ended` completed for a call still ringing
-- (answered at its start), and the sweep's provisional end replaced by a completed one
-- (answered at its start). The provider's `call.answered` naming the real time, arriving
-- after (a delivery retried, a provider that sends the transcript first), was then
-- ignored as a repeat: the call counted its ringing, or nothing at all, in its duration
-- and the call minutes billed. Such a guessed time is now marked
-- (`voice_calls.answer_inferred`), and the first answer that names a time replaces it —
-- bounded by the start, the end and now — and the duration, where it was the end less
-- the guess (the provider gave none, or the same), is counted again from it. An answer
-- the provider gave (or a person wrote) stays: a repeated or late one changes nothing.
alter table public.voice_calls add column answer_inferred boolean not null default false;
comment on column public.voice_calls.answer_inferred is
  'The answer time was guessed (first segments, or a completed end of a ringing call): the provider''s call.answered naming one replaces it.';

-- Redefined (20261206160000_ringing_call_that_fails_never_answered.sql): an answer the
-- trigger stamps is marked guessed; one set otherwise is not.
create or replace function private.voice_call_status() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_replaces boolean := tg_op = 'UPDATE' and old.timed_out_at is not null;
  v_reachable text[];
begin
  -- An answer time written by the statement (the provider's, a person's) is not a guess,
  -- unless the statement marks it so itself (voice_call_ended).
  if tg_op = 'UPDATE' and new.answered_at is distinct from old.answered_at
     and new.answer_inferred is not distinct from old.answer_inferred then
    new.answer_inferred := false;
  end if;
  if tg_op = 'INSERT' then
    if new.status not in ('ringing', 'in_progress') then
      raise exception 'A call starts ringing or in progress, not %', new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details',
          jsonb_build_object('from', null, 'to', new.status, 'allowed', jsonb_build_array('ringing', 'in_progress')))::text;
    end if;
    -- A call "started" in the future would be answered before its start and never swept.
    new.started_at := least(new.started_at, now());
    if new.answered_at is not null then
      new.answered_at := least(greatest(new.answered_at, new.started_at), now());
    end if;
  elsif v_replaces then
    -- The sweep ended ringing calls as missed and calls in progress as failed.
    v_reachable := case when old.status = 'missed' then array['completed', 'failed', 'missed']
                        else array['completed', 'failed'] end;
    if new.status <> all (v_reachable) then
      raise exception 'The timed-out % call cannot end as %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(v_reachable)))::text;
    end if;
    new.timed_out_at := null;
    if new.status = 'completed' and new.answered_at is null then
      new.answered_at := new.started_at;
      new.answer_inferred := true;
    end if;
  elsif new.status is distinct from old.status then
    if new.status <> all (private.allowed_voice_call_transitions(old.status)) then
      raise exception 'A % call cannot become %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(private.allowed_voice_call_transitions(old.status))))::text;
    end if;
  else
    return new;
  end if;
  -- Answered when it goes in progress (or starts so, or completes without an answer on
  -- record). A replaced end keeps the answer it had, and a call that was ringing and ends
  -- failed or missed was never answered.
  if new.status in ('in_progress', 'completed') and not v_replaces and new.answered_at is null then
    new.answered_at := greatest(now(), new.started_at);
    new.answer_inferred := true;
  end if;
  if new.status in ('completed', 'failed', 'missed') then
    -- An event's end before the start (or the answer) is taken as the later of the two.
    new.ended_at := greatest(coalesce(new.ended_at, now()), new.started_at, new.answered_at);
    if new.answered_at is null then
      new.duration_seconds := 0;
    else
      -- Capped at the column's range: a start reported decades early must not make the
      -- end (or the sweep) fail.
      new.duration_seconds := coalesce(new.duration_seconds,
        least(greatest(0, floor(extract(epoch from new.ended_at - new.answered_at))), 2147483647)::int);
    end if;
  end if;
  return new;
end;
$$;

-- Redefined (20261203110000_voice_sweep_fairness.sql): a ringing call ended completed is
-- answered at its start, a guess.
create or replace function private.voice_call_ended(
  p_tenant_id uuid, p_provider_call_id text, p_status text, p_ended_at timestamptz, p_duration_seconds int,
  p_outcome text, p_cost numeric, p_summary text, p_recording_path text
) returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  c public.voice_calls;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select * into c from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id
  for no key update;
  if c.id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if c.status not in ('ringing', 'in_progress') and c.timed_out_at is null then
    return query select false, c.id, c.status;
    return;
  end if;
  if c.status = 'ringing' and p_status = 'completed' then
    update public.voice_calls v set status = 'in_progress', answered_at = v.started_at, answer_inferred = true
    where v.tenant_id = p_tenant_id and v.id = c.id;
  end if;
  update public.voice_calls v set
    status = p_status,
    ended_at = coalesce(p_ended_at,
                        case when c.timed_out_at is not null then private.voice_call_last_event_at(p_tenant_id, c.id) end,
                        now()),
    duration_seconds = p_duration_seconds,
    outcome = coalesce(p_outcome, v.outcome),
    cost = coalesce(p_cost, v.cost),
    summary = coalesce(p_summary, v.summary),
    recording_path = coalesce(p_recording_path, v.recording_path)
  where v.tenant_id = p_tenant_id and v.id = c.id;
  return query select true, c.id, p_status;
end;
$$;

-- Redefined (20261207149000_review_of_this_stops_migrations.sql): a guessed answer gives
-- way to the first that names its time.
create or replace function private.voice_call_answered(p_tenant_id uuid, p_provider_call_id text, p_answered_at timestamptz)
returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
set lock_timeout = '30s'
as $$
#variable_conflict use_column
declare
  c public.voice_calls;
  v_at timestamptz;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select * into c from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id
  for no key update;
  if c.id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if c.status = 'ringing' then
    update public.voice_calls v
    set status = 'in_progress', answered_at = least(greatest(coalesce(p_answered_at, now()), v.started_at), now())
    where v.tenant_id = p_tenant_id and v.id = c.id;
    return query select true, c.id, 'in_progress'::text;
    return;
  end if;
  -- Answered by a guess (first segments, a completed end of a ringing call): the first
  -- answer that names its time replaces it, and a duration that was the end less the
  -- guess is counted again from it (the call minutes follow, call_minutes_recounted).
  if c.answer_inferred and p_answered_at is not null then
    v_at := least(greatest(p_answered_at, c.started_at), coalesce(c.ended_at, now()), now());
    update public.voice_calls v
    set answered_at = v_at, answer_inferred = false,
        duration_seconds = case
          when v.ended_at is not null and (v.duration_seconds is null or v.duration_seconds =
               least(greatest(0, floor(extract(epoch from v.ended_at - c.answered_at))), 2147483647)::int)
          then least(greatest(0, floor(extract(epoch from v.ended_at - v_at))), 2147483647)::int
          else v.duration_seconds end
    where v.tenant_id = p_tenant_id and v.id = c.id;
    return query select true, c.id, c.status;
    return;
  end if;
  -- Ended provisionally by the sweep and never answered: the late answer is recorded (the
  -- call stays ended until the provider's end, which then counts from it), as late
  -- segments are; the provisional end moves to the answer if it was before it.
  if c.timed_out_at is not null and c.answered_at is null then
    v_at := least(greatest(coalesce(p_answered_at, now()), c.started_at), now());
    update public.voice_calls v set answered_at = v_at, ended_at = greatest(v.ended_at, v_at)
    where v.tenant_id = p_tenant_id and v.id = c.id;
    return query select true, c.id, c.status;
    return;
  end if;
  -- Ended failed by the provider before its answer arrived (the answer's delivery retried
  -- after the end's): the answer is recorded and the duration counted from it to the end.
  -- Not a call ended missed (never picked up), nor an answer without its time (now would
  -- be after the end: answered at the end, 0 s, and the retry that names the time ignored).
  if c.status = 'failed' and c.answered_at is null and p_answered_at is not null then
    v_at := least(greatest(p_answered_at, c.started_at), c.ended_at);
    update public.voice_calls v
    set answered_at = v_at,
        duration_seconds = least(greatest(0, floor(extract(epoch from v.ended_at - v_at))), 2147483647)::int
    where v.tenant_id = p_tenant_id and v.id = c.id;
    return query select true, c.id, c.status;
    return;
  end if;
  return query select false, c.id, c.status;
end;
$$;
