-- A deleted ticket (soft-deleted: admins still see it, to restore it) took new messages
-- and attachments from people: an admin's reply on a deleted Chatwoot ticket was posted
-- to the contact, and the message's trigger reopened the deleted ticket's status. People
-- now write to a deleted ticket once it is restored (409 ticket_deleted, said only to
-- whoever may see it, as the merge's refusal); the trusted paths (a Chatwoot contact's
-- message, the platform's system messages) still write, so nothing a partner sends once
-- is lost.

-- Redefined (20261206149000_merged_tickets_take_no_messages.sql): deleted tickets too.
create or replace function private.lock_parent_ticket() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_merged_into uuid;
  v_deleted_at timestamptz;
begin
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  select t.merged_into_id, t.deleted_at into v_merged_into, v_deleted_at
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
  if v_deleted_at is not null and pg_catalog.current_setting('role', true) in ('anon', 'authenticated')
     and (tg_table_name <> 'ticket_messages' or to_jsonb(new) ->> 'type' <> 'system')
     and private.can_see_ticket(new.tenant_id, new.ticket_id) then
    raise exception 'This ticket is deleted; restore it to write to it' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'ticket_deleted')::text;
  end if;
  return new;
end;
$$;
