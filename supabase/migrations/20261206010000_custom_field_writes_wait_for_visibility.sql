-- A custom field value written while its field changes visibility is filed where the
-- field's visibility, once both commit, says (issue 14, carried review finding on
-- 20261202110200_custom_fields.sql).
--
-- A visibility change rewrites the tickets holding the field's values in its own
-- snapshot. A ticket write that read the definition before that change committed filed
-- its value under the old visibility, and the change's rewrite, which could not see that
-- ticket's new value, never moved it: a field just hidden from customers kept a new
-- value in tickets.custom_fields, which customers read (PostgREST, realtime); a field
-- just shown kept one in the staff-only table; and a value removed while the field was
-- shown came back from the rewrite's stale read.
--
-- The write now reads the definition of each value it changes FOR SHARE. A visibility
-- change (an UPDATE, FOR NO KEY UPDATE of the definition) and a changing write then run
-- one after the other: the write waits and reads the visibility as committed, or the
-- change waits and its rewrite (a statement of its own, so a fresh snapshot) sees the
-- write. Values the write does not change are on the ticket already, where the rewrite
-- finds them and waits for the ticket's lock. The one interleaving that closes a cycle (a
-- write holding a ticket the change has to rewrite, then asking for the definition the
-- change holds) is a deadlock Postgres breaks: one of the two fails whole (40P01, the
-- API's 503 retry) and the other is filed right.

-- Redefined (20261202110200_custom_fields.sql).
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
  if v_hidden <> '{}' then
    insert into public.ticket_internal_fields as i (tenant_id, ticket_id, custom_fields)
    values (new.tenant_id, new.id, jsonb_strip_nulls(v_hidden))
    on conflict (tenant_id, ticket_id) do update set custom_fields = jsonb_strip_nulls(i.custom_fields || v_hidden);
  end if;
  return new;
end;
$$;
