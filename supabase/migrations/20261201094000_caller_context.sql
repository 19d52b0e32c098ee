-- The caller, looked up once per transaction (issue 12).
--
-- Every policy and access helper asks who the caller is: private.current_user_id()
-- (claims → identity → user), is_platform_admin(), tenant_ids() and role_in() (their
-- memberships). Each asked the tables again — a policy's InitPlan, then the helper it
-- calls, then the helper that one calls — and each call of a security definer function
-- pays for its own search_path: measured on a request reading a tenant's teams, about
-- 100 µs per current_user_id() and 350 µs per tenant_ids(), called a dozen times between
-- the caller lookup and the read. Two thirds of a request went there.
--
-- Now the first of them in a transaction reads the caller once — user, platform-admin
-- flag, the active tenant the claims name, and every membership with its tenant's status
-- — into a transaction-local setting, keyed by the claims it was read for; the others
-- read that. Nothing is kept beyond the transaction, so a membership change, a
-- suspension or a removal takes effect on the very next request, and RLS is unchanged.
-- Within a transaction, any change to what the context holds (memberships, tenants,
-- platform admins, users, identities, organisation links) drops it (statement
-- triggers below), so a transaction that adds a membership sees it in its next
-- statement, as before. A new claims text (withClaims re-scoping, PostgREST's next
-- request on the connection) reads afresh.
--
-- Trust: the context can be forged only by whoever can run set_config — the same
-- sessions that can already set request.jwt.claims, which RLS trusts anyway.

create function private.caller_context() returns jsonb
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
  v_ctx jsonb;
begin
  if v_cached is not null and v_cached <> '' and current_setting('private.caller_context_key', true) = v_key then
    return v_cached::jsonb;
  end if;
  v_claims := auth.jwt();
  select u.id, jsonb_build_object('id', u.id, 'email', u.email, 'first_name', u.first_name, 'last_name', u.last_name,
                                  'status', u.status)
  into v_uid, v_user
  from public.user_identities i
  join public.users u on u.id = i.user_id
  where i.issuer = v_claims ->> 'iss'
    and i.subject = v_claims ->> 'sub'
    and u.status = 'active';
  v_ctx := jsonb_build_object(
    'user_id', v_uid,
    -- What the functions show of the caller (shared/auth/context.ts): no second read.
    'user', v_user,
    'platform_admin', v_uid is not null and exists (select 1 from public.platform_admins p where p.user_id = v_uid),
    'active_tenant_id', private.active_tenant_id(),
    -- tenant id → [role, tenant status, tenant name, tenant slug]; deleted tenants are
    -- gone for members.
    'memberships', coalesce((
      select jsonb_object_agg(m.tenant_id, jsonb_build_array(m.role, t.status, t.name, t.slug))
      from public.memberships m join public.tenants t on t.id = m.tenant_id
      where m.user_id = v_uid and t.status <> 'deleted'
    ), '{}'::jsonb));
  perform set_config('private.caller_context', v_ctx::text, true);
  perform set_config('private.caller_context_key', v_key, true);
  return v_ctx;
end;
$$;
revoke all on function private.caller_context() from public, anon;
grant execute on function private.caller_context() to authenticated, service_role;

-- Drops the context after a change to what it holds (statement level: once per statement).
create function private.forget_caller_context() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('private.caller_context', '', true);
  return null;
end;
$$;
revoke all on function private.forget_caller_context() from public, anon, authenticated, service_role;
create trigger forget_caller_context after insert or update or delete on public.memberships
  for each statement execute function private.forget_caller_context();
create trigger forget_caller_context after insert or update or delete on public.tenants
  for each statement execute function private.forget_caller_context();
create trigger forget_caller_context after insert or update or delete on public.platform_admins
  for each statement execute function private.forget_caller_context();
create trigger forget_caller_context after insert or update or delete on public.users
  for each statement execute function private.forget_caller_context();
create trigger forget_caller_context after insert or update or delete on public.user_identities
  for each statement execute function private.forget_caller_context();
create trigger forget_caller_context after insert or update or delete on public.tenant_org_links
  for each statement execute function private.forget_caller_context();

-- Redefined (20261126100200_access_helpers.sql), the same answers from the context.
create or replace function private.current_user_id() returns uuid
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return (private.caller_context() ->> 'user_id')::uuid;
end;
$$;

create or replace function private.is_platform_admin() returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return coalesce((private.caller_context() ->> 'platform_admin')::boolean, false);
end;
$$;

create or replace function private.tenant_ids(p_min_role text, p_writable boolean default false)
returns uuid[]
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_ctx jsonb := private.caller_context();
  v_active uuid := (v_ctx ->> 'active_tenant_id')::uuid;
  v_ids uuid[];
begin
  select coalesce(array_agg(m.key::uuid), '{}') into v_ids
  from jsonb_each(v_ctx -> 'memberships') m
  where private.role_rank(m.value ->> 0) >= private.role_rank(p_min_role)
    and (not p_writable or m.value ->> 1 = 'active')
    and (v_active is null or m.key::uuid = v_active);
  return v_ids;
end;
$$;

create or replace function private.role_in(p_tenant_id uuid) returns text
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_ctx jsonb := private.caller_context();
  v_active uuid := (v_ctx ->> 'active_tenant_id')::uuid;
begin
  if coalesce((v_ctx ->> 'platform_admin')::boolean, false) then
    return 'super_admin';
  end if;
  if v_active is not null and p_tenant_id is distinct from v_active then
    return null;
  end if;
  return v_ctx -> 'memberships' -> (p_tenant_id::text) ->> 0;
end;
$$;
