-- Chatwoot conversations: a conversation becomes a ticket (the inbound path, verified by
-- the webhooks function), and replies written here on such a ticket go back to that
-- conversation: a trigger queues them (in the transaction of the reply) and the
-- delivery job posts them through the Chatwoot connector. Messages that arrived from
-- Chatwoot have no author here, so they are never sent back.

-- ------------------------------------------------------------------ the conversation link

-- The Chatwoot conversation a ticket mirrors: one ticket per conversation. Written only
-- by the verified webhook path (no grant to API roles), so nobody can attach a ticket to
-- someone else's conversation through its free-form metadata.
alter table public.tickets add column chatwoot_conversation_id text check (char_length(chatwoot_conversation_id) <= 50);
create unique index tickets_chatwoot_conversation_key on public.tickets (tenant_id, chatwoot_conversation_id)
  where chatwoot_conversation_id is not null;

-- ------------------------------------------------------------------ replies

create table private.chatwoot_replies (
  id bigint generated always as identity primary key,
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  message_id uuid not null,
  conversation_id text not null,
  content text not null,
  status text not null default 'pending' check (status in ('pending', 'sending', 'sent', 'failed')),
  attempts int not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_by text,
  locked_until timestamptz,
  chatwoot_message_id bigint,
  last_error text,
  created_at timestamptz not null default now(),
  unique (tenant_id, message_id)
);
create index chatwoot_replies_due_idx on private.chatwoot_replies (next_attempt_at) where status = 'pending';
-- Our own messages come back as message_created webhooks: recognised by their id.
create index chatwoot_replies_sent_idx on private.chatwoot_replies (tenant_id, chatwoot_message_id) where chatwoot_message_id is not null;
-- The delivery job reads them as service_role.
grant select on private.chatwoot_replies to service_role;

create function private.queue_chatwoot_reply() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_conversation text;
begin
  if new.type <> 'message' or new.author_id is null then
    return null;
  end if;
  select t.chatwoot_conversation_id into v_conversation
  from public.tickets t where t.tenant_id = new.tenant_id and t.id = new.ticket_id;
  if v_conversation is not null then
    insert into private.chatwoot_replies (tenant_id, message_id, conversation_id, content)
    values (new.tenant_id, new.id, v_conversation, new.content)
    on conflict do nothing;
  end if;
  return null;
end;
$$;
revoke all on function private.queue_chatwoot_reply() from public, anon, authenticated;
create trigger queue_chatwoot_reply after insert on public.ticket_messages
  for each row execute function private.queue_chatwoot_reply();

-- ------------------------------------------------------------------ the delivery job's side

create function private.claim_chatwoot_replies(p_worker text, p_limit int default 20)
returns table (reply_id bigint, tenant_id uuid, conversation_id text, content text, attempts int,
               external_ids jsonb, credentials_encrypted text)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  return query
  with due as (
    select r.id from private.chatwoot_replies r
    where (r.status = 'pending' and r.next_attempt_at <= now()) or (r.status = 'sending' and r.locked_until < now())
    order by r.id limit p_limit for update skip locked
  ), claimed as (
    update private.chatwoot_replies r set status = 'sending', locked_by = p_worker,
      locked_until = now() + interval '60 seconds', attempts = r.attempts + 1
    from due where r.id = due.id returning r.*
  )
  select c.id, c.tenant_id, c.conversation_id, c.content, c.attempts, s.external_ids, s.credentials_encrypted
  from claimed c left join public.tenant_services s on s.tenant_id = c.tenant_id and s.service = 'chatwoot';
end;
$$;
revoke all on function private.claim_chatwoot_replies(text, int) from public, anon, authenticated;
grant execute on function private.claim_chatwoot_replies(text, int) to service_role;

create function private.finish_chatwoot_reply(p_reply_id bigint, p_worker text, p_chatwoot_message_id bigint, p_error text, p_retryable boolean)
returns text
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  v_status text;
begin
  update private.chatwoot_replies r set
    status = case when p_error is null then 'sent' when p_retryable and r.attempts < 10 then 'pending' else 'failed' end,
    chatwoot_message_id = coalesce(p_chatwoot_message_id, r.chatwoot_message_id),
    last_error = left(p_error, 1000), locked_by = null, locked_until = null,
    next_attempt_at = now() + make_interval(secs => least(power(2, r.attempts) * 5, 3600))
  where r.id = p_reply_id and r.locked_by = p_worker
  returning r.status into v_status;
  return coalesce(v_status, 'lost');
end;
$$;
revoke all on function private.finish_chatwoot_reply(bigint, text, bigint, text, boolean) from public, anon, authenticated;
grant execute on function private.finish_chatwoot_reply(bigint, text, bigint, text, boolean) to service_role;
