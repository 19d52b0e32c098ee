-- Customer tickets reach someone (issue 11 §4).
--
-- A customer files a ticket with a department but may not choose a team
-- (tickets_before_insert), and tickets are visible to agents through their teams — so a
-- customer's ticket used to wait, unseen by every agent, until an admin set its team.
-- Now a tenant names one team per department to receive that department's tickets, and
-- auto-assignment runs whenever a ticket gains a team, not only when it is created with
-- one:
--   * created without a team: the department's team, then that team's auto-assignment
--     (tickets_before_insert_route fires between tickets_before_insert and
--     tickets_before_insert_rules, by name);
--   * routed through the API (private.hand_off_ticket): the new team's pick, in the same
--     statement, when no assignee is given or kept;
--   * routed straight through PostgREST (an UPDATE of team_id): a job, `assign-ticket`,
--     assigns it right after the commit. An UPDATE holds the ticket's row lock before any
--     trigger runs, and picking an assignee locks the team (level 4 of the lock order in
--     20261126100000_conventions.sql) — a trigger doing it there would take them in the
--     wrong order; the job takes the team first, then the ticket.

-- ------------------------------------------------------------------ the department's team

alter table public.teams
  add column receives_department_tickets boolean not null default false;
comment on column public.teams.receives_department_tickets is
  'This team receives the tickets of its department that are filed without a team (one team per department).';
-- One receiving team per department and tenant: naming a second is a conflict (409).
create unique index teams_department_receiver_key on public.teams (tenant_id, department)
  where receives_department_tickets;
grant insert (receives_department_tickets), update (receives_department_tickets) on public.teams to authenticated;

-- Runs as the owner: a customer filing a ticket need not see the tenant's teams.
create function private.route_ticket_by_department() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.team_id is null then
    select t.id into new.team_id from public.teams t
    where t.tenant_id = new.tenant_id and t.department = new.department and t.receives_department_tickets;
  end if;
  return new;
end;
$$;
revoke all on function private.route_ticket_by_department() from public, anon, authenticated, service_role;
create trigger tickets_before_insert_route before insert on public.tickets
  for each row execute function private.route_ticket_by_department();

-- ------------------------------------------------------------------ gaining a team

-- Redefined (20261126101100_tickets_operations.sql): a ticket handed to a team with no
-- assignee given, and none kept, gets the team's pick. auto_assignee locks the team
-- before the UPDATE locks the ticket: the lock order's way round.
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
    assigned_to = case when v_set_assignee then v_assignee else assigned_to end,
    team_id = case when p_set_team then p_team_id else team_id end
  where tenant_id = p_tenant_id and id = p_ticket_id;
end;
$$;

-- The assignment a job makes after a direct UPDATE gave a ticket a team: the team's
-- pick, if the ticket is still on that team, unassigned and not finished. Team first
-- (auto_assignee), then the ticket. Returns the assignee, or null.
create function private.auto_assign_ticket(p_tenant_id uuid, p_ticket_id uuid, p_team_id uuid) returns uuid
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_pick uuid;
begin
  if not exists (
    select 1 from public.tickets t
    where t.tenant_id = p_tenant_id and t.id = p_ticket_id and t.team_id = p_team_id and t.assigned_to is null
      and t.status not in ('resolved', 'closed') and t.deleted_at is null
  ) then
    return null;
  end if;
  v_pick := private.auto_assignee(p_tenant_id, p_team_id);
  if v_pick is null then
    return null;
  end if;
  update public.tickets set assigned_to = v_pick
  where tenant_id = p_tenant_id and id = p_ticket_id and team_id = p_team_id and assigned_to is null;
  return case when found then v_pick end;
end;
$$;
revoke all on function private.auto_assign_ticket(uuid, uuid, uuid) from public, anon, authenticated;
grant execute on function private.auto_assign_ticket(uuid, uuid, uuid) to service_role;

-- A direct UPDATE that gave a ticket a team and left it unassigned adds the job (one per
-- ticket: its key). The job row comes after the ticket's, as the lock order has it.
create function private.assign_ticket_on_new_team() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if new.team_id is not null and new.team_id is distinct from old.team_id and new.assigned_to is null
     and new.status not in ('resolved', 'closed') and new.deleted_at is null then
    perform private.add_job('assign-ticket',
      jsonb_build_object('tenant_id', new.tenant_id, 'ticket_id', new.id, 'team_id', new.team_id),
      'assign-ticket:' || new.tenant_id || ':' || new.id);
  end if;
  return null;
end;
$$;
revoke all on function private.assign_ticket_on_new_team() from public, anon, authenticated, service_role;
create trigger assign_ticket_on_new_team after update of team_id on public.tickets
  for each row execute function private.assign_ticket_on_new_team();
