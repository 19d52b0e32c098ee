-- A merged ticket's followers follow the ticket it was merged into.
--
-- merge_tickets moved the source's messages and attachments to the target but not its
-- followers: a colleague (a customer follower) who had written in the source could no
-- longer read their own messages (the target was not theirs to see), and staff who
-- followed the source heard nothing more of the conversation. They now follow the target
-- too (an assignment's follow as a plain one; customers only where the tenant still lets
-- them follow). The new follows are announced as any other (follower_added).

-- Redefined (20261126101100_tickets_operations.sql).
create or replace function private.merge_tickets(p_tenant_id uuid, p_source_id uuid, p_target_id uuid)
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
  -- Its followers follow the target: a colleague who wrote in the source reads their
  -- messages there, and staff who followed it hear of it. An assignment's follow is a
  -- plain one there (the target has its own assignee); customers follow only where the
  -- tenant still lets them. Copied as they were added (who added them stays theirs).
  insert into public.ticket_followers (tenant_id, ticket_id, user_id, reason, added_by)
  select f.tenant_id, p_target_id, f.user_id, case when f.reason = 'assigned' then 'manual' else f.reason end, f.added_by
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
revoke all on function private.merge_tickets(uuid, uuid, uuid) from public, anon;
grant execute on function private.merge_tickets(uuid, uuid, uuid) to authenticated, service_role;
