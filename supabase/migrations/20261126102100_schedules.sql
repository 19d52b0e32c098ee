-- Schedules: recurring work, as jobs of the one queue (20261126100350_jobs.sql). The
-- runner adds their jobs when they are due (private.add_scheduled_jobs), each under its
-- own job key. On a hosted project pg_cron + pg_net call the one worker endpoint, the
-- jobs function; the URL and the service key are read at run time from Vault (secrets
-- `project_url` and `service_role_key`, which the operator creates: see README,
-- Deploying). Where the extensions are missing — the local embedded Postgres — nothing
-- is scheduled here and `npm start` calls the same endpoint on a timer.

-- ------------------------------------------------------------------ recurring jobs

-- The SLA sweep every minute (20261126100800_sla.sql), the provisioning reconcile pass
-- every ten minutes (20261126101600_provisioning.sql), webhook history pruning daily at
-- 03:17 UTC (20261126102000_webhook_retention.sql).
insert into private.job_schedules (name, task, every, next_run_at) values
  ('sla-sweep', 'sla-sweep', interval '1 minute', now()),
  ('reconcile', 'reconcile', interval '10 minutes', now()),
  ('prune', 'prune', interval '1 day', date_trunc('day', now() at time zone 'utc') at time zone 'utc' + interval '3 hours 17 minutes');

-- ------------------------------------------------------------------ the worker endpoint

-- Every 10 seconds: each call runs due jobs of every task in small batches and stops
-- early (within the Edge Function limits).
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and exists (select 1 from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_cron;
    create extension if not exists pg_net;
    perform cron.schedule('jobs-run', '10 seconds', $job$
      select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/jobs/run',
        headers := jsonb_build_object(
          'Content-Type', 'application/json',
          'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
        body := '{"budget_ms": 25000}'::jsonb,
        timeout_milliseconds := 60000)
    $job$);
  end if;
end
$$;
