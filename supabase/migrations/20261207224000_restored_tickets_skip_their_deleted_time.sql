-- A restored ticket's SLA does not count the time it spent deleted (stop 58's known limit,
-- issue 14).
--
-- A deleted ticket leaves the SLA sweep (deleted_at is null in its indexes), but its due
-- dates stayed where they were: restored days later, they were long past, so the next
-- sweep breached it at once, escalated it and posted "SLA breached" to its customer, for
-- time in which nobody could see it. A pending ticket's pause already covers its time
-- deleted, a resolved or closed one's reopening its time settled; an open or escalated
-- one's first-response, resolution and next-response due dates now move on restoring by
-- the time it spent deleted (in its policy's business time), as they move by a wait on
-- the customer, and the minutes join sla_paused_minutes (a later change of policy counts
-- them too). A due date the restoring update itself changes is kept.

create function private.tickets_sla_restored() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_hours jsonb;
  v_minutes int;
  v_since timestamptz;
  v_owed_minutes int;
begin
  if old.status not in ('open', 'escalated') then
    return new;
  end if;
  v_hours := (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).business_hours;
  v_minutes := private.business_minutes_between(old.deleted_at, now(), v_hours);
  if v_minutes <= 0 then
    return new;
  end if;
  if new.first_response_at is null and new.first_response_due_at is not null
     and new.first_response_due_at is not distinct from old.first_response_due_at then
    new.first_response_due_at := case when v_hours is null
      then new.first_response_due_at + make_interval(mins => v_minutes)
      else private.add_business_minutes(new.first_response_due_at, v_minutes, v_hours) end;
  end if;
  if new.resolved_at is null and new.due_date is not null
     and new.due_date is not distinct from old.due_date then
    new.due_date := case when v_hours is null
      then new.due_date + make_interval(mins => v_minutes)
      else private.add_business_minutes(new.due_date, v_minutes, v_hours) end;
  end if;
  -- The next-response clock runs from the reply owed: only the part of the deletion after
  -- it counts, kept with the reply for a later change of policy (as a wait's is).
  select o.since into v_since from private.ticket_replies_owed o
  where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
  if v_since is not null then
    v_owed_minutes := private.business_minutes_between(greatest(old.deleted_at, v_since), now(), v_hours);
    if v_owed_minutes > 0 then
      update private.ticket_replies_owed o set paused_minutes = o.paused_minutes + v_owed_minutes
      where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      if new.next_response_due_at is not null and new.next_response_due_at is not distinct from old.next_response_due_at then
        new.next_response_due_at := case when v_hours is null
          then new.next_response_due_at + make_interval(mins => v_owed_minutes)
          else private.add_business_minutes(new.next_response_due_at, v_owed_minutes, v_hours) end;
      end if;
    end if;
  end if;
  new.sla_paused_minutes := new.sla_paused_minutes + v_minutes;
  return new;
end;
$$;
revoke all on function private.tickets_sla_restored() from public, anon, authenticated;

create trigger tickets_sla_restored before update of deleted_at on public.tickets
  for each row when (old.deleted_at is not null and new.deleted_at is null)
  execute function private.tickets_sla_restored();
