-- The audit trail keeps what a reader needs and not copies of data held elsewhere
-- (issue 14 review): measured before this migration, editing a 1 MB knowledge-base
-- document wrote ~1,976 audit rows (7.4 MB: one per chunk, each with its text and two
-- tsvectors), renaming it stored both 1 MB contents again, and one page of the tenant's
-- trail (GET /tenants/{id}/audit?limit=100) after 100 renames was 191 MB — past what an
-- Edge Function may hold.
--
-- * Search columns (tsvector, and the vector embedding where the extension exists) are
--   derived from a column that is audited: they are left out of the images and of the
--   changed fields ('~'-prefixed trigger arguments, read from the catalog by
--   private.enable_audit like the timestamp and secret columns).
-- * An UPDATE's images leave out an unchanged value stored in more than 4 kB: the field
--   did not change, and the entry that last changed it holds it. A title edit of a 1 MB
--   document is a small row; a content edit still shows old and new content.
-- * kb_chunks is not audited: its rows are cut from kb_documents.content by a definer
--   trigger (API roles cannot write them), so a document's entry already says what its
--   chunks hold; tests/schema/conventions.test.ts names it as the one exception.
--
-- The page of the trail is bounded by size as well as by count (functions/tenants/
-- routes/audit.ts): with content edits of large documents each entry can still be MBs.

-- Redefined (20261201099000_audit_secret_arguments.sql): the derived columns too.
create or replace function private.enable_audit(p_table regclass, p_tenant_column text default 'tenant_id') returns void
language plpgsql volatile
set search_path = ''
as $$
declare
  v_keys text[];
  v_times text[];
  v_secrets text[];
  v_derived text[];
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
  -- The search columns (tsvector, or the vector type of whichever schema holds it),
  -- '~'-prefixed: derived from audited columns, they are neither stored nor named.
  select coalesce(array_agg(pg_catalog.quote_literal('~' || a.attname) order by a.attnum), '{}') into v_derived
  from pg_catalog.pg_attribute a
  join pg_catalog.pg_type t on t.oid = a.atttypid
  where a.attrelid = p_table and a.attnum > 0 and not a.attisdropped
    and (a.atttypid = 'pg_catalog.tsvector'::pg_catalog.regtype or t.typname = 'vector');
  v_tenant := case when exists (
    select 1 from pg_catalog.pg_attribute a
    where a.attrelid = p_table and a.attname = p_tenant_column and a.attnum > 0 and not a.attisdropped
  ) then p_tenant_column else '' end;
  execute format('create or replace trigger audit after insert or update or delete on %s '
                 'for each row execute function private.audit_row(%s)',
                 p_table, array_to_string(pg_catalog.quote_literal(v_tenant) || v_keys || v_times || v_secrets || v_derived, ', '));
end;
$$;

-- Redefined (20261201153000_audit_row_speed.sql): derived columns dropped first, large
-- unchanged values left out of an UPDATE's images. Still one statement per row.
create or replace function private.audit_row() returns trigger
language plpgsql security definer
set search_path = ''
as $$
declare
  v_old jsonb;
  v_new jsonb;
  v_row jsonb;
  v_key jsonb := '{}';
  -- The timestamp columns as the API renders them, merged into each image at the end.
  v_old_times jsonb := '{}';
  v_new_times jsonb := '{}';
  -- Secrets never enter the trail: columns named *_encrypted are left out (a change to
  -- one still shows in changed_fields).
  v_secrets text[] := '{}';
  -- Search columns derived from audited ones: left out of images and changed fields.
  v_derived text[] := '{}';
  v_arg text;
  v_at text;
  v_claims jsonb := coalesce(auth.jwt(), '{}'::jsonb);
  v_action text := tg_op;
