-- Statements the functions send outside a transaction of theirs wait at most 30 s for a
-- lock, as every statement of a request's or job's transaction does (shared/db.ts sets
-- `lock_timeout` with its BEGIN, DB_LOCK_TIMEOUT_MS).
--
-- The telephony provider's call events and recordings (without a tenant API key) and the
-- job runner's queue statements run one autocommit statement each: there was no BEGIN to
-- set the timeout with, so a statement queued behind a lock nobody let go (a session left
-- in a transaction, a migration's ALTER TABLE waiting behind it and everything queued
-- behind that) held its pooled connection for as long as that lasted, and the provider's
-- request hung. A function's own SET clause bounds the wait, whatever connection or pooler
-- it runs through (a session-level SET would leak to other clients of a transaction-mode
-- pooler): past it, 55P03, which the functions answer as 503 `timeout` with Retry-After.
-- Called inside a transaction (a key's call events), the function's setting applies for
-- its duration, the same 30 s. The rate-limit and key-read counters are left as they are:
-- they lock only their own counter rows, each for one short statement.

do $$
declare
  v_fn regprocedure;
begin
  for v_fn in
    select p.oid::regprocedure
    from pg_catalog.pg_proc p join pg_catalog.pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'private' and p.proname = any (array[
      -- the provider's call path (functions/voice/routes/provider.ts, recordings.ts)
      'voice_call_event_held', 'voice_call_started', 'voice_call_answered', 'voice_call_ended',
      'voice_call_segments_appended', 'voice_call_segments_append_outcome',
      'voice_call_recording_of', 'voice_call_recording_set',
      -- the job runner (shared/jobs/runner.ts)
      'add_scheduled_jobs', 'claim_jobs', 'complete_jobs', 'fail_job', 'release_jobs', 'renew_job_leases'])
  loop
    execute pg_catalog.format('alter function %s set lock_timeout = %L', v_fn, '30s');
  end loop;
end;
$$;
