-- A ticket live again with no team is routed again by its department (review of teams,
-- issue 14).
--
-- Department routing ran on a ticket's insert only. A team deleted with settled tickets on
-- it leaves them with no team (20261207127000 refuses only while tickets are open); when
-- one came back to life — reopened by the customer's reply through Chatwoot, by staff or
-- a rule, or restored from deletion — it had no team, and agents see tickets through
-- their teams or an assignment: it sat in no agent's queue, only admins could find it,
-- the very outcome 127000 was written to prevent. Now a ticket that turns live again
-- (from resolved or closed, or restored) with no team and no assignee goes to the team
-- that receives its department's tickets, if there is one: set by its own update, so the
-- team change is audited, on the timeline and in the webhooks as any, and the team's
-- automatic assignment runs (assign_ticket_on_new_team).

create function private.route_live_again_ticket() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_team uuid;
begin
  if new.team_id is not null or new.assigned_to is not null or new.deleted_at is not null
     or new.merged_into_id is not null or new.status in ('resolved', 'closed') then
    return null;
  end if;
  if not (old.status in ('resolved', 'closed') or old.deleted_at is not null) then
    return null; -- live before: routed when it was made, or moved off its team on purpose
  end if;
  select t.id into v_team from public.teams t
  where t.tenant_id = new.tenant_id and t.department = new.department and t.receives_department_tickets;
  if v_team is not null then
    update public.tickets t set team_id = v_team
    where t.tenant_id = new.tenant_id and t.id = new.id and t.team_id is null;
  end if;
  return null;
end;
$$;
revoke all on function private.route_live_again_ticket() from public, anon, authenticated, service_role;
-- z_: after the update's own triggers (AFTER triggers fire in name order), so its webhook
-- and timeline entries come before those of the team change it makes.
create trigger z_route_live_again_ticket after update of status, deleted_at on public.tickets
  for each row when (new.team_id is null) execute function private.route_live_again_ticket();
