-- Stale calls (issue 14): a call whose end never comes (the provider crashed, its
-- webhook was lost for good) used to stay ringing or in progress for ever — counted as
-- live, never in a completed report, its duration unknown. A sweep now ends it
-- provisionally, and the call's real end, should it still come, replaces that end:
--
-- * Stale: ringing with no answer 15 minutes after it started (providers give up ringing
--   within minutes), or in progress with no event — answer or transcript segment — for
--   4 hours (Twilio's default call time limit; the rule measures silence, not length).
--   Both bounds are the sweep function's parameters. A deleted tenant's calls are left
--   alone: it takes nothing more (20261202160000_voice_events_tenant_state.sql).
-- * Ended provisionally: ringing → missed, in progress → failed, through the status
--   machine like any end; ended_at is the call's last event (so the duration counts
--   only what is known), and timed_out_at says when and that the end was the sweep's.
--   call.ended goes out as for any end, marked provisional.
-- * The real end replaces it once: an update of a timed-out call's status — the
--   provider's late call.ended, or staff ending a call they logged by hand — clears
--   timed_out_at and may say any end the call could have reached from where the sweep
--   found it (a missed call was ringing: completed, failed or missed; a failed one was in
--   progress: completed or failed). What the end leaves out stays what is known (the
--   last event's time). call.ended goes out again, marked as replacing the provisional
--   one. After it the call is ended as any other: repeats change nothing.
-- * Late transcript segments of a timed-out call are stored, so its record is whole; the
--   call stays ended until its real end.
-- * Nobody but the sweep sets the mark, and nobody clears it by hand (no column privilege).
--
-- The sweep is the job task `voice-stale-calls`, every minute (private.job_schedules).
-- It takes its candidates FOR NO KEY UPDATE SKIP LOCKED (a call an event holds is left
-- to that event), then ends each one in its own statement, which re-reads the call's
-- last event once the lock is held (a segment committed since the candidates were read
-- counts) and a subtransaction, so one call that cannot be ended stops no other.

alter table public.voice_calls add column timed_out_at timestamptz;
comment on column public.voice_calls.timed_out_at is
  'When the stale-call sweep ended this call for want of its end event; null once the provider''s end came.';
-- The audit trail renders the new timestamp as the API does (its trigger lists them).
select private.enable_audit('public.voice_calls');

-- The sweep's candidates, without reading every call of every tenant: open calls are few.
create index voice_calls_open_idx on public.voice_calls (started_at) where status in ('ringing', 'in_progress');

-- ------------------------------------------------------------------ the status machine

-- Redefined: as 20261202090300_voice_calls.sql, and the status written on a timed-out
-- call is its real end replacing the provisional one (see the top of this file): not a
-- transition of the machine, but one of the ends the call could reach from the status the
-- sweep found it in; the mark is cleared, a completed call was answered (at its start if
-- nothing said when), and the end is stamped like any end.
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
  -- A replaced end keeps the answer it had: a call that was ringing and ends failed was
  -- never answered.
  if new.status <> 'ringing' and new.status <> 'missed' and not v_replaces then
    new.answered_at := coalesce(new.answered_at, now());
  end if;
  if new.status in ('completed', 'failed', 'missed') then
    new.ended_at := coalesce(new.ended_at, now());
    -- Capped at the column's range: a start reported decades early must not make the end
    -- (or the sweep) fail.
    new.duration_seconds := coalesce(new.duration_seconds, case when new.answered_at is not null
      then least(greatest(0, floor(extract(epoch from new.ended_at - new.answered_at))), 2147483647)::int else 0 end);
  end if;
  return new;
end;
$$;

-- ------------------------------------------------------------------ webhooks

-- Redefined: as 20261202090700_voice_webhooks.sql, and call.ended again when a real end
-- replaces the sweep's provisional one. Every call.ended says which it is: `provisional`
-- (the sweep's end, data.timed_out_at set) and `replaces_provisional` (this end corrects
-- an earlier provisional call.ended of the same call).
create or replace function private.voice_webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row jsonb;
  v_type text;
  v_key text;
  v_marks jsonb := '{}';
begin
  if tg_table_name = 'voice_calls' then
    if tg_op = 'INSERT' then
      v_type := 'call.started';
    elsif new.status in ('completed', 'failed', 'missed')
      and (old.status not in ('completed', 'failed', 'missed') or (old.timed_out_at is not null and new.timed_out_at is null)) then
      v_type := 'call.ended';
      v_marks := jsonb_build_object('provisional', new.timed_out_at is not null,
                                    'replaces_provisional', old.timed_out_at is not null and new.timed_out_at is null);
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
                       'occurred_at', private.api_timestamp(clock_timestamp())) || v_marks);
  return null;
