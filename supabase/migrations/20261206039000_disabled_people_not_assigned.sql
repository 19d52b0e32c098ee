-- A person disabled on the platform is given no tickets.
--
-- A platform admin disables a user (users.status = 'disabled': they can no longer sign
-- in). Round robin and least-open kept picking them for new tickets of their teams, and
-- a manual assignment to them went through, so those tickets sat with someone who could
-- not open them until their SLA broke. Now the automatic picks skip them, and assigning
-- them is refused (422 naming assigned_to, "is disabled on the platform"). Tickets they
-- already hold stay theirs until someone reassigns them.

-- Redefined (20261126100900_tickets_rules.sql): active people only.
create or replace function private.auto_assignee(p_tenant_id uuid, p_team_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_team public.teams;
  v_pick uuid;
begin
  select * into v_team from public.teams t where t.tenant_id = p_tenant_id and t.id = p_team_id for no key update;
  if v_team.id is null or v_team.auto_assign = 'none' then
    return null;
  end if;
  if v_team.auto_assign = 'round_robin' then
    -- The next available agent after the last one picked, in a stable order.
    select tm.user_id into v_pick
    from public.team_members tm
    join public.memberships m on m.tenant_id = tm.tenant_id and m.user_id = tm.user_id
    join public.users u on u.id = tm.user_id and u.status = 'active'
    where tm.tenant_id = p_tenant_id and tm.team_id = p_team_id
      and m.role in ('agent', 'admin') and m.available
    order by (tm.user_id <= coalesce(v_team.last_assigned_user_id, '00000000-0000-0000-0000-000000000000')), tm.user_id
    limit 1;
  else
    select tm.user_id into v_pick
    from public.team_members tm
    join public.memberships m on m.tenant_id = tm.tenant_id and m.user_id = tm.user_id
    join public.users u on u.id = tm.user_id and u.status = 'active'
    where tm.tenant_id = p_tenant_id and tm.team_id = p_team_id
      and m.role in ('agent', 'admin') and m.available
    order by (
      select count(*) from public.tickets t
      where t.tenant_id = p_tenant_id and t.assigned_to = tm.user_id
        and t.status in ('open', 'pending', 'escalated') and t.deleted_at is null
    ), tm.user_id
    limit 1;
  end if;
  if v_pick is not null then
    update public.teams set last_assigned_user_id = v_pick where tenant_id = p_tenant_id and id = p_team_id;
  end if;
  return v_pick;
end;
$$;

-- Redefined (20261126100900_tickets_rules.sql): an assignee who is disabled is refused.
create or replace function private.check_ticket_assignee(p_tenant_id uuid, p_user_id uuid) returns void
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_user_id is not null and not exists (
    select 1 from public.memberships m
    where m.tenant_id = p_tenant_id and m.user_id = p_user_id and m.role in ('agent', 'admin')
  ) then
    raise exception 'the assignee must be an agent or admin of this tenant'
      using errcode = '23514', constraint = 'tickets_assignee_role_check', column = 'assigned_to';
  end if;
  if p_user_id is not null and not exists (select 1 from public.users u where u.id = p_user_id and u.status = 'active') then
    raise exception 'the assignee is disabled on the platform'
      using errcode = '23514', constraint = 'tickets_assignee_active_check', column = 'assigned_to';
  end if;
end;
$$;
