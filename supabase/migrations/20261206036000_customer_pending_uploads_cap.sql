-- A customer's registered-but-not-yet-uploaded attachments hold at most so many bytes:
-- the tenant's storage is not one customer's to fill with announcements.
--
-- Registering an attachment charges its announced size to the plan's storage_bytes at
-- once; a registration whose file never arrives gives it back only when its check runs,
-- after the upload URL expired (2 h 10 min, 20261206015000). A customer (role user) who
-- kept registering 50 MiB files without sending any kept the tenant's storage full two
-- hours at a time, on either path: every upload of the tenant, staff's included, was 403
-- plan_limit_reached meanwhile. Now a customer's pending registrations in a tenant hold
-- at most `settings.customer_pending_upload_bytes` (200 MiB unless set; 50 MiB, one file
-- of the largest size, to 100 GiB); past it the registration is refused, PT429
-- `rate_limited` ({scope, limit, pending, requested, retry_after: seconds until the
-- oldest pending registration's check}). A registration stops being pending when its
-- file is found (read, or the check). Staff, platform admins, API keys and the machine's
-- paths are not counted.

-- A customer's pending registrations, for the sum (pending ones only: few at any time).
create index attachments_pending_uploader_idx on public.attachments (tenant_id, uploaded_by) where status = 'pending';

-- The tenant's bound on a customer's pending bytes: a number the settings hold, within
-- bounds, else 200 MiB (a value written past the API's check never refuses an upload
-- for being odd).
create function private.customer_pending_upload_bytes(p_tenant_id uuid) returns bigint
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select case when pg_catalog.jsonb_typeof(t.settings -> 'customer_pending_upload_bytes') = 'number'
                then least(greatest(pg_catalog.floor((t.settings ->> 'customer_pending_upload_bytes')::numeric), 52428800),
                           107374182400)::bigint
           end
    from public.tenants t where t.id = p_tenant_id), 209715200)
$$;
revoke all on function private.customer_pending_upload_bytes(uuid) from public, anon, authenticated, service_role;

-- Refuses the caller's registration of p_size_bytes more when their pending ones would
-- pass the bound. One customer's registrations in a tenant are counted one transaction at
-- a time (an advisory lock until commit, taken before the ticket's lock: this trigger
-- fires first), so two at once cannot both take the last room; a bulk insert is counted
-- row by row (a row-level BEFORE trigger sees the rows its statement inserted before).
-- Only the caller's own registrations, in a tenant they belong to: called directly, it
-- tells them no more than their next registration would.
create function private.check_customer_upload(p_tenant_id uuid, p_size_bytes bigint) returns void
language plpgsql security definer
set search_path = ''
as $$
declare
  v_me uuid := private.current_user_id();
  v_cap bigint;
  v_pending bigint;
  v_oldest timestamptz;
begin
  if v_me is null or not p_tenant_id = any (private.tenant_ids('user')) then
    return;
  end if;
  v_cap := private.customer_pending_upload_bytes(p_tenant_id);
  perform pg_catalog.pg_advisory_xact_lock(
    pg_catalog.hashtextextended('customer_uploads:' || p_tenant_id::text || ':' || v_me::text, 0));
  select coalesce(sum(a.size_bytes), 0), min(a.created_at) into v_pending, v_oldest
  from public.attachments a
  where a.tenant_id = p_tenant_id and a.uploaded_by = v_me and a.status = 'pending';
  if v_pending + coalesce(p_size_bytes, 0) > v_cap then
    raise exception 'Too many bytes of yours are waiting for their upload in this tenant' using errcode = 'PT429',
      detail = pg_catalog.jsonb_build_object('code', 'rate_limited', 'details', pg_catalog.jsonb_build_object(
        'scope', 'customer_pending_upload_bytes', 'limit', v_cap, 'pending', v_pending, 'requested', p_size_bytes,
        'retry_after', greatest(1, pg_catalog.ceil(extract(epoch from
          coalesce(v_oldest, pg_catalog.now()) + interval '2 hours 10 minutes' - pg_catalog.clock_timestamp())))::integer));
  end if;
end;
$$;
revoke all on function private.check_customer_upload(uuid, bigint) from public, anon, service_role;
grant execute on function private.check_customer_upload(uuid, bigint) to authenticated;

-- As the invoker: `current_user` tells an API request from a trusted path, and only a
-- customer's own registration is counted. Named to fire first among the table's BEFORE
-- INSERT triggers (before ticket_parent_lock takes the ticket).
create function private.attachments_customer_pending_cap() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated' and private.role_in(new.tenant_id) = 'user' then
    perform private.check_customer_upload(new.tenant_id, new.size_bytes);
  end if;
  return new;
end;
$$;
revoke all on function private.attachments_customer_pending_cap() from public, anon;
create trigger customer_pending_cap before insert on public.attachments
  for each row execute function private.attachments_customer_pending_cap();
