-- Rate limits (issue 15): every write a person makes counts against two fixed one-minute
-- windows, the tenant's (requests_per_minute of its plan) and the caller's within the
-- tenant (requests_per_minute_per_caller), so a noisy tenant cannot starve the rest and
-- one busy caller cannot starve their colleagues. Counted in Postgres, so the limits
-- hold across every function instance.
--
-- The functions call private.rate_limit_hit as their own login role in one autocommit
-- statement before the request's transaction opens (shared/rate-limit.ts): the
-- counter's row lock lasts that statement only, never a whole request. The table is
-- unlogged (no WAL: a crash forgets at most a minute of counts) and holds one row per
-- tenant and per tenant member who wrote, each reset when its minute is over.

create unlogged table private.rate_limit_counters (
  -- 'tenant' (key: its id) or 'caller' (key: tenant id / user id).
  scope text not null check (scope in ('tenant', 'caller')),
  key text not null check (char_length(key) <= 200),
  window_start timestamptz not null,
  hits int not null,
  primary key (scope, key)
);
create index rate_limit_counters_window_idx on private.rate_limit_counters (window_start);
revoke all on private.rate_limit_counters from public, anon, authenticated;

-- One write by the caller whose claims these are, in the tenant the path names
-- (p_tenant_id) or else the request's (private.request_tenant_id with X-Tenant-Id as
-- p_tenant_name). Null when nothing is limited: no active user, no tenant, a tenant the
-- caller is not a member of (the request is refused anyway, and must not burn that
-- tenant's budget), or no limit in the plan. Else the binding window (the one with the
-- fewest requests left): {allowed, scope, limit, remaining, reset (seconds until the
-- window ends)}. Not executable by API roles.
create function private.rate_limit_hit(p_claims jsonb, p_tenant_id uuid, p_tenant_name text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_tenant uuid := p_tenant_id;
  v_user uuid;
  v_window timestamptz := date_trunc('minute', now());
  v_tenant_limit bigint;
  v_caller_limit bigint;
  v_tenant_hits int;
  v_caller_hits int;
  v_reset int;
begin
  perform set_config('request.jwt.claims', p_claims::text, true);
  v_user := private.current_user_id();
  if v_user is null then
    return null;
  end if;
  if v_tenant is null then
    begin
      v_tenant := private.request_tenant_id(p_tenant_name);
    exception when others then
      return null; -- the request's own tenant check answers for it
    end;
  end if;
  if v_tenant is null or not (v_tenant = any (private.tenant_ids('user')) or private.is_platform_admin()) then
    return null;
  end if;
  v_tenant_limit := private.tenant_limit(v_tenant, 'requests_per_minute');
  v_caller_limit := private.tenant_limit(v_tenant, 'requests_per_minute_per_caller');
  if v_tenant_limit is null and v_caller_limit is null then
    return null;
  end if;

  -- Tenant row first, then the caller's: one lock order for every writer.
  with hit as (
    insert into private.rate_limit_counters as r (scope, key, window_start, hits)
    values ('tenant', v_tenant::text, v_window, 1), ('caller', v_tenant::text || '/' || v_user::text, v_window, 1)
    on conflict (scope, key) do update
      set hits = case when r.window_start = excluded.window_start then r.hits + 1 else 1 end,
          window_start = excluded.window_start
    returning r.scope, r.hits
  )
  select max(h.hits) filter (where h.scope = 'tenant'), max(h.hits) filter (where h.scope = 'caller')
  into v_tenant_hits, v_caller_hits
  from hit h;

  -- Now and then, forget callers who have not written for an hour.
  if random() < 0.001 then
    delete from private.rate_limit_counters r where r.window_start < now() - interval '1 hour';
  end if;

  v_reset := greatest(1, ceil(extract(epoch from (v_window + interval '1 minute' - clock_timestamp())))::int);
  if v_caller_limit is not null and (v_tenant_limit is null or v_caller_limit - v_caller_hits < v_tenant_limit - v_tenant_hits) then
    return jsonb_build_object('allowed', v_caller_hits <= v_caller_limit, 'scope', 'caller', 'limit', v_caller_limit,
      'remaining', greatest(v_caller_limit - v_caller_hits, 0), 'reset', v_reset);
  end if;
  return jsonb_build_object('allowed', v_tenant_hits <= v_tenant_limit, 'scope', 'tenant', 'limit', v_tenant_limit,
    'remaining', greatest(v_tenant_limit - v_tenant_hits, 0), 'reset', v_reset);
end;
$$;
revoke all on function private.rate_limit_hit(jsonb, uuid, text) from public, anon, authenticated;
