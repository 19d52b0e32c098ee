-- Who may edit a message, stated once (issue 10, "each rule lives once, in SQL").
--
-- The update policy of ticket_messages held the rule and the tickets function repeated
-- half of it (the author check) to choose its answer, because a policy refuses by
-- hiding rows: an update it refuses changes nothing and says nothing. Now the rule is
-- one function that names the reason, or null when the edit is allowed. The policy is
-- "no reason"; after an update that changed nothing, the function asks it why and
-- answers 403 with that reason (404 when the message is not there to see).
--
-- Security invoker, so the ticket it checks is the one the caller sees (tickets' select
-- policy); it reads only the caller's own memberships through the access helpers.
create function private.message_edit_refusal(p_message public.ticket_messages) returns text
language plpgsql stable
set search_path = ''
as $$
begin
  if p_message.type = 'system' then
    return 'System messages cannot be edited';
  end if;
  if p_message.author_id is distinct from private.current_user_id() then
    return 'Only the author edits a message';
  end if;
  -- A suspended tenant is read-only; a former member's tenant is not theirs.
  if not p_message.tenant_id = any (private.tenant_ids('user', true)) then
    return 'The tenant is read-only for you';
  end if;
  if p_message.type = 'note' and not p_message.tenant_id = any (private.tenant_ids('agent', true)) then
    return 'Internal notes are edited by staff';
  end if;
  if not exists (select 1 from public.tickets t where t.tenant_id = p_message.tenant_id and t.id = p_message.ticket_id) then
    return 'The ticket is out of your sight';
  end if;
  return null;
end;
$$;
revoke all on function private.message_edit_refusal(public.ticket_messages) from public, anon;
grant execute on function private.message_edit_refusal(public.ticket_messages) to authenticated;

alter policy ticket_messages_update on public.ticket_messages
  using (private.message_edit_refusal(ticket_messages) is null)
  with check (private.message_edit_refusal(ticket_messages) is null);
