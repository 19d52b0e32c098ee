-- A job whose failure hook could not write is held for the hook, not run again (review
-- of the job runner, issue 14).
--
-- A failure hook that meets contention (its rows held past the lock timeout, a deadlock)
-- left its job to its lease (shared/jobs/runner.ts): claimed again, a job that had failed
-- for good at its first attempt ran its work again (a partner call, a delivery) up to
-- max_attempts times, a partner's Retry-After was not kept, and the job's error was never
-- recorded — past its last attempt the hook was told "no attempt finished". Now a failure
-- that would have retried is recorded as any failure is, without the hook (which runs at
-- the next failure); one that would have ended the job is held for its hook: its error
-- recorded, its attempts used up, back in a minute, when its claim runs the hook alone
-- with that error (the runner's path for a job claimed past its last attempt).

create function private.hold_job_for_its_hook(p_worker text, p_job_id bigint, p_error text) returns boolean
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
begin
  update private.jobs j
  set locked_by = null, locked_until = null, attempts = j.max_attempts,
      last_error = left('failure hook pending: ' || coalesce(p_error, ''), 2000),
      run_at = now() + interval '1 minute'
  where j.id = p_job_id and j.locked_by = p_worker and j.locked_until >= now();
  return found;
end;
$$;
revoke all on function private.hold_job_for_its_hook(text, bigint, text) from public, anon, authenticated;
grant execute on function private.hold_job_for_its_hook(text, bigint, text) to service_role;

-- The error a held job's hook is to be told, read by the worker holding the job.
create function private.held_job_error(p_worker text, p_job_id bigint) returns text
language sql stable security definer
set search_path = ''
as $$
  select substr(j.last_error, char_length('failure hook pending: ') + 1) from private.jobs j
  where j.id = p_job_id and j.locked_by = p_worker and j.last_error like 'failure hook pending: %'
$$;
revoke all on function private.held_job_error(text, bigint) from public, anon, authenticated;
grant execute on function private.held_job_error(text, bigint) to service_role;
