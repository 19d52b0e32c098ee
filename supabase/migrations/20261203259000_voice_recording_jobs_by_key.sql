-- The wait of a call's other recording objects' jobs, by their keys (issue 14; a read of
-- 20261203258000_voice_recording_urls_outlive_jobs.sql). It found them by task and
-- payload, which no index of private.jobs covers: every request for an upload URL read
-- every pending job of the queue (a webhook backlog of 100,000 deliveries included).
-- The jobs it moves are the replacement trigger's, keyed by their object, and a call has
-- at most six objects (one per type): six probes of the job-key index (an index scan
-- with job_key = ANY of the six, 0.4 ms a call beside 50,000 keyed jobs, measured by hand
-- with EXPLAIN ANALYZE).

-- Redefined (20261203258000_voice_recording_urls_outlive_jobs.sql): by key.
create or replace function private.voice_call_recording_jobs_wait(p_tenant_id uuid, p_call_id uuid, p_object text)
returns void
language sql security definer
set search_path = ''
as $$
  -- An array of the six keys (not a subquery, which the planner joined against a scan of
  -- the whole index): one index probe each.
  with k as (select 'storage-delete:call-recordings/' || p_tenant_id::text || '/' || p_call_id::text || '/recording.' as prefix)
  update private.jobs j set run_at = greatest(j.run_at, now() + interval '2 hours 10 minutes')
  from k
  where j.job_key = any (array[k.prefix || 'mp3', k.prefix || 'wav', k.prefix || 'ogg', k.prefix || 'webm',
                               k.prefix || 'm4a', k.prefix || 'flac'])
    and j.job_key <> 'storage-delete:call-recordings/' || p_object
    and j.locked_by is null and j.dead_at is null;
$$;
