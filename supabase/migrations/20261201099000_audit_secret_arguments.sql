-- The audit trail's secret columns from the trigger's arguments (issue 12).
--
-- private.audit_row found the columns to leave out (named *_encrypted) with two queries
-- per audited row; measured (tests/bench/audit.bench.ts) each query inside the trigger
-- costs ~0.15–0.25× of a one-row update. private.enable_audit now passes them as
-- '-'-prefixed arguments, read from the catalog once per table, and the trigger removes
-- them with an expression. Every audited table's trigger is re-attached.

-- Redefined (20261201096000_audit_timestamps_in_trigger.sql): the secret columns too.
create or replace function private.enable_audit(p_table regclass, p_tenant_column text default 'tenant_id') returns void
language plpgsql volatile
set search_path = ''
as $$
declare
  v_keys text[];
  v_times text[];
  v_secrets text[];
  v_tenant text;
begin
  select array_agg(pg_catalog.quote_literal(a.attname) order by k.ord) into v_keys
  from pg_catalog.pg_index i
  cross join lateral unnest(i.indkey::int2[]) with ordinality k(attnum, ord)
  join pg_catalog.pg_attribute a on a.attrelid = i.indrelid and a.attnum = k.attnum
  where i.indrelid = p_table and i.indisprimary;
  if v_keys is null then
    raise exception '% has no primary key to file its audit rows under', p_table;
  end if;
  -- The timestamptz columns, '@'-prefixed, so the trail renders them without a catalog
  -- read per row.
  select coalesce(array_agg(pg_catalog.quote_literal('@' || a.attname) order by a.attnum), '{}') into v_times
  from pg_catalog.pg_attribute a
  where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped and a.atttypid = 'pg_catalog.timestamptz'::pg_catalog.regtype;
  -- The columns whose values never enter the trail (named *_encrypted), '-'-prefixed.
  select coalesce(array_agg(pg_catalog.quote_literal('-' || a.attname) order by a.attnum), '{}') into v_secrets
  from pg_catalog.pg_attribute a
  where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped and a.attname like '%\_encrypted';
  v_tenant := case when exists (
    select 1 from pg_catalog.pg_attribute a
    where a.attrelid = p_table and a.attname = p_tenant_column and a.attnum > 0 and not a.attisdropped
  ) then p_tenant_column else '' end;
  execute format('create or replace trigger audit after insert or update or delete on %s '
                 'for each row execute function private.audit_row(%s)',
                 p_table, array_to_string(pg_catalog.quote_literal(v_tenant) || v_keys || v_times || v_secrets, ', '));
end;
$$;


-- Redefined (20261201096000_audit_timestamps_in_trigger.sql): secret columns from the
-- arguments, no query.
create or replace function private.audit_row() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  -- Secrets never enter the trail: columns named *_encrypted are left out (a change to
  -- one still shows in changed_fields).
  v_old jsonb := case when tg_op <> 'INSERT' then to_jsonb(old) end;
  v_new jsonb := case when tg_op <> 'DELETE' then to_jsonb(new) end;
  v_row jsonb := coalesce(v_new, v_old);
  v_claims jsonb := coalesce(auth.jwt(), '{}'::jsonb);
  v_action text := tg_op;
  v_changed text[];
  v_key jsonb := '{}'::jsonb;
  v_times text[] := '{}';
  v_secrets text[] := '{}';
  v_column text;
  i int;
begin
  -- Arguments after the tenant column: the key columns, then '@'-prefixed timestamptz
  -- columns and '-'-prefixed secret columns (private.enable_audit reads them all from
  -- the catalog).
  for i in 1 .. tg_nargs - 1 loop
    if left(tg_argv[i], 1) = '@' then
      v_times := v_times || substr(tg_argv[i], 2);
    elsif left(tg_argv[i], 1) = '-' then
      v_secrets := v_secrets || substr(tg_argv[i], 2);
    else
      v_key := v_key || jsonb_build_object(tg_argv[i], v_row -> tg_argv[i]);
    end if;
  end loop;

  if tg_op = 'UPDATE' then
    select coalesce(array_agg(n.key order by n.key), '{}') into v_changed
    from jsonb_each(v_new) n
    where n.key <> 'updated_at' and n.value is distinct from v_old -> n.key;
    if cardinality(v_changed) = 0 then
      return null;
    end if;
    if v_old ? 'deleted_at' then
      if v_old -> 'deleted_at' = 'null'::jsonb and v_new -> 'deleted_at' <> 'null'::jsonb then
        v_action := 'SOFT_DELETE';
      elsif v_old -> 'deleted_at' <> 'null'::jsonb and v_new -> 'deleted_at' = 'null'::jsonb then
        v_action := 'RESTORE';
      end if;
    end if;
  elsif tg_op = 'INSERT' then
    select array_agg(k order by k) into v_changed from jsonb_object_keys(v_new) k;
  end if;

  v_old := v_old - v_secrets;
  v_new := v_new - v_secrets;

  -- Timestamps as the API renders them (UTC, Z, milliseconds; see
  -- 20261201093000_api_timestamps.sql), after the changed fields were found from the
  -- full values. Expressions only, no query: this runs for every audited row.
  foreach v_column in array v_times loop
    if jsonb_typeof(v_old -> v_column) = 'string' then
      v_old := jsonb_set(v_old, array[v_column],
        to_jsonb(to_char((v_old ->> v_column)::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')));
    end if;
    if jsonb_typeof(v_new -> v_column) = 'string' then
      v_new := jsonb_set(v_new, array[v_column],
        to_jsonb(to_char((v_new ->> v_column)::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')));
    end if;
  end loop;

  insert into public.audit_logs (
    tenant_id, table_name, record_key, action,
    actor_user_id, actor_issuer, actor_subject, actor_role,
    old_data, new_data, changed_fields
  ) values (
    case when tg_argv[0] <> '' then (v_row ->> tg_argv[0])::uuid end,
    tg_table_name, v_key, v_action,
    private.current_user_id(), v_claims ->> 'iss', v_claims ->> 'sub',
    coalesce(nullif(v_claims ->> 'role', ''), current_user),
    v_old, v_new, v_changed
  );
  return null;
end;
$$;


-- Re-attach the trail to every audited table, with the tenant column it has now.
do $$
declare
  r record;
begin
  for r in
    select t.tgrelid::regclass as tbl, split_part(encode(t.tgargs, 'escape'), '\000', 1) as tenant_column
    from pg_catalog.pg_trigger t
    where t.tgname = 'audit' and t.tgfoid = 'private.audit_row()'::regprocedure
  loop
    perform private.enable_audit(r.tbl, r.tenant_column);
  end loop;
end;
$$;
