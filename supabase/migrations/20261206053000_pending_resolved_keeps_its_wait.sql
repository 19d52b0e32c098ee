-- A ticket resolved straight from pending keeps the wait off its resolution clock.
--
-- Leaving pending pushes the open due dates out by the time the ticket waited, and adds
-- that time to sla_paused_minutes. Going pending → resolved, tickets_before_update (which
-- runs before tickets_sla_pause, by name) had already set resolved_at, so the resolution
-- due date was not pushed although the wait was counted: reopened, the ticket breached
-- its resolution target as if it had never waited (and a priority change, which
-- recomputes from sla_paused_minutes, then gave it another due date). The push now asks
-- whether the ticket was resolved before this change.

-- Redefined (20261202141000_sla_policies_per_team.sql): old.resolved_at.
create or replace function private.tickets_sla_pause() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_hours jsonb;
  v_minutes int;
begin
  if new.status = 'pending' and new.sla_paused_at is null then
    new.sla_paused_at := now();
  elsif new.status <> 'pending' and old.sla_paused_at is not null then
    v_hours := (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).business_hours;
    v_minutes := private.business_minutes_between(old.sla_paused_at, now(), v_hours);
    if v_minutes > 0 then
      if new.first_response_at is null and new.first_response_due_at is not null then
        new.first_response_due_at := case when v_hours is null
          then new.first_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.first_response_due_at, v_minutes, v_hours) end;
      end if;
      -- A ticket resolved straight from pending (its resolved_at set by
      -- tickets_before_update, which runs first) still had its clock stopped: reopened,
      -- its due date must not count the wait.
      if old.resolved_at is null and new.due_date is not null then
        new.due_date := case when v_hours is null
          then new.due_date + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.due_date, v_minutes, v_hours) end;
      end if;
      -- A customer reply that ends the wait restarts this clock in the same statement:
      -- only a due time set before the pause moves.
      if new.next_response_due_at is not null and new.next_response_due_at is not distinct from old.next_response_due_at then
        new.next_response_due_at := case when v_hours is null
          then new.next_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.next_response_due_at, v_minutes, v_hours) end;
      end if;
      new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
    end if;
    new.sla_paused_at := null;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_sla_pause() from public, anon, authenticated;
