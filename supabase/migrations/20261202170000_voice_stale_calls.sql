-- Stale calls (issue 14): a call whose end never comes (the provider crashed, its
-- webhook was lost for good) used to stay ringing or in progress for ever — counted as
-- live, never in a completed report, its duration unknown. A sweep now ends it
-- provisionally, and the provider's real end, should it still come, replaces that end:
--
-- * Stale: ringing with no answer 15 minutes after it started (providers give up ringing
--   within minutes), or in progress with no event — answer or transcript segment — for
--   4 hours (Twilio's longest call). Both bounds are the sweep function's parameters.
-- * Ended provisionally: ringing → missed, in progress → failed, through the status
--   machine like any end; ended_at is the call's last event (so the duration counts
--   only what is known), and timed_out_at says when and that the end was the sweep's.
--   call.ended goes out as for any end, with timed_out_at set.
-- * The provider's late end is taken once: it replaces the provisional end (status,
--   times, duration, outcome, cost), clears timed_out_at and sends call.ended again.
--   After it the call is ended as any other: repeats change nothing.
-- * Late transcript segments of a timed-out call are stored, so its record is whole; the
--   call stays ended until the provider's end.
-- * Staff cannot end a call provisionally, nor clear the mark (no column privilege), and
--   a timed-out call accepts no status change from them (no transition leaves an end).
--
-- The sweep is the job task `voice-stale-calls`, every minute (private.job_schedules);
-- it locks with SKIP LOCKED, so a call that an event is ending right now is left to it.

alter table public.voice_calls add column timed_out_at timestamptz;
comment on column public.voice_calls.timed_out_at is
  'When the stale-call sweep ended this call for want of its end event; null once the provider''s end came.';
-- The audit trail renders the new timestamp as the API does (its trigger lists them).
select private.enable_audit('public.voice_calls');

-- The sweep's candidates, without reading every call of every tenant: open calls are few.
create index voice_calls_open_idx on public.voice_calls (started_at) where status in ('ringing', 'in_progress');

-- ------------------------------------------------------------------ the status machine

-- Redefined: as 20261202090300_voice_calls.sql, and the provider's end replacing a
-- provisional one (timed_out_at cleared) is not a transition of the machine — it may
-- move an ended call to another end — and is stamped like an end.
create or replace function private.voice_call_status() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_replaces boolean := tg_op = 'UPDATE' and old.timed_out_at is not null and new.timed_out_at is null;
begin
  if tg_op = 'INSERT' then
    if new.status not in ('ringing', 'in_progress') then
      raise exception 'A call starts ringing or in progress, not %', new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details',
          jsonb_build_object('from', null, 'to', new.status, 'allowed', jsonb_build_array('ringing', 'in_progress')))::text;
    end if;
  elsif v_replaces then
    if new.status not in ('completed', 'failed', 'missed') then
      raise exception 'The end of a timed-out call is replaced by an end, not %', new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', jsonb_build_array('completed', 'failed', 'missed')))::text;
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
  if new.status <> 'ringing' and new.status <> 'missed' then
    new.answered_at := coalesce(new.answered_at, now());
  end if;
  if new.status in ('completed', 'failed', 'missed') then
    new.ended_at := coalesce(new.ended_at, now());
    new.duration_seconds := coalesce(new.duration_seconds, case when new.answered_at is not null
      then greatest(0, floor(extract(epoch from new.ended_at - new.answered_at)))::int else 0 end);
  end if;
  return new;
end;
$$;

-- ------------------------------------------------------------------ webhooks

-- Redefined: as 20261202090700_voice_webhooks.sql, and call.ended again when the
-- provider's end replaces a provisional one (its data has timed_out_at null).
create or replace function private.voice_webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row jsonb;
  v_type text;
  v_key text;
begin
  if tg_table_name = 'voice_calls' then
    if tg_op = 'INSERT' then
      v_type := 'call.started';
    elsif new.status in ('completed', 'failed', 'missed')
      and (old.status not in ('completed', 'failed', 'missed') or (old.timed_out_at is not null and new.timed_out_at is null)) then
      v_type := 'call.ended';
    else
      return null;
    end if;
    v_key := 'call:' || new.id;
  else
    v_type := 'customer.created';
    v_key := 'customer:' || new.id;
  end if;
  -- Nobody listens in this tenant: nothing to build.
  if not exists (select 1 from public.webhook_endpoints e where e.tenant_id = new.tenant_id and e.enabled) then
    return null;
  end if;
  v_row := private.api_timestamps(to_jsonb(new), tg_relid);
  perform private.emit_webhook_event(new.tenant_id, v_type, v_key,
    jsonb_build_object('type', v_type, 'tenant_id', new.tenant_id, 'data', v_row,
                       'occurred_at', private.api_timestamp(clock_timestamp())));
  return null;
