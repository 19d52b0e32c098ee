-- A merge moves a customer's unanswered reply as if they had written it on the target
-- (review of merges and followers, issue 14).
--
-- merge_tickets carried the source's reply owed to the target and set the target's
-- next-response clock from it, but: a pending target stayed pending, so that clock never
-- ran (the sweep skips pending tickets) and a rule closing tickets pending for days could
-- close it with the customer's message unanswered; and a pending source's wait was not
-- counted (its close counts it on the source's own row, which goes with it), so a reply
-- left two hours on a pending source was breached at the target at once, with the breach
-- message its customer reads. Now a pending target is opened, as a customer's reply there
-- would open it, and a pending source's wait since the reply joins the carried minutes.
-- The two tickets' visibility is asked again under their locks (a team change committed
-- between the first look and the locks was not seen).

-- Redefined (20261207130000_merges_and_templates_review.sql): a pending target opened, a
-- pending source's wait carried, visibility asked again under the locks.
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
  -- Asked again under the locks: a team change committed meanwhile may have taken either
  -- out of the caller's sight (a status change or an edit would be a 404 then too).
  if not private.can_see_ticket(p_tenant_id, p_source_id) or not private.can_see_ticket(p_tenant_id, p_target_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  if v_source.merged_into_id is not null or v_target.merged_into_id is not null
     or v_source.deleted_at is not null or v_target.deleted_at is not null then
    raise exception 'merged or deleted tickets cannot be merged' using errcode = 'PT409';
  end if;
  if v_target.status = 'closed' then
    raise exception 'reopen the target ticket before merging into it' using errcode = 'PT409';
  end if;
  -- The conversation moves to the target, whose requester reads it: only one person's
  -- tickets are merged. A ticket with no requester (a Chatwoot conversation's, or one
  -- whose requester was deleted) is nobody's known: merged with no other.
  if v_source.created_by is null or v_target.created_by is null then
    raise exception 'a ticket with no requester (a Chatwoot conversation) cannot be merged: its requester is not known to be the other''s'
      using errcode = 'PT409';
  end if;
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
  -- A target waiting on the customer holds their unanswered reply now: open again, as a
  -- reply written there makes it (pending, its clock never ran, and a rule closing tickets
  -- pending for days could close it on the customer's message).
  if v_owed.since is not null and v_target.status = 'pending' then
    update public.tickets set status = 'open' where tenant_id = p_tenant_id and id = p_target_id;
    select * into v_target from public.tickets t where t.tenant_id = p_tenant_id and t.id = p_target_id;
  end if;
  -- A source waiting on the customer had its clock stopped since, its wait not yet counted
  -- (its close would count it on the source's own row, gone with it): counted here, in the
  -- hours of the target's policy, under which the clock runs on.
  if v_owed.since is not null and v_source.status = 'pending' and v_source.sla_paused_at is not null then
    v_owed.paused_minutes := v_owed.paused_minutes + private.business_minutes_between(
      greatest(v_source.sla_paused_at, v_owed.since), now(),
      (private.sla_policy_for(p_tenant_id, v_target.team_id, v_target.priority)).business_hours);
  end if;
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

