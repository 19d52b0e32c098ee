-- Rotating a partner owner's credentials (Chatwoot, the one partner whose owner password
-- is ours): the stored ones are dropped and the service re-provisioned; the connector
-- chooses a new password, which Chatwoot's user find-or-create sets, and the tenant's
-- admins can see the new credentials once, as after creation.
create function private.rotate_service_credentials(p_tenant_id uuid, p_service text) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_tenant_id <> all (private.tenant_ids('admin', true)) and not private.is_platform_admin() then
    raise exception 'only the tenant''s admins rotate its credentials' using errcode = 'PT403';
  end if;
  if p_service not in ('chatwoot') then
    raise exception 'this service has no credentials of ours to rotate' using errcode = 'PT409';
  end if;
  update public.tenant_services
  set credentials_encrypted = null, credentials_revealed_at = null, state = 'pending'
  where tenant_id = p_tenant_id and service = p_service and desired_state = 'active' and state = 'active';
  if not found then
    raise exception 'only an active service can rotate its credentials' using errcode = 'PT409';
  end if;
  perform private.enqueue_provisioning(p_tenant_id, p_service);
end;
$$;
revoke all on function private.rotate_service_credentials(uuid, text) from public, anon;
grant execute on function private.rotate_service_credentials(uuid, text) to authenticated, service_role;
