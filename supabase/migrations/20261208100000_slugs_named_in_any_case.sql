-- A tenant's slug is stored in lower case (tenants_slug_check), but where a request or a
-- token names a tenant by slug it was matched as sent: X-Tenant-Id `Acme` named no tenant
-- (404 not_found; with a token bound to acme, 400 tenant_mismatch) and app_metadata
-- tenant_id `Acme` bound the token to none. Ids were already read in any case. Now a slug
-- is named in any case on every path that reads one.

-- Redefined (20261126100200_access_helpers.sql): the header's slug in any case.
create or replace function private.request_tenant_id(p_name text) returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_token uuid := private.active_tenant_id();
  v_mine uuid[];
  v_id uuid;
begin
  if v_token is not null then
    if p_name is not null and lower(p_name) <> v_token::text
       and lower(p_name) is distinct from (select t.slug from public.tenants t where t.id = v_token) then
      if v_token <> all (private.tenant_ids('user'))
         and not (private.is_platform_admin() and exists (select 1 from public.tenants t where t.id = v_token)) then
        return null;
      end if;
      raise exception 'X-Tenant-Id differs from the tenant your token is bound to'
        using errcode = 'PT400', detail = '{"code": "tenant_mismatch"}';
    end if;
    return v_token;
  end if;
  v_mine := private.tenant_ids('user');
  if p_name is not null then
    select t.id into v_id from public.tenants t
    where t.id = any (v_mine) and (t.id::text = lower(p_name) or t.slug = lower(p_name));
    if v_id is null and p_name ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
      v_id := p_name::uuid;
    end if;
    return coalesce(v_id, '00000000-0000-0000-0000-000000000000'::uuid);
  end if;
  if cardinality(v_mine) = 1 then
    return v_mine[1];
  end if;
  return null;
end;
$$;

-- Redefined (20261202080000_api_keys.sql): the token's slug in any case.
create or replace function private.active_tenant_id() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := auth.jwt();
  v_hint text := coalesce(v_claims ->> 'tenant_id', v_claims -> 'app_metadata' ->> 'tenant_id');
  v_org text := coalesce(v_claims -> 'o' ->> 'id', v_claims ->> 'org_id');
  v_id uuid;
begin
  if v_claims ->> 'iss' = 'tenant-platform:api-key' then
    return coalesce((private.claimed_api_key()).tenant_id, '00000000-0000-0000-0000-000000000000'::uuid);
  end if;
  if v_hint ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return v_hint::uuid;
  elsif v_hint is not null then
    select t.id into v_id from public.tenants t where t.slug = lower(v_hint);
  elsif v_org is not null then
    select l.tenant_id into v_id from public.tenant_org_links l
    where l.issuer = v_claims ->> 'iss' and l.org_id = v_org;
  else
    return null;
  end if;
  return coalesce(v_id, '00000000-0000-0000-0000-000000000000'::uuid);
end;
$$;

-- Redefined (20261206147000_supabase_tokens_choose_no_tenant.sql): the choice's slug or id in any case.
create or replace function private.custom_access_token_hook(event jsonb) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := coalesce(event -> 'claims', '{}');
  v_wanted text := lower(v_claims -> 'app_metadata' ->> 'tenant_id');
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
