-- A live ticket left with no team and no assignee when its agent is removed or demoted
-- goes to the team that receives its department's tickets (review of members and
-- invitations).
--
-- Removing an agent unassigns their tickets (the foreign key sets assigned_to to null),
-- and so does demoting them to customer (unassign_on_demotion). A live ticket assigned
-- to them directly, on no team, then sat in no agent's queue (agents see their teams'
-- tickets and those assigned to them): only admins could find it, the outcome
-- 20261207127000 and 20261207188000 were written to prevent. Now, before the removal or
-- with the demotion (before its unassignment, by trigger name), such a ticket goes to
-- its department's receiving team, if there is one: a team change like any (audited, on
-- the timeline and in the webhooks), whose automatic assignment then runs
-- (assign_ticket_on_new_team). Tickets on a team stay there, visible to its agents.
-- Locks as the unassignment takes them: the membership, then the tickets by id.

create function private.route_tickets_of_leaving_agent(p_tenant_id uuid, p_user_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  perform 1 from public.tickets t
  where t.tenant_id = p_tenant_id and t.assigned_to = p_user_id and t.team_id is null
    and t.deleted_at is null and t.merged_into_id is null and t.status not in ('resolved', 'closed')
  order by t.id for no key update;
  update public.tickets t set team_id = r.id
  from public.teams r
  where t.tenant_id = p_tenant_id and t.assigned_to = p_user_id and t.team_id is null
    and t.deleted_at is null and t.merged_into_id is null and t.status not in ('resolved', 'closed')
    and r.tenant_id = t.tenant_id and r.department = t.department and r.receives_department_tickets;
end;
$$;
revoke all on function private.route_tickets_of_leaving_agent(uuid, uuid) from public, anon, authenticated, service_role;

create function private.route_tickets_of_removed_agent() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.route_tickets_of_leaving_agent(old.tenant_id, old.user_id);
  return old;
end;
$$;
revoke all on function private.route_tickets_of_removed_agent() from public, anon, authenticated, service_role;
-- Before the delete, after the checks that may refuse it (keep_last_admin,
-- member_change_by_admin_in_office: BEFORE triggers fire in name order), while the
-- tickets still name the agent (the foreign key's set null comes after the delete).
create trigger route_tickets_of_removed_agent before delete on public.memberships
  for each row when (old.role <> 'user') execute function private.route_tickets_of_removed_agent();

create function private.route_tickets_of_demoted_agent() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  perform private.route_tickets_of_leaving_agent(new.tenant_id, new.user_id);
  return null;
end;
$$;
revoke all on function private.route_tickets_of_demoted_agent() from public, anon, authenticated, service_role;
-- Before unassign_on_demotion (AFTER triggers fire in name order), while the tickets
-- still name the agent.
create trigger route_tickets_of_demoted_agent after update of role on public.memberships
  for each row when (new.role = 'user' and old.role <> 'user') execute function private.route_tickets_of_demoted_agent();
