-- A lease renewal skips a job row another transaction holds (known limit of stop 57,
-- issue 14).
--
-- The runner renews the leases of all the jobs it holds in one statement
-- (private.renew_job_leases), outside a transaction of its own, with a 30-second lock
-- timeout. One job row held elsewhere (its own failure hook recording an outcome, a
-- deferral, an operator's session) made the statement wait, then fail whole: no lease
-- was renewed, and a long run's other jobs could run past their leases and be claimed
-- again by another worker. The rows held elsewhere are now skipped (their holder writes
-- the row anyway; the next tick renews what is still held), the others renewed at once.

-- Redefined (20261206011000_job_lease_renewal.sql): skip locked, keeping the lock timeout
-- 20261206034000 set.
create or replace function private.renew_job_leases(p_worker text, p_ids bigint[], p_lease_seconds int)
returns table (id bigint)
language sql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
  update private.jobs j
  set locked_until = greatest(j.locked_until, now() + make_interval(secs => greatest(p_lease_seconds, 1)))
  where j.id = any (array(
    select h.id from private.jobs h
    where h.id = any (p_ids) and h.locked_by = p_worker and h.locked_until >= now()
    order by h.id
    for no key update of h skip locked))
  returning j.id
$$;
