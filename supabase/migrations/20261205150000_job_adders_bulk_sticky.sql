-- The job adders' lock, after a second review (issue 14;
-- 20261205140000_job_adders_lock_order.sql):
--
-- * Bulk mode did not last. A call that went past the bound (say 63 locks taken and a key
--   and a queue asked for) took the tenant's lock exclusively without counting, so the
--   next call asking for one lock was back under the bound: it asked for its key's lock
--   while holding the tenant's lock exclusively. An adder holding that key and waiting
--   for the tenant's share lock closed a cycle (40P01). Past the bound, a transaction now
--   stays past it: it counts 65 and takes no key or queue lock again.
-- * A running job's hand-over took the job's queue lock after the tenant's share lock: an
--   adder could hold the share lock while waiting for a queue a bulk writer had taken in
--   its first 64, and the writer's exclusive request closed a cycle. The adder now looks,
--   under its key's lock, for the key's running job and takes that job's queue lock with
--   its own, before the tenant's. Only a job that starts running between that look and
--   the insert (a worker's claim, microseconds) still hands over after the share lock.
-- * Re-enabling an endpoint: its upsert now leaves a running job alone as add_job does
--   (none is left by then: the running ones were handed over under their row locks), and
--   its comment no longer says emitters are the only other adders (call.* and
--   customer.created writers take no outbox lock; they write new deliveries, whose keys
--   are new, and see the endpoint disabled until the re-enable commits).

-- Redefined (20261205140000): bulk mode lasts to commit; the running job's queue is
-- locked before the tenant's share lock.
create or replace function private.add_job(
  p_task text,
  p_payload jsonb default '{}'::jsonb,
  p_job_key text default null,
  p_run_at timestamptz default null,
  p_max_attempts int default null,
  p_queue text default null,
  p_job_key_mode text default 'replace'
) returns private.jobs
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.jobs;
  v_queue text := p_queue;
  v_running_queue text;
  v_handed text;
  v_run_at timestamptz := coalesce(p_run_at, now());
  v_max int := coalesce(p_max_attempts, 25);
  v_tenant uuid := (p_payload ->> 'tenant_id')::uuid;
  -- Key and queue locks this transaction has taken in add_job (65: past the bound).
  v_taken int := coalesce(nullif(pg_catalog.current_setting('private.job_locks_taken', true), ''), '0')::int;
  v_needed int := (p_job_key is not null)::int + (p_queue is not null)::int;
  v_bulk boolean := false;
begin
  if p_job_key_mode is null or p_job_key_mode not in ('replace', 'preserve_run_at') then
    raise exception 'job_key_mode must be replace or preserve_run_at' using errcode = '22023';
  end if;
  if v_needed > 0 then
    if v_taken + v_needed > 64 then
      -- Past the bound, to commit: the tenant's adders wait for this transaction instead.
      v_bulk := true;
      perform pg_catalog.pg_advisory_xact_lock(private.job_adders_lock_key(v_tenant));
      if v_taken <= 64 then
        perform pg_catalog.set_config('private.job_locks_taken', '65', true);
      end if;
    else
      -- The key's lock, the queues' (the given one, the running job's), then the tenant's
      -- in share mode: an adder waiting for a key or queue holds no tenant lock a bulk
      -- writer could be waiting for.
      if p_job_key is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-key:' || p_job_key, 0));
        -- Under the key's lock only workers change its job: a running one keeps its queue.
        select coalesce(j.queue, v_queue, 'job:' || p_job_key) into v_running_queue
        from private.jobs j where j.job_key = p_job_key and j.locked_by is not null;
      end if;
      if v_queue is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
      end if;
      if v_running_queue is distinct from v_queue and v_running_queue is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_running_queue, 0));
        v_needed := v_needed + 1;
      end if;
      perform pg_catalog.pg_advisory_xact_lock_shared(private.job_adders_lock_key(v_tenant));
      v_taken := v_taken + v_needed;
      perform pg_catalog.set_config('private.job_locks_taken', v_taken::text, true);
    end if;
  end if;
  if p_job_key is null then
    insert into private.jobs (task, payload, tenant_id, queue, run_at, max_attempts)
    values (p_task, coalesce(p_payload, '{}'::jsonb), v_tenant, v_queue, v_run_at, v_max)
    returning * into v_job;
    return v_job;
  end if;
  for i in 1..5 loop
    insert into private.jobs as j (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
    values (p_task, coalesce(p_payload, '{}'::jsonb), v_tenant, v_queue, p_job_key, v_run_at, v_max)
    on conflict (job_key) where job_key is not null do update set
      task = excluded.task, payload = excluded.payload, tenant_id = excluded.tenant_id, queue = excluded.queue,
      max_attempts = excluded.max_attempts,
      run_at = case when p_job_key_mode = 'preserve_run_at' and j.dead_at is null then j.run_at else excluded.run_at end,
      attempts = 0, last_error = null, dead_at = null
    where j.locked_by is null
    returning * into v_job;
    if v_job.id is not null then
      return v_job;
    end if;
    -- The key's job is running: it lets go of the key and the new job waits behind it.
    -- (None found: it finished meanwhile; the insert tries again with the given queue.)
    v_handed := null;
    update private.jobs j set job_key = null, queue = coalesce(j.queue, v_queue, 'job:' || p_job_key)
    where j.job_key = p_job_key and j.locked_by is not null
    returning j.queue into v_handed;
    if v_handed is not null then
      if not v_bulk and v_handed is distinct from v_queue and v_handed is distinct from v_running_queue then
        -- The job started running after the look above: its queue's lock after the
        -- tenant's share lock, the one order left that can wait on a bulk writer.
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_handed, 0));
        v_taken := v_taken + 1;
        perform pg_catalog.set_config('private.job_locks_taken', v_taken::text, true);
      end if;
      v_queue := v_handed;
    end if;
  end loop;
  raise exception 'could not add job %: its key kept changing hands', p_job_key using errcode = '40001';
