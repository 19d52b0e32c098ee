-- Custom fields per tenant (issue 16 §4): typed field definitions that admins keep, values
-- on tickets validated by the database on every write, filterable through an index, and
-- fields hidden from customers that never reach them.
--
-- Where the values live. RLS filters rows, not columns, and `authenticated` is one role
-- for customers and staff alike, so a value hidden from customers cannot sit in a column
-- of public.tickets: a customer selecting their own ticket through PostgREST (or
-- receiving it over realtime, tickets being in the publication) would read it. So:
--   * public.tickets.custom_fields (jsonb, GIN index) holds the values of fields visible
--     to customers — whoever sees the ticket sees them;
--   * public.ticket_internal_fields (one row per ticket, jsonb, GIN index) holds the
--     values of the other fields; its select policy lets staff who see the ticket read
--     it, customers never; no API role writes it directly, and it is not in the realtime
--     publication.
-- There is one way to write both: tickets.custom_fields. A BEFORE trigger
-- (private.write_ticket_custom_fields, as the owner) checks every key written against the
-- tenant's definitions, keeps the visible ones in the column and moves the hidden ones
-- into ticket_internal_fields (merged; null removes a value). So an API request and a
-- direct PostgREST insert or update obey the same rules: the field exists (for a customer:
-- exists and is visible — a hidden one is "not a custom field", exactly like an unknown
-- key, so its existence is not told), the value has the field's type (text ≤ 1,000
-- characters, a JSON number, a YYYY-MM-DD date, one of the options, a list of distinct
-- options, true/false), and on create every required field a person filing could see
-- has a value (customers: the visible required fields; staff: all). Machine paths (no
-- person in the claims: inbound webhooks, voice calls) file what they have. Only values
-- that change are checked, so an option removed later does not block other edits.
--
-- Changing a field's visibility moves its values between the two places (tickets
-- holding one are rewritten, in id order, as the lock order wants); deleting a field
-- removes its values. Keys and types never change (no update privilege).

-- ------------------------------------------------------------------ definitions

-- Whether a field's options fit its type: select and multi_select have 1 to 100
-- distinct, trimmed options of 1 to 100 characters; the other types none. Pure; the
-- table's check constraint.
create function private.custom_field_options_ok(p_type text, p_options text[]) returns boolean
language sql immutable
set search_path = ''
as $$
  select case
    when p_type in ('select', 'multi_select') then
      cardinality(p_options) between 1 and 100
      and coalesce((select count(distinct o) = cardinality(p_options)
                           and bool_and(char_length(o) between 1 and 100 and o = pg_catalog.btrim(o))
                    from unnest(p_options) o), false)
    else cardinality(p_options) = 0
  end;
$$;
revoke all on function private.custom_field_options_ok(text, text[]) from public, anon;
grant execute on function private.custom_field_options_ok(text, text[]) to authenticated, service_role;

create table public.custom_field_definitions (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  id uuid not null default gen_random_uuid(),
  -- The key values are stored under (tickets.custom_fields ->> key) and filters name.
  key text not null check (key ~ '^[a-z][a-z0-9_]{0,39}$'),
  label text not null check (char_length(btrim(label)) between 1 and 100),
  type text not null check (type in ('text', 'number', 'date', 'select', 'multi_select', 'checkbox')),
  required boolean not null default false,
  visible_to_customers boolean not null default false,
  options text[] not null default '{}',
  position integer not null default 0 check (position between 0 and 10000),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, id),
  constraint custom_field_definitions_key_key unique (tenant_id, key),
  constraint custom_field_definitions_options_check check (private.custom_field_options_ok(type, options))
);
comment on table public.custom_field_definitions is
  'A tenant''s custom ticket fields: values in tickets.custom_fields (visible to customers) or ticket_internal_fields (staff only).';

create trigger set_updated_at before update on public.custom_field_definitions
  for each row execute function private.set_updated_at();
select private.enable_audit('public.custom_field_definitions');

alter table public.custom_field_definitions enable row level security;
revoke all on public.custom_field_definitions from anon, authenticated;
grant select, insert (tenant_id, key, label, type, required, visible_to_customers, options, position),
  update (label, required, visible_to_customers, options, position), delete
  on public.custom_field_definitions to authenticated;

