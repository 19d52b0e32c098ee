-- A job that died in the last day counts there after it was revived (review of the job
-- runner, issue 14).
--
-- dead_last_24h counted jobs whose dead_at fell in the last day, and a schedule revives
-- its dead job at its next tick (dead_at back to null, 20261207129000): the SLA sweep, the
-- automation sweep and the stale-calls sweep run every minute, so one dying all day long
-- showed as dead for a minute at a time and 0 otherwise. A job now remembers when it last
-- died (last_died_at, set as dead_at is, kept when it is revived), and dead_last_24h counts
-- the jobs that died in the last day, revived since or not. `dead` stays the jobs dead now.

alter table private.jobs add column last_died_at timestamptz;
update private.jobs set last_died_at = dead_at where dead_at is not null;

create function private.jobs_remember_death() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.last_died_at := new.dead_at;
  return new;
end;
$$;
revoke all on function private.jobs_remember_death() from public, anon, authenticated;
create trigger jobs_remember_death before insert or update of dead_at on private.jobs
  for each row when (new.dead_at is not null) execute function private.jobs_remember_death();

-- Redefined (20261208130000_job_figures_and_retries_follow_queues.sql): dead_last_24h from
-- last_died_at.
create or replace function private.job_metrics() returns jsonb
language sql stable security definer
set search_path = ''
as $$
  with per_task as (
    select j.task,
      count(*) filter (where j.dead_at is null and j.run_at <= now()
                       and (j.locked_until is null or j.locked_until < now()) and not j.behind) as due,
      count(*) filter (where j.dead_at is null and j.behind) as queued_behind,
      count(*) filter (where j.dead_at is null and j.run_at > now()) as scheduled,
      count(*) filter (where j.dead_at is null and j.locked_until >= now()) as running,
      count(*) filter (where j.dead_at is null and j.last_error is not null) as retrying,
      count(*) filter (where j.dead_at is not null) as dead,
      count(*) filter (where j.last_died_at > now() - interval '24 hours') as dead_last_24h,
      min(j.run_at) filter (where j.dead_at is null and j.run_at <= now()
                            and (j.locked_until is null or j.locked_until < now()) and not j.behind) as oldest_due
    from (
      -- Behind the head of its named queue: not claimable until the head is done, whatever
      -- its run_at says (a deferred head — a suspended tenant's reply, an endpoint whose
      -- breaker is open — keeps its place for as long as it waits).
      select x.*, (x.queue is not null and exists (
               select 1 from private.jobs h where h.queue = x.queue and h.id < x.id and h.dead_at is null)) as behind
      from private.jobs x
    ) j
    group by j.task
  )
  select jsonb_build_object(
    'measured_at', private.api_timestamp(now()),
    'due', coalesce(sum(p.due), 0),
    'queued_behind', coalesce(sum(p.queued_behind), 0),
    'scheduled', coalesce(sum(p.scheduled), 0),
    'running', coalesce(sum(p.running), 0),
    'retrying', coalesce(sum(p.retrying), 0),
    'dead', coalesce(sum(p.dead), 0),
    'oldest_due_age_seconds', round(extract(epoch from now() - min(p.oldest_due))::numeric, 3),
    'tasks', coalesce(jsonb_object_agg(p.task, jsonb_build_object(
      'due', p.due, 'queued_behind', p.queued_behind, 'scheduled', p.scheduled, 'running', p.running, 'retrying', p.retrying,
      'dead', p.dead, 'dead_last_24h', p.dead_last_24h,
      'oldest_due_age_seconds', round(extract(epoch from now() - p.oldest_due)::numeric, 3))) filter (where p.task is not null),
      '{}'::jsonb))
  from per_task p
$$;

-- As set for it before (20261206037000_bounds_review.sql), which create or replace drops.
alter function private.job_metrics() set lock_timeout = '30s';
