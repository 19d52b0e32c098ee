-- A finished recording is never lost to a change of type (issue 14; a last read of
-- 20261203251000_voice_call_recording_objects.sql and the upload route). The route asks
-- the storage again after moving a call to another type and gives the call its object
-- back when that upload finished meanwhile; but that second look can fail (the storage
-- away, the call changed again) or come just before the upload lands, and the replaced
-- object's delayed delete job then deleted a finished recording while the call held an
-- object never uploaded. The job is now the backstop: it runs after the replaced
-- object's URL expired, when no upload can still land, and gives a finished recording
-- back to its call when the call's own object was never uploaded
-- (shared/jobs/tasks/storage-delete.ts). This function is that write, and the route's.

-- The call's recording object set back to p_object if the call still holds p_seen (what
-- the caller read or wrote): true when written. The object must be the call's own (the
-- column's check).
create function private.voice_call_recording_restore(p_tenant_id uuid, p_call_id uuid, p_object text, p_seen text)
returns boolean
language plpgsql
set search_path = ''
as $$
begin
  update public.voice_calls v set recording_object = p_object
  where v.tenant_id = p_tenant_id and v.id = p_call_id and v.recording_object is not distinct from p_seen;
  return found;
end;
$$;
revoke all on function private.voice_call_recording_restore(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function private.voice_call_recording_restore(uuid, uuid, text, text) to service_role;
