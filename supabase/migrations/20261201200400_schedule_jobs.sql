-- The schedules of recurring work, now jobs of the one queue: the SLA sweep every
-- minute, the provisioning reconcile pass every ten minutes, webhook history pruning
-- daily (03:17 UTC). The runner adds their jobs when they are due (add_scheduled_jobs).
insert into private.job_schedules (name, task, every, next_run_at) values
  ('sla-sweep', 'sla-sweep', interval '1 minute', now()),
  ('reconcile', 'reconcile', interval '10 minutes', now()),
  ('prune', 'prune', interval '1 day', date_trunc('day', now() at time zone 'utc') at time zone 'utc' + interval '3 hours 17 minutes');

-- On a hosted project pg_cron + pg_net call the one worker endpoint every 10 seconds
-- (URL and key from Vault, secrets `project_url` and `service_role_key`: see README,
-- Deploying); each call runs due jobs of every task in small batches and stops early.
-- The schedules of the separate workers this replaces go. Where the extensions are
-- missing — the local embedded Postgres — nothing is scheduled and `npm start` calls
-- the endpoint on a timer.
do $$
begin
  if private.can_schedule(true) then
    create extension if not exists pg_cron;
    create extension if not exists pg_net with schema extensions;
    perform cron.unschedule(j.jobname) from cron.job j
    where j.jobname in ('provisioner-run', 'provisioner-reconcile', 'webhook-delivery', 'ticket-sla-sweep', 'webhook-history-prune');
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
