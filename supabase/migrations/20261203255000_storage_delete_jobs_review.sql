-- The storage-delete jobs, after a last read (issue 14; 20261203252000_storage_objects_erased.sql,
-- 20261203253000_storage_objects_erased_review.sql):
--
-- * They took the queue's default of 25 attempts: with its backoff (capped at an hour) a
--   storage away for about 14 hours left them dead, and the recording in the bucket for
--   good once dead jobs were pruned. They now have 1,000 (about 41 days of hourly tries);
--   an operator still retries a dead one with private.retry_job.
-- * The replacement trigger's function was the first version's, which handled deletes
--   too and tagged its jobs with no tenant: now a function of its own, for replacements
--   only, tagged with the call's tenant like the deletes' jobs.

-- Redefined (20261203253000_storage_objects_erased_review.sql): 1,000 attempts.
create or replace function private.voice_call_recordings_erased() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  insert into private.jobs (task, payload, tenant_id, run_at, max_attempts)
  select 'storage-delete', jsonb_build_object('bucket', 'call-recordings', 'object', g.recording_object), g.tenant_id, w.run_at,
         1000
  from gone g
  -- At once, and after an upload under way when the call went could have landed (its
  -- URL lasts two hours).
  cross join (values (now()), (now() + interval '2 hours 10 minutes')) w(run_at)
  where g.recording_object is not null;
  return null;
end;
$$;

-- An object replaced before its upload finished: deleted after its URL expired (two
-- hours) and a margin for an upload under way then, unless the call holds it again by
-- then (the job asks private.storage_object_in_use). Keyed by the object, so replacing it
-- again moves that one job later rather than adding another.
create function private.voice_call_recording_replaced() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.add_job('storage-delete',
    jsonb_build_object('bucket', 'call-recordings', 'object', old.recording_object, 'tenant_id', old.tenant_id),
    'storage-delete:call-recordings/' || old.recording_object, now() + interval '2 hours 10 minutes', 1000);
  return null;
end;
$$;
revoke all on function private.voice_call_recording_replaced() from public, anon, authenticated;

drop trigger recording_replaced on public.voice_calls;
create trigger recording_replaced after update of recording_object on public.voice_calls
  for each row when (old.recording_object is not null and new.recording_object is distinct from old.recording_object)
  execute function private.voice_call_recording_replaced();
drop function private.voice_call_recording_erased();
