-- Chatwoot sends its webhooks from background jobs in no fixed order, so a conversation
-- resolved and then reopened by its customer can report `resolved` after `open`: the
-- ticket, open already, ignored the first and was resolved by the late one, and stayed
-- resolved while the conversation was open. Each conversation's status events now
-- apply in the order Chatwoot made them: the latest change time applied is kept per
-- ticket, and an event older than it changes nothing. The time is the conversation's
-- `updated_at` where the payload has it (current versions, sub-second), else its
-- `timestamp` (last activity, whole seconds); events with the same time apply as they
-- come, as before, since whole seconds cannot order them.
create table private.chatwoot_status_changes (
  tenant_id uuid not null,
  ticket_id uuid not null,
  changed_at double precision not null,
  primary key (tenant_id, ticket_id),
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
);
alter table private.chatwoot_status_changes enable row level security;
revoke all on private.chatwoot_status_changes from public, anon, authenticated, service_role;

-- True when an event of this change time is the newest seen for the ticket's conversation
-- (recorded); false for an older one. Two at once for one ticket queue on its row, and
-- the second compares with what the first recorded.
create function private.chatwoot_status_is_newest(p_tenant_id uuid, p_ticket_id uuid, p_changed_at double precision)
returns boolean
language sql volatile security definer
set search_path = ''
as $$
  with seen as (
    insert into private.chatwoot_status_changes as c (tenant_id, ticket_id, changed_at)
    values (p_tenant_id, p_ticket_id, p_changed_at)
    on conflict (tenant_id, ticket_id) do update set changed_at = excluded.changed_at
      where c.changed_at <= excluded.changed_at
    returning 1
  )
  select exists (select 1 from seen);
$$;
revoke all on function private.chatwoot_status_is_newest(uuid, uuid, double precision) from public, anon, authenticated;
grant execute on function private.chatwoot_status_is_newest(uuid, uuid, double precision) to service_role;
