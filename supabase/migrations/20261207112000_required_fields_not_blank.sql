-- A required custom field takes no blank value (review, issue 14).
--
-- A required field was missing only when absent or null: a customer filing a ticket with
-- a required order number of "" (or "   ", or a multi-select of []) passed, and the field
-- was as good as unanswered. Blank text and an empty list are now missing too.

-- Whether a custom field's value says nothing: absent, null, text of white space only
-- (tabs and line breaks too), an empty list.
create function private.custom_field_blank(p_value jsonb) returns boolean
language sql immutable
set search_path = ''
as $$
  select p_value is null or jsonb_typeof(p_value) = 'null'
    or (jsonb_typeof(p_value) = 'string' and (p_value #>> '{}') !~ '\S')
    or p_value = '[]'::jsonb
$$;
revoke all on function private.custom_field_blank(jsonb) from public, anon, authenticated;

-- Redefined (20261206065000_third_round_review.sql): a blank value is no answer to a
-- required field.
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
      and private.custom_field_blank(case when d.visible_to_customers then v_visible else v_hidden end -> d.key);
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

