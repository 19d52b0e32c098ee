-- On a hosted project, pg_cron runs the SLA sweep every minute inside the database (it
-- is plain SQL, so no HTTP round trip through a function is needed). Where pg_cron is
-- not available — the local embedded Postgres — nothing is scheduled here and
-- `npm start` calls POST /functions/v1/tickets/jobs/sla-sweep on a timer instead.
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    create extension if not exists pg_cron;
    perform cron.schedule('ticket-sla-sweep', '* * * * *', 'select private.run_sla_sweep()');
  end if;
end
$$;
