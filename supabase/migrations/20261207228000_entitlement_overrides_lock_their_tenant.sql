-- A change of a tenant's plan overrides locks the tenant first, as its suspension, resume
-- and plan change do (review of the tenant administration routes, issue 14).
--
-- private.set_tenant_entitlements never locked the tenant: its override's trigger
-- (services_follow_the_plan) read the tenant's status and the services as its statement
-- found them. A resume committing meanwhile set a service active by the feature it still
-- saw, while the override, seeing the service still suspended, passed it by: the tenant
-- active, the feature gone, the partner account running on. (And a feature granted during
-- a resume left its service suspended in an active tenant.) Every write of an override now
-- locks its tenant's row before the override's (BEFORE the row is written: an insert's
-- trigger fires before its conflict is found), so the two queue in the one lock order —
-- tenant, then its services — and the override's trigger reads the resumed tenant.

create function private.tenant_plan_overrides_lock_tenant() returns trigger
language plpgsql security definer
set search_path = ''
set lock_timeout = '30s'
as $$
begin
  perform 1 from public.tenants t
  where t.id = case when tg_op = 'DELETE' then old.tenant_id else new.tenant_id end
  for no key update;
  return case when tg_op = 'DELETE' then old else new end;
end;
$$;
revoke all on function private.tenant_plan_overrides_lock_tenant() from public, anon, authenticated;

create trigger a_lock_tenant before insert or update or delete on private.tenant_plan_overrides
  for each row execute function private.tenant_plan_overrides_lock_tenant();
