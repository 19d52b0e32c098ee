-- One helper writes a statement's webhook events at once, taking no lock (issue 14, after
-- the review of 20261204122000_voice_call_deleted_at_once.sql).
--
-- * The three set-based inserts (events, deliveries, delivery jobs) were written twice,
--   for customer.created (20261202190100_customer_created_per_statement.sql) and for
--   call.deleted (20261204122000), each repeating emit_webhook_event's rules (who
--   listens; a plan without outbound webhooks sends nothing), so a change to those rules
--   had to be made in three places. Both now call private.emit_webhook_events_unlocked.
-- * Why no lock is needed, said more exactly than 20261204122000 did. emit_webhook_event
--   takes the subject's ordering lock so that events of one subject get ids in commit
--   order; a call deleted (or a customer created) by the statement is no other
--   transaction's subject until it commits, and after a delete there is no call left to
--   emit for. add_job's key lock guards a key another adder may hold: a delivery's key
--   (delivery:<id>) is new. Its queue lock orders adders to one queue: the only other
--   adder to webhook:<endpoint>:call:<id> is an endpoint being re-enabled
--   (webhook_endpoint_requeue), which re-queues deliveries this delete removes (their
--   jobs then find no delivery and complete unsent). Jobs of the call's earlier
--   deliveries still queued run first and complete unsent, as their deliveries are gone
--   (20261204122000 said the new job waited behind deliveries; their jobs, rather).
-- * 20261204122000's drain of queued voice-call-notices jobs did not wait for a batch
--   running as it applied: that batch's calls could be told twice, and the jobs it
--   queued after the drain's snapshot were left to a task no deployment runs. Here the
--   jobs are locked first (a running batch holds its job's row until it commits) and
--   the rest written out. A database that ran 20261204121000 is a development one.

-- Writes one event per element (the arrays in parallel, in the order given: event ids
-- follow it) of type p_type, for tenants with an enabled endpoint that wants the type
-- and whose plan sends webhooks; one delivery per such endpoint, and its deliver-webhook
-- job as private.add_job writes it for a new key. Takes no lock: only for subjects no
-- other transaction can emit for (rows the calling statement created or deleted).
create function private.emit_webhook_events_unlocked(
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
    where exists (select 1 from public.webhook_endpoints e
                  where e.tenant_id = t.tenant_id and e.enabled
                    and (cardinality(e.event_types) = 0 or p_type = any (e.event_types)))
      and private.tenant_has_feature(t.tenant_id, 'outbound_webhooks')
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
revoke all on function private.emit_webhook_events_unlocked(text, uuid[], text[], jsonb[]) from public, anon, authenticated;

-- Redefined (20261204122000): through the helper.
create or replace function private.voice_calls_deleted_notices(p_calls jsonb) returns void
language sql volatile security definer
set search_path = ''
as $$
  with calls as (
    select (c ->> 'tenant_id')::uuid as tenant_id, (c ->> 'id')::uuid as id
    from pg_catalog.jsonb_array_elements(p_calls) c
  )
  select private.emit_webhook_events_unlocked('call.deleted',
    array_agg(c.tenant_id order by c.tenant_id, c.id),
    array_agg('call:' || c.id order by c.tenant_id, c.id),
    array_agg(jsonb_build_object('type', 'call.deleted', 'tenant_id', c.tenant_id,
                                 'data', jsonb_build_object('id', c.id),
                                 'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp()))
              order by c.tenant_id, c.id))
  from calls c;
$$;
comment on function private.voice_calls_deleted_notices(jsonb) is
  'call.deleted for calls a statement deleted ([{tenant_id, id}]), in (tenant_id, id) order, taking no lock (issue 14).';

-- Redefined (20261202190100): through the helper.
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
  from new_customers n;
  return null;
end;
$$;

-- voice-call-notices jobs left by a batch that ran while 20261204122000 applied: waited
-- for (locked), then written out and removed.
select 1 from private.jobs j where j.task = 'voice-call-notices' for update;
with gone as (
  delete from private.jobs j where j.task = 'voice-call-notices' returning j.tenant_id, j.payload
)
select private.voice_calls_deleted_notices(coalesce(pg_catalog.jsonb_agg(jsonb_build_object('tenant_id', g.tenant_id, 'id', x.id)), '[]'))
from gone g
cross join lateral pg_catalog.jsonb_array_elements_text(g.payload -> 'call_ids') x (id)
where not coalesce((g.payload ->> 'committed')::boolean, false)
  and exists (select 1 from public.tenants t where t.id = g.tenant_id);
