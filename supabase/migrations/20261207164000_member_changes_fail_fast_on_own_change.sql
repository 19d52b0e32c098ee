-- A member's role change or removal no longer takes the tenant's row: it reads the
-- caller's own membership FOR SHARE NOWAIT (review of 20261207163000, issue 14).
--
-- 20261207163000 made such a change wait, under the tenant's row lock, for any change of
-- the caller's own membership in progress, and then read it afresh. That lock came after
-- the membership row the statement had already locked, for every role change and
-- removal a member makes (keep_last_admin takes it only for an admin's): a statement
-- over several memberships (PostgREST's `DELETE /memberships?role=eq.user`) held one row,
-- took the tenant, and went on to the next, which a single change by someone else held
-- while it waited for the tenant: a deadlock, one of them aborted.
--
-- Now the caller's own membership is read FOR SHARE NOWAIT. A removal or demotion of the
-- caller under way holds that row: the change fails at once (55P03, the 503 a client
-- retries), and the retry meets the outcome, as a follow does (20261206161000). Not in
-- progress, the share lock holds the caller's membership as read until commit: a removal
-- or demotion of the caller coming after waits for this change. Two admins demoting each
-- other: keep_last_admin's tenant lock lets one through first; the other, holding the
-- first one's row, makes the first's NOWAIT read fail (503) and then goes through itself.
-- The outcome is one order of the two, as if run one after the other.

-- Redefined (20261207163000_member_changes_by_admins_still_in_office.sql): the caller's
-- membership FOR SHARE NOWAIT, no tenant lock.
create or replace function private.member_change_by_admin_in_office() returns trigger
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
  if not exists (
    select 1 from public.memberships m join public.users u on u.id = m.user_id
    where m.tenant_id = old.tenant_id and m.user_id = v_caller and m.role = 'admin' and u.status = 'active'
    for share of m nowait
  ) then
    raise exception 'Only an admin of the tenant changes its members'' roles or removes them'
      using errcode = 'PT403';
  end if;
  return coalesce(new, old);
end;
$$;
