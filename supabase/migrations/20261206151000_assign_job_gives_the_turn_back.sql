-- The assign-ticket job's pick that a concurrent assignment made moot gives the agent
-- their turn back, as hand_off_ticket does since 20261205214000. auto_assignee moves the
-- team's round-robin pointer to its pick; when the ticket was assigned or moved between
-- the job's check and its update, the pick was dropped but the pointer stayed on that
-- agent, who then lost a turn to the next ticket. The pointer as it was is read under the
-- team's lock (taken first, as auto_assignee takes it: teams before tickets) and put back
-- when the pick was not used.

-- Redefined (20261201091000_department_routing.sql): the turn goes back when unused.
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
  where tenant_id = p_tenant_id and id = p_ticket_id and team_id = p_team_id and assigned_to is null;
  if found then
    return v_pick;
  end if;
  -- Assigned or moved meanwhile: the pick's turn goes back.
  update public.teams set last_assigned_user_id = v_pointer
  where tenant_id = p_tenant_id and id = p_team_id and last_assigned_user_id = v_pick;
  return null;
end;
$$;
