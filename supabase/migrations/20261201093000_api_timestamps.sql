-- One timestamp format across the API, webhook payloads and the audit trail (issue 11 §6).
--
-- The API answers timestamps as JSON dates do: UTC, "Z", milliseconds
-- (2026-12-01T07:34:03.123Z). Rows turned into JSON inside the database (to_jsonb) gave
-- the session's rendering instead, "+00:00" with microseconds, so the same ticket's
-- created_at read differently in a webhook payload or an audit record than in the API,
-- and occurred_at had a third form (Z with microseconds). Now every timestamp column of a
-- row that leaves the database as JSON is rendered the API's way, and so is occurred_at:
-- a consumer can compare the strings. (Milliseconds, as JSON dates have them: the audit
-- trail decides which fields changed before the rendering, from the full values.)

-- The API's rendering of an instant.
create function private.api_timestamp(p_at timestamptz) returns text
language sql stable
set search_path = ''
as $$
  select to_char(p_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;
revoke all on function private.api_timestamp(timestamptz) from public, anon, authenticated, service_role;

-- A row of p_table as JSON, its timestamptz columns (read from the catalog) rendered by
-- private.api_timestamp; other values untouched.
create function private.api_timestamps(p_row jsonb, p_table regclass) returns jsonb
language sql stable
set search_path = ''
as $$
  select case when jsonb_typeof(p_row) = 'object' then p_row || coalesce((
    select jsonb_object_agg(a.attname, private.api_timestamp((p_row ->> a.attname)::timestamptz))
    from pg_catalog.pg_attribute a
    where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
      and a.atttypid = 'pg_catalog.timestamptz'::pg_catalog.regtype
      and jsonb_typeof(p_row -> a.attname) = 'string'
  ), '{}'::jsonb) else p_row end
$$;
revoke all on function private.api_timestamps(jsonb, regclass) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ webhook payloads

-- Redefined (20261126101800_outbound_webhooks.sql): the row and occurred_at in the API's
-- rendering. Nothing else changes.
create or replace function private.webhook_outbox() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_row jsonb := private.api_timestamps(to_jsonb(coalesce(new, old)), tg_relid);
  v_type text;
  v_key text;
begin
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

-- ------------------------------------------------------------------ the audit trail

-- Audit records in the API's rendering, as they are written (private.audit_row fills
-- table_name with the audited table, in public).
create function private.audit_logs_api_timestamps() returns trigger
language plpgsql
set search_path = ''
as $$
declare
  v_table regclass := pg_catalog.to_regclass('public.' || pg_catalog.quote_ident(new.table_name));
begin
  if v_table is not null then
    new.old_data := private.api_timestamps(new.old_data, v_table);
    new.new_data := private.api_timestamps(new.new_data, v_table);
  end if;
  return new;
end;
$$;
revoke all on function private.audit_logs_api_timestamps() from public, anon, authenticated, service_role;
create trigger audit_logs_api_timestamps before insert on public.audit_logs
  for each row execute function private.audit_logs_api_timestamps();
