-- Automation rules meet custom fields (issue 16 §1 × §4): conditions on
-- `custom_fields.<key>` read the ticket's values wherever they are kept — the ones
-- customers see in tickets.custom_fields, the hidden ones in ticket_internal_fields —
-- and a new action, set_custom_field {key, value}, writes one through the same trigger a
-- PostgREST write of tickets.custom_fields runs.

create or replace function private.automation_subject(p_ticket public.tickets, p_changed jsonb, p_message jsonb) returns jsonb
language sql stable
set search_path = ''
as $$
  select (to_jsonb(p_ticket) - 'search')
    || jsonb_build_object(
      'custom_fields', p_ticket.custom_fields || coalesce((
        select i.custom_fields from public.ticket_internal_fields i
        where i.tenant_id = p_ticket.tenant_id and i.ticket_id = p_ticket.id), '{}'::jsonb),
      'requester_id', p_ticket.created_by, 'changed', coalesce(p_changed, '[]'::jsonb), 'message', p_message);
$$;
revoke all on function private.automation_subject(public.tickets, jsonb, jsonb) from public, anon, authenticated;

-- As before, plus set_custom_field {key, value}: a field key, and a text, number,
-- boolean, list of texts, or null (removes the value); the field's own rules are the
-- trigger's when the action runs (a value the field refuses fails the rule, recorded).
create or replace function private.automation_actions_ok(p_actions jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select jsonb_typeof(p_actions) = 'array'
    and jsonb_array_length(p_actions) between 1 and 20
    and not exists (
      select 1 from jsonb_array_elements(p_actions) a
      where not coalesce(case
        when jsonb_typeof(a) = 'object' and a ->> 'type' = 'emit_webhook' then
          (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{label,type}'
          and jsonb_typeof(a -> 'label') = 'string' and char_length(a ->> 'label') between 1 and 100
        when jsonb_typeof(a) = 'object' and a ->> 'type' = 'set_custom_field' then
          (select array_agg(k order by k) from jsonb_object_keys(a) k) = '{key,type,value}'
          and (a ->> 'key') ~ '^[a-z][a-z0-9_]{0,39}$'
          and (jsonb_typeof(a -> 'value') in ('string', 'number', 'boolean', 'null')
               or (jsonb_typeof(a -> 'value') = 'array' and jsonb_array_length(a -> 'value') <= 100
                   and not exists (select 1 from jsonb_array_elements(a -> 'value') v where jsonb_typeof(v) <> 'string')))
          and octet_length((a -> 'value')::text) <= 4096
        else private.macro_actions_ok(jsonb_build_array(a)) end, false));
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
    when 'set_custom_field' then
      -- Through the tickets' one writer of values (private.write_ticket_custom_fields):
      -- checked against the field's type and options, a hidden field's value filed away
      -- from customers, null removing it.
      update public.tickets set custom_fields = custom_fields || jsonb_build_object(p_action ->> 'key', p_action -> 'value')
      where tenant_id = t and id = p_ticket_id;
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
