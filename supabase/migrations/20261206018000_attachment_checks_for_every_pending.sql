-- Every attachment left pending past its upload URL gets its check (issue 14, review of
-- 20261206015000_abandoned_attachments_released.sql).
--
-- That migration queues a check with each new registration; attachments registered
-- before it (a hosted project upgraded) had none and stayed charged for ever, as did one
-- whose job an operator deleted. The daily prune now queues a check, due at once, for
-- every attachment still pending two hours and ten minutes after it was registered that
-- has none, found through a partial index of the pending ones (few: a registration is
-- uploaded or released within hours).
create index attachments_pending_idx on public.attachments (created_at) where status = 'pending';

-- Returns how many checks it queued. For the prune job (service role) and operators.
create function private.queue_missing_attachment_checks() returns int
language sql volatile security definer
set search_path = ''
as $$
  with queued as (
    insert into private.jobs (task, payload, tenant_id, run_at, max_attempts)
    select 'attachment-upload-check', jsonb_build_object('tenant_id', a.tenant_id, 'attachment_id', a.id), a.tenant_id,
           now(), 1000
    from public.attachments a
    where a.status = 'pending' and a.created_at < now() - interval '2 hours 10 minutes'
      and not exists (select 1 from private.jobs j
                      where j.tenant_id = a.tenant_id and j.task = 'attachment-upload-check'
                        and j.payload ->> 'attachment_id' = a.id::text)
    returning 1
  )
  select count(*)::int from queued
$$;
revoke all on function private.queue_missing_attachment_checks() from public, anon, authenticated;
grant execute on function private.queue_missing_attachment_checks() to service_role;
