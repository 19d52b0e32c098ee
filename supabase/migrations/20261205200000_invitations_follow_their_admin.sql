-- Invitations end with the authority that sent them, and an expired one no longer blocks
-- a new one (issue 14, review of the tenants function).
--
-- A pending invitation outlived its sender's role: an admin who was demoted or removed
-- could have invited a second address of their own as admin beforehand and, accepting it
-- later, be an admin again, which the removal was meant to end. As GitHub does when it
-- removes a member, the pending invitations a person sent in a tenant are now cancelled
-- when they stop being its admin (demoted, removed, or their user deleted). Accepted
-- invitations are history and stay.
--
-- And the unique index on pending invitations (tenant, e-mail) counted an expired one as
-- pending: a second invitation to someone who missed the first was a 409 until an admin
-- found and revoked the dead one. Inviting the address again now replaces it.

-- Definer: a person removing themselves is no longer an admin when the trigger runs, and
-- the identity provider's webhooks act as service_role; either way the invitations go.
create function private.cancel_invitations_of_former_admin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if old.role <> 'admin' or (tg_op = 'UPDATE' and new.role = 'admin') then
    return null;
  end if;
  delete from public.invitations i
  where i.tenant_id = old.tenant_id and i.invited_by = old.user_id and i.accepted_at is null;
  return null;
end;
$$;
revoke all on function private.cancel_invitations_of_former_admin() from public, anon, authenticated;
create trigger cancel_invitations_of_former_admin after update of role or delete on public.memberships
  for each row execute function private.cancel_invitations_of_former_admin();

-- A deleted user's memberships go by cascade while invited_by is set null by another: which
-- runs first is not ours to rely on, so the user's own deletion cancels them first.
create function private.cancel_invitations_of_deleted_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from public.invitations i where i.invited_by = old.id and i.accepted_at is null;
  return old;
end;
$$;
revoke all on function private.cancel_invitations_of_deleted_user() from public, anon, authenticated;
create trigger cancel_invitations_of_deleted_user before delete on public.users
  for each row execute function private.cancel_invitations_of_deleted_user();

-- The caller's own rights: an admin of the tenant may revoke its invitations, anyone else
-- deletes nothing here and is refused the insert by RLS.
create function private.replace_expired_invitation() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  delete from public.invitations i
  where i.tenant_id = new.tenant_id and lower(i.email) = lower(btrim(new.email))
    and i.accepted_at is null and i.expires_at <= now();
  return new;
end;
$$;
revoke all on function private.replace_expired_invitation() from public, anon;
create trigger replace_expired_invitation before insert on public.invitations
  for each row execute function private.replace_expired_invitation();
