-- A recurring job keeps its failures, and a crashed run of it is not followed by a second
-- (review of the job queue, issue 14).
--
-- Each tick of a schedule (private.add_scheduled_jobs) re-added its job through add_job's
-- key: a job waiting out a backoff got attempts 0 and its last_error erased, so a sweep
-- failing every minute never died, never showed in `dead`, and its error was gone within
-- the minute (its backoff restarting at 2 s too). And a job whose worker crashed (still
-- locked until its lease ran out) gave its key away: marked superseded with a successor
-- queued behind it, it ran again when its lease expired, then the successor ran — two
-- sweeps back to back.
--
-- Now a tick leaves a live job of the schedule as it is: one waiting (or backing off) is
-- made due now, its attempts and last error kept (so it still runs at least once a tick,
-- and dies after its attempts); one running — or whose worker crashed — is left to run,
-- or to be claimed again when its lease ends, once. A dead one is brought back (the
-- schedule must go on), its last error kept for the metrics; none at all: added as
-- before. The queue's metrics count as retrying the jobs that failed (a last error), not
-- every job in its first attempt (the claim counts attempts).

-- Redefined (20261126100350_jobs.sql).
create or replace function private.add_scheduled_jobs() returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v record;
  v_count int := 0;
  v_key text;
begin
  for v in
    select s.* from private.job_schedules s where s.next_run_at <= now() order by s.name
    for no key update skip locked
  loop
    v_key := 'schedule:' || v.name;
    -- Waiting or backing off: due now, failures kept.
    -- The schedule's task and payload as they are now (a migration may have changed them).
    update private.jobs j set run_at = least(j.run_at, now()), task = v.task, payload = v.payload
    where j.job_key = v_key and j.dead_at is null and j.locked_by is null;
    if not found then
      -- Dead: back, with its last error (a new round of attempts).
      update private.jobs j set dead_at = null, attempts = 0, run_at = now(), task = v.task, payload = v.payload
      where j.job_key = v_key and j.dead_at is not null and j.locked_by is null;
      if not found and not exists (select 1 from private.jobs j where j.job_key = v_key) then
        perform private.add_job(v.task, v.payload, v_key, null, null, null, 'preserve_run_at');
      end if;
    end if;
    -- The next slot on the schedule's grid after now (missed slots are not made up).
    update private.job_schedules set next_run_at = v.next_run_at + v.every *
      (floor(extract(epoch from now() - v.next_run_at) / extract(epoch from v.every)) + 1)
    where name = v.name;
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
-- As set for it before (20261206034000_lock_waits_outside_transactions.sql), which
-- create or replace drops.
alter function private.add_scheduled_jobs() set lock_timeout = '30s';

-- Redefined (20261201150200_job_metrics.sql): retrying = failed at least once.
create or replace function private.job_metrics() returns jsonb
language sql stable security definer
set search_path = ''
as $$
  with per_task as (
    select j.task,
      count(*) filter (where j.dead_at is null and j.run_at <= now()
                       and (j.locked_until is null or j.locked_until < now())) as due,
      count(*) filter (where j.dead_at is null and j.run_at > now()) as scheduled,
      count(*) filter (where j.dead_at is null and j.locked_until >= now()) as running,
      count(*) filter (where j.dead_at is null and j.last_error is not null) as retrying,
      count(*) filter (where j.dead_at is not null) as dead,
      count(*) filter (where j.dead_at > now() - interval '24 hours') as dead_last_24h,
      min(j.run_at) filter (where j.dead_at is null and j.run_at <= now()
                            and (j.locked_until is null or j.locked_until < now())) as oldest_due
    from private.jobs j
    group by j.task
  )
  select jsonb_build_object(
    'measured_at', private.api_timestamp(now()),
    'due', coalesce(sum(p.due), 0),
    'scheduled', coalesce(sum(p.scheduled), 0),
    'running', coalesce(sum(p.running), 0),
    'retrying', coalesce(sum(p.retrying), 0),
    'dead', coalesce(sum(p.dead), 0),
    'oldest_due_age_seconds', round(extract(epoch from now() - min(p.oldest_due))::numeric, 3),
    'tasks', coalesce(jsonb_object_agg(p.task, jsonb_build_object(
      'due', p.due, 'scheduled', p.scheduled, 'running', p.running, 'retrying', p.retrying,
      'dead', p.dead, 'dead_last_24h', p.dead_last_24h,
      'oldest_due_age_seconds', round(extract(epoch from now() - p.oldest_due)::numeric, 3))) filter (where p.task is not null),
      '{}'::jsonb))
  from per_task p
$$;
-- As set for it before (20261206037000_bounds_review.sql).
alter function private.job_metrics() set lock_timeout = '30s';
