-- Provisioning: the work that brings each partner service to its desired state. It runs
-- on the one job queue (20261126100350_jobs.sql) as task `provision`
-- (shared/jobs/tasks/provision.ts), job key and queue `provision:<tenant>:<service>`:
-- one live job per service, and a change arriving while it runs is queued after it.
-- tenant_services keeps the domain state (desired/actual state, partner ids,
-- credentials, last error, attempts of the last run); the queue state (due time, lease,
-- backoff, dead) lives in private.jobs. The runner is the jobs function; hosted projects
-- call it by pg_cron + pg_net (20261126102100_schedules.sql), `npm start` on a timer.
-- Locks follow the rule (20261126100000_conventions.sql): the tenant_services row
-- first, the job row last.

-- ------------------------------------------------------------------ enqueueing

-- A job for the service, in its own named queue, under its job key: a pending job takes
-- the new run time; a running one keeps running and the new job waits behind it.
create function private.enqueue_provisioning(p_tenant_id uuid, p_service text, p_run_at timestamptz default now())
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_key text := 'provision:' || p_tenant_id || ':' || p_service;
begin
  perform private.add_job('provision', jsonb_build_object('tenant_id', p_tenant_id, 'service', p_service),
    v_key, coalesce(p_run_at, now()), null, v_key);
end;
$$;
revoke all on function private.enqueue_provisioning(uuid, text, timestamptz) from public, anon, authenticated;
grant execute on function private.enqueue_provisioning(uuid, text, timestamptz) to service_role;

-- Any change to what a tenant should have queues its reconciliation, in the same
-- transaction as the change.
create function private.tenant_services_enqueue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.desired_state is distinct from old.desired_state
     or new.remove_after is distinct from old.remove_after then
    perform private.enqueue_provisioning(new.tenant_id, new.service,
      case when new.desired_state = 'removed' then greatest(now(), coalesce(new.remove_after, now())) else now() end);
  end if;
  return null;
end;
$$;
revoke all on function private.tenant_services_enqueue() from public, anon, authenticated;
create trigger tenant_services_enqueue after insert or update on public.tenant_services
  for each row execute function private.tenant_services_enqueue();

-- ------------------------------------------------------------------ the worker's side

-- What the handler needs to run a job, read under the service row's lock after the
-- job's lease is checked; marks a pending or failed service `provisioning`. A removal
-- still inside its grace period is put back to its time instead (however the job got
-- due) and `wait_until` says so. No row: the service is gone, or the lease is.
create function private.provisioning_context(p_job_id bigint, p_worker text)
returns table (
  lease boolean, wait_until timestamptz, desired_state text, state text, external_ids jsonb, credentials_encrypted text,
  tenant_slug text, tenant_name text, admin_email text, admin_name text
)
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_payload jsonb;
  v_s public.tenant_services;
begin
  select j.payload into v_payload from private.jobs j where j.id = p_job_id;
  select * into v_s from public.tenant_services s
  where s.tenant_id = (v_payload ->> 'tenant_id')::uuid and s.service = v_payload ->> 'service'
  for no key update;
  if not private.job_lease_held(p_job_id, p_worker) then
    return query select false, null::timestamptz, null::text, null::text, null::jsonb, null::text, null::text, null::text,
      null::text, null::text;
    return;
  end if;
  if v_s.id is null then
    return;
  end if;
  if v_s.desired_state = 'removed' and v_s.remove_after > now() then
    perform private.enqueue_provisioning(v_s.tenant_id, v_s.service, v_s.remove_after);
    return query select true, v_s.remove_after, v_s.desired_state, v_s.state, null::jsonb, null::text, null::text, null::text,
      null::text, null::text;
    return;
  end if;
  if v_s.state in ('pending', 'failed') then
    update public.tenant_services set state = 'provisioning' where tenant_id = v_s.tenant_id and id = v_s.id
    returning * into v_s;
  end if;
  return query
  select true, null::timestamptz, v_s.desired_state, v_s.state, v_s.external_ids, v_s.credentials_encrypted, t.slug, t.name,
    a.email, a.name
  from public.tenants t
  left join lateral (
    select u.email, coalesce(u.display_name, nullif(btrim(concat_ws(' ', u.first_name, u.last_name)), ''), u.email) as name
    from public.memberships mm join public.users u on u.id = mm.user_id
    where mm.tenant_id = t.id and mm.role = 'admin' order by mm.created_at limit 1
  ) a on true
  where t.id = v_s.tenant_id;
end;
$$;
revoke all on function private.provisioning_context(bigint, text) from public, anon, authenticated;
grant execute on function private.provisioning_context(bigint, text) to service_role;

-- Records partner ids (and credentials) the moment they exist, while the job's lease
-- holds, so a crash right after never forgets an object the partner made.
create function private.record_provisioning_progress(
  p_job_id bigint, p_worker text, p_external_ids jsonb, p_credentials_encrypted text default null
) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_payload jsonb;
begin
  select j.payload into v_payload from private.jobs j where j.id = p_job_id;
  perform 1 from public.tenant_services s
  where s.tenant_id = (v_payload ->> 'tenant_id')::uuid and s.service = v_payload ->> 'service'
  for no key update;
  if v_payload is null or not private.job_lease_held(p_job_id, p_worker) then
    return false; -- the lease was lost; another worker owns the job now
  end if;
  if coalesce(p_external_ids, '{}') = '{}' and p_credentials_encrypted is null then
    return true;
  end if;
  update public.tenant_services set
    external_ids = external_ids || coalesce(p_external_ids, '{}'),
    credentials_encrypted = coalesce(p_credentials_encrypted, credentials_encrypted),
    credentials_revealed_at = case when p_credentials_encrypted is not null then null else credentials_revealed_at end
  where tenant_id = (v_payload ->> 'tenant_id')::uuid and service = v_payload ->> 'service';
  return true;
