-- The queue's figures and an operator's retry follow named queues (review of the job
-- runner, issue 14).
--
-- job_metrics counted as due every live job whose run_at had passed, also one behind the
-- head of its named queue, which no claim takes until the head is done: a suspended
-- tenant's second Chatwoot reply in a conversation, the events queued behind an endpoint
-- whose breaker is open. `oldest_due_age_seconds`, the "runner is behind" signal, then
-- grew for as long as the head waited. Those jobs are now `queued_behind` (per task too),
-- not due.
--
-- retry_job brought a dead job back at its old id: a dead job does not hold its queue, so
-- later jobs went on, and revived it was the oldest live one — the head — claimed beside
-- the job running, ahead of those after it (two jobs of one queue at once, an older
-- event applied after a newer one). A job of a named queue with live jobs after it now
-- goes to the back of its queue (a new id), as a delivery sent again does (20261207114000).

-- Redefined (20261207129000_schedule_jobs_keep_their_failures.sql): jobs behind their
-- queue's head are not due.
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
      count(*) filter (where j.dead_at > now() - interval '24 hours') as dead_last_24h,
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
-- As set for it before (20261206037000_bounds_review.sql).

-- As set for it before (20261206037000_bounds_review.sql), which create or replace drops.
alter function private.job_metrics() set lock_timeout = '30s';

-- Redefined (20261126100350_jobs.sql): to the back of its named queue when live jobs are
-- after it.
create or replace function private.retry_job(p_job_id bigint) returns private.jobs
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.jobs;
begin
  select * into v_job from private.jobs j
  where j.id = p_job_id and j.locked_by is null and (j.dead_at is not null or j.attempts > 0)
  for update;
  if v_job.id is null then
    raise exception 'only a dead or failed job that is not running can be retried' using errcode = 'PT409';
  end if;
  if v_job.queue is not null and exists (
       select 1 from private.jobs h where h.queue = v_job.queue and h.id > v_job.id and h.dead_at is null) then
    delete from private.jobs j where j.id = v_job.id;
    v_job.id := pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('private.jobs', 'id'));
    v_job.dead_at := null;
    v_job.attempts := 0;
    v_job.run_at := now();
    v_job.last_error := null;
    v_job.hook_holds := 0;
    v_job.created_at := now();
    insert into private.jobs overriding system value select (v_job).*;
  else
    update private.jobs j set dead_at = null, attempts = 0, run_at = now(), last_error = null
    where j.id = p_job_id
    returning * into v_job;
  end if;
  return v_job;
end;
$$;
