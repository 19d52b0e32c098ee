-- A key revoked with a time at or after its expiry is refused as revoked (review of this
-- stop's diff).
--
-- 20261207203000 told a retired key (revoked as of its expiry) as expired by reading any
-- revoked_at not before expires_at that way. But admins may write revoked_at through the
-- table, any time they like: a key "revoked" as of a date after its future expiry was
-- then neither revoked nor expired, and verified (its place in the plan given back, and
-- the telephony routes, which verify a key alone, answered it). Only the retirement's
-- exact shape, revoked_at equal to an expires_at that has passed, is told as expired now.

-- Redefined (20261207203000_expired_api_keys_give_their_place_back.sql): expired only in
-- the retirement's shape.
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
  -- Retired at its expiry (private.retire_expired_api_keys: revoked_at is exactly its
  -- expires_at, which has passed): it expired, as it says. Any other revocation is one.
  if v_revoked is not null and not coalesce(v_revoked = v_expires and v_expires <= now(), false) then
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

