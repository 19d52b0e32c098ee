-- Idempotency keys per principal, API keys included (issue 15).
--
-- Remembered responses were filed per (tenant, user, key). An API key acts as the admin
-- who created it (20261202080000_api_keys.sql), so an integration and its creator — two
-- clients that choose their Idempotency-Keys independently — shared one namespace: the
-- creator's retry could be answered with the integration's ticket. Each API key now has
-- its own: the key's id is part of the primary key (the nil id for a person).

alter table private.idempotency_keys
  add column api_key_id uuid not null default '00000000-0000-0000-0000-000000000000';
alter table private.idempotency_keys drop constraint idempotency_keys_pkey;
alter table private.idempotency_keys add primary key (tenant_id, user_id, api_key_id, key);

-- Redefined (20261126101300_idempotency.sql): filed under the caller's API key too.
create or replace function private.claim_idempotency_key(p_tenant_id uuid, p_key text, p_request_hash text)
returns table (claimed boolean, request_hash text, status_code int, response jsonb)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
  v_api_key uuid := coalesce((private.caller_context() -> 'api_key' ->> 'id')::uuid, '00000000-0000-0000-0000-000000000000'::uuid);
begin
  perform private.assert_writable_tenant(p_tenant_id);
  delete from private.idempotency_keys k
  where k.tenant_id = p_tenant_id and k.user_id = v_user and k.api_key_id = v_api_key and k.key = p_key
    and k.created_at < now() - interval '24 hours';
  insert into private.idempotency_keys (tenant_id, user_id, api_key_id, key, request_hash)
  values (p_tenant_id, v_user, v_api_key, p_key, p_request_hash)
  on conflict do nothing;
  if found then
    return query select true, p_request_hash, null::int, null::jsonb;
  else
    return query select false, k.request_hash, k.status_code, k.response from private.idempotency_keys k
      where k.tenant_id = p_tenant_id and k.user_id = v_user and k.api_key_id = v_api_key and k.key = p_key;
  end if;
end;
$$;

-- Redefined (20261126101300_idempotency.sql): filed under the caller's API key too.
create or replace function private.store_idempotent_response(p_tenant_id uuid, p_key text, p_status_code int, p_response jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  perform private.assert_writable_tenant(p_tenant_id);
  update private.idempotency_keys k set status_code = p_status_code, response = p_response
  where k.tenant_id = p_tenant_id and k.user_id = private.current_user_id()
    and k.api_key_id = coalesce((private.caller_context() -> 'api_key' ->> 'id')::uuid, '00000000-0000-0000-0000-000000000000'::uuid)
    and k.key = p_key;
end;
$$;