-- Staff read every definition; customers only those visible to them (a hidden field's
-- very name may be internal). Admins keep them, in an active tenant.
create policy custom_field_definitions_select on public.custom_field_definitions for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
    or (select private.is_platform_admin())
    or (visible_to_customers and tenant_id = any ((select private.tenant_ids('user'))::uuid[]))
  );
create policy custom_field_definitions_insert on public.custom_field_definitions for insert to authenticated
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy custom_field_definitions_update on public.custom_field_definitions for update to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()))
  with check (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));
create policy custom_field_definitions_delete on public.custom_field_definitions for delete to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin', true))::uuid[]) or (select private.is_platform_admin()));

-- ------------------------------------------------------------------ values

alter table public.tickets
  add column custom_fields jsonb not null default '{}'::jsonb
    check (jsonb_typeof(custom_fields) = 'object' and octet_length(custom_fields::text) <= 16384);
comment on column public.tickets.custom_fields is
  'Values of the custom fields visible to customers, by key. Writing a staff-only field''s key here stores it in ticket_internal_fields instead.';
-- Filters are containment (custom_fields @> '{"plan": "gold"}'); removing or moving a
-- field finds its tickets by key (custom_fields ? 'plan'): jsonb_ops answers both.
create index tickets_custom_fields_idx on public.tickets using gin (custom_fields);
grant insert (custom_fields), update (custom_fields) on public.tickets to authenticated;

create table public.ticket_internal_fields (
  tenant_id uuid not null references public.tenants (id) on delete cascade,
  ticket_id uuid not null,
  custom_fields jsonb not null default '{}'::jsonb
    check (jsonb_typeof(custom_fields) = 'object' and octet_length(custom_fields::text) <= 16384),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  primary key (tenant_id, ticket_id),
  -- Deferred: a new ticket's hidden values are written by its BEFORE INSERT trigger,
  -- before the ticket row itself exists.
  foreign key (tenant_id, ticket_id) references public.tickets (tenant_id, id) on delete cascade
    deferrable initially deferred
);
comment on table public.ticket_internal_fields is
  'Values of the custom fields hidden from customers, one row per ticket; staff who see the ticket read it, nobody writes it but the tickets trigger.';
create index ticket_internal_fields_values_idx on public.ticket_internal_fields using gin (custom_fields);

create trigger set_updated_at before update on public.ticket_internal_fields
  for each row execute function private.set_updated_at();
select private.enable_audit('public.ticket_internal_fields');

alter table public.ticket_internal_fields enable row level security;
revoke all on public.ticket_internal_fields from anon, authenticated;
grant select on public.ticket_internal_fields to authenticated;
-- Staff who see the ticket (the tickets select policy decides, through the subquery):
-- admins all of the tenant's, agents those they work. Customers nothing, their own
-- tickets' included.
create policy ticket_internal_fields_select on public.ticket_internal_fields for select to authenticated
  using (
    tenant_id = any ((select private.tenant_ids('admin'))::uuid[])
    or (select private.is_platform_admin())
    or (tenant_id = any ((select private.tenant_ids('agent'))::uuid[])
        and exists (select 1 from public.tickets t
                    where t.tenant_id = ticket_internal_fields.tenant_id and t.id = ticket_internal_fields.ticket_id))
  );

-- ------------------------------------------------------------------ checking a value

-- Why a value does not fit a field of this type and these options, or null when it does.
-- Pure.
create function private.custom_field_value_problem(p_type text, p_options text[], p_value jsonb) returns text
language plpgsql immutable
set search_path = ''
as $$
declare
  v_kind text := jsonb_typeof(p_value);
  v_text text;
