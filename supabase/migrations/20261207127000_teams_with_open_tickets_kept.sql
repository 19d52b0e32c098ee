-- A team with open tickets is not deleted (review of teams and routing, issue 14).
--
-- Deleting a team set its tickets' team_id to null (on delete set null) and nothing
-- routed them again: department routing runs on a ticket's insert, and the assignment
-- job ignores a ticket without a team. Agents see tickets through their teams or an
-- assignment, so the team's open, unassigned tickets left every agent's queue — only
-- admins could still find them. Now a team whose tickets are not all settled (resolved
-- or closed; deleted ones do not count) is refused with 409 `team_has_open_tickets`
-- naming how many, on every path: move them to another team first. A tenant deleted
-- outright takes its teams along as before.

create function private.team_delete_guard() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_open int;
begin
  -- The tenant's own deletion (a cascade): everything goes.
  if not exists (select 1 from public.tenants t where t.id = old.tenant_id) then
    return old;
  end if;
  select count(*) into v_open from public.tickets t
  where t.tenant_id = old.tenant_id and t.team_id = old.id
    and t.deleted_at is null and t.status not in ('resolved', 'closed');
  if v_open > 0 then
    raise exception 'The team still has % open ticket(s): move them to another team first', v_open
      using errcode = 'PT409',
        detail = jsonb_build_object('code', 'team_has_open_tickets', 'details', jsonb_build_object('open_tickets', v_open))::text;
  end if;
  return old;
end;
$$;
revoke all on function private.team_delete_guard() from public, anon, authenticated;
create trigger team_delete_guard before delete on public.teams
  for each row execute function private.team_delete_guard();
