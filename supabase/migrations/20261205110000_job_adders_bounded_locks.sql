-- add_job takes a bounded number of locks per transaction (issue 14, after
-- 20261205100000_webhook_outbox_bounded_locks.sql: the same hole in the job queue).
--
-- private.add_job took, for every job with a key, the key's advisory lock, and for every
-- job in a named queue, the queue's: transaction-scoped, held to commit, in the lock
-- table the whole server shares (sized for about 64 locks a transaction). Triggers add
-- jobs per row: a ticket given a team and no assignee adds its assign-ticket job (a key),
-- and every ticket event a tenant's automation rules listen to adds an automation job (a
-- queue per ticket). Measured: a tenant admin's update of 3,000 tickets' team through
-- PostgREST held 3,000 advisory locks, 6,000 with an automation rule on ticket.updated,
-- and 20,000 tickets 20,000 locks; re-enabling a webhook endpoint with pending
-- deliveries, two per delivery. Tickets have no row limit, so one request could fill
-- the lock table, and every tenant's transactions that need a lock meanwhile fail with
-- "out of shared memory".
--
-- Now, as the outbox does: every job queue's adders belong to one tenant (the job's
-- payload.tenant_id, or none), and each tenant has one more lock, its job adders' lock.
-- * An adder of a job with a key or a queue takes the key's lock, then its tenant's job
--   adders' lock in share mode, then the queue's: adders of different keys and queues
--   never wait for each other, as before.
-- * A transaction that has taken 64 key and queue locks adds its further jobs under the
--   tenant's job adders' lock in exclusive mode instead, and takes no key or queue lock:
--   it waits for the tenant's adders under way to commit and holds back the others until
--   it commits, so a key still has one adder at a time and a queue's ids stay in commit
--   order. It holds at most 64 (and the two of one running job's hand-over) key and queue
--   locks, and two per tenant. A tenant's bulk writes take turns with its other job
--   adders; no other tenant waits for them. Two bulk writers of one tenant, or a writer
--   holding a key a bulk write needs, can deadlock; Postgres ends one (40P01), which the
--   functions answer 503 `retry`.
-- * A job with neither key nor queue takes no lock, as before.
-- This rests on one rule, kept by every caller: a key or queue names its tenant's work
-- only (assign-ticket:<tenant>:<ticket>, automation:<ticket>, webhook:<endpoint>:…,
-- delivery:<id>, provision:<tenant>:…, chatwoot:<tenant>:…, voice-erasure-trail:<tenant>:…,
-- storage-delete:call-recordings/<tenant>/…), and every job added with it carries that
-- tenant in its payload. The lock order of 20261126100350_jobs.sql becomes: the key's
-- lock, the tenant's job adders' lock, the queue's lock, then job rows.

-- The key of a tenant's job adders' lock (none: jobs for no tenant), one place for
-- add_job and its tests.
create function private.job_adders_lock_key(p_tenant_id uuid) returns bigint
language sql immutable parallel safe
set search_path = ''
as $$
  select pg_catalog.hashtextextended('job-adders:' || coalesce(p_tenant_id::text, 'none'), 0)
$$;
revoke all on function private.job_adders_lock_key(uuid) from public, anon, authenticated;

-- Redefined (20261126100350_jobs.sql): bounded locks, as above. The jobs written are the
-- same, with the same rules for a key's pending, dead and running job.
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
  v_run_at timestamptz := coalesce(p_run_at, now());
  v_max int := coalesce(p_max_attempts, 25);
  v_tenant uuid := (p_payload ->> 'tenant_id')::uuid;
  -- Key and queue locks this transaction has taken in add_job.
  v_taken int := coalesce(nullif(pg_catalog.current_setting('private.job_locks_taken', true), ''), '0')::int;
  v_bulk boolean := false;
begin
  if p_job_key_mode is null or p_job_key_mode not in ('replace', 'preserve_run_at') then
    raise exception 'job_key_mode must be replace or preserve_run_at' using errcode = '22023';
  end if;
  if p_job_key is not null or v_queue is not null then
    if v_taken >= 64 then
      -- Past the bound: the tenant's adders wait for this transaction instead.
      v_bulk := true;
      perform pg_catalog.pg_advisory_xact_lock(private.job_adders_lock_key(v_tenant));
    else
      -- Adders of one key take turns (its lock first, then the queue's), so a key's row
      -- and a queue's lock are never waited for in opposite orders.
      if p_job_key is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-key:' || p_job_key, 0));
      end if;
      perform pg_catalog.pg_advisory_xact_lock_shared(private.job_adders_lock_key(v_tenant));
      if v_queue is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
      end if;
      perform pg_catalog.set_config('private.job_locks_taken',
        (v_taken + (p_job_key is not null)::int + (v_queue is not null)::int)::text, true);
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
    update private.jobs j set job_key = null, queue = coalesce(j.queue, v_queue, 'job:' || p_job_key)
    where j.job_key = p_job_key and j.locked_by is not null
    returning j.queue into v_queue;
    if v_queue is not null and not v_bulk then
      perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
    end if;
  end loop;
  raise exception 'could not add job %: its key kept changing hands', p_job_key using errcode = '40001';
end;
$$;