begin
  if tg_op <> 'INSERT' then
    v_old := to_jsonb(old);
  end if;
  if tg_op <> 'DELETE' then
    v_new := to_jsonb(new);
  end if;
  v_row := coalesce(v_new, v_old);

  -- Arguments after the tenant column: the key columns, then '@'-prefixed timestamptz
  -- columns, '-'-prefixed secret columns and '~'-prefixed derived columns
  -- (private.enable_audit reads them all from the catalog). Timestamps as the API renders
  -- them (UTC, Z, milliseconds; see private.api_timestamp).
  foreach v_arg in array tg_argv[1:] loop
    case left(v_arg, 1)
      when '@' then
        v_arg := substr(v_arg, 2);
        v_at := v_old ->> v_arg;
        if v_at is not null then
          v_old_times := v_old_times || jsonb_build_object(v_arg,
            to_char(v_at::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
        end if;
        v_at := v_new ->> v_arg;
        if v_at is not null then
          v_new_times := v_new_times || jsonb_build_object(v_arg,
            to_char(v_at::timestamptz at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'));
        end if;
      when '-' then
        v_secrets := v_secrets || substr(v_arg, 2);
      when '~' then
        v_derived := v_derived || substr(v_arg, 2);
      else
        v_key := v_key || jsonb_build_object(v_arg, v_row -> v_arg);
    end case;
  end loop;
  if v_derived <> '{}' then
    v_old := v_old - v_derived;
    v_new := v_new - v_derived;
  end if;

  -- The actor: private.current_user_id() finds a user only by the claims' subject, so
  -- without one it is nobody and is not asked.
  if tg_op = 'INSERT' then
    insert into public.audit_logs (
      tenant_id, table_name, record_key, action,
      actor_user_id, actor_issuer, actor_subject, actor_role,
      new_data, changed_fields
    ) values (
      case when tg_argv[0] <> '' then (v_row ->> tg_argv[0])::uuid end,
      tg_table_name, v_key, 'INSERT',
      case when v_claims ? 'sub' then private.current_user_id() end, v_claims ->> 'iss', v_claims ->> 'sub',
      coalesce(nullif(v_claims ->> 'role', ''), current_user),
      (v_new || v_new_times) - v_secrets,
      array(select k from jsonb_object_keys(v_new) k order by k)
    );
  elsif tg_op = 'UPDATE' then
    -- Setting deleted_at is a SOFT_DELETE, clearing it a RESTORE.
    if v_old -> 'deleted_at' = 'null'::jsonb and v_new -> 'deleted_at' <> 'null'::jsonb then
      v_action := 'SOFT_DELETE';
    elsif v_old -> 'deleted_at' <> 'null'::jsonb and v_new -> 'deleted_at' = 'null'::jsonb then
      v_action := 'RESTORE';
    end if;
    -- The changed fields from the full values, and the unchanged values stored in more
    -- than 4 kB (left out of both images), in one pass; a no-op UPDATE (nothing but
    -- updated_at changed) writes nothing.
    insert into public.audit_logs (
      tenant_id, table_name, record_key, action,
      actor_user_id, actor_issuer, actor_subject, actor_role,
      old_data, new_data, changed_fields
    )
    select
      case when tg_argv[0] <> '' then (v_row ->> tg_argv[0])::uuid end,
      tg_table_name, v_key, v_action,
      case when v_claims ? 'sub' then private.current_user_id() end, v_claims ->> 'iss', v_claims ->> 'sub',
      coalesce(nullif(v_claims ->> 'role', ''), current_user),
      (v_old || v_old_times) - v_secrets - c.large, (v_new || v_new_times) - v_secrets - c.large, c.changed
    from (
      select
        coalesce(array_agg(e.key order by e.key) filter (
          where e.key <> 'updated_at' and e.value is distinct from v_old -> e.key), '{}') as changed,
        coalesce(array_agg(e.key) filter (
          where pg_column_size(e.value) > 4096 and e.value = v_old -> e.key), '{}') as large
      from jsonb_each(v_new) e
    ) c
    where c.changed <> '{}';
  else
    insert into public.audit_logs (
      tenant_id, table_name, record_key, action,
      actor_user_id, actor_issuer, actor_subject, actor_role,
      old_data
    ) values (
      case when tg_argv[0] <> '' then (v_row ->> tg_argv[0])::uuid end,
      tg_table_name, v_key, 'DELETE',
      case when v_claims ? 'sub' then private.current_user_id() end, v_claims ->> 'iss', v_claims ->> 'sub',
      coalesce(nullif(v_claims ->> 'role', ''), current_user),
      (v_old || v_old_times) - v_secrets
    );
  end if;
  return null;
end;
$$;

-- The tables with search columns get their trigger again, with the '~' arguments (kb_chunks,
-- whose embedding column exists only where the vector extension does, is not audited).
select private.enable_audit('public.tickets');
select private.enable_audit('public.voice_call_segments');
drop trigger audit on public.kb_chunks;
