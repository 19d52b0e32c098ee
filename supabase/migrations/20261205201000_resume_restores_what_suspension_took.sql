-- Resuming or restoring a tenant gives back what its suspension or deletion took, and
-- nothing else (issue 14, review of the tenants function).
--
-- tenant_status_to_services set every service of a tenant turning active to
-- desired_state 'active': a service its admins had turned off (removed, remove_after
-- null) was provisioned again on resume, and one whose feature a plan change or override
-- had taken away failed the require_feature trigger, so the resume itself was a 403 and
-- the tenant stayed suspended.
--
-- Now a tenant turning active restores only the services its own status change had
-- taken: suspended ones, and ones removed by the tenant's deletion (remove_after set;
-- an admin's removal leaves it null). One whose feature the plan no longer includes is
-- left as it is, paused or awaiting removal; an admin enables it again once the plan has
-- it. Suspending and deleting are as before.

-- Redefined (20261126101500_tenant_services.sql).
create or replace function private.tenant_status_to_services() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.status is not distinct from old.status then
    return null;
  end if;
  if new.status = 'active' then
    update public.tenant_services s set desired_state = 'active', remove_after = null
    where s.tenant_id = new.id
      and (s.desired_state = 'suspended' or (s.desired_state = 'removed' and s.remove_after is not null))
      and private.tenant_has_feature(new.id, s.service);
  else
    update public.tenant_services s set
      desired_state = case new.status when 'suspended' then 'suspended' else 'removed' end,
      remove_after = case when new.status = 'deleted'
        then now() + make_interval(days => case when new.settings ->> 'removal_grace_days' ~ '^\d{1,4}$'
                                                then (new.settings ->> 'removal_grace_days')::int else 7 end) end
    where s.tenant_id = new.id and s.desired_state <> 'removed';
  end if;
  return null;
end;
$$;
