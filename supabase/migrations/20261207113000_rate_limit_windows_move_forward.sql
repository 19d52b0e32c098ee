-- A write that waited into the next minute does not reset the rate-limit window (review,
-- issue 14).
--
-- A counter's window is the minute the statement began (now()), read before it waits for
-- the counter's row: a write that began at 12:00:59.99 and got the row after the 12:01
-- writes set the window back to 12:00 with one hit, and the next 12:01 write set it to
-- 12:01 with one again, forgetting the hits of the new minute so far; under load a few
-- extra writes got through at every minute's turn. A window now only moves forward, and a
-- late write counts in the newer one (a little strict, never lax); its Retry-After is the
-- time to that window's end.

-- Seconds until the window that began at p_window ends (at least one): what Retry-After
-- and RateLimit-Reset say, from the window the write counted in.
create function private.rate_limit_reset(p_window timestamptz) returns int
language sql volatile
set search_path = ''
as $$
  select greatest(1, ceil(extract(epoch from (p_window + interval '1 minute' - pg_catalog.clock_timestamp())))::int)
$$;
revoke all on function private.rate_limit_reset(timestamptz) from public, anon, authenticated;

-- Redefined (20261206050000_rate_limit_refusals_spend_only_the_caller.sql): the window
-- only moves forward.
create or replace function private.rate_limit_hit(p_claims jsonb, p_tenant_id uuid, p_tenant_name text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
declare
  v_tenant uuid := p_tenant_id;
  v_user uuid;
  v_caller text;
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
  v_tenant_limit := case when jsonb_typeof(v_limits -> 'requests_per_minute') = 'number'
                         then (v_limits ->> 'requests_per_minute')::bigint end;
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


-- Redefined (20261202100200_rate_limit_key_reads.sql): the window only moves forward; the
-- lock timeout 20261206037000 gave it, restated (a redefinition drops it).
create or replace function private.rate_limit_key_read(p_key_id uuid, p_secret_sha256 text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
declare
  v_tenant uuid;
  v_limit bigint;
  v_hits int;
  v_window timestamptz := date_trunc('minute', now());
  v_reset int;
begin
  if p_secret_sha256 is null or p_secret_sha256 !~ '^[0-9a-f]{64}$' then
    return null;
  end if;
  select k.tenant_id into v_tenant
  from private.api_key_secrets s join public.api_keys k on k.tenant_id = s.tenant_id and k.id = s.key_id
  where s.key_id = p_key_id and s.secret_sha256 = decode(p_secret_sha256, 'hex')
    and k.revoked_at is null and (k.expires_at is null or k.expires_at > now());
  if v_tenant is null then
    return null;
  end if;
  v_limit := private.tenant_limit(v_tenant, 'reads_per_minute_per_key');
  if v_limit is null then
    return null;
  end if;
  insert into private.rate_limit_counters as r (scope, key, window_start, hits)
  values ('key_read', p_key_id::text, v_window, 1)
  on conflict (scope, key) do update
    set hits = case when r.window_start >= excluded.window_start then r.hits + 1 else 1 end,
        window_start = greatest(r.window_start, excluded.window_start)
  returning r.hits, r.window_start into v_hits, v_window;
  v_reset := private.rate_limit_reset(v_window);
  return jsonb_build_object('allowed', v_hits <= v_limit, 'scope', 'key', 'limit', v_limit,
    'remaining', greatest(v_limit - v_hits, 0), 'reset', v_reset);
end;
$$;

