-- Each webhook event asks once whether anyone wants it, and the tenant's outbox lock has
-- one name (issue 14, from the last read of 20261205100000_webhook_outbox_bounded_locks.sql).
--
-- * A single event asked private.webhook_type_wanted twice: its emitter (emit_webhook_event,
--   the calls' trigger) asked first, so that a tenant nobody listens to builds no payload
--   and takes no lock, and private.emit_webhook_events_unlocked asked again for the same
--   tenant. Measured: 16 µs a question, one call event costs about 600 µs. The rows are
--   now written by private.write_webhook_events, which trusts its caller to have asked;
--   emit_webhook_events_unlocked asks once per tenant of its statement and calls it, and
--   the per-row emitters (and customer.created, which asks per tenant) call it directly.
-- * "Once per tenant" was once per row: the statement-level callers asked
--   `from (select distinct tenant_id from the rows) t where webhook_type_wanted(t.tenant_id, …)`,
--   and the planner pushes that condition below the distinct, into the scan of the rows
--   (seen in EXPLAIN: the filter on the scan of every row, then the aggregate). So a
--   statement inserting 50,000 customers, or deleting 10,000 calls, asked 50,000 or 10,000
--   times, listener or not. The tenants are now a materialized CTE, which the planner does
--   not push conditions into: one question per tenant of the statement.
-- * The tenant's outbox lock key was written three times (twice in emit_webhook_event,
--   once in webhook_endpoint_requeue) and once more in a test: now
--   private.webhook_tenant_lock_key, as private.job_adders_lock_key is the job queue's.
--   Same key as before.

create function private.webhook_tenant_lock_key(p_tenant_id uuid) returns bigint
language sql immutable parallel safe
set search_path = ''
as $$
  select pg_catalog.hashtextextended('webhook-tenant:' || p_tenant_id, 0)
$$;
revoke all on function private.webhook_tenant_lock_key(uuid) from public, anon, authenticated;

