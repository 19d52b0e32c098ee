-- A suspended tenant's admins can still revoke its API keys (issue 14, review of the
-- tenants function).
--
-- Suspension makes a tenant read-only, and revoking a key is an update of api_keys, so it
-- was refused (403 tenant_suspended; the update policy admits writable tenants only)
-- while the key itself kept reading: a key that leaked during a suspension could not be
-- stopped until the tenant was resumed. Taking access away is no change to the tenant's
-- data, so it is allowed while suspended, through this function; everything else about
-- a key stays fixed (api_key_guard), and renaming stays a write.

-- Definer: the update policy refuses a suspended tenant; this checks the caller itself,
-- an admin of the tenant (suspended or not, never deleted) or a platform admin. The key
-- is revoked once: a second call keeps the first time. Null when there is no such key
-- in that tenant, or the caller may not revoke there (both a 404 to the route).
create function private.revoke_api_key(p_tenant_id uuid, p_key_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if p_tenant_id <> all (private.tenant_ids('admin')) and not private.is_platform_admin() then
    return null;
  end if;
  update public.api_keys k set revoked_at = coalesce(k.revoked_at, now())
  where k.tenant_id = p_tenant_id and k.id = p_key_id
  returning k.id into v_id;
  return v_id;
end;
$$;
revoke all on function private.revoke_api_key(uuid, uuid) from public, anon;
grant execute on function private.revoke_api_key(uuid, uuid) to authenticated, service_role;