begin
  case p_type
    when 'text' then
      if v_kind <> 'string' or char_length(p_value #>> '{}') > 1000 then
        return 'must be a text of at most 1000 characters';
      end if;
    when 'number' then
      if v_kind <> 'number' then
        return 'must be a number';
      end if;
    when 'checkbox' then
      if v_kind <> 'boolean' then
        return 'must be true or false';
      end if;
    when 'date' then
      v_text := p_value #>> '{}';
      if v_kind <> 'string' or v_text !~ '^\d{4}-\d{2}-\d{2}$' then
        return 'must be a date (YYYY-MM-DD)';
      end if;
      begin
        if to_char(v_text::date, 'YYYY-MM-DD') <> v_text then
          return 'must be a date (YYYY-MM-DD)';
        end if;
      exception when others then
        return 'must be a date (YYYY-MM-DD)';
      end;
    when 'select' then
      if v_kind <> 'string' or not ((p_value #>> '{}') = any (p_options)) then
        return 'must be one of the options: ' || array_to_string(p_options, ', ');
      end if;
    when 'multi_select' then
      if v_kind <> 'array'
         or exists (select 1 from jsonb_array_elements(p_value) e
                    where jsonb_typeof(e) <> 'string' or not ((e #>> '{}') = any (p_options)))
         or (select count(distinct e) <> count(*) from jsonb_array_elements(p_value) e) then
        return 'must be a list of distinct options among: ' || array_to_string(p_options, ', ');
      end if;
    else
      return 'has an unknown type';
  end case;
  return null;
end;
$$;
revoke all on function private.custom_field_value_problem(text, text[], jsonb) from public, anon, authenticated, service_role;

-- The one writer of custom field values (see the top of this file). Runs as the owner: it
-- reads every definition (a customer's policy would hide the hidden ones, but the rule
-- must not depend on it) and writes ticket_internal_fields, which no API role may. The
-- caller's role comes from the request's claims (private.role_in): 'user' is a customer;
-- none is a machine path. Fires after the other BEFORE triggers (name order), so the
-- row it sees is the one stored. Refusals: PT422 validation_failed with every field in
-- details.fields (`custom_fields.<key>`).
create function private.write_ticket_custom_fields() returns trigger
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
    select d.* into f from public.custom_field_definitions d where d.tenant_id = new.tenant_id and d.key = v_key;
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
revoke all on function private.write_ticket_custom_fields() from public, anon, authenticated, service_role;
create trigger tickets_before_write_custom_fields before insert or update of custom_fields on public.tickets
  for each row execute function private.write_ticket_custom_fields();

-- ------------------------------------------------------------------ definitions changing

-- A field that changes visibility takes its values along; a deleted field takes them
-- away. Tickets are locked in id order (the lock order: tickets by id) before they are
-- rewritten; each rewrite goes through write_ticket_custom_fields, which files a value
-- under the field's visibility as it now is (unchanged values are not checked again).
create function private.custom_field_definition_changed() returns trigger
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
  return null;
end;
$$;
revoke all on function private.custom_field_definition_changed() from public, anon, authenticated, service_role;
create trigger custom_field_definition_changed after update of visible_to_customers or delete on public.custom_field_definitions
  for each row execute function private.custom_field_definition_changed();

-- ------------------------------------------------------------------ filtering

-- The tickets of the tenant the caller sees whose values contain p_contains, found
-- through the GIN index of the place those values live (p_internal: the staff-only
-- table). Under RLS that index cannot be used: `@>` is not leakproof, so Postgres applies
-- the policy first and the filter row by row over the whole tenant. As the owner the
-- index runs first, then the tickets select policy itself, read from the catalog
-- (private.tickets_select_predicate), so only tickets the caller sees come back, and the
-- list reads those again under RLS. Staff only: a customer's time here would depend on
-- other customers' tickets (as with the search candidates), so customers filter their
-- own tickets under RLS, and never by a hidden field. Outsiders get nothing, at once.
create function private.tickets_with_custom_fields(p_tenant_id uuid, p_contains jsonb, p_internal boolean)
returns setof uuid
language plpgsql stable security definer
set search_path = ''
as $$
begin
  if p_tenant_id is null or p_contains is null or jsonb_typeof(p_contains) <> 'object' then
    raise exception 'tickets_with_custom_fields needs a tenant and an object' using errcode = '22023';
  end if;
  if not (p_tenant_id = any (private.tenant_ids('agent')) or private.is_platform_admin()) then
    return;
  end if;
  if coalesce(p_internal, false) then
    return query execute format(
      'select id from public.tickets where tenant_id = $1 and id in (
         select i.ticket_id from public.ticket_internal_fields i where i.tenant_id = $1 and i.custom_fields @> $2)
       and (%s)', private.tickets_select_predicate())
      using p_tenant_id, p_contains;
  else
    return query execute format(
      'select id from public.tickets where tenant_id = $1 and custom_fields @> $2 and (%s)', private.tickets_select_predicate())
      using p_tenant_id, p_contains;
  end if;
end;
$$;
revoke all on function private.tickets_with_custom_fields(uuid, jsonb, boolean) from public, anon;
grant execute on function private.tickets_with_custom_fields(uuid, jsonb, boolean) to authenticated;
