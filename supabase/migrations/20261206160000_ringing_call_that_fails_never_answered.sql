-- A call that fails while ringing was never answered.
--
-- The status trigger stamped an answer on every move out of ringing but to missed, so a
-- provider's `call.ended` with status `failed` for a call still ringing (a busy line, a
-- network error before pickup; ringing → failed is a transition of the machine) got an
-- answer at the event's arrival, its end moved to that moment (an end is never before the
-- answer), and the provider's duration kept and billed in call_minutes. The answer is now
-- stamped only on the move to in_progress; a call failing from ringing keeps no answer,
-- the end the provider gave, and 0 seconds.

-- Redefined (20261202200000_voice_calls_review.sql): no answer stamped on a failed or missed end.
create or replace function private.voice_call_status() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_replaces boolean := tg_op = 'UPDATE' and old.timed_out_at is not null;
  v_reachable text[];
begin
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
    if new.status = 'completed' then
      new.answered_at := coalesce(new.answered_at, new.started_at);
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
  if new.status in ('in_progress', 'completed') and not v_replaces then
    new.answered_at := coalesce(new.answered_at, greatest(now(), new.started_at));
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
