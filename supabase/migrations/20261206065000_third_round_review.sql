-- After review of the third round (20261206063000, 20261206064000).
--
-- 1. A service's suspension is the platform's: its tenant's status and its plan set it.
--    An admin who set desired_state 'suspended' through PostgREST had it undone by the
--    tenant's next resume, and 20261206063000's marks of the plan's pauses missed a plan
--    change made while the tenant was suspended (such a service was never resumed). Now
--    nobody sets 'suspended' by a statement of their own (409 suspension_is_the_platforms:
--    a service is turned off by removing it), so a service suspended while its tenant is
--    active is the plan's, and comes back with the plan's feature; the marks are dropped.
-- 2. A tenant is deleted outright past a service in state pending that made nothing, as
--    20261206055000 said: a failed one may have made something whose answer was lost.
--    (A service of a partner this deployment has no connection to, with nothing made,
--    is now removed by its removal job: shared/jobs/tasks/provision.ts.)
-- 3. An update that changes staff-only custom field values and the row too tells the
--    rules that custom_fields changed (it named the row's columns alone).

drop table private.services_paused_by_plan;

-- Redefined (20261206063000_second_round_review.sql): without marks (1).
create or replace function private.services_follow_the_plan(p_tenant_id uuid) returns void
language plpgsql security definer
set search_path = ''
as $$
begin
  update public.tenant_services s set desired_state = 'suspended'
  where s.tenant_id = p_tenant_id and s.desired_state = 'active' and not private.tenant_has_feature(p_tenant_id, s.service);
  update public.tenant_services s set desired_state = 'active'
  where s.tenant_id = p_tenant_id and s.desired_state = 'suspended' and private.tenant_has_feature(p_tenant_id, s.service)
    and exists (select 1 from public.tenants t where t.id = p_tenant_id and t.status = 'active');
end;
$$;

-- 1.
create function private.tenant_services_suspension_is_the_platforms() returns trigger
language plpgsql security definer
set search_path = ''
as $$
begin
  -- A statement of the caller's own (trigger depth 1), not the tenant's status or plan
  -- changes whose triggers set it.
  if new.desired_state = 'suspended' and (tg_op = 'INSERT' or old.desired_state is distinct from 'suspended')
     and pg_catalog.pg_trigger_depth() = 1 and private.current_user_id() is not null then
    raise exception 'A service is turned off by removing it; it is suspended with its tenant or by its plan'
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'suspension_is_the_platforms', 'details',
        jsonb_build_object('field', 'desired_state', 'allowed', jsonb_build_array('active', 'removed')));
  end if;
  return new;
end;
$$;
revoke all on function private.tenant_services_suspension_is_the_platforms() from public, anon, authenticated;
create trigger tenant_services_suspension_is_the_platforms before insert or update of desired_state on public.tenant_services
  for each row execute function private.tenant_services_suspension_is_the_platforms();

-- Redefined (20261206063000_second_round_review.sql): pending only (2).
create or replace function private.tenant_delete_after_services() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_left text[];
begin
  select array_agg(s.service order by s.service) into v_left
  from public.tenant_services s
  where s.tenant_id = old.id and s.state <> 'removed'
    and not (s.state = 'pending' and s.external_ids = '{}'::jsonb and s.credentials_encrypted is null);
  if v_left is not null then
    raise exception 'The tenant''s partner services are not removed yet (%): set the tenant deleted, and delete it once they are',
      array_to_string(v_left, ', ')
      using errcode = 'PT409',
      detail = jsonb_build_object('code', 'services_not_removed', 'details', jsonb_build_object('services', to_jsonb(v_left)));
  end if;
  return old;
end;
$$;

-- Redefined (20261206064000_hidden_field_changes_told.sql): remembers the ticket (3).
create or replace function private.write_ticket_custom_fields() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_role text := private.role_in(new.tenant_id);
  v_customer boolean := coalesce(v_role = 'user', false);
  v_prior jsonb := '{}';
  v_visible jsonb := '{}';
  v_hidden jsonb := '{}';
  v_errors jsonb := '[]';
  v_problem text;
  v_key text;
  v_value jsonb;
  v_stored_hidden jsonb;
  v_hidden_changed boolean := false;
  v_marks text;
  f public.custom_field_definitions;
