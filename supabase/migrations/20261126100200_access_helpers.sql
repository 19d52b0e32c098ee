-- Who is asking, and what they may reach. The helpers read the request's JWT claims
-- (set by PostgREST, or by the functions' asUser) and are security definer so that
-- policies on one table can consult memberships without recursing into its policies.
-- Policies call them as `(select private.fn(...))` so Postgres evaluates each once per
-- statement (an InitPlan), not once per row.

-- The helpers are plpgsql rather than SQL functions: security definer SQL functions
-- are never inlined and re-plan their queries on every call, while plpgsql caches its
-- plans for the life of the connection (measured: about a third of the per-request
-- RLS cost; see README, Benchmarks).

-- ------------------------------------------------------------------ the caller

-- The platform user behind the request: looked up by (issuer, subject), never by
-- auth.uid(), because Clerk and SuperTokens subjects are not UUIDs.
create function private.current_user_id() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := auth.jwt();
  v_id uuid;
begin
  select i.user_id into v_id
  from public.user_identities i
  join public.users u on u.id = i.user_id
  where i.issuer = v_claims ->> 'iss'
    and i.subject = v_claims ->> 'sub'
    and u.status = 'active';
  return v_id;
end;
$$;
revoke all on function private.current_user_id() from public, anon;
grant execute on function private.current_user_id() to authenticated, service_role;

create function private.is_platform_admin() returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return exists (select 1 from public.platform_admins p where p.user_id = private.current_user_id());
end;
$$;
revoke all on function private.is_platform_admin() from public, anon;
grant execute on function private.is_platform_admin() to authenticated, service_role;

-- The tenant this request acts in, read the same way the functions read it: the
-- `tenant_id` claim (set by the functions and by the Supabase access-token hook) or
-- `app_metadata.tenant_id`, as an id or a slug; else the identity provider's active
-- organisation (Clerk v2 `o.id`, v1 `org_id`) mapped through tenant_org_links. Null
-- when the token names none: the caller then acts in all of their tenants. A name that
-- matches nothing yields a tenant nobody belongs to, so it reaches nothing.
create function private.active_tenant_id() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := auth.jwt();
  v_hint text := coalesce(v_claims ->> 'tenant_id', v_claims -> 'app_metadata' ->> 'tenant_id');
  v_org text := coalesce(v_claims -> 'o' ->> 'id', v_claims ->> 'org_id');
  v_id uuid;
begin
  if v_hint ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return v_hint::uuid;
  elsif v_hint is not null then
    select t.id into v_id from public.tenants t where t.slug = v_hint;
  elsif v_org is not null then
    select l.tenant_id into v_id from public.tenant_org_links l
    where l.issuer = v_claims ->> 'iss' and l.org_id = v_org;
  else
    return null;
  end if;
  return coalesce(v_id, '00000000-0000-0000-0000-000000000000'::uuid);
end;
$$;
revoke all on function private.active_tenant_id() from public, anon;
grant execute on function private.active_tenant_id() to authenticated, service_role;

-- ------------------------------------------------------------------ roles and tenants

create function private.role_rank(p_role text) returns int
language sql immutable
set search_path = ''
as $$
  select case p_role when 'user' then 1 when 'agent' then 2 when 'admin' then 3 else 99 end
$$;
revoke all on function private.role_rank(text) from public, anon;
grant execute on function private.role_rank(text) to authenticated, service_role;

-- Tenants where the caller holds at least p_min_role, narrowed to the active tenant
-- when the request names one. Deleted tenants are gone for members; p_writable keeps
-- only active ones, so a suspended tenant is read-only.
create function private.tenant_ids(p_min_role text, p_writable boolean default false)
returns uuid[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_active uuid := private.active_tenant_id();
  v_ids uuid[];
begin
  select coalesce(array_agg(m.tenant_id), '{}') into v_ids
  from public.memberships m
  join public.tenants t on t.id = m.tenant_id
  where m.user_id = private.current_user_id()
    and private.role_rank(m.role) >= private.role_rank(p_min_role)
    and t.status <> 'deleted'
    and (not p_writable or t.status = 'active')
    and (v_active is null or m.tenant_id = v_active);
  return v_ids;
end;
$$;
revoke all on function private.tenant_ids(text, boolean) from public, anon;
grant execute on function private.tenant_ids(text, boolean) to authenticated, service_role;

-- The caller's role in a tenant ('user', 'agent', 'admin'), 'super_admin' for platform
-- admins, null for outsiders.
create function private.role_in(p_tenant_id uuid) returns text
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_role text;
begin
  if private.is_platform_admin() then
    return 'super_admin';
  end if;
  select m.role into v_role from public.memberships m
  where m.tenant_id = p_tenant_id and m.user_id = private.current_user_id()
    and m.tenant_id = any (private.tenant_ids('user'));
  return v_role;
end;
$$;
revoke all on function private.role_in(uuid) from public, anon;
grant execute on function private.role_in(uuid) to authenticated, service_role;

-- ------------------------------------------------------------------ the request's tenant

-- What the functions ask before a route runs (shared/auth/needs.ts, in the one query that
-- loads the caller): where the request acts and the caller's standing there. The rules
-- are the ones above (the token's tenant, membership narrowed to it, the role, its rank,
-- a suspended tenant read-only); the functions keep no copy. Each refusal carries the
-- API's code in its detail (shared/errors.ts):
--   403 tenant_not_member  the token names a tenant the caller does not belong to (an
--                          invitee's token before they accept);
--   400 tenant_mismatch    X-Tenant-Id names another tenant than the token;
--   400 tenant_required    nothing names a tenant and the caller has not exactly one;
--   404 not_found          not one of the caller's tenants (its existence is not confirmed);
--   403 forbidden          a role below the one the route needs;
--   403 tenant_suspended   a write in a tenant that is not active.

-- The tenant the token names, when the caller belongs there (a platform admin: when it
-- exists) or is invited there (enough to read /me and accept); null when it names none.
-- Any other named tenant refuses the token outright.
create function private.token_tenant_id() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_token uuid := private.active_tenant_id();
begin
  if v_token is null
     or v_token = any (private.tenant_ids('user'))
     or (private.is_platform_admin() and exists (select 1 from public.tenants t where t.id = v_token))
     or exists (select 1 from private.my_invitations() i where i.tenant_id = v_token) then
    return v_token;
  end if;
  raise exception 'The tenant named by the token is not one of yours'
    using errcode = 'PT403', detail = '{"code": "tenant_not_member"}';
end;
$$;
revoke all on function private.token_tenant_id() from public, anon;
grant execute on function private.token_tenant_id() to authenticated, service_role;

-- The tenant a request without one in its path acts in: the token's (X-Tenant-Id, when
-- sent, must name the same one, by id or slug); else X-Tenant-Id (p_name), one of the
-- caller's tenants by id or slug, else the id itself (a platform admin may name any
-- tenant), else the nil id, which is nobody's tenant; else the caller's only tenant.
-- Null when nothing names one. Whether the caller may act there is tenant_access's
-- question (a token's tenant that is not theirs is its 403 tenant_not_member, before a
-- differing header matters).
create function private.request_tenant_id(p_name text) returns uuid
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
       and p_name is distinct from (select t.slug from public.tenants t where t.id = v_token) then
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
    where t.id = any (v_mine) and (t.id::text = lower(p_name) or t.slug = p_name);
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
revoke all on function private.request_tenant_id(text) from public, anon;
grant execute on function private.request_tenant_id(text) to authenticated, service_role;

-- The caller's standing in a tenant (the path's, or request_tenant_id's), for a route
-- that needs at least p_min_role there, and p_write for a write: {tenant_id, role, staff,
-- admin}, staff and admin saying whether the role ranks as an agent and as an admin (a
-- route that checks more once it has found a ticket reads them, and never compares
-- roles itself). Platform admins act as super_admin in any tenant, suspended ones too
-- (to repair them).
create function private.tenant_access(p_tenant_id uuid, p_min_role text, p_write boolean default false)
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
revoke all on function private.tenant_access(uuid, text, boolean) from public, anon;
grant execute on function private.tenant_access(uuid, text, boolean) to authenticated, service_role;

-- ------------------------------------------------------------------ teams

-- The caller's teams (in the active tenant, or all of theirs) as tenant-qualified keys,
-- '<tenant_id>/<team_id>'. Team ids are unique only within their tenant ((tenant_id, id)
-- is the key): compared bare (issue 9 found it), a team of tenant B whose id equals a
-- team of tenant A opened A's team tickets, internal notes included, to B's members. So
-- every comparison builds the same key from the row's own tenant_id and team_id.
--
-- Text keys rather than a composite type: measured on a million rows, `text = any
-- (text[])` costs about 1.5 times a bare `uuid = any (uuid[])`, a composite
-- `(tenant_id, team_id)::type = any (type[])` about 5 times (record_eq per element).
-- Both sides are built as tenant_id::text || '/' || team_id::text (uuid text output
-- is fixed-width, so the key is unambiguous). Building the row's key costs about a
-- microsecond, so the policies first drop rows whose team_id is none of the keys' team
-- ids (a uuid comparison, computed once per statement from the same keys) and build
-- the key only for the rest (an agent counting 200,000 tickets, a tenth of them their
-- team's: about 1.5 times the bare-id policy at worst, against 2 to 3 times without
-- the prefilter; the newest 50 cost the same). The prefilter alone decides nothing;
-- the key comparison does.
create function private.my_team_keys() returns text[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_keys text[];
begin
  select coalesce(array_agg(tm.tenant_id::text || '/' || tm.team_id::text), '{}') into v_keys
  from public.team_members tm
  where tm.user_id = private.current_user_id()
    and tm.tenant_id = any (private.tenant_ids('agent'));
  return v_keys;
end;
$$;
revoke all on function private.my_team_keys() from public, anon;
grant execute on function private.my_team_keys() to authenticated, service_role;

-- ------------------------------------------------------------------ for definer code

-- Whether a person belongs to a tenant, for triggers that check a row's people. Not
-- executable by API roles: it would tell anyone who belongs to any tenant.
create function private.is_member(p_tenant_id uuid, p_user_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (select 1 from public.memberships m where m.tenant_id = p_tenant_id and m.user_id = p_user_id)
$$;
revoke all on function private.is_member(uuid, uuid) from public, anon, authenticated, service_role;

-- For definer functions that write in the tenant their caller names: PT404 when the
-- caller is not a member there (or the request's active tenant is another one), PT403
-- when the tenant is suspended (read-only). Platform admins may act in any tenant, as
-- the policies let them. Not executable by API roles: definer code calls it.
create function private.assert_writable_tenant(p_tenant_id uuid) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if private.is_platform_admin() then
    return;
  end if;
  if p_tenant_id is null or p_tenant_id <> all (private.tenant_ids('user')) then
    raise exception 'tenant not found' using errcode = 'PT404';
  end if;
  if p_tenant_id <> all (private.tenant_ids('user', true)) then
    raise exception 'the tenant is suspended; it is read-only until resumed' using errcode = 'PT403';
  end if;
end;
$$;
revoke all on function private.assert_writable_tenant(uuid) from public, anon, authenticated, service_role;
