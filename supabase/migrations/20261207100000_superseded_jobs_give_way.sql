-- A job whose key went to a newer job gives way to it when it fails (review, issue 14).
--
-- A job that is running when its key is added again keeps running without its key, and
-- the new job (the successor) waits behind it in its queue (private.add_job; re-enabling
-- a webhook endpoint does the same for its deliveries). Two things went wrong with that:
--
-- * The running job, failing, was backed off like any other: up to an hour, and the
--   successor, queued behind it, waited as long. A tenant suspended or deleted while an
--   attempt to provision one of its services was in flight kept the service active for
--   that hour; a delivery re-enabled mid-send waited out the old job's backoff. It was
--   also marked failed through its task's hook (a service `failed`, a delivery dead)
--   when it ran out of attempts, although its successor was still to come. A job that
--   gave its key away is now marked superseded, and failing it ends it: the successor
--   has the current payload and fresh attempts, and runs when due, not before a
--   Retry-After the failure reported. The runner leaves out the task's failure hook for
--   it (private.job_superseded).
-- * A third add_job for the key, with no queue given (a schedule's tick), set the
--   successor's queue to none: no longer behind the running job, it could run beside it,
--   the same work twice at once. A key's pending job now keeps its queue when the call
--   names none.

alter table private.jobs add column superseded boolean not null default false;

-- Redefined (20261205150000_job_adders_bulk_sticky.sql): a handed-over job is marked
-- superseded; a pending job keeps its queue when none is given.
create or replace function private.add_job(
  p_task text,
  p_payload jsonb default '{}'::jsonb,
  p_job_key text default null,
  p_run_at timestamptz default null,
  p_max_attempts int default null,
  p_queue text default null,
  p_job_key_mode text default 'replace'
) returns private.jobs
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.jobs;
  v_queue text := p_queue;
  v_running_queue text;
  v_handed text;
  v_run_at timestamptz := coalesce(p_run_at, now());
  v_max int := coalesce(p_max_attempts, 25);
  v_tenant uuid := (p_payload ->> 'tenant_id')::uuid;
  -- Key and queue locks this transaction has taken in add_job (65: past the bound).
  v_taken int := coalesce(nullif(pg_catalog.current_setting('private.job_locks_taken', true), ''), '0')::int;
  v_needed int := (p_job_key is not null)::int + (p_queue is not null)::int;
  v_bulk boolean := false;
begin
  if p_job_key_mode is null or p_job_key_mode not in ('replace', 'preserve_run_at') then
    raise exception 'job_key_mode must be replace or preserve_run_at' using errcode = '22023';
  end if;
  if v_needed > 0 then
    if v_taken + v_needed > 64 then
      -- Past the bound, to commit: the tenant's adders wait for this transaction instead.
      v_bulk := true;
      perform pg_catalog.pg_advisory_xact_lock(private.job_adders_lock_key(v_tenant));
      if v_taken <= 64 then
        perform pg_catalog.set_config('private.job_locks_taken', '65', true);
      end if;
    else
      -- The key's lock, the queues' (the given one, the running job's), then the tenant's
      -- in share mode: an adder waiting for a key or queue holds no tenant lock a bulk
      -- writer could be waiting for.
      if p_job_key is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-key:' || p_job_key, 0));
        -- Under the key's lock only workers change its job: a running one keeps its queue.
        select coalesce(j.queue, v_queue, 'job:' || p_job_key) into v_running_queue
        from private.jobs j where j.job_key = p_job_key and j.locked_by is not null;
      end if;
      if v_queue is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
      end if;
      if v_running_queue is distinct from v_queue and v_running_queue is not null then
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_running_queue, 0));
        v_needed := v_needed + 1;
      end if;
      perform pg_catalog.pg_advisory_xact_lock_shared(private.job_adders_lock_key(v_tenant));
      v_taken := v_taken + v_needed;
      perform pg_catalog.set_config('private.job_locks_taken', v_taken::text, true);
    end if;
  end if;
  if p_job_key is null then
    insert into private.jobs (task, payload, tenant_id, queue, run_at, max_attempts)
    values (p_task, coalesce(p_payload, '{}'::jsonb), v_tenant, v_queue, v_run_at, v_max)
    returning * into v_job;
    return v_job;
  end if;
  for i in 1..5 loop
    -- A pending job keeps its queue when none is given: one queued behind the key's
    -- former job (a hand-over below) stays behind it.
    insert into private.jobs as j (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
    values (p_task, coalesce(p_payload, '{}'::jsonb), v_tenant, v_queue, p_job_key, v_run_at, v_max)
    on conflict (job_key) where job_key is not null do update set
      task = excluded.task, payload = excluded.payload, tenant_id = excluded.tenant_id,
      queue = coalesce(excluded.queue, j.queue), max_attempts = excluded.max_attempts,
      run_at = case when p_job_key_mode = 'preserve_run_at' and j.dead_at is null then j.run_at else excluded.run_at end,
      attempts = 0, last_error = null, dead_at = null
    where j.locked_by is null
    returning * into v_job;
    if v_job.id is not null then
      return v_job;
    end if;
    -- The key's job is running: it lets go of the key, superseded, and the new job waits
    -- behind it. (None found: it finished meanwhile; the insert tries again with the
    -- given queue.)
    v_handed := null;
    update private.jobs j set job_key = null, superseded = true, queue = coalesce(j.queue, v_queue, 'job:' || p_job_key)
    where j.job_key = p_job_key and j.locked_by is not null
    returning j.queue into v_handed;
    if v_handed is not null then
      if not v_bulk and v_handed is distinct from v_queue and v_handed is distinct from v_running_queue then
        -- The job started running after the look above: its queue's lock after the
        -- tenant's share lock, the one order left that can wait on a bulk writer.
        perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_handed, 0));
        v_taken := v_taken + 1;
        perform pg_catalog.set_config('private.job_locks_taken', v_taken::text, true);
      end if;
      v_queue := v_handed;
    end if;
  end loop;
  raise exception 'could not add job %: its key kept changing hands', p_job_key using errcode = '40001';
