-- Outbound webhooks when the tenant's plan does not include outbound_webhooks (issue 15).
-- Endpoints could already not be created, listed or changed without the feature
-- (20261202071000_usage_quotas.sql and the routes' feature guard); events still went
-- out to the endpoints a tenant kept after a downgrade. Decided:
-- * No new event is written for a tenant without the feature: nothing is queued while
--   it is off, and turning it back on does not replay what happened meanwhile.
-- * A delivery already queued when the feature went off is not sent: its job ends it as
--   `failed`, last_error naming the plan, without an HTTP request and without counting
--   against the endpoint's failures (the endpoint did nothing wrong). It is not kept
--   waiting for a later upgrade, unlike a disabled endpoint's deliveries: an upgrade
--   weeks later should not fire stale events at a receiver.
-- * The endpoints themselves are kept, as they were (removing is always allowed).

-- Redefined (20261126101800_outbound_webhooks.sql): no outbox row for a tenant whose plan
-- lacks outbound_webhooks. Asked after the listener check, so only tenants with an
-- enabled endpoint pay the plan lookup.
create or replace function private.emit_webhook_event(p_tenant_id uuid, p_type text, p_ordering_key text, p_payload jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_event bigint;
  v_d record;
begin
  if not exists (select 1 from public.webhook_endpoints e
                 where e.tenant_id = p_tenant_id and e.enabled
                   and (cardinality(e.event_types) = 0 or p_type = any (e.event_types))) then
    return; -- nobody listens: no outbox row
  end if;
  if not private.tenant_has_feature(p_tenant_id, 'outbound_webhooks') then
    return; -- the plan sends no webhooks
  end if;
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('webhook-order:' || p_tenant_id || ':' || p_ordering_key, 0));
  insert into private.webhook_events (tenant_id, type, ordering_key, payload)
  values (p_tenant_id, p_type, p_ordering_key, p_payload)
  returning id into v_event;
  for v_d in
    insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
    select p_tenant_id, e.id, v_event, p_ordering_key from public.webhook_endpoints e
    where e.tenant_id = p_tenant_id and e.enabled and (cardinality(e.event_types) = 0 or p_type = any (e.event_types))
    order by e.id
    returning id, endpoint_id
  loop
    perform private.queue_webhook_delivery(p_tenant_id, v_d.id, v_d.endpoint_id, p_ordering_key);
  end loop;
end;
$$;
revoke all on function private.emit_webhook_event(uuid, text, text, jsonb) from public, anon, authenticated;

-- The delivery job asks this before sending: a pending delivery of a tenant whose plan
-- lacks outbound_webhooks is ended (`failed`, with the reason) and true is answered —
-- not sent. False otherwise, changing nothing. For the worker (service role).
create function private.webhook_delivery_withheld(p_delivery_id bigint) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_tenant uuid;
begin
  select d.tenant_id into v_tenant from private.webhook_deliveries d where d.id = p_delivery_id and d.status = 'pending';
  if v_tenant is null or private.tenant_has_feature(v_tenant, 'outbound_webhooks') then
    return false;
  end if;
  update private.webhook_deliveries d
  set status = 'failed', last_error = 'not sent: the tenant''s plan does not include outbound_webhooks'
  where d.id = p_delivery_id and d.status = 'pending';
  return true;
end;
$$;
revoke all on function private.webhook_delivery_withheld(bigint) from public, anon, authenticated;
grant execute on function private.webhook_delivery_withheld(bigint) to service_role;
