-- A replaced recording's job decides after every upload URL of its call expired (issue 14;
-- a review of 20261203257000_voice_recording_restore.sql). The job gives a replaced
-- recording back to its call when the call's own object was never uploaded, on the
-- ground that no upload can still land. That held for the replaced object's URL only:
-- asking again for the call's current type signs a fresh two-hour URL for the current
-- object while writing nothing, so the replaced object's job kept its time, found the
-- current object not yet uploaded, gave the old recording back, and the provider's
-- newest upload, landing after, was deleted by the job the give-back added.
--
-- Now every request for an upload URL moves the call's pending jobs for its other objects
-- to at least two hours and ten minutes after it: when one runs, no URL of the call is
-- still valid, and what was uploaded is final.

-- The call's pending storage-delete jobs for objects other than p_object, moved to at
-- least two hours and ten minutes from now. Definer: the jobs are the queue's, which no
-- API role writes (the provider's path runs as service_role). A job already running is
-- left to run.
create function private.voice_call_recording_jobs_wait(p_tenant_id uuid, p_call_id uuid, p_object text) returns void
language sql security definer
set search_path = ''
as $$
  update private.jobs j set run_at = greatest(j.run_at, now() + interval '2 hours 10 minutes')
  where j.task = 'storage-delete' and j.locked_by is null and j.dead_at is null
    and j.payload ->> 'bucket' = 'call-recordings'
    and pg_catalog.starts_with(j.payload ->> 'object', p_tenant_id::text || '/' || p_call_id::text || '/')
    and j.payload ->> 'object' <> p_object;
$$;
revoke all on function private.voice_call_recording_jobs_wait(uuid, uuid, text) from public, anon, authenticated;
grant execute on function private.voice_call_recording_jobs_wait(uuid, uuid, text) to service_role;

-- Redefined (20261203253000_storage_objects_erased_review.sql): the call's other objects'
-- jobs wait out the URL signed now.
create or replace function private.voice_call_recording_set(p_tenant_id uuid, p_call_id uuid, p_extension text, p_seen text)
returns text
language plpgsql
set search_path = ''
as $$
declare
  v_current text;
  v_object text;
begin
  if p_extension is null or p_extension !~ '^(mp3|wav|ogg|webm|m4a|flac)$' then
    raise exception 'A recording is mp3, wav, ogg, webm, m4a or flac' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'content_type', 'message', 'must be an audio type the recordings bucket takes'))))::text;
  end if;
  select v.recording_object into v_current from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.id = p_call_id
  for no key update;
  if not found then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  v_object := p_tenant_id::text || '/' || p_call_id::text || '/recording.' || p_extension;
  if v_current is distinct from v_object then
    if v_current is distinct from p_seen then
      raise exception 'The call''s recording changed meanwhile; ask again' using errcode = 'PT409',
        detail = jsonb_build_object('code', 'recording_changed')::text;
    end if;
    update public.voice_calls v set recording_object = v_object
    where v.tenant_id = p_tenant_id and v.id = p_call_id;
  end if;
  -- After the update: the replacement trigger has added the job for the object replaced
  -- now, which this moves too (to the same time).
  perform private.voice_call_recording_jobs_wait(p_tenant_id, p_call_id, v_object);
  return v_object;
end;
$$;
