-- The job adders' lock, after a review of 20261205110000_job_adders_bounded_locks.sql
-- (issue 14):
--
-- * Re-enabling an endpoint deadlocked with ordinary ticket writes. It took the tenant's
--   outbox lock exclusively, then re-queued its pending deliveries through add_job, which
--   past 64 locks asks for the tenant's job adders' lock exclusively; a ticket update
--   takes the job adders' lock in share mode (its automation or assign-ticket job), then
--   the outbox lock in share mode (its webhook event): each waited for the other. The
--   re-enable no longer goes through add_job. Holding the tenant's outbox lock
--   exclusively, it is the only adder of its deliveries' keys and queues (emitters, the
--   only other ones, wait for that lock), so it writes their jobs in one statement with
--   add_job's rules, after locking the jobs those keys already have (a worker claims
--   none of them meanwhile: claims skip locked rows): a pending or dead job starts over,
--   a running one keeps running without its key and the new job waits behind it in the
--   delivery's queue. It takes no job lock at all.
-- * add_job took the tenant's lock in share mode before the queue's, so an adder could
--   hold it while waiting for a queue lock a bulk writer had taken in its first 64; the
--   bulk writer's exclusive request then closed a cycle within one add_job call. The
--   order is now the key's lock, the queue's, then the tenant's in share mode.
-- * The bound counted a key and a queue taken together at 63 (65 then), and not the
--   queue lock of a running job's hand-over. A call now goes past the bound when its own
--   locks would exceed 64, and a hand-over's lock counts.
-- * A running job that finished between add_job's insert and its hand-over left the new
--   job without the queue it was given (the hand-over's `returning` set it to null); the
--   given queue is kept now.
--
-- What remains, said more exactly than 20261205110000's header does: a transaction of the
-- tenant that has added a job (so holds the job adders' lock in share mode) and then waits
-- for anything a bulk writer of the tenant holds (a ticket's row, a key or queue lock of
-- its first 64) deadlocks with it when the bulk writer asks for the lock exclusively;
-- Postgres ends one (40P01), which the functions answer 503 `retry`. Before, the first
-- transaction waited for the bulk writer. Only transactions that add more than 64 keyed or
-- queued jobs escalate.

-- Redefined (20261205110000): the lock order, the count and the hand-over's queue.
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
  v_handed text;
  v_run_at timestamptz := coalesce(p_run_at, now());
  v_max int := coalesce(p_max_attempts, 25);
  v_tenant uuid := (p_payload ->> 'tenant_id')::uuid;
  -- Key and queue locks this transaction has taken in add_job.
  v_taken int := coalesce(nullif(pg_catalog.current_setting('private.job_locks_taken', true), ''), '0')::int;
  v_needed int := (p_job_key is not null)::int + (p_queue is not null)::int;
  v_bulk boolean := false;
begin
  if p_job_key_mode is null or p_job_key_mode not in ('replace', 'preserve_run_at') then
    raise exception 'job_key_mode must be replace or preserve_run_at' using errcode = '22023';
  end if;
  if v_needed > 0 then
    if v_taken + v_needed > 64 then
      -- Past the bound: the tenant's adders wait for this transaction instead.
      v_bulk := true;
      perform pg_catalog.pg_advisory_xact_lock(private.job_adders_lock_key(v_tenant));
    else
      -- The key's lock, the queue's, then the tenant's in share mode: an adder waiting
      -- for a key or queue holds no tenant lock a bulk writer could be waiting for.
      if p_job_key is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-key:' || p_job_key, 0));
      end if;
      if v_queue is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
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
      v_queue := v_handed;
      if not v_bulk then
        -- Taken after the tenant's share lock: only when the key's job is running.
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
        v_taken := v_taken + 1;
        perform pg_catalog.set_config('private.job_locks_taken', v_taken::text, true);
      end if;
    end if;
  end loop;
  raise exception 'could not add job %: its key kept changing hands', p_job_key using errcode = '40001';
end;
$$;

-- Redefined (20261205120000_webhook_events_asked_once.sql): the jobs in one statement
-- under the tenant's outbox lock, with add_job's rules and without its locks (above).
create or replace function private.webhook_endpoint_requeue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.enabled and not old.enabled then
    perform pg_catalog.pg_advisory_xact_lock(private.webhook_tenant_lock_key(new.tenant_id));
    -- The jobs the pending deliveries already have, locked (job rows last, in id order).
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
      max_attempts = excluded.max_attempts, run_at = excluded.run_at, attempts = 0, last_error = null, dead_at = null;
  end if;
  return null;
end;
$$;
