-- An attachment registered but never uploaded gives its storage back (issue 14, review
-- of plans and quotas).
--
-- Registering an attachment charges its announced size_bytes to the tenant's
-- storage_bytes at once (20261202071000_usage_quotas.sql), and a registration whose file
-- never arrives stayed `pending` for ever, charged. Any member who may attach (a customer
-- on their own ticket included) could register a few hundred 50 MiB files without
-- uploading one and fill the plan's storage: every later upload in the tenant was 403
-- plan_limit_reached, for good.
--
-- Each registration now adds an `attachment-upload-check` job (same statement, as the
-- storage-delete jobs do) that runs once the upload URL has expired (two hours, plus ten
-- minutes: no upload can land after it). It asks the storage whether the file is there:
-- if so the attachment is `uploaded` (the reader's check would have said the same); if
-- not, the attachment is deleted, which gives its bytes back to the quota (the quota
-- trigger), queues the storage-delete jobs of any attachment and leaves an audit entry.
-- A storage that does not answer is retried (1,000 attempts, as for deletions).

create function private.attachment_upload_checks() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into private.jobs (task, payload, tenant_id, run_at, max_attempts)
  select 'attachment-upload-check', jsonb_build_object('tenant_id', n.tenant_id, 'attachment_id', n.id), n.tenant_id,
         now() + interval '2 hours 10 minutes', 1000
  from registered n
  where n.status = 'pending';
  return null;
end;
$$;
revoke all on function private.attachment_upload_checks() from public, anon, authenticated, service_role;
create trigger upload_checked after insert on public.attachments
  referencing new table as registered
  for each statement execute function private.attachment_upload_checks();

-- The job's verdict on a pending attachment, once its upload URL has expired: uploaded
-- (p_uploaded, the storage has the file) or released (deleted: never uploaded). An
-- attachment no longer pending (read and marked meanwhile) or gone is left as it is.
-- Returns 'uploaded', 'released' or 'settled'.
create function private.settle_pending_attachment(p_tenant_id uuid, p_attachment_id uuid, p_uploaded boolean)
returns text
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_uploaded then
    update public.attachments set status = 'uploaded'
    where tenant_id = p_tenant_id and id = p_attachment_id and status = 'pending';
    return case when found then 'uploaded' else 'settled' end;
  end if;
  delete from public.attachments where tenant_id = p_tenant_id and id = p_attachment_id and status = 'pending';
  return case when found then 'released' else 'settled' end;
end;
$$;
revoke all on function private.settle_pending_attachment(uuid, uuid, boolean) from public, anon, authenticated;
grant execute on function private.settle_pending_attachment(uuid, uuid, boolean) to service_role;
