-- A platform user can be deleted, and their deletion sends nothing of theirs out again.
--
-- 1. Deleting a user (`delete from public.users`, as Supabase Auth's user deletion and
--    Clerk's user.deleted reach it) failed for nearly everyone: an accepted invitation's
--    accepted_by is set null, which broke the check that accepted_at and accepted_by go
--    together (23514); an API key's created_by is set null, which the key's guard refused
--    as a change of creator (PT409). An accepted invitation may now have lost its
--    acceptor, and an API key may lose its creator — which revokes it (it could not act
--    without an active admin creator anyway; now the record says so).
-- 2. The deletion nulls the person's references (tickets' created_by and assigned_to,
--    messages' author_id), and each such update went to the tenant's webhook receivers as
--    `message.updated`/`ticket.updated` with the row in full: every message of the person,
--    sent again while they were being removed. Such updates are no event now.

do $$
declare
  v_name text;
begin
  select c.conname into v_name
  from pg_catalog.pg_constraint c
  where c.conrelid = 'public.invitations'::regclass and c.contype = 'c'
    and pg_catalog.pg_get_constraintdef(c.oid) like '%accepted_at IS NULL%accepted_by IS NULL%';
  execute pg_catalog.format('alter table public.invitations drop constraint %I', v_name);
end;
$$;
alter table public.invitations add constraint invitations_accepted_check
  check (accepted_by is null or accepted_at is not null);

-- Redefined (20261202080000_api_keys.sql): the creator may go (their deletion), which
-- revokes the key; nothing else about a key changes.
create or replace function private.api_key_guard() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if old.revoked_at is not null and new.revoked_at is distinct from old.revoked_at then
    raise exception 'A revoked API key cannot be restored' using errcode = 'PT409', detail = '{"code": "api_key_revoked"}';
  end if;
  if old.created_by is not null and new.created_by is null then
    new.revoked_at := coalesce(new.revoked_at, pg_catalog.now());
  elsif new.created_by is distinct from old.created_by then
    raise exception 'An API key''s scopes, expiry and creator are fixed; create a new key'
      using errcode = 'PT409', detail = '{"code": "api_key_fixed"}';
  end if;
  if new.scopes is distinct from old.scopes or new.expires_at is distinct from old.expires_at
     or new.prefix is distinct from old.prefix then
    raise exception 'An API key''s scopes, expiry and creator are fixed; create a new key'
      using errcode = 'PT409', detail = '{"code": "api_key_fixed"}';
  end if;
  return new;
end;
$$;

-- Redefined (20261201099100_outbox_listener_first.sql): a deleted person's nulled
-- references are no event.
create or replace function private.webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row jsonb;
  v_type text;
  v_key text;
begin
  -- Nobody listens in this tenant: nothing to build (emit_webhook_event checks the event
  -- type; this spares the row's rendering for the tenants without endpoints).
  if not exists (select 1 from public.webhook_endpoints e
                 where e.tenant_id = case when tg_op = 'DELETE' then old.tenant_id else new.tenant_id end
                   and e.enabled) then
    return null;
  end if;
  -- A person deleted from the platform: the foreign keys null their references
  -- (ON DELETE SET NULL). That is no change to tell receivers of, and the event would
  -- send the row again (every message of theirs, in full) as they are being removed.
  -- (Only such updates: one that changes nothing else is as before.)
  if tg_op = 'UPDATE' and exists (
    select 1 from jsonb_each(to_jsonb(new)) n
    where n.key in ('author_id', 'created_by', 'assigned_to') and n.value = 'null'::jsonb
      and (to_jsonb(old) -> n.key) <> 'null'::jsonb
      and not exists (select 1 from public.users u where u.id = (to_jsonb(old) ->> n.key)::uuid)
  ) and not exists (
    select 1 from jsonb_each(to_jsonb(new)) n
    where n.key not in ('updated_at', 'search') and n.value is distinct from (to_jsonb(old) -> n.key)
      and not (n.value = 'null'::jsonb and n.key in ('author_id', 'created_by', 'assigned_to')
               and not exists (select 1 from public.users u where u.id = (to_jsonb(old) ->> n.key)::uuid))
  ) then
    return null;
  end if;
  v_row := private.api_timestamps(to_jsonb(coalesce(new, old)), tg_relid);
  v_row := v_row - array(select k from jsonb_object_keys(v_row) k where k like '%\_encrypted' or k = 'search');
  case tg_table_name
    when 'tickets' then
      v_key := 'ticket:' || (v_row ->> 'id');
      v_type := case
        when tg_op = 'INSERT' then 'ticket.created'
        when tg_op = 'DELETE' or (new.deleted_at is not null and old.deleted_at is null) then 'ticket.deleted'
        when new.status is distinct from old.status then 'ticket.status_changed'
        when new.assigned_to is distinct from old.assigned_to then 'ticket.assigned'
        else 'ticket.updated' end;
      if tg_op = 'UPDATE' and (to_jsonb(new) - 'updated_at' - 'search') = (to_jsonb(old) - 'updated_at' - 'search') then
        return null; -- activity only (updated_at): not an event
      end if;
    when 'ticket_messages' then
      v_key := 'ticket:' || (v_row ->> 'ticket_id');
      v_type := case when (v_row ->> 'type') = 'note' then 'note.' else 'message.' end
        || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end;
    when 'memberships' then
      v_key := 'membership:' || (v_row ->> 'user_id');
      v_type := 'membership.' || case tg_op when 'INSERT' then 'created' when 'UPDATE' then 'updated' else 'deleted' end;
    when 'tenant_services' then
      if tg_op = 'UPDATE' and new.state is not distinct from old.state then
        return null;
      end if;
      v_key := 'service:' || (v_row ->> 'service');
      v_type := 'service.state_changed';
  end case;
  perform private.emit_webhook_event((v_row ->> 'tenant_id')::uuid, v_type, v_key,
    jsonb_build_object('type', v_type, 'tenant_id', v_row ->> 'tenant_id', 'data', v_row,
                       'occurred_at', private.api_timestamp(clock_timestamp())));
  return null;
end;
$$;
