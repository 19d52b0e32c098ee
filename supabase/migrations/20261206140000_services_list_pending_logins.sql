-- The services list said a partner login was available (`credentials_available`) while
-- its password was still being set up at the partner, where the reveal answers 409
-- credentials_pending: an admin shown a button that could only fail. Whether a login is
-- pending is kept inside the sealed credentials (password_pending, password_unconfirmed),
-- which only the functions can open, so the list asks for the sealed logins not yet
-- shown and opens them itself. The ciphertext stays out of reach of API roles' selects
-- (only this definer function and the reveal hand it out, to the tenant's admins) and is
-- useless without the functions' key.
create function private.unrevealed_service_credentials(p_tenant_id uuid)
returns table (service text, credentials_encrypted text)
language sql stable security definer
set search_path = ''
as $$
  select s.service, s.credentials_encrypted
  from public.tenant_services s
  where s.tenant_id = p_tenant_id
    and s.credentials_encrypted is not null and s.credentials_revealed_at is null
    and (p_tenant_id = any (private.tenant_ids('admin')) or private.is_platform_admin());
$$;
revoke all on function private.unrevealed_service_credentials(uuid) from public, anon, authenticated;
grant execute on function private.unrevealed_service_credentials(uuid) to authenticated, service_role;
