-- A statement's webhook events: who listens, asked before the payloads are built (issue
-- 14, after the last read of 20261204123000_webhook_events_unlocked.sql).
--
-- voice_customers_created built every new customer's payload (private.api_timestamps,
-- which reads the catalog, once a row) and only then let the helper drop the tenants
-- nobody listens to: a 50,000-row import into a tenant without receivers did 50,000
-- calls for nothing, where 20261202190100 built none. Callers now keep only the rows of
-- tenants that want the type, by private.webhook_type_wanted, which the helper uses too:
-- one place for the rule (an enabled endpoint that wants the type, and a plan that sends
-- webhooks), as emit_webhook_event states it.

create function private.webhook_type_wanted(p_tenant_id uuid, p_type text) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.webhook_endpoints e
                 where e.tenant_id = p_tenant_id and e.enabled
                   and (cardinality(e.event_types) = 0 or p_type = any (e.event_types)))
     and private.tenant_has_feature(p_tenant_id, 'outbound_webhooks');
$$;
revoke all on function private.webhook_type_wanted(uuid, text) from public, anon, authenticated;

-- Redefined (20261204123000): the rule by private.webhook_type_wanted.
create or replace function private.emit_webhook_events_unlocked(
  p_type text, p_tenant_ids uuid[], p_ordering_keys text[], p_payloads jsonb[]
) returns void
language sql volatile security definer
set search_path = ''
as $$
  with given as (
    select g.tenant_id, g.ordering_key, g.payload, g.n
    from rows from (pg_catalog.unnest(p_tenant_ids), pg_catalog.unnest(p_ordering_keys), pg_catalog.unnest(p_payloads))
      with ordinality g (tenant_id, ordering_key, payload, n)
  ), listening as (
    select t.tenant_id
    from (select distinct g.tenant_id from given g) t
    where private.webhook_type_wanted(t.tenant_id, p_type)
  ), events as (
    insert into private.webhook_events (tenant_id, type, ordering_key, payload)
    select g.tenant_id, p_type, g.ordering_key, g.payload
    from given g
    join listening l on l.tenant_id = g.tenant_id
    order by g.n
    returning id, tenant_id, ordering_key
  ), deliveries as (
    insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
    select ev.tenant_id, e.id, ev.id, ev.ordering_key
    from events ev
    join public.webhook_endpoints e on e.tenant_id = ev.tenant_id and e.enabled
      and (cardinality(e.event_types) = 0 or p_type = any (e.event_types))
    order by ev.id, e.id
    returning id, tenant_id, endpoint_id, ordering_key
  )
  insert into private.jobs (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
  select 'deliver-webhook', jsonb_build_object('tenant_id', d.tenant_id, 'delivery_id', d.id), d.tenant_id,
         'webhook:' || d.endpoint_id || ':' || d.ordering_key, 'delivery:' || d.id, pg_catalog.now(), 25
  from deliveries d
  order by d.id;
$$;

-- Redefined (20261204123000): payloads only for tenants that want customer.created.
create or replace function private.voice_customers_created() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.emit_webhook_events_unlocked('customer.created',
    array_agg(n.tenant_id order by n.tenant_id, n.id),
    array_agg('customer:' || n.id order by n.tenant_id, n.id),
    array_agg(jsonb_build_object('type', 'customer.created', 'tenant_id', n.tenant_id,
                                 'data', private.api_timestamps(to_jsonb(n), tg_relid),
                                 'occurred_at', private.api_timestamp(clock_timestamp()))
              order by n.tenant_id, n.id))
  from new_customers n
  where n.tenant_id = any (array(select t.tenant_id from (select distinct c.tenant_id from new_customers c) t
                                 where private.webhook_type_wanted(t.tenant_id, 'customer.created')));
  return null;
end;
$$;