end;
$$;

-- ------------------------------------------------------------------ the provider's events

-- Redefined: as 20261202160000_voice_events_tenant_state.sql, and a timed-out call takes
-- its late segments (stored; the call stays ended until the provider's end).
create or replace function private.voice_call_segments_appended(p_tenant_id uuid, p_provider_call_id text, p_segments jsonb)
returns table (applied int, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_status text;
  v_timed_out_at timestamptz;
  v_n int;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select c.id, c.status, c.timed_out_at into v_id, v_status, v_timed_out_at from public.voice_calls c
  where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id
  for no key update;
  if v_id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  if v_status not in ('ringing', 'in_progress') and v_timed_out_at is null then
    return query select 0, v_id, v_status;
    return;
  end if;
  if v_status = 'ringing' then
    update public.voice_calls c set status = 'in_progress' where c.tenant_id = p_tenant_id and c.id = v_id;
    v_status := 'in_progress';
  end if;
  insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content, offset_ms)
  select p_tenant_id, v_id, s.seq, s.speaker, s.content, coalesce(s.offset_ms, 0)
  from jsonb_to_recordset(p_segments) as s(seq int, speaker text, content text, offset_ms int)
  order by s.seq
  on conflict (tenant_id, call_id, seq) do nothing;
  get diagnostics v_n = row_count;
  return query select v_n, v_id, v_status;
end;
$$;

-- Redefined: as 20261202160000_voice_events_tenant_state.sql, and the end of a timed-out
-- call replaces its provisional end once (what the event leaves out is the provider's
-- to say, so the sweep's end time and duration do not survive it; a completed call was
-- answered, at its start if nothing said when).
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
    update public.voice_calls v set status = 'in_progress', answered_at = v.started_at
    where v.tenant_id = p_tenant_id and v.id = c.id;
  end if;
  update public.voice_calls v set
    status = p_status,
    answered_at = case when c.timed_out_at is not null and p_status = 'completed'
                       then coalesce(v.answered_at, v.started_at) else v.answered_at end,
    ended_at = coalesce(p_ended_at, now()),
    duration_seconds = p_duration_seconds,
    outcome = coalesce(p_outcome, v.outcome),
    cost = coalesce(p_cost, v.cost),
    summary = coalesce(p_summary, v.summary),
    recording_path = coalesce(p_recording_path, v.recording_path),
    timed_out_at = null
  where v.tenant_id = p_tenant_id and v.id = c.id;
  return query select true, c.id, p_status;
end;
$$;

-- ------------------------------------------------------------------ the sweep

-- Ends the stale calls of every tenant provisionally (see the top of this file), at most
-- p_limit per run, oldest first; returns how many. A call whose event holds its lock is
-- skipped (SKIP LOCKED) and, if still stale, taken by the next run.
create function private.run_voice_stale_call_sweep(
  p_now timestamptz default now(),
  p_ringing_for interval default interval '15 minutes',
  p_silent_for interval default interval '4 hours',
  p_limit int default 500
) returns int
language plpgsql
set search_path = ''
as $$
declare
  v_n int;
begin
  with stale as (
    select c.tenant_id, c.id, c.status, e.last_event_at
    from public.voice_calls c
    -- Its last event: the start, the answer or the newest segment (a ringing call has none).
    cross join lateral (
      select greatest(c.started_at, c.answered_at,
                      (select max(g.created_at) from public.voice_call_segments g
                       where g.tenant_id = c.tenant_id and g.call_id = c.id)) as last_event_at
    ) e
    where c.status in ('ringing', 'in_progress')
      and c.started_at < p_now - least(p_ringing_for, p_silent_for)
      -- The start first: a call in progress for less than p_silent_for reads no segments.
      and case when c.status = 'ringing' then c.started_at < p_now - p_ringing_for
               else c.started_at < p_now - p_silent_for and e.last_event_at < p_now - p_silent_for
          end
    order by c.started_at, c.tenant_id, c.id
    limit p_limit
    for no key update of c skip locked
  )
  update public.voice_calls v set
    status = case when s.status = 'ringing' then 'missed' else 'failed' end,
    ended_at = s.last_event_at,
    timed_out_at = p_now
  from stale s
  where v.tenant_id = s.tenant_id and v.id = s.id;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
revoke all on function private.run_voice_stale_call_sweep(timestamptz, interval, interval, int) from public, anon, authenticated;
grant execute on function private.run_voice_stale_call_sweep(timestamptz, interval, interval, int) to service_role;

insert into private.job_schedules (name, task, every, next_run_at) values
  ('voice-stale-calls', 'voice-stale-calls', interval '1 minute', now());
