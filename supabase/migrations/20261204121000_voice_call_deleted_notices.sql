-- call.deleted for a large delete, sent by a job in bounded batches (issue 14, after the
-- review of 20261204120000_voice_call_table_deletes.sql).
--
-- * The calls' delete trigger sent every `call.deleted` in the deleting transaction.
--   Each event takes an advisory lock for its ordering key, and each of its deliveries
--   two more (the delivery job's key and queue), all held until commit: 1 + 2 x (the
--   endpoints listening) locks per call, in Postgres's shared lock table
--   (max_locks_per_transaction x max_connections slots for the whole server). Measured on
--   the local stack (64 x 200, one endpoint): deleting 5,000 calls in one statement
--   held 15,055 locks; 20,000 failed with "out of shared memory", and while such a
--   transaction holds the table every other session's lock request can fail too. An
--   admin's `delete().eq('status', 'completed')` was enough.
--   Now a statement sends, in id order, the notices that fit 500 locks (a single call
--   with up to 249 listening endpoints: the route's case) and queues the rest as
--   `voice-call-notices` jobs of at most 500 calls, each sending what fits 500 locks in
--   its own transaction (at least one) and queueing the rest. Every call is told once;
--   those queued a little later, and not in id order across jobs (each call's events
--   have their own ordering key, so nothing waits on another call's). Queueing takes no
--   lock, so a statement holds at most 500 for its notices, however many calls and
--   endpoints.
-- * A customer erasure's trail job deleted every webhook event about the customer's
--   former calls but its own: now that every delete of a call leaves `call.deleted`
--   (its id only), the trail removed that notice, sent or not. It is kept, as
--   `customer.erased` and `customer.erasure_completed` are, and no longer counted.
-- * Who may set `private.voice_calls_deleted_by` (the erasure's mark that skips the
--   trigger): any session that runs SQL itself — the service role and operators, trusted
--   roles. API clients do not: PostgREST and the functions set only the role and the
--   claims.

-- The locks one event of the type takes in the tenant's transaction: none when nobody
-- listens (private.emit_webhook_event returns first), else one for its ordering key and
-- two per delivery.
create function private.webhook_event_locks(p_tenant_id uuid, p_type text) returns int
language sql stable security definer
set search_path = ''
as $$
  select case when not private.tenant_has_feature(p_tenant_id, 'outbound_webhooks') then 0
              when count(*) = 0 then 0
              else 1 + 2 * count(*)::int end
  from public.webhook_endpoints e
  where e.tenant_id = p_tenant_id and e.enabled and (cardinality(e.event_types) = 0 or p_type = any (e.event_types));
$$;
revoke all on function private.webhook_event_locks(uuid, text) from public, anon, authenticated;

-- Sends `call.deleted` for the first of the tenant's calls (given in id order) that fit
-- 500 locks, at least p_at_least of them; queues the rest as jobs of at most 500 calls.
-- Answers how many were sent now.
create function private.voice_call_notices_send(p_tenant_id uuid, p_call_ids uuid[], p_at_least int) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_locks int := private.webhook_event_locks(p_tenant_id, 'call.deleted');
  v_now int;
  v_rest uuid[];
  v_id uuid;
begin
  if v_locks = 0 then
    return 0; -- nobody listens: nothing to send, now or later
  end if;
  v_now := least(cardinality(p_call_ids), greatest(p_at_least, 500 / v_locks));
  if v_now < cardinality(p_call_ids) then
    v_rest := p_call_ids[v_now + 1:];
    for i in 1 .. cardinality(v_rest) by 500 loop
      -- No job key, so no lock: a job's batch runs at most once, so it never queues its
      -- rest twice.
      perform private.add_job('voice-call-notices',
        jsonb_build_object('tenant_id', p_tenant_id, 'call_ids', to_jsonb(v_rest[i:i + 499])));
    end loop;
  end if;
  foreach v_id in array p_call_ids[1:v_now] loop
    perform private.emit_webhook_event(p_tenant_id, 'call.deleted', 'call:' || v_id,
      jsonb_build_object('type', 'call.deleted', 'tenant_id', p_tenant_id,
                         'data', jsonb_build_object('id', v_id),
                         'occurred_at', private.api_timestamp(pg_catalog.clock_timestamp())));
  end loop;
  return v_now;
end;
$$;
revoke all on function private.voice_call_notices_send(uuid, uuid[], int) from public, anon, authenticated;

-- One batch of a voice-call-notices job, at most once per job (as the erasure's trail:
-- under the job's lease, and a job claimed again after its batch committed does
-- nothing). Answers {sent, queued}, or null when the lease is lost.
create function private.voice_call_notices_batch(p_job_id bigint, p_worker text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_payload jsonb;
  v_ids uuid[];
  v_sent int := 0;
begin
  if not private.job_lease_held(p_job_id, p_worker) then
    return null;
  end if;
  select j.payload into v_payload from private.jobs j where j.id = p_job_id;
  if coalesce((v_payload ->> 'committed')::boolean, false) then
    return jsonb_build_object('sent', 0, 'queued', 0);
  end if;
  v_ids := array(select pg_catalog.jsonb_array_elements_text(v_payload -> 'call_ids'))::uuid[];
  -- A tenant hard-deleted since: nobody to tell.
  if exists (select 1 from public.tenants t where t.id = (v_payload ->> 'tenant_id')::uuid) then
    v_sent := private.voice_call_notices_send((v_payload ->> 'tenant_id')::uuid, v_ids, 1);
  end if;
  update private.jobs j set payload = v_payload || '{"committed": true}' where j.id = p_job_id;
  return jsonb_build_object('sent', v_sent, 'queued', case when v_sent = 0 then 0 else cardinality(v_ids) - v_sent end);
end;
$$;
revoke all on function private.voice_call_notices_batch(bigint, text) from public, anon, authenticated;
grant execute on function private.voice_call_notices_batch(bigint, text) to service_role;
comment on function private.voice_call_notices_batch(bigint, text) is
  'One batch of call.deleted notices of a large delete of calls, at most once per job (voice-call-notices, 20261204121000).';

-- Redefined (20261204120000): the notices through private.voice_call_notices_send.
create or replace function private.voice_calls_deleted() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_open jsonb;
  v_tenant uuid;
  v_ids uuid[];
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
  -- Row locks only (kept in the rows, not the lock table), however many.
  delete from private.webhook_events e
  using gone g
  where e.tenant_id = g.tenant_id and e.ordering_key = 'call:' || g.id;
  for v_tenant, v_ids in
    select g.tenant_id, array_agg(g.id order by g.id) from gone g group by g.tenant_id order by g.tenant_id
  loop
    perform private.voice_call_notices_send(v_tenant, v_ids, 0);
  end loop;
  return null;
end;
$$;

-- Redefined (20261204102000): a former call's call.deleted is kept.
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
