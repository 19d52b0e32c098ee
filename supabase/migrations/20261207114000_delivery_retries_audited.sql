-- Sending a failed delivery again is audited (review, issue 14).
--
-- An admin or an API key with webhooks:manage sends a failed delivery again
-- (POST /tenants/{id}/webhooks/{endpointId}/deliveries/retry): the tenant's data goes out
-- once more, to the endpoint's URL. Deliveries live in the private schema, which the
-- trail does not audit, so nothing said who did it or when; the endpoint's other changes
-- (registering, editing, rotating, deleting) were all audited. The retry now writes an
-- entry: table `webhook_deliveries`, the delivery's id, its status from failed to
-- pending, with the caller as actor. The delivery's payload stays out of it.

-- Redefined (20261206165000_failed_deliveries_sent_again.sql): an audit entry.
create or replace function private.retry_webhook_delivery(p_tenant_id uuid, p_endpoint_id uuid, p_delivery_id bigint)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_d private.webhook_deliveries;
  v_endpoint public.webhook_endpoints;
  v_type text;
  v_claims jsonb;
begin
  if p_tenant_id is null or not (p_tenant_id = any (private.tenant_ids('admin', true))) then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  -- As the re-enabling of an endpoint (private.webhook_endpoint_requeue): the tenant's
  -- webhook lock, then the delivery, then its job row written directly (no job-queue
  -- lock, which a ticket write takes before its webhook lock: taking it here after would
  -- turn the order round).
  perform pg_catalog.pg_advisory_xact_lock(private.webhook_tenant_lock_key(p_tenant_id));
  select * into v_d from private.webhook_deliveries d
  where d.tenant_id = p_tenant_id and d.endpoint_id = p_endpoint_id and d.id = p_delivery_id
  for no key update;
  if v_d.id is null then
    raise exception 'Delivery not found' using errcode = 'PT404';
  end if;
  if v_d.status <> 'failed' then
    raise exception 'Only a failed delivery is sent again; this one is %', v_d.status using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_failed', 'details', jsonb_build_object('status', v_d.status))::text;
  end if;
  -- Its last job still finishing (it recorded the failure; its failure hook may yet run,
  -- and would mark the delivery failed again behind the retry).
  if exists (select 1 from private.jobs j where j.job_key = 'delivery:' || p_delivery_id and j.locked_by is not null) then
    raise exception 'The delivery''s last attempt is still finishing; try again in a moment' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'delivery_busy')::text;
  end if;
  select * into v_endpoint from public.webhook_endpoints e where e.tenant_id = p_tenant_id and e.id = p_endpoint_id;
  select ev.type into v_type from private.webhook_events ev where ev.id = v_d.event_id;
  if cardinality(v_endpoint.event_types) > 0 and v_type <> all (v_endpoint.event_types) then
    raise exception 'The endpoint no longer subscribes to %', v_type using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_subscribed', 'details', jsonb_build_object('type', v_type))::text;
  end if;
  update private.webhook_deliveries set status = 'pending', last_error = null where id = p_delivery_id;
  -- Sent again is sent out again: the trail says who did it (deliveries are no audited
  -- table; the entry is written here, as audit_row would write one).
  v_claims := coalesce(auth.jwt(), '{}'::jsonb);
  insert into public.audit_logs (
    tenant_id, table_name, record_key, action, actor_user_id, actor_issuer, actor_subject, actor_role,
    old_data, new_data, changed_fields, image_bytes
  )
  select p_tenant_id, 'webhook_deliveries', jsonb_build_object('id', p_delivery_id), 'UPDATE',
         case when v_claims ? 'sub' then private.current_user_id() end, v_claims ->> 'iss', v_claims ->> 'sub',
         coalesce(nullif(v_claims ->> 'role', ''), 'postgres'), i.old_data, i.new_data, array['last_error', 'status'],
         pg_catalog.pg_column_size(i.old_data) + pg_catalog.pg_column_size(i.new_data)
  from (select jsonb_build_object('id', p_delivery_id, 'endpoint_id', p_endpoint_id, 'status', 'failed',
                                  'last_error', v_d.last_error) as old_data,
               jsonb_build_object('id', p_delivery_id, 'endpoint_id', p_endpoint_id, 'status', 'pending',
                                  'last_error', null) as new_data) i;
  if v_endpoint.enabled then
    -- A new job (a dead one with the key goes): behind its ordering key's queued jobs.
    delete from private.jobs j where j.job_key = 'delivery:' || p_delivery_id;
    insert into private.jobs (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
    values ('deliver-webhook', jsonb_build_object('tenant_id', p_tenant_id, 'delivery_id', p_delivery_id), p_tenant_id,
            'webhook:' || p_endpoint_id || ':' || v_d.ordering_key, 'delivery:' || p_delivery_id, pg_catalog.now(), 25);
  end if;
  return jsonb_build_object('id', p_delivery_id, 'status', 'pending', 'queued', v_endpoint.enabled);
end;
$$;

