-- Deliveries the breaker deferred go out as soon as a probe gets through, not when their
-- deferral ends. An endpoint back after an outage waited up to one probe interval (at
-- most 5 minutes) before the deliveries held back meanwhile were tried again, although
-- its success had already reset the breaker (20261206130000). The deliveries deferred
-- by the breaker are now recorded by job, and the reset (a delivery got through, or an
-- admin enabled the endpoint again) makes those jobs due at once. Only these: a job
-- waiting out a receiver's Retry-After or its own backoff was never deferred by the
-- breaker and keeps its time.
--
-- A deferral is two steps: the breaker's answer (recorded here, in the delivery's
-- transaction) and the runner putting the job back (private.defer_job, its own
-- statement). A reset between the two finds the job still in the worker's hand: it
-- marks the deferral woken instead, and defer_job, finding the mark, makes the job due
-- at once. The two meet on the deferral's row (the reset updates it, defer_job reads it
-- FOR UPDATE), so whichever comes second sees the other's work; a reset finding the row
-- held by a defer_job at that instant skips it (see the reset), and that one job waits
-- out its deferral.

-- The jobs the breaker deferred (one endpoint each); gone with the reset or the deferral
-- that wakes them, or with the endpoint. A job that ended meanwhile leaves a row the
-- next reset drops.
create table private.webhook_breaker_deferrals (
  job_id bigint primary key,
  tenant_id uuid not null,
  endpoint_id uuid not null,
  woken_at timestamptz,
  foreign key (tenant_id, endpoint_id) references public.webhook_endpoints (tenant_id, id) on delete cascade
);
create index webhook_breaker_deferrals_endpoint_idx on private.webhook_breaker_deferrals (tenant_id, endpoint_id);
alter table private.webhook_breaker_deferrals enable row level security;
revoke all on private.webhook_breaker_deferrals from public, anon, authenticated, service_role;

-- The breaker's answer for this job's delivery (private.webhook_endpoint_gate), the job
-- recorded when it is to be deferred.
create function private.webhook_endpoint_gate_job(p_tenant_id uuid, p_endpoint_id uuid, p_job_id bigint)
returns numeric
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_wait numeric := private.webhook_endpoint_gate(p_tenant_id, p_endpoint_id);
begin
  if v_wait is not null then
    insert into private.webhook_breaker_deferrals (job_id, tenant_id, endpoint_id)
    values (p_job_id, p_tenant_id, p_endpoint_id)
    on conflict (job_id) do update set woken_at = null;
  else
    -- Sent now (the probe, or the endpoint healthy): no longer the breaker's to wake. A row
    -- left from an earlier deferral would have a later reset cut short whatever wait this
    -- attempt ends with (a receiver's Retry-After, its backoff).
    delete from private.webhook_breaker_deferrals w where w.job_id = p_job_id;
  end if;
  return v_wait;
end;
$$;
revoke all on function private.webhook_endpoint_gate_job(uuid, uuid, bigint) from public, anon, authenticated;
grant execute on function private.webhook_endpoint_gate_job(uuid, uuid, bigint) to service_role;

-- Redefined (20261206130000_webhook_endpoint_breaker.sql): the reset also wakes the jobs
-- the breaker deferred (deferral rows, then job rows: after the endpoint's, as the lock
-- order has it).
create or replace function private.webhook_endpoint_breaker_reset() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from private.webhook_endpoint_breakers b where b.tenant_id = new.tenant_id and b.endpoint_id = new.id;
  -- Every deferral marked first, then those whose job is back in the queue are woken; one
  -- still in a worker's hand is woken by its defer_job, which reads the mark. A deferral
  -- row a defer_job holds right now is skipped, not waited for: this runs under the
  -- probe's job row (record_webhook_attempt), and waiting here for a defer_job that waits
  -- for its own job row (a lease renewal holding it, waiting for the probe's) would close
  -- a cycle. That job then waits out its deferral, as before this migration.
  update private.webhook_breaker_deferrals w set woken_at = now()
  where w.job_id in (select d.job_id from private.webhook_breaker_deferrals d
                     where d.tenant_id = new.tenant_id and d.endpoint_id = new.id
                     for update skip locked);
  with woken as (
    delete from private.webhook_breaker_deferrals w
    where w.tenant_id = new.tenant_id and w.endpoint_id = new.id and w.woken_at is not null
      and not exists (select 1 from private.jobs j where j.id = w.job_id and j.locked_by is not null)
    returning w.job_id
  )
  update private.jobs j set run_at = now()
  where j.id in (select woken.job_id from woken)
    and j.locked_by is null and j.dead_at is null and j.run_at > now();
  return null;
end;
$$;

-- Redefined (20261206130000_webhook_endpoint_breaker.sql): a breaker deferral the reset
-- overtook (the job still in hand when the endpoint recovered) puts the job back due at
-- once.
create or replace function private.defer_job(p_worker text, p_id bigint, p_seconds int) returns boolean
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
declare
  v_woken timestamptz;
begin
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
