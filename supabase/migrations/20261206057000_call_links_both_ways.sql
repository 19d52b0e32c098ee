-- A call is linked only to a ticket opened from it, on both paths.
--
-- Staff may write voice_calls.ticket_id (the API's POST /voice/calls/{id}/ticket does, as
-- the caller), and the trigger only kept a link once made. Through PostgREST an agent
-- could link an unlinked call to any ticket of the tenant, one opened from another call
-- included: the call then named a ticket that named another call (or none), two calls
-- shared one ticket, and the API answered 409 already_linked for a ticket never opened
-- from the call. The link, where the issue asks for it both ways, now needs the ticket
-- to name the call (metadata.voice_call_id, which the API writes with the ticket).

-- Redefined (20261206014000_call_ticket_link_cleared_by_delete.sql): the first link is
-- to a ticket opened from the call.
create or replace function private.voice_call_ticket_once() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- Linked both ways: a call's first ticket is one opened from it (the ticket names the
  -- call in metadata.voice_call_id, as POST /voice/calls/{id}/ticket writes it).
  if old.ticket_id is null and new.ticket_id is not null
    and not exists (select 1 from public.tickets t
                    where t.tenant_id = new.tenant_id and t.id = new.ticket_id
                      and t.metadata ->> 'voice_call_id' = new.id::text) then
    raise exception 'A call is linked only to the ticket opened from it' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'not_opened_from_call', 'details', jsonb_build_object('ticket_id', new.ticket_id))::text;
  end if;
  if old.ticket_id is not null and new.ticket_id is distinct from old.ticket_id
    and not exists (select 1 from public.tickets t
                    where t.tenant_id = old.tenant_id and t.id = old.ticket_id and t.merged_into_id = new.ticket_id)
    and not (new.ticket_id is null
             and not exists (select 1 from public.tickets t where t.tenant_id = old.tenant_id and t.id = old.ticket_id)) then
    raise exception 'This call already has a ticket' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'already_linked', 'details', jsonb_build_object('ticket_id', old.ticket_id))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.voice_call_ticket_once() from public, anon, authenticated, service_role;
