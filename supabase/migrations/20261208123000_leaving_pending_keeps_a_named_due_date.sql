-- Leaving pending keeps a due date the same update names (review of the SLA, issue 14).
--
-- The end of a wait on the customer pushed the ticket's due date out by the wait whatever
-- the update did to it: `update tickets set status = 'open', due_date = '…20 17:00'` on a
-- ticket pending two hours stored 19:00, and through PATCH /tickets/{id} the same. The
-- reopening of a settled ticket already kept a due date its update names
-- (20261207128000); the end of a wait now asks the same question: the due date moves
-- when the update left it alone, or when it was computed again for a new priority or
-- team (from the paused minutes before this wait), not when the update names it.

-- Redefined (20261207128000_reopened_tickets_skip_their_settled_time.sql): the wait's
-- push leaves a named due date.
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
      -- its due date must not count the wait. As on reopening: the due date unchanged by
      -- this update, or computed again by it for a new priority or team — not one it names.
      if old.resolved_at is null and new.due_date is not null
         and coalesce(pg_catalog.current_setting('private.due_date_named', true), '') <> 'on'
         and (new.due_date is not distinct from old.due_date
              or ((new.priority is distinct from old.priority or new.team_id is distinct from old.team_id)
                  and new.due_date is not distinct from (private.apply_sla(new)).due_date)) then
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
