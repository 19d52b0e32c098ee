-- The last-admin refusal says what it is (review of tenants and members, issue 14).
--
-- Demoting or removing a tenant's last admin who can sign in was refused with a bare
-- PT409, which the API answers with the generic code `conflict`, while the other rules
-- name theirs (already_member, already_accepted, admin_cannot_sign_in): a client could
-- not tell it from any other conflict. It now answers 409 `last_admin`.

-- Redefined (20261206142000_admins_who_can_act.sql): the refusal carries its code.
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
    raise exception 'a tenant must keep at least one admin who can sign in'
      using errcode = 'PT409', detail = '{"code": "last_admin"}';
  end if;
  return coalesce(new, old);
end;
$$;
