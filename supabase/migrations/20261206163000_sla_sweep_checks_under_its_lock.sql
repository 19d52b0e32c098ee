-- The SLA sweep checks each ticket again under its lock, against the due time it has then.
--
-- The sweep picks its candidates in one read, then locks and handles them one by one.
-- Under the lock it looked again at the status and at whether the target was met, but
-- not at the due time itself (but for the next response), nor at a deletion: a ticket
-- whose due time a commit moved later while the sweep worked through the batch (a
-- priority lowered, a new due_date) was breached and escalated anyway, a ticket deleted
-- meanwhile too, and a warning went out for a ticket since made pending or resolved, or
-- for a due time it no longer had. Now the breach needs the due time the ticket has under
-- the lock to be past, and the warning needs the ticket still open to that target at the
-- due time the warning names.

-- Redefined (20261206041000_inactive_tenants_left_alone.sql): the checks under the lock.
create or replace function private.run_sla_sweep(p_now timestamptz default now(), p_limit int default 500)
returns int
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_due record;
  v_ticket public.tickets;
  v_kind text;
  v_count int := 0;
begin
  for v_due in
    (select t.tenant_id, t.id, 'first_response'::text as kind from public.tickets t
     where t.first_response_at is null and t.sla_first_response_breached_at is null and t.deleted_at is null
       and t.first_response_due_at <= p_now and t.status not in ('pending', 'resolved', 'closed')
       and exists (select 1 from public.tenants n where n.id = t.tenant_id and n.status = 'active')
     order by t.first_response_due_at limit p_limit)
    union all
    (select t.tenant_id, t.id, 'resolution'::text from public.tickets t
     where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
       and t.due_date <= p_now and t.status not in ('pending', 'resolved', 'closed')
       and exists (select 1 from public.tenants n where n.id = t.tenant_id and n.status = 'active')
     order by t.due_date limit p_limit)
    union all
    (select t.tenant_id, t.id, 'next_response'::text from public.tickets t
     where t.sla_next_response_breached_at is null and t.deleted_at is null
       and t.next_response_due_at <= p_now and t.status not in ('pending', 'resolved', 'closed')
       and exists (select 1 from public.tenants n where n.id = t.tenant_id and n.status = 'active')
     order by t.next_response_due_at limit p_limit)
  loop
    v_kind := v_due.kind;
    -- Re-read under a row lock; a concurrent sweep that got there first wins.
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null or v_ticket.deleted_at is not null or v_ticket.status in ('pending', 'resolved', 'closed');
    continue when (v_kind = 'first_response' and (v_ticket.sla_first_response_breached_at is not null or v_ticket.first_response_at is not null
                                                  or v_ticket.first_response_due_at is null or v_ticket.first_response_due_at > p_now))
               or (v_kind = 'resolution' and (v_ticket.sla_resolution_breached_at is not null or v_ticket.resolved_at is not null
                                              or v_ticket.due_date is null or v_ticket.due_date > p_now))
               or (v_kind = 'next_response' and (v_ticket.sla_next_response_breached_at is not null
                                                 or v_ticket.next_response_due_at is null or v_ticket.next_response_due_at > p_now));
    update public.tickets set
      sla_first_response_breached_at = case when v_kind = 'first_response' then p_now else sla_first_response_breached_at end,
      sla_resolution_breached_at = case when v_kind = 'resolution' then p_now else sla_resolution_breached_at end,
      sla_next_response_breached_at = case when v_kind = 'next_response' then p_now else sla_next_response_breached_at end,
      status = case when status = 'open' then 'escalated' else status end
    where tenant_id = v_ticket.tenant_id and id = v_ticket.id;
    insert into public.ticket_messages (tenant_id, ticket_id, type, content)
    values (v_ticket.tenant_id, v_ticket.id, 'system',
            case v_kind when 'first_response' then 'SLA breached: no first response by the due time.'
                        when 'next_response' then 'SLA breached: the customer''s reply was not answered in time.'
                        else 'SLA breached: not resolved by the due date.' end);
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_breached', jsonb_build_object('kind', v_kind, 'at', p_now));
    perform private.emit_webhook_event(v_ticket.tenant_id, 'ticket.sla_breached', 'ticket:' || v_ticket.id,
      jsonb_build_object('type', 'ticket.sla_breached', 'tenant_id', v_ticket.tenant_id,
        'data', jsonb_build_object('ticket_id', v_ticket.id, 'number', v_ticket.number, 'kind', v_kind),
        'occurred_at', private.api_timestamp(clock_timestamp())));
    v_count := v_count + 1;
  end loop;

  for v_due in
    with due as (
      (select t.tenant_id, t.id, 'first_response'::text as kind, t.first_response_due_at as due_at from public.tickets t
       where t.first_response_at is null and t.sla_first_response_breached_at is null and t.deleted_at is null
         and t.first_response_due_at > p_now and t.first_response_due_at <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed')
         and exists (select 1 from public.tenants n where n.id = t.tenant_id and n.status = 'active'))
      union all
      (select t.tenant_id, t.id, 'resolution', t.due_date from public.tickets t
       where t.resolved_at is null and t.sla_resolution_breached_at is null and t.deleted_at is null
         and t.due_date > p_now and t.due_date <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed')
         and exists (select 1 from public.tenants n where n.id = t.tenant_id and n.status = 'active'))
      union all
      (select t.tenant_id, t.id, 'next_response', t.next_response_due_at from public.tickets t
       where t.sla_next_response_breached_at is null and t.deleted_at is null
         and t.next_response_due_at > p_now and t.next_response_due_at <= p_now + interval '7 days'
         and t.status not in ('pending', 'resolved', 'closed')
         and exists (select 1 from public.tenants n where n.id = t.tenant_id and n.status = 'active'))
    )
    select d.* from due d
    join public.tickets t on t.tenant_id = d.tenant_id and t.id = d.id
    cross join lateral private.sla_policy_for(t.tenant_id, t.team_id, t.priority) s
    where s.warning_minutes is not null and d.due_at - make_interval(mins => s.warning_minutes) <= p_now
      and not exists (select 1 from private.sla_warnings w
                      where w.tenant_id = d.tenant_id and w.ticket_id = d.id and w.kind = d.kind and w.due_at = d.due_at)
    order by d.due_at
    limit p_limit
  loop
    select * into v_ticket from public.tickets t
    where t.tenant_id = v_due.tenant_id and t.id = v_due.id
    for no key update skip locked;
    continue when v_ticket.id is null or v_ticket.deleted_at is not null or v_ticket.status in ('pending', 'resolved', 'closed');
    continue when case v_due.kind
                    when 'first_response' then v_ticket.first_response_at is not null or v_ticket.sla_first_response_breached_at is not null
                                               or v_ticket.first_response_due_at is distinct from v_due.due_at
                    when 'resolution' then v_ticket.resolved_at is not null or v_ticket.sla_resolution_breached_at is not null
                                           or v_ticket.due_date is distinct from v_due.due_at
                    else v_ticket.sla_next_response_breached_at is not null or v_ticket.next_response_due_at is distinct from v_due.due_at
                  end;
    insert into private.sla_warnings (tenant_id, ticket_id, kind, due_at)
    values (v_due.tenant_id, v_due.id, v_due.kind, v_due.due_at)
    on conflict do nothing;
    continue when not found;
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (v_ticket.tenant_id, v_ticket.id, 'sla_warning', jsonb_build_object('kind', v_due.kind, 'due_at', v_due.due_at, 'at', p_now));
    perform private.emit_webhook_event(v_ticket.tenant_id, 'ticket.sla_warning', 'ticket:' || v_ticket.id,
      jsonb_build_object('type', 'ticket.sla_warning', 'tenant_id', v_ticket.tenant_id,
        'data', jsonb_build_object('ticket_id', v_ticket.id, 'number', v_ticket.number, 'kind', v_due.kind,
                                   'due_at', private.api_timestamp(v_due.due_at)),
        'occurred_at', private.api_timestamp(clock_timestamp())));
    v_count := v_count + 1;
  end loop;
  return v_count;
end;
$$;
