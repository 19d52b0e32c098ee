-- Drift is recorded only against the service as it was checked (review of the job
-- runner, issue 14).
--
-- The reconcile pass reads a service's recorded partner ids and sealed credentials
-- (private.drift_check_candidates), asks the partner whether those objects still exist,
-- and records drift when they do not. A service provisioned again meanwhile — an admin's
-- credentials rotation, a re-provision after a plan change — is active again with new ids
-- or credentials, and the check's "gone" was about the old ones: drift was recorded on
-- the new objects, a `service.drift_detected` event sent to the tenant's receivers, and
-- the service provisioned once more. The row now must still hold what was checked; if
-- it does not, nothing is recorded and the next pass checks what is there.

drop function private.record_service_drift(uuid, text, text);

-- Redefined (20261201152000_drift_repair.sql): with what the check read.
create or replace function private.record_service_drift(
  p_tenant_id uuid, p_service text, p_detail text, p_checked_ids jsonb, p_checked_credentials text
) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_s public.tenant_services;
  v_row jsonb;
begin
  update public.tenant_services set state = 'pending', drift_detected_at = now(), drift_detail = left(p_detail, 2000),
    drift_repaired_at = null
  where tenant_id = p_tenant_id and service = p_service and state = 'active' and desired_state = 'active'
    and external_ids = p_checked_ids and credentials_encrypted is not distinct from p_checked_credentials
  returning * into v_s;
  if not found then
    return false;
  end if;
  v_row := private.api_timestamps(to_jsonb(v_s) - 'credentials_encrypted', 'public.tenant_services'::regclass);
  perform private.emit_webhook_event(p_tenant_id, 'service.drift_detected', 'service:' || p_service,
    jsonb_build_object('type', 'service.drift_detected', 'tenant_id', p_tenant_id, 'data', v_row,
                       'occurred_at', private.api_timestamp(clock_timestamp())));
  perform private.enqueue_provisioning(p_tenant_id, p_service);
  return true;
end;
$$;
revoke all on function private.record_service_drift(uuid, text, text, jsonb, text) from public, anon, authenticated;
grant execute on function private.record_service_drift(uuid, text, text, jsonb, text) to service_role;
