-- Provisioning: the work that brings each partner service to its desired state, driven
-- by a Postgres job queue with graphile-worker semantics — a unique job key so the same
-- work is never queued twice, claims with FOR UPDATE SKIP LOCKED under a lease, attempts
-- with capped exponential backoff and jitter (honouring a partner's Retry-After), and a
-- dead state after max_attempts. The worker is the provisioner function; hosted projects
-- call it by pg_cron + pg_net (20261126102100_schedules.sql), `npm start` on a timer.
-- Lock order: the worker's claim and fail lock a job before its tenant_services row,
-- against the rule (see 20261126100000_conventions.sql, "Not yet following it").

-- ------------------------------------------------------------------ the queue

create table private.provisioning_jobs (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  service text not null,
  job_key text not null,
  status text not null default 'queued' check (status in ('queued', 'running', 'done', 'dead')),
  attempts int not null default 0,
  max_attempts int not null default 25,
  run_at timestamptz not null default now(),
  locked_by text,
  locked_until timestamptz,
  -- Set when the work changed while a worker held the job: it runs again afterwards.
  rerun boolean not null default false,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
-- The job key: one live job per (tenant, service), whatever changes pile up.
create unique index provisioning_jobs_live_key on private.provisioning_jobs (job_key) where status in ('queued', 'running');
create index provisioning_jobs_due_idx on private.provisioning_jobs (run_at) where status = 'queued';
create index provisioning_jobs_lease_idx on private.provisioning_jobs (locked_until) where status = 'running';
create index provisioning_jobs_tenant_idx on private.provisioning_jobs (tenant_id);

-- ------------------------------------------------------------------ enqueueing

create function private.enqueue_provisioning(p_tenant_id uuid, p_service text, p_run_at timestamptz default now())
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  insert into private.provisioning_jobs (tenant_id, service, job_key, run_at)
  values (p_tenant_id, p_service, p_tenant_id || ':' || p_service, coalesce(p_run_at, now()))
  on conflict (job_key) where status in ('queued', 'running') do update
    set run_at = least(provisioning_jobs.run_at, excluded.run_at),
        rerun = provisioning_jobs.status = 'running',
        updated_at = now();
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

-- Claims up to p_limit due jobs (or ones whose lease ran out: a worker died), leases
-- them to p_worker, and returns what the connector needs.
create function private.claim_provisioning_jobs(p_worker text, p_limit int default 5, p_lease_seconds int default 60)
returns table (
  job_id bigint, tenant_id uuid, service text, attempts int, max_attempts int,
  desired_state text, state text, external_ids jsonb, credentials_encrypted text,
  tenant_slug text, tenant_name text, admin_email text, admin_name text
)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  return query
  with due as (
    select j.id from private.provisioning_jobs j
    where ((j.status = 'queued' and j.run_at <= now())
       or (j.status = 'running' and j.locked_until < now()))
      -- A removal waits out its grace period, however the job got due.
      and not exists (
        select 1 from public.tenant_services s
        where s.tenant_id = j.tenant_id and s.service = j.service
          and s.desired_state = 'removed' and s.remove_after > now())
    order by j.run_at, j.id
    limit p_limit
    for update skip locked
  ), claimed as (
    update private.provisioning_jobs j
    set status = 'running', locked_by = p_worker, locked_until = now() + make_interval(secs => p_lease_seconds),
        attempts = j.attempts + 1, rerun = false, updated_at = now()
    from due where j.id = due.id
    returning j.*
  ), marked as (
    update public.tenant_services s set state = case when s.state in ('pending', 'failed') then 'provisioning' else s.state end
    from claimed c where s.tenant_id = c.tenant_id and s.service = c.service
    returning s.*
  )
  select c.id, c.tenant_id, c.service, c.attempts, c.max_attempts,
         m.desired_state, m.state, m.external_ids, m.credentials_encrypted,
         t.slug, t.name,
         (select u.email from public.memberships mm join public.users u on u.id = mm.user_id
          where mm.tenant_id = c.tenant_id and mm.role = 'admin' order by mm.created_at limit 1),
         (select coalesce(u.display_name, nullif(btrim(concat_ws(' ', u.first_name, u.last_name)), ''), u.email)
          from public.memberships mm join public.users u on u.id = mm.user_id
          where mm.tenant_id = c.tenant_id and mm.role = 'admin' order by mm.created_at limit 1)
  from claimed c
  join marked m on m.tenant_id = c.tenant_id and m.service = c.service
  join public.tenants t on t.id = c.tenant_id;
end;
$$;
revoke all on function private.claim_provisioning_jobs(text, int, int) from public, anon, authenticated;
grant execute on function private.claim_provisioning_jobs(text, int, int) to service_role;

-- Records partner ids (and credentials) the moment they exist, while the job runs, so
-- a crash right after never forgets an object the partner made.
create function private.record_provisioning_progress(
  p_job_id bigint, p_worker text, p_external_ids jsonb, p_credentials_encrypted text default null
) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.provisioning_jobs;
begin
  select * into v_job from private.provisioning_jobs where id = p_job_id and locked_by = p_worker and status = 'running';
  if v_job.id is null then
    return false; -- the lease was lost; another worker owns the job now
  end if;
  if coalesce(p_external_ids, '{}') = '{}' and p_credentials_encrypted is null then
    return true;
  end if;
  update public.tenant_services set
    external_ids = external_ids || coalesce(p_external_ids, '{}'),
    credentials_encrypted = coalesce(p_credentials_encrypted, credentials_encrypted),
    credentials_revealed_at = case when p_credentials_encrypted is not null then null else credentials_revealed_at end
  where tenant_id = v_job.tenant_id and service = v_job.service;
  return true;
end;
$$;
revoke all on function private.record_provisioning_progress(bigint, text, jsonb, text) from public, anon, authenticated;
grant execute on function private.record_provisioning_progress(bigint, text, jsonb, text) to service_role;

create function private.finish_provisioning_job(
  p_job_id bigint, p_worker text, p_state text, p_external_ids jsonb default '{}', p_credentials_encrypted text default null
) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.provisioning_jobs;
begin
  if not private.record_provisioning_progress(p_job_id, p_worker, p_external_ids, p_credentials_encrypted) then
    return false;
  end if;
  update private.provisioning_jobs set status = 'done', locked_by = null, locked_until = null, last_error = null, updated_at = now()
  where id = p_job_id returning * into v_job;
  update public.tenant_services set state = p_state, last_error = null, attempts = v_job.attempts
  where tenant_id = v_job.tenant_id and service = v_job.service;
  if v_job.rerun then
    perform private.enqueue_provisioning(v_job.tenant_id, v_job.service);
  end if;
  return true;
end;
$$;
revoke all on function private.finish_provisioning_job(bigint, text, text, jsonb, text) from public, anon, authenticated;
grant execute on function private.finish_provisioning_job(bigint, text, text, jsonb, text) to service_role;

-- A failure: retried with capped exponential backoff and jitter (never sooner than the
-- partner's Retry-After), or dead — permanent errors at once, others after max_attempts.
create function private.fail_provisioning_job(
  p_job_id bigint, p_worker text, p_error text, p_retryable boolean, p_retry_after_seconds int default null
) returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.provisioning_jobs;
  v_delay double precision;
begin
  select * into v_job from private.provisioning_jobs where id = p_job_id and locked_by = p_worker and status = 'running' for update;
  if v_job.id is null then
    return 'lost';
  end if;
  if p_retryable and v_job.attempts < v_job.max_attempts then
    v_delay := least(power(2, v_job.attempts), 3600) * (0.75 + random() * 0.5);
    v_delay := greatest(v_delay, coalesce(p_retry_after_seconds, 0));
    update private.provisioning_jobs set status = 'queued', run_at = now() + make_interval(secs => v_delay),
      locked_by = null, locked_until = null, last_error = left(p_error, 2000), updated_at = now()
    where id = p_job_id;
    update public.tenant_services set last_error = left(p_error, 2000), attempts = v_job.attempts
    where tenant_id = v_job.tenant_id and service = v_job.service;
    return 'retry';
  end if;
  update private.provisioning_jobs set status = 'dead', locked_by = null, locked_until = null,
    last_error = left(p_error, 2000), updated_at = now()
  where id = p_job_id;
  update public.tenant_services set state = 'failed', last_error = left(p_error, 2000), attempts = v_job.attempts
  where tenant_id = v_job.tenant_id and service = v_job.service;
  return 'dead';
end;
$$;
revoke all on function private.fail_provisioning_job(bigint, text, text, boolean, int) from public, anon, authenticated;
grant execute on function private.fail_provisioning_job(bigint, text, text, boolean, int) to service_role;

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
    select s.tenant_id, s.service, s.desired_state, s.remove_after from public.tenant_services s
    where s.state <> 'failed'
      and s.state is distinct from (case s.desired_state when 'active' then 'active' when 'suspended' then 'suspended' else 'removed' end)
      and (s.desired_state <> 'removed' or s.remove_after is null or s.remove_after <= now())
      and not exists (select 1 from private.provisioning_jobs j
                      where j.job_key = s.tenant_id || ':' || s.service and j.status in ('queued', 'running'))
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

-- An admin retries a failed service: a fresh job with a fresh attempt count.
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
