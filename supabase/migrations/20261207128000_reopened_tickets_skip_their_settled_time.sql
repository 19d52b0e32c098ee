-- A reopened ticket's SLA does not count the time it sat resolved (review of the SLA,
-- issue 14).
--
-- Reopening a resolved (or closed) ticket cleared resolved_at and left its first-response
-- and resolution due dates where they were: days later they were long past, so the next
-- SLA sweep breached the ticket at once, escalated it and posted "SLA breached: not
-- resolved by the due date", a message its customer sees. The next-response clock had the
-- same fault, fixed by 20261207105000 ("the clock did not run while it was settled"); the
-- other two now follow: on reopening, both move by the time the ticket sat settled
-- (from resolved_at, in the policy's business time), as they move by a wait on the
-- customer, and the minutes join sla_paused_minutes (a later change of policy counts
-- them too). A due date the reopening update itself names is kept.

-- Redefined (20261206132000_next_response_follows_the_policy.sql): the settled time too.
create or replace function private.tickets_sla_pause() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_hours jsonb;
  v_minutes int;
  v_since timestamptz;
  v_owed_minutes int;
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
      -- The next-response clock runs from the reply owed: only the part of the wait
      -- after it counts (a follower's reply while the ticket waited restarted the clock
      -- without ending the wait), kept with the reply for a later change of policy.
      select o.since into v_since from private.ticket_replies_owed o
      where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      v_owed_minutes := case when v_since is null then v_minutes
        else private.business_minutes_between(greatest(old.sla_paused_at, v_since), now(), v_hours) end;
      if v_since is not null and v_owed_minutes > 0 then
        update private.ticket_replies_owed o set paused_minutes = o.paused_minutes + v_owed_minutes
        where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      end if;
      -- A customer reply that ends the wait restarts this clock in the same statement:
      -- only a due time set before the pause moves. A change of priority or team has
      -- computed it again, this wait included (tickets_sla_next_response).
      if new.next_response_due_at is not null and new.next_response_due_at is not distinct from old.next_response_due_at
         and new.priority is not distinct from old.priority and new.team_id is not distinct from old.team_id
         and v_owed_minutes > 0 then
        new.next_response_due_at := case when v_hours is null
          then new.next_response_due_at + make_interval(mins => v_owed_minutes)
          else private.add_business_minutes(new.next_response_due_at, v_owed_minutes, v_hours) end;
      end if;
      new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
    end if;
    new.sla_paused_at := null;
  end if;
  -- Reopened (resolved or closed, then active again): the time it sat settled does not
  -- count against its first response or resolution, as a wait on the customer does not.
  -- The next-response clock starts afresh (tickets_before_update); a due date this very
  -- update names is kept.
  if old.status in ('resolved', 'closed') and new.status not in ('resolved', 'closed') and old.resolved_at is not null then
    v_hours := (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).business_hours;
    v_minutes := private.business_minutes_between(old.resolved_at, now(), v_hours);
    if v_minutes > 0 then
      if new.first_response_at is null and new.first_response_due_at is not null then
        new.first_response_due_at := case when v_hours is null
          then new.first_response_due_at + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.first_response_due_at, v_minutes, v_hours) end;
      end if;
      -- The ticket's own due date: unchanged by this update, or computed again by it for a
      -- new priority or team (tickets_before_update, from the paused minutes before this
      -- reopening) — not one the update names.
      if new.due_date is not null
         and coalesce(pg_catalog.current_setting('private.due_date_named', true), '') <> 'on'
         and (new.due_date is not distinct from old.due_date
              or ((new.priority is distinct from old.priority or new.team_id is distinct from old.team_id)
                  and new.due_date is not distinct from (private.apply_sla(new)).due_date)) then
        new.due_date := case when v_hours is null
          then new.due_date + make_interval(mins => v_minutes)
          else private.add_business_minutes(new.due_date, v_minutes, v_hours) end;
      end if;
      new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
    end if;
  end if;
  return new;
end;
$$;
revoke all on function private.tickets_sla_pause() from public, anon, authenticated;

-- The trigger ran only for changes into or out of pending: a reopening too now.
drop trigger tickets_sla_pause on public.tickets;
create trigger tickets_sla_pause before update of status on public.tickets
  for each row when (old.status is distinct from new.status
                     and (old.status in ('pending', 'resolved', 'closed') or new.status = 'pending'))
  execute function private.tickets_sla_pause();
