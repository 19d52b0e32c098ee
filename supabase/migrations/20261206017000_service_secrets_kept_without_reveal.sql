-- A service's machine secrets change without making its password revealable again
-- (issue 14, review of the provisioning credentials).
--
-- Credentials are stored with the machine secrets the server keeps beside the login
-- (Chatwoot's owner API token and account webhook's signing secret), and storing them
-- (private.record_provisioning_progress, private.finish_provisioning_job) clears
-- credentials_revealed_at: the login may be shown once more. When only a machine secret
-- changed — the webhook made again after someone deleted it at Chatwoot, a new token —
-- the login an admin already saw had not, and it became revealable a second time. The
-- provision task stores such credentials through this function, which keeps the reveal
-- as it was, under the job's lease like the other two.
create function private.record_service_secrets(p_job_id bigint, p_worker text, p_credentials_encrypted text)
returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  -- Nothing recorded, only the service row locked and the lease checked.
  if not private.record_provisioning_progress(p_job_id, p_worker, '{}', null) then
    return false; -- the lease was lost; another worker owns the job now
  end if;
  update public.tenant_services s set credentials_encrypted = p_credentials_encrypted
  from private.jobs j
  where j.id = p_job_id and s.tenant_id = (j.payload ->> 'tenant_id')::uuid and s.service = j.payload ->> 'service';
  return true;
end;
$$;
revoke all on function private.record_service_secrets(bigint, text, text) from public, anon, authenticated;
grant execute on function private.record_service_secrets(bigint, text, text) to service_role;
