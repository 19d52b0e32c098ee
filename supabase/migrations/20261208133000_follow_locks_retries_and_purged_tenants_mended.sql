-- Review of this stop's later commits (issue 14): a manual follow locks its ticket before
-- anything else, and only a manual follow; an operator's retry moves only a dead job, under
-- its queue's lock; a purged tenant is a 404 again on every route.
--
-- 20261208131000 named the follow's ticket lock `ticket_parent_lock`, which fired after
-- ticket_followers_own_follow had locked the person's 'assigned' row: a merge (ticket
-- first, then that row, as mentions and hand-offs do too) and a follow could deadlock. It
-- fires first now (triggers fire by name), and only for follows people add ('manual'): an
-- assignment's follow on a deleted ticket (an admin's hand-off, which 20261207231000 keeps)
-- or a merged one was refused with it.
--
-- 20261208130000's retry_job moved to the back of its queue any job with later live jobs,
-- a backing-off head too (it is still the head: the events behind it would have gone
-- first), and took the new id without the queue's lock add_job takes (a job added meanwhile
-- could commit a higher id and run beside it). Only a dead job moves now, under the lock.
--
-- 20261208129000 let platform admins act in a purged tenant (one whose deletion the trail
-- keeps) on every route, not only read its trail: empty lists and foreign-key 422s again.
-- A purged tenant is a 404 on the API as any unknown one; its trail is read through the
-- table (audit_logs' policy lets platform admins read every tenant's).

drop trigger ticket_parent_lock on public.ticket_followers;
create trigger ticket_followers_0_parent_lock before insert on public.ticket_followers
  for each row when (new.reason = 'manual') execute function private.lock_parent_ticket();

-- Redefined (20261208130000_job_figures_and_retries_follow_queues.sql): only a dead job
-- moves, under its queue's lock.
create or replace function private.retry_job(p_job_id bigint) returns private.jobs
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_job private.jobs;
  v_queue text;
begin
  -- The queue's lock first, as add_job takes it (advisory locks, then job rows): no job of
  -- the queue is added while this one takes its new place.
  select j.queue into v_queue from private.jobs j where j.id = p_job_id;
  if v_queue is not null then
    perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtextextended('job-queue:' || v_queue, 0));
  end if;
  select * into v_job from private.jobs j
  where j.id = p_job_id and j.locked_by is null and (j.dead_at is not null or j.attempts > 0)
  for update;
  if v_job.id is null then
    raise exception 'only a dead or failed job that is not running can be retried' using errcode = 'PT409';
  end if;
  -- A dead job holds no queue, so later jobs went on: revived, it goes after them. A job
  -- backing off is still its queue's head and keeps its place.
  if v_job.dead_at is not null and v_job.queue is not null and exists (
       select 1 from private.jobs h where h.queue = v_job.queue and h.id > v_job.id and h.dead_at is null) then
    delete from private.jobs j where j.id = v_job.id;
    v_job.id := pg_catalog.nextval(pg_catalog.pg_get_serial_sequence('private.jobs', 'id'));
    v_job.dead_at := null;
    v_job.attempts := 0;
    v_job.run_at := now();
    v_job.last_error := null;
    v_job.hook_holds := 0;
    v_job.created_at := now();
    insert into private.jobs overriding system value select (v_job).*;
  else
    update private.jobs j set dead_at = null, attempts = 0, run_at = now(), last_error = null
    where j.id = p_job_id
    returning * into v_job;
  end if;
  return v_job;
end;
$$;

-- Redefined (20261208129000_trail_jobs_bounded_and_purged_trails_read.sql): as
-- 20261208124000 had it — a tenant that does not exist is a 404, purged or never made.
create or replace function private.tenant_access(p_tenant_id uuid, p_min_role text, p_write boolean default false)
returns jsonb
language plpgsql stable security definer
set search_path = ''
as $$
declare
  v_role text;
  v_token uuid;
begin
  if p_tenant_id <> '00000000-0000-0000-0000-000000000000'::uuid then
    v_role := private.role_in(p_tenant_id); -- narrowed to the token's tenant
  end if;
  -- A role here means the token's tenant is the caller's (role_in is narrowed to it), but
  -- for platform admins, who have one everywhere: their token's tenant must exist.
  if v_role is null or v_role = 'super_admin' then
    v_token := private.token_tenant_id(); -- refuses a tenant neither theirs nor inviting them
  end if;
  -- Platform admins have a role in every tenant id, an unknown one too: an operator's typo
  -- read as a tenant with nothing in it (200 and an empty list, or a 422 from a foreign
  -- key) where everyone else is told 404.
  if v_role = 'super_admin' and p_tenant_id is not null
     and not exists (select 1 from public.tenants t where t.id = p_tenant_id) then
    v_role := null;
  end if;
  if v_role is null then
    -- Why not, in the order the API answers: an invitee's token, nothing named, not theirs.
    if v_token is not null and v_token <> all (private.tenant_ids('user')) and not private.is_platform_admin() then
      raise exception 'Your token is bound to a tenant you are invited to but have not joined; accept the invitation first'
        using errcode = 'PT403', detail = '{"code": "tenant_not_member"}';
    end if;
    if p_tenant_id is null then
      raise exception 'Name the tenant with the X-Tenant-Id header'
        using errcode = 'PT400', detail = '{"code": "tenant_required"}';
    end if;
    raise exception 'Tenant not found' using errcode = 'PT404', detail = '{"code": "not_found"}';
  end if;
  if private.role_rank(v_role) < private.role_rank(p_min_role) then
    raise exception 'This needs the % role in the tenant', p_min_role
      using errcode = 'PT403', detail = '{"code": "forbidden"}';
  end if;
  if p_write and v_role <> 'super_admin' and p_tenant_id <> all (private.tenant_ids('user', true)) then
    raise exception 'The tenant is suspended; it is read-only until resumed'
      using errcode = 'PT403', detail = '{"code": "tenant_suspended"}';
  end if;
  return jsonb_build_object(
    'tenant_id', p_tenant_id, 'role', v_role,
    'staff', private.role_rank(v_role) >= private.role_rank('agent'),
    'admin', private.role_rank(v_role) >= private.role_rank('admin'));
end;
$$;

