-- What an operator watches of the job queue (issue 15, observability): per task, how
-- many jobs are due, scheduled for later, running under a lease, retrying after a
-- failure and dead (in all and in the last 24 hours), and how long the oldest due job
-- has waited — the number that says the runner is not keeping up. Served to machines
-- by GET /jobs/metrics. It reads the whole live queue, which the runner keeps short
-- (done jobs are deleted, dead ones pruned after 30 days); nothing in it is per tenant.
create function private.job_metrics() returns jsonb
language sql stable security definer
set search_path = ''
as $$
  with per_task as (
    select j.task,
      count(*) filter (where j.dead_at is null and j.run_at <= now()
                       and (j.locked_until is null or j.locked_until < now())) as due,
      count(*) filter (where j.dead_at is null and j.run_at > now()) as scheduled,
      count(*) filter (where j.dead_at is null and j.locked_until >= now()) as running,
      count(*) filter (where j.dead_at is null and j.attempts > 0) as retrying,
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
revoke all on function private.job_metrics() from public, anon, authenticated;
grant execute on function private.job_metrics() to service_role;
