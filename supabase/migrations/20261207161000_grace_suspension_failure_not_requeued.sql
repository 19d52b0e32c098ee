-- A deleted tenant's suspension that fails for good is not queued again at once (review
-- of provisioning, issue 14).
--
-- During a removal's grace period a space is suspended at once, and a job that was
-- bringing the space up and ends after the deletion, up or failed, queues that
-- suspension at once (20261207101000). The suspension job itself marked a pending or
-- failed space `provisioning` as it started, so its own failure, once dead, was read as
-- such a job failing partway: the suspension was queued again at once, its attempts
-- afresh. A partner refusing it for good (a revoked token, a licence, a partner not
-- configured here) went round that loop without backoff for the whole grace period (7
-- days by default), each turn a partner call, a dead job, audit rows and two
-- service.state_changed events; a retryable refusal did the same every 25 attempts.
--
-- Now the grace period's suspension leaves the state as it is until it ends (suspended,
-- or failed once its job is dead), and only a failure from `provisioning`, which only a
-- job bringing the space up sets, queues the suspension. The removal the suspension
-- queued for the grace period's end stays queued, and removes the space then.

-- Redefined (20261207101000_provisioning_in_flight_not_taken_as_settled.sql): `failed`
-- queues the suspension only when it ends a job that had marked the space provisioning.
create or replace function private.tenant_services_enqueue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.desired_state is distinct from old.desired_state
     or new.remove_after is distinct from old.remove_after then
    perform private.enqueue_provisioning(new.tenant_id, new.service,
      case when new.desired_state = 'removed' and (new.state not in ('suspended', 'removed')
                                                   or (new.state = 'suspended' and old.desired_state = 'active')) then now()
           when new.desired_state = 'removed' then greatest(now(), coalesce(new.remove_after, now()))
           else now() end);
    -- The service's jobs that gave their key away (the grace period's suspension keeps
    -- its job after queuing the removal) were for the state asked before: one running is
    -- superseded, one waiting out a backoff goes, so the job just queued, which reads the
    -- state asked now, is not held behind it in the service's queue.
    if tg_op = 'UPDATE' then
      update private.jobs j set superseded = true
      where j.queue = 'provision:' || new.tenant_id || ':' || new.service and j.job_key is null
        and j.locked_by is not null and not j.superseded and j.dead_at is null;
      delete from private.jobs j
      where j.queue = 'provision:' || new.tenant_id || ':' || new.service and j.job_key is null
        and j.locked_by is null and j.dead_at is null;
    end if;
  elsif new.state is distinct from old.state
        and (new.state = 'active' or (new.state = 'failed' and old.state = 'provisioning'))
        and new.desired_state = 'removed' and new.remove_after > now() then
    -- A job that was bringing the space up ended after the deletion: up, or failed partway
    -- (such a job marks the space `provisioning`; the grace period's suspension does not,
    -- and its own failure must not queue it again).
    perform private.enqueue_provisioning(new.tenant_id, new.service, now());
  end if;
  return null;
end;
$$;

-- Redefined (20261207101000_provisioning_in_flight_not_taken_as_settled.sql): the grace
-- period's suspension does not mark the space provisioning.
create or replace function private.provisioning_context(p_job_id bigint, p_worker text)
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
  v_desired text;
  v_grace_suspension boolean := false;
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
  v_desired := v_s.desired_state;
  if v_s.desired_state = 'removed' and v_s.remove_after > now() then
    -- The removal is queued for its time, behind this job. Queued under this job's own
    -- key, it takes the key over and would mark this job superseded (20261207100000): it
    -- is not, the removal is other work than the suspension this job does now, and a
    -- failure of that suspension is retried as before.
    perform private.enqueue_provisioning(v_s.tenant_id, v_s.service, v_s.remove_after);
    update private.jobs j set superseded = false where j.id = p_job_id and j.superseded;
    if v_s.state = 'removed' then
      return query select true, v_s.remove_after, v_s.desired_state, v_s.state, null::jsonb, null::text, null::text,
        null::text, null::text, null::text;
      return;
    end if;
    -- Until then the partner's space is suspended: a deleted tenant's people lose their
    -- access at once, and a restore within the grace period resumes it. One recorded as
    -- suspended is suspended again: this job runs before the removal's time only when a
    -- resume may have brought it up (or an admin asked).
    v_desired := 'suspended';
    v_grace_suspension := true;
  end if;
  -- The grace period's suspension leaves the state as it is until it ends: marked
  -- `provisioning`, its failure would read as a job bringing the space up that failed
  -- partway, which queues the suspension at once (tenant_services_enqueue), in a loop
  -- with no backoff for the whole grace period when the partner refuses it for good.
  if not v_grace_suspension
     and (v_s.state in ('pending', 'failed') or (v_s.state = 'removed' and v_desired <> 'removed')) then
    update public.tenant_services set state = 'provisioning' where tenant_id = v_s.tenant_id and id = v_s.id
    returning * into v_s;
  end if;
  return query
  select true, null::timestamptz, v_desired, v_s.state, v_s.external_ids, v_s.credentials_encrypted, t.slug, t.name,
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
