-- Audit and machine paths at speed (issue 12), measured by tests/bench/audit.bench.ts.
--
-- * private.caller_context (20261201094000_caller_context.sql) built a context even with
--   no claims at all — every statement of a trusted machine path (the job runner,
--   verified webhooks, migrations) whose audit trigger asks for the actor looked for a
--   user it could never find. With no claims it now answers "nobody" at once.
-- * private.api_timestamps (20261201093000_api_timestamps.sql) was a SQL function with a
--   SET clause: Postgres plans such a function again on every call, and the audit trail
--   calls it twice per audited row. As PL/pgSQL its catalog query keeps one plan per
--   connection.

-- Redefined: no claims, no lookup.
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
  v_ctx jsonb;
begin
  if v_cached is not null and v_cached <> '' and current_setting('private.caller_context_key', true) = v_key then
    return v_cached::jsonb;
  end if;
  -- No claims (a trusted machine path, a migration, a trigger fired by one): nobody.
  if v_key = '|' then
    return '{"user_id": null, "user": null, "platform_admin": false, "active_tenant_id": null, "memberships": {}}'::jsonb;
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

-- Redefined: the same rendering, planned once per connection.
create or replace function private.api_timestamps(p_row jsonb, p_table regclass) returns jsonb
language plpgsql stable
set search_path = ''
as $$
declare
  v_times jsonb;
begin
  if jsonb_typeof(p_row) is distinct from 'object' then
    return p_row;
  end if;
  select jsonb_object_agg(a.attname, private.api_timestamp((p_row ->> a.attname)::timestamptz)) into v_times
  from pg_catalog.pg_attribute a
  where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
    and a.atttypid = 'pg_catalog.timestamptz'::pg_catalog.regtype
    and jsonb_typeof(p_row -> a.attname) = 'string';
  return p_row || coalesce(v_times, '{}'::jsonb);
end;
$$;
