-- A run never claims a job it still holds.
--
-- The job runner keeps a pool of slots and claims while some of its jobs still run
-- (shared/jobs/runner.ts). A claim takes any due job whose lease has run out, and a
-- lease can run out under a worker that is still in the job (its renewals failing for
-- two thirds of a lease, the database away; an isolate frozen): the run's next claim
-- could then hand it the job it is running, and start a second copy, both holding the
-- lease under the same worker name, so both would record their work. The job may go to
-- another worker (its lease ran out: that is what a lease is for), never back to the
-- run that holds it: the runner passes the ids it holds as p_held.
--
-- private.claim_jobs (20261126100350_jobs.sql; plan pinned by 20261201090000, lock wait
-- bounded by 20261206034000) gives way to private.claim_due_jobs, the same claim with
-- p_held, carrying the same settings. A function keeps its signature once created
-- (tests/schema/migrations-history.test.ts), so the new parameter comes with a new name.
drop function private.claim_jobs(text, int, int, text[], bigint[]);

create function private.claim_due_jobs(
  p_worker text, p_limit int default 10, p_lease_seconds int default 120, p_tasks text[] default null,
  p_completed bigint[] default null, p_held bigint[] default null
)
returns table (id bigint, task text, payload jsonb, queue text, job_key text, attempts int, max_attempts int,
               locked_until timestamptz, completed boolean)
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
set enable_bitmapscan = off
set enable_sort = off
set enable_seqscan = off
as $$
begin
  -- The worker's finished jobs, completed first in the same statement: one commit per
  -- claim. They come back as rows with `completed` true when the worker still held them.
  if p_completed is not null then
    return query
    select c.id, null::text, null::jsonb, null::text, null::text, null::int, null::int, null::timestamptz, true
    from private.complete_jobs(p_worker, p_completed) c;
  end if;
  -- Due jobs, and jobs whose lease ran out (their worker died), each named queue's head
  -- only, attempts + 1; never one this run holds. The ids as an array: the update finds
  -- its rows by primary key, however large (or full of dead rows) the table is.
  return query
  update private.jobs j
  set locked_by = p_worker, locked_until = now() + make_interval(secs => greatest(p_lease_seconds, 1)), attempts = j.attempts + 1
  where j.id = any (array(
    select d.id from private.jobs d
    where d.dead_at is null and d.run_at <= now()
      and (d.locked_until is null or d.locked_until < now())
      and (p_tasks is null or d.task = any (p_tasks))
      and (p_held is null or d.id <> all (p_held))
      and (d.queue is null or not exists (
        select 1 from private.jobs h where h.queue = d.queue and h.id < d.id and h.dead_at is null))
    order by d.run_at, d.id
    limit least(greatest(p_limit, 1), 100)
    for no key update of d skip locked))
  returning j.id, j.task, j.payload, j.queue, j.job_key, j.attempts, j.max_attempts, j.locked_until, false;
end;
$$;
revoke all on function private.claim_due_jobs(text, int, int, text[], bigint[], bigint[]) from public, anon, authenticated;
grant execute on function private.claim_due_jobs(text, int, int, text[], bigint[], bigint[]) to service_role;