end;
$$;
revoke all on function private.record_provisioning_progress(bigint, text, jsonb, text) from public, anon, authenticated;
grant execute on function private.record_provisioning_progress(bigint, text, jsonb, text) to service_role;

-- The service reached p_state: recorded while the lease holds (the runner then
-- completes the job). False for a late worker.
create function private.finish_provisioning_job(
  p_job_id bigint, p_worker text, p_state text, p_external_ids jsonb default '{}', p_credentials_encrypted text default null
) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.jobs;
begin
  if not private.record_provisioning_progress(p_job_id, p_worker, p_external_ids, p_credentials_encrypted) then
    return false;
  end if;
  select * into v_job from private.jobs where id = p_job_id;
  update public.tenant_services set state = p_state, last_error = null, attempts = v_job.attempts
  where tenant_id = (v_job.payload ->> 'tenant_id')::uuid and service = v_job.payload ->> 'service';
  return true;
end;
$$;
revoke all on function private.finish_provisioning_job(bigint, text, text, jsonb, text) from public, anon, authenticated;
grant execute on function private.finish_provisioning_job(bigint, text, text, jsonb, text) to service_role;

-- A failed attempt, in the transaction that fails the job (before it: the service row is
-- locked first): the error and the attempt count, and `failed` once the job is dead.
create function private.record_provisioning_failure(
  p_tenant_id uuid, p_service text, p_error text, p_attempts int, p_dead boolean
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  update public.tenant_services set last_error = left(p_error, 2000), attempts = p_attempts,
    state = case when p_dead then 'failed' else state end
  where tenant_id = p_tenant_id and service = p_service;
end;
$$;
revoke all on function private.record_provisioning_failure(uuid, text, text, int, boolean) from public, anon, authenticated;
grant execute on function private.record_provisioning_failure(uuid, text, text, int, boolean) to service_role;

-- Re-queues services whose known state drifted from the desired one and that have no
-- live job (a lost enqueue, a manual change, a dead job an operator fixed).
create function private.reconcile_tenant_services() returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_count int := 0;
  v_row record;
begin
  for v_row in
    select s.tenant_id, s.service from public.tenant_services s
    where s.state <> 'failed'
      and s.state is distinct from (case s.desired_state when 'active' then 'active' when 'suspended' then 'suspended' else 'removed' end)
      and (s.desired_state <> 'removed' or s.remove_after is null or s.remove_after <= now())
      and not exists (select 1 from private.jobs j
                      where j.job_key = 'provision:' || s.tenant_id || ':' || s.service and j.dead_at is null)
    order by s.tenant_id, s.service
  loop
    perform private.enqueue_provisioning(v_row.tenant_id, v_row.service);
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
revoke all on function private.reconcile_tenant_services() from public, anon, authenticated;
grant execute on function private.reconcile_tenant_services() to service_role;

-- ------------------------------------------------------------------ the admin's side

-- An admin retries a failed service: its dead job starts over with a fresh attempt count
-- (add_job on the same key).
create function private.retry_tenant_service(p_tenant_id uuid, p_service text) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_tenant_id <> all (private.tenant_ids('admin', true)) and not private.is_platform_admin() then
    raise exception 'only the tenant''s admins retry its services' using errcode = 'PT403';
  end if;
  update public.tenant_services set state = 'pending', last_error = null, attempts = 0
  where tenant_id = p_tenant_id and service = p_service and state = 'failed';
  if not found then
    raise exception 'only a failed service can be retried' using errcode = 'PT409';
  end if;
  perform private.enqueue_provisioning(p_tenant_id, p_service);
end;
$$;
revoke all on function private.retry_tenant_service(uuid, text) from public, anon, authenticated;
grant execute on function private.retry_tenant_service(uuid, text) to authenticated, service_role;

-- Rotating a partner owner's credentials (Chatwoot, the one partner whose owner password
-- is ours): the stored ones are dropped and the service re-provisioned; the connector
-- chooses a new password, which Chatwoot's user find-or-create sets, and the tenant's
-- admins can see the new credentials once, as after creation.
create function private.rotate_service_credentials(p_tenant_id uuid, p_service text) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if p_tenant_id <> all (private.tenant_ids('admin', true)) and not private.is_platform_admin() then
    raise exception 'only the tenant''s admins rotate its credentials' using errcode = 'PT403';
  end if;
  if p_service not in ('chatwoot') then
    raise exception 'this service has no credentials of ours to rotate' using errcode = 'PT409';
  end if;
  update public.tenant_services
  set credentials_encrypted = null, credentials_revealed_at = null, state = 'pending'
  where tenant_id = p_tenant_id and service = p_service and desired_state = 'active' and state = 'active';
  if not found then
    raise exception 'only an active service can rotate its credentials' using errcode = 'PT409';
  end if;
  perform private.enqueue_provisioning(p_tenant_id, p_service);
end;
$$;
revoke all on function private.rotate_service_credentials(uuid, text) from public, anon;
grant execute on function private.rotate_service_credentials(uuid, text) to authenticated, service_role;
