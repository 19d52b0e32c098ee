-- Schedules, on a hosted project only: pg_cron runs the platform's jobs, and pg_net
-- calls the functions that do their work over HTTP. The URL and the service key are read
-- at run time from Vault (secrets `project_url` and `service_role_key`, which the
-- operator creates: see README, Deploying). Where the extensions are missing — the
-- local embedded Postgres — nothing is scheduled here and `npm start` calls the same
-- endpoints on timers.

-- ------------------------------------------------------------------ the guard

-- Whether this database can run schedules, and if not why: pg_cron (and pg_net for the
-- HTTP calls) must be available, pg_cron preloaded (cron.database_name only exists
-- then) and this database the one it runs in — elsewhere `create extension pg_cron`
-- aborts the migration. A pure function of its inputs, so every branch can be tested
-- on a database without the extensions.
create function private.schedule_skip_reason(
  p_cron_available boolean, p_net_available boolean, p_cron_database text, p_database text
) returns text
language sql immutable
set search_path = ''
as $$
  select case
    when not p_cron_available then 'pg_cron is not available'
    when not p_net_available then 'pg_net is not available'
    when p_cron_database is null then 'pg_cron is not preloaded (cron.database_name is unset)'
    when p_cron_database <> p_database then format('pg_cron runs in database %s, not in %s', p_cron_database, p_database)
  end
$$;
revoke all on function private.schedule_skip_reason(boolean, boolean, text, text) from public, anon, authenticated, service_role;

-- The guard of each schedule below: true where it can be created, else false with a
-- notice saying why (the migration goes on without it).
create function private.can_schedule(p_needs_net boolean) returns boolean
language plpgsql volatile
set search_path = ''
as $$
declare
  v_reason text := private.schedule_skip_reason(
    exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_cron'),
    not p_needs_net or exists (select 1 from pg_catalog.pg_available_extensions where name = 'pg_net'),
    nullif(current_setting('cron.database_name', true), ''),
    current_database());
begin
  if v_reason is not null then
    raise notice 'schedule skipped: %', v_reason;
  end if;
  return v_reason is null;
end;
$$;
revoke all on function private.can_schedule(boolean) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ SLA sweep

-- Every minute, inside the database: the sweep is plain SQL, so no HTTP round trip
-- through a function is needed (locally: POST /functions/v1/tickets/jobs/sla-sweep).
do $$
begin
  if private.can_schedule(false) then
    create extension if not exists pg_cron;
    perform cron.schedule('ticket-sla-sweep', '* * * * *', 'select private.run_sla_sweep()');
  end if;
end
$$;

-- ------------------------------------------------------------------ provisioning

-- The provisioner function: a run every minute, a reconcile pass every ten.
do $$
begin
  if private.can_schedule(true) then
    create extension if not exists pg_cron;
    create extension if not exists pg_net with schema extensions;
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
  if private.can_schedule(true) then
    create extension if not exists pg_cron;
    create extension if not exists pg_net with schema extensions;
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
  if private.can_schedule(false) then
    create extension if not exists pg_cron;
    perform cron.schedule('webhook-history-prune', '17 3 * * *', 'select private.prune_webhook_history()');
  end if;
end
$$;
