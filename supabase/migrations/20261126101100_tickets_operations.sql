-- Support tickets, what staff do to them beyond a plain update: merge two tickets, hand
-- one to another agent or team. Definer functions, each checking its caller (staff of a
-- writable tenant, tickets they can see).

-- ------------------------------------------------------------------ merging

-- Merging: the source's messages and attachments move to the target, the source is
-- closed with a pointer, both timelines say so. Staff only, both tickets visible to
-- the caller, one tenant. Locks: both tickets by id (level 5), then the source's messages
-- and attachments by id (level 6), all FOR NO KEY UPDATE (merged_into_id and ticket_id
-- are no keys), so two opposite merges cannot deadlock.
create function private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_source public.tickets;
  v_target public.tickets;
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
  update public.tickets set status = 'closed', merged_into_id = p_target_id
  where tenant_id = p_tenant_id and id = p_source_id;
  insert into public.ticket_messages (tenant_id, ticket_id, type, content) values
    (p_tenant_id, p_target_id, 'system', format('Ticket #%s was merged into this ticket.', v_source.number)),
    (p_tenant_id, p_source_id, 'system', format('Merged into ticket #%s.', v_target.number));
end;
$$;
revoke all on function private.merge_tickets(uuid, uuid, uuid) from public, anon;
grant execute on function private.merge_tickets(uuid, uuid, uuid) to authenticated, service_role;

-- ------------------------------------------------------------------ handing off

-- Handing a ticket to another agent or team. Postgres makes an UPDATE's new row pass
-- the SELECT policy too, so an agent could not pass on a ticket that would then leave
-- their sight; this function does it for staff who can see the ticket now.
create function private.hand_off_ticket(
  p_tenant_id uuid, p_ticket_id uuid,
  p_set_assignee boolean, p_assignee uuid,
  p_set_team boolean, p_team_id uuid
) returns void
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  if coalesce(private.role_in(p_tenant_id), 'user') = 'user'
     or (p_tenant_id <> all (private.tenant_ids('agent', true)) and not private.is_platform_admin()) then
    raise exception 'only staff assign and route tickets' using errcode = 'PT403';
  end if;
  if not private.can_see_ticket(p_tenant_id, p_ticket_id) then
    raise exception 'ticket not found' using errcode = 'PT404';
  end if;
  update public.tickets set
    assigned_to = case when p_set_assignee then p_assignee else assigned_to end,
    team_id = case when p_set_team then p_team_id else team_id end
  where tenant_id = p_tenant_id and id = p_ticket_id;
end;
$$;
revoke all on function private.hand_off_ticket(uuid, uuid, boolean, uuid, boolean, uuid) from public, anon;
grant execute on function private.hand_off_ticket(uuid, uuid, boolean, uuid, boolean, uuid) to authenticated, service_role;
