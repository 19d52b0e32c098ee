-- A message's created_at is the time it is written since 20261208111000 (clock_timestamp,
-- so messages of one transaction keep their order), no longer its transaction's start.
-- The reply owed and the next-response due time its insert sets still started from now(),
-- the transaction's start, a few microseconds before the message they answer to, while
-- everything that works the clock out again later (a policy or team change,
-- tickets_sla_next_response) starts it from the message's created_at: the two disagreed.
-- Both start from the message now.

-- Redefined (20261207230000_next_responses_met_late_told.sql): from the message's time.
create or replace function private.ticket_messages_after_insert() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_ticket public.tickets;
  v_staff boolean;
  v_side text;
  v_reply boolean;
  v_requester boolean;
  v_policy public.sla_policies;
  v_next_set boolean := false;
  v_next_due timestamptz;
begin
  select * into v_ticket from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id for no key update;
  -- Only public replies with an author, or an authorless one whose side the service role
  -- names, count; system and imported messages leave v_staff null and fall through to
  -- the activity touch (notes end before it).
  if new.type = 'message' and new.author_id is not null then
    v_staff := exists (
      select 1 from public.memberships m
      where m.tenant_id = new.tenant_id and m.user_id = new.author_id and m.role in ('agent', 'admin')
    ) or exists (select 1 from public.platform_admins p where p.user_id = new.author_id);
  elsif new.type = 'message' and pg_catalog.current_setting('role', true) = 'service_role' then
    v_side := nullif(pg_catalog.current_setting('private.message_side', true), '');
    if v_side in ('staff', 'customer') then
      v_staff := v_side = 'staff';
      insert into private.ticket_message_sides (tenant_id, message_id, side) values (new.tenant_id, new.id, v_side);
    end if;
  end if;
  -- A reply answers the ticket: staff writing, not as its requester. The requester's own
  -- message (a customer's, or a side named 'customer') owes one.
  v_reply := v_staff and (new.author_id is null or new.author_id is distinct from v_ticket.created_by);
  -- The customer's side: the requester, and the customers following the ticket (staff
  -- writing as the requester of their own ticket too).
  v_requester := v_side = 'customer' or (v_staff is not null and (new.author_id = v_ticket.created_by or not v_staff));
  -- The reply owed is kept before the ticket's update below, which may end a wait
  -- (tickets_sla_pause counts only the part after the reply owed).
  if v_reply then
    v_next_set := v_ticket.next_response_due_at is not null;
    v_next_due := null;
    delete from private.ticket_replies_owed o where o.tenant_id = new.tenant_id and o.ticket_id = new.ticket_id;
  elsif v_staff is not null then
    -- Owed whatever the policy: a policy with a target that comes to govern the ticket
    -- later runs its clock from this reply (tickets_sla_next_response).
    insert into private.ticket_replies_owed (tenant_id, ticket_id, since) values (new.tenant_id, new.ticket_id, new.created_at)
    on conflict (tenant_id, ticket_id) do update set since = excluded.since, paused_minutes = 0;
    v_policy := private.sla_policy_for(new.tenant_id, v_ticket.team_id, v_ticket.priority);
    if v_policy.next_response_minutes is not null then
      v_next_set := true;
      v_next_due := case when v_policy.business_hours is null
        then new.created_at + make_interval(mins => v_policy.next_response_minutes)
        else private.add_business_minutes(new.created_at, v_policy.next_response_minutes, v_policy.business_hours) end;
    end if;
  end if;
  -- An internal note changes nothing of the ticket a customer may read: no touch either
  -- (its updated_at, and the realtime UPDATE and ticket.updated with it, told a customer
  -- when staff discussed their ticket).
  if new.type = 'note' then
    return null;
  end if;
  update public.tickets set
    first_response_at = case
      when v_reply and v_ticket.first_response_at is null then new.created_at else first_response_at end,
    status = case when v_requester and v_ticket.status = 'pending' then 'open' else status end,
    next_response_due_at = case when v_next_set then v_next_due else next_response_due_at end,
    -- A staff answer ends what was owed, its breach mark with it (kept while the clock
    -- was stopped by a change of priority or team, 20261207215000).
    sla_next_response_breached_at = case when v_next_set or v_reply then null else sla_next_response_breached_at end,
    updated_at = now()
  where tenant_id = new.tenant_id and id = new.ticket_id;
  -- A reply owed answered after its due time that no sweep saw (the sweep's mark is
  -- still null): a breach all the same, told after the ticket's update, met late. Judged
  -- by when a wait on the customer began, if the ticket waits (its clock stood still).
  if v_reply and v_ticket.next_response_due_at is not null and v_ticket.sla_next_response_breached_at is null
     and v_ticket.next_response_due_at < least(now(), coalesce(v_ticket.sla_paused_at, now())) then
    insert into public.ticket_events (tenant_id, ticket_id, type, data)
    values (new.tenant_id, new.ticket_id, 'sla_breached',
            jsonb_build_object('kind', 'next_response', 'at', v_ticket.next_response_due_at, 'met_late', true));
    perform private.emit_webhook_event(new.tenant_id, 'ticket.sla_breached', 'ticket:' || new.ticket_id,
      jsonb_build_object('type', 'ticket.sla_breached', 'tenant_id', new.tenant_id,
        'data', jsonb_build_object('ticket_id', new.ticket_id, 'number', v_ticket.number, 'kind', 'next_response',
                                   'met_late', true, 'at', private.api_timestamp(v_ticket.next_response_due_at)),
        'occurred_at', private.api_timestamp(clock_timestamp())));
  end if;
  return null;
end;
$$;
