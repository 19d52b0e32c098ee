-- Stale calls and batched segments, after review (issue 14). 20261202170000 ended stale
-- calls in one statement and let the provider's late end replace any provisional end;
-- 20261202170200 took a batch's segments as jsonb[], cast once for the whole statement.
-- A review found, and this migration mends:
--
-- * The real end replaces the provisional one by its status alone — the provider's late
--   call.ended or staff ending the call (any status update of a timed-out call) — and
--   may say only an end the call could have reached from where the sweep found it (a
--   missed call was ringing: completed, failed or missed; a failed one was in progress:
--   completed or failed); else 409 invalid_transition. A call that was ringing and ends
--   failed stays unanswered; what the end leaves out stays what is known (without an end
--   time, the last event's), where 170000 took the moment the late event came.
-- * call.ended says `provisional` (the sweep's end) and `replaces_provisional`.
-- * The sweep takes its candidates FOR NO KEY UPDATE SKIP LOCKED, then ends each in its
--   own statement — which reads the call's last event again with the lock held, so a
--   segment committed since counts — and its own subtransaction, so one call that cannot
--   be ended stops no other (a warning names it). At most 50 per run (was 500): each
--   ended call holds a subtransaction id until the run commits, and past 64 every other
--   session's snapshots overflow their cache. It leaves a deleted tenant's calls alone
--   (it takes nothing more: 20261202160000), and a call whose last event is recent is no
--   candidate, so long live calls never fill the limit.
-- * The duration is capped at the column's range: a start reported decades early must
--   not make an end (or the sweep) fail.
-- * A batch of segment events passes each event's segments as text, cast to jsonb inside
--   that event's own subtransaction: one event's bad JSON (a lone surrogate) is its own
--   422, not every event's in the batch. 170200's function is dropped for it.

-- ------------------------------------------------------------------ the status machine

-- Redefined: as 20261202170000_voice_stale_calls.sql, with the replacement rules above.
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

-- Redefined: as 20261202170000_voice_stale_calls.sql, and every call.ended says which it
-- is: `provisional` (the sweep's end, data.timed_out_at set) and `replaces_provisional`
-- (this end corrects an earlier provisional call.ended of the same call).
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

-- ------------------------------------------------------------------ the provider's end

-- Redefined: as 20261202170000_voice_stale_calls.sql; the status trigger checks a
-- replacing end and clears the mark: without an end time the call keeps its last known
-- event's, and without a duration the trigger counts it from the answer to that end.
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

-- Redefined: as 20261202170000_voice_stale_calls.sql, with the rules above; ends the stale
-- calls of every tenant but deleted ones provisionally, at most p_limit per run, oldest
-- first; returns how many.
create or replace function private.run_voice_stale_call_sweep(
  p_now timestamptz default now(),
  p_ringing_for interval default interval '15 minutes',
  p_silent_for interval default interval '4 hours',
  p_limit int default 50
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
  -- if still stale, taken by the next run. A call younger than its bound reads no
  -- segments; one whose last event is recent (staff still adding segments) is no
  -- candidate, so live calls never fill the limit.
  for r in
    select c.tenant_id, c.id
    from public.voice_calls c
    join public.tenants t on t.id = c.tenant_id and t.status <> 'deleted'
    where c.status in ('ringing', 'in_progress')
      and c.started_at < p_now - least(p_ringing_for, p_silent_for)
      and case when c.status = 'ringing' then c.started_at < p_now - p_ringing_for
               else c.started_at < p_now - p_silent_for end
      and private.voice_call_last_event_at(c.tenant_id, c.id)
          < p_now - case when c.status = 'ringing' then p_ringing_for else p_silent_for end
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

-- ------------------------------------------------------------------ batched segments

-- An event's outcome in a batch, or its error as Postgres raised it (SQLSTATE, message,
-- detail, constraint, column), which the function answers as when the event is alone;
-- the segments arrive as text and are read as jsonb here, inside the subtransaction.
create function private.voice_call_segments_append_outcome(p_tenant_id uuid, p_provider_call_id text, p_segments text)
returns jsonb
language plpgsql
set search_path = ''
as $$
declare
  r record;
  v_detail text;
  v_constraint text;
  v_column text;
begin
  select * into r from private.voice_call_segments_appended(p_tenant_id, p_provider_call_id, p_segments::jsonb);
  return jsonb_build_object('applied', r.applied, 'call_id', r.call_id, 'status', r.status);
exception when others then
  get stacked diagnostics v_detail = pg_exception_detail, v_constraint = constraint_name, v_column = column_name;
  return jsonb_build_object('error', jsonb_strip_nulls(jsonb_build_object(
    'code', sqlstate, 'message', sqlerrm, 'detail', nullif(v_detail, ''),
    'constraint_name', nullif(v_constraint, ''), 'column_name', nullif(v_column, ''))));
end;
$$;
revoke all on function private.voice_call_segments_append_outcome(uuid, text, text) from public, anon, authenticated;
grant execute on function private.voice_call_segments_append_outcome(uuid, text, text) to service_role;

drop function private.voice_call_segments_append_answer(uuid, text, jsonb);
