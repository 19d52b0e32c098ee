-- A circuit breaker per outbound webhook endpoint. An endpoint failing without pause
-- (a receiver down, or hanging until the 10 s timeout) was sent every one of its queued
-- deliveries as each came due, each on its own backoff: a tenant with many tickets'
-- events queued for a hanging receiver kept the job runner's slots busy with timeouts
-- while every other tenant's jobs waited. From its fifth failure in a row, an endpoint
-- gets one delivery as a probe, then none until the probe's interval is over
-- (10 s, doubling with each further failure, at most 5 minutes); the deliveries that
-- come due meanwhile are deferred to the interval's end without spending an attempt,
-- each still at the head of its named queue, so per-ticket order holds. A probe that
-- succeeds resets the endpoint's failures (private.record_webhook_attempt) and with them
-- its breaker, and the deferred deliveries go out as they come due. The interval starts
-- when a probe is let through, not when its answer comes: with a receiver timeout longer
-- than the interval, a second probe may go while the first still waits. The day of
-- failures that disables an endpoint (private.record_webhook_attempt) is counted from the
-- probes as before.

-- When an endpoint that trips the breaker may be probed next. Private schema, not
-- exposed; only the definer functions below touch it.
create table private.webhook_endpoint_breakers (
  tenant_id uuid not null,
  endpoint_id uuid not null,
  probe_after timestamptz not null,
  primary key (tenant_id, endpoint_id),
  foreign key (tenant_id, endpoint_id) references public.webhook_endpoints (tenant_id, id) on delete cascade
);
alter table private.webhook_endpoint_breakers enable row level security;
revoke all on private.webhook_endpoint_breakers from public, anon, authenticated, service_role;

-- An endpoint whose run of failures ends (a delivery got through, or an admin enabled it
-- again) starts afresh: its breaker goes, so failing again later it gets a probe at its
-- fifth failure rather than waiting out an interval left from before it recovered.
create function private.webhook_endpoint_breaker_reset() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from private.webhook_endpoint_breakers b where b.tenant_id = new.tenant_id and b.endpoint_id = new.id;
  return null;
end;
$$;
revoke all on function private.webhook_endpoint_breaker_reset() from public, anon, authenticated;
-- No column list: re-enabling sets only `enabled`, and the zeroing is the BEFORE trigger
-- webhook_endpoint_reenabled's, which an `update of consecutive_failures` trigger misses.
create trigger webhook_endpoint_breaker_reset
after update on public.webhook_endpoints
for each row when (new.consecutive_failures = 0 and old.consecutive_failures <> 0)
execute function private.webhook_endpoint_breaker_reset();

-- Null: send (the endpoint is healthy, or this caller is its probe); else the seconds to
-- defer the delivery by. One probe per interval however many workers ask at once: the
-- first to find the interval over takes the next one in the same statement, and the
-- others, waiting on its row lock, find the new interval and defer.
create function private.webhook_endpoint_gate(p_tenant_id uuid, p_endpoint_id uuid, p_trip_after int default 5)
returns numeric
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_failures int;
  v_until timestamptz;
begin
  select e.consecutive_failures into v_failures
  from public.webhook_endpoints e where e.tenant_id = p_tenant_id and e.id = p_endpoint_id;
  if v_failures is null or v_failures < p_trip_after then
    return null;
  end if;
  -- Tripped: read again under a share lock. A success being recorded zeroes the failures
  -- and drops the breaker under its own lock on the row (private.record_webhook_attempt,
  -- webhook_endpoint_breaker_reset): waiting for it, this sees the endpoint healthy
  -- rather than writing a breaker behind the reset's back, which would hold up the
  -- probes of a later run of failures.
  select e.consecutive_failures into v_failures
  from public.webhook_endpoints e where e.tenant_id = p_tenant_id and e.id = p_endpoint_id
  for share;
  if v_failures is null or v_failures < p_trip_after then
    return null;
  end if;
  insert into private.webhook_endpoint_breakers as b (tenant_id, endpoint_id, probe_after)
  values (p_tenant_id, p_endpoint_id,
          now() + make_interval(secs => least(300, 10 * power(2, least(v_failures - p_trip_after, 5)))))
  on conflict (tenant_id, endpoint_id) do update set probe_after = excluded.probe_after
    where b.probe_after <= now();
  if found then
    return null; -- this delivery is the probe
  end if;
  select b.probe_after into v_until
  from private.webhook_endpoint_breakers b where b.tenant_id = p_tenant_id and b.endpoint_id = p_endpoint_id;
  return greatest(1, ceil(extract(epoch from v_until - now())));
end;
$$;
revoke all on function private.webhook_endpoint_gate(uuid, uuid, int) from public, anon, authenticated;
grant execute on function private.webhook_endpoint_gate(uuid, uuid, int) to service_role;

-- Puts a claimed job back untried until p_seconds from now: its attempt is not counted
-- and it keeps its place in its named queue (the jobs behind it wait for it). False
-- when the worker's lease on it has run out (another worker may hold it now). The runner
-- calls it outside a transaction of its own, so it bounds its own lock wait, as the
-- queue's other functions do (20261206034000).
create function private.defer_job(p_worker text, p_id bigint, p_seconds int) returns boolean
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
begin
  update private.jobs j
  set locked_by = null, locked_until = null, attempts = greatest(j.attempts - 1, 0),
      run_at = now() + make_interval(secs => least(greatest(p_seconds, 1), 86400))
  where j.id = p_id and j.locked_by = p_worker and j.locked_until >= now();
  return found;
end;
$$;
revoke all on function private.defer_job(text, bigint, int) from public, anon, authenticated;
grant execute on function private.defer_job(text, bigint, int) to service_role;
