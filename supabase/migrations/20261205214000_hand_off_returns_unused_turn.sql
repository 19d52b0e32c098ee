-- A team's pick that a concurrent assignment made moot gives the agent their turn back
-- (issue 14, review of 20261205204000_hand_off_keeps_concurrent_assignment.sql).
--
-- auto_assignee moves the team's round-robin pointer to its pick. When the ticket had
-- been assigned meanwhile, the pick is dropped but the pointer stayed on that agent, who
-- then lost a turn to the next ticket. The pointer as it was is read with the team's
-- lock (taken first here, as auto_assignee takes it: teams before tickets) and put back
-- when the pick was not used.

-- Redefined (20261205204000_hand_off_keeps_concurrent_assignment.sql).
create or replace function private.hand_off_ticket(
  p_tenant_id uuid, p_ticket_id uuid,
  p_set_assignee boolean, p_assignee uuid,
  p_set_team boolean, p_team_id uuid
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_assignee uuid := p_assignee;
  v_set_assignee boolean := p_set_assignee;
  v_pointer uuid;
  v_given uuid;
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or (p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin()) then
    raise exception 'only staff assign and route tickets' using errcode = 'PT403';
  end if;
  if not private.can_see_ticket(p_tenant_id, p_ticket_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  if p_set_team and p_team_id is not null and not p_set_assignee then
    select * into v_ticket from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_ticket_id;
    if v_ticket.team_id is distinct from p_team_id and v_ticket.assigned_to is null then
      -- The team's pointer as it is, under the lock auto_assignee takes too (level 4).
      select tm.last_assigned_user_id into v_pointer from public.teams tm
      where tm.tenant_id = p_tenant_id and tm.id = p_team_id for no key update;
      v_assignee := private.auto_assignee(p_tenant_id, p_team_id);
      v_set_assignee := v_assignee is not null;
    end if;
  end if;
  update public.tickets set
    assigned_to = case when p_set_assignee then p_assignee
                       when v_set_assignee and assigned_to is null then v_assignee
                       else assigned_to end,
    team_id = case when p_set_team then p_team_id else team_id end
  where tenant_id = p_tenant_id and id = p_ticket_id
  returning assigned_to into v_given;
  -- The pick was not used (assigned meanwhile): its turn goes back.
  if v_set_assignee and not p_set_assignee and v_given is distinct from v_assignee then
    update public.teams set last_assigned_user_id = v_pointer
    where tenant_id = p_tenant_id and id = p_team_id and last_assigned_user_id = v_assignee;
  end if;
end;
$$;

