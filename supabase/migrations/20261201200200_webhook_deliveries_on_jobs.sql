-- Outbound webhook deliveries run on the one job queue as task `deliver-webhook`
-- (shared/jobs/tasks/deliver-webhook.ts): one job per delivery, job key
-- `delivery:<id>`, named queue `webhook:<endpoint>:<ordering key>`, so one ticket's
-- events reach an endpoint one at a time, in commit order, also through retries.
-- private.webhook_deliveries keeps what admins see (status pending/delivered/failed,
-- attempts made, last status code and error, delivered_at) and webhook_attempts every
-- attempt; the queue state (due time, lease) lives in private.jobs.

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

create function private.queue_webhook_delivery(p_tenant_id uuid, p_delivery_id bigint, p_endpoint_id uuid, p_ordering_key text)
returns void
language sql volatile security definer
set search_path = ''
as $$
  select from private.add_job('deliver-webhook', jsonb_build_object('tenant_id', p_tenant_id, 'delivery_id', p_delivery_id),
    'delivery:' || p_delivery_id, null, null, 'webhook:' || p_endpoint_id || ':' || p_ordering_key)
$$;

-- What the delivery job sends (a plain read: nothing is locked until the attempt is
-- recorded).
create function private.webhook_delivery_context(p_delivery_id bigint)
returns table (status text, enabled boolean, url text, secret_encrypted text, message_id text, type text, payload jsonb,
               tenant_id uuid, endpoint_id uuid)
language sql stable security definer
set search_path = ''
as $$
  select d.status, e.enabled, e.url, e.secret_encrypted, ev.message_id, ev.type, ev.payload, d.tenant_id, d.endpoint_id
  from private.webhook_deliveries d
  join public.webhook_endpoints e on e.tenant_id = d.tenant_id and e.id = d.endpoint_id
  join private.webhook_events ev on ev.id = d.event_id
  where d.id = p_delivery_id
$$;

-- Records an attempt while the job's lease holds: endpoint, then delivery, then the job
-- (parents first). Success resets the endpoint's failure count; a failure counts
-- against it — an endpoint failing p_disable_after attempts in a row is disabled, with
-- the reason — and the delivery is `failed` once its job has no attempt left (p_final).
drop function private.record_webhook_attempt(bigint, text, int, text, int, int, int);
create function private.record_webhook_attempt(
  p_delivery_id bigint, p_job_id bigint, p_worker text, p_status_code int, p_error text, p_duration_ms int,
  p_final boolean, p_disable_after int default 30
) returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_d private.webhook_deliveries;
  v_ok boolean := p_status_code between 200 and 299;
  v_failures int;
begin
  select * into v_d from private.webhook_deliveries where id = p_delivery_id;
  if v_d.id is null then
    return 'lost';
  end if;
  perform 1 from public.webhook_endpoints e where e.tenant_id = v_d.tenant_id and e.id = v_d.endpoint_id for no key update;
  select * into v_d from private.webhook_deliveries where id = p_delivery_id for no key update;
  if v_d.status <> 'pending' or not private.job_lease_held(p_job_id, p_worker) then
    return 'lost';
  end if;
  insert into private.webhook_attempts (delivery_id, status_code, error, duration_ms)
  values (p_delivery_id, p_status_code, left(p_error, 1000), p_duration_ms);
  if v_ok then
    update private.webhook_deliveries set status = 'delivered', delivered_at = now(), attempts = attempts + 1,
      last_status_code = p_status_code, last_error = null
    where id = p_delivery_id;
    update public.webhook_endpoints set consecutive_failures = 0
    where tenant_id = v_d.tenant_id and id = v_d.endpoint_id and consecutive_failures <> 0;
    return 'delivered';
  end if;
  update public.webhook_endpoints set consecutive_failures = consecutive_failures + 1
  where tenant_id = v_d.tenant_id and id = v_d.endpoint_id
  returning consecutive_failures into v_failures;
  if v_failures >= p_disable_after then
    update public.webhook_endpoints set enabled = false,
      disabled_reason = format('disabled after %s failed deliveries in a row; last: %s', v_failures,
                               coalesce(p_status_code::text, left(p_error, 200)))
    where tenant_id = v_d.tenant_id and id = v_d.endpoint_id;
  end if;
  update private.webhook_deliveries set status = case when p_final then 'failed' else 'pending' end, attempts = attempts + 1,
    last_status_code = p_status_code, last_error = left(p_error, 1000)
  where id = p_delivery_id;
  return case when p_final then 'failed' else 'retry' end;
end;
$$;

-- A delivery job that died without recording its last attempt (a crash, an error of
-- ours) still ends the delivery: `failed`, with the reason.
create function private.webhook_delivery_dead(p_delivery_id bigint, p_error text) returns void
language sql volatile security definer
set search_path = ''
as $$
  update private.webhook_deliveries set status = 'failed', last_error = left(p_error, 1000)
  where id = p_delivery_id and status = 'pending'
$$;

-- Re-enabling an endpoint queues its deliveries still pending again, in order (while it
-- was disabled their jobs completed without sending). A delivery whose job is still
-- waiting keeps it (same job key).
create function private.webhook_endpoint_requeue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v record;
begin
  if new.enabled and not old.enabled then
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
create trigger webhook_endpoint_requeue after update of enabled on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_requeue();

-- Live deliveries move over, in order.
do $$
declare
  v record;
begin
  for v in select d.tenant_id, d.id, d.endpoint_id, d.ordering_key from private.webhook_deliveries d
           where d.status in ('pending', 'delivering') order by d.id loop
    perform private.queue_webhook_delivery(v.tenant_id, v.id, v.endpoint_id, v.ordering_key);
  end loop;
  update private.webhook_deliveries set status = 'pending' where status = 'delivering';
end
$$;

drop function private.claim_webhook_deliveries(text, int, int);
drop index private.webhook_deliveries_due_idx;
drop index private.webhook_deliveries_order_idx;
alter table private.webhook_deliveries drop column next_attempt_at, drop column locked_by, drop column locked_until;

revoke all on function private.queue_webhook_delivery(uuid, bigint, uuid, text), private.webhook_delivery_context(bigint),
  private.record_webhook_attempt(bigint, bigint, text, int, text, int, boolean, int), private.webhook_delivery_dead(bigint, text),
  private.webhook_endpoint_requeue()
  from public, anon, authenticated;
grant execute on function private.webhook_delivery_context(bigint),
  private.record_webhook_attempt(bigint, bigint, text, int, text, int, boolean, int), private.webhook_delivery_dead(bigint, text)
  to service_role;
