-- Chatwoot sends its webhooks in no fixed order, and status changes apply in the order
-- Chatwoot made them (20261206141000); a contact's message did not: one written before
-- the agent set the conversation pending, arriving after that change, handed the ticket
-- back to the agents (open) while the conversation stayed pending, and started a reply
-- owed. The webhook handler now asks whether a status change no older than a given time
-- was applied to the ticket, and such a message answers no one (shared/webhooks/chatwoot.ts).
create function private.chatwoot_status_changed_since(p_tenant_id uuid, p_ticket_id uuid, p_at double precision)
returns boolean
language sql stable security definer
set search_path = ''
as $$
  select exists (
    select 1 from private.chatwoot_status_changes c
    where c.tenant_id = p_tenant_id and c.ticket_id = p_ticket_id and c.changed_at >= p_at
  );
$$;
revoke all on function private.chatwoot_status_changed_since(uuid, uuid, double precision) from public, anon, authenticated;
grant execute on function private.chatwoot_status_changed_since(uuid, uuid, double precision) to service_role;
