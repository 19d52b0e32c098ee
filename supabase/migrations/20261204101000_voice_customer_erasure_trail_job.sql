-- Erasing a voice customer, after review (20261204100000).
--
-- What the first version got wrong:
-- * It redacted records that were not the customer's: a call matched their number on
--   either side, so erasing a customer whose number was an agent's line redacted every
--   call to that line; and calls and customer records found in the trail were redacted
--   even when they were still alive (a record that once had the number, a call relinked).
-- * It read the trail inside the request, holding the customer's and the calls' locks:
--   the trail has no index by record (audit_logs_record_idx was dropped for write speed,
--   20261201153000), so finding a record's entries meant reading every voice entry of the
--   tenant, which on a large tenant outlasts a request and holds up the provider's calls.
-- * Numbers were compared exactly: a call the provider reported without the '+' of the
--   customer's E.164 number was not theirs.
--
-- Now the request does what indexes serve, under the locks: the customer, their calls
-- (linked; or unlinked with their number as the caller of an inbound call or the callee
-- of an outbound one, with or without its '+', through a new partial index), held events,
-- unsent webhook events about them; and queues a `voice-erasure-trail` job for the trail.
-- The job reads the tenant's voice entries newest first through the (tenant_id,
-- table_name, id) index, a batch per transaction, no lock on any live row:
-- 1. calls: a call is the customer's when it was erased now, or it is gone (deleted
--    before) and an entry of it named the customer or had their number on its side;
-- 2. customer records: the customer, and records that are gone and had their number;
-- 3. then every entry of those calls, records and the calls' segments is redacted
--    (old_data, new_data null; redacted_at set; the entry stays), and the webhook events
--    about the former ones deleted. Segments are looked for only back to the oldest entry
--    of those calls (a segment is stored after its call).
-- Each batch is one job; a batch that is not the last queues the next (in the same
-- transaction), so a run of the job runner goes on while its budget lasts and the next
-- run resumes. The job's payload holds the number until the last batch, which ends it.

-- Unlinked calls by the other party's number: the request finds them by index.
create index voice_calls_unlinked_party_idx on public.voice_calls
  (tenant_id, (case when direction = 'outbound' then to_number else from_number end))
  where customer_id is null;

-- Redefined (20261204100000): the request's part only; answers without the trail's count.
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
  -- The provider may report a number without its '+'.
  v_numbers := array[v_phone, pg_catalog.ltrim(v_phone, '+')];

  select coalesce(array_agg(v.id order by v.id), '{}'), coalesce(array_agg(v.provider_call_id order by v.id), '{}'),
         coalesce(array_agg(v.id order by v.id) filter (where v.status in ('ringing', 'in_progress')), '{}'),
         (count(*) filter (where v.recording_object is not null))::int,
         coalesce(array_agg(distinct v.ticket_id) filter (where v.ticket_id is not null), '{}')
    into v_call_ids, v_provider_ids, v_open, v_recordings, v_tickets
  from (
    select v.id, v.provider_call_id, v.status, v.recording_object, v.ticket_id
    from public.voice_calls v
    where v.tenant_id = p_tenant_id and v.customer_id = p_customer_id
    union
    select v.id, v.provider_call_id, v.status, v.recording_object, v.ticket_id
    from public.voice_calls v
    where v.tenant_id = p_tenant_id and v.customer_id is null
      and (case when v.direction = 'outbound' then v.to_number else v.from_number end) = any (v_numbers)
  ) v;
  if cardinality(v_open) > 0 then
    raise exception 'The customer has calls that have not ended; erase them once they end'
      using errcode = 'PT409', detail = jsonb_build_object('code', 'calls_in_progress', 'details', jsonb_build_object('call_ids', v_open));
  end if;
  -- Locked in id order, as the deletes below take them.
  perform 1 from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = any (v_call_ids) order by v.id for update;

  select count(*)::int into v_segments from public.voice_call_segments s
  where s.tenant_id = p_tenant_id and s.call_id = any (v_call_ids);

  delete from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = any (v_call_ids);
  delete from public.voice_customers c where c.tenant_id = p_tenant_id and c.id = p_customer_id;

  delete from private.voice_call_early_events e
  where e.tenant_id = p_tenant_id and e.provider_call_id = any (v_provider_ids);
  get diagnostics v_held = row_count;

  delete from private.webhook_events e
  where e.tenant_id = p_tenant_id
    and e.ordering_key = any (('customer:' || p_customer_id) || array(select 'call:' || x from pg_catalog.unnest(v_call_ids) x));
  get diagnostics v_events = row_count;

  perform private.add_job('voice-erasure-trail', jsonb_build_object(
    'tenant_id', p_tenant_id, 'customer_id', p_customer_id, 'numbers', to_jsonb(v_numbers),
    'call_ids', to_jsonb(v_call_ids), 'customer_ids', jsonb_build_array(p_customer_id),
    'stage', 'calls', 'before_id', null, 'redacted', 0, 'webhook_events', 0));

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

