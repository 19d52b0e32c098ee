-- A target met late (20261207221000) is told after the update that met it, with what it
-- is, starts no automation rule, and an answer written during a wait that began overdue
-- is judged too (review of 20261207221000, issue 14).
--
-- 20261207221000 wrote its timeline event and ticket.sla_breached from its BEFORE
-- trigger: receivers heard of the breach before the change that answered or resolved the
-- ticket (the sweep tells it after its escalation), and could not tell it from a live
-- breach. The event also reached the automation rules on ticket.sla_breached, whose
-- actions (escalate, reply, notify) are for a ticket still waiting: an answered ticket was
-- escalated again, a resolved one sent a reply. And a first response written while the
-- ticket waited on the customer was never judged, though its due time had passed before
-- the wait began (the sweep skips waiting tickets, and the wait's end no longer moves a
-- met target). Now the BEFORE trigger only marks (by the time the wait began, for an
-- answer during one); an AFTER trigger, named to fire after the outbox's, writes the
-- timeline event (`met_late: true`) and ticket.sla_breached (its data with `met_late`
-- and `at`, the due time); the rules' capture leaves out events met late.

-- Redefined (20261207221000_targets_met_late_are_breaches.sql): marks only; an answer
-- during a wait judged by when the wait began.
create or replace function private.tickets_sla_met_late() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  if old.deleted_at is not null then
    return new;
  end if;
  -- Due before it was met, and, for an answer written during a wait, before the wait
  -- began (the clock stood still from then: due after it, it was met in time).
  if old.first_response_at is null and new.first_response_at is not null
     and old.status not in ('resolved', 'closed') and new.sla_first_response_breached_at is null
     and new.first_response_due_at < least(new.first_response_at, coalesce(new.sla_paused_at, new.first_response_at)) then
    new.sla_first_response_breached_at := new.first_response_due_at;
  end if;
  if old.resolved_at is null and new.resolved_at is not null and new.sla_resolution_breached_at is null
     and new.due_date < new.resolved_at then
    new.sla_resolution_breached_at := new.due_date;
  end if;
  return new;
end;
$$;

-- Tells what tickets_sla_met_late marked: after the update's own events.
create function private.tickets_sla_met_late_told() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_kind text;
  v_due timestamptz;
begin
  for v_kind, v_due in
    select k, d from (values
      ('first_response', case when old.sla_first_response_breached_at is null and new.sla_first_response_breached_at is not null
                               and old.first_response_at is null and new.first_response_at is not null
                          then new.sla_first_response_breached_at end),
      ('resolution', case when old.sla_resolution_breached_at is null and new.sla_resolution_breached_at is not null
                           and old.resolved_at is null and new.resolved_at is not null
                      then new.sla_resolution_breached_at end)) as t(k, d)
    where d is not null
  loop
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (new.tenant_id, new.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', v_due, 'met_late', true));
    perform private.emit_webhook_event(new.tenant_id, 'ticket.sla_breached', 'ticket:' || new.id,
      jsonb_build_object('type', 'ticket.sla_breached', 'tenant_id', new.tenant_id,
        'data', jsonb_build_object('ticket_id', new.id, 'number', new.number, 'kind', v_kind,
                                   'met_late', true, 'at', private.api_timestamp(v_due)),
        'occurred_at', private.api_timestamp(clock_timestamp())));
  end loop;
  return null;
end;
$$;
revoke all on function private.tickets_sla_met_late_told() from public, anon, authenticated;
-- AFTER triggers fire by name too: after webhook_outbox, which tells the update itself.
create trigger z_sla_met_late_told after update on public.tickets
  for each row when ((old.sla_first_response_breached_at is null and new.sla_first_response_breached_at is not null
                      and old.first_response_at is null and new.first_response_at is not null)
                     or (old.sla_resolution_breached_at is null and new.sla_resolution_breached_at is not null
                         and old.resolved_at is null and new.resolved_at is not null))
  execute function private.tickets_sla_met_late_told();

-- The rules on ticket.sla_breached are for tickets still waiting: not for a target met late.
drop trigger automation_capture on public.ticket_events;
create trigger automation_capture after insert on public.ticket_events
  for each row when (new.type = 'sla_breached' and not coalesce((new.data ->> 'met_late')::boolean, false))
  execute function private.automation_capture();
