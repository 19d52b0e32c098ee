-- A reply's echo from Chatwoot is recognised even before its id is recorded (issue 14,
-- review of the webhooks).
--
-- Our own replies come back as message_created webhooks and were recognised only by the
-- id the reply job records once Chatwoot has answered its POST. Chatwoot sends the
-- webhook as it saves the message, often before that answer is read, and a POST that
-- timed out after Chatwoot saved the message records no id at all: the echo then became
-- a second copy of the reply on the ticket, and the job, retrying, posted it again.
--
-- An outgoing, public message from the tenant's own Chatwoot login (the owner the
-- connector posts as) in the conversation of a pending reply with the same text is that
-- reply: the echo marks it sent with Chatwoot's id, and the job, finding it sent, posts
-- nothing. The oldest such reply is claimed first, so two equal replies in a row are
-- matched one echo each.
create function private.claim_chatwoot_echo(
  p_tenant_id uuid, p_conversation_id text, p_content text, p_sender_id bigint, p_chatwoot_message_id bigint
) returns boolean
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_reply bigint;
begin
  if p_sender_id is null or p_sender_id is distinct from (
    select (s.external_ids ->> 'user_id')::bigint from public.tenant_services s
    where s.tenant_id = p_tenant_id and s.service = 'chatwoot' and s.external_ids ->> 'user_id' ~ '^\d{1,18}$'
  ) then
    return false;
  end if;
  select r.id into v_reply from private.chatwoot_replies r
  where r.tenant_id = p_tenant_id and r.conversation_id = p_conversation_id and r.status = 'pending'
    and r.chatwoot_message_id is null and r.content = p_content
  order by r.id
  limit 1
  -- Waits for a reply job finishing this reply: once it has recorded the id, the caller
  -- recognises the echo by it.
  for no key update;
  if v_reply is null then
    return false;
  end if;
  update private.chatwoot_replies set status = 'sent', chatwoot_message_id = p_chatwoot_message_id, last_error = null
  where id = v_reply;
  return true;
end;
$$;
revoke all on function private.claim_chatwoot_echo(uuid, text, text, bigint, bigint) from public, anon, authenticated;
grant execute on function private.claim_chatwoot_echo(uuid, text, text, bigint, bigint) to service_role;
