-- Rate limits on reads per API key (issue 15: "per tenant and per caller on write
-- endpoints, and per API key on reads"). A person's reads stay unlimited; an
-- integration polling with a key is what can flood a tenant's reads, so each key has a
-- one-minute window of its own for reads: the plan's reads_per_minute_per_key (starter
-- 600, pro 3,000, enterprise 20,000; a super-admin's override as for any limit; null =
-- unlimited). Counted like the writes (20261202072000_rate_limits.sql): one autocommit
-- statement on the pool before the request's transaction opens, in the unlogged
-- counters table, so it holds across function instances and its row lock lasts that
-- statement. A key's writes count in the write windows only.

alter table private.plans disable trigger check_plan_keys; -- every plan gains the key at once
update private.plans set limits = limits || jsonb_build_object('reads_per_minute_per_key',
  case id when 'starter' then to_jsonb(600) when 'pro' then to_jsonb(3000) when 'enterprise' then to_jsonb(20000)
          else limits -> 'requests_per_minute' end);
alter table private.plans enable trigger check_plan_keys;

alter table private.rate_limit_counters drop constraint rate_limit_counters_scope_check;
-- 'key_read': key = the API key's id.
alter table private.rate_limit_counters add constraint rate_limit_counters_scope_check
  check (scope in ('tenant', 'caller', 'key_read'));

-- One read with the key of this id and secret hash. Null when nothing is limited: a key
-- that is unknown, of another secret, revoked or expired (the request's own
-- verification answers 401 for it, and a stranger who knows a key's id cannot spend its
-- budget), or a plan without the limit. Else {allowed, scope: 'key', limit, remaining,
-- reset (seconds until the window ends)}. Not executable by API roles.
create function private.rate_limit_key_read(p_key_id uuid, p_secret_sha256 text) returns jsonb
language plpgsql volatile security definer
set search_path = ''
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
    set hits = case when r.window_start = excluded.window_start then r.hits + 1 else 1 end,
        window_start = excluded.window_start
  returning r.hits into v_hits;
  v_reset := greatest(1, ceil(extract(epoch from (v_window + interval '1 minute' - clock_timestamp())))::int);
  return jsonb_build_object('allowed', v_hits <= v_limit, 'scope', 'key', 'limit', v_limit,
    'remaining', greatest(v_limit - v_hits, 0), 'reset', v_reset);
end;
$$;
revoke all on function private.rate_limit_key_read(uuid, text) from public, anon, authenticated;
