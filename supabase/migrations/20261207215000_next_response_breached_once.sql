-- A missed next response is breached once, whatever the ticket's priority or team does
-- meanwhile (review of SLA, issue 14).
--
-- A priority or team change stops the next-response clock when no policy of the new one
-- has the target, and starts it again, from the same customer reply, when one has: each
-- cleared the breach mark (private.tickets_sla_next_response). A reply breached, the
-- ticket moved to a priority without the target and back, was breached again at the next
-- sweep: a second system message the customer reads, a second timeline event and
-- ticket.sla_breached, one missed reply counted twice. The mark now stays while the
-- reply it was for is still owed.

-- Redefined (20261206132000_next_response_follows_the_policy.sql): the mark of the reply
-- still owed stays.
create or replace function private.tickets_sla_next_response() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_policy public.sla_policies;
  v_owed private.ticket_replies_owed;
  v_waited int;
begin
  if new.next_response_due_at is not distinct from old.next_response_due_at then
    v_policy := private.sla_policy_for(new.tenant_id, new.team_id, new.priority);
    select * into v_owed from private.ticket_replies_owed o where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
    if v_policy.next_response_minutes is null or v_owed.since is null then
      new.next_response_due_at := null;
    else
      v_waited := v_owed.paused_minutes;
      -- A wait this update ends (tickets_sla_pause, next by name, keeps it only after).
      if old.sla_paused_at is not null and new.status <> 'pending' then
        v_waited := v_waited + private.business_minutes_between(
          greatest(old.sla_paused_at, v_owed.since), now(), v_policy.business_hours);
      end if;
      new.next_response_due_at := case when v_policy.business_hours is null
        then v_owed.since + make_interval(mins => v_policy.next_response_minutes + v_waited)
        else private.add_business_minutes(v_owed.since, v_policy.next_response_minutes + v_waited,
                                          v_policy.business_hours) end;
    end if;
  end if;
  -- Stopped, or a new clock: the mark goes, unless it is the mark of the reply still owed
  -- (a change of priority or team stopped the clock and another started it again for
  -- that same reply: one missed reply, one breach). A new customer reply clears it
  -- where the message is written.
  if (new.next_response_due_at is null or old.next_response_due_at is null)
     and (old.sla_next_response_breached_at is null or not exists (
       select 1 from private.ticket_replies_owed o
       where o.tenant_id = new.tenant_id and o.ticket_id = new.id and o.since <= old.sla_next_response_breached_at)) then
    new.sla_next_response_breached_at := null;
  end if;
  return new;
end;
$$;
