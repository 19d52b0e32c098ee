-- The daily prune first queues a check for every stale pending attachment that has none
-- (20261206018000), in one statement without a bound, whose "has none" probe could use
-- only the jobs' tenant index: each pending attachment read all its tenant's jobs. A
-- tenant with a large queue (deliveries to an endpoint that is down) and a backlog of
-- abandoned uploads made it N x M rows, long enough to fail the prune job — and with it
-- every pruner, for every tenant. The probe now has an index of its own, and a run queues
-- at most 1,000 checks (the oldest first; the next run queues the rest).
create index jobs_attachment_check_idx on private.jobs ((payload ->> 'attachment_id'))
  where task = 'attachment-upload-check';

-- Redefined (20261206018000_attachment_checks_for_every_pending.sql): bounded.
create or replace function private.queue_missing_attachment_checks() returns int
language sql volatile security definer
set search_path = ''
as $$
  with queued as (
    insert into private.jobs (task, payload, tenant_id, run_at, max_attempts)
    select 'attachment-upload-check', jsonb_build_object('tenant_id', a.tenant_id, 'attachment_id', a.id), a.tenant_id,
           now(), 1000
    from (
      select a.tenant_id, a.id from public.attachments a
      where a.status = 'pending' and a.created_at < now() - interval '2 hours 10 minutes'
        and not exists (select 1 from private.jobs j
                        where j.task = 'attachment-upload-check' and j.payload ->> 'attachment_id' = a.id::text
                          and j.tenant_id = a.tenant_id)
      order by a.created_at
      limit 1000
    ) a
    returning 1
  )
  select count(*)::int from queued
$$;
