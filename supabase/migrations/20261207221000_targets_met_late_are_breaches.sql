-- A first response or a resolution that comes after its due time is a breach, whether or
-- not the sweep saw it first (review of SLA, issue 14).
--
-- Only the sweep (private.run_sla_sweep, each minute, 500 tickets a kind) marked a
-- breach, and it passes over a ticket already answered or resolved: an answer 40 seconds
-- late, one written while the sweep was behind (workers down, a backlog) or while its row
-- was locked (the sweep skips locked rows), was never a breach: `?sla_breached=true`, the
-- statistics and the receivers of ticket.sla_breached undercounted exactly when targets
-- were being missed. Now the update that meets a target late marks it, as of its due
-- time, with the timeline event and the outbound event the sweep writes (no escalation
-- nor system message: the ticket is being answered or resolved). A first response
-- written while the ticket waits on the customer (its clocks stopped: the due time moves
-- when the wait ends) or once it is settled is not judged here; a resolution is, by the
-- due date the end of a wait has moved; a target already marked is not marked again.

create function private.tickets_sla_met_late() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_kind text;
  v_due timestamptz;
begin
  if old.deleted_at is not null then
    return new;
  end if;
  for v_kind, v_due in
    select k, d from (values
      ('first_response', case when old.first_response_at is null and new.first_response_at is not null
                               and old.status not in ('resolved', 'closed') and new.sla_paused_at is null
                               and new.sla_first_response_breached_at is null
                               and new.first_response_due_at < new.first_response_at
                          then new.first_response_due_at end),
      ('resolution', case when old.resolved_at is null and new.resolved_at is not null
                           and new.sla_resolution_breached_at is null
                           and new.due_date < new.resolved_at
                      then new.due_date end)) as t(k, d)
    where d is not null
  loop
    if v_kind = 'first_response' then
      new.sla_first_response_breached_at := v_due;
    else
      new.sla_resolution_breached_at := v_due;
    end if;
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (new.tenant_id, new.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', v_due, 'met_late', true));
    perform private.emit_webhook_event(new.tenant_id, 'ticket.sla_breached', 'ticket:' || new.id,
      jsonb_build_object('type', 'ticket.sla_breached', 'tenant_id', new.tenant_id,
        'data', jsonb_build_object('ticket_id', new.id, 'number', new.number, 'kind', v_kind),
        'occurred_at', private.api_timestamp(clock_timestamp())));
  end loop;
  return new;
end;
$$;
revoke all on function private.tickets_sla_met_late() from public, anon, authenticated;
-- After tickets_before_update (which sets resolved_at) and tickets_sla_pause (which moves
-- a waiting ticket's due times as its wait ends, a resolution straight from pending too):
-- triggers fire by name.
create trigger tickets_sla_targets_met_late before update of status, first_response_at on public.tickets
  for each row when (new.first_response_at is distinct from old.first_response_at or new.status is distinct from old.status)
  execute function private.tickets_sla_met_late();
