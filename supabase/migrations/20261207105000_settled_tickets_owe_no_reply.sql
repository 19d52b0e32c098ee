-- A settled ticket's next-response clock stops, and a reopened one's starts afresh
-- (review, issue 14).
--
-- The next-response clock (a customer reply owed an answer: private.ticket_replies_owed,
-- tickets.next_response_due_at) was stopped only by a staff reply. Resolving or closing
-- a ticket left it running, and a customer's "thanks" on a resolved ticket started one;
-- the SLA sweep skips settled tickets, but on reopening, days later, the due time was
-- long past: the next sweep breached and escalated the ticket at once, with a system
-- message the customer sees ("the customer's reply was not answered in time"). Now
-- resolving or closing answers the reply owed, and reopening a ticket that a customer
-- wrote on meanwhile owes that reply an answer from the reopening, under the ticket's
-- policy; reopened with nothing owed, it has no next-response clock.
--
-- A due date the request names is kept through a priority or team change in the same
-- update also when it is the value the ticket had (PATCH /tickets/{id} says so in the
-- transaction-local setting private.due_date_named): a form that sends every field back
-- lost a due date set by hand, replaced by the policy's whenever it changed the priority.
--
-- A merge lost the reply owed the same way: the source's unanswered customer message
-- moved to the target, which owed nothing for it, and the source, closed, was no longer
-- swept. The target now owes it (the later of the two replies owed), on its own policy.

-- Redefined (20261206162000_merged_tickets_answered_not_resolved.sql): the reply owed
-- ends with a resolution and restarts with a reopening; a due date the request names is
-- kept.
create or replace function private.tickets_before_update() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_window_days numeric;
  v_policy public.sla_policies;
  -- The request named the due date (PATCH /tickets/{id} sets this for its update): kept
  -- although unchanged, as a due date set by the same update is.
  v_due_named boolean := coalesce(pg_catalog.current_setting('private.due_date_named', true), '') = 'on';
begin
  if new.status is distinct from old.status then
    if new.merged_into_id is not null and old.merged_into_id is null then
      null; -- merging closes the ticket whatever its state
    elsif not exists (
      select 1 from private.ticket_status_transitions s where s.from_status = old.status and s.to_status = new.status
    ) then
      raise exception 'A % ticket cannot become %', old.status, new.status using errcode = 'PT409',
        detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
          'from', old.status, 'to', new.status, 'allowed', to_jsonb(private.allowed_ticket_transitions(old.status))));
    elsif old.status = 'closed' then
      select case when t.settings ->> 'reopen_window_days' ~ '^\d{1,4}(\.\d+)?$'
                  then (t.settings ->> 'reopen_window_days')::numeric else 7 end into v_window_days
      from public.tenants t where t.id = new.tenant_id;
      if old.closed_at + make_interval(secs => v_window_days * 86400) < now() then
        raise exception 'The ticket was closed more than % days ago and cannot be reopened', v_window_days
          using errcode = 'PT409',
          detail = jsonb_build_object('code', 'invalid_transition', 'details', jsonb_build_object(
            'from', old.status, 'to', new.status, 'allowed', '[]'::jsonb, 'reopen_window_days', v_window_days));
      end if;
    end if;
    case new.status
      when 'resolved' then new.resolved_at := now();
      when 'closed' then
        new.closed_at := now();
        if new.merged_into_id is null or old.merged_into_id is not null then
          new.resolved_at := coalesce(new.resolved_at, now());
        end if;
      when 'open' then
        if old.status in ('resolved', 'closed') then
          new.resolved_at := null;
          new.closed_at := null;
        end if;
      else null;
    end case;
    if new.status in ('resolved', 'closed') and old.status not in ('resolved', 'closed') then
      -- Resolving (or closing) answers the reply owed: its clock stops.
      delete from private.ticket_replies_owed o where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      new.next_response_due_at := null;
    elsif old.status in ('resolved', 'closed') and new.status not in ('resolved', 'closed') then
      -- Reopened: a customer reply that came meanwhile is owed an answer from now, under
      -- the policy that governs the ticket (the clock did not run while it was settled).
      update private.ticket_replies_owed o set since = now(), paused_minutes = 0
      where o.tenant_id = new.tenant_id and o.ticket_id = new.id;
      if found then
        v_policy := private.sla_policy_for(new.tenant_id, new.team_id, new.priority);
        new.next_response_due_at := case
          when v_policy.next_response_minutes is null then null
          when v_policy.business_hours is null then now() + make_interval(mins => v_policy.next_response_minutes)
          else private.add_business_minutes(now(), v_policy.next_response_minutes, v_policy.business_hours) end;
      else
        new.next_response_due_at := null;
      end if;
      new.sla_next_response_breached_at := null;
    end if;
  end if;
  if new.assigned_to is distinct from old.assigned_to then
    perform private.check_ticket_assignee(new.tenant_id, new.assigned_to);
  end if;
  if new.priority is distinct from old.priority or new.team_id is distinct from old.team_id then
    if (private.sla_policy_for(new.tenant_id, new.team_id, new.priority)).id is not null then
      if new.due_date is not distinct from old.due_date and not v_due_named then
        new := private.apply_sla(new);
      else
        -- A due date set by the same update is kept; the first response still follows
        -- the policy that now governs the ticket, as on insert.
        new.first_response_due_at := (private.apply_sla(new)).first_response_due_at;
      end if;
    elsif (private.sla_policy_for(old.tenant_id, old.team_id, old.priority)).id is not null then
      -- No policy governs the ticket now: the old policy's targets go with it, as a
      -- ticket made under no policy has none (a due date set by hand under no policy
      -- before stays, as on insert, and one set by this update too).
      new.first_response_due_at := null;
      if new.due_date is not distinct from old.due_date and not v_due_named then
        new.due_date := null;
      end if;
      new.next_response_due_at := null;
    end if;
  end if;
  return new;
