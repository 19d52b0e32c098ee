-- Tenant core's access: Row Level Security on every table, the privileges that narrow
-- it, and the policies. anon reaches nothing: no policy names it.

-- ------------------------------------------------------------------ row level security

alter table public.tenants enable row level security;
alter table public.users enable row level security;
alter table public.user_identities enable row level security;
alter table public.tenant_org_links enable row level security;
alter table public.platform_admins enable row level security;
alter table public.memberships enable row level security;
alter table public.teams enable row level security;
alter table public.team_members enable row level security;
alter table public.invitations enable row level security;

-- ------------------------------------------------------------------ privileges

-- Only the columns a person may set (see the house rules, 20261126100000_conventions.sql).
-- API roles never choose primary keys of new rows (no INSERT (id) anywhere, issue 9):
-- with it, a tenant admin could create a team (or ticket, message, …) whose id equals
-- another tenant's, and any bare-id comparison anywhere would then confuse the two. Ids
-- are the database's (column defaults); the functions read them back with RETURNING.
revoke all on public.tenants, public.users, public.user_identities, public.tenant_org_links,
  public.platform_admins, public.memberships, public.teams, public.team_members,
  public.invitations from anon, authenticated;
grant select, delete on public.tenants, public.users, public.user_identities, public.tenant_org_links,
  public.platform_admins, public.memberships, public.teams, public.team_members,
  public.invitations to authenticated;
grant insert (name, slug, plan, settings) on public.tenants to authenticated;
grant update (name, slug, status, plan, settings, deleted_at) on public.tenants to authenticated;
grant update (first_name, last_name, display_name, avatar_url, profile, email, status, deleted_at)
  on public.users to authenticated;
grant insert (tenant_id, issuer, org_id) on public.tenant_org_links to authenticated;
grant insert (tenant_id, user_id, role) on public.memberships to authenticated;
grant update (role) on public.memberships to authenticated;
grant insert (tenant_id, name, department, description, lead_user_id) on public.teams to authenticated;
grant update (name, department, description, lead_user_id) on public.teams to authenticated;
grant insert (tenant_id, team_id, user_id) on public.team_members to authenticated;
grant insert (tenant_id, email, role, expires_at) on public.invitations to authenticated;

-- ------------------------------------------------------------------ policies

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
-- in the tenant to its staff. Admins change roles and remove members; anyone may leave,
-- while the tenant is writable: leaving is a write to the tenant like any other, refused
-- while it is suspended (issue 9). Memberships are created only by accepting an
-- invitation or by super-admins.
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
    (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
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
