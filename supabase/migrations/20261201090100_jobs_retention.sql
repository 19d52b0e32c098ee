-- Dead jobs are kept, with their last error, for an operator to read and retry
-- (private.retry_job) — for 30 days, not forever. Their domain rows keep what happened
-- (tenant_services.state, webhook deliveries and their attempts, Chatwoot replies), and
-- work that is still wanted comes back under its job key (the provisioning reconcile
-- pass re-adds a service's job when no live one exists), so a pruned dead job loses
-- nothing but its error text. The daily `prune` task (shared/jobs/tasks/prune.ts) calls
-- this next to private.prune_webhook_history.
--
-- Lock order: job rows only (level 9 of 20261126100000_conventions.sql). Claims never
-- touch dead jobs; an add_job that revives a dead keyed job while it is deleted waits
-- for the delete and then inserts afresh.
-- Returns how many were dropped. A shorter keep than a day (or none) counts as a day.
create function private.prune_dead_jobs(p_keep interval default interval '30 days') returns int
language sql volatile security definer
set search_path = ''
as $$
  with gone as (
    delete from private.jobs j
    where j.dead_at < now() - greatest(coalesce(p_keep, interval '1 day'), interval '1 day')
    returning 1
  )
  select count(*)::int from gone
$$;
revoke all on function private.prune_dead_jobs(interval) from public, anon, authenticated;
grant execute on function private.prune_dead_jobs(interval) to service_role;
