-- Review of 20261208114000: a person's rotation forgot the ended key that had been shown
-- the secret whatever the rotation kept — but a rotation with an overlap keeps the old
-- secret signing every delivery as the previous one (24 hours by default, up to a week):
-- the endpoint could be enabled again while the ended key's secret still signed what the
-- receiver believes. Only a rotation that keeps no previous secret (previous_secret_hours
-- 0) forgets it now; after one with an overlap, enabling stays 409
-- secret_rotation_required, as its message says.

-- Redefined (20261208114000_key_shown_secrets_rotated_before_enabling.sql).
create or replace function private.webhook_endpoint_secret_key() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_claims jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
begin
  if tg_op = 'UPDATE' and new.secret_encrypted is not distinct from old.secret_encrypted then
    return null;
  end if;
  if v_claims ->> 'iss' = 'tenant-platform:api-key' then
    insert into private.webhook_endpoint_secret_keys (tenant_id, endpoint_id, api_key_id)
    values (new.tenant_id, new.id, (v_claims ->> 'sub')::uuid)
    on conflict (tenant_id, endpoint_id) do update set api_key_id = excluded.api_key_id;
  elsif pg_catalog.current_setting('role', true) = 'authenticated' and new.previous_secret_encrypted is null then
    delete from private.webhook_endpoint_secret_keys k where k.tenant_id = new.tenant_id and k.endpoint_id = new.id;
  end if;
  return null;
end;
$$;
