-- An echo claims only a reply whose job has already tried to post it (issue 14, review
-- of 20261205208000_chatwoot_echo_claims_pending_reply.sql).
--
-- The owner login's credentials are shown to the tenant's admins, so a person may post
-- as that login in Chatwoot. Their message with the exact text of a reply still queued
-- here matched the reply and claimed it: the reply was never posted and the person's
-- message never reached the ticket. Only a reply whose job has begun (attempts >= 1: a
-- POST is under way or its answer was lost) can have an echo; anything else posted
-- under that login is a message of its own.

-- Redefined (20261205209000_chatwoot_echo_claims_only_unknown_ids.sql).
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
    -- Its job has begun: a POST under way, or one whose answer was lost.
    and exists (select 1 from private.jobs j
                where j.queue = 'chatwoot:' || r.tenant_id || ':' || r.conversation_id and j.dead_at is null
                  and j.task = 'chatwoot-reply' and j.payload ->> 'reply_id' = r.id::text and j.attempts >= 1)
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
