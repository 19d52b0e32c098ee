-- A ticket linked to a call can be deleted (issue 14, review of the voice work).
--
-- voice_calls.ticket_id references the ticket ON DELETE SET NULL, and that action is an
-- update of ticket_id, which voice_call_ticket_once refused (a linked call keeps its
-- ticket): deleting such a ticket (an operator, the service role; the API only
-- soft-deletes) failed with 409 already_linked. The link may now become null when its
-- ticket is gone. The trigger runs as the owner so that "gone" is not "hidden from this
-- caller by RLS": a person who cannot see the ticket still cannot unlink the call.

-- Redefined (20261202200000_voice_calls_review.sql): the link cleared with its ticket.
create or replace function private.voice_call_ticket_once() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
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
