-- Rotating the Chatwoot owner's password (issue 13): Chatwoot's user create returns an
-- existing e-mail's user unchanged, so the connector (shared/connectors/chatwoot.ts) keeps
-- a password only for a login this tenant created and applies a rotated one with
-- PATCH /platform/api/v1/users/{id}. A login that existed before this tenant (another
-- tenant's owner, or someone who signed up at Chatwoot) is its owner's: there is no
-- password of ours to rotate, so the request is refused with 409 instead of re-queuing
-- work that changes nothing. The connector records which it is in
-- external_ids.owner_login ('created' | 'existing').
create or replace function private.rotate_service_credentials(p_tenant_id uuid, p_service text) returns void
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
  if exists (select 1 from public.tenant_services
             where tenant_id = p_tenant_id and service = p_service and external_ids ->> 'owner_login' = 'existing') then
    raise exception 'the Chatwoot login existed before this tenant: its owner signs in with their own password'
      using errcode = 'PT409';
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
