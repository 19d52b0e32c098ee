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

-- ------------------------------------------------------------------ the worker endpoint

-- Every 10 seconds: each call runs due jobs of every task in small batches and stops
-- early (within the Edge Function limits).
do $$
begin
  if private.can_schedule(true) then
    create extension if not exists pg_cron;
    create extension if not exists pg_net with schema extensions;
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
