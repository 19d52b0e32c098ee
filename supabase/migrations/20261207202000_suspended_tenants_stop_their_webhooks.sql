-- A suspended tenant's admins can still stop its outbound webhooks: disable an endpoint,
-- rotate its secret, or delete it (review of the outbound webhooks).
--
-- A suspended tenant is read-only for its members, but its events still go to its
-- receivers (a suspension itself emits service.state_changed) and deliveries already
-- queued go out. Its admins could not stop any of it: disabling, rotating a leaked
-- secret and deleting an endpoint were refused 403 tenant_suspended, by the routes and
-- by the table's policies, while revoking an API key, which also takes access away, is
-- allowed. Now the update and delete policies admit the tenant's admins whatever its
-- status, and a trigger keeps a suspended tenant's endpoints otherwise as they are:
-- there an update by an API role may only turn an endpoint off or replace its secret
-- (403 tenant_suspended for anything else, a URL, event types, turning it on).

drop policy webhook_endpoints_update on public.webhook_endpoints;
create policy webhook_endpoints_update on public.webhook_endpoints for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()));
drop policy webhook_endpoints_delete on public.webhook_endpoints;
create policy webhook_endpoints_delete on public.webhook_endpoints for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()));

-- Invoker: current_user is the API role of the request (machine paths, which disable a
-- failing endpoint as the owner, are not its concern). Rows reach it only through the
-- update policy above: an outsider's update finds no row, and learns nothing here.
create function private.webhook_endpoint_suspended_changes() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user = 'authenticated' and not private.is_platform_admin()
     and new.tenant_id <> all (private.tenant_ids('admin', true))
     and ((new.url, new.description, new.event_types) is distinct from (old.url, old.description, old.event_types)
          or (new.enabled and not old.enabled)) then
    raise exception 'The tenant is suspended: an endpoint can only be turned off, have its secret rotated, or be deleted'
      using errcode = 'PT403', detail = '{"code": "tenant_suspended"}';
  end if;
  return new;
end;
$$;
revoke all on function private.webhook_endpoint_suspended_changes() from public, anon;
create trigger webhook_endpoint_suspended_changes before update on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_suspended_changes();
