-- The outbox takes a bounded number of locks per transaction (issue 14, after
-- 20261205090000_voice_call_events_unlocked.sql; the same hole in the tickets' events).
--
-- private.emit_webhook_event took, for every event, the ordering lock of its (tenant,
-- ordering key) and, for every delivery, add_job's locks of the job's key and queue: all
-- transaction-scoped advisory locks, held to commit, in a lock table the whole server
-- shares (sized for about 64 locks a transaction). An agent's insert of 500 tickets
-- through PostgREST into a tenant with one receiver held 1,500 of them, and an update of
-- those tickets 2,000 (measured); tickets have no row limit, so one request of some
-- 20,000 rows fails with "out of shared memory", and so does, while it holds them, any
-- other tenant's transaction that needs a lock. Calls and customers write their events
-- without locks (their rows order them); a ticket's events come from its row, its
-- messages, edits that do not lock the ticket, SLA sweeps, mentions, followers and
-- automations, so tickets keep the ordering lock, bounded instead:
--
-- * The delivery jobs are written as rows, without add_job's locks. Their keys
--   (delivery:<new id>) are new, so no other adder can hold one; their queue
--   (webhook:<endpoint>:<ordering key>) has two kinds of adders: emitters of that key,
--   which the ordering lock already serialises, and an endpoint being re-enabled, which
--   now takes the tenant's outbox lock exclusively (below) instead of being ordered by
--   the queue's lock.
-- * Each tenant's outbox has one more advisory lock. An emitter takes the key's lock,
--   then the tenant's in share mode: as before, emitters of different keys never wait
--   for each other. A transaction that has written 64 events under key locks (counted
--   per transaction, a key written twice counting twice) writes its further events
--   under the tenant's lock in exclusive mode instead, with no key lock: it waits for the
--   tenant's emitters under way to commit and holds back the others until it commits,
--   so every key's events are still numbered in commit order, and it holds at most 64
--   key locks and two per tenant. Bulk writes of one tenant take turns with its other
--   writers; no other tenant waits for them. A transaction that holds a key lock another
--   transaction's bulk write needs, while waiting for a lock of that write, deadlocks
--   with it; Postgres ends one of them (40P01), which the functions answer 503 `retry`.
-- * Re-enabling an endpoint takes the tenant's outbox lock exclusively before it
--   re-queues its pending deliveries (through add_job, as before, since a delivery's
--   earlier job may still be queued or running).
-- Calls' and customers' events (private.emit_webhook_events_unlocked) take none of these
-- locks: their subjects' rows order them, as before.

-- Redefined (20261202100300_webhooks_off_plan.sql): bounded locks, then the rows through
-- private.emit_webhook_events_unlocked (job rows written directly). Same events,
-- deliveries and jobs; same rules for who gets them.
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
    perform pg_catalog.pg_advisory_xact_lock_shared(pg_catalog.hashtextextended('webhook-tenant:' || p_tenant_id, 0));
    perform pg_catalog.set_config('private.webhook_keys_locked', (v_keys + 1)::text, true);
  else
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('webhook-tenant:' || p_tenant_id, 0));
  end if;
  -- The rows as for a statement's events: one place writes events, deliveries and jobs.
  perform private.emit_webhook_events_unlocked(p_type, array[p_tenant_id], array[p_ordering_key], array[p_payload]);
end;
$$;

-- Redefined (20261126101800_outbound_webhooks.sql): the tenant's outbox lock first, in
-- exclusive mode, so no emitter adds to these queues while they are re-queued.
create or replace function private.webhook_endpoint_requeue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v record;
begin
  if new.enabled and not old.enabled then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('webhook-tenant:' || new.tenant_id, 0));
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
