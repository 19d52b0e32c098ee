-- A ticket update that changes both its status and its assignee sends ticket.assigned too.
--
-- webhook_outbox names one event per row change, the status first: an update through
-- PostgREST that reopens a ticket and assigns it in one statement sent only
-- ticket.status_changed, so an endpoint subscribed to ticket.assigned alone never heard
-- of the assignment. Such an update now sends both, in that order, under the ticket's key.

-- Redefined (20261206045000_lifecycle_review.sql).
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
  -- (ON DELETE SET NULL). Their authorship going is no change to tell receivers of, and
  -- the event would send the row again (every message of theirs, in full) as they are
  -- being removed. A ticket they were assigned becoming unassigned is one (ticket.assigned).
  -- (Only such updates: one that changes nothing else is as before.)
  if tg_op = 'UPDATE' and exists (
    select 1 from jsonb_each(to_jsonb(new)) n
    where n.key in ('author_id', 'created_by') and n.value = 'null'::jsonb
      and (to_jsonb(old) -> n.key) <> 'null'::jsonb
      and not exists (select 1 from public.users u where u.id = (to_jsonb(old) ->> n.key)::uuid)
  ) and not exists (
    select 1 from jsonb_each(to_jsonb(new)) n
    where n.key not in ('updated_at', 'search') and n.value is distinct from (to_jsonb(old) -> n.key)
      and not (n.value = 'null'::jsonb and n.key in ('author_id', 'created_by')
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
  -- One update that changes the status and the assignee is both events: a receiver that
  -- listens for assignments only heard nothing of it (the API makes them two updates;
  -- one PATCH through PostgREST may not).
  -- (Nested: another table's row has no assigned_to to read.)
  if tg_table_name = 'tickets' and v_type = 'ticket.status_changed' then
    if new.assigned_to is distinct from old.assigned_to then
      perform private.emit_webhook_event((v_row ->> 'tenant_id')::uuid, 'ticket.assigned', v_key,
        jsonb_build_object('type', 'ticket.assigned', 'tenant_id', v_row ->> 'tenant_id', 'data', v_row,
                           'occurred_at', private.api_timestamp(clock_timestamp())));
    end if;
  end if;
  return null;
end;
$$;
