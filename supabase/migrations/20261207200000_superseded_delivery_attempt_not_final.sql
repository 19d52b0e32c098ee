-- A delivery whose endpoint is enabled again while its last attempt is being sent is left
-- to the new job (review of the outbound webhooks).
--
-- Enabling an endpoint again queues a new job for every pending delivery and marks one
-- being sent superseded (20261207100000): it finishes its attempt, and the new job, next
-- in the delivery's queue, goes on. But the attempt recorded itself final when the old
-- job was on its last attempt: the delivery was marked failed, the new job found it no
-- longer pending and ended, and the delivery re-enabling was to send was lost. A
-- superseded job's attempt is now never final; the new job has its own attempts.

-- Redefined (20261206166000_delivery_gone_in_flight_ends_its_job.sql): a superseded
-- job's attempt is not final.
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
  v_held boolean := false;
  v_final boolean := p_final;
begin
  select * into v_d from private.webhook_deliveries where id = p_delivery_id;
  if v_d.id is null then
    return case when private.job_lease_held(p_job_id, p_worker) then 'gone' else 'lost' end;
  end if;
  perform 1 from public.webhook_endpoints e where e.tenant_id = v_d.tenant_id and e.id = v_d.endpoint_id for no key update;
  select * into v_d from private.webhook_deliveries where id = p_delivery_id for no key update;
  if not private.job_lease_held(p_job_id, p_worker) then
    return 'lost';
  end if;
  if v_d.id is null or v_d.status <> 'pending' then
    return 'gone';
  end if;
  -- Read under the endpoint's lock, which the enabling that supersedes a job holds.
  if v_final and exists (select 1 from private.jobs j where j.id = p_job_id and j.superseded) then
    v_final := false;
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
    -- Failing a day; or this delivery is out of retries while the endpoint fails: held.
    v_held := v_final and v_failures >= p_disable_after;
    if v_failures >= p_disable_after and (v_since <= now() - interval '1 day' or v_held) then
      update public.webhook_endpoints set enabled = false,
        disabled_reason = format('disabled after %s failed deliveries in a row since %s; last: %s', v_failures,
                                 to_char(v_since at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
                                 coalesce(p_status_code::text, left(p_error, 200)))
      where tenant_id = v_d.tenant_id and id = v_d.endpoint_id;
    end if;
  end if;
  update private.webhook_deliveries set status = case when v_final and not v_held then 'failed' else 'pending' end,
    attempts = attempts + 1, last_status_code = p_status_code, last_error = left(p_error, 1000)
  where id = p_delivery_id;
  return case when v_held then 'held' when v_final then 'failed' else 'retry' end;
end;
$$;