end;
$$;


-- Redefined (20261206162000_merged_tickets_answered_not_resolved.sql): the source's reply
-- owed moves to the target.
create or replace function private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_source public.tickets;
  v_target public.tickets;
  v_owed private.ticket_replies_owed;
  v_policy public.sla_policies;
  -- The target owes the source's reply now (its clock to set).
  v_carried boolean := false;
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin() then
    raise exception 'only staff merge tickets' using errcode = 'PT403';
  end if;
  if not private.can_see_ticket(p_tenant_id, p_source_id) or not private.can_see_ticket(p_tenant_id, p_target_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  if p_source_id = p_target_id then
    raise exception 'a ticket cannot be merged into itself' using errcode = 'PT409';
  end if;
  perform 1 from public.tickets t where t.tenant_id = p_tenant_id and t.id in (p_source_id, p_target_id)
  order by t.id for no key update;
  select * into v_source from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_source_id;
  select * into v_target from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_target_id;
  if v_source.merged_into_id is not null or v_target.merged_into_id is not null
     or v_source.deleted_at is not null or v_target.deleted_at is not null then
    raise exception 'merged or deleted tickets cannot be merged' using errcode = 'PT409';
  end if;
  if v_target.status = 'closed' then
    raise exception 'reopen the target ticket before merging into it' using errcode = 'PT409';
  end if;
  -- The conversation moves to the target, whose requester reads it: only one person's
  -- tickets are merged.
  if v_source.created_by is distinct from v_target.created_by then
    raise exception 'tickets of different requesters cannot be merged' using errcode = 'PT409';
  end if;
  perform 1 from public.ticket_messages m where m.tenant_id = p_tenant_id and m.ticket_id = p_source_id
  order by m.id for no key update;
  perform 1 from public.attachments a where a.tenant_id = p_tenant_id and a.ticket_id = p_source_id
  order by a.id for no key update;
  update public.ticket_messages set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  update public.attachments set ticket_id = p_target_id where tenant_id = p_tenant_id and ticket_id = p_source_id;
  -- The source's first response is in the target's conversation now.
  if v_source.first_response_at is not null and v_target.first_response_at is null then
    update public.tickets set first_response_at = greatest(v_source.first_response_at, v_target.created_at)
    where tenant_id = p_tenant_id and id = p_target_id;
  end if;
  -- A customer reply the source still owes an answer to is in the target's conversation
  -- now: owed there (the later of the two, as a customer writing again restarts the
  -- clock), the target's clock from it under the target's policy. The source's goes with
  -- its close.
  select * into v_owed from private.ticket_replies_owed o where o.tenant_id = p_tenant_id and o.ticket_id = p_source_id;
  if v_owed.since is not null and v_source.status in ('resolved', 'closed') then
    -- Written on a settled source: owed from now, as a reopening would have it, and only
    -- where the target owes nothing (from now, it would push back a reply the target owes
    -- already, and clear its breach).
    insert into private.ticket_replies_owed as o (tenant_id, ticket_id, since, paused_minutes)
    values (p_tenant_id, p_target_id, now(), 0)
    on conflict (tenant_id, ticket_id) do nothing;
    v_carried := found;
    v_owed.since := now();
    v_owed.paused_minutes := 0;
  elsif v_owed.since is not null then
    insert into private.ticket_replies_owed as o (tenant_id, ticket_id, since, paused_minutes)
    values (p_tenant_id, p_target_id, v_owed.since, v_owed.paused_minutes)
    on conflict (tenant_id, ticket_id) do update set since = excluded.since, paused_minutes = excluded.paused_minutes
    where o.since < excluded.since;
    v_carried := found;
  end if;
  if v_carried then
    if v_target.status not in ('resolved', 'closed') then
      v_policy := private.sla_policy_for(p_tenant_id, v_target.team_id, v_target.priority);
      if v_policy.next_response_minutes is not null then
        update public.tickets set
          next_response_due_at = case when v_policy.business_hours is null
            then v_owed.since + make_interval(mins => v_policy.next_response_minutes + v_owed.paused_minutes)
            else private.add_business_minutes(v_owed.since, v_policy.next_response_minutes + v_owed.paused_minutes,
                                              v_policy.business_hours) end,
          sla_next_response_breached_at = null
        where tenant_id = p_tenant_id and id = p_target_id;
      end if;
    end if;
  end if;
  -- Its followers follow the target: a colleague who wrote in the source reads their
  -- messages there, and staff who followed it hear of it. An assignment's follow is a
  -- plain one there (the target has its own assignee); customers follow only where the
  -- tenant still lets them. Copied as they were added (who added them stays theirs).
  insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
  -- Staff's follows are the merger's doing on the target (the notification names who
  -- did it); a customer's stay the adder's, whose to see and remove they are.
  select f.tenant_id, p_target_id, f.user_id, case when f.reason = 'assigned' then 'manual' else f.reason end,
         case when m.role = 'user' then f.added_by else private.current_user_id() end
  from public.ticket_followers f
  join public.memberships m on m.tenant_id = f.tenant_id and m.user_id = f.user_id
  where f.tenant_id = p_tenant_id and f.ticket_id = p_source_id
    and (m.role in ('agent', 'admin')
         or (f.reason = 'manual' and exists (select 1 from public.tenants t
                                             where t.id = p_tenant_id and t.settings -> 'customer_followers' = 'true'::jsonb)))
  order by f.user_id
  on conflict (tenant_id, ticket_id, user_id) do nothing;
  update public.tickets set status = 'closed', merged_into_id = p_target_id
  where tenant_id = p_tenant_id and id = p_source_id;
  insert into public.ticket_messages (tenant_id, ticket_id, type, content) values
    (p_tenant_id, p_target_id, 'system', format('Ticket #%s was merged into this ticket.', v_source.number)),
    (p_tenant_id, p_source_id, 'system', format('Merged into ticket #%s.', v_target.number));
end;
$$;

