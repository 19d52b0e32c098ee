-- A custom field changing visibility tells no automation rule of a change (review of the
-- ticket workflow's rules, issue 14).
--
-- Making a field visible to customers, or hiding it, moves its values between
-- tickets.custom_fields and ticket_internal_fields: every ticket holding one is written.
-- The tickets' automation capture saw custom_fields among what changed and queued a
-- ticket.updated run per ticket, although the values the rules read (wherever they are
-- kept) were the same: a rule "changed contains custom_fields, plan = gold → reply" sent
-- its reply to every gold customer each time an admin flipped the field. The move now
-- marks itself (a transaction-local setting) and the capture leaves custom_fields out of
-- what changed while it is set: a ticket whose only change is the move queues no run.
-- Webhook receivers of ticket.updated still hear of each ticket, whose row (its visible
-- values) did change.

-- Redefined (20261202110200_custom_fields.sql): a visibility move marks itself.
create or replace function private.custom_field_definition_changed() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_key text := coalesce(new.key, old.key);
  v_tenant uuid := coalesce(new.tenant_id, old.tenant_id);
begin
  -- A tenant being deleted takes its tickets along: nothing to rewrite.
  if not exists (select 1 from public.tenants t where t.id = v_tenant) then
    return null;
  end if;
  -- The rewrites of a visibility change move values, they change none: the tickets'
  -- automation capture does not tell rules of them (a rule on `changed: custom_fields`
  -- replied to every ticket holding the field). Receivers of ticket.updated still hear
  -- of the row, whose visible values did change.
  if tg_op = 'UPDATE' then
    perform pg_catalog.set_config('private.custom_field_moving', v_key, true);
  end if;
  if tg_op = 'DELETE' then
    update public.tickets t set custom_fields = t.custom_fields - v_key
    from (select x.id from public.tickets x where x.tenant_id = v_tenant and x.custom_fields ? v_key
          order by x.id for no key update) l
    where t.tenant_id = v_tenant and t.id = l.id;
    update public.ticket_internal_fields i set custom_fields = i.custom_fields - v_key
    where i.tenant_id = v_tenant and i.custom_fields ? v_key;
  elsif new.visible_to_customers and not old.visible_to_customers then
    -- Now visible: out of ticket_internal_fields, into the tickets (the trigger sees a
    -- visible key and keeps it in the column).
    update public.tickets t set custom_fields = t.custom_fields || jsonb_build_object(v_key, l.value)
    from (select x.id, i.custom_fields -> v_key as value
          from public.ticket_internal_fields i join public.tickets x on x.tenant_id = i.tenant_id and x.id = i.ticket_id
          where i.tenant_id = v_tenant and i.custom_fields ? v_key
          order by x.id for no key update of x) l
    where t.tenant_id = v_tenant and t.id = l.id;
    update public.ticket_internal_fields i set custom_fields = i.custom_fields - v_key
    where i.tenant_id = v_tenant and i.custom_fields ? v_key;
  elsif old.visible_to_customers and not new.visible_to_customers then
    -- Now hidden: the same value written again is moved out of the column.
    update public.tickets t set custom_fields = t.custom_fields
    from (select x.id from public.tickets x where x.tenant_id = v_tenant and x.custom_fields ? v_key
          order by x.id for no key update) l
    where t.tenant_id = v_tenant and t.id = l.id;
  end if;
  perform pg_catalog.set_config('private.custom_field_moving', '', true);
  return null;
end;
$$;
revoke all on function private.custom_field_definition_changed() from public, anon, authenticated, service_role;

-- Redefined (20261206065000_third_round_review.sql): a visibility move is no change of
-- custom_fields.
create or replace function private.automation_capture() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_event text;
  v_ticket uuid;
  v_payload jsonb;
  v_chain text := nullif(current_setting('private.automation_chain', true), '');
  v_old jsonb;
  v_marks text;
  v_hidden boolean := false;
  -- A custom field changing visibility moves its values between the row and
  -- ticket_internal_fields (private.custom_field_definition_changed): no value changes.
  v_moving boolean := coalesce(current_setting('private.custom_field_moving', true), '') <> '';
begin
  -- Staff-only custom field values this update changed beside the row (the custom fields
  -- trigger remembers the ticket for this): taken off the list whatever follows, so a
  -- later update of the ticket in the transaction does not find it.
  if tg_table_name = 'tickets' and tg_op = 'UPDATE' then
    v_marks := coalesce(current_setting('private.hidden_fields_changed', true), '');
    if v_marks <> '' and position(new.id::text || ',' in v_marks) > 0 then
      v_hidden := true;
      perform set_config('private.hidden_fields_changed', replace(v_marks, new.id::text || ',', ''), true);
    end if;
  end if;
  -- Branches, not one CASE: each table's row has only its own columns.
  if tg_table_name = 'tickets' then
    v_event := case tg_op when 'INSERT' then 'ticket.created' else 'ticket.updated' end;
    v_ticket := new.id;
  elsif tg_table_name = 'ticket_messages' then
    v_event := 'message.created';
    v_ticket := new.ticket_id;
  else
    v_event := 'ticket.sla_breached';
    v_ticket := new.ticket_id;
  end if;
  if not exists (select 1 from public.automation_rules r
                 where r.tenant_id = new.tenant_id and r.event = v_event and r.active) then
    return null;
  end if;
  v_payload := jsonb_build_object('tenant_id', new.tenant_id, 'ticket_id', v_ticket, 'event', v_event,
    'event_id', gen_random_uuid(),
    'chain', coalesce(to_jsonb(string_to_array(v_chain, ',')), '[]'::jsonb));
  if tg_table_name = 'tickets' and tg_op = 'UPDATE' then
    if new.deleted_at is not null then
      return null;
    end if;
    v_old := to_jsonb(old);
    v_payload := v_payload || jsonb_build_object('changed', (
      select coalesce(jsonb_agg(n.key order by n.key), '[]'::jsonb)
      from jsonb_each(to_jsonb(new)) n
      where n.key not in ('updated_at', 'search') and n.value is distinct from v_old -> n.key));
    if v_moving then
      v_payload := jsonb_set(v_payload, '{changed}', (v_payload -> 'changed') - 'custom_fields');
    elsif v_hidden and not (v_payload -> 'changed') ? 'custom_fields' then
      v_payload := jsonb_set(v_payload, '{changed}', (
        select jsonb_agg(k order by k) from jsonb_array_elements_text((v_payload -> 'changed') || '["custom_fields"]') k));
    end if;
    if v_payload -> 'changed' = '[]'::jsonb then
      return null; -- activity only: not an event
    end if;
  elsif tg_table_name = 'ticket_messages' then
    v_payload := v_payload || jsonb_build_object('message_id', new.id);
  end if;
  perform private.add_job('automation', v_payload, null, null, null, 'automation:' || v_ticket);
  return null;
end;
$$;
