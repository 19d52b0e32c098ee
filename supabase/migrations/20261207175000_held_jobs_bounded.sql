-- A job held for its failure hook is held a bounded time, never past a newer job of its
-- key (review of 20261207173000, issue 14).
--
-- A hook that met contention at every claim (a statement always timed out behind a
-- stuck session) held its job for ever: never dead, and its named queue (a webhook
-- endpoint's ordering key, a service's provisioning) blocked behind it. And a job whose
-- key a newer job took meanwhile was held too, the newer one waiting behind it, instead
-- of ending at once as fail_job ends a superseded job. A job is now held at most 30
-- times (about half an hour); then, and for a superseded job, the hold is refused and the
-- runner records the failure without the hook (fail_job: dead, or superseded).
-- held_job_error, called outside a transaction, gets its own lock timeout as every such
-- function has (20261206034000).

alter table private.jobs add column hook_holds int not null default 0;

-- Redefined (20261207173000_failure_held_for_its_hook.sql): bounded, never superseded.
create or replace function private.hold_job_for_its_hook(p_worker text, p_job_id bigint, p_error text) returns boolean
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
begin
  update private.jobs j
  set locked_by = null, locked_until = null, attempts = j.max_attempts, hook_holds = j.hook_holds + 1,
      last_error = left('failure hook pending: ' || coalesce(p_error, ''), 2000),
      run_at = now() + interval '1 minute'
  where j.id = p_job_id and j.locked_by = p_worker and j.locked_until >= now()
    and not j.superseded and j.hook_holds < 30;
  return found;
end;
$$;

alter function private.held_job_error(text, bigint) set lock_timeout = '30s';
