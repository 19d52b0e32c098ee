-- A change of someone's role, or their removal, is made by an admin still in office when
-- it commits (review of tenants and members, issue 14).
--
-- The policies on memberships let a tenant's admins change roles and remove members,
-- judged on the caller's role as the request began (the caller context, cached per
-- transaction). An admin being removed or demoted at that moment (another admin's
-- transaction holding their membership, not yet committed) could still make someone an
-- admin, or remove another admin: their update passed the policy on the membership as it
-- was, and nothing read it again. The removed admin had just made a friend's account an
-- admin; with three or more admins, could remove the one removing them. Invitations
-- (20261206148000) and API keys (20261206161000) already wait for such a change; role
-- changes and removals did not.
--
-- Now, before a role change or a removal a member asks for (as `authenticated`, through
-- PostgREST or the functions; not a platform admin, not a person leaving), the tenant's
-- row is locked as keep_last_admin locks it for an admin's demotion or removal (so a
-- change of the caller's own membership in progress is waited for: it holds that lock
-- until it commits), and then the caller must be an active admin of the tenant, read
-- afresh. Two admins demoting each other both wait on that one lock, in turn: the second
-- finds itself demoted and is refused, rather than waiting on the other's membership row
-- (which would deadlock).
create function private.member_change_by_admin_in_office() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_caller uuid := private.current_user_id();
begin
  -- Members' own requests only (PostgREST's and the functions' role): the trusted paths
  -- (service_role's webhooks and jobs, migrations, operators) are not judged here.
  if pg_catalog.current_setting('role', true) is distinct from 'authenticated' or v_caller is null
     or private.is_platform_admin() then
    return coalesce(new, old);
  end if;
  if tg_op = 'DELETE' and old.user_id = v_caller then
    return old; -- leaving (the policies decide whether they may)
  end if;
  if tg_op = 'UPDATE' and new.role is not distinct from old.role then
    return new; -- the role named but not changed (the members API sets it with others)
  end if;
  perform 1 from public.tenants t where t.id = old.tenant_id for no key update;
  -- A statement of its own: read after any change the lock above waited for committed.
  if not exists (
    select 1 from public.memberships m join public.users u on u.id = m.user_id
    where m.tenant_id = old.tenant_id and m.user_id = v_caller and m.role = 'admin' and u.status = 'active'
  ) then
    raise exception 'Only an admin of the tenant changes its members'' roles or removes them'
      using errcode = 'PT403';
  end if;
  return coalesce(new, old);
end;
$$;
revoke all on function private.member_change_by_admin_in_office() from public, anon, authenticated;
create trigger member_change_by_admin_in_office before update of role or delete on public.memberships
for each row execute function private.member_change_by_admin_in_office();
