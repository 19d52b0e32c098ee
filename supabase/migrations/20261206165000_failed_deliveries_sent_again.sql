-- A failed delivery can be sent again.
--
-- A delivery that used its attempts while its endpoint kept working otherwise (one event
-- the receiver refused for a day, its other deliveries succeeding) ends `failed`, and
-- nothing sent it again: re-enabling an endpoint queues its pending deliveries only, and
-- retrying its dead job (private.retry_job) read the delivery `failed` and ended without
-- sending. Admins (and API keys with webhooks:manage) now send it again with
-- `POST /tenants/{id}/webhooks/{endpointId}/deliveries/retry` ({delivery_id}): the
-- delivery is pending again, keeping its attempts' history and its webhook-id (so a
-- receiver that did take it deduplicates), and gets its job again in its queue (where
-- events of its ticket queued since may go before or after it: a replay, which receivers
-- place by its occurred_at); on a disabled endpoint it waits for re-enabling.

create function private.retry_webhook_delivery(p_tenant_id uuid, p_endpoint_id uuid, p_delivery_id bigint)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_d private.webhook_deliveries;
  v_enabled boolean;
begin
  if p_tenant_id is null or not (p_tenant_id = any (private.tenant_ids('admin', true))) then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  -- As the re-enabling of an endpoint: the tenant's webhook lock, then the delivery, then
  -- its job (lock levels 8 and 9).
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
  update private.webhook_deliveries set status = 'pending', last_error = null where id = p_delivery_id;
  select e.enabled into v_enabled from public.webhook_endpoints e where e.tenant_id = p_tenant_id and e.id = p_endpoint_id;
  if v_enabled then
    perform private.queue_webhook_delivery(p_tenant_id, p_delivery_id, p_endpoint_id, v_d.ordering_key);
  end if;
  return jsonb_build_object('id', p_delivery_id, 'status', 'pending', 'queued', v_enabled);
end;
$$;
revoke all on function private.retry_webhook_delivery(uuid, uuid, bigint) from public, anon, authenticated;
grant execute on function private.retry_webhook_delivery(uuid, uuid, bigint) to authenticated, service_role;
