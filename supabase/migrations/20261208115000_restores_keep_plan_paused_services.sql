-- A restored tenant keeps paused what its plan had paused (review of the tenant lifecycle).
--
-- A service whose feature the plan lacks is suspended, its partner space kept, and comes
-- back when the feature does. Deleting the tenant marks every service for removal after
-- the grace period; restoring it (or suspending it, out of deletion) brought back only the
-- services the plan includes: one the plan had paused stayed marked, its space removed at
-- the partner when the grace ended although the tenant was live again, and the feature's
-- return later brought nothing back. Such a service is now paused again instead (desired
-- 'suspended', no remove_after), as before the deletion.

-- Redefined (20261207121000_deleted_tenant_suspended_keeps_its_services.sql).
create or replace function private.tenant_status_to_services() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.status is not distinct from old.status then
    return null;
  end if;
  if new.status = 'active' then
    -- Back, where the plan includes them; paused (as the plan had them), where not.
    update public.tenant_services s
    set desired_state = case when private.tenant_has_feature(new.id, s.service) then 'active' else 'suspended' end,
        remove_after = null
    where s.tenant_id = new.id
      and ((s.desired_state = 'suspended' and private.tenant_has_feature(new.id, s.service))
           or (s.desired_state = 'removed' and s.remove_after is not null));
  elsif new.status = 'suspended' and old.status = 'deleted' then
    update public.tenant_services s set desired_state = 'suspended', remove_after = null
    where s.tenant_id = new.id
      and s.desired_state = 'removed' and s.remove_after is not null;
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
