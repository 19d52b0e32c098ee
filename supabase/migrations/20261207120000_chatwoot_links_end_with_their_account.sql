-- A ticket's Chatwoot conversation belongs to the account it came from (review, issue 14).
--
-- A conversation's number (`id`, its display id) counts within one Chatwoot account and
-- starts again at 1 in a new one. A tenant gets a new account when Chatwoot is switched
-- off and on again, when drift repair replaces an account deleted at Chatwoot, or when a
-- deleted tenant is restored after its services were removed. Tickets were linked by the
-- number alone: the new account's conversation #1 found the old account's ticket #1, so
-- one customer's messages landed on another's ticket, and staff replies on that ticket
-- went (to the current account, conversation 1) to the other customer.
--
-- Now the account a tenant's tickets are linked under is recorded, with when it became
-- the tenant's (private.chatwoot_accounts). A ticket linked before that (its link is made
-- when the webhook creates it, so its created_at says when) belongs to a former account:
-- - the webhook path releases such a link when the number comes back, as it looks the
--   conversation's ticket up (private.chatwoot_conversation_ticket), and makes a new ticket
--   for the conversation;
-- - a reply written on such a ticket is not queued (its conversation is gone);
-- - replies still pending when the account changes fail, saying why; each reply records
--   the account it was written for, and the reply job posts none into another account
--   (a reply queued while the account changed).
-- The webhook's deduplication keys of conversation events name the account too
-- (functions/webhooks/app.ts), so the new account's conversation #1 is no repeat.

-- ------------------------------------------------------------------ the account

create table private.chatwoot_accounts (
  tenant_id uuid primary key references public.tenants (id) on delete cascade,
  account_id bigint not null,
  -- When this account became the tenant's: tickets linked earlier belong to another.
  since timestamptz not null
);
alter table private.chatwoot_accounts enable row level security;
revoke all on private.chatwoot_accounts from public, anon, authenticated, service_role;

-- Accounts recorded today: every existing link is theirs.
insert into private.chatwoot_accounts (tenant_id, account_id, since)
select s.tenant_id, (s.external_ids ->> 'account_id')::bigint, '-infinity'
from public.tenant_services s
where s.service = 'chatwoot' and s.external_ids ->> 'account_id' ~ '^\d{1,18}$';

alter table private.chatwoot_replies add column account_id bigint;
update private.chatwoot_replies r set account_id = a.account_id
from private.chatwoot_accounts a where a.tenant_id = r.tenant_id;

-- The account recorded by provisioning (its checkpoints merge external_ids): a first
-- account links everything; a different one ends the links and pending replies of the
-- one before.
create function private.chatwoot_account_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_account bigint;
  v_known private.chatwoot_accounts;
begin
  if coalesce(new.external_ids ->> 'account_id', '') !~ '^\d{1,18}$' then
    return null;
  end if;
  v_account := (new.external_ids ->> 'account_id')::bigint;
  select * into v_known from private.chatwoot_accounts where tenant_id = new.tenant_id for update;
  if not found then
    insert into private.chatwoot_accounts (tenant_id, account_id, since)
    values (new.tenant_id, v_account, '-infinity')
    on conflict (tenant_id) do nothing;
    return null;
  end if;
  if v_known.account_id = v_account then
    return null;
  end if;
  update private.chatwoot_accounts set account_id = v_account, since = now() where tenant_id = new.tenant_id;
  update private.chatwoot_replies r
  set status = 'failed', last_error = 'The Chatwoot account was replaced: its conversation is gone'
  where r.tenant_id = new.tenant_id and r.status = 'pending';
  return null;
end;
$$;
revoke all on function private.chatwoot_account_changed() from public, anon, authenticated;
create trigger chatwoot_account_changed after insert or update of external_ids on public.tenant_services
  for each row when (new.service = 'chatwoot') execute function private.chatwoot_account_changed();

-- ------------------------------------------------------------------ the webhook path

-- The ticket of a conversation in the tenant's current account, if it has one. A ticket
-- of a former account that holds the number lets it go first (one ticket at most: the
-- number is unique per tenant), so the conversation gets its own. One call per event,
-- the lookup the webhook path makes anyway.
create function private.chatwoot_conversation_ticket(p_tenant_id uuid, p_conversation_id text)
returns table (id uuid, status text, merged_into_id uuid)
language plpgsql volatile security definer
set search_path = ''
as $$
begin
  update public.tickets t set chatwoot_conversation_id = null
  from private.chatwoot_accounts a
  where a.tenant_id = p_tenant_id and t.tenant_id = p_tenant_id
    and t.chatwoot_conversation_id = p_conversation_id and t.created_at < a.since;
  return query
    select t.id, t.status, t.merged_into_id from public.tickets t
    where t.tenant_id = p_tenant_id and t.chatwoot_conversation_id = p_conversation_id;
end;
$$;
revoke all on function private.chatwoot_conversation_ticket(uuid, text) from public, anon, authenticated;
grant execute on function private.chatwoot_conversation_ticket(uuid, text) to service_role;

-- ------------------------------------------------------------------ replies

-- Redefined (20261126101900_chatwoot.sql): not for a ticket of a former account; the
-- reply records the account it is for.
create or replace function private.queue_chatwoot_reply() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_conversation text;
  v_account private.chatwoot_accounts;
  v_reply bigint;
begin
  if new.type <> 'message' or new.author_id is null then
    return null;
  end if;
  select * into v_account from private.chatwoot_accounts a where a.tenant_id = new.tenant_id;
  select t.chatwoot_conversation_id into v_conversation
  from public.tickets t
  where t.tenant_id = new.tenant_id and t.id = new.ticket_id
    and t.created_at >= coalesce(v_account.since, '-infinity');
  if v_conversation is not null then
    insert into private.chatwoot_replies (tenant_id, message_id, conversation_id, content, account_id)
    values (new.tenant_id, new.id, v_conversation, new.content, v_account.account_id)
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

-- The reply job's read, with the account the reply was written for: a new column, so a
-- new function (private.chatwoot_reply_context, which it replaces, goes).
drop function private.chatwoot_reply_context(bigint);
create function private.chatwoot_reply_to_send(p_reply_id bigint)
returns table (
  status text, tenant_id uuid, conversation_id text, content text, external_ids jsonb, credentials_encrypted text,
  account_id bigint
)
language sql stable security definer
set search_path = ''
as $$
  select r.status, r.tenant_id, r.conversation_id, r.content, s.external_ids, s.credentials_encrypted, r.account_id
  from private.chatwoot_replies r
  left join public.tenant_services s on s.tenant_id = r.tenant_id and s.service = 'chatwoot'
  where r.id = p_reply_id
$$;
revoke all on function private.chatwoot_reply_to_send(bigint) from public, anon, authenticated;
grant execute on function private.chatwoot_reply_to_send(bigint) to service_role;
