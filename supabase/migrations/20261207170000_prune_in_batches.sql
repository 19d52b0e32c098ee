-- The daily prune deletes in batches, and never a delivery someone is sending again
-- (review of the job runner, issue 14).
--
-- Each pruner deleted everything past its age in one statement, and the prune task ran
-- them all in one transaction: a backlog (a busy tenant's month of deliveries, each
-- event cascading to its deliveries and their attempts) made one transaction that could
-- outlast the Edge Function's wall clock, be killed, roll back and start over the next
-- day, so retention never caught up. Each call now deletes at most 5,000 rows per table,
-- the rows it takes locked and skipped when someone else holds them, and the task calls
-- them again, a transaction each, while they find rows (shared/jobs/tasks/prune.ts).
--
-- Deleting a month-old event cascaded to its deliveries whatever happened to them after
-- the statement's snapshot: an admin's retry of a failed delivery (status back to
-- pending, a job queued, an audit entry written) that committed while the cascade waited
-- for its row was deleted anyway, and the admin's "queued" sent nothing. Finished
-- deliveries are now deleted first, each locked and checked again as it is now (a
-- delivery being sent again is skipped, and one the prune holds is not found by the
-- retry: 404), then the events left with no delivery at all.

-- Dead jobs were found by a walk over the whole queue.
create index jobs_dead_at_idx on private.jobs (dead_at) where dead_at is not null;

-- Redefined (20261126102000_webhook_retention.sql): in batches; deliveries first.
create or replace function private.prune_webhook_history(p_keep interval default interval '30 days') returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  c_batch constant int := 5000;
  v_count int := 0;
  n int;
begin
  delete from private.webhook_inbox i
  where (i.provider, i.event_id) in (
    select o.provider, o.event_id from private.webhook_inbox o
    where o.received_at < now() - p_keep
    order by o.received_at limit c_batch
    for update skip locked);
  get diagnostics n = row_count; v_count := v_count + n;
  -- Locked, and their status read again as it is now: one a retry made pending since
  -- this statement began is not taken.
  delete from private.webhook_deliveries d
  where d.id in (
    select x.id from private.webhook_events ev join private.webhook_deliveries x on x.event_id = ev.id
    where ev.created_at < now() - p_keep and x.status in ('delivered', 'failed')
    limit c_batch
    for update of x skip locked);
  get diagnostics n = row_count; v_count := v_count + n;
  -- No delivery is ever added to an old event: one with none left has nothing to cascade.
  delete from private.webhook_events ev
  where ev.id in (
    select e.id from private.webhook_events e
    where e.created_at < now() - p_keep
      and not exists (select 1 from private.webhook_deliveries d where d.event_id = e.id)
    order by e.created_at limit c_batch
    for update skip locked);
  get diagnostics n = row_count; v_count := v_count + n;
  delete from private.chatwoot_replies r
  where r.id in (
    select x.id from private.chatwoot_replies x
    where x.created_at < now() - p_keep and x.status in ('sent', 'failed')
    order by x.created_at limit c_batch
    for update skip locked);
  get diagnostics n = row_count; v_count := v_count + n;
  return v_count;
end;
$$;

-- Redefined (20261201090100_jobs_retention.sql): in batches (a job retried since is
-- read again as it is now: no longer dead, it stays).
create or replace function private.prune_dead_jobs(p_keep interval default interval '30 days') returns int
language sql volatile security definer
set search_path = ''
as $$
  with gone as (
    delete from private.jobs j
    where j.id in (
      select x.id from private.jobs x
      where x.dead_at < now() - greatest(coalesce(p_keep, interval '1 day'), interval '1 day')
      order by x.dead_at limit 5000
      for update skip locked)
    returning 1
  )
  select count(*)::int from gone
$$;

-- Redefined (20261204110000_voice_call_tombstones.sql): in batches.
create or replace function private.prune_voice_call_tombstones(p_keep interval default interval '30 days') returns int
language sql volatile security definer
set search_path = ''
as $$
  with dropped as (
    delete from private.voice_call_tombstones t
    where (t.tenant_id, t.provider_call_hash) in (
      select x.tenant_id, x.provider_call_hash from private.voice_call_tombstones x
      where x.deleted_at < now() - p_keep
      order by x.deleted_at limit 5000
      for update skip locked)
    returning 1
  )
  select count(*)::int from dropped;
$$;

-- Redefined (20261207123000_idempotency_keys_pruned.sql): in batches.
create or replace function private.prune_idempotency_keys(p_keep interval default interval '24 hours') returns int
language sql volatile security definer
set search_path = ''
as $$
  with dropped as (
    delete from private.idempotency_keys k
    where (k.tenant_id, k.user_id, k.key) in (
      select x.tenant_id, x.user_id, x.key from private.idempotency_keys x
      where x.created_at < now() - p_keep
      order by x.created_at limit 5000
      for update skip locked)
    returning 1
  )
  select count(*)::int from dropped;
$$;
