-- A job's lease is renewed while its worker runs it (issue 14, review of the job runner).
--
-- A batch was claimed under one lease (120 s) that nothing renewed, and a serial job
-- (provision) may start well into its batch and then make many partner calls, each with
-- its own timeout. Past the lease, the next run claimed the same job while the first
-- worker was still in it: both looked the tenant's object up, found none and created it
-- (two Botpress bots, two n8n projects; a second Odoo user refused as a duplicate login,
-- which failed the service for good). The late worker's bookkeeping was refused, but
-- only after its partner writes.
--
-- The runner now renews the lease of every job of its batch while the batch runs
-- (shared/jobs/runner.ts, a third of the lease at a time), so a lease runs out only when
-- its worker stopped: died, was killed by the platform, or froze. A renewal never
-- shortens a lease and never revives one already lost: a job another worker may have
-- claimed stays with it.
create function private.renew_job_leases(p_worker text, p_ids bigint[], p_lease_seconds int)
returns table (id bigint)
language sql volatile security definer
set search_path = ''
as $$
  update private.jobs j
  set locked_until = greatest(j.locked_until, now() + make_interval(secs => greatest(p_lease_seconds, 1)))
  where j.id = any (p_ids) and j.locked_by = p_worker and j.locked_until >= now()
  returning j.id
$$;
revoke all on function private.renew_job_leases(text, bigint[], int) from public, anon, authenticated;
grant execute on function private.renew_job_leases(text, bigint[], int) to service_role;
