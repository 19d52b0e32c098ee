-- An endpoint an API key set up stops receiving when the key ends (review, issue 14).
--
-- A key with webhooks:manage (and the read scopes of the events) may register an
-- endpoint, point one at another URL or rotate its secret. Revoking the key, its expiry
-- or its creator's removal ended the key but not what it had set up: the endpoint kept
-- receiving the tenant's ticket, call and customer events at the URL the key chose, and
-- a key that had rotated a secret could still sign events as the platform. Now the key
-- that last set an endpoint's URL, secret, event types or enabled state is remembered
-- (private.webhook_endpoint_key_origins), and when that key is revoked the endpoint is
-- disabled, saying why; an expired key's endpoint is disabled at its next delivery
-- (private.webhook_endpoint_key_lapsed, asked by the delivery job). Its deliveries wait,
-- pending, as for any disabled endpoint, until an admin enables it again, which vouches
-- for it: a person's change of those fields forgets the key. Endpoints set up by keys
-- before this migration are not known as theirs (the audit trail names the key of each
-- change, for an operator who wants to look).

create table private.webhook_endpoint_key_origins (
  tenant_id uuid not null,
  endpoint_id uuid not null,
  api_key_id uuid not null,
  primary key (tenant_id, endpoint_id),
  foreign key (tenant_id, endpoint_id) references public.webhook_endpoints (tenant_id, id) on delete cascade
);
create index webhook_endpoint_key_origins_key_idx on private.webhook_endpoint_key_origins (tenant_id, api_key_id);
-- Private schema, not exposed; only the definer functions below touch it.
alter table private.webhook_endpoint_key_origins enable row level security;
revoke all on private.webhook_endpoint_key_origins from public, anon, authenticated, service_role;

-- Who set the endpoint up: an API key (claims issued for it, shared/auth/api-keys.ts)
-- is remembered; a person's change forgets it; the machine paths (a failure disabling
-- it, the service role) leave it as it is.
create function private.webhook_endpoint_key_origin() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_claims jsonb := nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb;
begin
  if tg_op = 'UPDATE' and new.url is not distinct from old.url and new.secret_encrypted is not distinct from old.secret_encrypted
     and new.event_types is not distinct from old.event_types and (new.enabled = old.enabled or not new.enabled) then
    return null;
  end if;
  if v_claims ->> 'iss' = 'tenant-platform:api-key' then
    insert into private.webhook_endpoint_key_origins (tenant_id, endpoint_id, api_key_id)
    values (new.tenant_id, new.id, (v_claims ->> 'sub')::uuid)
    on conflict (tenant_id, endpoint_id) do update set api_key_id = excluded.api_key_id;
  elsif pg_catalog.current_setting('role', true) = 'authenticated' then
    delete from private.webhook_endpoint_key_origins o where o.tenant_id = new.tenant_id and o.endpoint_id = new.id;
  end if;
  return null;
end;
$$;
revoke all on function private.webhook_endpoint_key_origin() from public, anon, authenticated;
create trigger key_origin after insert or update on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_key_origin();

-- A revoked key's endpoints are disabled, in the revocation's transaction.
create function private.webhook_endpoints_of_revoked_key() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.webhook_endpoints e
  set enabled = false,
      disabled_reason = format('disabled: the API key %s that set it up was revoked; an admin enables it again', new.prefix)
  from private.webhook_endpoint_key_origins o
  where o.tenant_id = new.tenant_id and o.api_key_id = new.id
    and e.tenant_id = o.tenant_id and e.id = o.endpoint_id and e.enabled;
  return null;
end;
$$;
revoke all on function private.webhook_endpoints_of_revoked_key() from public, anon, authenticated;
create trigger endpoints_disabled after update of revoked_at on public.api_keys
  for each row when (new.revoked_at is not null and old.revoked_at is null)
  execute function private.webhook_endpoints_of_revoked_key();

-- Asked by the delivery job before it sends: an endpoint whose key has expired (or was
-- revoked, should the trigger above have been bypassed) is disabled now, and true.
create function private.webhook_endpoint_key_lapsed(p_tenant_id uuid, p_endpoint_id uuid) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_prefix text;
begin
  select k.prefix into v_prefix
  from private.webhook_endpoint_key_origins o
  join public.api_keys k on k.tenant_id = o.tenant_id and k.id = o.api_key_id
  where o.tenant_id = p_tenant_id and o.endpoint_id = p_endpoint_id
    and (k.revoked_at is not null or k.expires_at <= pg_catalog.now());
  if v_prefix is null then
    return false;
  end if;
  update public.webhook_endpoints e
  set enabled = false,
      disabled_reason = format('disabled: the API key %s that set it up has expired; an admin enables it again', v_prefix)
  where e.tenant_id = p_tenant_id and e.id = p_endpoint_id and e.enabled;
  return true;
end;
$$;
revoke all on function private.webhook_endpoint_key_lapsed(uuid, uuid) from public, anon, authenticated;
grant execute on function private.webhook_endpoint_key_lapsed(uuid, uuid) to service_role;
