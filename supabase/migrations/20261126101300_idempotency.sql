-- Idempotent creates: a request sent with an Idempotency-Key runs once; a retry with the
-- same key and body gets the first response back and writes nothing (the same key with
-- another body is refused by the function). POST /tickets takes one: a 503 during commit
-- is ambiguous, and the key makes the retry safe.

-- ------------------------------------------------------------------ the keys

-- Remembered responses of requests sent with an Idempotency-Key, per tenant and user,
-- for 24 hours. Private: only the two functions below touch it.
create table private.idempotency_keys (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  user_id uuid not null references public.users (id) on delete cascade,
  key text not null check (char_length(key) between 1 and 255),
  request_hash text not null,
  status_code int,
  response jsonb,
  created_at timestamptz not null default now(),
  primary key (tenant_id, user_id, key)
);

-- ------------------------------------------------------------------ claim and store

-- Claims the key for this request, or returns what the first request with it stored.
-- A concurrent duplicate waits here until the first one commits (the unique key), so
-- it never runs the create twice: the key row comes before the ticket counter in the
-- lock order. Only in a tenant the caller may write in (tickets are created only there;
-- issue 9 found keys written under another tenant).
create function private.claim_idempotency_key(p_tenant_id uuid, p_key text, p_request_hash text)
returns table (claimed boolean, request_hash text, status_code int, response jsonb)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_user uuid := private.current_user_id();
begin
  perform private.assert_writable_tenant(p_tenant_id);
  delete from private.idempotency_keys k
  where k.tenant_id = p_tenant_id and k.user_id = v_user and k.key = p_key and k.created_at < now() - interval '24 hours';
  insert into private.idempotency_keys (tenant_id, user_id, key, request_hash)
  values (p_tenant_id, v_user, p_key, p_request_hash)
  on conflict do nothing;
  if found then
    return query select true, p_request_hash, null::int, null::jsonb;
  else
    return query select false, k.request_hash, k.status_code, k.response from private.idempotency_keys k
      where k.tenant_id = p_tenant_id and k.user_id = v_user and k.key = p_key;
  end if;
end;
$$;
revoke all on function private.claim_idempotency_key(uuid, text, text) from public, anon;
grant execute on function private.claim_idempotency_key(uuid, text, text) to authenticated, service_role;

create function private.store_idempotent_response(p_tenant_id uuid, p_key text, p_status_code int, p_response jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  perform private.assert_writable_tenant(p_tenant_id);
  update private.idempotency_keys k set status_code = p_status_code, response = p_response
  where k.tenant_id = p_tenant_id and k.user_id = private.current_user_id() and k.key = p_key;
end;
$$;
revoke all on function private.store_idempotent_response(uuid, text, int, jsonb) from public, anon;
grant execute on function private.store_idempotent_response(uuid, text, int, jsonb) to authenticated, service_role;
