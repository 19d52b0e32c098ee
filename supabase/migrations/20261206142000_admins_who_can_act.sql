-- Authority that has ended no longer counts (review of the tenants function).
--
-- 1. Pending invitations outlived a sender disabled by a platform admin, or a platform
--    admin who lost that role: both keep the invitations they sent, so a compromised
--    admin, disabled, could still bring a second address of theirs in as admin by
--    accepting one sent beforehand. Demotion, removal and deletion already cancel them
--    (20261205200000); now a person's pending invitations go when they are disabled, and
--    a former platform admin's go in every tenant where they are not an admin themselves.
--    Someone enabled again invites again, as after a demotion.
--
-- 2. The last-admin rule counted admins who cannot act: with Bob disabled, Alice could
--    demote or remove herself and leave a tenant whose only admin cannot sign in (and
--    whose API keys are refused), with nobody to invite, change roles or manage keys.
--    Only admins whose user is active count now. Platform admins and the identity
--    provider's paths are unchanged (service_role yields, as before).

create function private.cancel_invitations_of_disabled_user() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from public.invitations i where i.invited_by = new.id and i.accepted_at is null;
  return null;
end;
$$;
revoke all on function private.cancel_invitations_of_disabled_user() from public, anon, authenticated;
create trigger cancel_invitations_of_disabled_user after update of status on public.users
  for each row when (old.status = 'active' and new.status <> 'active')
  execute function private.cancel_invitations_of_disabled_user();

create function private.cancel_invitations_of_former_platform_admin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  delete from public.invitations i
  where i.invited_by = old.user_id and i.accepted_at is null
    and not exists (select 1 from public.memberships m
                    where m.tenant_id = i.tenant_id and m.user_id = old.user_id and m.role = 'admin');
  return null;
end;
$$;
revoke all on function private.cancel_invitations_of_former_platform_admin() from public, anon, authenticated;
create trigger cancel_invitations_of_former_platform_admin after delete on public.platform_admins
  for each row execute function private.cancel_invitations_of_former_platform_admin();

-- Redefined (20261126100500_tenant_core_rules.sql): only admins who can sign in count.
create or replace function private.keep_last_admin() returns trigger
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
  select t.status into v_status from public.tenants t where t.id = old.tenant_id for no key update;
  if v_status is null or v_status = 'deleted' then
    return coalesce(new, old);
  end if;
  if not exists (
    select 1 from public.memberships m join public.users u on u.id = m.user_id
    where m.tenant_id = old.tenant_id and m.role = 'admin' and m.id <> old.id and u.status = 'active'
  ) then
    raise exception 'a tenant must keep at least one admin who can sign in' using errcode = 'PT409';
  end if;
  return coalesce(new, old);
end;
$$;
