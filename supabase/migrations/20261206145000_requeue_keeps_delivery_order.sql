-- Re-enabling an endpoint could reverse a ticket's events. A delivery out of retries while
-- its endpoint fails is held (its job ends) and the endpoint disabled; the deliveries
-- behind it in the ticket's queue keep their jobs. Re-enabling updated those jobs in
-- place, keeping their older ids, and gave the held delivery a new job with a newer id:
-- the queue, which runs in id order, then sent the later event first. Now every pending
-- delivery that is not being sent right now gets a new job, made in delivery order.

-- Redefined (20261205150000_job_adders_bulk_sticky.sql): new jobs in delivery order.
create or replace function private.webhook_endpoint_requeue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.enabled and not old.enabled then
    -- The tenant's emitters that lock (tickets, messages, memberships, ...) wait for this
    -- lock; the unlocked ones (call.*, customer.created) write new deliveries only and
    -- see this endpoint disabled until commit. No other adder has a pending delivery's key.
    perform pg_catalog.pg_advisory_xact_lock(private.webhook_tenant_lock_key(new.tenant_id));
    -- The jobs the pending deliveries already have, locked (job rows last, in id order):
    -- a worker claims none of them meanwhile (claims skip locked rows).
    perform from private.jobs j
    where j.job_key in (select 'delivery:' || d.id from private.webhook_deliveries d
                        where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending')
    order by j.id
    for update of j;
    -- A running one keeps running without its key; the new job waits behind it in the
    -- delivery's queue, which is its queue too.
    update private.jobs j set job_key = null
    from private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
      and j.job_key = 'delivery:' || d.id and j.locked_by is not null;
    -- Every other one starts over as a new job, all of them made in delivery order: a
    -- named queue runs its jobs in id order, and a job kept from before (its id older)
    -- would go ahead of the earlier delivery whose job had ended (held when the endpoint
    -- was disabled), reversing a ticket's events.
    delete from private.jobs j
    using private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
      and j.job_key = 'delivery:' || d.id and j.locked_by is null;
    insert into private.jobs (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
    select 'deliver-webhook', jsonb_build_object('tenant_id', d.tenant_id, 'delivery_id', d.id), d.tenant_id,
           'webhook:' || d.endpoint_id || ':' || d.ordering_key, 'delivery:' || d.id, pg_catalog.now(), 25
    from private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
    order by d.id;
  end if;
  return null;
end;
$$;
