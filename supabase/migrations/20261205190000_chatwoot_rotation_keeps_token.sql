-- Rotating the Chatwoot owner's password no longer clears the stored credentials. It
-- set credentials_encrypted to null, and that sealed blob also holds the owner's API
-- token and the account webhook's signing secret: until the provision job finished (a
-- cron tick at best, hours while Chatwoot failed), every staff reply failed for good
-- (no token: a permanent error) and inbound events were checked by the URL token alone,
-- the mode kept for Chatwoots that do not sign. A rotation is now a request counted in
-- external_ids.password_rotations; the connector (shared/connectors/chatwoot.ts) answers
-- a count above external_ids.password_rotated with a new password, recorded with that
-- count in one checkpoint, and carries the token and the secret through every step.
-- The revealed mark is left as it is: the new password clears it when it is recorded
-- (record_provisioning_progress), and until then there is no new password to show.
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
  set external_ids = external_ids || jsonb_build_object(
        'password_rotations', coalesce((external_ids ->> 'password_rotations')::int, 0) + 1),
      state = 'pending'
  where tenant_id = p_tenant_id and service = p_service and desired_state = 'active' and state = 'active';
  if not found then
    raise exception 'only an active service can rotate its credentials' using errcode = 'PT409';
  end if;
  perform private.enqueue_provisioning(p_tenant_id, p_service);
end;
$$;
