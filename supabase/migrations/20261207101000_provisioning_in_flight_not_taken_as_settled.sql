-- A deletion no longer takes a space being brought back for one that is down (review,
-- issue 14).
--
-- A deleted tenant's spaces are suspended at once and removed after the grace period,
-- except a space already suspended or removed, which just waits for its removal
-- (20261206052000). That was read from tenant_services.state, which stays at its old
-- value while a job brings the space back: a restored tenant's removed Chatwoot account
-- being made again, a resume under way. A tenant deleted (again) meanwhile had its space
-- come up after the deletion and stay usable for the whole grace period (7 days); and
-- with `removed` still recorded, the tenant could be purged outright while the new
-- account lived on at the partner. Now:
--
-- * A job bringing a removed space back marks it `provisioning` as it starts, as it
--   does a pending or failed one: `removed` means nothing is left at the partner.
-- * A deletion whose space is suspended while a resume was asked for (the space may be
--   up already) suspends it now, as for a space that is not suspended, and so does the
--   job reaching it during the grace period: suspending a suspended space is a no-op
--   at the partner. Only a removed space waits for its removal untouched.
-- * A job that brings a space up (`active`) or leaves it `failed` after its tenant was
--   deleted queues the suspension at once, rather than at the grace period's end.
-- * The job that suspends a space in the grace period queues the removal under its own
--   key, which marks it superseded (20261207100000): it is marked back, so a failure of
--   the suspension is retried rather than ended. A later change of what is asked (a
--   restore) supersedes it, or drops it while it waits out a backoff, so the new job is
--   not held behind it.

-- Redefined (20261206052000_deleted_tenants_suspended_during_grace.sql): a suspended
-- space with a resume asked for is suspended now; a space that comes up or fails during
-- a removal's grace period is suspended at once.
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
  elsif new.state is distinct from old.state and new.state in ('active', 'failed')
        and new.desired_state = 'removed' and new.remove_after > now() then
    -- A job that was bringing the space up ended after the deletion: up, or failed partway.
    perform private.enqueue_provisioning(new.tenant_id, new.service, now());
  end if;
  return null;
end;
$$;

-- Redefined (20261206052000_deleted_tenants_suspended_during_grace.sql): a removed space
-- being brought back is `provisioning`; during the grace period only a removed space
-- waits untouched.
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
  end if;
  if v_s.state in ('pending', 'failed') or (v_s.state = 'removed' and v_desired <> 'removed') then
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