end;
$$;

-- Redefined (20261205140000): the upsert leaves a running job alone, as add_job does.
create or replace function private.webhook_endpoint_requeue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.enabled and not old.enabled then
    -- The tenant's emitters that lock (tickets, messages, memberships, ...) wait for this
    -- lock; the unlocked ones (call.*, customer.created) write new deliveries only and
    -- see this endpoint disabled until commit. No other adder has a pending delivery's key.
    perform pg_catalog.pg_advisory_xact_lock(private.webhook_tenant_lock_key(new.tenant_id));
    -- The jobs the pending deliveries already have, locked (job rows last, in id order):
    -- a worker claims none of them meanwhile (claims skip locked rows).
    perform from private.jobs j
    where j.job_key in (select 'delivery:' || d.id from private.webhook_deliveries d
                        where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending')
    order by j.id
    for update of j;
    -- A running one keeps running without its key; the new job waits behind it in the
    -- delivery's queue, which is its queue too.
    update private.jobs j set job_key = null
    from private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
      and j.job_key = 'delivery:' || d.id and j.locked_by is not null;
    -- A pending or dead one starts over; a delivery without a job gets one.
    insert into private.jobs as j (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
    select 'deliver-webhook', jsonb_build_object('tenant_id', d.tenant_id, 'delivery_id', d.id), d.tenant_id,
           'webhook:' || d.endpoint_id || ':' || d.ordering_key, 'delivery:' || d.id, pg_catalog.now(), 25
    from private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
    order by d.id
    on conflict (job_key) where job_key is not null do update set
      task = excluded.task, payload = excluded.payload, tenant_id = excluded.tenant_id, queue = excluded.queue,
      max_attempts = excluded.max_attempts, run_at = excluded.run_at, attempts = 0, last_error = null, dead_at = null
    where j.locked_by is null;
  end if;
  return null;
end;
$$;
