-- Plans as data (issue 15): each tier's limits and features, a super-admin's per-tenant
-- overrides of either, and tenant feature flags (a boolean or a variant name) for
-- gradual roll-outs. private.entitlements_of(tenant) is what a tenant may do now: the
-- plan's values with the overrides on top, and its flags. Usage counting and quota
-- enforcement are the next concern's (usage_quotas), rate limits the one after.
--
-- The tables are in the private schema: plans are the platform's catalogue (no tenant
-- owns them), overrides and flags are set only by super-admins through
-- private.set_tenant_entitlements. API roles read them through the definer functions
-- below, which check the caller's right to the tenant first.

-- ------------------------------------------------------------------ tables

-- Limits: metric → a non-negative integer, or JSON null for no limit. Features:
-- name → boolean. Every plan names the same keys (checked by the trigger below), so a
-- key unknown to the catalogue is refused in an override.
create table private.plans (
  id text primary key check (id ~ '^[a-z][a-z0-9_]{1,30}$'),
  name text not null check (char_length(name) between 1 and 100),
  rank int not null unique,
  limits jsonb not null check (jsonb_typeof(limits) = 'object'),
  features jsonb not null check (jsonb_typeof(features) = 'object'),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
comment on table private.plans is 'Plan tiers: limits (null = unlimited) and features; tenants.plan names one.';

create table private.tenant_plan_overrides (
  tenant_id uuid primary key references public.tenants (id) on delete cascade,
  limits jsonb not null default '{}'::jsonb check (jsonb_typeof(limits) = 'object'),
  features jsonb not null default '{}'::jsonb check (jsonb_typeof(features) = 'object'),
  updated_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index tenant_plan_overrides_updated_by_idx on private.tenant_plan_overrides (updated_by);

create table private.tenant_feature_flags (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  flag text not null check (flag ~ '^[a-z][a-z0-9_.-]{0,62}$'),
  -- true/false, or the name of a variant.
  value jsonb not null check (jsonb_typeof(value) = 'boolean'
    or (jsonb_typeof(value) = 'string' and char_length(value #>> '{}') between 1 and 100)),
  updated_by uuid references public.users (id) on delete set null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, flag)
);
create index tenant_feature_flags_updated_by_idx on private.tenant_feature_flags (updated_by);

create trigger set_updated_at before update on private.plans
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on private.tenant_plan_overrides
  for each row execute function private.set_updated_at();
create trigger set_updated_at before update on private.tenant_feature_flags
  for each row execute function private.set_updated_at();

revoke all on private.plans, private.tenant_plan_overrides, private.tenant_feature_flags from public, anon, authenticated;

-- ------------------------------------------------------------------ the catalogue

insert into private.plans (id, name, rank, limits, features) values
  ('starter', 'Starter', 1,
   '{"members": 250, "agents": 50, "tickets_per_month": 10000, "storage_bytes": 5368709120, "webhook_endpoints": 10,
     "api_keys": 5, "voice_agents": 0, "requests_per_minute": 600, "requests_per_minute_per_caller": 300}',
   '{"voice": false, "knowledge_base": false, "chatwoot": true, "botpress": true, "n8n": true, "odoo": true,
     "sla_business_hours": true, "outbound_webhooks": true}'),
  ('pro', 'Pro', 2,
   '{"members": 2500, "agents": 500, "tickets_per_month": 250000, "storage_bytes": 107374182400, "webhook_endpoints": 50,
     "api_keys": 50, "voice_agents": 10, "requests_per_minute": 3000, "requests_per_minute_per_caller": 1000}',
   '{"voice": true, "knowledge_base": true, "chatwoot": true, "botpress": true, "n8n": true, "odoo": true,
     "sla_business_hours": true, "outbound_webhooks": true}'),
  ('enterprise', 'Enterprise', 3,
   '{"members": null, "agents": null, "tickets_per_month": null, "storage_bytes": null, "webhook_endpoints": null,
     "api_keys": null, "voice_agents": null, "requests_per_minute": 20000, "requests_per_minute_per_caller": 5000}',
   '{"voice": true, "knowledge_base": true, "chatwoot": true, "botpress": true, "n8n": true, "odoo": true,
     "sla_business_hours": true, "outbound_webhooks": true}');

-- Every plan names the same limits and features, with values of the right type.
create function private.check_plan_keys() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_ref private.plans;
begin
  if exists (select 1 from jsonb_each(new.limits) l
             where not (jsonb_typeof(l.value) = 'null' or (jsonb_typeof(l.value) = 'number' and (l.value)::numeric >= 0
                        and (l.value)::numeric = trunc((l.value)::numeric))))
     or exists (select 1 from jsonb_each(new.features) f where jsonb_typeof(f.value) <> 'boolean') then
    raise exception 'plan limits are non-negative integers or null, features booleans' using errcode = '23514';
  end if;
  select * into v_ref from private.plans p where p.id <> new.id order by p.rank limit 1;
  if found and ((select array_agg(k order by k) from jsonb_object_keys(new.limits) k)
                  is distinct from (select array_agg(k order by k) from jsonb_object_keys(v_ref.limits) k)
                or (select array_agg(k order by k) from jsonb_object_keys(new.features) k)
                  is distinct from (select array_agg(k order by k) from jsonb_object_keys(v_ref.features) k)) then
    raise exception 'every plan names the same limits and features' using errcode = '23514';
  end if;
  return new;
end;
$$;
revoke all on function private.check_plan_keys() from public, anon, authenticated;
create trigger check_plan_keys before insert or update on private.plans
  for each row execute function private.check_plan_keys();

-- ------------------------------------------------------------------ effective entitlements

-- What the tenant may do: {plan, limits, features, flags, overridden: {limits, features}}.
-- Unchecked: for triggers and definer code, never executable by API roles (they call
-- entitlements_of). Null for a tenant that does not exist.
create function private.tenant_entitlements(p_tenant_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v jsonb;
begin
  select jsonb_build_object(
    'plan', t.plan,
    'limits', p.limits || coalesce(o.limits, '{}'::jsonb),
    'features', p.features || coalesce(o.features, '{}'::jsonb),
    'flags', coalesce((select jsonb_object_agg(f.flag, f.value order by f.flag)
                       from private.tenant_feature_flags f where f.tenant_id = t.id), '{}'::jsonb),
    'overridden', jsonb_build_object(
      'limits', coalesce((select jsonb_agg(k order by k) from jsonb_object_keys(o.limits) k), '[]'::jsonb),
      'features', coalesce((select jsonb_agg(k order by k) from jsonb_object_keys(o.features) k), '[]'::jsonb)))
  into v
  from public.tenants t
  join private.plans p on p.id = t.plan
  left join private.tenant_plan_overrides o on o.tenant_id = t.id
  where t.id = p_tenant_id;
  return v;
end;
$$;
revoke all on function private.tenant_entitlements(uuid) from public, anon, authenticated;

-- One limit of the tenant: the override's, else the plan's; null = unlimited (also for
-- a metric no plan names). Unchecked, for the quota and rate-limit code.
create function private.tenant_limit(p_tenant_id uuid, p_limit text) returns bigint
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v jsonb;
begin
  select case when o.limits ? p_limit then o.limits -> p_limit else p.limits -> p_limit end into v
  from public.tenants t
  join private.plans p on p.id = t.plan
  left join private.tenant_plan_overrides o on o.tenant_id = t.id
  where t.id = p_tenant_id;
  return case when jsonb_typeof(v) = 'number' then (v)::bigint end;
end;
$$;
revoke all on function private.tenant_limit(uuid, text) from public, anon, authenticated;

-- Whether the tenant's plan (or an override) includes the feature. Unchecked.
create function private.tenant_has_feature(p_tenant_id uuid, p_feature text) returns boolean
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v jsonb;
begin
  select case when o.features ? p_feature then o.features -> p_feature else p.features -> p_feature end into v
  from public.tenants t
  join private.plans p on p.id = t.plan
  left join private.tenant_plan_overrides o on o.tenant_id = t.id
  where t.id = p_tenant_id;
  return coalesce(v = 'true'::jsonb, false);
end;
$$;
revoke all on function private.tenant_has_feature(uuid, text) from public, anon, authenticated;

-- Raises 403 feature_not_in_plan unless the tenant has the feature. For triggers (the
-- write path) and, through require_feature, for the routes that declare a feature.
create function private.assert_feature(p_tenant_id uuid, p_feature text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not private.tenant_has_feature(p_tenant_id, p_feature) then
    raise exception 'The tenant''s plan does not include %', p_feature
      using errcode = 'PT403',
            detail = jsonb_build_object('code', 'feature_not_in_plan', 'details', jsonb_build_object(
              'feature', p_feature, 'plan', (select t.plan from public.tenants t where t.id = p_tenant_id)))::text;
  end if;
end;
$$;
revoke all on function private.assert_feature(uuid, text) from public, anon, authenticated;

-- Whether the caller may read the tenant's entitlements: a member, or a platform admin.
-- Another tenant's is the same 404 as one that does not exist.
create function private.entitlements_of(p_tenant_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v jsonb;
begin
  if p_tenant_id = any (private.tenant_ids('user')) or private.is_platform_admin() then
    v := private.tenant_entitlements(p_tenant_id);
  end if;
  if v is null then
    raise exception 'Tenant not found' using errcode = 'PT404', detail = '{"code": "not_found"}';
  end if;
  return v;
end;
$$;
revoke all on function private.entitlements_of(uuid) from public, anon;
grant execute on function private.entitlements_of(uuid) to authenticated, service_role;

-- A route's feature guard: the caller's tenant (member or platform admin) must have the
-- feature; another tenant's is the same 404 as none. A name the catalogue does not know
-- passes (the route's own validation answers for it).
create function private.require_feature(p_tenant_id uuid, p_feature text) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if not exists (select 1 from private.plans p where p.features ? p_feature) then
    return;
  end if;
  if not (p_tenant_id = any (private.tenant_ids('user')) or private.is_platform_admin())
     or not exists (select 1 from public.tenants t where t.id = p_tenant_id) then
    raise exception 'Tenant not found' using errcode = 'PT404', detail = '{"code": "not_found"}';
  end if;
  perform private.assert_feature(p_tenant_id, p_feature);
end;
$$;
revoke all on function private.require_feature(uuid, text) from public, anon;
grant execute on function private.require_feature(uuid, text) to authenticated, service_role;

-- The catalogue (what each tier offers is no secret): GET /tenants/plans reads it as the
-- service role, so no API role needs to execute it.
create function private.plan_catalogue() returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
begin
  return coalesce((select jsonb_agg(jsonb_build_object('id', p.id, 'name', p.name, 'limits', p.limits, 'features', p.features)
                                    order by p.rank)
                   from private.plans p), '[]'::jsonb);
end;
$$;
revoke all on function private.plan_catalogue() from public, anon, authenticated;
grant execute on function private.plan_catalogue() to service_role;

-- Super-admins change a tenant's overrides and flags: each given key is set, a JSON null
-- removes it (back to the plan's value; a flag is deleted). Keys must be ones the
-- catalogue names (flags: any well-formed name). Returns the new entitlements.
create function private.set_tenant_entitlements(p_tenant_id uuid, p_limits jsonb, p_features jsonb, p_flags jsonb)
returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ref private.plans;
  v_bad text;
begin
  if not private.is_platform_admin() then
    raise exception 'Only platform super-admins may change a tenant''s plan limits, features or flags'
      using errcode = 'PT403', detail = '{"code": "forbidden"}';
  end if;
  if not exists (select 1 from public.tenants t where t.id = p_tenant_id) then
    raise exception 'Tenant not found' using errcode = 'PT404', detail = '{"code": "not_found"}';
  end if;
  p_limits := coalesce(p_limits, '{}'::jsonb);
  p_features := coalesce(p_features, '{}'::jsonb);
  p_flags := coalesce(p_flags, '{}'::jsonb);
  select * into v_ref from private.plans p order by p.rank limit 1;
  select string_agg(k, ', ' order by k) into v_bad
  from (select l.key as k from jsonb_each(p_limits) l
        where not v_ref.limits ? l.key
           or not (jsonb_typeof(l.value) = 'null' or (jsonb_typeof(l.value) = 'number' and (l.value)::numeric >= 0
                   and (l.value)::numeric = trunc((l.value)::numeric)))
        union all
        select f.key from jsonb_each(p_features) f
        where not v_ref.features ? f.key or jsonb_typeof(f.value) not in ('boolean', 'null')) x;
  if v_bad is not null then
    raise exception 'Unknown limit or feature, or a value of the wrong type: %', v_bad
      using errcode = 'PT400', detail = jsonb_build_object('code', 'invalid_entitlement', 'details',
        jsonb_build_object('fields', (select jsonb_agg(jsonb_build_object('field', k, 'message', 'is not a known limit or feature, or has the wrong type'))
                                      from unnest(string_to_array(v_bad, ', ')) k)))::text;
  end if;

  if p_limits <> '{}'::jsonb or p_features <> '{}'::jsonb then
    insert into private.tenant_plan_overrides as o (tenant_id, updated_by) values (p_tenant_id, private.current_user_id())
    on conflict (tenant_id) do nothing;
    update private.tenant_plan_overrides o set
      -- A null removes the key: the override is the old one minus nulls' keys plus the rest.
      limits = (o.limits - array(select l.key from jsonb_each(p_limits) l where jsonb_typeof(l.value) = 'null'))
               || jsonb_strip_nulls(p_limits),
      features = (o.features - array(select f.key from jsonb_each(p_features) f where jsonb_typeof(f.value) = 'null'))
                 || jsonb_strip_nulls(p_features),
      updated_by = private.current_user_id()
    where o.tenant_id = p_tenant_id;
  end if;

  delete from private.tenant_feature_flags f
  where f.tenant_id = p_tenant_id and f.flag in (select x.key from jsonb_each(p_flags) x where jsonb_typeof(x.value) = 'null');
  insert into private.tenant_feature_flags as f (tenant_id, flag, value, updated_by)
  select p_tenant_id, x.key, x.value, private.current_user_id()
  from jsonb_each(p_flags) x where jsonb_typeof(x.value) <> 'null'
  on conflict (tenant_id, flag) do update set value = excluded.value, updated_by = excluded.updated_by;

  return private.tenant_entitlements(p_tenant_id);
end;
$$;
revoke all on function private.set_tenant_entitlements(uuid, jsonb, jsonb, jsonb) from public, anon;
grant execute on function private.set_tenant_entitlements(uuid, jsonb, jsonb, jsonb) to authenticated, service_role;
