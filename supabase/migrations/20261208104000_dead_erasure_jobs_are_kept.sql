-- Dead jobs are pruned 30 days after they died; a dead storage-delete or
-- voice-erasure-trail job went with them, though it is the only record of what an
-- erasure left undone: a recording object never deleted (no sweep looks for orphaned
-- objects), an audit trail left unredacted where the job stopped. They are kept now,
-- until an operator retries (private.retry_job) or deletes them.

-- Redefined (20261207170000_prune_in_batches.sql): erasures' dead jobs kept.
create or replace function private.prune_dead_jobs(p_keep interval default interval '30 days') returns int
language sql volatile security definer
set search_path = ''
as $$
  with gone as (
    delete from private.jobs j
    where j.id in (
      select x.id from private.jobs x
      where x.dead_at < now() - greatest(coalesce(p_keep, interval '1 day'), interval '1 day')
        and x.task not in ('storage-delete', 'voice-erasure-trail')
      order by x.dead_at limit 5000
      for update skip locked)
    returning 1
  )
  select count(*)::int from gone
$$;
