-- A call's recording goes with the call, after review (issue 14;
-- 20261203252000_storage_objects_erased.sql, 20261203251000_voice_call_recording_objects.sql).
--
-- * A call deleted before its recording's upload landed (the URL is valid two hours, and
--   recordings are often finished after the call): the job ran at once, found nothing,
--   and the bytes that arrived later stayed for ever. A deleted call's object now gets
--   two jobs: one at once and one after the last URL expired.
-- * One add_job per deleted row took an advisory lock per job key until commit: a
--   platform admin deleting a tenant (its calls cascade) or an admin deleting a
--   customer's calls at once could run the server out of lock memory and roll the
--   erasure back. The jobs are now inserted by one statement per delete, without keys
--   (deleting an object already gone is done, so a duplicate costs one request), tagged
--   with the call's tenant as add_job tags them.
-- * Two identical upload requests at once: the second was 409 recording_changed
--   although the call held the very object it asked for. It now answers that object.

drop trigger recording_erased on public.voice_calls;

create function private.voice_call_recordings_erased() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into private.jobs (task, payload, tenant_id, run_at)
  select 'storage-delete', jsonb_build_object('bucket', 'call-recordings', 'object', g.recording_object), g.tenant_id, w.run_at
  from gone g
  -- At once, and after an upload under way when the call went could have landed (its
  -- URL lasts two hours).
  cross join (values (now()), (now() + interval '2 hours 10 minutes')) w(run_at)
  where g.recording_object is not null;
  return null;
end;
$$;
revoke all on function private.voice_call_recordings_erased() from public, anon, authenticated;
create trigger recordings_erased after delete on public.voice_calls
  referencing old table as gone
  for each statement execute function private.voice_call_recordings_erased();

-- Redefined (20261203251000_voice_call_recording_objects.sql): the object asked for,
-- already the call's (an identical request at once), is answered rather than refused.
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
  if v_current is not distinct from v_object then
    return v_object;
  end if;
  if v_current is distinct from p_seen then
    raise exception 'The call''s recording changed meanwhile; ask again' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'recording_changed')::text;
  end if;
  update public.voice_calls v set recording_object = v_object
  where v.tenant_id = p_tenant_id and v.id = p_call_id;
  return v_object;
end;
$$;