-- Writes one event per element (the arrays in parallel, in the order given: event ids
-- follow it) of type p_type, one delivery per enabled endpoint of its tenant that wants
-- the type, and each delivery's job as private.add_job writes it for a new key. The
-- caller has asked private.webhook_type_wanted for every tenant it passes (a tenant
-- whose plan sends no webhooks must not get here) and holds what orders the subjects'
-- events (their ordering locks, or their rows). Takes no lock.
create function private.write_webhook_events(
  p_type text, p_tenant_ids uuid[], p_ordering_keys text[], p_payloads jsonb[]
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  with events as (
    insert into private.webhook_events (tenant_id, type, ordering_key, payload)
    select g.tenant_id, p_type, g.ordering_key, g.payload
    from rows from (pg_catalog.unnest(p_tenant_ids), pg_catalog.unnest(p_ordering_keys), pg_catalog.unnest(p_payloads))
      with ordinality g (tenant_id, ordering_key, payload, n)
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
end;
$$;
revoke all on function private.write_webhook_events(text, uuid[], text[], jsonb[]) from public, anon, authenticated;

-- Redefined (20261205090000_voice_call_events_unlocked.sql): asks once per tenant, then
-- the rows of the tenants that want the type through private.write_webhook_events.
create or replace function private.emit_webhook_events_unlocked(
  p_type text, p_tenant_ids uuid[], p_ordering_keys text[], p_payloads jsonb[]
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  perform private.write_webhook_events(p_type,
    array_agg(g.tenant_id order by g.n), array_agg(g.ordering_key order by g.n), array_agg(g.payload order by g.n))
  from rows from (pg_catalog.unnest(p_tenant_ids), pg_catalog.unnest(p_ordering_keys), pg_catalog.unnest(p_payloads))
    with ordinality g (tenant_id, ordering_key, payload, n)
  where g.tenant_id = any (array(
    with t as materialized (select distinct u.tenant_id from pg_catalog.unnest(p_tenant_ids) u (tenant_id))
    select t.tenant_id from t where private.webhook_type_wanted(t.tenant_id, p_type)));
end;
$$;

-- Redefined (20261205100000): the lock key by its function, the rows through
-- private.write_webhook_events (asked once, above).
create or replace function private.emit_webhook_event(p_tenant_id uuid, p_type text, p_ordering_key text, p_payload jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_keys int := coalesce(nullif(pg_catalog.current_setting('private.webhook_keys_locked', true), ''), '0')::int;
begin
  if not private.webhook_type_wanted(p_tenant_id, p_type) then
    return; -- nobody listens, or the plan sends no webhooks: no outbox row
  end if;
  if v_keys < 64 then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('webhook-order:' || p_tenant_id || ':' || p_ordering_key, 0));
    perform pg_catalog.pg_advisory_xact_lock_shared(private.webhook_tenant_lock_key(p_tenant_id));
    perform pg_catalog.set_config('private.webhook_keys_locked', (v_keys + 1)::text, true);
  else
    perform pg_catalog.pg_advisory_xact_lock(private.webhook_tenant_lock_key(p_tenant_id));
  end if;
  perform private.write_webhook_events(p_type, array[p_tenant_id], array[p_ordering_key], array[p_payload]);
end;
$$;

-- Redefined (20261205100000): the lock key by its function.
create or replace function private.webhook_endpoint_requeue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v record;
begin
  if new.enabled and not old.enabled then
    perform pg_catalog.pg_advisory_xact_lock(private.webhook_tenant_lock_key(new.tenant_id));
    for v in
      select d.id, d.ordering_key from private.webhook_deliveries d
      where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
      order by d.id
    loop
      perform private.queue_webhook_delivery(new.tenant_id, v.id, new.id, v.ordering_key);
    end loop;
  end if;
  return null;
end;
$$;

-- Redefined (20261205090000): the rows through private.write_webhook_events, having asked.
create or replace function private.voice_webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_type text;
  v_marks jsonb := '{}';
begin
  if tg_op = 'INSERT' then
    v_type := 'call.started';
  elsif new.status in ('completed', 'failed', 'missed')
    and (old.status not in ('completed', 'failed', 'missed') or (old.timed_out_at is not null and new.timed_out_at is null)) then
    v_type := 'call.ended';
    v_marks := jsonb_build_object('provisional', new.timed_out_at is not null,
                                  'replaces_provisional', old.timed_out_at is not null and new.timed_out_at is null);
  else
    return null;
  end if;
  -- Nobody wants the type in this tenant: nothing to build.
  if not private.webhook_type_wanted(new.tenant_id, v_type) then
    return null;
  end if;
  perform private.write_webhook_events(v_type, array[new.tenant_id], array['call:' || new.id],
    array[jsonb_build_object('type', v_type, 'tenant_id', new.tenant_id,
                             'data', private.api_timestamps(to_jsonb(new), tg_relid),
                             'occurred_at', private.api_timestamp(clock_timestamp())) || v_marks]);
  return null;
end;
$$;

-- Redefined (20261204124000_webhook_events_wanted_first.sql): the rows through
-- private.write_webhook_events, having asked per tenant.
create or replace function private.voice_customers_created() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.write_webhook_events('customer.created',
    array_agg(n.tenant_id order by n.tenant_id, n.id),
    array_agg('customer:' || n.id order by n.tenant_id, n.id),
    array_agg(jsonb_build_object('type', 'customer.created', 'tenant_id', n.tenant_id,
                                 'data', private.api_timestamps(to_jsonb(n), tg_relid),
                                 'occurred_at', private.api_timestamp(clock_timestamp()))
              order by n.tenant_id, n.id))
  from new_customers n
  where n.tenant_id = any (array(
    with t as materialized (select distinct c.tenant_id from new_customers c)
    select t.tenant_id from t where private.webhook_type_wanted(t.tenant_id, 'customer.created')));
  return null;
end;
$$;
