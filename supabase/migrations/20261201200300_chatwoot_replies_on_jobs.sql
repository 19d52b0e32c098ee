-- Replies posted back to Chatwoot run on the one job queue as task `chatwoot-reply`
-- (shared/jobs/tasks/chatwoot-reply.ts), named queue
-- `chatwoot:<tenant>:<conversation>`, so one conversation's replies arrive in order.
-- private.chatwoot_replies keeps the domain record — which message went to which
-- conversation, whether it was sent, and Chatwoot's id for it (how our own message is
-- recognised when Chatwoot echoes it back); the queue state lives in private.jobs.

create or replace function private.queue_chatwoot_reply() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_conversation text;
  v_reply bigint;
begin
  if new.type <> 'message' or new.author_id is null then
    return null;
  end if;
  select t.chatwoot_conversation_id into v_conversation
  from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id;
  if v_conversation is not null then
    insert into private.chatwoot_replies (tenant_id, message_id, conversation_id, content)
    values (new.tenant_id, new.id, v_conversation, new.content)
    on conflict do nothing
    returning id into v_reply;
    if v_reply is not null then
      perform private.add_job('chatwoot-reply', jsonb_build_object('tenant_id', new.tenant_id, 'reply_id', v_reply), null, null, null,
        'chatwoot:' || new.tenant_id || ':' || v_conversation);
    end if;
  end if;
  return null;
end;
$$;

-- What the reply job posts, and where (a plain read).
create function private.chatwoot_reply_context(p_reply_id bigint)
returns table (status text, tenant_id uuid, conversation_id text, content text, external_ids jsonb, credentials_encrypted text)
language sql stable security definer
set search_path = ''
as $$
  select r.status, r.tenant_id, r.conversation_id, r.content, s.external_ids, s.credentials_encrypted
  from private.chatwoot_replies r
  left join public.tenant_services s on s.tenant_id = r.tenant_id and s.service = 'chatwoot'
  where r.id = p_reply_id
$$;

-- Sent (with Chatwoot's message id), or a failed attempt (`failed` once p_final), while
-- the job's lease holds: the reply row first, then the job.
drop function private.finish_chatwoot_reply(bigint, text, bigint, text, boolean);
create function private.finish_chatwoot_reply(
  p_reply_id bigint, p_job_id bigint, p_worker text, p_chatwoot_message_id bigint, p_error text, p_final boolean
) returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  perform 1 from private.chatwoot_replies r where r.id = p_reply_id for no key update;
  if not found or not private.job_lease_held(p_job_id, p_worker) then
    return 'lost';
  end if;
  update private.chatwoot_replies r set
    status = case when p_error is null then 'sent' when p_final then 'failed' else 'pending' end,
    chatwoot_message_id = coalesce(p_chatwoot_message_id, r.chatwoot_message_id),
    last_error = left(p_error, 1000)
  where r.id = p_reply_id and r.status = 'pending'
  returning r.status into v_status;
  return coalesce(v_status, 'lost');
end;
$$;

-- Live replies move over, in order.
do $$
declare
  v record;
begin
  for v in select r.id, r.tenant_id, r.conversation_id from private.chatwoot_replies r
           where r.status in ('pending', 'sending') order by r.id loop
    perform private.add_job('chatwoot-reply', jsonb_build_object('tenant_id', v.tenant_id, 'reply_id', v.id), null, null, null,
      'chatwoot:' || v.tenant_id || ':' || v.conversation_id);
  end loop;
  update private.chatwoot_replies set status = 'pending' where status = 'sending';
end
$$;

drop function private.claim_chatwoot_replies(text, int);
alter table private.chatwoot_replies drop column attempts, drop column next_attempt_at, drop column locked_by,
  drop column locked_until;

revoke all on function private.chatwoot_reply_context(bigint), private.finish_chatwoot_reply(bigint, bigint, text, bigint, text, boolean)
  from public, anon, authenticated;
grant execute on function private.chatwoot_reply_context(bigint), private.finish_chatwoot_reply(bigint, bigint, text, bigint, text, boolean)
  to service_role;
