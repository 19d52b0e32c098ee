-- Webhooks out: tenants' admins register endpoints; changes write events to an outbox
-- by trigger, in the transaction of the change, fanned out to one delivery per endpoint,
-- each delivery a job of the one queue (20261126100350_jobs.sql): task `deliver-webhook`
-- (shared/jobs/tasks/deliver-webhook.ts), job key `delivery:<id>`, named queue
-- `webhook:<endpoint>:<ordering key>`, so one ticket's events reach an endpoint one at a
-- time, in commit order, also through retries. The job signs them per Standard
-- Webhooks and records every attempt; the jobs function runs it (by pg_cron + pg_net on a
-- hosted project, 20261126102100_schedules.sql).

-- ------------------------------------------------------------------ endpoints

create table public.webhook_endpoints (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  url text not null check (char_length(url) <= 2048 and url ~ '^https?://'),
  description text check (char_length(description) <= 500),
  -- Empty means every event type.
  event_types text[] not null default '{}' check (cardinality(event_types) <= 50),
  secret_encrypted text not null,
  enabled boolean not null default true,
  disabled_reason text,
  consecutive_failures int not null default 0,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id)
);

create trigger set_updated_at before update on public.webhook_endpoints
  for each row execute function private.set_updated_at();
select private.enable_audit('public.webhook_endpoints');

-- Re-enabling an endpoint clears its failure record.
create function private.webhook_endpoint_reenabled() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.enabled and not old.enabled then
    new.consecutive_failures := 0;
    new.disabled_reason := null;
  end if;
  return new;
end;
$$;
revoke all on function private.webhook_endpoint_reenabled() from public, anon, authenticated;
create trigger webhook_endpoint_reenabled before update on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_reenabled();

alter table public.webhook_endpoints enable row level security;
revoke all on public.webhook_endpoints from anon, authenticated;
-- Everything but the secret, which nobody reads back. Sealed secrets are bound to their
-- row (shared/crypto.ts: AES-GCM associated data): an endpoint's secret is sealed for
-- (tenant_id, id), which the database chooses, so the function inserts the endpoint
-- first and then seals its secret in the same transaction — admins may set that column
-- on their own endpoints (RLS as for every other column).
grant select (tenant_id, id, url, description, event_types, enabled, disabled_reason, consecutive_failures, created_at, updated_at),
  insert (tenant_id, url, description, event_types, secret_encrypted),
  update (url, description, event_types, enabled, secret_encrypted), delete
  on public.webhook_endpoints to authenticated;
create policy webhook_endpoints_select on public.webhook_endpoints for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()));
create policy webhook_endpoints_insert on public.webhook_endpoints for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy webhook_endpoints_update on public.webhook_endpoints for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy webhook_endpoints_delete on public.webhook_endpoints for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- ------------------------------------------------------------------ the outbox

