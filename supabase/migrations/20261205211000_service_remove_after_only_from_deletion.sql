-- A service's remove_after belongs to the tenant's deletion only (issue 14, review of
-- 20261205201000_resume_restores_what_suspension_took.sql).
--
-- remove_after is set when the tenant is deleted (the grace period), and a restore
-- brings back the services removed that way, those with remove_after set. An admin's
-- change of desired_state (PUT /tenants/{id}/services/{service}) left it as it was, so a
-- service the deletion had removed and the plan kept removed, then enabled and disabled
-- again by an admin, still carried the deletion's remove_after: the next restore took
-- it for the deletion's and provisioned it again. Any change of desired_state that does
-- not set remove_after itself now clears it.
create function private.service_remove_after_only_from_deletion() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.desired_state is distinct from old.desired_state and new.remove_after is not distinct from old.remove_after then
    new.remove_after := null;
  end if;
  return new;
end;
$$;
revoke all on function private.service_remove_after_only_from_deletion() from public, anon;
create trigger service_remove_after_only_from_deletion before update of desired_state on public.tenant_services
  for each row execute function private.service_remove_after_only_from_deletion();
