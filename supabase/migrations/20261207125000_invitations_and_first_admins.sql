-- Invitations are for people who are not members, and a tenant's first admin can sign in
-- (review of the tenants function, issue 14).
--
-- 1. "Already a member" was checked only by POST …/invitations, before its insert: an
--    admin's insert through PostgREST, or an accept committing while the route inserted
--    (its insert waited on the accepted invitation's index entry, then went through) left
--    a pending invitation addressed to a member. Once that member was removed (say,
--    fired), they accepted it and were back, as whatever role it named, for up to 90
--    days. Now the rule is the database's: an invitation to a member is refused after its
--    insert (an AFTER trigger reads the memberships afresh, after any wait on the index:
--    the accept's membership is then seen). A membership added at the very moment of the
--    insert (a Clerk event) is not seen; so a member's removal also takes the pending
--    invitations addressed to them in that tenant with it. One being accepted at that very
--    moment makes the removal a 503 to retry (lock_not_available) rather than a wait: the
--    accept holds the invitation and waits for the membership the removal holds, so
--    waiting would deadlock, and skipping it let the accept add the person back just
--    after their removal.
-- 2. POST /tenants named an existing person as first admin whatever their status: a
--    disabled one, or one a platform admin locked out (marked deleted, a login kept), made
--    a tenant whose only admin cannot sign in, and who then owned its partner accounts.
--    private.find_or_create_user now refuses such a person (409 admin_cannot_sign_in),
--    reading them under a share lock (a disabling at that moment waits, or is waited for).
--    A person retired with their last login (deleted, no login left) may be named: they
--    come back by signing up, as a new address would.

create function private.invitation_not_for_member() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if exists (select 1 from public.memberships m join public.users u on u.id = m.user_id
             where m.tenant_id = new.tenant_id and lower(u.email) = lower(new.email)) then
    raise exception 'This person is already a member of the tenant'
      using errcode = 'PT409', detail = '{"code": "already_member"}';
  end if;
  return null;
end;
$$;
revoke all on function private.invitation_not_for_member() from public, anon, authenticated;
create trigger invitation_not_for_member after insert on public.invitations
  for each row execute function private.invitation_not_for_member();

-- Pending invitations to a member removed go with the membership.
create function private.drop_invitations_of_removed_member() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from public.invitations d
  where (d.tenant_id, d.id) in (
    select i.tenant_id, i.id
    from public.invitations i
    join old_rows o on o.tenant_id = i.tenant_id
    join public.users u on u.id = o.user_id
    where lower(i.email) = lower(u.email) and i.accepted_at is null
    for update of i nowait);
  return null;
end;
$$;
revoke all on function private.drop_invitations_of_removed_member() from public, anon, authenticated;
create trigger drop_invitations_of_removed_member after delete on public.memberships
  referencing old table as old_rows
  for each statement execute function private.drop_invitations_of_removed_member();

-- Redefined (20261126100600_tenant_core_operations.sql): a person who cannot sign in is
-- no first admin.
create or replace function private.find_or_create_user(p_email text, p_first_name text default null, p_last_name text default null)
returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_status text;
begin
  if not private.is_platform_admin() then
    raise exception 'only platform admins may create users' using errcode = '42501';
  end if;
  insert into public.users (email, first_name, last_name)
  values (lower(btrim(p_email)), p_first_name, p_last_name)
  on conflict (lower(email)) do nothing
  returning id into v_id;
  if v_id is null then
    select u.id, u.status into v_id, v_status from public.users u where lower(u.email) = lower(btrim(p_email))
    for share;
    if v_status = 'disabled'
       or (v_status = 'deleted' and exists (select 1 from public.user_identities i where i.user_id = v_id)) then
      raise exception 'This person cannot sign in (their account is %): they cannot be the first admin', v_status
        using errcode = 'PT409', detail = '{"code": "admin_cannot_sign_in", "details": {"field": "admin.email"}}';
    end if;
  end if;
  return v_id;
end;
$$;
