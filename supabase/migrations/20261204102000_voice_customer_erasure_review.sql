-- Erasing a voice customer, after the second review (20261204100000, 20261204101000).
--
-- * A batch of the trail's job run twice (its lease lost after it committed) queued a
--   second successor: two chains, doubling at each lost lease. Each batch's job now has
--   the erasure's key, so a batch run again replaces the next batch's job.
-- * The batch queries bounded their index scans with "cursor is null or id < cursor":
--   under a generic plan (PL/pgSQL's cache, after five runs in one session) no bound, so
--   every batch read from the newest entry. The bounds are plain now, and each batch is
--   planned with its values (plan_cache_mode).
-- * Each stage read back from the newest entry when it began, so a record made with the
--   number after the erasure, and deleted, could be taken for the customer's. Every
--   stage now reads back from the newest entry at the erasure (`until_id`).
-- * The request chose the calls by a read and then locked them by id: a call linked to
--   another customer in between was deleted with the erasure's. The lock now repeats
--   the whole condition, so such a call is re-checked and left alone.
-- * Calls deleted before were found by the job but never named to receivers: at its
--   end the job sends `customer.erasure_completed` with every call it erased (and the
--   count of entries redacted).
-- * The request deleted webhook events by ordering key without an index (the tenant's
--   30 days of events read under the customer's lock): (tenant_id, ordering_key) now.
-- * A customer kept without '+' matches calls reported with it too.
-- * Without any call of theirs, the calls' entries are not read again to redact nothing;
--   the former records' webhook events go when the records are known, whichever stage
--   comes next.

create index webhook_events_tenant_ordering_key_idx on private.webhook_events (tenant_id, ordering_key);

-- Redefined (20261204101000): the lock repeats the condition; the job's key and bound.
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

  delete from public.voice_calls v where v.tenant_id = p_tenant_id and v.id = any (v_call_ids);
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

-- Redefined (20261204101000): plain bounds planned per batch, one chain per erasure, the
-- stage's cut-off at the erasure, and the completion event.
create or replace function private.voice_erasure_trail_step(p_job jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
-- Each batch planned with its own bounds: a generic plan could not bound the index scan.
set plan_cache_mode = force_custom_plan
as $$
declare
  v_tenant uuid := (p_job ->> 'tenant_id')::uuid;
  v_numbers text[] := array(select pg_catalog.jsonb_array_elements_text(p_job -> 'numbers'));
  v_calls uuid[] := array(select pg_catalog.jsonb_array_elements_text(p_job -> 'call_ids'))::uuid[];
  v_customers uuid[] := array(select pg_catalog.jsonb_array_elements_text(p_job -> 'customer_ids'))::uuid[];
  v_stage text := p_job ->> 'stage';
  v_until bigint := coalesce((p_job ->> 'until_id')::bigint, 9223372036854775807);
  -- A job queued before until_id existed (20261204101000) reads from the newest entry.
  v_before bigint := coalesce((p_job ->> 'before_id')::bigint, (p_job ->> 'until_id')::bigint, 9223372036854775807);
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
        and l.id < v_before
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
    with batch as (
      select l.id, l.record_key, l.old_data, l.new_data, l.redacted_at from public.audit_logs l
      where l.tenant_id = v_tenant
        and l.table_name = case v_stage when 'redact_calls' then 'voice_calls'
                                        when 'redact_customers' then 'voice_customers'
                                        else 'voice_call_segments' end
        and l.id < v_before
        -- A segment is stored after its call's first entry: none of the calls' is older.
        and l.id >= case when v_stage = 'redact_segments' then v_floor else 0 end
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
    v_job := v_job || jsonb_build_object('before_id', v_until, 'stage', case
      when v_stage = 'calls' then 'customers'
      -- No call was theirs: none of the calls' entries to read.
      when v_stage = 'customers' and cardinality(v_calls) > 0 then 'redact_calls'
      when v_stage in ('customers', 'redact_calls') then 'redact_customers'
      -- No call has an entry: no segment to look for.
      when v_stage = 'redact_customers' and v_job ->> 'floor_id' is not null then 'redact_segments'
      else 'done' end);
  end if;
  if v_stage = 'customers' and v_job ->> 'stage' <> 'customers' then
    -- Every record is known: the webhook events about the former ones go (the request
    -- removed the others').
    delete from private.webhook_events e
    where e.tenant_id = v_tenant
      and e.type not in ('customer.erased', 'customer.erasure_completed')
      and e.ordering_key = any (array(select 'customer:' || x from pg_catalog.unnest(v_customers) x)
                                || array(select 'call:' || x from pg_catalog.unnest(v_calls) x));
    get diagnostics v_n = row_count;
    v_job := v_job || jsonb_build_object('webhook_events', (v_job ->> 'webhook_events')::int + v_n);
  end if;
  if v_job ->> 'stage' <> 'done' then
    -- Under the erasure's key: a batch run again (a lost lease) replaces the next batch's
    -- job instead of starting a second chain.
    perform private.add_job('voice-erasure-trail', v_job,
      'voice-erasure-trail:' || v_tenant || ':' || (p_job ->> 'customer_id'));
  else
    -- Receivers hear of the calls deleted before, too, once their images are gone.
    perform private.emit_webhook_event(v_tenant, 'customer.erasure_completed', 'customer:' || (p_job ->> 'customer_id'),
      jsonb_build_object('type', 'customer.erasure_completed', 'tenant_id', v_tenant,
                         'data', jsonb_build_object('id', p_job ->> 'customer_id', 'call_ids', to_jsonb(v_calls),
                                                    'audit_entries', (v_job ->> 'redacted')::int),
                         'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp())));
  end if;
  return v_job;
end;
$$;

