-- A ticket finished while a pick was made for it takes no agent and no turn (review,
-- issue 14).
--
-- An automatic pick for a ticket (the assign-ticket job's private.auto_assign_ticket, a
-- team change through private.hand_off_ticket) checks that the ticket is still being
-- worked before it asks the team for an agent, but that read takes no lock, and the
-- update that assigns rechecked only the team and that nobody was assigned. A resolve
-- or delete committing in between, while the pick waited for a busy team's lock, left
-- the finished ticket assigned (its agent made a follower) and the team's round-robin
-- moved past that agent, which 20261206059000 set out to prevent. The update now
-- rechecks the ticket's state too, and an unused pick gives the turn back as before.

-- Redefined (20261206151000_assign_job_gives_the_turn_back.sql): no pick for a ticket
-- finished or deleted meanwhile.
create or replace function private.auto_assign_ticket(p_tenant_id uuid, p_ticket_id uuid, p_team_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_pick uuid;
  v_pointer uuid;
begin
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


-- Redefined (20261206059000_finished_tickets_take_no_turn.sql): no pick for a ticket
-- finished or deleted meanwhile.
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
    -- A finished or deleted ticket is nobody's turn (as on the direct path, whose
    -- assignment trigger leaves those alone).
    if v_ticket.team_id is distinct from p_team_id and v_ticket.assigned_to is null
       and v_ticket.status not in ('resolved', 'closed') and v_ticket.deleted_at is null then
      -- The team's pointer as it is, under the lock auto_assignee takes too (level 4).
      select tm.last_assigned_user_id into v_pointer from public.teams tm
      where tm.tenant_id = p_tenant_id and tm.id = p_team_id for no key update;
      v_assignee := private.auto_assignee(p_tenant_id, p_team_id);
      v_set_assignee := v_assignee is not null;
    end if;
  end if;
  update public.tickets set
    assigned_to = case when p_set_assignee then p_assignee
                       when v_set_assignee and assigned_to is null and status not in ('resolved', 'closed')
                            and deleted_at is null then v_assignee
                       else assigned_to end,
    team_id = case when p_set_team then p_team_id else team_id end
  where tenant_id = p_tenant_id and id = p_ticket_id
  returning assigned_to into v_given;
  -- The pick was not used (assigned, finished or deleted meanwhile): its turn goes back.
  if v_set_assignee and not p_set_assignee and v_given is distinct from v_assignee then
    update public.teams set last_assigned_user_id = v_pointer
    where tenant_id = p_tenant_id and id = p_team_id and last_assigned_user_id = v_assignee;
  end if;
end;
$$;