begin
  if new.custom_fields is null or jsonb_typeof(new.custom_fields) <> 'object' then
    raise exception 'Custom fields are not valid' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object(
        'fields', jsonb_build_array(jsonb_build_object('field', 'custom_fields', 'message', 'must be an object'))));
  end if;
  if tg_op = 'UPDATE' then
    -- What the ticket holds now, both places: only values that change are checked.
    v_prior := old.custom_fields || coalesce((
      select i.custom_fields from public.ticket_internal_fields i where i.tenant_id = new.tenant_id and i.ticket_id = new.id
    ), '{}');
  end if;
  for v_key, v_value in select e.key, e.value from jsonb_each(new.custom_fields) e order by e.key loop
    -- A value that changes is filed under the field's visibility as committed: FOR SHARE
    -- waits for a visibility change under way (and makes a later one wait for this
    -- write), so the move's rewrite and this write never miss each other. Unchanged
    -- values are already on the ticket, where the move's rewrite finds them.
    if v_value is distinct from v_prior -> v_key then
      select d.* into f from public.custom_field_definitions d where d.tenant_id = new.tenant_id and d.key = v_key for share;
    else
      select d.* into f from public.custom_field_definitions d where d.tenant_id = new.tenant_id and d.key = v_key;
    end if;
    if not found or (v_customer and not f.visible_to_customers) then
      v_errors := v_errors || jsonb_build_array(jsonb_build_object(
        'field', 'custom_fields.' || v_key, 'message', 'is not a custom field of this tenant'));
      continue;
    end if;
    if jsonb_typeof(v_value) <> 'null' and v_value is distinct from v_prior -> v_key then
      v_problem := private.custom_field_value_problem(f.type, f.options, v_value);
      if v_problem is not null then
        v_errors := v_errors || jsonb_build_array(jsonb_build_object('field', 'custom_fields.' || v_key, 'message', v_problem));
        continue;
      end if;
    end if;
    if f.visible_to_customers then
      if jsonb_typeof(v_value) <> 'null' then
        v_visible := v_visible || jsonb_build_object(v_key, v_value);
      end if;
    else
      v_hidden := v_hidden || jsonb_build_object(v_key, v_value);
    end if;
  end loop;
  -- Required when a person files a ticket: the required fields they could see.
  if tg_op = 'INSERT' and v_role is not null then
    select v_errors || coalesce(jsonb_agg(jsonb_build_object('field', 'custom_fields.' || d.key, 'message', 'is required')
                                          order by d.position, d.key), '[]')
    into v_errors
    from public.custom_field_definitions d
    where d.tenant_id = new.tenant_id and d.required and (d.visible_to_customers or not v_customer)
      and jsonb_typeof(coalesce(case when d.visible_to_customers then v_visible else v_hidden end -> d.key, 'null')) = 'null';
  end if;
  if jsonb_array_length(v_errors) > 0 then
    raise exception 'Custom fields are not valid' using errcode = 'PT422',
      detail = jsonb_build_object('code', 'validation_failed', 'details', jsonb_build_object('fields', v_errors));
  end if;

  new.custom_fields := v_visible;
  if tg_op = 'UPDATE' and v_hidden <> '{}' then
    select i.custom_fields into v_stored_hidden from public.ticket_internal_fields i
    where i.tenant_id = new.tenant_id and i.ticket_id = new.id;
    v_hidden_changed := jsonb_strip_nulls(coalesce(v_stored_hidden, '{}') || v_hidden) is distinct from coalesce(v_stored_hidden, '{}');
  end if;
  if v_hidden <> '{}' then
    insert into public.ticket_internal_fields as i (tenant_id, ticket_id, custom_fields)
    values (new.tenant_id, new.id, jsonb_strip_nulls(v_hidden))
    on conflict (tenant_id, ticket_id) do update set custom_fields = jsonb_strip_nulls(i.custom_fields || v_hidden);
  end if;
  -- Only staff-only values changed: the row itself is as it was (the triggers after this
  -- one change due dates only with the status), so its own AFTER triggers take it for
  -- activity and tell nobody. Told here, as an update of its custom fields.
  if v_hidden_changed and new.deleted_at is null then
    if (to_jsonb(new) - '{updated_at,search}'::text[]) = (to_jsonb(old) - '{updated_at,search}'::text[]) then
      perform private.ticket_hidden_fields_changed(new);
    else
      -- The row changes too: its own AFTER trigger tells the rules, and adds custom_fields
      -- to what changed when it finds this ticket here (a few hundred tickets a statement
      -- at most are remembered: a bulk rewrite of staff-only values is told by its columns).
      v_marks := coalesce(current_setting('private.hidden_fields_changed', true), '');
      if length(v_marks) < 40000 then
        perform set_config('private.hidden_fields_changed', v_marks || new.id::text || ',', true);
      end if;
    end if;
  end if;
  return new;
end;
$$;

-- Redefined (20261202140100_automation_speed.sql): custom_fields among what changed (3).
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
    if v_hidden and not (v_payload -> 'changed') ? 'custom_fields' then
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
