-- Usage and quotas (issue 15): each tenant's usage, counted by triggers in the same
-- transaction as the change (exact, and one row to read), and the plan's limits
-- enforced where the write happens: private.use_quota adds to the counter and refuses
-- with 403 plan_limit_reached ({limit, max, usage, requested} in details) when the
-- new total would pass the limit, so the write and its count commit or roll back
-- together.
--
-- Concurrency: the counter is one row per (tenant, metric, period), and the upsert
-- locks it until the writer's transaction ends; a concurrent writer waits, then reads
-- the committed total (read committed re-reads the row on conflict), so 50 concurrent
-- creates at the limit never overshoot it (tests/functions/plans.test.ts). Lock order:
-- a counter row is locked after the row being written (an after-row trigger), and a
-- membership locks 'members' before 'agents'; a ticket's counter comes after
-- private.ticket_counters (next_ticket_number runs before insert).
--
-- Metrics (limits of the same name in private.plans): members, agents (members whose
-- role is agent or admin), tickets_per_month, storage_bytes (attachments, counted when
-- the upload is announced), webhook_endpoints; call_minutes is counted per month for the
-- voice work (private.use_quota(tenant, 'call_minutes', n)) and limited by no plan yet.
-- A decrement is never refused.

create table private.usage_counters (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  metric text not null check (metric ~ '^[a-z][a-z0-9_]{0,62}$'),
  -- The first day of the month for monthly metrics, 1970-01-01 for running totals.
  period date not null default '1970-01-01',
  used bigint not null default 0,
  updated_at timestamptz not null default now(),
  primary key (tenant_id, metric, period)
);
revoke all on private.usage_counters from public, anon, authenticated;

-- Monthly metrics restart every calendar month (UTC).
create function private.usage_period(p_metric text) returns date
language sql stable
set search_path = ''
as $$
  select case when p_metric in ('tickets_per_month', 'call_minutes')
    then date_trunc('month', now() at time zone 'UTC')::date else date '1970-01-01' end
$$;
revoke all on function private.usage_period(text) from public, anon, authenticated;

-- Adds p_delta to the tenant's metric; an increase that would pass the tenant's limit
-- raises 403 plan_limit_reached and changes nothing. Returns the new total. For
-- triggers and definer code only.
create function private.use_quota(p_tenant_id uuid, p_metric text, p_delta bigint) returns bigint
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_period date := private.usage_period(p_metric);
  v_used bigint;
  v_max bigint;
begin
  if p_delta = 0 then
    return null;
  end if;
  if p_delta < 0 then
    -- No insert: a tenant being deleted takes its counters with it.
    update private.usage_counters u set used = greatest(u.used + p_delta, 0), updated_at = now()
    where u.tenant_id = p_tenant_id and u.metric = p_metric and u.period = v_period
    returning u.used into v_used;
    return v_used;
  end if;
  insert into private.usage_counters as u (tenant_id, metric, period, used) values (p_tenant_id, p_metric, v_period, p_delta)
  on conflict (tenant_id, metric, period) do update set used = u.used + excluded.used, updated_at = now()
  returning u.used into v_used;
  v_max := private.tenant_limit(p_tenant_id, p_metric);
  if v_max is not null and v_used > v_max then
    raise exception 'The plan''s limit of % % is reached', v_max, replace(p_metric, '_', ' ')
      using errcode = 'PT403',
            detail = jsonb_build_object('code', 'plan_limit_reached', 'details', jsonb_build_object(
              'limit', p_metric, 'max', v_max, 'usage', v_used - p_delta, 'requested', p_delta,
              'plan', (select t.plan from public.tenants t where t.id = p_tenant_id)))::text;
  end if;
  return v_used;
end;
$$;
revoke all on function private.use_quota(uuid, text, bigint) from public, anon, authenticated;

-- ------------------------------------------------------------------ the counting triggers

create function private.count_membership() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_old_staff boolean := tg_op <> 'INSERT' and old.role in ('agent', 'admin');
  v_new_staff boolean := tg_op <> 'DELETE' and new.role in ('agent', 'admin');
begin
  if tg_op = 'INSERT' then
    perform private.use_quota(new.tenant_id, 'members', 1);
  elsif tg_op = 'DELETE' then
    perform private.use_quota(old.tenant_id, 'members', -1);
  end if;
  if v_new_staff and not v_old_staff then
    perform private.use_quota(new.tenant_id, 'agents', 1);
  elsif v_old_staff and not v_new_staff then
    perform private.use_quota(old.tenant_id, 'agents', -1);
  end if;
  return null;
