-- The automation loop guard across the assign-ticket job (issue 16 §1): a rule's team
-- change leaves an unassigned ticket to that job, whose assignment raises the next event
-- in another transaction. The job now carries the chain of rules behind the team change
-- (private.automation_chain, read when the job is added) and the runner sets it again
-- before assigning (shared/jobs/tasks/assign-ticket.ts), so two rules that hand a ticket
-- between teams stop like any other pair instead of passing it back and forth for ever.
create or replace function private.assign_ticket_on_new_team() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_chain text := nullif(current_setting('private.automation_chain', true), '');
begin
  if new.team_id is not null and new.team_id is distinct from old.team_id and new.assigned_to is null
     and new.status not in ('resolved', 'closed') and new.deleted_at is null then
    perform private.add_job('assign-ticket',
      jsonb_build_object('tenant_id', new.tenant_id, 'ticket_id', new.id, 'team_id', new.team_id)
        || case when v_chain is not null then jsonb_build_object('chain', v_chain) else '{}'::jsonb end,
      'assign-ticket:' || new.tenant_id || ':' || new.id);
  end if;
  return null;
end;
$$;
revoke all on function private.assign_ticket_on_new_team() from public, anon, authenticated, service_role;
