-- API keys for server-to-server clients (issue 15).
--
-- A tenant admin creates a key with a name, scopes from the allow-list below and an
-- optional expiry. The client sends it as `Authorization: Bearer tpk_live_<32 hex key
-- id>_<43 base64url secret>`; the secret is shown once and stored only as its SHA-256,
-- in a private table API roles cannot read. The key's row in public.api_keys (name,
-- prefix, scopes, expiry, revocation) is the tenant's to see and audit; no secret is in
-- it, so none reaches an audit row.
--
-- The key is a principal the policies know. The functions verify it
-- (private.verify_api_key: hash, revocation, expiry, the route's scope) in the same
-- statement that loads the caller, with claims {iss: 'tenant-platform:api-key', sub:
-- <key id>}. private.caller_context() then reads the key, not an identity: the key acts
-- as the admin who created it, only in the key's tenant (never as a platform admin),
-- while the key is unrevoked, unexpired and its creator still a member — through the
-- same RLS path and the same helpers as a person, so every policy holds for it.
-- Scopes limit which routes a key reaches (the route's declared need, checked here);
-- a route that declares no scope refuses keys. The issuer is no identity provider's:
-- the functions accept no JWT naming it, so only they (after verifying the key) or a
-- holder of the project JWT secret can present such claims.
--
-- last_used_at lives next to the hash (private), updated at most once a minute, so a
-- busy key neither rewrites its public row nor fills the audit trail.

create table public.api_keys (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  name text not null check (length(btrim(name)) between 1 and 100),
  -- What the key text starts with (tpk_live_ and the key id's first 8 hex digits), so
  -- an admin can tell which key a leaked or logged prefix is.
  prefix text not null,
  scopes text[] not null check (
    cardinality(scopes) between 1 and 20
    and scopes <@ array['tickets:read', 'tickets:write', 'customers:read', 'customers:write', 'calls:write',
                        'voice:route', 'webhooks:manage', 'teams:read', 'members:read', 'audit:read']::text[]),
  expires_at timestamptz,
  revoked_at timestamptz,
  created_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  unique (id)
);
create index api_keys_created_by_idx on public.api_keys (created_by);

create trigger set_updated_at before update on public.api_keys
  for each row execute function private.set_updated_at();

-- A revoked key stays revoked; the scopes, expiry and creator never change (a new key
-- is made instead).
create function private.api_key_guard() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.revoked_at is not null and new.revoked_at is distinct from old.revoked_at then
    raise exception 'A revoked API key cannot be restored' using errcode = 'PT409', detail = '{"code": "api_key_revoked"}';
  end if;
  if new.scopes is distinct from old.scopes or new.expires_at is distinct from old.expires_at
     or new.created_by is distinct from old.created_by or new.prefix is distinct from old.prefix then
    raise exception 'An API key''s scopes, expiry and creator are fixed; create a new key'
      using errcode = 'PT409', detail = '{"code": "api_key_fixed"}';
  end if;
  return new;
end;
$$;
revoke all on function private.api_key_guard() from public, anon, authenticated, service_role;
create trigger api_key_guard before update on public.api_keys
  for each row execute function private.api_key_guard();

alter table public.api_keys enable row level security;
-- Admins see and revoke (or rename) their tenant's keys; keys are created only through
-- private.create_api_key (the secret's hash goes with them) and never deleted by API
-- roles (revocation keeps the record).
create policy api_keys_select on public.api_keys for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()));
create policy api_keys_update on public.api_keys for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
revoke all on public.api_keys from anon, authenticated;
grant select on public.api_keys to authenticated;
grant update (name, revoked_at) on public.api_keys to authenticated;
grant all on public.api_keys to service_role;

select private.enable_audit('public.api_keys');

-- The secret's hash and the key's last use: API roles have no privilege here at all.
create table private.api_key_secrets (
  tenant_id uuid not null,
  key_id uuid not null,
  secret_sha256 bytea not null check (length(secret_sha256) = 32),
  last_used_at timestamptz,
  primary key (tenant_id, key_id),
  unique (key_id),
  foreign key (tenant_id, key_id) references public.api_keys (tenant_id, id) on delete cascade
);
revoke all on private.api_key_secrets from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ create

-- A new key in p_tenant_id, for an admin of that tenant (writable), not for a key: the
-- functions generate the secret and pass only its SHA-256 (hex). The database chooses
-- the id; the key text is built from it.
create function private.create_api_key(
  p_tenant_id uuid, p_name text, p_scopes text[], p_expires_at timestamptz, p_secret_sha256 text
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ctx jsonb := private.caller_context();
  v_id uuid := gen_random_uuid();
begin
  if v_ctx -> 'api_key' is not null then
    raise exception 'An API key cannot create API keys' using errcode = 'PT403', detail = '{"code": "insufficient_scope"}';
  end if;
  if p_tenant_id is null or not (p_tenant_id = any (private.tenant_ids('admin', true)) or private.is_platform_admin()) then
    raise exception 'Tenant not found' using errcode = 'PT404';
  end if;
  if p_secret_sha256 is null or p_secret_sha256 !~ '^[0-9a-f]{64}$' then
    raise exception 'The secret hash is malformed' using errcode = 'PT400', detail = '{"code": "bad_request"}';
  end if;
  if p_expires_at is not null and p_expires_at <= now() then
    raise exception 'expires_at must be in the future' using errcode = 'PT400', detail = '{"code": "expiry_in_past"}';
  end if;
  insert into public.api_keys (tenant_id, id, name, prefix, scopes, expires_at, created_by)
  values (p_tenant_id, v_id, p_name, 'tpk_live_' || left(replace(v_id::text, '-', ''), 8),
          (select coalesce(array_agg(distinct s order by s), '{}') from unnest(p_scopes) s),
          p_expires_at, private.current_user_id());
  insert into private.api_key_secrets (tenant_id, key_id, secret_sha256)
  values (p_tenant_id, v_id, decode(p_secret_sha256, 'hex'));
  return jsonb_build_object('tenant_id', p_tenant_id, 'id', v_id);
end;
$$;
revoke all on function private.create_api_key(uuid, text, text[], timestamptz, text) from public, anon;
grant execute on function private.create_api_key(uuid, text, text[], timestamptz, text) to authenticated, service_role;

-- ------------------------------------------------------------------ verify

-- The claims' key, when the claims are an API key's: its row, if unrevoked and unexpired.
create function private.claimed_api_key() returns public.api_keys
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := auth.jwt();
  v_key public.api_keys;
begin
  if v_claims ->> 'iss' is distinct from 'tenant-platform:api-key'
     or v_claims ->> 'sub' !~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return null;
  end if;
  select k.* into v_key from public.api_keys k
  where k.id = (v_claims ->> 'sub')::uuid and k.revoked_at is null and (k.expires_at is null or k.expires_at > now());
  return v_key;
end;
$$;
revoke all on function private.claimed_api_key() from public, anon, authenticated, service_role;

-- What the functions ask first for a request with a key (shared/auth/context.ts), in the
-- statement that loads the caller: the key p_id with the secret whose SHA-256 is
-- p_secret_sha256 (hex) — 401 invalid_api_key when there is no such pair (an unknown id
-- and a wrong secret answer alike), api_key_revoked / api_key_expired once it is — and
-- the route's scope p_scope, 403 insufficient_scope when the key lacks it. Marks the key
-- used (at most once a minute). Returns {id, tenant_id, scopes}.
create function private.verify_api_key(p_id uuid, p_secret_sha256 text, p_scope text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_id uuid;
  v_tenant uuid;
  v_scopes text[];
  v_revoked timestamptz;
  v_expires timestamptz;
  v_last timestamptz;
begin
  if p_secret_sha256 is null or p_secret_sha256 !~ '^[0-9a-f]{64}$' then
    raise exception 'The API key is not valid' using errcode = 'PT401', detail = '{"code": "invalid_api_key"}';
  end if;
  select k.id, k.tenant_id, k.scopes, k.revoked_at, k.expires_at, s.last_used_at
  into v_id, v_tenant, v_scopes, v_revoked, v_expires, v_last
  from private.api_key_secrets s join public.api_keys k on k.tenant_id = s.tenant_id and k.id = s.key_id
  where s.key_id = p_id and s.secret_sha256 = decode(p_secret_sha256, 'hex');
  if v_id is null then
    raise exception 'The API key is not valid' using errcode = 'PT401', detail = '{"code": "invalid_api_key"}';
  end if;
  if v_revoked is not null then
    raise exception 'The API key has been revoked' using errcode = 'PT401', detail = '{"code": "api_key_revoked"}';
  end if;
  if v_expires is not null and v_expires <= now() then
    raise exception 'The API key has expired' using errcode = 'PT401', detail = '{"code": "api_key_expired"}';
  end if;
  if v_last is null or v_last < now() - interval '1 minute' then
    update private.api_key_secrets s set last_used_at = now() where s.tenant_id = v_tenant and s.key_id = v_id;
  end if;
  if p_scope is null or not (p_scope = any (v_scopes)) then
    raise exception 'The API key does not have the scope this route needs'
      using errcode = 'PT403', detail = jsonb_build_object('code', 'insufficient_scope', 'details', jsonb_build_object('required', p_scope))::text;
  end if;
  return jsonb_build_object('id', v_id, 'tenant_id', v_tenant, 'scopes', to_jsonb(v_scopes));
end;
$$;
revoke all on function private.verify_api_key(uuid, text, text) from public, anon;
grant execute on function private.verify_api_key(uuid, text, text) to authenticated, service_role;

-- When the tenant's admins last saw each key used (the list route): nothing for others.
create function private.api_keys_last_used(p_tenant_id uuid) returns table (id uuid, last_used_at timestamptz)
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_tenant_id is null or not (p_tenant_id = any (private.tenant_ids('admin')) or private.is_platform_admin()) then
    return;
  end if;
  return query select s.key_id, s.last_used_at from private.api_key_secrets s where s.tenant_id = p_tenant_id;
end;
$$;
revoke all on function private.api_keys_last_used(uuid) from public, anon;
grant execute on function private.api_keys_last_used(uuid) to authenticated, service_role;

-- ------------------------------------------------------------------ the key as a principal

-- Redefined (20261126100200_access_helpers.sql): a key's claims name its tenant (and no
-- claim can widen it); nil — nobody's tenant — for a key no longer valid.
create or replace function private.active_tenant_id() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_claims jsonb := auth.jwt();
  v_hint text := coalesce(v_claims ->> 'tenant_id', v_claims -> 'app_metadata' ->> 'tenant_id');
  v_org text := coalesce(v_claims -> 'o' ->> 'id', v_claims ->> 'org_id');
  v_id uuid;
begin
  if v_claims ->> 'iss' = 'tenant-platform:api-key' then
    return coalesce((private.claimed_api_key()).tenant_id, '00000000-0000-0000-0000-000000000000'::uuid);
  end if;
  if v_hint ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    return v_hint::uuid;
  elsif v_hint is not null then
    select t.id into v_id from public.tenants t where t.slug = v_hint;
  elsif v_org is not null then
    select l.tenant_id into v_id from public.tenant_org_links l
    where l.issuer = v_claims ->> 'iss' and l.org_id = v_org;
  else
    return null;
  end if;
  return coalesce(v_id, '00000000-0000-0000-0000-000000000000'::uuid);
end;
$$;

-- Redefined (20261201098000_caller_tenant_lists.sql): a key's claims are the key — its
-- creator acting only in its tenant (their membership there, nothing else), never as a
-- platform admin, with 'api_key' {id, tenant_id} (its scopes are verify_api_key's to
-- check); nobody once it is revoked or
-- expired. A person's context is as before.
create or replace function private.caller_context() returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  -- What the context is read for: both claim settings auth.jwt() reads.
  v_key text := coalesce(current_setting('request.jwt.claim', true), '') || '|'
    || coalesce(current_setting('request.jwt.claims', true), '');
  v_cached text := current_setting('private.caller_context', true);
  v_claims jsonb;
  v_user jsonb;
  v_uid uuid;
  v_active uuid;
  v_memberships jsonb;
  v_lists record;
  v_ctx jsonb;
  v_api_key public.api_keys;
begin
  if v_cached is not null and v_cached <> '' and current_setting('private.caller_context_key', true) = v_key then
    return v_cached::jsonb;
  end if;
  -- No claims (a trusted machine path, a migration, a trigger fired by one): nobody.
  if v_key = '|' then
    return '{"user_id": null, "user": null, "platform_admin": false, "active_tenant_id": null, "memberships": {}}'::jsonb;
  end if;
  v_claims := auth.jwt();
  v_active := private.active_tenant_id();
  if v_claims ->> 'iss' = 'tenant-platform:api-key' then
    v_api_key := private.claimed_api_key();
    select u.id, jsonb_build_object('id', u.id, 'email', u.email, 'first_name', u.first_name, 'last_name', u.last_name,
                                    'status', u.status)
    into v_uid, v_user
    from public.users u
    where u.id = v_api_key.created_by and u.status = 'active';
  else
    select u.id, jsonb_build_object('id', u.id, 'email', u.email, 'first_name', u.first_name, 'last_name', u.last_name,
                                    'status', u.status)
    into v_uid, v_user
    from public.user_identities i
    join public.users u on u.id = i.user_id
    where i.issuer = v_claims ->> 'iss'
      and i.subject = v_claims ->> 'sub'
      and u.status = 'active';
  end if;
  -- tenant id → [role, tenant status, tenant name, tenant slug], and the tenant lists by
  -- minimum role (ranks: user 1, agent 2, admin 3), narrowed to the active tenant; deleted
  -- tenants are gone for members, writable ones are active. A key's: its tenant only.
  select coalesce(jsonb_object_agg(m.tenant_id, jsonb_build_array(m.role, t.status, t.name, t.slug)), '{}'::jsonb) as memberships,
    coalesce(array_agg(m.tenant_id) filter (where v_active is null or m.tenant_id = v_active), '{}') as user_all,
    coalesce(array_agg(m.tenant_id) filter (where (v_active is null or m.tenant_id = v_active) and t.status = 'active'), '{}') as user_w,
    coalesce(array_agg(m.tenant_id) filter (where (v_active is null or m.tenant_id = v_active) and m.role in ('agent', 'admin')), '{}') as agent_all,
    coalesce(array_agg(m.tenant_id) filter (where (v_active is null or m.tenant_id = v_active) and m.role in ('agent', 'admin')
      and t.status = 'active'), '{}') as agent_w,
    coalesce(array_agg(m.tenant_id) filter (where (v_active is null or m.tenant_id = v_active) and m.role = 'admin'), '{}') as admin_all,
    coalesce(array_agg(m.tenant_id) filter (where (v_active is null or m.tenant_id = v_active) and m.role = 'admin'
      and t.status = 'active'), '{}') as admin_w
  into v_lists
  from public.memberships m join public.tenants t on t.id = m.tenant_id
  where m.user_id = v_uid and t.status <> 'deleted'
    and (v_api_key.id is null or m.tenant_id = v_api_key.tenant_id);
  v_ctx := jsonb_build_object(
    'user_id', v_uid,
    -- What the functions show of the caller (shared/auth/context.ts): no second read.
    'user', v_user,
    'platform_admin', v_uid is not null and v_api_key.id is null
      and exists (select 1 from public.platform_admins p where p.user_id = v_uid),
    'active_tenant_id', v_active,
    'memberships', v_lists.memberships,
    -- tenant_ids(min_role, writable)'s answers, as array literals.
    'tenant_ids', jsonb_build_object(
      'user', v_lists.user_all::text, 'user_w', v_lists.user_w::text,
      'agent', v_lists.agent_all::text, 'agent_w', v_lists.agent_w::text,
      'admin', v_lists.admin_all::text, 'admin_w', v_lists.admin_w::text));
  if v_api_key.id is not null then
    v_ctx := v_ctx || jsonb_build_object('api_key', jsonb_build_object('id', v_api_key.id, 'tenant_id', v_api_key.tenant_id));
  end if;
  perform set_config('private.caller_context', v_ctx::text, true);
  perform set_config('private.caller_context_key', v_key, true);
  return v_ctx;
end;
$$;

-- The context holds a key's validity too: a revocation in this transaction drops it.
create trigger forget_caller_context after insert or update or delete on public.api_keys
  for each statement execute function private.forget_caller_context();
