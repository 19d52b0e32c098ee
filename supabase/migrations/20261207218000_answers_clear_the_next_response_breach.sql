-- A staff answer clears the next-response breach mark, whether or not a clock ran (review
-- of this stop's 20261207215000, issue 14).
--
-- The mark of a reply still owed now stays when a change of priority or team stops its
-- clock (20261207215000). The answer cleared the mark only when a clock was running: a
-- reply breached, its clock stopped, then answered, kept the mark with nothing owed, and
-- `?sla_breached=true` listed the ticket until its next change of priority or team. The
-- answer now clears it in every case.

-- Redefined (20261207204000_internal_notes_leave_their_ticket_untouched.sql): an answer
-- clears the mark.
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
  return null;
end;
$$;
