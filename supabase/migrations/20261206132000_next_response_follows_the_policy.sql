-- The next-response clock follows the ticket's policy when its priority or team changes.
--
-- A priority or team change computes the first-response and resolution due dates again
-- from the policy that now governs the ticket (private.apply_sla), but the next-response
-- clock (started by each customer reply, 20261202050200) kept the old policy's time: an
-- unanswered customer reply on a ticket raised from low (a 4-hour next response) to
-- urgent (15 minutes) was still due four hours after it, and a ticket moved to a team
-- whose policy has no next-response target was breached by the old one. Now:
--   * the new policy has no next-response target: the clock stops;
--   * it has one: the clock runs from the customer reply it was started by (the ticket's
--     latest public message with an author, when that author is the requester or not
--     staff, as private.ticket_messages_after_insert judges), plus the time the ticket
--     has waited on the customer since (taken from how far the old clock had been
--     pushed by pauses, and the pause this update ends: private.tickets_sla_pause now
--     leaves the clock of an update changing priority or team to this function).
--     So a reply still unanswered when a policy with a target comes to govern the ticket
--     starts the clock from that reply, as the due dates run from the ticket's creation.
-- An update that sets next_response_due_at itself keeps it. A breach already recorded
-- stays recorded, as for the other targets.
create function private.tickets_sla_next_response() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_new public.sla_policies := private.sla_policy_for(new.tenant_id, new.team_id, new.priority);
  v_old public.sla_policies;
  v_reply public.ticket_messages;
  v_waited int := 0;
  v_expected timestamptz;
begin
  if new.next_response_due_at is distinct from old.next_response_due_at then
    return new; -- set by this update (or by tickets_before_update, the policy gone)
  end if;
  if v_new.next_response_minutes is null then
    new.next_response_due_at := null;
    return new;
  end if;
  select * into v_reply from public.ticket_messages m
  where m.tenant_id = new.tenant_id and m.ticket_id = new.id and m.type = 'message' and m.author_id is not null
  order by m.created_at desc, m.id desc
  limit 1;
  if v_reply.id is null or (
    v_reply.author_id is distinct from new.created_by and (
      exists (select 1 from public.memberships ms
              where ms.tenant_id = new.tenant_id and ms.user_id = v_reply.author_id and ms.role in ('agent', 'admin'))
      or exists (select 1 from public.platform_admins p where p.user_id = v_reply.author_id))
  ) then
    new.next_response_due_at := null; -- no customer reply waits for an answer
    return new;
  end if;
  -- The waits the old clock was pushed by: how far it runs past its policy's time.
  if old.next_response_due_at is not null then
    v_old := private.sla_policy_for(old.tenant_id, old.team_id, old.priority);
    if v_old.next_response_minutes is not null then
      v_expected := case when v_old.business_hours is null
        then v_reply.created_at + make_interval(mins => v_old.next_response_minutes)
        else private.add_business_minutes(v_reply.created_at, v_old.next_response_minutes, v_old.business_hours) end;
      v_waited := private.business_minutes_between(v_expected, old.next_response_due_at, v_old.business_hours);
    end if;
  end if;
  -- A wait this update ends (tickets_sla_pause leaves this clock to this function).
  if old.sla_paused_at is not null and new.status <> 'pending' then
    v_waited := v_waited + private.business_minutes_between(greatest(old.sla_paused_at, v_reply.created_at), now(), v_new.business_hours);
  end if;
  new.next_response_due_at := case when v_new.business_hours is null
    then v_reply.created_at + make_interval(mins => v_new.next_response_minutes + v_waited)
    else private.add_business_minutes(v_reply.created_at, v_new.next_response_minutes + v_waited, v_new.business_hours) end;
  return new;
end;
$$;
revoke all on function private.tickets_sla_next_response() from public, anon, authenticated;
-- Named to fire after tickets_before_update (which clears the clock when no policy
-- governs the ticket any more) and before tickets_sla_pause (triggers fire by name).
create trigger tickets_sla_next_response before update on public.tickets
for each row when (new.priority is distinct from old.priority or new.team_id is distinct from old.team_id)
execute function private.tickets_sla_next_response();

-- Redefined (20261206053000_pending_resolved_keeps_its_wait.sql): the next-response
-- clock of an update that changes priority or team is tickets_sla_next_response's, the
-- wait this update ends included. Pushing it here too would count that wait twice
-- whenever the clock computed again happened to equal the old one.
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
      -- only a due time set before the pause moves. A change of priority or team has
      -- computed it again, this wait included (tickets_sla_next_response).
      if new.next_response_due_at is not null and new.next_response_due_at is not distinct from old.next_response_due_at
         and new.priority is not distinct from old.priority and new.team_id is not distinct from old.team_id then
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
