-- customer.created for a whole statement at once (issue 14, review).
--
-- The event was written by a row trigger through private.emit_webhook_event, which takes
-- three transaction-scoped advisory locks per new customer and listening endpoint (the
-- event's ordering key, the delivery job's key and its queue). A CSV import of a few
-- thousand new customers, in one transaction, into a tenant with a webhook endpoint
-- filled Postgres's shared lock table (about 64 locks per connection slot): "out of
-- shared memory", a 500, nothing imported.
--
-- Those locks order the writers of one subject; a customer created by this statement is
-- no other transaction's subject until it commits, and its delivery ids and queues are
-- new. So one statement trigger writes every new customer's event, deliveries and jobs
-- in three set-based inserts and takes no lock: the same rows add_job would write for a
-- key nobody holds (task deliver-webhook, job key delivery:<id>, queue
-- webhook:<endpoint>:<ordering key>). Inserts that update instead (the import's upsert)
-- are not in the insert transition table, so an updated customer still sends nothing.
-- voice_webhook_outbox keeps its customer branch for a reader of landed migrations, but
-- no trigger reaches it any more.

create function private.voice_customers_created() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  with listening as (
    select t.tenant_id
    from (select distinct n.tenant_id from new_customers n) t
    where exists (select 1 from public.webhook_endpoints e
                  where e.tenant_id = t.tenant_id and e.enabled
                    and (cardinality(e.event_types) = 0 or 'customer.created' = any (e.event_types)))
      and private.tenant_has_feature(t.tenant_id, 'outbound_webhooks')
  ), events as (
    insert into private.webhook_events (tenant_id, type, ordering_key, payload)
    select n.tenant_id, 'customer.created', 'customer:' || n.id,
           jsonb_build_object('type', 'customer.created', 'tenant_id', n.tenant_id,
                              'data', private.api_timestamps(to_jsonb(n), tg_relid),
                              'occurred_at', private.api_timestamp(clock_timestamp()))
    from new_customers n
    join listening l on l.tenant_id = n.tenant_id
    order by n.tenant_id, n.id
    returning id, tenant_id, ordering_key
  ), deliveries as (
    insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
    select ev.tenant_id, e.id, ev.id, ev.ordering_key
    from events ev
    join public.webhook_endpoints e on e.tenant_id = ev.tenant_id and e.enabled
      and (cardinality(e.event_types) = 0 or 'customer.created' = any (e.event_types))
    order by ev.id, e.id
    returning id, tenant_id, endpoint_id, ordering_key
  )
  insert into private.jobs (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
  select 'deliver-webhook', jsonb_build_object('tenant_id', d.tenant_id, 'delivery_id', d.id), d.tenant_id,
         'webhook:' || d.endpoint_id || ':' || d.ordering_key, 'delivery:' || d.id, now(), 25
  from deliveries d
  order by d.id;
  return null;
end;
$$;
revoke all on function private.voice_customers_created() from public, anon, authenticated;

drop trigger webhook_outbox on public.voice_customers;
create trigger webhook_outbox after insert on public.voice_customers
  referencing new table as new_customers
  for each statement execute function private.voice_customers_created();
