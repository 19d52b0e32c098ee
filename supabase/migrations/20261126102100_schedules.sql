-- Schedules, on a hosted project only: pg_cron runs the platform's jobs, and pg_net
-- calls the functions that do their work over HTTP. The URL and the service key are read
-- at run time from Vault (secrets `project_url` and `service_role_key`, which the
-- operator creates: see README, Deploying). Where the extensions are missing — the
-- local embedded Postgres — nothing is scheduled here and `npm start` calls the same
-- endpoints on timers.

-- ------------------------------------------------------------------ SLA sweep

-- Every minute, inside the database: the sweep is plain SQL, so no HTTP round trip
-- through a function is needed (locally: POST /functions/v1/tickets/jobs/sla-sweep).
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    create extension if not exists pg_cron;
    perform cron.schedule('ticket-sla-sweep', '* * * * *', 'select private.run_sla_sweep()');
  end if;
end
$$;

-- ------------------------------------------------------------------ provisioning

-- The provisioner function: a run every minute, a reconcile pass every ten.
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and exists (select 1 from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_cron;
    create extension if not exists pg_net;
    perform cron.schedule('provisioner-run', '* * * * *', $job$
      select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/provisioner/run',
        headers := jsonb_build_object(
          'Content-Type', 'application/json',
          'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
        body := '{"budget_ms": 50000}'::jsonb,
        timeout_milliseconds := 60000)
    $job$);
    perform cron.schedule('provisioner-reconcile', '*/10 * * * *', $job$
      select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/provisioner/reconcile',
        headers := jsonb_build_object(
          'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
        timeout_milliseconds := 30000)
    $job$);
  end if;
end
$$;

-- ------------------------------------------------------------------ webhook delivery

-- The delivery job every 10 seconds.
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron')
     and exists (select 1 from pg_available_extensions where name = 'pg_net') then
    create extension if not exists pg_cron;
    create extension if not exists pg_net;
    perform cron.schedule('webhook-delivery', '10 seconds', $job$
      select net.http_post(
        url := (select decrypted_secret from vault.decrypted_secrets where name = 'project_url') || '/functions/v1/webhooks/jobs/deliver',
        headers := jsonb_build_object(
          'Authorization', 'Bearer ' || (select decrypted_secret from vault.decrypted_secrets where name = 'service_role_key')),
        timeout_milliseconds := 60000)
    $job$);
  end if;
end
$$;

-- ------------------------------------------------------------------ webhook history

-- Pruned daily (20261126102000_webhook_retention.sql), inside the database.
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pg_cron') then
    create extension if not exists pg_cron;
    perform cron.schedule('webhook-history-prune', '17 3 * * *', 'select private.prune_webhook_history()');
  end if;
end
$$;
