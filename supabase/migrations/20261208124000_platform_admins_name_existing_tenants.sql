-- A platform admin naming a tenant that does not exist is told 404, as everyone is
-- (review of authorization, issue 14).
--
-- private.role_in answers 'super_admin' for any tenant id, so tenant_access let a platform
-- admin act in one that does not exist: GET /tenants/{unknown}/api-keys, /audit and
-- /members answered 200 with empty lists, POST /tenants/{unknown}/teams a 422 from the
-- foreign key, while GET /tenants/{unknown} was a 404. Now the admin's standing in a
-- tenant id needs the tenant (one primary-key lookup, on their path only).

-- Redefined (20261126100200_access_helpers.sql): a platform admin's tenant must exist.
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
     and not exists (select 1 from public.tenants t where t.id = p_tenant_id) then
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
