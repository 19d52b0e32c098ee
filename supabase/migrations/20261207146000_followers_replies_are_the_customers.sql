-- What a customer following a ticket writes is the customer's side (review, issue 14).
--
-- Customers may follow a ticket besides its requester (the tenant's `customer_followers`,
-- 20261206032000), and write on it. Two paths read every non-staff author other than the
-- requester as nobody's side:
-- * A follower's reply to a ticket waiting on the customer (`pending`) left it pending:
--   the SLA stayed paused, the sweeps looked past the reply owed, and a rule "pending for
--   3 days: resolve" resolved a ticket the customer's side had answered. It now reopens
--   the ticket, as the requester's reply does.
-- * On a ticket of a Chatwoot conversation, a follower's message was queued to Chatwoot
--   and posted there with the owner's token: the contact got a customer's words as the
--   business's reply. Only staff's messages go to Chatwoot now.

-- Redefined (20261207103000_chatwoot_replies_answer_tickets.sql): a customer follower's
-- reply reopens a pending ticket.
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
  -- names, count; notes, system and imported messages leave v_staff null and fall
  -- through to the activity touch.
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
    insert into private.ticket_replies_owed (tenant_id, ticket_id, since) values (new.tenant_id, new.ticket_id, now())
    on conflict (tenant_id, ticket_id) do update set since = excluded.since, paused_minutes = 0;
    v_policy := private.sla_policy_for(new.tenant_id, v_ticket.team_id, v_ticket.priority);
    if v_policy.next_response_minutes is not null then
      v_next_set := true;
      v_next_due := case when v_policy.business_hours is null
        then now() + make_interval(mins => v_policy.next_response_minutes)
        else private.add_business_minutes(now(), v_policy.next_response_minutes, v_policy.business_hours) end;
    end if;
  end if;
  update public.tickets set
    first_response_at = case
      when v_reply and v_ticket.first_response_at is null then new.created_at else first_response_at end,
    status = case when v_requester and v_ticket.status = 'pending' then 'open' else status end,
    next_response_due_at = case when v_next_set then v_next_due else next_response_due_at end,
    sla_next_response_breached_at = case when v_next_set then null else sla_next_response_breached_at end,
    updated_at = now()
  where tenant_id = new.tenant_id and id = new.ticket_id;
  return null;
end;
$$;

-- Redefined (20261207120000_chatwoot_links_end_with_their_account.sql): staff's messages only.
create or replace function private.queue_chatwoot_reply() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_conversation text;
  v_account private.chatwoot_accounts;
  v_reply bigint;
begin
  if new.type <> 'message' or new.author_id is null then
    return null;
  end if;
  -- Only staff answer the contact: a customer following the ticket writes on the
  -- platform's side of it, not as the business.
  if not exists (select 1 from public.memberships m
                 where m.tenant_id = new.tenant_id and m.user_id = new.author_id and m.role in ('agent', 'admin'))
     and not exists (select 1 from public.platform_admins p where p.user_id = new.author_id) then
    return null;
  end if;
  select * into v_account from private.chatwoot_accounts a where a.tenant_id = new.tenant_id;
  select t.chatwoot_conversation_id into v_conversation
  from public.tickets t
  where t.tenant_id = new.tenant_id and t.id = new.ticket_id
    and t.created_at >= coalesce(v_account.since, '-infinity');
  if v_conversation is not null then
    insert into private.chatwoot_replies (tenant_id, message_id, conversation_id, content, account_id)
    values (new.tenant_id, new.id, v_conversation, new.content, v_account.account_id)
    on conflict do nothing
    returning id into v_reply;
    if v_reply is not null then
      perform private.add_job('chatwoot-reply', jsonb_build_object('tenant_id', new.tenant_id, 'reply_id', v_reply), null, null, null,
        'chatwoot:' || new.tenant_id || ':' || v_conversation);
    end if;
  end if;
  return null;
end;
$$;
