-- The plan's `api_keys` limit (issue 15), enforced where the write happens: every
-- unrevoked key counts; creating one past the limit is a 403 plan_limit_reached from
-- private.use_quota, and revoking one gives its place back (a revoked key stays
-- revoked: the API never un-revokes). GET /tenants/{id}/usage shows the count.

create function private.count_api_key() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    if new.revoked_at is null then
      perform private.use_quota(new.tenant_id, 'api_keys', 1);
    end if;
  elsif old.revoked_at is null and new.revoked_at is not null then
    perform private.use_quota(old.tenant_id, 'api_keys', -1);
  end if;
  return null;
end;
$$;
revoke all on function private.count_api_key() from public, anon, authenticated;
create trigger count_usage after insert or update of revoked_at on public.api_keys
  for each row execute function private.count_api_key();

-- What is there today.
insert into private.usage_counters (tenant_id, metric, period, used)
select tenant_id, 'api_keys', date '1970-01-01', count(*) from public.api_keys where revoked_at is null group by tenant_id
on conflict (tenant_id, metric, period) do update set used = excluded.used;

-- As before (20261202071000_usage_quotas.sql), with the api_keys count among the metrics.
create or replace function private.tenant_usage(p_tenant_id uuid) returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_limits jsonb;
begin
  if p_tenant_id = any (private.tenant_ids('admin')) or private.is_platform_admin() then
    v_limits := private.tenant_entitlements(p_tenant_id) -> 'limits';
  end if;
  if v_limits is null then
    raise exception 'Tenant not found' using errcode = 'PT404', detail = '{"code": "not_found"}';
  end if;
  return jsonb_build_object(
    'tenant_id', p_tenant_id,
    'month', to_char(private.usage_period('tickets_per_month'), 'YYYY-MM'),
    'metrics', (
      select jsonb_object_agg(m.metric, jsonb_build_object(
        'used', coalesce((select u.used from private.usage_counters u
                          where u.tenant_id = p_tenant_id and u.metric = m.metric and u.period = private.usage_period(m.metric)), 0),
        'limit', v_limits -> m.metric))
      from (select k as metric from jsonb_object_keys(v_limits) k
            where k not in ('requests_per_minute', 'requests_per_minute_per_caller', 'voice_agents')
            union select 'call_minutes') m));
end;
$$;
revoke all on function private.tenant_usage(uuid) from public, anon;
grant execute on function private.tenant_usage(uuid) to authenticated, service_role;
