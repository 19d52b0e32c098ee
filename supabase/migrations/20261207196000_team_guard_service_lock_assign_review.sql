-- Review of this stop's diff (issue 14): three corrections.
--
-- team_delete_guard (20261207186000) refused a team's deletion for any macro naming it,
-- personal ones included, which admins can neither see nor change (a demoted agent's
-- survive the demotion): one agent's personal macro made a team impossible to delete,
-- and the refusal listed the ids of others' personal macros. Now only tenant-wide macros
-- and rules hold a team; a personal macro naming it answers its owner 422 when applied.
--
-- service_wanted_in_an_active_tenant (20261207194000) took the tenant FOR SHARE also on
-- an update, when the service row is already held: against the lock order, so a service
-- enabled through the table while the tenant resumed or changed plan (which hold the
-- tenant and wait for the service rows) deadlocked. On an update the tenant is now tried
-- with NOWAIT, busy answering PT503 (503 `retry`, Retry-After 1).
--
-- auto_assign_ticket (20261207193000) read the tenant's status without a lock: a
-- suspension committing while the job ran still let the assignment commit after it. The
-- tenant is now held in share mode for the job's transaction.

-- Redefined (20261207186000_team_actions_name_a_team.sql): tenant-wide macros only.
create or replace function private.team_delete_guard() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_open int;
  v_macros jsonb;
  v_rules jsonb;
begin
  -- The tenant's own deletion (a cascade): everything goes.
  if not exists (select 1 from public.tenants t where t.id = old.tenant_id) then
    return old;
  end if;
  select count(*) into v_open from public.tickets t
  where t.tenant_id = old.tenant_id and t.team_id = old.id
    and t.deleted_at is null and t.status not in ('resolved', 'closed');
  if v_open > 0 then
    raise exception 'The team still has % open ticket(s): move them to another team first', v_open
      using errcode = 'PT409',
        detail = jsonb_build_object('code', 'team_has_open_tickets', 'details', jsonb_build_object('open_tickets', v_open))::text;
  end if;
  -- Tenant-wide macros only: an agent's personal ones are theirs, which admins can neither
  -- see nor change (one naming the team answers its owner 422 when applied).
  select jsonb_agg(m.id order by m.id) into v_macros from public.macros m
  where m.tenant_id = old.tenant_id and m.scope = 'tenant' and exists (
    select 1 from jsonb_array_elements(m.actions) a
    where a ->> 'type' = 'set_team' and jsonb_typeof(a -> 'team_id') = 'string' and (a ->> 'team_id')::uuid = old.id);
  select jsonb_agg(r.id order by r.id) into v_rules from public.automation_rules r
  where r.tenant_id = old.tenant_id and exists (
    select 1 from jsonb_array_elements(r.actions) a
    where a ->> 'type' = 'set_team' and jsonb_typeof(a -> 'team_id') = 'string' and (a ->> 'team_id')::uuid = old.id);
  if v_macros is not null or v_rules is not null then
    raise exception 'Macros or automation rules move tickets to this team: change or delete them first'
      using errcode = 'PT409',
        detail = jsonb_build_object('code', 'team_in_use', 'details', jsonb_build_object(
          'macros', coalesce(v_macros, '[]'::jsonb), 'automation_rules', coalesce(v_rules, '[]'::jsonb)))::text;
  end if;
  return old;
end;
$$;

-- Redefined (20261207194000_service_tenant_check_silent_for_outsiders.sql): NOWAIT on an update.
create or replace function private.service_wanted_in_an_active_tenant() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  if new.desired_state = 'active' and (tg_op = 'INSERT' or old.desired_state is distinct from 'active')
     and not private.outside_tenant(new.tenant_id) then
    if tg_op = 'INSERT' then
      select t.status into v_status from public.tenants t where t.id = new.tenant_id for share;
    else
      -- An update holds the service row already: waiting for the tenant now would take
      -- the locks against their order (a resume or plan change holds the tenant and waits
      -- for this row). Busy: come back in a second (PT503).
      begin
        select t.status into v_status from public.tenants t where t.id = new.tenant_id for share nowait;
      exception when lock_not_available then
        raise exception 'The tenant is being changed; retry in a moment' using errcode = 'PT503',
          detail = jsonb_build_object('code', 'retry')::text;
      end;
    end if;
    if v_status is distinct from 'active' then
      raise exception 'The tenant is %: its partner services are enabled once it is active again', coalesce(v_status, 'gone')
        using errcode = 'PT409',
          detail = jsonb_build_object('code', 'tenant_not_active', 'details', jsonb_build_object('status', v_status))::text;
    end if;
  end if;
  return new;
end;
$$;

-- Redefined (20261207193000_inactive_tenants_assign_nobody.sql): the tenant held in share mode.
create or replace function private.auto_assign_ticket(p_tenant_id uuid, p_ticket_id uuid, p_team_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_pick uuid;
  v_pointer uuid;
begin
  -- A read-only (suspended) or deleted tenant gets no automated writes (as automation
  -- rules, 20261207140000).
  -- Held in share mode until the job commits: a suspension waits for the assignment, or
  -- the assignment sees it (the tenant first, as the lock order has it).
  if not exists (select 1 from public.tenants x where x.id = p_tenant_id and x.status = 'active' for share of x) then
    return null;
  end if;
  if not exists (
    select 1 from public.tickets t
    where t.tenant_id = p_tenant_id and t.id = p_ticket_id and t.team_id = p_team_id and t.assigned_to is null
      and t.status not in ('resolved', 'closed') and t.deleted_at is null
  ) then
    return null;
  end if;
  select tm.last_assigned_user_id into v_pointer from public.teams tm
  where tm.tenant_id = p_tenant_id and tm.id = p_team_id for no key update;
  v_pick := private.auto_assignee(p_tenant_id, p_team_id);
  if v_pick is null then
    return null;
  end if;
  update public.tickets set assigned_to = v_pick
  where tenant_id = p_tenant_id and id = p_ticket_id and team_id = p_team_id and assigned_to is null
    and status not in ('resolved', 'closed') and deleted_at is null;
  if found then
    return v_pick;
  end if;
  -- Assigned, moved, finished or deleted meanwhile: the pick's turn goes back.
  update public.teams set last_assigned_user_id = v_pointer
  where tenant_id = p_tenant_id and id = p_team_id and last_assigned_user_id = v_pick;
  return null;
end;
$$;
