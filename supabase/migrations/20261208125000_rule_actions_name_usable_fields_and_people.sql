-- Rule and macro actions name fields and people that can be used, and a field a rule
-- sets is not deleted under it; a rule setting a value the ticket has writes nothing
-- (review of the ticket workflow's rules, issue 14).
--
-- 20261207210000 checked templates, tags and assignees when an action is written, so an
-- action does not fail every time it is used. Two were left: set_custom_field named any
-- key (a mistyped one was written, 201, and every event then recorded a failed run whose
-- other actions rolled back), and assign named a person still a member but disabled on
-- the platform (tickets refuse them as assignees: a macro answered 422 on a field it does
-- not have, a rule failed every run). Both are now a 422 on write naming
-- `actions.<n>.key` or `actions.<n>.user_id`. Deleting a custom field a rule sets is a 409
-- `custom_field_in_use` listing the rules (the tenant's deletion takes it along). And
-- set_custom_field wrote the ticket when its value was already there (updated_at moved,
-- realtime subscribers were told), unlike every other action.

-- Redefined (20261207210000_action_targets_exist.sql): set_custom_field's key, and an
-- assignee disabled on the platform.
create or replace function private.actions_name_existing_targets() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_pos int;
  v_action jsonb;
  v_id uuid;
  v_canned public.canned_responses;
  v_role text;
  v_errors jsonb := '[]';
  v_uuid constant text := '^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$';
begin
  if jsonb_typeof(new.actions) is distinct from 'array' then
    return new; -- not a list of actions: the table's check constraint says so
  end if;
  -- An API caller outside the tenant: the policies refuse the write as for an id nobody
  -- has; which templates and people the tenant has is not theirs to learn.
  if private.outside_tenant(new.tenant_id) then
    return new;
  end if;
  -- In the order of the ids they name, so two writers take the rows' locks alike.
  for v_pos, v_action in
    select a.n - 1, a.v from jsonb_array_elements(new.actions) with ordinality as a(v, n)
    where jsonb_typeof(a.v) = 'object'
    order by coalesce(a.v ->> 'canned_response_id', a.v ->> 'user_id', a.v ->> 'key', ''), a.n
  loop
    case v_action ->> 'type'
    when 'add_tags', 'remove_tags' then
      if jsonb_typeof(v_action -> 'tags') = 'array' then
        if exists (select 1 from jsonb_array_elements(v_action -> 'tags') t
                   where jsonb_typeof(t) = 'string' and not (t #>> '{}') ~ '^[^,\s][^,]*$') then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.tags',
            'message', 'a tag has no commas and does not start with a space'));
        elsif (select count(*) <> count(distinct t) from jsonb_array_elements(v_action -> 'tags') t) then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.tags',
            'message', 'names a tag more than once'));
        end if;
      end if;
    when 'send_canned' then
      if (v_action ->> 'canned_response_id') ~ v_uuid then
        v_id := (v_action ->> 'canned_response_id')::uuid;
        -- FOR KEY SHARE: a deletion running at the same time waits, then sees this action.
        select c.* into v_canned from public.canned_responses c
        where c.tenant_id = new.tenant_id and c.id = v_id for key share;
        if not found then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.canned_response_id',
            'message', 'is not a canned response of the tenant'));
        elsif v_canned.scope = 'personal' and (tg_table_name = 'automation_rules'
              or not coalesce((to_jsonb(new) ->> 'scope') = 'personal'
                              and (to_jsonb(new) ->> 'owner_id')::uuid = v_canned.owner_id, false)) then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.canned_response_id',
            'message', case when tg_table_name = 'automation_rules'
                         then 'is a personal canned response: a rule sends tenant or team templates only'
                         else 'is a personal canned response: only a personal macro of its owner sends it' end));
        end if;
      end if;
    when 'assign' then
      if jsonb_typeof(v_action -> 'user_id') = 'string' and (v_action ->> 'user_id') ~ v_uuid then
        -- A disabled person keeps their membership; tickets refuse them as assignees
        -- (private.check_ticket_assignee), so the action would fail every time it is used.
        select case when u.status = 'active' then m.role else 'disabled' end into v_role
        from public.memberships m join public.users u on u.id = m.user_id
        where m.tenant_id = new.tenant_id and m.user_id = (v_action ->> 'user_id')::uuid;
        if v_role = 'disabled' then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.user_id',
            'message', 'is disabled on the platform'));
        elsif v_role is null or v_role not in ('agent', 'admin') then
          v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.user_id',
            'message', 'is not an agent or admin of the tenant'));
        end if;
      end if;
    when 'set_custom_field' then
      -- The field must be the tenant's (its value's type and options are checked when the
      -- rule runs, against the field as it is then). FOR KEY SHARE: a deletion running at
      -- the same time waits, then sees this action (custom_field_delete_guard).
      if jsonb_typeof(v_action -> 'key') = 'string' and not exists (
           select 1 from public.custom_field_definitions f
           where f.tenant_id = new.tenant_id and f.key = v_action ->> 'key' for key share) then
        v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'actions.' || v_pos || '.key',
          'message', 'is not a custom field of the tenant'));
      end if;
    else
      null;
    end case;
  end loop;
  if jsonb_array_length(v_errors) > 0 then
    raise exception 'An action names what the tenant does not have or cannot use' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', (
        select jsonb_agg(e order by e ->> 'field') from jsonb_array_elements(v_errors) e)))::text;
  end if;
  return new;
