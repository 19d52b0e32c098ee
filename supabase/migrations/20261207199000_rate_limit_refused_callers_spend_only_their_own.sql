-- A write the route will refuse its caller spends only the caller's own window, never the
-- tenant's (review of the rate limits).
--
-- A write was counted before the request's standing check, and private.rate_limit_hit
-- asked only whether the caller was a member: customers sending writes to admin-only
-- routes (403 forbidden) used up the tenant's window, and two of them, each within their
-- own per-caller limit, kept every staff and admin write of a starter tenant at 429 for
-- as long as they liked. In a suspended tenant a leaked key's refused writes (403
-- tenant_suspended) spent it too, and the admin's revocation of that very key, which is
-- allowed while suspended, was then refused 429.
--
-- The count is now told the route's minimum role and whether the write takes access away
-- (revoking a key). The tenant's window is spent only by a caller whose role ranks high
-- enough in a writable tenant (platform admins: any), as private.tenant_access will
-- decide; a write taking access away never spends it (an admin must be able to revoke a
-- key whatever else is going on); everyone still spends their own window, so no one
-- sends refused writes unbounded. The three-argument form is dropped: every caller names
-- the route's need.

drop function private.rate_limit_hit(jsonb, uuid, text);

-- Redefined (20261207113000_rate_limit_windows_move_forward.sql): the route's need decides
-- whether the tenant's window is spent. Keeps the lock timeout.
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
    returning r.hits, greatest(r.window_start, v_counted) into v_tenant_hits, v_counted;
  end if;

  -- Now and then, forget callers who have not written for an hour.
  if random() < 0.001 then
    delete from private.rate_limit_counters r where r.window_start < now() - interval '1 hour';
  end if;

  v_reset := private.rate_limit_reset(v_counted);
  if v_caller_limit is not null and (v_tenant_limit is null or v_caller_limit - v_caller_hits < v_tenant_limit - v_tenant_hits) then
    return jsonb_build_object('allowed', v_caller_hits <= v_caller_limit, 'scope', 'caller', 'limit', v_caller_limit,
      'remaining', greatest(v_caller_limit - v_caller_hits, 0), 'reset', v_reset);
  end if;
  return jsonb_build_object('allowed', v_tenant_hits <= v_tenant_limit, 'scope', 'tenant', 'limit', v_tenant_limit,
    'remaining', greatest(v_tenant_limit - v_tenant_hits, 0), 'reset', v_reset);
end;
$$;
revoke all on function private.rate_limit_hit(jsonb, uuid, text, text, boolean) from public, anon, authenticated;
