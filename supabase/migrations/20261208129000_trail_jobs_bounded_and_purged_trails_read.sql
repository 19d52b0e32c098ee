-- Follow-ups of this stop's review (issue 14): a deletion's trail job reads back only as
-- far as its calls' first entries; a platform admin still reads a purged tenant's trail.
--
-- 20261208127000 queued, for every delete of calls, a job reading the tenant's voice_calls
-- entries back to the first ever: deleting one call of a tenant with years of calls read
-- all of them, 5,000 a job. The job now carries `since` (an hour before the oldest deleted
-- call was made, when its first entry was written) and stops reading the calls' entries at
-- the first batch reaching past it; the segments' stage was bounded already (by the
-- calls' first entries).
--
-- 20261208124000 told a platform admin 404 for a tenant that does not exist, also for one
-- purged, whose trail keeps its own deletion (who purged it, when: 20261207143000), which
-- GET /tenants/{id}/audit read before. A tenant id with that entry counts as theirs again.

-- Redefined (20261208127000_deleted_calls_leave_the_trail.sql): `since` bounds the calls'
-- stage of a deletion's job.
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
  -- A deletion's job reads the calls' entries back to just before the oldest call was
  -- made (their first entry), not the tenant's whole history.
  v_since timestamptz := (p_job ->> 'since')::timestamptz;
  v_oldest timestamptz;
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
      select l.id, l.record_key, l.old_data, l.new_data, l.redacted_at, l.created_at from public.audit_logs l
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
           (select min(b.id) from batch b where v_stage = 'redact_calls' and (b.record_key ->> 'id')::uuid = any (v_calls)),
           (select min(b.created_at) from batch b)
      into v_read, v_last, v_n, v_first, v_oldest;
    v_job := v_job || jsonb_build_object('redacted', (v_job ->> 'redacted')::int + v_n);
    if v_first is not null then
      v_job := v_job || jsonb_build_object('floor_id', least(v_floor, v_first));
    end if;
  end if;

  if v_read = v_batch and not (v_stage = 'redact_calls' and v_since is not null and v_oldest < v_since) then
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


-- Redefined (20261208127000_deleted_calls_leave_the_trail.sql): the job carries `since`.
create or replace function private.voice_calls_deleted_trail() returns trigger
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
    select d.tenant_id, array_agg(d.id order by d.id) as ids, min(d.created_at) as since
    from (select g.tenant_id, g.id, g.created_at,
                 (pg_catalog.row_number() over (partition by g.tenant_id order by g.id) - 1) / 1000 as chunk
          from gone g
          -- A tenant purged takes its calls along; the purge nulls every image itself.
          where exists (select 1 from public.tenants t where t.id = g.tenant_id)) d
    group by d.tenant_id, d.chunk
  loop
    perform private.add_job('voice-erasure-trail', jsonb_build_object(
      'tenant_id', r.tenant_id, 'customer_id', null, 'numbers', '[]'::jsonb, 'customer_ids', '[]'::jsonb,
      'call_ids', to_jsonb(r.ids), 'stage', 'redact_calls', 'redacted', 0, 'webhook_events', 0,
      -- An hour before the oldest call was made: its first entry is written as it is.
      'since', r.since - interval '1 hour'));
    -- No job key for the first batch (each statement's calls are its own): a key's
    -- advisory lock per job, held to commit, is what a delete of many calls must not
    -- take (20261204122000). Its successors take the chain's key.

  end loop;
  return null;
end;
$$;


-- Redefined (20261208124000_platform_admins_name_existing_tenants.sql): a purged tenant's
-- trail is a platform admin's to read.
create or replace function private.tenant_access(p_tenant_id uuid, p_min_role text, p_write boolean default false)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_role text;
  v_token uuid;
begin
  if p_tenant_id <> '00000000-0000-0000-0000-000000000000'::uuid then
    v_role := private.role_in(p_tenant_id); -- narrowed to the token's tenant
  end if;
  -- A role here means the token's tenant is the caller's (role_in is narrowed to it), but
  -- for platform admins, who have one everywhere: their token's tenant must exist.
  if v_role is null or v_role = 'super_admin' then
    v_token := private.token_tenant_id(); -- refuses a tenant neither theirs nor inviting them
  end if;
  -- Platform admins have a role in every tenant id, an unknown one too: an operator's typo
  -- read as a tenant with nothing in it (200 and an empty list, or a 422 from a foreign
  -- key) where everyone else is told 404.
  if v_role = 'super_admin' and p_tenant_id is not null
     and not exists (select 1 from public.tenants t where t.id = p_tenant_id)
     -- A purged tenant keeps its trail (who purged it, when): theirs to read.
     and not exists (select 1 from public.audit_logs l
                     where l.tenant_id = p_tenant_id and l.table_name = 'tenants' and l.action = 'DELETE') then
    v_role := null;
  end if;
  if v_role is null then
    -- Why not, in the order the API answers: an invitee's token, nothing named, not theirs.
    if v_token is not null and v_token <> all (private.tenant_ids('user')) and not private.is_platform_admin() then
      raise exception 'Your token is bound to a tenant you are invited to but have not joined; accept the invitation first'
        using errcode = 'PT403', detail = '{"code": "tenant_not_member"}';
    end if;
    if p_tenant_id is null then
      raise exception 'Name the tenant with the X-Tenant-Id header'
        using errcode = 'PT400', detail = '{"code": "tenant_required"}';
    end if;
    raise exception 'Tenant not found' using errcode = 'PT404', detail = '{"code": "not_found"}';
  end if;
  if private.role_rank(v_role) < private.role_rank(p_min_role) then
    raise exception 'This needs the % role in the tenant', p_min_role
      using errcode = 'PT403', detail = '{"code": "forbidden"}';
  end if;
  if p_write and v_role <> 'super_admin' and p_tenant_id <> all (private.tenant_ids('user', true)) then
    raise exception 'The tenant is suspended; it is read-only until resumed'
      using errcode = 'PT403', detail = '{"code": "tenant_suspended"}';
  end if;
  return jsonb_build_object(
    'tenant_id', p_tenant_id, 'role', v_role,
    'staff', private.role_rank(v_role) >= private.role_rank('agent'),
    'admin', private.role_rank(v_role) >= private.role_rank('admin'));
end;
$$;

