-- Automation rules, cheaper per event (20261202140000_automation_rules.sql), measured by
-- tests/bench/automation.bench.ts:
--   * the capture trigger rendered the old ticket as jsonb once per column to find what
--     an update changed; now once per row;
--   * an action that would change nothing (the status, priority, team or assignee it sets
--     is already there; the tags it adds are all present, or those it removes all absent)
--     no longer writes the ticket: before, every such action fired the ticket's update
--     triggers (audit, outbox, statistics, capture) for an updated_at alone. It still
--     counts as applied — the rule's outcome is the state, and the state holds.

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
begin
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

create or replace function private.automation_apply_action(p_rule public.automation_rules, p_ticket_id uuid, p_event text, p_action jsonb)
returns void
language plpgsql volatile security definer
set search_path = ''
as $$
declare
  t uuid := p_rule.tenant_id;
  v_text text;
begin
  case p_action ->> 'type'
    when 'set_status' then
      update public.tickets set status = p_action ->> 'status'
      where tenant_id = t and id = p_ticket_id and status is distinct from p_action ->> 'status';
    when 'set_priority' then
      update public.tickets set priority = p_action ->> 'priority'
      where tenant_id = t and id = p_ticket_id and priority is distinct from p_action ->> 'priority';
    when 'set_team' then
      update public.tickets set team_id = (p_action ->> 'team_id')::uuid
      where tenant_id = t and id = p_ticket_id and team_id is distinct from (p_action ->> 'team_id')::uuid;
    when 'assign' then
      update public.tickets set assigned_to = (p_action ->> 'user_id')::uuid
      where tenant_id = t and id = p_ticket_id and assigned_to is distinct from (p_action ->> 'user_id')::uuid;
    when 'add_tags' then
      update public.tickets
      set tags = tags || array(select x from jsonb_array_elements_text(p_action -> 'tags') x where not x = any (tags))
      where tenant_id = t and id = p_ticket_id
        and not tags @> array(select jsonb_array_elements_text(p_action -> 'tags'));
    when 'remove_tags' then
      update public.tickets
      set tags = array(select x from unnest(tags) x
                       where not x = any (array(select jsonb_array_elements_text(p_action -> 'tags'))))
      where tenant_id = t and id = p_ticket_id
        and tags && array(select jsonb_array_elements_text(p_action -> 'tags'));
    when 'add_note', 'reply' then
      insert into public.ticket_messages (tenant_id, ticket_id, type, content)
      values (t, p_ticket_id, case p_action ->> 'type' when 'add_note' then 'note' else 'message' end, p_action ->> 'content');
    when 'send_canned' then
      v_text := btrim(private.render_canned_response(t, (p_action ->> 'canned_response_id')::uuid, p_ticket_id));
      if v_text is null or v_text = '' then
        raise exception 'canned response % not found or empty', p_action ->> 'canned_response_id' using errcode = 'P0002';
      end if;
      insert into public.ticket_messages (tenant_id, ticket_id, type, content) values (t, p_ticket_id, 'message', v_text);
    when 'emit_webhook' then
      perform private.emit_webhook_event(t, 'automation.triggered', 'ticket:' || p_ticket_id,
        jsonb_build_object('type', 'automation.triggered', 'tenant_id', t,
          'data', jsonb_build_object('rule_id', p_rule.id, 'rule_name', p_rule.name, 'label', p_action ->> 'label',
                                     'ticket_id', p_ticket_id, 'event', p_event),
          'occurred_at', to_char(clock_timestamp() at time zone 'utc', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')));
    else
      raise exception 'unknown action %', p_action ->> 'type' using errcode = '22023';
  end case;
end;
$$;