-- One batch of an erasure's trail job (the payload as private.voice_customer_erase queued
-- it, or as the previous batch left it). Answers the payload it left: `stage` 'done' when
-- it was the last, else the next batch is queued. For the job runner only.
create function private.voice_erasure_trail_step(p_job jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_tenant uuid := (p_job ->> 'tenant_id')::uuid;
  v_numbers text[] := array(select pg_catalog.jsonb_array_elements_text(p_job -> 'numbers'));
  v_calls uuid[] := array(select pg_catalog.jsonb_array_elements_text(p_job -> 'call_ids'))::uuid[];
  v_customers uuid[] := array(select pg_catalog.jsonb_array_elements_text(p_job -> 'customer_ids'))::uuid[];
  v_stage text := p_job ->> 'stage';
  v_before bigint := (p_job ->> 'before_id')::bigint;
  v_batch int := coalesce((p_job ->> 'batch')::int, 5000);
  v_read int;
  v_last bigint;
  v_found uuid[];
  v_n int;
  v_floor bigint := (p_job ->> 'floor_id')::bigint;
  v_first bigint;
  v_job jsonb := p_job;
begin
  if v_stage not in ('calls', 'customers', 'redact_calls', 'redact_customers', 'redact_segments') then
    raise exception 'unknown stage %', v_stage using errcode = '22023';
  end if;

  if v_stage in ('calls', 'customers') then
    -- Which records were the customer's: gone, and an entry names them or has their number.
    with batch as (
      select l.id, l.record_key, l.old_data, l.new_data from public.audit_logs l
      where l.tenant_id = v_tenant
        and l.table_name = case v_stage when 'calls' then 'voice_calls' else 'voice_customers' end
        and (v_before is null or l.id < v_before)
      order by l.id desc
      limit v_batch
    ), matched as (
      select distinct (b.record_key ->> 'id')::uuid as id
      from batch b
      cross join lateral (values (b.old_data), (b.new_data)) i (image)
      where i.image is not null
        and case v_stage
              when 'calls' then
                i.image ->> 'customer_id' = (p_job ->> 'customer_id')
                or (case when i.image ->> 'direction' = 'outbound' then i.image ->> 'to_number' else i.image ->> 'from_number' end)
                   = any (v_numbers)
              else i.image ->> 'phone' = any (v_numbers)
            end
    )
    select (select count(*)::int from batch), (select min(x.id) from batch x),
           coalesce(array_agg(m.id) filter (
             where not exists (select 1 from public.voice_calls v where v_stage = 'calls' and v.tenant_id = v_tenant and v.id = m.id)
               and not exists (select 1 from public.voice_customers c where v_stage = 'customers' and c.tenant_id = v_tenant and c.id = m.id)),
             '{}')
      into v_read, v_last, v_found
    from matched m;
    if v_stage = 'calls' then
      v_calls := array(select distinct x from pg_catalog.unnest(v_calls || v_found) x order by 1);
      v_job := v_job || jsonb_build_object('call_ids', to_jsonb(v_calls));
    else
      v_customers := array(select distinct x from pg_catalog.unnest(v_customers || v_found) x order by 1);
      v_job := v_job || jsonb_build_object('customer_ids', to_jsonb(v_customers));
    end if;
  else
    if v_stage = 'redact_calls' and v_before is null then
      -- The webhook events about the former records (the request removed the others').
      delete from private.webhook_events e
      where e.tenant_id = v_tenant
        and e.type <> 'customer.erased'
        and e.ordering_key = any (array(select 'customer:' || x from pg_catalog.unnest(v_customers) x)
                                  || array(select 'call:' || x from pg_catalog.unnest(v_calls) x));
      get diagnostics v_n = row_count;
      v_job := v_job || jsonb_build_object('webhook_events', (v_job ->> 'webhook_events')::int + v_n);
    end if;
    with batch as (
      select l.id, l.record_key, l.old_data, l.new_data, l.redacted_at from public.audit_logs l
      where l.tenant_id = v_tenant
        and l.table_name = case v_stage when 'redact_calls' then 'voice_calls'
                                        when 'redact_customers' then 'voice_customers'
                                        else 'voice_call_segments' end
        and (v_before is null or l.id < v_before)
        -- A segment is stored after its call's first entry: none of the calls' is older.
        and (v_stage <> 'redact_segments' or l.id >= v_floor)
      order by l.id desc
      limit v_batch
    ), redacted as (
      update public.audit_logs l
      set old_data = null, new_data = null, image_bytes = 0, redacted_at = pg_catalog.now()
      from batch b
      where l.id = b.id and b.redacted_at is null
        and case v_stage
              when 'redact_calls' then (b.record_key ->> 'id')::uuid = any (v_calls)
              when 'redact_customers' then (b.record_key ->> 'id')::uuid = any (v_customers)
              else (coalesce(b.old_data, b.new_data) ->> 'call_id')::uuid = any (v_calls)
            end
      returning 1
    )
    select (select count(*)::int from batch), (select min(x.id) from batch x), (select count(*)::int from redacted),
           (select min(b.id) from batch b where v_stage = 'redact_calls' and (b.record_key ->> 'id')::uuid = any (v_calls))
      into v_read, v_last, v_n, v_first;
    v_job := v_job || jsonb_build_object('redacted', (v_job ->> 'redacted')::int + v_n);
    if v_first is not null then
      v_job := v_job || jsonb_build_object('floor_id', least(v_floor, v_first));
    end if;
  end if;

  if v_read = v_batch then
    v_job := v_job || jsonb_build_object('before_id', v_last);
  else
    v_job := v_job || jsonb_build_object('before_id', null, 'stage', case
      when v_stage = 'calls' then 'customers'
      when v_stage = 'customers' then 'redact_calls'
      when v_stage = 'redact_calls' then 'redact_customers'
      -- No call has an entry: no segment to look for.
      when v_stage = 'redact_customers' and v_job ->> 'floor_id' is not null then 'redact_segments'
      else 'done' end);
  end if;
  if v_job ->> 'stage' <> 'done' then
    perform private.add_job('voice-erasure-trail', v_job);
  end if;
  return v_job;
end;
$$;
revoke all on function private.voice_erasure_trail_step(jsonb) from public, anon, authenticated;
grant execute on function private.voice_erasure_trail_step(jsonb) to service_role;
comment on function private.voice_erasure_trail_step(jsonb) is
  'One batch of a customer erasure''s audit trail job (voice-erasure-trail, 20261204101000).';
