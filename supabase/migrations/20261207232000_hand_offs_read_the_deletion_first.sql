-- A hand-off reads whether its ticket was deleted before it checks the caller may see it
-- (review of 20261207231000, issue 14).
--
-- 20261207231000 read `deleted_at` after private.can_see_ticket, in a statement of its
-- own: a deletion committed between the two (microseconds) counted as one the caller had
-- seen, and an agent, who may not see deleted tickets, assigned the deleted ticket all
-- the same. Read first, a deletion after the read is always refused by the update.

-- Redefined (20261207231000_hand_offs_skip_tickets_deleted_meanwhile.sql): the deletion
-- read before the check.
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
  v_was_deleted boolean;
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or (p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin()) then
    raise exception 'only staff assign and route tickets' using errcode = 'PT403';
  end if;
  -- Read before the check (each statement here sees what committed before it): a
  -- deletion committed after this read is one the update below refuses, whoever the
  -- check let through; an admin may hand off a ticket deleted before it.
  select t.deleted_at is not null into v_was_deleted from public.tickets t
  where t.tenant_id = p_tenant_id and t.id = p_ticket_id;
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
    -- Read again under the row's lock: a deletion committed since the check above takes
    -- the ticket away (it was assigned all the same, and the answer 200).
    and (deleted_at is null or v_was_deleted)
  returning assigned_to into v_given;
  if not found then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  -- The pick was not used (assigned, finished or deleted meanwhile): its turn goes back.
  if v_set_assignee and not p_set_assignee and v_given is distinct from v_assignee then
    update public.teams set last_assigned_user_id = v_pointer
    where tenant_id = p_tenant_id and id = p_team_id and last_assigned_user_id = v_assignee;
  end if;
end;
$$;
