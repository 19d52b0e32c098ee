-- A deleted tenant that is suspended keeps its partner spaces (review, issue 14).
--
-- POST /tenants/{id}/suspend takes a tenant in any state: a deleted one becomes
-- suspended, no longer deleted (deleted_at cleared; its members read it again). Its
-- services kept the deletion's removal (desired_state 'removed', remove_after set), since
-- suspending only touched services not being removed: when the grace period ended, the
-- Chatwoot, Botpress, n8n and Odoo spaces of a tenant no longer deleted were removed,
-- and a later resume made new, empty ones.
--
-- Now a deleted tenant turning suspended takes back what its deletion took, as a
-- restore does, but paused: those services become 'suspended' (remove_after cleared),
-- where the plan still includes them. A service its admins had turned off stays off.

-- Redefined (20261205201000_resume_restores_what_suspension_took.sql).
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
  elsif new.status = 'suspended' and old.status = 'deleted' then
    update public.tenant_services s set desired_state = 'suspended', remove_after = null
    where s.tenant_id = new.id
      and s.desired_state = 'removed' and s.remove_after is not null
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
