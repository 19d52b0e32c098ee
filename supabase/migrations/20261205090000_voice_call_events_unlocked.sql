-- call.started and call.ended take no lock per call (issue 14).
--
-- voice_webhook_outbox wrote each call's event through private.emit_webhook_event, which
-- takes three transaction-scoped advisory locks per event (the subject's ordering lock,
-- then add_job's key and queue locks). A statement that inserts or ends many calls in a
-- tenant with a receiver held three locks per row until commit: 2,000 calls logged in one
-- insert held 6,000 (measured), and 20,000 filled the server's shared lock table (out of
-- shared memory), failing that statement and, while it held them, any other tenant's
-- transaction that needed a lock. An agent can send such an insert or update through
-- PostgREST (calls people log, `manual:` ids, in any status).
--
-- Every event of a call comes from a trigger on the call's own row: call.started from
-- its insert, call.ended from the update of its status, call.deleted from its delete
-- (20261204120000). The row itself orders them: an inserted call is no other
-- transaction's until it commits, and an update or a delete holds the row until commit,
-- so a second emitter for the same call waits for the first to commit before its
-- trigger runs. The call's events, deliveries and delivery jobs are therefore numbered
-- in commit order without the ordering lock, and the only other adder to a delivery's
-- queue (webhook:<endpoint>:call:<id>) is an endpoint being re-enabled, which re-queues
-- earlier pending deliveries in whichever order the two commit, with the locks as
-- without them. So both events now go through private.emit_webhook_events_unlocked
-- (20261204123000), as call.deleted and customer.created do; nothing else changes: the
-- same payloads, `provisional` and `replaces_provisional` on call.ended, the same rule
-- for who listens (private.webhook_type_wanted, asked before the payload is built).
--
-- A provider call's start still takes one lock (private.voice_call_id_lock, which
-- serialises it with an event held for it): one per call, and only on the provider's
-- path, which starts one call per request.

-- Redefined (20261202170300_voice_stale_calls_review.sql): through the unlocked helper;
-- the customer branch, which no trigger reaches since 20261202190100, is gone.
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
  perform private.emit_webhook_events_unlocked(v_type, array[new.tenant_id], array['call:' || new.id],
    array[jsonb_build_object('type', v_type, 'tenant_id', new.tenant_id,
                             'data', private.api_timestamps(to_jsonb(new), tg_relid),
                             'occurred_at', private.api_timestamp(clock_timestamp())) || v_marks]);
  return null;
end;
$$;

-- Redefined (20261204124000) in PL/pgSQL, unchanged otherwise: a SQL function's
-- statements are planned again on every call, and each of the triggers above calls it
-- once per call. Measured on 2,000 calls logged in one insert into a listening tenant:
-- the SQL helper cost 1,000 µs a row where emit_webhook_event's locked path cost 650.
create or replace function private.emit_webhook_events_unlocked(
  p_type text, p_tenant_ids uuid[], p_ordering_keys text[], p_payloads jsonb[]
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
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
end;
$$;

-- Redefined (20261204124000) in PL/pgSQL for the same reason, unchanged otherwise.
create or replace function private.webhook_type_wanted(p_tenant_id uuid, p_type text) returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return exists (select 1 from public.webhook_endpoints e
                 where e.tenant_id = p_tenant_id and e.enabled
                   and (cardinality(e.event_types) = 0 or p_type = any (e.event_types)))
     and private.tenant_has_feature(p_tenant_id, 'outbound_webhooks');
end;
$$;
