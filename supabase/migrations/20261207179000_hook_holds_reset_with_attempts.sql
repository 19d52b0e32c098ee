-- A job's holds for its failure hook start over with its attempts (review of
-- 20261207175000, issue 14).
--
-- hook_holds bounds how often a job is held for its failure hook. An operator's
-- retry_job, add_job taking a pending or dead job over with a new payload, and a
-- schedule reviving its job all start the job over (attempts back to 0) but kept the
-- count: a job key once held 30 times (provision:<tenant>:<service>) then ended without
-- its hook at its first contention from then on. Whatever starts a job over starts its
-- holds over too.

create function private.jobs_hook_holds_follow_attempts() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.hook_holds := 0;
  return new;
end;
$$;
revoke all on function private.jobs_hook_holds_follow_attempts() from public, anon, authenticated;

create trigger hook_holds_follow_attempts before update of attempts on private.jobs
  for each row when (new.attempts = 0 and old.hook_holds > 0)
  execute function private.jobs_hook_holds_follow_attempts();
