-- A breaker deferral is put back after a probe's success without fail (review of the
-- webhook breaker, stop 53). A probe getting through resets the breaker and wakes the
-- jobs it deferred (20261206152000); a job still in its worker's hand is marked, and its
-- defer_job finds the mark. But a reset that came while defer_job held the deferral's row
-- (waiting, say, for its job row under a lease renewal) skipped that row rather than wait
-- (a wait there could close a cycle through the probe's job row), and defer_job, reading
-- the row before the reset committed, put the job back for the whole interval: up to 5
-- minutes for a delivery to an endpoint already healthy, and the ticket's other
-- deliveries queued behind it.
--
-- defer_job now takes the endpoint's row in share mode before the deferral's. A reset runs
-- under its endpoint's row lock (an AFTER UPDATE trigger on it), so the two no longer
-- overlap: a reset in progress is waited for, and its mark read; a reset coming after
-- waits for defer_job, and then finds the job back in the queue and wakes it. Endpoint,
-- then deferral, then job is the order the reset takes them in, so no cycle: while it
-- waits for the endpoint, defer_job holds nothing, and a probe's transaction locks its
-- endpoint (private.record_webhook_attempt) before its job row.

-- Redefined (20261206152000_probe_success_wakes_deferred_deliveries.sql): the endpoint's
-- row first, in share mode, for a job the breaker deferred.
create or replace function private.defer_job(p_worker text, p_id bigint, p_seconds int) returns boolean
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
declare
  v_tenant_id uuid;
  v_endpoint_id uuid;
  v_woken timestamptz;
begin
  select w.tenant_id, w.endpoint_id into v_tenant_id, v_endpoint_id
  from private.webhook_breaker_deferrals w where w.job_id = p_id;
  if v_endpoint_id is not null then
    perform 1 from public.webhook_endpoints e where e.tenant_id = v_tenant_id and e.id = v_endpoint_id for share;
  end if;
  -- A statement of its own, so read after any reset waited for above has committed.
  select w.woken_at into v_woken from private.webhook_breaker_deferrals w where w.job_id = p_id for update;
  if v_woken is not null then
    delete from private.webhook_breaker_deferrals w where w.job_id = p_id;
  end if;
  update private.jobs j
  set locked_by = null, locked_until = null, attempts = greatest(j.attempts - 1, 0),
      run_at = case when v_woken is not null then now()
                    else now() + make_interval(secs => least(greatest(p_seconds, 1), 86400)) end
  where j.id = p_id and j.locked_by = p_worker and j.locked_until >= now();
  return found;
end;
$$;
