-- A call's answer that arrives after its end is not lost (review, issue 14).
--
-- The provider delivers and retries each event on its own, so `call.answered` can come
-- after `call.ended`. A call still ringing that the provider ended as `failed` (it dropped
-- after ten minutes of talk) was then stored as never answered, 0 seconds and no call
-- minutes (a failed end's duration is not taken without an answer: a busy line's is its
-- ringing, 20261206160000), and the late answer was `applied: false` (taken only for a
-- call ringing, or one the stale-call sweep ended): an answered call recorded as
-- unanswered, its minutes never counted. Now the late answer of a failed call with no
-- answer on record is taken: the answer recorded, the duration counted from it to the
-- end (call minutes follow the duration). A call ended `missed` was never picked up and
-- takes no answer, as before.

-- Redefined (20261206155000_late_answer_of_a_timed_out_call.sql): the late answer of a
-- call the provider ended failed is taken; the lock wait bound of 20261206034000 kept.
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
  -- Not a call ended missed (never picked up).
  if c.status = 'failed' and c.answered_at is null then
    v_at := least(greatest(coalesce(p_answered_at, now()), c.started_at), c.ended_at);
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
