-- A call's recording goes with the call (issue 14; 20261203251000_voice_call_recording_objects.sql).
-- Admins may delete calls (a customer's erasure, a mistaken call), and the recording's
-- bytes stayed in the `call-recordings` bucket for ever: a person's voice kept after the
-- record of the call was erased. The database cannot reach the storage, so it adds a job
-- per object (`storage-delete`, shared/jobs/tasks/storage-delete.ts) in the transaction
-- that deletes the rows: committed together, retried until the storage has answered.
--
-- Also an object replaced before its upload finished (the provider asked for another
-- type): the first URL may still be used until it expires (two hours), so that object is
-- deleted after then, whether or not it was ever uploaded.

-- Row triggers with a WHEN on the column, so the call path's updates (ends, answers)
-- and deletes of calls without a recording never call them.
create function private.voice_call_recording_erased() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- Keyed by the object: a job already waiting for it is replaced, not doubled. Replaced
  -- before its upload finished (an update): the first URL may still be used until it
  -- expires (two hours), so after then and a margin for an upload under way.
  perform private.add_job('storage-delete', jsonb_build_object('bucket', 'call-recordings', 'object', old.recording_object),
                          'storage-delete:call-recordings/' || old.recording_object,
                          case when tg_op = 'UPDATE' then now() + interval '2 hours 10 minutes' end);
  return null;
end;
$$;
revoke all on function private.voice_call_recording_erased() from public, anon, authenticated;
create trigger recording_erased after delete on public.voice_calls
  for each row when (old.recording_object is not null)
  execute function private.voice_call_recording_erased();
create trigger recording_replaced after update of recording_object on public.voice_calls
  for each row when (old.recording_object is not null and new.recording_object is distinct from old.recording_object)
  execute function private.voice_call_recording_erased();

-- Whether a row still holds the object: the storage-delete job asks before deleting, so
-- a recording object given back to its call (mp3, then ogg, then mp3 again, all before
-- the upload) is not deleted by the job its first replacement added. By the keys the
-- object's path carries (<tenant>/<call>/…), or the attachments' unique (bucket, path).
create function private.storage_object_in_use(p_bucket text, p_object text) returns boolean
language sql stable
set search_path = ''
as $$
  select case p_bucket
    when 'call-recordings' then
      p_object ~ '^[0-9a-f-]{36}/[0-9a-f-]{36}/'
      and exists (
        select 1 from public.voice_calls v
        where v.tenant_id = pg_catalog.split_part(p_object, '/', 1)::uuid
          and v.id = pg_catalog.split_part(p_object, '/', 2)::uuid
          and v.recording_object = p_object)
    when 'attachments' then exists (select 1 from public.attachments a where a.bucket = p_bucket and a.path = p_object)
    else false
  end;
$$;
revoke all on function private.storage_object_in_use(text, text) from public, anon, authenticated;
grant execute on function private.storage_object_in_use(text, text) to service_role;
