-- An expired API key gives its place in the plan's api_keys limit back (review of plans and
-- API keys).
--
-- The limit counts unrevoked keys, and the count moved only when a key was revoked: a key
-- past its expires_at (refused on every request) kept its place until an admin revoked
-- it by hand. A starter tenant whose five 90-day keys had all expired was refused a new
-- one (403 plan_limit_reached, usage 5 of 5) with none working. Now an expired key is
-- retired, its revoked_at the time it expired: before a key is created in its tenant,
-- and by the daily prune job for every tenant (5,000 a batch, as the other pruners).
-- Retiring one is a revocation like any: its place comes back, the webhook endpoints it
-- made end with it, and the audit trail records it.

create function private.retire_expired_api_keys(p_tenant_id uuid) returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_n int;
begin
  -- skip locked: a key being retired (or revoked) by another transaction is theirs.
  with due as (
    select k.tenant_id, k.id from public.api_keys k
    where (p_tenant_id is null or k.tenant_id = p_tenant_id)
      and k.revoked_at is null and k.expires_at <= pg_catalog.now()
    order by k.tenant_id, k.id
    limit 5000
    for no key update skip locked
  )
  update public.api_keys k set revoked_at = k.expires_at
  from due where k.tenant_id = due.tenant_id and k.id = due.id;
  get diagnostics v_n = row_count;
  return v_n;
end;
$$;
revoke all on function private.retire_expired_api_keys(uuid) from public, anon, authenticated;
grant execute on function private.retire_expired_api_keys(uuid) to service_role;

-- Redefined (20261206161000_assignments_and_keys_wait_for_role_changes.sql): expired
-- keys are retired before the new one is counted.
create or replace function private.create_api_key(
  p_tenant_id uuid, p_name text, p_scopes text[], p_expires_at timestamptz, p_secret_sha256 text
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ctx jsonb := private.caller_context();
  v_id uuid := gen_random_uuid();
begin
  if v_ctx -> 'api_key' is not null then
    raise exception 'An API key cannot create API keys' using errcode = 'PT403', detail = '{"code": "insufficient_scope"}';
  end if;
  if p_tenant_id is null or not (p_tenant_id = any (private.tenant_ids('admin', true))) then
    if p_tenant_id is not null and private.is_platform_admin() and exists (select 1 from public.tenants t where t.id = p_tenant_id) then
      raise exception 'An API key acts as the admin who creates it: only an admin of this tenant may create one'
        using errcode = 'PT403', detail = '{"code": "api_key_owner_required"}';
    end if;
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  perform 1 from public.memberships m
  where m.tenant_id = p_tenant_id and m.user_id = private.current_user_id() and m.role = 'admin'
  for share;
  if not found then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  if p_secret_sha256 is null or p_secret_sha256 !~ '^[0-9a-f]{64}$' then
    raise exception 'The secret hash is malformed' using errcode = 'PT400', detail = '{"code": "bad_request"}';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'expires_at must be in the future' using errcode = 'PT400', detail = '{"code": "expiry_in_past"}';
  end if;
  -- Expired keys give their places back first: they count until retired.
  perform private.retire_expired_api_keys(p_tenant_id);
  insert into public.api_keys (tenant_id, id, name, prefix, scopes, expires_at, created_by)
  values (p_tenant_id, v_id, p_name, 'tpk_live_' || left(replace(v_id::text, '-', ''), 8),
          (select coalesce(array_agg(distinct s order by s), '{}') from unnest(p_scopes) s),
          p_expires_at, private.current_user_id());
  insert into private.api_key_secrets (tenant_id, key_id, secret_sha256)
  values (p_tenant_id, v_id, decode(p_secret_sha256, 'hex'));
  return jsonb_build_object('tenant_id', p_tenant_id, 'id', v_id);
end;
$$;


-- Redefined (20261206012000_api_key_use_marked_without_waiting.sql): a key retired at its
-- expiry is refused as expired (api_key_expired), not revoked.
create or replace function private.verify_api_key(p_id uuid, p_secret_sha256 text, p_scope text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_tenant uuid;
  v_scopes text[];
  v_revoked timestamptz;
  v_expires timestamptz;
  v_owner boolean;
  v_last timestamptz;
begin
  if p_secret_sha256 is null or p_secret_sha256 !~ '^[0-9a-f]{64}$' then
    raise exception 'The API key is not valid' using errcode = 'PT401', detail = '{"code": "invalid_api_key"}';
  end if;
  select k.id, k.tenant_id, k.scopes, k.revoked_at, k.expires_at, s.last_used_at,
    exists (select 1 from public.memberships m join public.users u on u.id = m.user_id
            where m.tenant_id = k.tenant_id and m.user_id = k.created_by and m.role = 'admin' and u.status = 'active')
  into v_id, v_tenant, v_scopes, v_revoked, v_expires, v_last, v_owner
  from private.api_key_secrets s join public.api_keys k on k.tenant_id = s.tenant_id and k.id = s.key_id
  where s.key_id = p_id and s.secret_sha256 = decode(p_secret_sha256, 'hex');
  if v_id is null then
    raise exception 'The API key is not valid' using errcode = 'PT401', detail = '{"code": "invalid_api_key"}';
  end if;
  -- Retired at its expiry (private.retire_expired_api_keys): it expired, as it says.
  if v_revoked is not null and (v_expires is null or v_revoked < v_expires) then
    raise exception 'The API key has been revoked' using errcode = 'PT401', detail = '{"code": "api_key_revoked"}';
  end if;
  if v_expires is not null and v_expires <= now() then
    raise exception 'The API key has expired' using errcode = 'PT401', detail = '{"code": "api_key_expired"}';
  end if;
  if not v_owner then
    raise exception 'The admin who created this API key is no longer an admin of its tenant; create a new key'
      using errcode = 'PT401', detail = '{"code": "api_key_owner_inactive"}';
  end if;
  -- Marked used at most once a minute, and never waited for: the request that marks it
  -- holds the row until its transaction ends, so the others of that minute skip it
  -- (the mark is theirs too) instead of queueing behind it one request at a time.
  if v_last is null or v_last < now() - interval '1 minute' then
    update private.api_key_secrets s set last_used_at = now()
    where s.tenant_id = v_tenant and s.key_id = v_id
      and exists (select 1 from private.api_key_secrets l
                  where l.tenant_id = v_tenant and l.key_id = v_id
                    and (l.last_used_at is null or l.last_used_at < now() - interval '1 minute')
                  for no key update skip locked);
  end if;
  if p_scope is null or not (p_scope = any (v_scopes)) then
    raise exception 'The API key does not have the scope this route needs'
      using errcode = 'PT403', detail = jsonb_build_object('code', 'insufficient_scope', 'details', jsonb_build_object('required', p_scope))::text;
  end if;
  return jsonb_build_object('id', v_id, 'tenant_id', v_tenant, 'scopes', to_jsonb(v_scopes));
end;
$$;

