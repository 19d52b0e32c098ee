-- An echo claims a pending reply only when its message id is no reply's yet (issue 14,
-- review of 20261205208000_chatwoot_echo_claims_pending_reply.sql).
--
-- Two replies with the same text in a row ("Thanks"): the first posted and recorded as
-- message M1, the second still queued. M1's echo matched the second by conversation,
-- text and login and marked it sent with M1's id, so the second was never posted. The
-- same when the echo waited for the first reply's job: once that job had recorded M1,
-- the locked read moved on to the next pending match. The id is now checked first, and
-- again once the reply is locked (a fresh snapshot: the job that held it has committed).

-- Redefined (20261205208000_chatwoot_echo_claims_pending_reply.sql).
create or replace function private.claim_chatwoot_echo(
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
  if exists (select 1 from private.chatwoot_replies r
             where r.tenant_id = p_tenant_id and r.chatwoot_message_id = p_chatwoot_message_id) then
    return false;
  end if;
  select r.id into v_reply from private.chatwoot_replies r
  where r.tenant_id = p_tenant_id and r.conversation_id = p_conversation_id and r.status = 'pending'
    and r.chatwoot_message_id is null and r.content = p_content
  order by r.id
  limit 1
  -- Waits for a reply job finishing this reply.
  for no key update;
  if v_reply is null or exists (select 1 from private.chatwoot_replies r
                                where r.tenant_id = p_tenant_id and r.chatwoot_message_id = p_chatwoot_message_id) then
    return false;
  end if;
  update private.chatwoot_replies set status = 'sent', chatwoot_message_id = p_chatwoot_message_id, last_error = null
  where id = v_reply;
  return true;
end;
$$;
