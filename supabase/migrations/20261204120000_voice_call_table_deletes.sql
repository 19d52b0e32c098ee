-- Deleting calls through the table as the API deletes them (issue 14;
-- 20261204112000_voice_call_delete.sql).
--
-- `DELETE /voice/calls/{id}` refuses a call that has not ended, removes the webhook
-- events about the call and sends `call.deleted`. A delete through the table (an admin's
-- `supabase.from('voice_calls').delete()`, the service role's, an operator's) removed the
-- rows only:
-- - an admin could delete a call the provider was still reporting;
-- - `call.started` and `call.ended` events still in the outbox went out after the call
--   was gone, with its numbers and summary;
-- - receivers keeping copies of calls never heard of the delete.
-- Now one statement trigger does it for every delete of calls, whatever the path:
-- - people (the `authenticated` role, platform admins included) may not delete a call
--   the provider is still reporting (ringing or in progress): 409 `call_in_progress`
--   naming the calls, and the statement changes nothing. The service role and operators
--   may (the machine's own clean-up). A call people logged themselves (`manual:`) is
--   theirs to delete in any state, through the route too: no provider reports it;
-- - the webhook events about each deleted call go, delivered or not (their deliveries
--   and attempts cascade): found by the (tenant_id, ordering_key) index;
-- - each deleted call then gets its `call.deleted`, naming it by its id only.
-- The route's function now leaves both to the trigger. Two deletes are left alone:
-- - a customer's erasure: it removes its calls' events itself and reports how many, and
--   names the calls in one `customer.erased` rather than one `call.deleted` each. It
--   marks its one delete statement (`private.voice_calls_deleted_by` = 'erasure', a
--   transaction-local setting it clears after the statement; API clients cannot set
--   settings);
-- - the calls of a tenant being hard-deleted: their events go with the tenant.

create function private.voice_calls_deleted() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_open jsonb;
  v_call record;
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
  for v_call in
    select g.tenant_id, g.id from gone g order by g.tenant_id, g.id
  loop
    perform private.emit_webhook_event(v_call.tenant_id, 'call.deleted', 'call:' || v_call.id,
      jsonb_build_object('type', 'call.deleted', 'tenant_id', v_call.tenant_id,
                         'data', jsonb_build_object('id', v_call.id),
                         'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp())));
  end loop;
  return null;
end;
$$;
revoke all on function private.voice_calls_deleted() from public, anon, authenticated;
create trigger notified after delete on public.voice_calls
  referencing old table as gone
  for each statement execute function private.voice_calls_deleted();

-- Redefined (20261204112000): the events and the notice are the trigger's now.
create or replace function private.voice_call_delete(p_tenant_id uuid, p_call_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  -- Called by people with their own rights: the table's delete policy's rule.
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not coalesce(p_tenant_id = any (private.tenant_ids('admin', true)) or private.is_platform_admin(), false) then
    raise exception 'permission denied to delete the calls of this tenant' using errcode = '42501';
  end if;
  -- Locked first: an event changing the call's status waits for the delete, then finds
  -- the call gone (dropped, by its tombstone).
  select case when v.provider_call_id like 'manual:%' then 'manual' else v.status end into v_status
  from public.voice_calls v
  where v.tenant_id = p_tenant_id and v.id = p_call_id
  for update;
  if not found then
    raise exception 'Call not found' using errcode = 'PT404', detail = jsonb_build_object('code', 'not_found');
  end if;
  -- The trigger refuses people alone; this refuses the service role too, with the
  -- status. A call people logged (manual:) goes in any state: no provider reports it.
  if v_status in ('ringing', 'in_progress') then
    raise exception 'The call has not ended; it can be deleted once it has' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'call_in_progress', 'details', jsonb_build_object('status', v_status));
  end if;
  -- The call's webhook events and its call.deleted: by the trigger `notified`.
  delete from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = p_call_id;
end;
$$;

-- Redefined (20261204102000): its delete of the calls is marked, so the trigger leaves
-- their events and notices to it.
create or replace function private.voice_customer_erase(p_tenant_id uuid, p_customer_id uuid)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_phone text;
  v_numbers text[];
  v_call_ids uuid[];
  v_provider_ids text[];
  v_open uuid[];
  v_segments int;
  v_recordings int;
  v_tickets uuid[];
  v_held int;
  v_events int;
  v_until bigint;
begin
  if pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and not coalesce(p_tenant_id = any (private.tenant_ids('admin')) or private.is_platform_admin(), false) then
    raise exception 'permission denied to erase the customers of this tenant' using errcode = '42501';
  end if;

  select c.phone into v_phone from public.voice_customers c
  where c.tenant_id = p_tenant_id and c.id = p_customer_id
  for update;
  if not found then
    raise exception 'Customer not found' using errcode = 'PT404', detail = jsonb_build_object('code', 'not_found');
  end if;
  -- The provider may report a number without its '+', and a record kept as given may lack it.
  v_numbers := array[v_phone, pg_catalog.ltrim(v_phone, '+'), '+' || pg_catalog.ltrim(v_phone, '+')];

  -- The candidates through the customer's index and the unlinked calls' one; then locked
  -- in id order with the whole condition again, so a call linked to someone else
  -- meanwhile is re-checked under its lock and left alone.
  v_call_ids := array(
    select v.id from public.voice_calls v where v.tenant_id = p_tenant_id and v.customer_id = p_customer_id
    union
    select v.id from public.voice_calls v
    where v.tenant_id = p_tenant_id and v.customer_id is null
      and (case when v.direction = 'outbound' then v.to_number else v.from_number end) = any (v_numbers));
  select coalesce(array_agg(v.id order by v.id), '{}'), coalesce(array_agg(v.provider_call_id order by v.id), '{}'),
         coalesce(array_agg(v.id order by v.id) filter (where v.status in ('ringing', 'in_progress')), '{}'),
         (count(*) filter (where v.recording_object is not null))::int,
         coalesce(array_agg(distinct v.ticket_id) filter (where v.ticket_id is not null), '{}')
    into v_call_ids, v_provider_ids, v_open, v_recordings, v_tickets
  from (
    select v.id, v.provider_call_id, v.status, v.recording_object, v.ticket_id
    from public.voice_calls v
    where v.tenant_id = p_tenant_id and v.id = any (v_call_ids)
      and (v.customer_id = p_customer_id
           or (v.customer_id is null
               and (case when v.direction = 'outbound' then v.to_number else v.from_number end) = any (v_numbers)))
    order by v.id
    for update
  ) v;
  if cardinality(v_open) > 0 then
    raise exception 'The customer has calls that have not ended; erase them once they end'
      using errcode = 'PT409', detail = jsonb_build_object('code', 'calls_in_progress', 'details', jsonb_build_object('call_ids', v_open));
  end if;

  select count(*)::int into v_segments from public.voice_call_segments s
  where s.tenant_id = p_tenant_id and s.call_id = any (v_call_ids);

  -- Marked for the trigger `notified`: the events go below, counted; the calls are
  -- named in customer.erased.
  perform pg_catalog.set_config('private.voice_calls_deleted_by', 'erasure', true);
  delete from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = any (v_call_ids);
  perform pg_catalog.set_config('private.voice_calls_deleted_by', '', true);
  delete from public.voice_customers c where c.tenant_id = p_tenant_id and c.id = p_customer_id;

  delete from private.voice_call_early_events e
  where e.tenant_id = p_tenant_id and e.provider_call_id = any (v_provider_ids);
  get diagnostics v_held = row_count;

  delete from private.webhook_events e
  where e.tenant_id = p_tenant_id
    and e.ordering_key = any (('customer:' || p_customer_id) || array(select 'call:' || x from pg_catalog.unnest(v_call_ids) x));
  get diagnostics v_events = row_count;

  -- The trail's job reads back from the newest entry now: this erasure's own included,
  -- and no later record that comes to have the number.
  select coalesce(max(l.id), 0) + 1 into v_until from public.audit_logs l;
  perform private.add_job('voice-erasure-trail', jsonb_build_object(
    'tenant_id', p_tenant_id, 'customer_id', p_customer_id, 'numbers', to_jsonb(v_numbers),
    'call_ids', to_jsonb(v_call_ids), 'customer_ids', jsonb_build_array(p_customer_id),
    'stage', 'calls', 'until_id', v_until, 'before_id', v_until, 'redacted', 0, 'webhook_events', 0),
    'voice-erasure-trail:' || p_tenant_id || ':' || p_customer_id);

  perform private.emit_webhook_event(p_tenant_id, 'customer.erased', 'customer:' || p_customer_id,
    jsonb_build_object('type', 'customer.erased', 'tenant_id', p_tenant_id,
                       'data', jsonb_build_object('id', p_customer_id, 'call_ids', to_jsonb(v_call_ids)),
                       'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp())));

  return jsonb_build_object(
    'customer_id', p_customer_id,
    'erased', jsonb_build_object(
      'calls', cardinality(v_call_ids),
      'transcript_segments', v_segments,
      'recordings', v_recordings,
      'held_events', v_held,
      'webhook_events', v_events),
    'call_ids', to_jsonb(v_call_ids),
    'tickets_kept', to_jsonb(v_tickets),
    'audit_trail', 'queued');
end;
$$;
