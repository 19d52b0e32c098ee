-- A partner service is wanted active only in an active tenant, and a suspension or deletion
-- waits for a service being enabled (review of the tenant lifecycle, issue 14).
--
-- PUT /tenants/{id}/services/{service} {enabled: true} checked the caller and the plan,
-- not the tenant's state: a platform admin could enable a service of a suspended or
-- deleted tenant, and an admin's enable racing a suspension or deletion committed after
-- it. The status change's trigger updates the service rows it can see, so a row being
-- inserted, or one it read as removed, was left `active`: the provisioning job made or
-- kept the partner space live in a suspended tenant, or in a deleted one with no
-- removal time, never removed, and its purge refused for ever (services_not_removed).
-- Now a service made wanted active reads its tenant FOR SHARE — a status or plan change
-- under way is waited for, and one that starts meanwhile waits for it — and is refused
-- with 409 `tenant_not_active` unless the tenant is active (its resume sets services
-- active in the same transaction, after the status). Named `a_…` to run before the
-- feature check, which then reads the plan as committed.

create function private.service_wanted_in_an_active_tenant() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if new.desired_state = 'active' and (tg_op = 'INSERT' or old.desired_state is distinct from 'active') then
    select t.status into v_status from public.tenants t where t.id = new.tenant_id for share;
    if v_status is distinct from 'active' then
      raise exception 'The tenant is %: its partner services are enabled once it is active again', coalesce(v_status, 'gone')
        using errcode = 'PT409',
          detail = jsonb_build_object('code', 'tenant_not_active', 'details', jsonb_build_object('status', v_status))::text;
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.service_wanted_in_an_active_tenant() from public, anon, authenticated;
create trigger a_service_wanted_in_an_active_tenant before insert or update of desired_state on public.tenant_services
  for each row execute function private.service_wanted_in_an_active_tenant();
