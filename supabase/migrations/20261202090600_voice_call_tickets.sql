-- A ticket opened from a call (issue 14): staff link a call to the ticket they open from
-- it through the ticket workflow (POST /voice/calls/{id}/ticket). The call's ticket is
-- set once: agents may write the column, and a call already linked keeps its ticket.

grant update (ticket_id) on public.voice_calls to authenticated;

create function private.voice_call_ticket_once() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.ticket_id is not null and new.ticket_id is distinct from old.ticket_id then
    raise exception 'This call already has a ticket' using errcode = 'PT409',
      detail = jsonb_build_object('code', 'already_linked', 'details', jsonb_build_object('ticket_id', old.ticket_id))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.voice_call_ticket_once() from public, anon, authenticated;
create trigger voice_call_ticket_once before update of ticket_id on public.voice_calls
  for each row execute function private.voice_call_ticket_once();
