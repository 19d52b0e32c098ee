-- Who is asking, and what they may reach. The helpers read the request's JWT claims
-- (set by PostgREST, or by the functions' asUser) and are security definer so that
-- policies on one table can consult memberships without recursing into its policies.
-- Policies call them as `(select private.fn(...))` so Postgres evaluates each once per
-- statement (an InitPlan), not once per row.

grant usage on schema private to authenticated, service_role;

-- The helpers are plpgsql rather than SQL functions: security definer SQL functions
-- are never inlined and re-plan their queries on every call, while plpgsql caches its
-- plans for the life of the connection (measured: about a third of the per-request
-- RLS cost; see README, Benchmarks).

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

create function private.is_platform_admin() returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return exists (select 1 from public.platform_admins p where p.user_id = private.current_user_id());
end;
$$;

-- The tenant this request acts in: the `tenant_id` claim (set by the functions and by
-- the Supabase access-token hook), else the identity provider's active organisation
-- (Clerk v2 `o.id`, v1 `org_id`) mapped through tenant_org_links. Null when the token
-- names none, in which case the caller acts in all of their tenants.
create function private.active_tenant_id() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := auth.jwt();
  v_org text := coalesce(v_claims -> 'o' ->> 'id', v_claims ->> 'org_id');
  v_id uuid;
begin
  if v_claims ->> 'tenant_id' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return (v_claims ->> 'tenant_id')::uuid;
  end if;
  if v_org is null then
    return null;
  end if;
  select l.tenant_id into v_id from public.tenant_org_links l
  where l.issuer = v_claims ->> 'iss' and l.org_id = v_org;
  return v_id;
end;
$$;

create function private.role_rank(p_role text) returns int
language sql immutable
set search_path = ''
as $$
  select case p_role when 'user' then 1 when 'agent' then 2 when 'admin' then 3 else 99 end
$$;

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

-- Users sharing at least one tenant with the caller, for reading each other's profiles.
create function private.shares_tenant_with(p_user_id uuid) returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return exists (
    select 1 from public.memberships m
    where m.user_id = p_user_id
      and m.tenant_id = any (private.tenant_ids('user'))
  );
end;
$$;

revoke all on all functions in schema private from public, anon;
grant execute on function
  private.current_user_id(), private.is_platform_admin(), private.active_tenant_id(),
  private.role_rank(text), private.tenant_ids(text, boolean), private.shares_tenant_with(uuid)
  to authenticated, service_role;

-- Row Level Security on every table. anon reaches nothing: no policy names it.
alter table public.tenants enable row level security;
alter table public.users enable row level security;
alter table public.user_identities enable row level security;
alter table public.tenant_org_links enable row level security;
alter table public.platform_admins enable row level security;
alter table public.memberships enable row level security;
alter table public.teams enable row level security;
alter table public.team_members enable row level security;

revoke all on public.tenants, public.users, public.user_identities, public.tenant_org_links,
  public.platform_admins, public.memberships, public.teams, public.team_members from anon;

-- tenants: members read their tenant; admins update it (name, settings — the guard
-- trigger keeps slug, status and plan for super-admins); super-admins do everything.
create policy tenants_select on public.tenants for select to authenticated
  using (id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy tenants_insert on public.tenants for insert to authenticated
  with check ((select private.is_platform_admin()));
create policy tenants_update on public.tenants for update to authenticated
  using (id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy tenants_delete on public.tenants for delete to authenticated
  using ((select private.is_platform_admin()));

-- users: yourself and the people you share a tenant with; you edit your own profile.
-- New users come in through private.find_or_create_user (invites) or trusted paths.
create policy users_select on public.users for select to authenticated
  using (
    id = (select private.current_user_id())
    or (select private.is_platform_admin())
    or (deleted_at is null and private.shares_tenant_with(id))
  );
create policy users_update on public.users for update to authenticated
  using (id = (select private.current_user_id()) or (select private.is_platform_admin()))
  with check (id = (select private.current_user_id()) or (select private.is_platform_admin()));

create policy user_identities_select on public.user_identities for select to authenticated
  using (user_id = (select private.current_user_id()) or (select private.is_platform_admin()));

create policy tenant_org_links_select on public.tenant_org_links for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy tenant_org_links_insert on public.tenant_org_links for insert to authenticated
  with check ((select private.is_platform_admin()));
create policy tenant_org_links_delete on public.tenant_org_links for delete to authenticated
  using ((select private.is_platform_admin()));

create policy platform_admins_select on public.platform_admins for select to authenticated
  using (user_id = (select private.current_user_id()) or (select private.is_platform_admin()));

-- memberships: members see who else is in their tenant; admins manage them.
create policy memberships_select on public.memberships for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy memberships_insert on public.memberships for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy memberships_update on public.memberships for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy memberships_delete on public.memberships for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- teams and team_members: every member reads them; admins manage them.
create policy teams_select on public.teams for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy teams_insert on public.teams for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy teams_update on public.teams for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy teams_delete on public.teams for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

create policy team_members_select on public.team_members for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('user'))::uuid[]) or (select private.is_platform_admin()));
create policy team_members_insert on public.team_members for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy team_members_delete on public.team_members for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- Invites: an admin adds a person by e-mail, who may not exist yet or may already be
-- a user of another tenant (invisible to this admin under RLS). Only tenant admins
-- and super-admins may call it; it returns the user's id and nothing else.
create function private.find_or_create_user(p_email text, p_first_name text default null, p_last_name text default null)
returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if cardinality(private.tenant_ids('admin', true)) = 0 and not private.is_platform_admin() then
    raise exception 'only tenant admins may invite users' using errcode = '42501';
  end if;
  insert into public.users (email, first_name, last_name)
  values (lower(btrim(p_email)), p_first_name, p_last_name)
  on conflict (lower(email)) do nothing
  returning id into v_id;
  if v_id is null then
    select u.id into v_id from public.users u where lower(u.email) = lower(btrim(p_email));
  end if;
  return v_id;
