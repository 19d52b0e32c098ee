-- An automatic pick passes over an agent whose membership is being changed (review of
-- teams, issue 14).
--
-- auto_assignee read the team's candidates without a lock, then check_ticket_assignee
-- waited for the picked agent's membership row. An admin demoting or removing that agent
-- at the same moment made the pick wait for the change and then refuse it: a customer's
-- new ticket answered 422 naming `assigned_to`, a field they never sent (an agent's
-- hand-off too), and where the agent was the team's lead the removal's cascade, which
-- clears the lead under the team's lock, deadlocked with the pick holding the team. Now
-- the pick takes the candidate's membership FOR SHARE, skipping one held by a change
-- under way: the next agent is picked, and check_ticket_assignee finds the lock already
-- held. Assignments by hand still wait and check, as before.

-- Redefined (20261206039000_disabled_people_not_assigned.sql): candidates being changed
-- are skipped.
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
    limit 1
    for share of m skip locked;
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
    limit 1
    for share of m skip locked;
  end if;
  if v_pick is not null then
    update public.teams set last_assigned_user_id = v_pick where tenant_id = p_tenant_id and id = p_team_id;
  end if;
  return v_pick;
end;
$$;
