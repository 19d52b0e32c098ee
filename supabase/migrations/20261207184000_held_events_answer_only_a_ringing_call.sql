-- Events held for a call not started yet answer the call only while it rings (review of
-- the voice call path, issue 14).
--
-- The start replays what was held, in the order it came. A held transcript answered the
-- call at the time it arrived, and a held answer that gave no time took the time it
-- arrived, whatever the call's state by then. Since 20261207144000 an answer with a time
-- is taken for a call ended `failed` with none on record (the answer's delivery retried
-- after the end's): replayed after a held failed end, the transcript (or the answer
-- without a time) gave the call an answer at the end, 0 s, and the provider's retried
-- answer naming the real time was then ignored (`applied: false`): ten minutes of talk
-- never counted, and a call that failed from ringing shown as answered. Arriving after
-- the start, neither does that (segments of an ended call are not taken; an answer without
-- its time is no answer for a failed call). Now the replay answers the call at a held
-- event's arrival only while the call still rings, as those events would have then.

-- Redefined (20261203160000_voice_early_events_review.sql): the arrival time answers only
-- a ringing call.
create or replace function private.voice_call_apply_early_events() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  e private.voice_call_early_events;
  v_at timestamptz;
  v_claims text := current_setting('request.jwt.claims', true);
  v_ringing boolean;
begin
  perform private.voice_call_id_lock(new.tenant_id, new.provider_call_id);
  for e in
    with taken as (
      delete from private.voice_call_early_events x
      where x.tenant_id = new.tenant_id and x.provider_call_id = new.provider_call_id
      returning x.*
    )
    select * from taken order by taken.id
  loop
    continue when e.received_at < now() - interval '10 minutes';
    begin
      perform pg_catalog.set_config('request.jwt.claims', coalesce(e.claims, ''), true);
      -- What the events replayed before this one left of the call.
      select c.status = 'ringing' into v_ringing from public.voice_calls c where c.tenant_id = new.tenant_id and c.id = new.id;
      case e.type
        when 'call.answered' then
          v_at := (e.payload ->> 'answered_at')::timestamptz;
          if v_at is null and v_ringing then
            v_at := e.received_at; -- no time given: answered when it came
          end if;
          perform private.voice_call_answered(new.tenant_id, new.provider_call_id, v_at);
        when 'transcript.segments' then
          if v_ringing then
            perform private.voice_call_answered(new.tenant_id, new.provider_call_id, e.received_at);
          end if;
          perform private.voice_call_segments_appended(new.tenant_id, new.provider_call_id, e.payload -> 'segments');
        when 'call.ended' then
          v_at := greatest(coalesce((e.payload ->> 'ended_at')::timestamptz, e.received_at), new.started_at);
          perform private.voice_call_ended(new.tenant_id, new.provider_call_id, e.payload ->> 'status', v_at,
            (e.payload ->> 'duration_seconds')::int, e.payload ->> 'outcome', (e.payload ->> 'cost')::numeric,
            e.payload ->> 'summary', e.payload ->> 'recording_path');
      end case;
      perform pg_catalog.set_config('request.jwt.claims', coalesce(v_claims, ''), true);
    exception when others then
      perform pg_catalog.set_config('request.jwt.claims', coalesce(v_claims, ''), true);
      raise warning 'voice early events: % for call % of tenant % dropped: % (%)', e.type, new.id, new.tenant_id, sqlerrm, sqlstate;
    end;
  end loop;
  return null;
end;
$$;
