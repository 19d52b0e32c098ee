-- Review of this stop's last migrations (members and invitations).
--
-- 1. A leaving agent's ticket routed to its department's team (20261207208000) was given
--    the team while still naming the agent, and unassigned after by another update: the
--    team's automatic assignment fires only on a team change of an unassigned ticket, so
--    it never ran and the ticket sat on the team unassigned. The routing now unassigns it
--    in the same update (the agent is leaving it either way), and the assignment runs.
-- 2. 20261207207000 let a suspended tenant's admins remove members, the admin's own
--    membership included: an admin could leave a suspended tenant, which a member may
--    not (a row of the tenant's). Admins remove others while suspended; leaving waits.

-- Redefined (20261207208000_tickets_of_leaving_agents_routed.sql): unassigned with the
-- routing.
create or replace function private.route_tickets_of_leaving_agent(p_tenant_id uuid, p_user_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  perform 1 from public.tickets t
  where t.tenant_id = p_tenant_id and t.assigned_to = p_user_id and t.team_id is null
    and t.deleted_at is null and t.merged_into_id is null and t.status not in ('resolved', 'closed')
  order by t.id for no key update;
  update public.tickets t set team_id = r.id, assigned_to = null
  from public.teams r
  where t.tenant_id = p_tenant_id and t.assigned_to = p_user_id and t.team_id is null
    and t.deleted_at is null and t.merged_into_id is null and t.status not in ('resolved', 'closed')
    and r.tenant_id = t.tenant_id and r.department = t.department and r.receives_department_tickets;
end;
$$;

drop policy memberships_delete on public.memberships;
create policy memberships_delete on public.memberships for delete to authenticated
  using (
    (user_id = (select private.current_user_id()) and tenant_id = any ((select private.tenant_ids('user', true))::uuid[]))
    or (tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
        and (user_id <> (select private.current_user_id()) or tenant_id = any ((select private.tenant_ids('user', true))::uuid[])))
    or (select private.is_platform_admin())
  );
