-- Call recordings in Storage (issue 14): a call kept its recording's path as the provider
-- reported it (`recording_path`, free text), and nothing let staff play it. Now the
-- provider asks the voice function for a signed URL to upload a call's recording to, and
-- people who may read the call get a short-lived signed URL to download it.
--
-- Where a recording lives: the private bucket `call-recordings`, at
-- `<tenant_id>/<call_id>/recording.<ext>`, one per call. The path is written on the
-- call when the upload URL is handed out (recordings are finished after the call ends,
-- whose event is then long applied), and the download route signs only a path under the
-- call's own `<tenant_id>/<call_id>/` (a path reported by call.ended or written by an
-- agent can name anything: it is shown, never signed).

-- On a hosted project, the private bucket (the local stack keeps the bytes in a folder,
-- shared/storage.ts). Audio only, up to the 50 MiB the function signs an upload for.
do $$
begin
  if exists (select 1 from information_schema.tables where table_schema = 'storage' and table_name = 'buckets') then
    insert into storage.buckets (id, name, public, file_size_limit, allowed_mime_types)
    values ('call-recordings', 'call-recordings', false, 52428800,
            array['audio/mpeg', 'audio/wav', 'audio/ogg', 'audio/webm', 'audio/mp4', 'audio/flac'])
    on conflict (id) do nothing;
  end if;
end
$$;

-- The provider's call by its id, its recording's path written on it: the tenant as for
-- any call event (unknown or deleted: 404; a suspended tenant's calls under way still
-- take their segments, end and recording), the call as for an answer or an end
-- (unknown_call), locked as they lock it. Invoker, for the service role: the provider's
-- path, with the tenant named explicitly.
create function private.voice_call_recording_target(p_tenant_id uuid, p_provider_call_id text, p_extension text)
returns table (call_id uuid, recording_path text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_path text;
begin
  perform private.voice_event_tenant_status(p_tenant_id);
  if p_extension is null or p_extension !~ '^(mp3|wav|ogg|webm|m4a|flac)$' then
    raise exception 'A recording is mp3, wav, ogg, webm, m4a or flac' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', jsonb_build_array(
        jsonb_build_object('field', 'content_type', 'message', 'must be an audio type the recordings bucket takes'))))::text;
  end if;
  select v.id into v_id from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.provider_call_id = p_provider_call_id
  for no key update;
  if v_id is null then
    raise exception 'No such call' using errcode = 'PT404', detail = jsonb_build_object('code', 'unknown_call')::text;
  end if;
  v_path := p_tenant_id::text || '/' || v_id::text || '/recording.' || p_extension;
  -- Asked again (a retried request): nothing to write, and no audit row.
  update public.voice_calls v set recording_path = v_path
  where v.tenant_id = p_tenant_id and v.id = v_id and v.recording_path is distinct from v_path;
  return query select v_id, v_path;
end;
$$;
revoke all on function private.voice_call_recording_target(uuid, text, text) from public, anon, authenticated;
grant execute on function private.voice_call_recording_target(uuid, text, text) to service_role;
