-- Chatwoot conversations: a conversation becomes a ticket (the inbound path, verified by
-- the webhooks function), and replies written here on such a ticket go back to that
-- conversation: a trigger records them and queues a job (in the transaction of the
-- reply) on the one job queue (20261126100350_jobs.sql), task `chatwoot-reply`
-- (shared/jobs/tasks/chatwoot-reply.ts), named queue `chatwoot:<tenant>:<conversation>`,
-- so one conversation's replies arrive in order; the job posts them through the
-- Chatwoot connector. Messages that arrived from Chatwoot have no author here, so they
-- are never sent back.

-- ------------------------------------------------------------------ the conversation link

-- The Chatwoot conversation a ticket mirrors: one ticket per conversation. Written only
-- by the verified webhook path (no grant to API roles), so nobody can attach a ticket to
-- someone else's conversation through its free-form metadata.
alter table public.tickets add column chatwoot_conversation_id text check (char_length(chatwoot_conversation_id) <= 50);
create unique index tickets_chatwoot_conversation_key on public.tickets (tenant_id, chatwoot_conversation_id)
  where chatwoot_conversation_id is not null;

-- ------------------------------------------------------------------ replies

-- The domain record of a reply: which message went to which conversation, whether it
-- was sent ('sending' is no longer set — a job's lease says a reply is under way), and
-- Chatwoot's id for it (how our own message is recognised when Chatwoot echoes it back);
-- the queue state lives in private.jobs.
create table private.chatwoot_replies (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  message_id uuid not null,
  conversation_id text not null,
  content text not null,
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'failed')),
  chatwoot_message_id bigint,
  last_error text,
  created_at timestamptz not null default now(),
  unique (tenant_id, message_id)
);
-- Our own messages come back as message_created webhooks: recognised by their id.
create index chatwoot_replies_sent_idx on private.chatwoot_replies (tenant_id, chatwoot_message_id) where chatwoot_message_id is not null;
-- The reply job reads them as service_role.
grant select on private.chatwoot_replies to service_role;

-- A reply on a ticket that mirrors a conversation: its record, then its job (the ticket
-- is locked by the message insert already; the job row comes last, lock level 9).
create function private.queue_chatwoot_reply() returns trigger
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
revoke all on function private.queue_chatwoot_reply() from public, anon, authenticated;
create trigger queue_chatwoot_reply after insert on public.ticket_messages
  for each row execute function private.queue_chatwoot_reply();

-- ------------------------------------------------------------------ the reply job's side

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
revoke all on function private.chatwoot_reply_context(bigint) from public, anon, authenticated;
grant execute on function private.chatwoot_reply_context(bigint) to service_role;

-- Sent (with Chatwoot's message id), or a failed attempt (`failed` once p_final), while
-- the job's lease holds: the reply row first, then the job.
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
revoke all on function private.finish_chatwoot_reply(bigint, bigint, text, bigint, text, boolean) from public, anon, authenticated;
grant execute on function private.finish_chatwoot_reply(bigint, bigint, text, bigint, text, boolean) to service_role;
