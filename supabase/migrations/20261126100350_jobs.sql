-- One job queue for all deferred work (ARCHITECTURE decision 8), with graphile-worker's
-- semantics: one jobs table; add_job with a job key that replaces (or keeps the run
-- time of) a pending job; claims of a batch with FOR UPDATE SKIP LOCKED under a lease;
-- batch completion (with the next claim: one commit per batch); one capped exponential
-- backoff with jitter, never sooner than a
-- Retry-After; dead after max_attempts (25) or at once for a permanent error; an
-- operator's retry; named queues that run their jobs one at a time, in order.
-- Task handlers live in shared/jobs/tasks/<task>.ts; the runner (shared/jobs/runner.ts)
-- is one Edge Function invocation (POST /functions/v1/jobs/run).
--
-- A job is
--   pending  dead_at is null and locked_by is null (due once run_at <= now());
--   running  locked_by is set and locked_until >= now() (a lease);
--   expired  locked_by is set and locked_until < now(): its worker died or is late;
--            claimable again (attempts + 1), and the late worker can no longer complete,
--            fail or record anything for it;
--   dead     dead_at is set (kept, with its last error, until retried or re-added);
--   done     deleted: domain tables keep what happened (tenant_services.state,
--            webhook deliveries and their attempts, Chatwoot replies).
--
-- Named queues: a job whose queue names a queue is claimable only while no older live
-- (not dead) job of that queue exists, so a queue runs one job at a time, in id order,
-- also while its head waits out a backoff. add_job takes a transaction-scoped advisory
-- lock per queue, so the ids of one queue are in commit order. This costs one indexed
-- probe per candidate and no extra row (graphile-worker's job_queues table would lock
-- and update a queue row on every claim and completion).
--
-- Lock order (level 9 of the rule in 20261126100000_conventions.sql): the advisory lock
-- of a job key, then that of a named queue, then job rows, always last: code that
-- changes a domain row and a job (enqueue triggers, recording progress, a failure)
-- locks the domain row first. Claims never wait (SKIP LOCKED); completion and failure
-- lock only job rows (batch completion in id order).

-- ------------------------------------------------------------------ the table

create table private.jobs (
  id bigint generated always as identity primary key,
  task text not null check (task <> '' and char_length(task) <= 63),
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  -- The tenant the job works for (payload.tenant_id, when it names one). No foreign key:
  -- a job whose tenant is gone finds nothing to do and completes, and inserts stay cheap.
  tenant_id uuid,
  queue text check (char_length(queue) <= 300),
  job_key text check (char_length(job_key) <= 300),
  run_at timestamptz not null default now(),
  attempts int not null default 0,
  max_attempts int not null default 25 check (max_attempts between 1 and 1000),
  locked_by text,
  locked_until timestamptz,
  last_error text,
  dead_at timestamptz,
  created_at timestamptz not null default now(),
  check ((locked_by is null) = (locked_until is null))
);
-- One job per key; keys are optional, and jobs without one cost this index nothing.
create unique index jobs_job_key on private.jobs (job_key) where job_key is not null;
-- What claims scan: live jobs by due time.
create index jobs_due_idx on private.jobs (run_at, id) where dead_at is null;
-- The head of a named queue.
create index jobs_queue_idx on private.jobs (queue, id) where queue is not null and dead_at is null;
create index jobs_tenant_idx on private.jobs (tenant_id) where tenant_id is not null;
-- Private schema, not exposed; RLS on (no policy) all the same, and no grant to any API
-- role: only the definer functions below touch it.
alter table private.jobs enable row level security;
revoke all on private.jobs from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ adding

