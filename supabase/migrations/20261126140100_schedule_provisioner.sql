-- On a hosted project pg_cron + pg_net call the provisioner function: a run every
-- minute, a reconcile pass every ten. The URL and the service key are read at run time
-- from Vault (secrets `project_url` and `service_role_key`, which the operator creates:
-- see README, Deploying). Where the extensions are missing — the local embedded
-- Postgres — nothing is scheduled and `npm start` calls the provisioner on a timer.
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
