-- tenant_ids() without a query (issue 12).
--
-- Measured in one session (a DO loop, so no round trips): with the caller context cached,
-- tenant_ids() still took ~66 µs a call — a query over the context's memberships calling
-- private.role_rank() per row (a SQL function with a SET clause is never inlined). Every
-- policy calls it, so a one-statement request (PostgREST's shape) paid more with the
-- context than before it (~620 against ~430 µs for a team read in a fresh transaction).
-- The context now also keeps the six lists tenant_ids() answers — per minimum role
-- (user, agent, admin), all or writable only, narrowed to the active tenant — computed
-- once with it; tenant_ids() reads one, with expressions only.

-- Redefined (20261201095000_machine_path_speed.sql): also the tenant lists.
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
  select u.id, jsonb_build_object('id', u.id, 'email', u.email, 'first_name', u.first_name, 'last_name', u.last_name,
                                  'status', u.status)
  into v_uid, v_user
  from public.user_identities i
  join public.users u on u.id = i.user_id
  where i.issuer = v_claims ->> 'iss'
    and i.subject = v_claims ->> 'sub'
    and u.status = 'active';
  -- tenant id → [role, tenant status, tenant name, tenant slug], and the tenant lists by
  -- minimum role (ranks: user 1, agent 2, admin 3), narrowed to the active tenant; deleted
  -- tenants are gone for members, writable ones are active.
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
  where m.user_id = v_uid and t.status <> 'deleted';
  v_ctx := jsonb_build_object(
    'user_id', v_uid,
    -- What the functions show of the caller (shared/auth/context.ts): no second read.
    'user', v_user,
    'platform_admin', v_uid is not null and exists (select 1 from public.platform_admins p where p.user_id = v_uid),
    'active_tenant_id', v_active,
    'memberships', v_lists.memberships,
    -- tenant_ids(min_role, writable)'s answers, as array literals.
    'tenant_ids', jsonb_build_object(
      'user', v_lists.user_all::text, 'user_w', v_lists.user_w::text,
      'agent', v_lists.agent_all::text, 'agent_w', v_lists.agent_w::text,
      'admin', v_lists.admin_all::text, 'admin_w', v_lists.admin_w::text));
  perform set_config('private.caller_context', v_ctx::text, true);
  perform set_config('private.caller_context_key', v_key, true);
  return v_ctx;
end;
$$;

-- Redefined (20261201094000_caller_context.sql): one of the lists the context keeps. A
-- role ranked above admin (or unknown) has none.
create or replace function private.tenant_ids(p_min_role text, p_writable boolean default false)
returns uuid[]
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return coalesce(
    private.caller_context() -> 'tenant_ids' ->> (p_min_role || case when p_writable then '_w' else '' end),
    '{}')::uuid[];
end;
$$;
