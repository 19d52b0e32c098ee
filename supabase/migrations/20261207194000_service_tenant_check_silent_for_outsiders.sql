-- The tenant-state check of a partner service being enabled says nothing to a caller
-- outside the tenant (review of 20261207192000, issue 14).
--
-- The check runs before the row-level policies refuse an outsider's write, and it read
-- and locked the named tenant whoever wrote: an outsider naming another tenant's id got
-- 409 tenant_not_active for a suspended or deleted tenant (its status in the details) and
-- the policy's refusal for an active one — an oracle of the tenant's state, caught by the
-- attack suites — and held a share lock on a tenant not theirs. Now, as the plan checks
-- do (private.outside_tenant, 20261203234000), it returns at once for an API caller
-- outside the tenant, before reading or locking anything: the policies refuse the write
-- as for an id nobody has.

-- Redefined (20261207192000_services_wanted_only_in_active_tenants.sql): silent for outsiders.
create or replace function private.service_wanted_in_an_active_tenant() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if new.desired_state = 'active' and (tg_op = 'INSERT' or old.desired_state is distinct from 'active')
     and not private.outside_tenant(new.tenant_id) then
    select t.status into v_status from public.tenants t where t.id = new.tenant_id for share;
    if v_status is distinct from 'active' then
      raise exception 'The tenant is %: its partner services are enabled once it is active again', coalesce(v_status, 'gone')
        using errcode = 'PT409',
          detail = jsonb_build_object('code', 'tenant_not_active', 'details', jsonb_build_object('status', v_status))::text;
    end if;
  end if;
  return new;
end;
$$;
