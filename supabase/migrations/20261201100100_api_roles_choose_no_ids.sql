-- Issue 9: API roles never choose the primary key of a new row. With insert (id) granted,
-- a tenant admin could create a team (or ticket, message, …) whose id equals another
-- tenant's, and any bare-id comparison anywhere would then confuse the two. Ids are the
-- database's (column defaults); the functions read them back with RETURNING.
revoke insert (id) on public.tenants, public.teams, public.tickets, public.ticket_messages,
  public.attachments, public.webhook_endpoints from anon, authenticated;

-- A person may file a ticket they cannot read afterwards (an agent filing for a customer
-- on another team), so the tickets function cannot always read its id back with
-- RETURNING (the new row must pass the select policy). The database says which ticket
-- this transaction created last, in a transaction-local setting.
create function private.remember_created_ticket() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  perform set_config('private.created_ticket_id', new.id::text, true);
  return null;
end;
$$;
revoke all on function private.remember_created_ticket() from public, anon, authenticated;
create trigger remember_created_ticket after insert on public.tickets
  for each row execute function private.remember_created_ticket();
