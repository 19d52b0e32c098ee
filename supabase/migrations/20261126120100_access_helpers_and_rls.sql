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

revoke all on all functions in schema private from public, anon;
grant execute on function
  private.current_user_id(), private.is_platform_admin(), private.active_tenant_id(),
  private.role_rank(text), private.tenant_ids(text, boolean)
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
alter table public.invitations enable row level security;

-- Privileges narrow what RLS lets through. anon gets nothing. authenticated never gets
-- TRUNCATE (it skips RLS and row triggers), TRIGGER or REFERENCES, inserts and updates
-- only the columns a person may set (ids, timestamps and audit columns are the
-- database's), and nothing at all on sequences.
revoke all on public.tenants, public.users, public.user_identities, public.tenant_org_links,
  public.platform_admins, public.memberships, public.teams, public.team_members,
  public.invitations from anon, authenticated;
revoke all on all sequences in schema public from anon, authenticated;
alter default privileges in schema public revoke truncate, trigger, references on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on tables from anon;

grant select, delete on public.tenants, public.users, public.user_identities, public.tenant_org_links,
  public.platform_admins, public.memberships, public.teams, public.team_members,
  public.invitations to authenticated;
grant insert (id, name, slug, plan, settings) on public.tenants to authenticated;
grant update (name, slug, status, plan, settings, deleted_at) on public.tenants to authenticated;
grant update (first_name, last_name, display_name, avatar_url, profile, email, status, deleted_at)
  on public.users to authenticated;
grant insert (tenant_id, issuer, org_id) on public.tenant_org_links to authenticated;
grant insert (tenant_id, user_id, role) on public.memberships to authenticated;
grant update (role) on public.memberships to authenticated;
grant insert (tenant_id, id, name, department, description, lead_user_id) on public.teams to authenticated;
grant update (name, department, description, lead_user_id) on public.teams to authenticated;
grant insert (tenant_id, team_id, user_id) on public.team_members to authenticated;
grant insert (tenant_id, email, role, expires_at) on public.invitations to authenticated;

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

-- users: yourself, and the people whose memberships you may see (customers see their
-- tenant's staff; staff see everyone in the tenant) — the subquery is filtered by the
-- memberships policy. New users come from trusted paths (identity webhooks, tenant
-- creation by super-admins); people join tenants by accepting an invitation.
create policy users_select on public.users for select to authenticated
  using (
    id = (select private.current_user_id())
    or (select private.is_platform_admin())
    or (deleted_at is null and id in (select m.user_id from public.memberships m))
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

-- memberships: your own; a tenant's staff (agents, admins) to its customers; everyone
-- in the tenant to its staff. Admins change roles and remove members; anyone may leave.
-- Memberships are created only by accepting an invitation or by super-admins.
create policy memberships_select on public.memberships for select to authenticated
  using (
    user_id = (select private.current_user_id())
    or tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
    or (role in ('agent', 'admin') and tenant_id = any ((select private.tenant_ids('user'))::uuid[]))
    or (select private.is_platform_admin())
  );
create policy memberships_insert on public.memberships for insert to authenticated
  with check ((select private.is_platform_admin()));
create policy memberships_update on public.memberships for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy memberships_delete on public.memberships for delete to authenticated
  using (
    user_id = (select private.current_user_id())
    or tenant_id = any ((select private.tenant_ids('admin', true))::uuid[])
    or (select private.is_platform_admin())
  );

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

-- invitations: admins of the tenant see, create and revoke them; the invitee sees
-- theirs (matched by e-mail) and accepts through private.accept_invitation.
create policy invitations_select on public.invitations for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
    or (select private.is_platform_admin())
    or (accepted_at is null and lower(email) = (select lower(u.email) from public.users u where u.id = (select private.current_user_id())))
  );
create policy invitations_insert on public.invitations for insert to authenticated
  with check (
    (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
    and expires_at <= now() + interval '90 days'
  );
create policy invitations_delete on public.invitations for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

create function private.set_invited_by() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  new.email := lower(btrim(new.email));
  new.invited_by := private.current_user_id();
  return new;
end;
$$;
create trigger set_invited_by before insert on public.invitations
  for each row execute function private.set_invited_by();

-- The invitee joins: the invitation must be theirs (their platform e-mail), pending and
-- unexpired, and its tenant not deleted. Idempotent for someone already a member.
create function private.accept_invitation(p_invitation_id uuid)
returns table (tenant_id uuid, role text)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
  v_inv public.invitations;
begin
  select i.* into v_inv
  from public.invitations i
  join public.users u on u.id = v_user and lower(u.email) = i.email
  join public.tenants t on t.id = i.tenant_id and t.status = 'active'
  where i.id = p_invitation_id and i.accepted_at is null and i.expires_at > now()
  for update of i;
  if v_inv.id is null then
    raise exception 'invitation not found' using errcode = 'PT404';
  end if;
  insert into public.memberships (tenant_id, user_id, role)
  values (v_inv.tenant_id, v_user, v_inv.role)
  on conflict on constraint memberships_tenant_id_user_id_key do nothing;
  update public.invitations set accepted_at = now(), accepted_by = v_user
  where invitations.tenant_id = v_inv.tenant_id and invitations.id = v_inv.id;
  return query
    select m.tenant_id, m.role from public.memberships m
    where m.tenant_id = v_inv.tenant_id and m.user_id = v_user;
end;
$$;

-- The caller's pending invitations with their tenants' names, which the invitee may not
-- read from tenants yet.
create function private.my_invitations()
returns table (id uuid, tenant_id uuid, tenant_name text, tenant_slug text, role text, expires_at timestamptz)
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return query
    select i.id, i.tenant_id, t.name, t.slug, i.role, i.expires_at
    from public.invitations i
    join public.users u on u.id = private.current_user_id() and lower(u.email) = i.email
    join public.tenants t on t.id = i.tenant_id and t.status = 'active'
    where i.accepted_at is null and i.expires_at > now()
    order by i.created_at;
end;
$$;

-- Super-admins creating a tenant name its first admin by e-mail, who may not have an
-- account yet. Platform admins only: for anyone else it would reveal who has one.
create function private.find_or_create_user(p_email text, p_first_name text default null, p_last_name text default null)
returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid;
begin
  if not private.is_platform_admin() then
    raise exception 'only platform admins may create users' using errcode = '42501';
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
revoke all on function private.find_or_create_user(text, text, text), private.accept_invitation(uuid),
  private.my_invitations(), private.set_invited_by() from public, anon;
grant execute on function private.find_or_create_user(text, text, text), private.accept_invitation(uuid),
  private.my_invitations() to authenticated, service_role;

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
  -- The identity provider is authoritative: when it deletes a person or their
  -- membership (a verified webhook, as service_role), the rule yields.
  if coalesce(auth.jwt() ->> 'role', '') = 'service_role' then
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
