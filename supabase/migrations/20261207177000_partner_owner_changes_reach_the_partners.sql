-- A change of the tenant's partner owner reaches the partners by itself (review of
-- 20261207162000, issue 14).
--
-- The partner accounts' owner is the tenant's oldest admin who can sign in
-- (private.provisioning_context), and ensure hands the accounts over when that changes
-- (the new owner's login made or found, the former owner's access taken away). But
-- nothing ran ensure when it changed: a removed, demoted, disabled or locked-out admin
-- kept administering the tenant's Chatwoot account, n8n project and Odoo company until an
-- admin happened to retry a service, rotate its credentials or the tenant was resumed.
-- Now a change that can move the owner queues the provisioning of the tenant's active
-- services, in its transaction: an admin membership added, promoted, demoted or removed,
-- or an admin's account becoming able or unable to sign in — when that membership is at
-- least as old as the oldest active admin's left (so it was, or now is, the owner). A
-- tenant being deleted (its memberships going with it) queues nothing.

-- Queues the provisioning of a tenant's active services when a membership since
-- p_member_since was, or is now, its oldest active admin's.
create function private.partner_owner_may_change(p_tenant_id uuid, p_member_since timestamptz) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_oldest timestamptz;
  v_service text;
begin
  select mm.created_at into v_oldest
  from public.memberships mm join public.users u on u.id = mm.user_id
  where mm.tenant_id = p_tenant_id and mm.role = 'admin' and u.status = 'active'
  order by mm.created_at limit 1;
  if v_oldest is not null and p_member_since > v_oldest then
    return; -- a younger admin: the owner is someone else, before and after
  end if;
  for v_service in
    select s.service from public.tenant_services s join public.tenants t on t.id = s.tenant_id
    where s.tenant_id = p_tenant_id and t.status = 'active' and s.desired_state = 'active' and s.state = 'active'
    order by s.service
  loop
    perform private.enqueue_provisioning(p_tenant_id, v_service);
  end loop;
end;
$$;
revoke all on function private.partner_owner_may_change(uuid, timestamptz) from public, anon, authenticated;

create function private.partner_owner_follows_memberships() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.partner_owner_may_change(coalesce(new.tenant_id, old.tenant_id), coalesce(new.created_at, old.created_at));
  return null;
end;
$$;
revoke all on function private.partner_owner_follows_memberships() from public, anon, authenticated;

create trigger partner_owner_follows after insert on public.memberships
  for each row when (new.role = 'admin') execute function private.partner_owner_follows_memberships();
create trigger partner_owner_follows_role after update of role on public.memberships
  for each row when (old.role is distinct from new.role and 'admin' in (old.role, new.role))
  execute function private.partner_owner_follows_memberships();
create trigger partner_owner_follows_removal after delete on public.memberships
  for each row when (old.role = 'admin') execute function private.partner_owner_follows_memberships();

create function private.partner_owner_follows_users() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_m record;
begin
  for v_m in
    select m.tenant_id, m.created_at from public.memberships m
    where m.user_id = new.id and m.role = 'admin' order by m.tenant_id
  loop
    perform private.partner_owner_may_change(v_m.tenant_id, v_m.created_at);
  end loop;
  return null;
end;
$$;
revoke all on function private.partner_owner_follows_users() from public, anon, authenticated;

create trigger partner_owner_follows after update of status on public.users
  for each row when ((old.status = 'active') is distinct from (new.status = 'active'))
  execute function private.partner_owner_follows_users();