-- add_job(task, payload, job_key, run_at, max_attempts, queue, job_key_mode):
-- without a key, a new job. With a key: a pending or dead job with that key takes the
-- new task, payload, queue and max_attempts and starts over (attempts 0); its run_at
-- becomes the new one ('replace', the default) or stays ('preserve_run_at'). A running
-- job with that key keeps running, without its key, and the new job is queued after it
-- in its queue (the running job's queue, else the given one, else one named after the
-- key), so the same work never runs twice at once.
create function private.add_job(
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
begin
  if p_job_key_mode is null or p_job_key_mode not in ('replace', 'preserve_run_at') then
    raise exception 'job_key_mode must be replace or preserve_run_at' using errcode = '22023';
  end if;
  -- Adders of one key take turns (its lock first, then the queue's), so a key's row and
  -- a queue's lock are never waited for in opposite orders.
  if p_job_key is not null then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-key:' || p_job_key, 0));
  end if;
  if v_queue is not null then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
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
    if v_queue is not null then
      perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
    end if;
  end loop;
  raise exception 'could not add job %: its key kept changing hands', p_job_key using errcode = '40001';
end;
$$;
revoke all on function private.add_job(text, jsonb, text, timestamptz, int, text, text) from public, anon, authenticated;
grant execute on function private.add_job(text, jsonb, text, timestamptz, int, text, text) to service_role;

-- ------------------------------------------------------------------ the worker's side

-- Completes a batch: the jobs p_worker still holds are deleted; returns their ids (the
-- others were lost to an expired lease and run again elsewhere).
create function private.complete_jobs(p_worker text, p_ids bigint[])
returns table (id bigint)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  return query
  delete from private.jobs j
  where j.id = any (p_ids) and j.locked_by = p_worker and j.locked_until >= now()
  returning j.id;
end;
$$;
revoke all on function private.complete_jobs(text, bigint[]) from public, anon, authenticated;
grant execute on function private.complete_jobs(text, bigint[]) to service_role;

-- Claims up to p_limit due jobs of the given tasks (null: any) for p_worker under a
-- lease of p_lease_seconds, attempts + 1: pending jobs whose time has come and jobs
-- whose lease ran out (their worker died), each named queue's head only. p_completed:
-- the worker's finished jobs of its previous batch, completed first in the same
-- statement (one commit per batch); they come back as rows with `completed` true when
-- the worker still held them.
create function private.claim_jobs(
  p_worker text, p_limit int default 10, p_lease_seconds int default 120, p_tasks text[] default null,
  p_completed bigint[] default null
)
returns table (id bigint, task text, payload jsonb, queue text, job_key text, attempts int, max_attempts int,
               locked_until timestamptz, completed boolean)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_completed is not null then
    return query
    select c.id, null::text, null::jsonb, null::text, null::text, null::int, null::int, null::timestamptz, true
    from private.complete_jobs(p_worker, p_completed) c;
  end if;
  -- The claimed ids as an array: the update then finds its rows by primary key, however
  -- large (or full of dead rows) the table is.
  return query
  update private.jobs j
  set locked_by = p_worker, locked_until = now() + make_interval(secs => greatest(p_lease_seconds, 1)), attempts = j.attempts + 1
  where j.id = any (array(
    select d.id from private.jobs d
    where d.dead_at is null and d.run_at <= now()
      and (d.locked_until is null or d.locked_until < now())
      and (p_tasks is null or d.task = any (p_tasks))
      and (d.queue is null or not exists (
        select 1 from private.jobs h where h.queue = d.queue and h.id < d.id and h.dead_at is null))
    order by d.run_at, d.id
    limit least(greatest(p_limit, 1), 100)
    for no key update of d skip locked))
  returning j.id, j.task, j.payload, j.queue, j.job_key, j.attempts, j.max_attempts, j.locked_until, false;
end;
$$;
revoke all on function private.claim_jobs(text, int, int, text[], bigint[]) from public, anon, authenticated;
grant execute on function private.claim_jobs(text, int, int, text[], bigint[]) to service_role;

-- True (and the job row locked until commit) while p_worker's lease on the job holds.
-- Domain functions call it after locking their own row: a late worker records nothing.
create function private.job_lease_held(p_job_id bigint, p_worker text) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  perform 1 from private.jobs j
  where j.id = p_job_id and j.locked_by = p_worker and j.locked_until >= now()
  for no key update;
  return found;
end;
$$;
revoke all on function private.job_lease_held(bigint, text) from public, anon, authenticated;
grant execute on function private.job_lease_held(bigint, text) to service_role;

-- The one backoff: 2^attempts seconds, jittered to 75–125 %, capped at an hour, never
-- sooner than the Retry-After the handler reports (up to a day).
create function private.job_backoff(p_attempts int, p_retry_after_seconds int default null) returns interval
language sql volatile security definer
set search_path = ''
as $$
  select make_interval(secs => greatest(
    least(3600, power(2, least(greatest(p_attempts, 0), 30)) * (0.75 + random() * 0.5)),
    least(coalesce(p_retry_after_seconds, 0), 86400)))
$$;
revoke all on function private.job_backoff(int, int) from public, anon, authenticated;

-- A failed attempt: retried after the backoff, or dead — at once when permanent,
-- otherwise once max_attempts are spent. 'lost' when p_worker's lease is gone.
create function private.fail_job(
  p_worker text, p_job_id bigint, p_error text, p_retry_after_seconds int default null, p_permanent boolean default false
) returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.jobs;
begin
  select * into v_job from private.jobs j
  where j.id = p_job_id and j.locked_by = p_worker and j.locked_until >= now()
  for no key update;
  if v_job.id is null then
    return 'lost';
  end if;
  if p_permanent or v_job.attempts >= v_job.max_attempts then
    update private.jobs set locked_by = null, locked_until = null, dead_at = now(), last_error = left(p_error, 2000)
    where id = p_job_id;
    return 'dead';
  end if;
  update private.jobs set locked_by = null, locked_until = null, last_error = left(p_error, 2000),
    run_at = now() + private.job_backoff(v_job.attempts, p_retry_after_seconds)
  where id = p_job_id;
  return 'retry';
end;
$$;
revoke all on function private.fail_job(text, bigint, text, int, boolean) from public, anon, authenticated;
grant execute on function private.fail_job(text, bigint, text, int, boolean) to service_role;

-- Gives back claimed jobs a worker did not start (its time budget ran out): pending
-- again at once, the attempt not counted.
create function private.release_jobs(p_worker text, p_ids bigint[]) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  n int;
begin
  update private.jobs j set locked_by = null, locked_until = null, attempts = greatest(j.attempts - 1, 0)
  where j.id = any (p_ids) and j.locked_by = p_worker;
  get diagnostics n = row_count;
  return n;
end;
$$;
revoke all on function private.release_jobs(text, bigint[]) from public, anon, authenticated;
grant execute on function private.release_jobs(text, bigint[]) to service_role;

-- ------------------------------------------------------------------ the operator's side

-- Retries a dead job, or one waiting out a backoff, now and with a fresh attempt count.
create function private.retry_job(p_job_id bigint) returns private.jobs
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.jobs;
begin
  update private.jobs j set dead_at = null, attempts = 0, run_at = now(), last_error = null
  where j.id = p_job_id and j.locked_by is null and (j.dead_at is not null or j.attempts > 0)
  returning * into v_job;
  if v_job.id is null then
    raise exception 'only a dead or failed job that is not running can be retried' using errcode = 'PT409';
  end if;
  return v_job;
end;
$$;
revoke all on function private.retry_job(bigint) from public, anon, authenticated;
grant execute on function private.retry_job(bigint) to service_role;

-- ------------------------------------------------------------------ recurring jobs

-- Recurring work (SLA sweep, pruning, the provisioning reconcile pass) as schedules the
-- runner turns into jobs at the start of each run, each under its own job key, so a
-- schedule never has two jobs waiting. Several runners at once: SKIP LOCKED. The
-- schedules themselves are rows, added where their tasks exist
-- (20261126102100_schedules.sql).
create table private.job_schedules (
  name text primary key,
  task text not null check (task ~ '^[a-z][a-z0-9-]{0,62}$'),
  payload jsonb not null default '{}'::jsonb check (jsonb_typeof(payload) = 'object'),
  every interval not null check (every >= interval '1 second'),
  next_run_at timestamptz not null default now()
);
alter table private.job_schedules enable row level security;
revoke all on private.job_schedules from public, anon, authenticated, service_role;

create function private.add_scheduled_jobs() returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v record;
  v_count int := 0;
begin
  for v in
    select s.* from private.job_schedules s where s.next_run_at <= now() order by s.name
    for no key update skip locked
  loop
    perform private.add_job(v.task, v.payload, 'schedule:' || v.name, null, null, null, 'preserve_run_at');
    -- The next slot on the schedule's grid after now (missed slots are not made up).
    update private.job_schedules set next_run_at = v.next_run_at + v.every *
      (floor(extract(epoch from now() - v.next_run_at) / extract(epoch from v.every)) + 1)
    where name = v.name;
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
revoke all on function private.add_scheduled_jobs() from public, anon, authenticated;
grant execute on function private.add_scheduled_jobs() to service_role;
