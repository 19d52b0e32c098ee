-- An attachment's bytes go with it (issue 14's storage-delete job, 20261203255000; the
-- attachments of 20261126101200_attachments.sql). Attachments are deleted only through
-- what holds them — a message, a ticket, a tenant deleted by a platform admin — and their
-- bytes stayed in the `attachments` bucket for ever. As for a call's recording: jobs
-- inserted by one statement per delete (no lock per row, so a tenant's thousands of files
-- delete at once), one at once and one after the upload URL expired (two hours: a file
-- registered and uploaded while its ticket was deleted goes too), with 1,000 attempts.
-- The job keeps an object a row still holds (private.storage_object_in_use), so a path
-- is never deleted from under a live attachment.

create function private.attachment_objects_erased() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into private.jobs (task, payload, tenant_id, run_at, max_attempts)
  select 'storage-delete', jsonb_build_object('bucket', g.bucket, 'object', g.path), g.tenant_id, w.run_at, 1000
  from gone g
  cross join (values (now()), (now() + interval '2 hours 10 minutes')) w(run_at);
  return null;
end;
$$;
revoke all on function private.attachment_objects_erased() from public, anon, authenticated;
create trigger objects_erased after delete on public.attachments
  referencing old table as gone
  for each statement execute function private.attachment_objects_erased();