end;
$$;

-- ------------------------------------------------------------------ the provider's events

-- Redefined: as 20261202160000_voice_events_tenant_state.sql, and a timed-out call takes
-- its late segments (stored; the call stays ended until its real end).
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
-- call replaces its provisional end once (the status trigger checks the end and clears
-- the mark): without an end time the call keeps its last known event's, and without a
-- duration the trigger counts it from the answer to that end.
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
    ended_at = coalesce(p_ended_at, case when c.timed_out_at is not null then v.ended_at end, now()),
    duration_seconds = p_duration_seconds,
    outcome = coalesce(p_outcome, v.outcome),
    cost = coalesce(p_cost, v.cost),
    summary = coalesce(p_summary, v.summary),
    recording_path = coalesce(p_recording_path, v.recording_path)
  where v.tenant_id = p_tenant_id and v.id = c.id;
  return query select true, c.id, p_status;
end;
$$;

-- ------------------------------------------------------------------ the sweep

-- A call's last event: its start, its answer or its newest transcript segment.
create function private.voice_call_last_event_at(p_tenant_id uuid, p_call_id uuid) returns timestamptz
language sql stable
set search_path = ''
as $$
  select greatest(c.started_at, c.answered_at,
                  (select max(g.created_at) from public.voice_call_segments g
                   where g.tenant_id = c.tenant_id and g.call_id = c.id))
  from public.voice_calls c where c.tenant_id = p_tenant_id and c.id = p_call_id
$$;
revoke all on function private.voice_call_last_event_at(uuid, uuid) from public, anon, authenticated;
grant execute on function private.voice_call_last_event_at(uuid, uuid) to service_role;

-- Ends the stale calls of every tenant but deleted ones provisionally (see the top of this
-- file), at most p_limit per run, oldest first; returns how many.
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
  r record;
  v_n int := 0;
  v_one int;
begin
  -- The stale calls, locked as the loop reads them; a call an event holds is skipped and,
  -- if still stale, taken by the next run. A call in progress for less than p_silent_for
  -- reads no segments.
  for r in
    select c.tenant_id, c.id
    from public.voice_calls c
    join public.tenants t on t.id = c.tenant_id and t.status <> 'deleted'
    where c.status in ('ringing', 'in_progress')
      and c.started_at < p_now - least(p_ringing_for, p_silent_for)
      and case when c.status = 'ringing' then c.started_at < p_now - p_ringing_for
               else c.started_at < p_now - p_silent_for
                    and private.voice_call_last_event_at(c.tenant_id, c.id) < p_now - p_silent_for end
    order by c.started_at, c.tenant_id, c.id
    limit p_limit
    for no key update of c skip locked
  loop
    begin
      -- A statement of its own, so the last event is read again with the lock held: a
      -- segment committed since the candidates were read counts.
      update public.voice_calls v set
        status = case when v.status = 'ringing' then 'missed' else 'failed' end,
        ended_at = e.last_event_at,
        timed_out_at = p_now
      from (select private.voice_call_last_event_at(r.tenant_id, r.id) as last_event_at) e
      where v.tenant_id = r.tenant_id and v.id = r.id
        and v.status in ('ringing', 'in_progress')
        and e.last_event_at < p_now - case when v.status = 'ringing' then p_ringing_for else p_silent_for end;
      get diagnostics v_one = row_count;
      v_n := v_n + v_one;
    exception when others then
      raise warning 'voice-stale-calls: call % of tenant % not ended: % (%)', r.id, r.tenant_id, sqlerrm, sqlstate;
    end;
  end loop;
  return v_n;
end;
$$;
revoke all on function private.run_voice_stale_call_sweep(timestamptz, interval, interval, int) from public, anon, authenticated;
grant execute on function private.run_voice_stale_call_sweep(timestamptz, interval, interval, int) to service_role;

insert into private.job_schedules (name, task, every, next_run_at) values
  ('voice-stale-calls', 'voice-stale-calls', interval '1 minute', now());