end;
$$;
revoke all on function private.count_membership() from public, anon, authenticated;
create trigger count_usage after insert or delete or update of role on public.memberships
  for each row execute function private.count_membership();

create function private.count_ticket() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.use_quota(new.tenant_id, 'tickets_per_month', 1);
  return null;
end;
$$;
revoke all on function private.count_ticket() from public, anon, authenticated;
create trigger count_usage after insert on public.tickets
  for each row execute function private.count_ticket();

create function private.count_attachment() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.use_quota(new.tenant_id, 'storage_bytes', new.size_bytes);
  elsif tg_op = 'DELETE' then
    perform private.use_quota(old.tenant_id, 'storage_bytes', -old.size_bytes);
  elsif new.size_bytes <> old.size_bytes then
    perform private.use_quota(new.tenant_id, 'storage_bytes', new.size_bytes - old.size_bytes);
  end if;
  return null;
end;
$$;
revoke all on function private.count_attachment() from public, anon, authenticated;
create trigger count_usage after insert or delete or update of size_bytes on public.attachments
  for each row execute function private.count_attachment();

create function private.count_webhook_endpoint() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' then
    perform private.use_quota(new.tenant_id, 'webhook_endpoints', 1);
  else
    perform private.use_quota(old.tenant_id, 'webhook_endpoints', -1);
  end if;
  return null;
end;
$$;
revoke all on function private.count_webhook_endpoint() from public, anon, authenticated;
create trigger count_usage after insert or delete on public.webhook_endpoints
  for each row execute function private.count_webhook_endpoint();

-- ------------------------------------------------------------------ features on the write path

-- An outbound webhook endpoint needs the outbound_webhooks feature; a partner service
-- the feature of its name (chatwoot, botpress, n8n, odoo); SLA business hours the
-- sla_business_hours feature. Removing or pausing is always allowed.
create function private.require_feature_on_write() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  case tg_table_name
    when 'webhook_endpoints' then
      perform private.assert_feature(new.tenant_id, 'outbound_webhooks');
    when 'tenant_services' then
      if new.desired_state = 'active' and (tg_op = 'INSERT' or old.desired_state <> 'active') then
        perform private.assert_feature(new.tenant_id, new.service);
      end if;
    when 'sla_policies' then
      if new.business_hours is not null and (tg_op = 'INSERT' or old.business_hours is distinct from new.business_hours) then
        perform private.assert_feature(new.tenant_id, 'sla_business_hours');
      end if;
  end case;
  return new;
end;
$$;
revoke all on function private.require_feature_on_write() from public, anon, authenticated;
create trigger require_feature before insert on public.webhook_endpoints
  for each row execute function private.require_feature_on_write();
create trigger require_feature before insert or update of desired_state on public.tenant_services
  for each row execute function private.require_feature_on_write();
create trigger require_feature before insert or update of business_hours on public.sla_policies
  for each row execute function private.require_feature_on_write();

-- ------------------------------------------------------------------ reading usage

-- The tenant's usage beside its limits: {metric: {used, limit}} for every limit the plan
-- names and call_minutes, monthly ones for the current month, plus the period's start.
-- For the tenant's admins and platform admins; another tenant's is the same 404 as none.
create function private.tenant_usage(p_tenant_id uuid) returns jsonb
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
            where k not in ('requests_per_minute', 'requests_per_minute_per_caller', 'api_keys', 'voice_agents')
            union select 'call_minutes') m));
end;
$$;
revoke all on function private.tenant_usage(uuid) from public, anon;
grant execute on function private.tenant_usage(uuid) to authenticated, service_role;

-- ------------------------------------------------------------------ what is there today

insert into private.usage_counters (tenant_id, metric, period, used)
select tenant_id, 'members', date '1970-01-01', count(*) from public.memberships group by tenant_id
union all
select tenant_id, 'agents', date '1970-01-01', count(*) from public.memberships where role in ('agent', 'admin') group by tenant_id
union all
select tenant_id, 'tickets_per_month', date_trunc('month', now() at time zone 'UTC')::date, count(*)
from public.tickets where created_at >= date_trunc('month', now() at time zone 'UTC') at time zone 'UTC' group by tenant_id
union all
select tenant_id, 'storage_bytes', date '1970-01-01', sum(size_bytes) from public.attachments group by tenant_id
union all
select tenant_id, 'webhook_endpoints', date '1970-01-01', count(*) from public.webhook_endpoints group by tenant_id;
