-- A tenant's API keys end with their creator's membership.
--
-- A key acts only while its creator is an active admin of its tenant
-- (20261206012000), so a removed admin's keys were refused — but stayed unrevoked in
-- GET /api-keys with nothing saying they were dead, kept counting against the plan's
-- api_keys limit, and worked again if the person was invited back or re-added by Clerk
-- as an admin. Removing a member (by an admin, by leaving, by the identity provider, or
-- with their user) now revokes the keys they created in that tenant, as it cancels the
-- invitations they sent (20261205200000). A demotion still only suspends them: a key
-- comes back with its creator's admin role, as before.

-- Definer: a person removing themselves, or the identity provider's webhook as
-- service_role, revokes keys they could not revoke themselves.
create function private.revoke_keys_of_former_member() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.api_keys k set revoked_at = pg_catalog.now()
  where k.tenant_id = old.tenant_id and k.created_by = old.user_id and k.revoked_at is null;
  return null;
end;
$$;
revoke all on function private.revoke_keys_of_former_member() from public, anon, authenticated;
create trigger revoke_keys_of_former_member after delete on public.memberships
  for each row execute function private.revoke_keys_of_former_member();
