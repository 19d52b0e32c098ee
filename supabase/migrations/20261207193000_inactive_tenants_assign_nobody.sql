-- The assign-ticket job assigns nobody in a tenant that is not active (review of the tenant
-- lifecycle, issue 14).
--
-- A ticket given a team through a direct update just before its tenant was suspended or
-- deleted queued the team's automatic assignment, which ran after the suspension: an
-- assignment in a read-only tenant, with its follow, notification and webhook, where the
-- rule is that a suspended or deleted tenant gets no automated writes. Now the job's pick
-- returns nobody unless the tenant is active (the ticket stays unassigned, as one
-- routed while no agent was available).

-- Redefined (20261207109000_finished_tickets_take_no_pick.sql): the tenant is active.
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
  if not exists (select 1 from public.tenants x where x.id = p_tenant_id and x.status = 'active') then
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
