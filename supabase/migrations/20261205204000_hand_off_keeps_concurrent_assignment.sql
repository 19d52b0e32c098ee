-- A team's pick never overwrites an assignment made meanwhile (issue 14, review of the
-- tickets function).
--
-- hand_off_ticket read the ticket unlocked, saw no assignee, and had the new team pick
-- one (auto_assignee, which waits for the team's row: the lock order puts teams before
-- tickets, so the ticket cannot be locked first). An agent assigning the ticket while it
-- waited was then overwritten by the pick. The UPDATE now gives the pick only to a ticket
-- still unassigned: under READ COMMITTED it re-reads the row it waited for, so the
-- assignment made meanwhile stays. An assignee the caller names is set as before.

-- Redefined (20261201091000_department_routing.sql).
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
      v_assignee := private.auto_assignee(p_tenant_id, p_team_id);
      v_set_assignee := v_assignee is not null;
    end if;
  end if;
  update public.tickets set
    assigned_to = case when p_set_assignee then p_assignee
                       when v_set_assignee and assigned_to is null then v_assignee
                       else assigned_to end,
    team_id = case when p_set_team then p_team_id else team_id end
  where tenant_id = p_tenant_id and id = p_ticket_id;
end;
$$;

