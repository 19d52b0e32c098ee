-- The stale-call sweep's candidates, after a review of 20261203110000 (issue 14): taking
-- turns between tenants, it found every open call older than 15 minutes of every tenant
-- and read each one's last event before numbering them, so a tenant's growing backlog
-- (the very flood that turn-taking answers) made every run slower. Each tenant now gives
-- at most the run's limit of candidates, read in order from an index of its open calls,
-- and the turns are taken among those.

create index voice_calls_open_tenant_idx on public.voice_calls (tenant_id, started_at, id)
  where status in ('ringing', 'in_progress');
-- The index of open calls by start alone served the sweep's one ordered scan across
-- tenants, which is gone.
drop index public.voice_calls_open_idx;

-- Redefined (20261203110000_voice_sweep_fairness.sql): each tenant's candidates bounded.
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
      from public.tenants t
      -- At most p_limit candidates of each tenant, read in the order of its open calls'
      -- index: a tenant's backlog costs a run no more than its first p_limit calls.
      cross join lateral (
        select v.tenant_id, v.id, v.started_at
        from public.voice_calls v
        where v.tenant_id = t.id
          and v.status in ('ringing', 'in_progress')
          and v.started_at < p_now - least(p_ringing_for, p_silent_for)
          and case when v.status = 'ringing' then v.started_at < p_now - p_ringing_for
                   else v.started_at < p_now - p_silent_for end
          and private.voice_call_last_event_at(v.tenant_id, v.id)
              < p_now - case when v.status = 'ringing' then p_ringing_for else p_silent_for end
        order by v.started_at, v.id
        limit p_limit
      ) c
      where t.status <> 'deleted'
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