create table private.webhook_events (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  -- The id receivers deduplicate on (webhook-id), stable across retries.
  message_id text not null unique default ('msg_' || replace(gen_random_uuid()::text, '-', '')),
  type text not null,
  -- Deliveries with the same key reach an endpoint in order (one ticket's events).
  ordering_key text not null,
  payload jsonb not null,
  created_at timestamptz not null default now()
);
create index webhook_events_tenant_idx on private.webhook_events (tenant_id, id);

-- What admins see of a delivery: its status (pending, delivered, failed; 'delivering'
-- is no longer set — a job's lease says a delivery is under way), attempts made, the
-- last status code and error, delivered_at; webhook_attempts keeps every attempt. The
-- queue state (due time, lease, backoff) lives in private.jobs.
create table private.webhook_deliveries (
  id bigint generated always as identity primary key,
  tenant_id uuid not null,
  endpoint_id uuid not null,
  event_id bigint not null references private.webhook_events (id) on delete cascade,
  ordering_key text not null,
  status text not null default 'pending' check (status in ('pending', 'delivering', 'delivered', 'failed')),
  attempts int not null default 0,
  delivered_at timestamptz,
  last_status_code int,
  last_error text,
  created_at timestamptz not null default now(),
  foreign key (tenant_id, endpoint_id) references public.webhook_endpoints (tenant_id, id) on delete cascade
);
create index webhook_deliveries_endpoint_idx on private.webhook_deliveries (tenant_id, endpoint_id, id desc);
create index webhook_deliveries_event_idx on private.webhook_deliveries (event_id);

create table private.webhook_attempts (
  id bigint generated always as identity primary key,
  delivery_id bigint not null references private.webhook_deliveries (id) on delete cascade,
  attempted_at timestamptz not null default now(),
  status_code int,
  error text,
  duration_ms int
);
create index webhook_attempts_delivery_idx on private.webhook_attempts (delivery_id);

-- A delivery's job: job key `delivery:<id>` (queueing it again keeps the one job), in
-- the named queue of its endpoint and ordering key.
create function private.queue_webhook_delivery(p_tenant_id uuid, p_delivery_id bigint, p_endpoint_id uuid, p_ordering_key text)
returns void
language sql volatile security definer
set search_path = ''
as $$
  select from private.add_job('deliver-webhook', jsonb_build_object('tenant_id', p_tenant_id, 'delivery_id', p_delivery_id),
    'delivery:' || p_delivery_id, null, null, 'webhook:' || p_endpoint_id || ':' || p_ordering_key)
$$;
revoke all on function private.queue_webhook_delivery(uuid, bigint, uuid, text) from public, anon, authenticated;

-- Writes an event and one delivery per enabled endpoint that wants its type. Emitters
-- of one (tenant, ordering key) take turns from their first event to commit (lock level
-- 8, a transaction-scoped advisory lock), so a key's deliveries are numbered in commit
-- order and a worker never sees a later one while an earlier one is still uncommitted.
-- Ticket writers already hold the ticket; this also covers message edits, which do not.
-- Each delivery becomes a job (queue_webhook_delivery, above) after the rows: lock
-- level 9.
create function private.emit_webhook_event(p_tenant_id uuid, p_type text, p_ordering_key text, p_payload jsonb)
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
revoke all on function private.emit_webhook_event(uuid, text, text, jsonb) from public, anon, authenticated;

-- The change → event mapping, one trigger for every table that emits.
create function private.webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row jsonb := to_jsonb(coalesce(new, old));
  v_type text;
  v_key text;
begin
  v_row := v_row - array(select k from jsonb_object_keys(v_row) k where k like '%\_encrypted' or k = 'search');
  case tg_table_name
    when 'tickets' then
      v_key := 'ticket:' || (v_row ->> 'id');
      v_type := case
        when tg_op = 'INSERT' then 'ticket.created'
        when tg_op = 'DELETE' or (new.deleted_at is not null and old.deleted_at is null) then 'ticket.deleted'
        when new.status is distinct from old.status then 'ticket.status_changed'
        when new.assigned_to is distinct from old.assigned_to then 'ticket.assigned'
        else 'ticket.updated' end;
      if tg_op = 'UPDATE' and (to_jsonb(new) - 'updated_at' - 'search') = (to_jsonb(old) - 'updated_at' - 'search') then
        return null; -- activity only (updated_at): not an event
      end if;
    when 'ticket_messages' then
      v_key := 'ticket:' || (v_row ->> 'ticket_id');
      v_type := case when (v_row ->> 'type') = 'note' then 'note.' else 'message.' end
        || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end;
    when 'memberships' then
      v_key := 'membership:' || (v_row ->> 'user_id');
      v_type := 'membership.' || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end;
    when 'tenant_services' then
      if tg_op = 'UPDATE' and new.state is not distinct from old.state then
        return null;
      end if;
      v_key := 'service:' || (v_row ->> 'service');
      v_type := 'service.state_changed';
  end case;
  perform private.emit_webhook_event((v_row ->> 'tenant_id')::uuid, v_type, v_key,
    jsonb_build_object('type', v_type, 'tenant_id', v_row ->> 'tenant_id', 'data', v_row,
                       'occurred_at', to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
  return null;
end;
$$;
revoke all on function private.webhook_outbox() from public, anon, authenticated;
create trigger webhook_outbox after insert or update or delete on public.tickets
  for each row execute function private.webhook_outbox();
create trigger webhook_outbox after insert or update or delete on public.ticket_messages
  for each row execute function private.webhook_outbox();
create trigger webhook_outbox after insert or update or delete on public.memberships
  for each row execute function private.webhook_outbox();
create trigger webhook_outbox after insert or update on public.tenant_services
  for each row execute function private.webhook_outbox();

-- ------------------------------------------------------------------ delivering

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
revoke all on function private.webhook_delivery_context(bigint) from public, anon, authenticated;
grant execute on function private.webhook_delivery_context(bigint) to service_role;

-- Records an attempt while the job's lease holds: endpoint, then delivery, then the job
-- (parents first). Success resets the endpoint's failure count; a failure counts
-- against it — an endpoint failing p_disable_after attempts in a row is disabled, with
-- the reason — and the delivery is `failed` once its job has no attempt left (p_final).
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
revoke all on function private.record_webhook_attempt(bigint, bigint, text, int, text, int, boolean, int) from public, anon, authenticated;
grant execute on function private.record_webhook_attempt(bigint, bigint, text, int, text, int, boolean, int) to service_role;

-- A delivery job that died without recording its last attempt (a crash, an error of
-- ours) still ends the delivery: `failed`, with the reason.
create function private.webhook_delivery_dead(p_delivery_id bigint, p_error text) returns void
language sql volatile security definer
set search_path = ''
as $$
  update private.webhook_deliveries set status = 'failed', last_error = left(p_error, 1000)
  where id = p_delivery_id and status = 'pending'
$$;
revoke all on function private.webhook_delivery_dead(bigint, text) from public, anon, authenticated;
grant execute on function private.webhook_delivery_dead(bigint, text) to service_role;

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
revoke all on function private.webhook_endpoint_requeue() from public, anon, authenticated;
create trigger webhook_endpoint_requeue after update of enabled on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_requeue();

-- ------------------------------------------------------------------ for admins

-- Admins read their endpoints' recent deliveries and attempts.
create function private.webhook_deliveries_for(p_tenant_id uuid, p_endpoint_id uuid, p_limit int default 50)
returns table (id bigint, message_id text, type text, status text, attempts int, last_status_code int, last_error text,
               created_at timestamptz, delivered_at timestamptz)
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_tenant_id <> all (private.tenant_ids('admin')) and not private.is_platform_admin() then
    raise exception 'only the tenant''s admins see its deliveries' using errcode = 'PT403';
  end if;
  return query
    select d.id, ev.message_id, ev.type, d.status, d.attempts, d.last_status_code, d.last_error, d.created_at, d.delivered_at
    from private.webhook_deliveries d join private.webhook_events ev on ev.id = d.event_id
    where d.tenant_id = p_tenant_id and d.endpoint_id = p_endpoint_id
    order by d.id desc limit p_limit;
end;
$$;
revoke all on function private.webhook_deliveries_for(uuid, uuid, int) from public, anon, authenticated;
grant execute on function private.webhook_deliveries_for(uuid, uuid, int) to authenticated, service_role;
