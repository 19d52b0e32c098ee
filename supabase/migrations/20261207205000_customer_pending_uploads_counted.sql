-- A customer's pending uploads are bounded in number too, not only in declared bytes
-- (review of storage).
--
-- The bound on a customer's registered-but-not-uploaded attachments added up the sizes
-- they declared, and the storage's signed upload does not hold a client to its declared
-- size: each file may be as large as the bucket allows (50 MiB). Registrations of one
-- byte each, hundreds of thousands of them, each with a file of 50 MiB put behind it,
-- passed the 200 MiB bound and the plan's storage count (charged one byte each) until
-- their checks ran two hours later. Now a customer also holds at most
-- `settings.customer_pending_uploads` pending registrations in a tenant (50 unless set;
-- 10 to 10,000): past it, 429 rate_limited, scope customer_pending_uploads, with the time
-- the oldest one's check frees a place; files that did arrive no longer count (the
-- registration marks them first, as for the bytes).

create function private.customer_pending_uploads(p_tenant_id uuid) returns int
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select case when pg_catalog.jsonb_typeof(t.settings -> 'customer_pending_uploads') = 'number'
                then least(greatest(pg_catalog.floor((t.settings ->> 'customer_pending_uploads')::numeric), 10), 10000)::int
           end
    from public.tenants t where t.id = p_tenant_id), 50)
$$;
revoke all on function private.customer_pending_uploads(uuid) from public, anon, authenticated, service_role;

-- Redefined (20261206037000_bounds_review.sql): a bound on the number of pending
-- registrations before the one on their bytes.
create or replace function private.check_customer_upload(p_tenant_id uuid, p_size_bytes bigint) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_cap bigint;
  v_pending bigint;
  v_frees timestamptz;
  v_count int;
  v_most int;
begin
  if v_me is null or not p_tenant_id = any (private.tenant_ids('user')) then
    return;
  end if;
  v_cap := private.customer_pending_upload_bytes(p_tenant_id);
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('customer_uploads:' || p_tenant_id::text || ':' || v_me::text, 0));
  select coalesce(sum(a.size_bytes), 0), count(*) into v_pending, v_count
  from public.attachments a
  where a.tenant_id = p_tenant_id and a.uploaded_by = v_me and a.status = 'pending';
  -- As many registrations as bytes: the size is the client's word, which the storage's
  -- signed upload does not hold it to (each file may be up to the bucket's limit).
  v_most := private.customer_pending_uploads(p_tenant_id);
  if v_count >= v_most then
    select a.created_at + interval '2 hours 10 minutes' into v_frees
    from public.attachments a
    where a.tenant_id = p_tenant_id and a.uploaded_by = v_me and a.status = 'pending'
    order by a.created_at, a.id limit 1;
    raise exception 'Too many files of yours are waiting for their upload in this tenant' using errcode = 'PT429',
      detail = pg_catalog.jsonb_build_object('code', 'rate_limited', 'details', pg_catalog.jsonb_build_object(
        'scope', 'customer_pending_uploads', 'limit', v_most, 'pending', v_count,
        'retry_after', greatest(60, pg_catalog.ceil(extract(epoch from v_frees - pg_catalog.clock_timestamp())))::integer));
  end if;
  if v_pending + coalesce(p_size_bytes, 0) > v_cap then
    -- When their checks will have freed enough: the pending ones oldest first, until the
    -- room left holds this one.
    select r.created_at + interval '2 hours 10 minutes' into v_frees
    from (
      select a.created_at, sum(a.size_bytes) over (order by a.created_at, a.id) as freed
      from public.attachments a
      where a.tenant_id = p_tenant_id and a.uploaded_by = v_me and a.status = 'pending'
    ) r
    where v_pending - r.freed + coalesce(p_size_bytes, 0) <= v_cap
    order by r.created_at limit 1;
    raise exception 'Too many bytes of yours are waiting for their upload in this tenant' using errcode = 'PT429',
      detail = pg_catalog.jsonb_build_object('code', 'rate_limited', 'details', pg_catalog.jsonb_build_object(
        'scope', 'customer_pending_upload_bytes', 'limit', v_cap, 'pending', v_pending, 'requested', p_size_bytes,
        'retry_after', greatest(60, pg_catalog.ceil(extract(epoch from
          coalesce(v_frees, pg_catalog.now() + interval '2 hours 10 minutes') - pg_catalog.clock_timestamp())))::integer));
  end if;
end;
$$;

