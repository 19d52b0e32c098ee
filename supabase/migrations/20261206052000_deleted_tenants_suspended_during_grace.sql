-- A deleted tenant's partner spaces are suspended during the removal's grace period.
--
-- Deleting a tenant sets its services to `removed` with remove_after a grace period out
-- (settings.removal_grace_days, 7), and the provisioning job for each waited until then.
-- Until then the spaces stayed as they were: a deleted tenant's agents kept working in
-- its Chatwoot account, its bot answered, its n8n invitation and Odoo login worked, for
-- a week. Worse, a suspension still queued (waiting out a partner's 503) when the tenant
-- was deleted was moved out by the same week (the job key takes the removal's run time),
-- so a suspended tenant's spaces became usable again. Now the job that meets a removal
-- in its grace period suspends the space first (unless it is suspended already) and
-- queues the removal for its time behind itself; a restore within the grace period
-- resumes it, as after a suspension. A removal in its grace period is queued to run at
-- once for a space not suspended yet, for that.

-- Redefined (20261126101600_provisioning.sql): a removal whose space is not suspended
-- yet runs now (to suspend it); one already suspended waits for its time, as before.
create or replace function private.tenant_services_enqueue() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if tg_op = 'INSERT' or new.desired_state is distinct from old.desired_state
     or new.remove_after is distinct from old.remove_after then
    perform private.enqueue_provisioning(new.tenant_id, new.service,
      case when new.desired_state = 'removed' and new.state not in ('suspended', 'removed') then now()
           when new.desired_state = 'removed' then greatest(now(), coalesce(new.remove_after, now()))
           else now() end);
  end if;
  return null;
end;
$$;

-- Redefined (20261126101600_provisioning.sql): suspended during the grace period.
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
    -- The removal is queued for its time, behind this job.
    perform private.enqueue_provisioning(v_s.tenant_id, v_s.service, v_s.remove_after);
    if v_s.state in ('suspended', 'removed') then
      return query select true, v_s.remove_after, v_s.desired_state, v_s.state, null::jsonb, null::text, null::text,
        null::text, null::text, null::text;
      return;
    end if;
    -- Until then the partner's space is suspended: a deleted tenant's people lose their
    -- access at once, and a restore within the grace period resumes it.
    v_desired := 'suspended';
  end if;
  if v_s.state in ('pending', 'failed') then
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
