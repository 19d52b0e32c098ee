-- The partner owner's hand-over is queued at every admin change, after the change's other
-- locks, and never when no admin is left (review of 20261207177000, issue 14).
--
-- 177000 queued the hand-over only for a membership at least as old as the oldest active
-- admin left, read without a lock: two admins changed at once (the owner disabled while
-- the next one was demoted) could each decide the other's change was not the owner's,
-- and the owner of a run between the two commits stayed. It queued for services in
-- state `active` only: a first provisioning or a resume under way finished with the owner
-- it had read, and a service that failed for want of an admin stayed failed when one came
-- back. It queued with no admin left, turning every partner service `failed` ("no admin
-- to own…"), the former owner's access untouched. And its triggers fired before
-- webhook_outbox, taking job locks before the webhook lock, against the order every
-- other writer keeps.
--
-- Now any change of an admin membership, or of an admin's ability to sign in, queues the
-- provisioning of every service the tenant wants active and has not removed (a running
-- job of the key is superseded by it, so the owner is read again after the change), as
-- long as the tenant has an active admin; the triggers are named to fire after
-- webhook_outbox.

drop trigger partner_owner_follows on public.memberships;
drop trigger partner_owner_follows_role on public.memberships;
drop trigger partner_owner_follows_removal on public.memberships;
drop trigger partner_owner_follows on public.users;
drop function private.partner_owner_follows_memberships();
drop function private.partner_owner_follows_users();
drop function private.partner_owner_may_change(uuid, timestamptz);

-- Queues the provisioning of a tenant's wanted services after a change that may move
-- their owner (the oldest active admin: private.provisioning_context reads it again).
create function private.partner_owner_hand_over(p_tenant_id uuid) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_service text;
begin
  if not exists (
    select 1 from public.memberships mm join public.users u on u.id = mm.user_id
    where mm.tenant_id = p_tenant_id and mm.role = 'admin' and u.status = 'active'
  ) then
    return; -- no admin left: nothing to hand over to (the services stay as they are)
  end if;
  for v_service in
    select s.service from public.tenant_services s join public.tenants t on t.id = s.tenant_id
    where s.tenant_id = p_tenant_id and t.status = 'active' and s.desired_state = 'active' and s.state <> 'removed'
    order by s.service
  loop
    perform private.enqueue_provisioning(p_tenant_id, v_service);
  end loop;
end;
$$;
revoke all on function private.partner_owner_hand_over(uuid) from public, anon, authenticated;

create function private.partner_owner_after_membership_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.partner_owner_hand_over(coalesce(new.tenant_id, old.tenant_id));
  return null;
end;
$$;
revoke all on function private.partner_owner_after_membership_change() from public, anon, authenticated;

create function private.partner_owner_after_user_status() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_tenant uuid;
begin
  for v_tenant in
    select m.tenant_id from public.memberships m where m.user_id = new.id and m.role = 'admin' order by m.tenant_id
  loop
    perform private.partner_owner_hand_over(v_tenant);
  end loop;
  return null;
end;
$$;
revoke all on function private.partner_owner_after_user_status() from public, anon, authenticated;

-- z_: after webhook_outbox (AFTER triggers fire in name order), so the job locks come
-- after the webhook lock, as every writer takes them.
create trigger z_partner_owner_hand_over after insert on public.memberships
  for each row when (new.role = 'admin') execute function private.partner_owner_after_membership_change();
create trigger z_partner_owner_hand_over_role after update of role on public.memberships
  for each row when (old.role is distinct from new.role and 'admin' in (old.role, new.role))
  execute function private.partner_owner_after_membership_change();
create trigger z_partner_owner_hand_over_removal after delete on public.memberships
  for each row when (old.role = 'admin') execute function private.partner_owner_after_membership_change();
create trigger z_partner_owner_hand_over after update of status on public.users
  for each row when ((old.status = 'active') is distinct from (new.status = 'active'))
  execute function private.partner_owner_after_user_status();
