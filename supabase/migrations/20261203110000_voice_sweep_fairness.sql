-- The stale-call sweep and the provider's late end, after a read of the provider path
-- (issue 14):
--
-- * Fair between tenants. The sweep took its 50 calls a run oldest start first across
--   all tenants, and a reported start has no lower bound: a tenant whose provider (or
--   API key) reported calls started years ago, more than 50 a minute, kept every other
--   tenant's stuck calls from ever being ended. Tenants now take turns: every tenant's
--   oldest stale call first, then every tenant's second, and so on.
-- * A call's last event read all its transcript segments (max(created_at) had no index
--   to read it from: a call of a million segments read a million rows, for every
--   candidate of every run). An index on (tenant_id, call_id, created_at) answers it
--   with one entry.
-- * A late call.ended without an end time, after the sweep, kept the sweep's end even
--   when segments came after the sweep: the end is now the call's last event as it is
--   when the real end comes.

create index voice_call_segments_call_created_idx on public.voice_call_segments (tenant_id, call_id, created_at);

-- Redefined (20261202170300_voice_stale_calls_review.sql): the candidates take turns by
-- tenant and are locked one by one (FOR ... SKIP LOCKED cannot be combined with the
-- window that numbers them).
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
  -- A call younger than its bound reads no segments; one whose last event is recent
  -- (staff still adding segments) is no candidate, so live calls never fill the limit.
  for r in
    select s.tenant_id, s.id
    from (
      select c.tenant_id, c.id, c.started_at,
             row_number() over (partition by c.tenant_id order by c.started_at, c.id) as turn
      from public.voice_calls c
      join public.tenants t on t.id = c.tenant_id and t.status <> 'deleted'
      where c.status in ('ringing', 'in_progress')
        and c.started_at < p_now - least(p_ringing_for, p_silent_for)
        and case when c.status = 'ringing' then c.started_at < p_now - p_ringing_for
                 else c.started_at < p_now - p_silent_for end
        and private.voice_call_last_event_at(c.tenant_id, c.id)
            < p_now - case when c.status = 'ringing' then p_ringing_for else p_silent_for end
    ) s
    order by s.turn, s.started_at, s.tenant_id, s.id
    limit p_limit
  loop
    begin
      -- A call an event holds is skipped and, if still stale, taken by the next run.
      perform from public.voice_calls v where v.tenant_id = r.tenant_id and v.id = r.id
      for no key update skip locked;
      if found then
        -- Its last event is read again with the lock held: a segment committed since
        -- the candidates were read counts.
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
      end if;
    exception when others then
      raise warning 'voice-stale-calls: call % of tenant % not ended: % (%)', r.id, r.tenant_id, sqlerrm, sqlstate;
    end;
  end loop;
  return v_n;
end;
$$;

-- Redefined (20261202170300_voice_stale_calls_review.sql): a timed-out call's real end
-- without an end time is its last event now, late segments included.
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
