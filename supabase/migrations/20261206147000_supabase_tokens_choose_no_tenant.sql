-- Supabase tokens of a person in several tenants named their oldest membership's tenant
-- unless app_metadata.tenant_id (which only an operator can set) chose another: a token
-- bound to a tenant works only there, so someone who accepted an invitation into a second
-- tenant could never work in it (its routes 404, X-Tenant-Id naming it 400
-- tenant_mismatch). Clerk's tokens name an organisation only when the person chose one
-- as active. Now the hook binds the token to the tenant app_metadata.tenant_id names
-- when the person is a member there, or to their only tenant; a person in several
-- tenants without a valid choice gets an unbound token (a choice of a tenant they have
-- left is dropped from it) and names the tenant per request (X-Tenant-Id, or the path).

-- Redefined (20261126101700_inbound_webhooks.sql): no tenant chosen for someone in several.
create or replace function private.custom_access_token_hook(event jsonb) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := coalesce(event -> 'claims', '{}');
  v_wanted text := v_claims -> 'app_metadata' ->> 'tenant_id';
  v_member record;
  v_issuer text := private.setting('supabase_auth_issuer');
begin
  if v_issuer is null then
    raise exception 'private.settings has no supabase_auth_issuer: tokens cannot carry tenant claims'
      using hint = 'set it to https://<ref>.supabase.co/auth/v1 (README, Deploying to a hosted project)';
  end if;
  -- The choice names a tenant by id or slug, as requests read it (private.active_tenant_id).
  select m.tenant_id, m.role, count(*) over () as tenants,
         (m.tenant_id::text = v_wanted or t.slug = v_wanted) as chosen into v_member
  from public.user_identities i
  join public.memberships m on m.user_id = i.user_id
  join public.tenants t on t.id = m.tenant_id and t.status <> 'deleted'
  where i.issuer = v_issuer and i.subject = event ->> 'user_id'
  order by (m.tenant_id::text = v_wanted or t.slug = v_wanted) desc, m.created_at
  limit 1;
  if v_member.tenant_id is not null and (v_member.chosen or v_member.tenants = 1) then
    v_claims := v_claims || jsonb_build_object('tenant_id', v_member.tenant_id, 'tenant_role', v_member.role);
  else
    -- Bound to none. A choice naming a tenant they are no longer in goes too: requests read
    -- app_metadata.tenant_id where the token has no tenant_id (private.active_tenant_id),
    -- and would all be refused as from a non-member.
    v_claims := v_claims - 'tenant_id' - 'tenant_role';
    if jsonb_typeof(v_claims -> 'app_metadata') = 'object' then
      v_claims := jsonb_set(v_claims, '{app_metadata}', (v_claims -> 'app_metadata') - 'tenant_id');
    end if;
  end if;
  return jsonb_build_object('claims', v_claims);
end;
$$;