end;
$$;
revoke all on function private.find_or_create_user(text, text, text) from public, anon;
grant execute on function private.find_or_create_user(text, text, text) to authenticated, service_role;

-- Guards that RLS cannot express. Errors use PostgREST's PTxxx codes so direct API
-- clients get the same HTTP status the functions return.

-- A tenant never loses its last admin (unless the tenant itself is deleted). The
-- tenant row is locked so two admins demoting each other at once cannot both win.
create function private.keep_last_admin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if old.role <> 'admin' or (tg_op = 'UPDATE' and new.role = 'admin') then
    return coalesce(new, old);
  end if;
  select t.status into v_status from public.tenants t where t.id = old.tenant_id for update;
  if v_status is null or v_status = 'deleted' then
    return coalesce(new, old);
  end if;
  if not exists (
    select 1 from public.memberships m
    where m.tenant_id = old.tenant_id and m.role = 'admin' and m.id <> old.id
  ) then
    raise exception 'a tenant must keep at least one admin' using errcode = 'PT409';
  end if;
  return coalesce(new, old);
end;
$$;
create trigger keep_last_admin before update of role or delete on public.memberships
  for each row execute function private.keep_last_admin();

-- Tenant admins may rename their tenant and change its settings; slug, status, plan
-- and deletion belong to super-admins and trusted machine paths.
create function private.guard_tenant_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated'
     and (new.slug, new.status, new.plan, new.deleted_at) is distinct from (old.slug, old.status, old.plan, old.deleted_at)
     and not private.is_platform_admin() then
    raise exception 'only platform admins may change slug, status or plan' using errcode = 'PT403';
  end if;
  return new;
end;
$$;
create trigger guard_tenant_update before update on public.tenants
  for each row execute function private.guard_tenant_update();

-- Users edit their own profile; e-mail and status are changed by super-admins and
-- trusted paths only.
create function private.guard_user_update() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated'
     and (lower(new.email), new.status, new.deleted_at) is distinct from (lower(old.email), old.status, old.deleted_at)
     and not private.is_platform_admin() then
    raise exception 'only platform admins may change e-mail or status' using errcode = 'PT403';
  end if;
  return new;
end;
$$;
create trigger guard_user_update before update on public.users
  for each row execute function private.guard_user_update();

revoke all on function private.keep_last_admin(), private.guard_tenant_update(),
  private.guard_user_update(), private.set_updated_at() from public, anon;
