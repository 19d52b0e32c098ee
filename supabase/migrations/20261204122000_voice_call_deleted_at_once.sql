-- call.deleted written at once for the whole statement, taking no lock (issue 14, after
-- the review of 20261204121000_voice_call_deleted_notices.sql).
--
-- 20261204121000 bounded the locks a delete of calls takes for its notices (one per
-- event for its ordering key, two per delivery for the delivery job's key and queue, all
-- held to commit in the server's shared lock table) by sending what fit 500 locks and
-- leaving the rest to `voice-call-notices` jobs. Review found the bound was per tenant,
-- not per statement (a platform admin's or the service role's delete across tenants
-- took 500 per tenant), that jobs run ten at a time multiplied it, and that the rest
-- came later and out of order.
--
-- Those locks order the writers of one subject. A deleted call is no other
-- transaction's subject: its row is locked by the delete until commit, and after it
-- there is no call to emit for; its deliveries and their jobs are new rows. So, as
-- customer.created is written for a statement's new customers
-- (20261202190100_customer_created_per_statement.sql), every deleted call's
-- `call.deleted`, its deliveries and their jobs are written by three set-based inserts
-- that take no lock: the same rows add_job would write for a key nobody holds (task
-- deliver-webhook, job key delivery:<id>, queue webhook:<endpoint>:call:<id>, behind
-- any delivery of the call's earlier events still queued). Every call of the statement
-- is told in its transaction, in (tenant, id) order, whatever the number of calls,
-- tenants and endpoints. The jobs and their functions go; a `voice-call-notices` job
-- still queued is written out the same way here, then removed.

-- Writes `call.deleted` for calls a statement deleted: rows of (tenant_id, id), in
-- (tenant_id, id) order, to every enabled endpoint of the tenant that wants the type,
-- for tenants whose plan sends webhooks. Only for calls nobody else can emit for (the
-- delete's own, under its row locks): it takes no ordering lock.
create function private.voice_calls_deleted_notices(p_calls jsonb) returns void
language sql volatile security definer
set search_path = ''
as $$
  with calls as (
    select (c ->> 'tenant_id')::uuid as tenant_id, (c ->> 'id')::uuid as id
    from pg_catalog.jsonb_array_elements(p_calls) c
  ), listening as (
    select t.tenant_id
    from (select distinct c.tenant_id from calls c) t
    where exists (select 1 from public.webhook_endpoints e
                  where e.tenant_id = t.tenant_id and e.enabled
                    and (cardinality(e.event_types) = 0 or 'call.deleted' = any (e.event_types)))
      and private.tenant_has_feature(t.tenant_id, 'outbound_webhooks')
  ), events as (
    insert into private.webhook_events (tenant_id, type, ordering_key, payload)
    select c.tenant_id, 'call.deleted', 'call:' || c.id,
           jsonb_build_object('type', 'call.deleted', 'tenant_id', c.tenant_id,
                              'data', jsonb_build_object('id', c.id),
                              'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp()))
    from calls c
    join listening l on l.tenant_id = c.tenant_id
    order by c.tenant_id, c.id
    returning id, tenant_id, ordering_key
  ), deliveries as (
    insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key)
    select ev.tenant_id, e.id, ev.id, ev.ordering_key
    from events ev
    join public.webhook_endpoints e on e.tenant_id = ev.tenant_id and e.enabled
      and (cardinality(e.event_types) = 0 or 'call.deleted' = any (e.event_types))
    order by ev.id, e.id
    returning id, tenant_id, endpoint_id, ordering_key
  )
  insert into private.jobs (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
  select 'deliver-webhook', jsonb_build_object('tenant_id', d.tenant_id, 'delivery_id', d.id), d.tenant_id,
         'webhook:' || d.endpoint_id || ':' || d.ordering_key, 'delivery:' || d.id, pg_catalog.now(), 25
  from deliveries d
  order by d.id;
$$;
revoke all on function private.voice_calls_deleted_notices(jsonb) from public, anon, authenticated;

-- Redefined (20261204121000): the notices at once.
create or replace function private.voice_calls_deleted() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_open jsonb;
begin
  if pg_catalog.current_setting('private.voice_calls_deleted_by', true) = 'erasure'
     -- A tenant being hard-deleted: its calls cascade in statements of their own, all
     -- of the gone tenant's, whose outbox is going too. (And a delete of no rows.)
     or not exists (select 1 from gone g join public.tenants t on t.id = g.tenant_id) then
    return null;
  end if;
  -- The role setting is the caller's even inside a security-definer function: people
  -- through the table, or through the route's function (which refused first).
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated') then
    select pg_catalog.jsonb_agg(g.id order by g.id) into v_open
    from gone g
    where g.status in ('ringing', 'in_progress') and g.provider_call_id not like 'manual:%';
    if v_open is not null then
      raise exception 'A call that has not ended cannot be deleted; delete it once it has' using errcode = 'PT409',
        detail = jsonb_build_object('code', 'call_in_progress', 'details', jsonb_build_object('call_ids', v_open))::text;
    end if;
  end if;
  delete from private.webhook_events e
  using gone g
  where e.tenant_id = g.tenant_id and e.ordering_key = 'call:' || g.id;
  perform private.voice_calls_deleted_notices(
    (select pg_catalog.jsonb_agg(jsonb_build_object('tenant_id', g.tenant_id, 'id', g.id)) from gone g));
  return null;
end;
$$;

-- Notices still queued by 20261204121000's jobs (a database that ran it): written now.
select private.voice_calls_deleted_notices(coalesce(pg_catalog.jsonb_agg(jsonb_build_object('tenant_id', j.tenant_id, 'id', x.id)), '[]'))
from private.jobs j
cross join lateral pg_catalog.jsonb_array_elements_text(j.payload -> 'call_ids') x (id)
where j.task = 'voice-call-notices' and not coalesce((j.payload ->> 'committed')::boolean, false)
  and exists (select 1 from public.tenants t where t.id = j.tenant_id);
delete from private.jobs j where j.task = 'voice-call-notices';

drop function private.voice_call_notices_batch(bigint, text);
drop function private.voice_call_notices_send(uuid, uuid[], int);
drop function private.webhook_event_locks(uuid, text);
