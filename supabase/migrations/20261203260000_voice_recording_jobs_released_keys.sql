-- The wait of a call's other recording objects' jobs, after review (issue 14;
-- 20261203259000_voice_recording_jobs_by_key.sql). By key alone it missed two kinds:
--
-- * A job whose object was replaced again while it ran: add_job took its key from it and
--   queued the new job behind it, in the queue 'job:' || key (20261126100350_jobs.sql). If
--   that run then failed (the storage away, the call changed), it was pending again with
--   no key and a backoff of seconds, and decided while a URL signed just now was valid:
--   it could give the old object back, and the newest upload be deleted later. It is now
--   found by that queue too (the queue index: six more probes).
-- * A job whose lease ran out (its worker died): claimed again at once, since its run_at
--   had passed. Its run_at is moved too; a job under a live lease is left to finish (its
--   window is its lease, two minutes at most).

-- Redefined (20261203259000_voice_recording_jobs_by_key.sql): released keys and expired leases.
create or replace function private.voice_call_recording_jobs_wait(p_tenant_id uuid, p_call_id uuid, p_object text)
returns void
language sql security definer
set search_path = ''
as $$
  with k as (
    select array['mp3', 'wav', 'ogg', 'webm', 'm4a', 'flac']::text[] as exts,
           'storage-delete:call-recordings/' || p_tenant_id::text || '/' || p_call_id::text || '/recording.' as prefix
  ),
  keys as (
    select pg_catalog.array_agg(k.prefix || e) as keys, pg_catalog.array_agg('job:' || k.prefix || e) as queues
    from k cross join pg_catalog.unnest(k.exts) e
    where k.prefix || e <> 'storage-delete:call-recordings/' || p_object
  )
  update private.jobs j set run_at = greatest(j.run_at, now() + interval '2 hours 10 minutes')
  from keys
  where (j.job_key = any (keys.keys) or (j.job_key is null and j.queue = any (keys.queues)))
    and j.task = 'storage-delete' and j.dead_at is null
    and (j.locked_by is null or j.locked_until < now());
$$;
