-- A write that fails gives back the hit it spent of the tenant's window (review of the
-- rate limits, issue 14).
--
-- 20261207199000 kept refused writes out of the tenant's window by the route's declared
-- minimum role. Many routes let every member in and refuse in the handler, once the row is
-- visible (a ticket's status, assignee, merge, deletion and restoring, a macro's apply, an
-- attachment's deletion, a message naming a canned response: staff or admins only), and
-- every route refuses bad input, unknown ids and caps after the count: two customers,
-- each inside their own per-caller limit, sending POST /tickets/<any id>/status (404)
-- kept every staff, admin and API-key write of a starter tenant at 429 for as long as
-- they liked. The verdict now names the tenant's window it was counted in, and a write
-- the request does not commit (any error answer) gives that hit back
-- (private.rate_limit_refund, one statement on failure paths only); the caller's own
-- window keeps it, so no one sends failing writes unbounded.

-- Redefined (20261207199000_rate_limit_refused_callers_spend_only_their_own.sql): the
-- verdict names the tenant's window it spent (tenant_id, tenant_window). Keeps the lock
-- timeout.
create or replace function private.rate_limit_hit(
  p_claims jsonb,
  p_tenant_id uuid,
  p_tenant_name text,
  p_min_role text,
  p_takes_access_away boolean
) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
declare
  v_tenant uuid := p_tenant_id;
  v_user uuid;
  v_caller text;
  v_role text;
  v_window timestamptz := date_trunc('minute', now());
  v_limits jsonb;
  v_tenant_limit bigint;
  v_caller_limit bigint;
  v_tenant_hits int;
  v_caller_hits int;
  v_reset int;
  -- The window the counts fell in: this statement's minute, or a later one a late write
  -- counted in.
  v_counted timestamptz;
  -- The tenant's window this write was counted in (given back if the request fails).
  v_tenant_window timestamptz;
  v_spent jsonb := '{}'::jsonb;
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  v_user := private.current_user_id();
  if v_user is null then
    return null;
  end if;
  -- A key is a caller of its own: its writes do not spend its creator's budget, nor theirs its.
  v_caller := case when p_claims ->> 'iss' = 'tenant-platform:api-key' then 'key:' || (p_claims ->> 'sub') else v_user::text end;
  if v_tenant is null and p_tenant_name is null then
    v_tenant := private.request_tenant_id(null); -- raises only about a header
  elsif v_tenant is null then
    begin
      v_tenant := private.request_tenant_id(p_tenant_name);
    exception when others then
      return null; -- the request's own tenant check answers for it
    end;
  end if;
  if v_tenant is null or not (v_tenant = any (private.tenant_ids('user')) or private.is_platform_admin()) then
    return null;
  end if;
  select p.limits || coalesce(o.limits, '{}'::jsonb) into v_limits
  from public.tenants t
  join private.plans p on p.id = t.plan
  left join private.tenant_plan_overrides o on o.tenant_id = t.id
  where t.id = v_tenant;
  -- As private.tenant_access will judge the request: a role too low, or a tenant that is
  -- not writable (but for platform admins), is refused there; such a write, and one that
  -- takes access away, does not touch the tenant's window.
  v_role := private.role_in(v_tenant);
  if not p_takes_access_away and v_role is not null
     and private.role_rank(v_role) >= private.role_rank(p_min_role)
     and (v_role = 'super_admin' or v_tenant = any (private.tenant_ids('user', true))) then
    v_tenant_limit := case when jsonb_typeof(v_limits -> 'requests_per_minute') = 'number'
                           then (v_limits ->> 'requests_per_minute')::bigint end;
  end if;
  v_caller_limit := case when jsonb_typeof(v_limits -> 'requests_per_minute_per_caller') = 'number'
                         then (v_limits ->> 'requests_per_minute_per_caller')::bigint end;
  if v_tenant_limit is null and v_caller_limit is null then
    return null;
  end if;

  -- The caller's row first, then the tenant's: one lock order for every writer. A write
  -- the caller's own window refuses stops there and spends nothing of the tenant's.
  if v_caller_limit is not null then
    insert into private.rate_limit_counters as r (scope, key, window_start, hits)
    values ('caller', v_tenant::text || '/' || v_caller, v_window, 1)
    on conflict (scope, key) do update
      set hits = case when r.window_start >= excluded.window_start then r.hits + 1 else 1 end,
          window_start = greatest(r.window_start, excluded.window_start)
    returning r.hits, r.window_start into v_caller_hits, v_counted;
    if v_caller_hits > v_caller_limit then
      return jsonb_build_object('allowed', false, 'scope', 'caller', 'limit', v_caller_limit,
        'remaining', 0, 'reset', private.rate_limit_reset(v_counted));
    end if;
  end if;
  if v_tenant_limit is not null then
    insert into private.rate_limit_counters as r (scope, key, window_start, hits)
    values ('tenant', v_tenant::text, v_window, 1)
    on conflict (scope, key) do update
      set hits = case when r.window_start >= excluded.window_start then r.hits + 1 else 1 end,
          window_start = greatest(r.window_start, excluded.window_start)
    returning r.hits, r.window_start into v_tenant_hits, v_tenant_window;
    v_counted := greatest(v_tenant_window, v_counted);
    v_spent := jsonb_build_object('tenant_id', v_tenant, 'tenant_window', v_tenant_window);
  end if;

  -- Now and then, forget callers who have not written for an hour.
  if random() < 0.001 then
    delete from private.rate_limit_counters r where r.window_start < now() - interval '1 hour';
  end if;

  v_reset := private.rate_limit_reset(v_counted);
  if v_caller_limit is not null and (v_tenant_limit is null or v_caller_limit - v_caller_hits < v_tenant_limit - v_tenant_hits) then
    return jsonb_build_object('allowed', v_caller_hits <= v_caller_limit, 'scope', 'caller', 'limit', v_caller_limit,
      'remaining', greatest(v_caller_limit - v_caller_hits, 0), 'reset', v_reset) || v_spent;
  end if;
  return jsonb_build_object('allowed', v_tenant_hits <= v_tenant_limit, 'scope', 'tenant', 'limit', v_tenant_limit,
    'remaining', greatest(v_tenant_limit - v_tenant_hits, 0), 'reset', v_reset) || v_spent;
end;
$$;
revoke all on function private.rate_limit_hit(jsonb, uuid, text, text, boolean) from public, anon, authenticated;

-- Gives back one hit of a tenant's window, if that window is still the current one (a
-- later minute has started afresh: nothing to give back).
create function private.rate_limit_refund(p_tenant_id uuid, p_window timestamptz) returns void
language sql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
  update private.rate_limit_counters r set hits = r.hits - 1
  where r.scope = 'tenant' and r.key = p_tenant_id::text and r.window_start = p_window and r.hits > 0;
$$;
revoke all on function private.rate_limit_refund(uuid, timestamptz) from public, anon, authenticated;