end;
$$;
revoke all on function private.actions_name_existing_targets() from public, anon, authenticated;

-- Redefined (20261202141300_automation_review_fixes.sql): set_custom_field writes only a
-- value the ticket does not have.
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
      if exists (select 1 from public.canned_responses c
                 where c.tenant_id = t and c.id = (p_action ->> 'canned_response_id')::uuid and c.scope = 'personal') then
        raise exception 'canned response % is personal: a rule sends tenant or team templates only',
          p_action ->> 'canned_response_id' using errcode = 'P0001';
      end if;
      v_text := btrim(private.render_canned_response(t, (p_action ->> 'canned_response_id')::uuid, p_ticket_id));
      if v_text is null or v_text = '' then
        raise exception 'canned response % not found or empty', p_action ->> 'canned_response_id' using errcode = 'P0002';
      end if;
      insert into public.ticket_messages (tenant_id, ticket_id, type, content) values (t, p_ticket_id, 'message', v_text);
    when 'set_custom_field' then
      -- Through the tickets' one writer of values (private.write_ticket_custom_fields):
      -- checked against the field's type and options, a hidden field's value filed away
      -- from customers, null removing it.
      -- Not when the ticket has that value already (as the other actions): its write moved
      -- updated_at and told realtime subscribers of a change that was none. The value is
      -- read wherever it is kept (hidden ones in ticket_internal_fields); null is absent.
      update public.tickets k set custom_fields = k.custom_fields || jsonb_build_object(p_action ->> 'key', p_action -> 'value')
      where k.tenant_id = t and k.id = p_ticket_id
        and (k.custom_fields || coalesce((select i.custom_fields from public.ticket_internal_fields i
                                          where i.tenant_id = t and i.ticket_id = p_ticket_id), '{}'))
              -> (p_action ->> 'key') is distinct from nullif(p_action -> 'value', 'null'::jsonb);
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

-- Refuses deleting a custom field a rule sets; the tenant's deletion takes it along.
create function private.custom_field_delete_guard() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_rules jsonb;
begin
  if not exists (select 1 from public.tenants t where t.id = old.tenant_id) then
    return old;
  end if;
  select jsonb_agg(r.id order by r.id) into v_rules from public.automation_rules r
  where r.tenant_id = old.tenant_id and exists (
    select 1 from jsonb_array_elements(r.actions) a
    where a ->> 'type' = 'set_custom_field' and a ->> 'key' = old.key);
  if v_rules is not null then
    raise exception 'Automation rules set this custom field: change or delete them first'
      using errcode = 'PT409',
        detail = jsonb_build_object('code', 'custom_field_in_use', 'details', jsonb_build_object(
          'custom_field_id', old.id, 'key', old.key, 'automation_rules', v_rules))::text;
  end if;
  return old;
end;
$$;
revoke all on function private.custom_field_delete_guard() from public, anon, authenticated;
create trigger custom_field_delete_guard before delete on public.custom_field_definitions
  for each row execute function private.custom_field_delete_guard();