end;
$$;

-- Redefined (20261206145000_requeue_keeps_delivery_order.sql): the delivery job being
-- sent when its endpoint is enabled again is marked superseded as it gives its key away.
create or replace function private.webhook_endpoint_requeue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.enabled and not old.enabled then
    -- The tenant's emitters that lock (tickets, messages, memberships, ...) wait for this
    -- lock; the unlocked ones (call.*, customer.created) write new deliveries only and
    -- see this endpoint disabled until commit. No other adder has a pending delivery's key.
    perform pg_catalog.pg_advisory_xact_lock(private.webhook_tenant_lock_key(new.tenant_id));
    -- The jobs the pending deliveries already have, locked (job rows last, in id order):
    -- a worker claims none of them meanwhile (claims skip locked rows).
    perform from private.jobs j
    where j.job_key in (select 'delivery:' || d.id from private.webhook_deliveries d
                        where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending')
    order by j.id
    for update of j;
    -- A running one keeps running without its key, superseded; the new job waits behind
    -- it in the delivery's queue, which is its queue too.
    update private.jobs j set job_key = null, superseded = true
    from private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
      and j.job_key = 'delivery:' || d.id and j.locked_by is not null;
    -- Every other one starts over as a new job, all of them made in delivery order: a
    -- named queue runs its jobs in id order, and a job kept from before (its id older)
    -- would go ahead of the earlier delivery whose job had ended (held when the endpoint
    -- was disabled), reversing a ticket's events.
    delete from private.jobs j
    using private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
      and j.job_key = 'delivery:' || d.id and j.locked_by is null;
    insert into private.jobs (task, payload, tenant_id, queue, job_key, run_at, max_attempts)
    select 'deliver-webhook', jsonb_build_object('tenant_id', d.tenant_id, 'delivery_id', d.id), d.tenant_id,
           'webhook:' || d.endpoint_id || ':' || d.ordering_key, 'delivery:' || d.id, pg_catalog.now(), 25
    from private.webhook_deliveries d
    where d.tenant_id = new.tenant_id and d.endpoint_id = new.id and d.status = 'pending'
    order by d.id;
  end if;
  return null;
end;
$$;

-- Redefined (20261126100350_jobs.sql): a superseded job's failure ends it ('superseded').
-- Its successor, next in its queue, runs no sooner than the Retry-After the failure
-- reported (the partner's word holds for whichever job asks next); it has its own
-- attempts and backoff otherwise.
create or replace function private.fail_job(
  p_worker text, p_job_id bigint, p_error text, p_retry_after_seconds int default null, p_permanent boolean default false
) returns text
language plpgsql volatile security definer
set search_path = ''
set lock_timeout = '30s'
as $$
declare
  v_job private.jobs;
begin
  select * into v_job from private.jobs j
  where j.id = p_job_id and j.locked_by = p_worker and j.locked_until >= now()
  for no key update;
  if v_job.id is null then
    return 'lost';
  end if;
  if v_job.superseded then
    delete from private.jobs where id = p_job_id;
    if coalesce(p_retry_after_seconds, 0) > 0 then
      -- Job rows in id order: the successor's id is the newer.
      update private.jobs j
      set run_at = greatest(j.run_at, now() + make_interval(secs => least(p_retry_after_seconds, 86400)))
      where j.id = (select min(k.id) from private.jobs k
                    where k.queue = v_job.queue and k.id > p_job_id and k.dead_at is null)
        and j.locked_by is null;
    end if;
    return 'superseded';
  end if;
  if p_permanent or v_job.attempts >= v_job.max_attempts then
    update private.jobs set locked_by = null, locked_until = null, dead_at = now(), last_error = left(p_error, 2000)
    where id = p_job_id;
    return 'dead';
  end if;
  update private.jobs set locked_by = null, locked_until = null, last_error = left(p_error, 2000),
    run_at = now() + private.job_backoff(v_job.attempts, p_retry_after_seconds)
  where id = p_job_id;
  return 'retry';
end;
$$;

-- Whether this job gave its key to a newer one (private.add_job): the runner asks before
-- its task's failure hook, which is left out for such a job (the successor's outcome is
-- the one that counts). A job cannot stop being superseded, so an answer of true holds
-- until fail_job.
create function private.job_superseded(p_job_id bigint) returns boolean
language sql stable security definer
set search_path = ''
as $$
  select coalesce((select j.superseded from private.jobs j where j.id = p_job_id), false)
$$;
revoke all on function private.job_superseded(bigint) from public, anon, authenticated;
grant execute on function private.job_superseded(bigint) to service_role;
