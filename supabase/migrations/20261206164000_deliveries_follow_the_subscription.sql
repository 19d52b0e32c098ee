-- A queued delivery goes out only while its endpoint still subscribes to its event type.
--
-- A delivery is queued for the endpoint's event types as they were when the event
-- happened. Narrowed since (an admin dropping call events, an API key repointing an
-- endpoint that took every type to its own URL with the types its scopes read), the
-- endpoint still received the backlog of the types it no longer takes, at its new URL:
-- customers' phones and transcripts included, to a receiver subscribed to tickets. The
-- delivery job now ends such a delivery unsent (`failed`, with the reason), as it ends
-- one the plan no longer allows; the endpoint is not blamed for it.

-- Redefined (20261206045000_lifecycle_review.sql): also a type the endpoint no longer
-- subscribes to.
create or replace function private.webhook_delivery_withheld(p_delivery_id bigint) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_tenant uuid;
  v_type text;
  v_types text[];
begin
  select d.tenant_id, ev.type, e.event_types into v_tenant, v_type, v_types
  from private.webhook_deliveries d
  join private.webhook_events ev on ev.id = d.event_id
  join public.webhook_endpoints e on e.tenant_id = d.tenant_id and e.id = d.endpoint_id
  where d.id = p_delivery_id and d.status = 'pending';
  if v_tenant is null then
    return false;
  end if;
  if not private.tenant_has_feature(v_tenant, 'outbound_webhooks') then
    update private.webhook_deliveries d
    set status = 'failed', last_error = 'not sent: the tenant''s plan does not include outbound_webhooks'
    where d.id = p_delivery_id and d.status = 'pending';
    return true;
  end if;
  if cardinality(v_types) > 0 and v_type <> all (v_types) then
    update private.webhook_deliveries d
    set status = 'failed', last_error = format('not sent: the endpoint no longer subscribes to %s', v_type)
    where d.id = p_delivery_id and d.status = 'pending';
    return true;
  end if;
  return false;
end;
$$;
