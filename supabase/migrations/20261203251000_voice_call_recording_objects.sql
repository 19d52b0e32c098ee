-- Call recordings, after review (issue 14; 20261203250000_voice_call_recordings.sql).
--
-- The stored recording's place was written into `recording_path`, the provider's own
-- text, which call.ended also writes (coalesce(new, old), while the call is open or was
-- ended by the stale-call sweep): a real end arriving after the upload replaced it, the
-- recording answered 404 and its bytes were orphaned. And asking again with another type
-- moved the path away from a finished recording. Now:
--
-- * `recording_object` holds the call's own object in the `call-recordings` bucket and
--   nothing else: its format is checked against the row's own tenant and id, only the
--   provider's path writes it (people have no update right on it: the table's update
--   grants name their columns), and `recording_path` is the provider's text again.
-- * Two functions for the provider's upload: one reads the call's object (the tenant and
--   the call checked as for any call event), the other writes it only if it is still the
--   one read. Between them the voice function asks the storage whether that object was
--   uploaded: one that was is kept (409 recording_exists), whatever type is asked now.
-- * The bucket is made private, with its size and types, even where one of that name
--   existed before this migration (created by hand, public): a public bucket would serve
--   every tenant's recordings to anyone with a path.

alter table public.voice_calls add column recording_object text;
alter table public.voice_calls add constraint voice_calls_recording_object_check check (
  recording_object is null
  or recording_object ~ ('^' || tenant_id::text || '/' || id::text || '/recording\.(mp3|wav|ogg|webm|m4a|flac)$')
);
-- Paths written by the first version, of the call's own object, move to the new column.
update public.voice_calls
set recording_object = recording_path, recording_path = null
where recording_path ~ ('^' || tenant_id::text || '/' || id::text || '/recording\.(mp3|wav|ogg|webm|m4a|flac)$');

do $$
begin
  if exists (select 1 from information_schema.tables where table_schema = 'storage' and table_name = 'buckets') then
    insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
    values ('call-recordings', 'call-recordings', false, 52428800,
            array['audio/mpeg', 'audio/wav', 'audio/ogg', 'audio/webm', 'audio/mp4', 'audio/flac'])
    on conflict (id) do update
      set public = false, file_size_limit = excluded.file_size_limit, allowed_mime_types = excluded.allowed_mime_types;
  end if;
end
$$;

drop function private.voice_call_recording_target(uuid, text, text);

-- The provider's call by its id and its recording's object, if one was given: the tenant
-- as for any call event (unknown or deleted: 404; a suspended tenant's calls still take
-- their recording), the call as for an answer or an end (unknown_call).
create function private.voice_call_recording_of(p_tenant_id uuid, p_provider_call_id text)
returns table (call_id uuid, recording_object text)
language plpgsql stable
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_object text;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  select v.id, v.recording_object into v_id, v_object from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id;
  if v_id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  return query select v_id, v_object;
end;
$$;
revoke all on function private.voice_call_recording_of(uuid, text) from public, anon, authenticated;
grant execute on function private.voice_call_recording_of(uuid, text) to service_role;

-- The call's recording object for a type, written if the call's object is still
-- p_seen (what voice_call_recording_of read, and the storage was asked about): another
-- request in between is 409 recording_changed, to be asked again. The same object again
-- writes nothing (no audit row).
create function private.voice_call_recording_set(p_tenant_id uuid, p_call_id uuid, p_extension text, p_seen text)
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
  if v_current is distinct from p_seen then
    raise exception 'The call''s recording changed meanwhile; ask again' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'recording_changed')::text;
  end if;
  v_object := p_tenant_id::text || '/' || p_call_id::text || '/recording.' || p_extension;
  update public.voice_calls v set recording_object = v_object
  where v.tenant_id = p_tenant_id and v.id = p_call_id and v.recording_object is distinct from v_object;
  return v_object;
end;
$$;
revoke all on function private.voice_call_recording_set(uuid, uuid, text, text) from public, anon, authenticated;
grant execute on function private.voice_call_recording_set(uuid, uuid, text, text) to service_role;
