-- A call's answer arriving after the stale-call sweep ended it provisionally was
-- dropped: call.answered applied only to ringing calls, while late transcript segments
-- and the provider's late end are taken (20261202170000). When `call.started` came late
-- (an outage) the sweep could end the call as missed within a minute, before the
-- answer's retry; the provider's end then set the answer to the start, counting the
-- ringing in the duration and the billed minutes. Now a timed-out call that was never
-- answered takes its late answer: the call stays ended, its mark kept (the status
-- trigger runs on status changes only), until the provider's end, which counts from it.

-- Redefined (20261202190300_voice_call_answered.sql): a timed-out call takes its late
-- answer; the lock wait bound of 20261206034000 kept.
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
  return query select false, c.id, c.status;
end;
$$;
