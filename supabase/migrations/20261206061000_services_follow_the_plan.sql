-- A partner service whose feature the tenant's plan loses is paused, and resumed when
-- the plan has it again.
--
-- A plan change or an entitlement override that took away chatwoot, botpress, n8n or
-- odoo left an active service active: the reconcile and drift passes kept provisioning
-- and re-creating its partner space, and the partner kept serving the tenant, while only
-- the admin routes (retry, credentials) refused. Now such a service is set to suspended
-- (the provision job suspends it at the partner, as for a suspended tenant), and set
-- active again when the plan includes the feature once more, if the tenant is active. A
-- service desired suspended while its tenant is active is one the plan paused: a
-- suspended tenant's resume restores only those its plan includes (20261205201000), and
-- an admin turns a service off by removing it. A service being removed is left alone.

create function private.services_follow_the_plan(p_tenant_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.tenant_services s set desired_state = 'suspended'
  where s.tenant_id = p_tenant_id and s.desired_state = 'active' and not private.tenant_has_feature(p_tenant_id, s.service);
  update public.tenant_services s set desired_state = 'active'
  where s.tenant_id = p_tenant_id and s.desired_state = 'suspended' and private.tenant_has_feature(p_tenant_id, s.service)
    and exists (select 1 from public.tenants t where t.id = p_tenant_id and t.status = 'active');
end;
$$;
revoke all on function private.services_follow_the_plan(uuid) from public, anon, authenticated;

create function private.services_follow_plan_change() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.services_follow_the_plan(case when tg_op = 'DELETE' then old.tenant_id else new.tenant_id end);
  return null;
end;
$$;
revoke all on function private.services_follow_plan_change() from public, anon, authenticated;
create trigger services_follow_the_plan after insert or update or delete on private.tenant_plan_overrides
  for each row execute function private.services_follow_plan_change();

create function private.services_follow_tenant_plan() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.services_follow_the_plan(new.id);
  return null;
end;
$$;
revoke all on function private.services_follow_tenant_plan() from public, anon, authenticated;
create trigger services_follow_the_plan after update of plan on public.tenants
  for each row when (new.plan is distinct from old.plan) execute function private.services_follow_tenant_plan();

-- Services already active without their feature are paused now.
select private.services_follow_the_plan(s.tenant_id) from (select distinct tenant_id from public.tenant_services) s;
