-- An endpoint whose signing secret an API key was shown stays off until a person rotates
-- the secret (review of outbound webhooks).
--
-- A key that registers an endpoint or rotates its secret is shown the secret; when the key
-- is revoked (or expires) the endpoint is disabled (20261207110000) because whoever holds
-- that secret can sign requests the receiver believes to come from the platform. An admin
-- enabling it again forgot the key — and kept the secret the key had been shown, so the
-- threat the disabling answered came back with the deliveries (and an endpoint whose URL
-- a person had changed since was not even disabled: the key was forgotten). The key that
-- last set an endpoint's secret is now remembered on its own (a person's other changes do
-- not forget it; only a person's rotation does): when it ends — revoked, expired, or its
-- admin no longer one, as private.verify_api_key asks — the endpoint is disabled as for
-- the key that set it up, and enabling it again is refused, 409
-- secret_rotation_required, until a person rotates the secret (with
-- previous_secret_hours 0). The reasons say so.

create table private.webhook_endpoint_secret_keys (
  tenant_id uuid not null,
  endpoint_id uuid not null,
  api_key_id uuid not null,
  primary key (tenant_id, endpoint_id),
  foreign key (tenant_id, endpoint_id) references public.webhook_endpoints (tenant_id, id) on delete cascade
);
alter table private.webhook_endpoint_secret_keys enable row level security;
revoke all on private.webhook_endpoint_secret_keys from public, anon, authenticated, service_role;

-- Who was shown the secret: a key's insert or rotation is remembered, a person's rotation
-- forgets it; the machine paths leave it as it is.
create function private.webhook_endpoint_secret_key() returns trigger
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
  elsif pg_catalog.current_setting('role', true) = 'authenticated' then
    delete from private.webhook_endpoint_secret_keys k where k.tenant_id = new.tenant_id and k.endpoint_id = new.id;
  end if;
  return null;
end;
$$;
revoke all on function private.webhook_endpoint_secret_key() from public, anon, authenticated;
create trigger secret_key after insert or update of secret_encrypted on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_secret_key();

-- Whether the key has ended: revoked, expired, or its admin no longer one (as
-- private.verify_api_key asks it).
create function private.api_key_ended(p_tenant_id uuid, p_key_id uuid) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select coalesce((
    select k.revoked_at is not null or coalesce(k.expires_at <= pg_catalog.now(), false)
           or not exists (select 1 from public.memberships m join public.users u on u.id = m.user_id
                          where m.tenant_id = k.tenant_id and m.user_id = k.created_by and m.role = 'admin'
                            and u.status = 'active')
    from public.api_keys k where k.tenant_id = p_tenant_id and k.id = p_key_id), true);
$$;
revoke all on function private.api_key_ended(uuid, uuid) from public, anon, authenticated;

-- The ended key that was shown an endpoint's secret, if any (its prefix).
create function private.webhook_endpoint_secret_key_ended(p_tenant_id uuid, p_endpoint_id uuid) returns text
language sql stable security definer
set search_path = ''
as $$
  select coalesce(k.prefix, 'deleted')
  from private.webhook_endpoint_secret_keys s
  left join public.api_keys k on k.tenant_id = s.tenant_id and k.id = s.api_key_id
  where s.tenant_id = p_tenant_id and s.endpoint_id = p_endpoint_id and private.api_key_ended(s.tenant_id, s.api_key_id);
$$;
revoke all on function private.webhook_endpoint_secret_key_ended(uuid, uuid) from public, anon, authenticated;

-- Enabling an endpoint whose secret an ended key was shown: refused until a rotation.
create function private.webhook_endpoint_secret_still_shown() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_prefix text;
begin
  if new.enabled and not old.enabled and new.secret_encrypted is not distinct from old.secret_encrypted then
    v_prefix := private.webhook_endpoint_secret_key_ended(new.tenant_id, new.id);
    if v_prefix is not null then
      raise exception 'The API key % was shown this endpoint''s secret and has ended: rotate the secret, then enable the endpoint',
        v_prefix using errcode = 'PT409', detail = jsonb_build_object('code', 'secret_rotation_required')::text;
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.webhook_endpoint_secret_still_shown() from public, anon, authenticated;
create trigger secret_still_shown before update of enabled on public.webhook_endpoints
  for each row execute function private.webhook_endpoint_secret_still_shown();

-- Redefined (20261207110000_key_made_endpoints_end_with_the_key.sql): also the endpoints
-- whose secret the revoked key was shown, saying to rotate it first.
create or replace function private.webhook_endpoints_of_revoked_key() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.webhook_endpoints e
  set enabled = false,
      disabled_reason = case
        when exists (select 1 from private.webhook_endpoint_secret_keys s
                     where s.tenant_id = e.tenant_id and s.endpoint_id = e.id and s.api_key_id = new.id)
        then format('disabled: the API key %s, which was shown its secret, was revoked; an admin rotates the secret, then enables it', new.prefix)
        else format('disabled: the API key %s that set it up was revoked; an admin enables it again', new.prefix) end
  where e.tenant_id = new.tenant_id and e.enabled
    and (exists (select 1 from private.webhook_endpoint_key_origins o
                 where o.tenant_id = e.tenant_id and o.endpoint_id = e.id and o.api_key_id = new.id)
         or exists (select 1 from private.webhook_endpoint_secret_keys s
                    where s.tenant_id = e.tenant_id and s.endpoint_id = e.id and s.api_key_id = new.id));
  return null;
end;
$$;

-- Redefined (20261207147000_key_made_endpoints_end_with_the_keys_admin.sql): an ended key
-- that was shown the secret disables the endpoint too, at its next delivery.
create or replace function private.webhook_endpoint_key_lapsed(p_tenant_id uuid, p_endpoint_id uuid) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_prefix text;
  v_why text;
begin
  v_prefix := private.webhook_endpoint_secret_key_ended(p_tenant_id, p_endpoint_id);
  if v_prefix is not null then
    v_why := format('disabled: the API key %s, which was shown its secret, has ended; an admin rotates the secret, then enables it',
                    v_prefix);
  else
    select k.prefix,
           format('disabled: the API key %s that set it up %s; an admin enables it again', k.prefix,
                  case when k.revoked_at is not null or k.expires_at <= pg_catalog.now() then 'has expired'
                       else 'was made by an admin who no longer is one (demoted, removed or disabled)' end)
    into v_prefix, v_why
    from private.webhook_endpoint_key_origins o
    join public.api_keys k on k.tenant_id = o.tenant_id and k.id = o.api_key_id
    where o.tenant_id = p_tenant_id and o.endpoint_id = p_endpoint_id and private.api_key_ended(k.tenant_id, k.id);
  end if;
  if v_prefix is null then
    return false;
  end if;
  update public.webhook_endpoints e set enabled = false, disabled_reason = v_why
  where e.tenant_id = p_tenant_id and e.id = p_endpoint_id and e.enabled;
  return true;
end;
$$;
