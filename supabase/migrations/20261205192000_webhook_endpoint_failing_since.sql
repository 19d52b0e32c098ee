-- An endpoint is disabled for failing a day, not for 30 failed attempts (issue 14, review
-- of the outbound webhooks).
--
-- Each failed attempt counted, and 30 in a row disabled the endpoint. Deliveries run in
-- parallel, one named queue per ticket, so a receiver down for two minutes while fifty
-- tickets changed spent those 30 in seconds; once disabled, events are no longer written
-- for it (webhook_type_wanted), so a short outage lost every later event. A 429 counted
-- too, though a receiver asking to slow down is up, and its Retry-After was ignored.
--
-- Now: a failure opens a failing period (failing_since, shown to admins); a delivered
-- attempt closes it. The endpoint is disabled when it has failed at least 30 attempts in
-- a row over at least a day (about what Svix and Stripe allow). A 429 is not a failure
-- of the endpoint: the attempt is recorded and retried no sooner than its Retry-After
-- (shared/jobs/tasks/deliver-webhook.ts), the count and the period stay as they are.
alter table public.webhook_endpoints add column failing_since timestamptz;
comment on column public.webhook_endpoints.failing_since is
  'When the current run of failed deliveries began (null: the last attempt was delivered)';
grant select (failing_since) on public.webhook_endpoints to authenticated;

-- Redefined (20261126101800_outbound_webhooks.sql): the failing period ends too.
create or replace function private.webhook_endpoint_reenabled() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.enabled and not old.enabled then
    new.consecutive_failures := 0;
    new.failing_since := null;
    new.disabled_reason := null;
  end if;
  return new;
end;
$$;

-- Redefined (20261126101800_outbound_webhooks.sql): disabled after a day of failures, 429
-- not counted.
create or replace function private.record_webhook_attempt(
  p_delivery_id bigint, p_job_id bigint, p_worker text, p_status_code int, p_error text, p_duration_ms int,
  p_final boolean, p_disable_after int default 30
) returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_d private.webhook_deliveries;
  v_ok boolean := p_status_code between 200 and 299;
  v_failures int;
  v_since timestamptz;
begin
  select * into v_d from private.webhook_deliveries where id = p_delivery_id;
  if v_d.id is null then
    return 'lost';
  end if;
  perform 1 from public.webhook_endpoints e where e.tenant_id = v_d.tenant_id and e.id = v_d.endpoint_id for no key update;
  select * into v_d from private.webhook_deliveries where id = p_delivery_id for no key update;
  if v_d.status <> 'pending' or not private.job_lease_held(p_job_id, p_worker) then
    return 'lost';
  end if;
  insert into private.webhook_attempts (delivery_id, status_code, error, duration_ms)
  values (p_delivery_id, p_status_code, left(p_error, 1000), p_duration_ms);
  if v_ok then
    update private.webhook_deliveries set status = 'delivered', delivered_at = now(), attempts = attempts + 1,
      last_status_code = p_status_code, last_error = null
    where id = p_delivery_id;
    update public.webhook_endpoints set consecutive_failures = 0, failing_since = null
    where tenant_id = v_d.tenant_id and id = v_d.endpoint_id
      and (consecutive_failures <> 0 or failing_since is not null);
    return 'delivered';
  end if;
  if p_status_code is distinct from 429 then
    update public.webhook_endpoints
    set consecutive_failures = consecutive_failures + 1, failing_since = coalesce(failing_since, now())
    where tenant_id = v_d.tenant_id and id = v_d.endpoint_id
    returning consecutive_failures, failing_since into v_failures, v_since;
    if v_failures >= p_disable_after and v_since <= now() - interval '1 day' then
      update public.webhook_endpoints set enabled = false,
        disabled_reason = format('disabled after %s failed deliveries in a row since %s; last: %s', v_failures,
                                 to_char(v_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                 coalesce(p_status_code::text, left(p_error, 200)))
      where tenant_id = v_d.tenant_id and id = v_d.endpoint_id;
    end if;
  end if;
  update private.webhook_deliveries set status = case when p_final then 'failed' else 'pending' end, attempts = attempts + 1,
    last_status_code = p_status_code, last_error = left(p_error, 1000)
  where id = p_delivery_id;
  return case when p_final then 'failed' else 'retry' end;
end;
$$;

-- The audit trigger names the table's timestamp columns when it is created; recreate it
-- so failing_since is among them.
select private.enable_audit('public.webhook_endpoints');
