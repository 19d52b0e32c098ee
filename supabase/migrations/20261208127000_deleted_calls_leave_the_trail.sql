-- A deleted call takes its audit images with it, its transcript's included (review of
-- the audit trail, issue 14).
--
-- Deleting a call (DELETE /voice/calls/{id}, or through the table) removed its webhook
-- events, which carry its numbers and summary, but the audit trail kept every image of the
-- call and of each transcript segment — twice for a segment (its INSERT, and the DELETE
-- the cascade wrote), readable by admins and by keys with audit:read and calls:read, with
-- no way to remove them short of erasing a customer who had the number. A statement
-- deleting calls now queues the erasure's trail job for them (not for an erasure, which
-- queues its own, nor for a tenant's purge, which nulls every image): it redacts the
-- entries of those calls, then of their segments, back to the oldest entry of the calls,
-- reading the tenant's voice entries in batches as an erasure does, with no notice at the
-- end (call.deleted was sent). The entries stay: who changed what, and who deleted it.

-- Redefined (20261204121000_voice_call_deleted_notices.sql): a job for deleted calls (no
-- customer) redacts their entries and their segments', under its own key, and ends
-- without customer.erasure_completed.
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
      -- A deletion of calls (no customer): their entries, then their segments'.
      when p_job ->> 'customer_id' is null then
        case when v_stage = 'redact_calls' and v_job ->> 'floor_id' is not null then 'redact_segments' else 'done' end
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
      and e.type not in ('customer.erased', 'customer.erasure_completed', 'call.deleted')
      and e.ordering_key = any (array(select 'customer:' || x from pg_catalog.unnest(v_customers) x)
                                || array(select 'call:' || x from pg_catalog.unnest(v_calls) x));
    get diagnostics v_n = row_count;
    v_job := v_job || jsonb_build_object('webhook_events', (v_job ->> 'webhook_events')::int + v_n);
  end if;
  if v_job ->> 'stage' <> 'done' then
    -- Under the erasure's key: a batch run again (a lost lease) replaces the next batch's
    -- job instead of starting a second chain.
    perform private.add_job('voice-erasure-trail', v_job,
      'voice-erasure-trail:' || v_tenant || ':' || coalesce(p_job ->> 'customer_id', 'calls:' || (p_job -> 'call_ids' ->> 0)));
  elsif p_job ->> 'customer_id' is not null then
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


-- Queues the trail's redaction for the calls a statement deleted, per tenant, 1,000 calls
-- a job (their ids are in its payload).
create function private.voice_calls_deleted_trail() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  r record;
begin
  if pg_catalog.current_setting('private.voice_calls_deleted_by', true) = 'erasure' then
    return null; -- the erasure queues its own, which finds these calls too
  end if;
  for r in
    select d.tenant_id, array_agg(d.id order by d.id) as ids
    from (select g.tenant_id, g.id,
                 (pg_catalog.row_number() over (partition by g.tenant_id order by g.id) - 1) / 1000 as chunk
          from gone g
          -- A tenant purged takes its calls along; the purge nulls every image itself.
          where exists (select 1 from public.tenants t where t.id = g.tenant_id)) d
    group by d.tenant_id, d.chunk
  loop
    perform private.add_job('voice-erasure-trail', jsonb_build_object(
      'tenant_id', r.tenant_id, 'customer_id', null, 'numbers', '[]'::jsonb, 'customer_ids', '[]'::jsonb,
      'call_ids', to_jsonb(r.ids), 'stage', 'redact_calls', 'redacted', 0, 'webhook_events', 0));
    -- No job key for the first batch (each statement's calls are its own): a key's
    -- advisory lock per job, held to commit, is what a delete of many calls must not
    -- take (20261204122000). Its successors take the chain's key.

  end loop;
  return null;
end;
$$;
revoke all on function private.voice_calls_deleted_trail() from public, anon, authenticated;
create trigger voice_calls_deleted_trail after delete on public.voice_calls
  referencing old table as gone for each statement execute function private.voice_calls_deleted_trail();
