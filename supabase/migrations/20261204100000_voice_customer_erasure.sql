-- Erasing a voice customer (issue 14; the right to erasure a tenant owes its callers).
--
-- Deleting a customer (DELETE /voice/customers/{id}) only unlinks their calls: the calls
-- keep the caller's number, transcript, summary and recording, and the audit trail keeps
-- an image of every version of the customer and of each call and segment. An erasure
-- removes all of it in one transaction:
-- * the customer, and their calls: linked to them, or with their number as the other
--   party and no customer (made before the customer was added, or while unlinked);
-- * the calls' transcripts (segments cascade) and recordings (the calls' delete trigger
--   queues the objects' storage-delete jobs, 20261203252000);
-- * events the provider sent ahead of those calls and still held;
-- * outbound webhook events about the customer or those calls (their deliveries and
--   attempts cascade), so nothing about them is sent after the erasure; a
--   `customer.erased` event then tells receivers which customer and calls to erase;
-- * the images in the audit trail of every version of those records, of calls that
--   were linked to the customer or had their number and were deleted before (with their
--   transcripts), and of other customer records that had their number (with their
--   webhook events): old_data and new_data become null and
--   redacted_at is set. The entries themselves stay (who changed what, when, and who
--   erased it: the erasure's own DELETE entries, redacted the same way).
-- Tickets opened from those calls are the support workflow's records and are kept; the
-- answer lists them so the admin can handle them there.
-- A customer with a call still ringing or in progress is refused (409 calls_in_progress):
-- the provider's next event for it would come back as a held event with their number.

alter table public.audit_logs add column redacted_at timestamptz;
comment on column public.audit_logs.redacted_at is
  'When the entry''s row images were erased (private.voice_customer_erase): old_data and new_data are then null; the entry stays.';
-- New entries are written unredacted by the trigger; a redacted one holds no image.
-- NOT VALID: every existing row has redacted_at null, and the trail is the largest table.
alter table public.audit_logs add constraint audit_logs_redacted_without_images
  check (redacted_at is null or (old_data is null and new_data is null)) not valid;

-- Admins of the tenant (a suspended tenant's too: an erasure is owed whatever its
-- billing), platform admins, and the service role. Answers what was erased.
create function private.voice_customer_erase(p_tenant_id uuid, p_customer_id uuid)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_phone text;
  v_calls jsonb;
  v_call_ids uuid[];
  v_provider_ids text[];
  v_open uuid[];
  v_segment_ids uuid[];
  v_recordings int;
  v_tickets uuid[];
  v_former_call_ids uuid[];
  v_former_customer_ids uuid[];
  v_former_segment_ids uuid[] := '{}';
  v_held int;
  v_events int;
  v_audit int;
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

  -- Their calls, locked so no event changes one meanwhile.
  select coalesce(array_agg(v.id order by v.id), '{}'), coalesce(array_agg(v.provider_call_id order by v.id), '{}'),
         coalesce(array_agg(v.id order by v.id) filter (where v.status in ('ringing', 'in_progress')), '{}'),
         (count(*) filter (where v.recording_object is not null))::int,
         coalesce(array_agg(distinct v.ticket_id) filter (where v.ticket_id is not null), '{}')
    into v_call_ids, v_provider_ids, v_open, v_recordings, v_tickets
  from (
    select v.id, v.provider_call_id, v.status, v.recording_object, v.ticket_id
    from public.voice_calls v
    where v.tenant_id = p_tenant_id
      and (v.customer_id = p_customer_id
           or (v.customer_id is null
               and ((v.direction = 'inbound' and v.from_number = v_phone) or (v.direction = 'outbound' and v.to_number = v_phone))))
    order by v.id
    for update
  ) v;
  if cardinality(v_open) > 0 then
    raise exception 'The customer has calls that have not ended; erase them once they end'
      using errcode = 'PT409', detail = jsonb_build_object('code', 'calls_in_progress', 'details', jsonb_build_object('call_ids', v_open));
  end if;

  select coalesce(array_agg(s.id), '{}') into v_segment_ids
  from public.voice_call_segments s
  where s.tenant_id = p_tenant_id and s.call_id = any (v_call_ids);

  -- Calls that were the customer's (or had their number) and were deleted before, and
  -- other customer records that had their number: only the trail still holds them.
  select coalesce(array_agg(distinct (l.record_key ->> 'id')::uuid), '{}') into v_former_call_ids
  from public.audit_logs l
  where l.tenant_id = p_tenant_id and l.table_name = 'voice_calls'
    and (l.record_key ->> 'id')::uuid <> all (v_call_ids)
    and (l.old_data ->> 'customer_id' = p_customer_id::text or l.new_data ->> 'customer_id' = p_customer_id::text
         or l.old_data ->> 'from_number' = v_phone or l.new_data ->> 'from_number' = v_phone
         or l.old_data ->> 'to_number' = v_phone or l.new_data ->> 'to_number' = v_phone);
  select coalesce(array_agg(distinct (l.record_key ->> 'id')::uuid), '{}') into v_former_customer_ids
  from public.audit_logs l
  where l.tenant_id = p_tenant_id and l.table_name = 'voice_customers'
    and (l.record_key ->> 'id')::uuid <> p_customer_id
    and (l.old_data ->> 'phone' = v_phone or l.new_data ->> 'phone' = v_phone);
  -- The transcripts of those deleted calls: their segments' entries, all written after
  -- their call's first entry (a segment is stored only once its call exists), read from
  -- there on by the trail's (tenant_id, table_name, id) index.
  if cardinality(v_former_call_ids) > 0 then
    select coalesce(array_agg(distinct (l.record_key ->> 'id')::uuid), '{}') into v_former_segment_ids
    from public.audit_logs l
    where l.tenant_id = p_tenant_id and l.table_name = 'voice_call_segments'
      and l.id >= (select min(f.id) from public.audit_logs f
                   where f.table_name = 'voice_calls'
                     and f.record_key = any (array(select jsonb_build_object('tenant_id', p_tenant_id, 'id', x)
                                                   from pg_catalog.unnest(v_former_call_ids) x)))
      and coalesce(l.old_data, l.new_data) ->> 'call_id' = any (v_former_call_ids::text[]);
  end if;

  delete from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = any (v_call_ids);
  delete from public.voice_customers c where c.tenant_id = p_tenant_id and c.id = p_customer_id;

  delete from private.voice_call_early_events e
  where e.tenant_id = p_tenant_id and e.provider_call_id = any (v_provider_ids);
  get diagnostics v_held = row_count;

  delete from private.webhook_events e
  where e.tenant_id = p_tenant_id
    and e.ordering_key = any (array(select 'customer:' || x from pg_catalog.unnest(p_customer_id || v_former_customer_ids) x)
                              || array(select 'call:' || x from pg_catalog.unnest(v_call_ids || v_former_call_ids) x));
  get diagnostics v_events = row_count;

  -- After the deletes, so their own entries are redacted too.
  with keys (table_name, id) as (
    select 'voice_customers', x from pg_catalog.unnest(p_customer_id || v_former_customer_ids) x
    union all
    select 'voice_calls', x from pg_catalog.unnest(v_call_ids || v_former_call_ids) x
    union all
    select 'voice_call_segments', x from pg_catalog.unnest(v_segment_ids || v_former_segment_ids) x
  )
  update public.audit_logs l
  set old_data = null, new_data = null, image_bytes = 0, redacted_at = pg_catalog.now()
  from keys k
  where l.table_name = k.table_name
    and l.record_key = jsonb_build_object('tenant_id', p_tenant_id, 'id', k.id)
    and l.tenant_id = p_tenant_id
    and l.redacted_at is null;
  get diagnostics v_audit = row_count;

  perform private.emit_webhook_event(p_tenant_id, 'customer.erased', 'customer:' || p_customer_id,
    jsonb_build_object('type', 'customer.erased', 'tenant_id', p_tenant_id,
                       'data', jsonb_build_object('id', p_customer_id, 'call_ids', to_jsonb(v_call_ids || v_former_call_ids)),
                       'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp())));

  return jsonb_build_object(
    'customer_id', p_customer_id,
    'erased', jsonb_build_object(
      'calls', cardinality(v_call_ids),
      'transcript_segments', cardinality(v_segment_ids),
      'recordings', v_recordings,
      'held_events', v_held,
      'webhook_events', v_events,
      'audit_entries', v_audit),
    'call_ids', to_jsonb(v_call_ids),
    'tickets_kept', to_jsonb(v_tickets));
end;
$$;
revoke all on function private.voice_customer_erase(uuid, uuid) from public, anon;
grant execute on function private.voice_customer_erase(uuid, uuid) to authenticated, service_role;
comment on function private.voice_customer_erase(uuid, uuid) is
  'Erases a voice customer with their calls, transcripts, recordings, held events, webhook events and the images of all of them in the audit trail (20261204100000).';

-- Redefined: as 20261203140000_voice_early_events.sql, and a call from a customer being
-- erased (or deleted) at that moment is recorded as an unknown caller's. The customer was
-- found by number before the erasure committed; the insert's foreign key check then
-- waited for the erasure's lock and, once it committed, found the customer gone: a 422
-- to the provider, and the call lost. Now the insert is tried again without a customer
-- (a subtransaction per start); any other foreign key (an agent that does not exist)
-- is refused as before.
create or replace function private.voice_call_started(
  p_tenant_id uuid, p_agent_id uuid, p_provider_call_id text, p_direction text,
  p_from text, p_to text, p_started_at timestamptz, p_answered boolean
) returns table (applied boolean, call_id uuid, status text)
language plpgsql
set search_path = ''
as $$
#variable_conflict use_column
declare
  v_id uuid;
  v_tenant_status text;
  v_customer uuid;
  v_constraint text;
begin
  v_tenant_status := private.voice_event_tenant_status(p_tenant_id);
  -- A repeat answers the call as it is, before the rule about new calls.
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
  if found then
    return;
  end if;
  if v_tenant_status = 'suspended' then
    raise exception 'The tenant is suspended; it takes no new calls' using errcode = 'PT403',
      detail = jsonb_build_object('code', 'tenant_suspended')::text;
  end if;
  v_customer := (select c.id from public.voice_customers c
                 where c.tenant_id = p_tenant_id and c.phone = case when p_direction = 'outbound' then p_to else p_from end);
  loop
    begin
      insert into public.voice_calls (tenant_id, agent_id, customer_id, direction, status, provider_call_id,
                                      from_number, to_number, started_at, answered_at)
      values (p_tenant_id, p_agent_id, v_customer,
              p_direction, case when p_answered then 'in_progress' else 'ringing' end, p_provider_call_id,
              p_from, p_to, coalesce(p_started_at, now()), case when p_answered then coalesce(p_started_at, now()) end)
      on conflict (tenant_id, provider_call_id) do nothing
      returning id into v_id;
      exit;
    exception when foreign_key_violation then
      get stacked diagnostics v_constraint = constraint_name;
      if v_customer is null or v_constraint is distinct from 'voice_calls_tenant_id_customer_id_fkey' then
        raise;
      end if;
      v_customer := null;
    end;
  end loop;
  if v_id is not null then
    return query select true, c.id, c.status from public.voice_calls c where c.tenant_id = p_tenant_id and c.id = v_id;
    return;
  end if;
  -- Started at the same moment by a concurrent repeat: that one's call.
  return query select false, c.id, c.status from public.voice_calls c
    where c.tenant_id = p_tenant_id and c.provider_call_id = p_provider_call_id;
end;
$$;
