-- Drift repair (issue 13 §4): the reconcile pass (shared/jobs/tasks/reconcile.ts) asks
-- each partner's connector whether the objects recorded for an active service still
-- exist (`check()`), a few services per partner per run, each at most once per
-- interval. A service whose objects are gone (an operator deleted the n8n user, the
-- Botpress bot, …) is recorded as drifted on its row — visible to the tenant's admins
-- in GET /tenants/{id}/services — announced as a `service.drift_detected` outbound
-- event, and repaired by provisioning it again (the connector's ensure re-creates what
-- is missing). Also: how many other tenants use a partner login, so removal deletes a
-- login (revokes an invitation) only where no other tenant uses it.

-- ------------------------------------------------------------------ on the service row

alter table public.tenant_services
  add column drift_detected_at timestamptz,
  add column drift_detail text check (char_length(drift_detail) <= 2000),
  add column drift_repaired_at timestamptz;
grant select (drift_detected_at, drift_detail, drift_repaired_at) on public.tenant_services to authenticated;
-- The trail renders the new timestamps as the API does (the trigger lists them).
select private.enable_audit('public.tenant_services');

-- A drifted service that is active again has been repaired.
create function private.tenant_service_drift_repaired() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if new.state = 'active' and old.state <> 'active' and new.drift_detected_at is not null
     and new.drift_repaired_at is null then
    new.drift_repaired_at := now();
  end if;
  return new;
end;
$$;
revoke all on function private.tenant_service_drift_repaired() from public, anon, authenticated;
create trigger drift_repaired before update of state on public.tenant_services
  for each row execute function private.tenant_service_drift_repaired();

-- ------------------------------------------------------------------ when each was checked

-- Off the audited row: a check every interval would otherwise write an audit row each time.
create table private.service_checks (
  tenant_id uuid not null,
  service text not null,
  checked_at timestamptz not null,
  primary key (tenant_id, service),
  foreign key (tenant_id, service) references public.tenant_services (tenant_id, service) on delete cascade
);
alter table private.service_checks enable row level security;
revoke all on private.service_checks from public, anon, authenticated;

-- The services to check now, at most p_per_service of each partner (the longest
-- unchecked first), each at most once per p_min_interval: active and wanted active, with
-- no provisioning job under way, with what a check needs (the partner ids and the sealed
-- credentials: Chatwoot's check reads the webhook with the owner's token). Marked
-- checked as they are picked, so concurrent passes never check one twice and a partner
-- that errors is not asked again at once.
create function private.drift_check_candidates(p_services text[], p_per_service int, p_min_interval interval)
returns table (tenant_id uuid, service text, external_ids jsonb, credentials_encrypted text, tenant_slug text, tenant_name text)
language sql volatile security definer
set search_path = ''
as $$
  with due as (
    select s.tenant_id, s.service, s.external_ids, s.credentials_encrypted, t.slug, t.name,
      row_number() over (partition by s.service order by c.checked_at nulls first, s.tenant_id) as rn
    from public.tenant_services s
    join public.tenants t on t.id = s.tenant_id
    left join private.service_checks c on c.tenant_id = s.tenant_id and c.service = s.service
    where s.service = any (p_services) and s.state = 'active' and s.desired_state = 'active'
      and (c.checked_at is null or c.checked_at <= now() - p_min_interval)
      and not exists (select 1 from private.jobs j
                      where j.job_key = 'provision:' || s.tenant_id || ':' || s.service and j.dead_at is null)
  ), picked as (
    insert into private.service_checks (tenant_id, service, checked_at)
    select d.tenant_id, d.service, now() from due d where d.rn <= greatest(p_per_service, 0)
    on conflict on constraint service_checks_pkey do update set checked_at = excluded.checked_at
    returning service_checks.tenant_id, service_checks.service
  )
  select d.tenant_id, d.service, d.external_ids, d.credentials_encrypted, d.slug, d.name
  from due d join picked p on p.tenant_id = d.tenant_id and p.service = d.service
  order by d.service, d.rn
$$;
revoke all on function private.drift_check_candidates(text[], int, interval) from public, anon, authenticated;
grant execute on function private.drift_check_candidates(text[], int, interval) to service_role;

-- A check found the service's objects gone: recorded on the row (still active and wanted
-- active, else a change since the check wins and nothing happens), announced as
-- `service.drift_detected`, and the service provisioned again. False when nothing was
-- recorded.
create function private.record_service_drift(p_tenant_id uuid, p_service text, p_detail text) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_s public.tenant_services;
  v_row jsonb;
begin
  update public.tenant_services set state = 'pending', drift_detected_at = now(), drift_detail = left(p_detail, 2000),
    drift_repaired_at = null
  where tenant_id = p_tenant_id and service = p_service and state = 'active' and desired_state = 'active'
  returning * into v_s;
  if not found then
    return false;
  end if;
  v_row := private.api_timestamps(to_jsonb(v_s) - 'credentials_encrypted', 'public.tenant_services'::regclass);
  perform private.emit_webhook_event(p_tenant_id, 'service.drift_detected', 'service:' || p_service,
    jsonb_build_object('type', 'service.drift_detected', 'tenant_id', p_tenant_id, 'data', v_row,
                       'occurred_at', private.api_timestamp(clock_timestamp())));
  perform private.enqueue_provisioning(p_tenant_id, p_service);
  return true;
end;
$$;
revoke all on function private.record_service_drift(uuid, text, text) from public, anon, authenticated;
grant execute on function private.record_service_drift(uuid, text, text) to service_role;

-- ------------------------------------------------------------------ shared logins

-- How many other tenants' services of a partner (not removed) record the same partner id
-- under p_key: a login several tenants share stays when one of them is removed.
create function private.partner_id_users(p_tenant_id uuid, p_service text, p_key text, p_value text) returns int
language sql stable security definer
set search_path = ''
as $$
  select count(*)::int from public.tenant_services s
  where s.service = p_service and s.tenant_id <> p_tenant_id and s.external_ids ->> p_key = p_value
    and not (s.desired_state = 'removed' and s.state = 'removed')
$$;
revoke all on function private.partner_id_users(uuid, text, text, text) from public, anon, authenticated;
grant execute on function private.partner_id_users(uuid, text, text, text) to service_role;
