-- The owner of a tenant's partner accounts is an admin who can sign in (review of tenants
-- and members, issue 14).
--
-- Provisioning names the tenant's oldest admin as the owner of its partner accounts: the
-- Chatwoot login made or linked as the account's administrator, the n8n invitation, the
-- Odoo user, the e-mail shown with the credentials. It took the oldest admin whatever
-- their status, so an admin a platform admin had disabled or locked out (marked deleted,
-- the membership kept) was made, or kept, the owner at the next run (a resume, a retry,
-- a rotation, a drift repair): an account handed to someone who may no longer sign in
-- here, which 20261207125000 already refuses for a tenant's first admin. Now it is the
-- oldest active admin; with none, ensure stops as for a tenant with no admin ("the
-- tenant has no admin to own the account"), and suspension and removal run as before.

-- Redefined (20261207161000_grace_suspension_failure_not_requeued.sql): the owner is the
-- oldest admin whose account is active.
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
    where mm.tenant_id = t.id and mm.role = 'admin' and u.status = 'active' order by mm.created_at limit 1
  ) a on true
  where t.id = v_s.tenant_id;
end;
$$;
