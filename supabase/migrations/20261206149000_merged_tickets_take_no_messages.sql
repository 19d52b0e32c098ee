-- A ticket merged into another took new messages and attachments: the customer replying
-- on the old ticket (its link, PostgREST, or its Chatwoot conversation) wrote onto a
-- ticket that is closed for good, where nobody looks, and the reply never reached the
-- ticket the conversation moved to. Writing to a merged ticket is now refused with 409
-- `ticket_merged` naming `merged_into_id`, where to write instead; the merge's own system
-- message on it still goes in. Checked where the ticket is locked for the write
-- (lock_parent_ticket), after a merge under way commits, at no extra lookup.

-- Redefined (20261203236000_ticket_lock_for_outsiders.sql): a merged ticket takes no new
-- writes; an API caller outside the tenant still takes no lock (the policy refuses it).
create or replace function private.lock_parent_ticket() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_merged_into uuid;
begin
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  select t.merged_into_id into v_merged_into
  from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id
  for no key update;
  -- Said only to whoever may see the ticket (the trigger runs before the policy): anyone
  -- else in the tenant gets the policy's refusal, not the merge or the other ticket's id.
  if v_merged_into is not null and (tg_table_name <> 'ticket_messages' or to_jsonb(new) ->> 'type' <> 'system')
     and (pg_catalog.current_setting('role', true) not in ('anon', 'authenticated')
          or private.can_see_ticket(new.tenant_id, new.ticket_id)) then
    raise exception 'This ticket was merged into another; write there' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'ticket_merged', 'details', jsonb_build_object('merged_into_id', v_merged_into))::text;
  end if;
  return new;
end;
$$;
