-- The audit page's size bound counts the images as the API sends them (issue 14 review).
--
-- GET /tenants/{id}/audit stops a page once its entries' images pass 2 MB
-- (20261203080000_audit_derived_and_large_values.sql), but it summed pg_column_size of the
-- stored jsonb: compressed. Text compresses (2-3x for prose, ~85x for a repeated
-- paragraph), so a page of 100 content edits of a repetitive 1 MB document summed to
-- ~2.4 MB stored and sent ~180 MB. Each entry now records the size of its images as
-- written (pg_column_size of the in-memory jsonb, before TOAST compresses it: close to
-- the JSON text), and the page sums that. Entries written before this migration have
-- none; the page reads their stored size (only a development database holds them).
-- (The 4 kB rule of 20261203080000 for an UPDATE's unchanged values measures the same
-- way: a value's size uncompressed, not as stored.) The images are built once per row
-- (offset 0 keeps the planner from copying their expressions into both uses).

alter table public.audit_logs add column image_bytes int;
comment on column public.audit_logs.image_bytes is
  'Size of old_data and new_data as written, uncompressed (bytes): what bounds a page of the trail. Null for entries written before 20261203080200.';

-- Redefined (20261203080000_audit_derived_and_large_values.sql): and the images' size.
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
      new_data, changed_fields, image_bytes
    )
    select
      case when tg_argv[0] <> '' then (v_row ->> tg_argv[0])::uuid end,
      tg_table_name, v_key, 'INSERT',
      case when v_claims ? 'sub' then private.current_user_id() end, v_claims ->> 'iss', v_claims ->> 'sub',
      coalesce(nullif(v_claims ->> 'role', ''), current_user),
      i.new_data,
      array(select k from jsonb_object_keys(v_new) k order by k),
      pg_column_size(i.new_data)
    from (select (v_new || v_new_times) - v_secrets as new_data offset 0) i;
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
      old_data, new_data, changed_fields, image_bytes
    )
    select
      case when tg_argv[0] <> '' then (v_row ->> tg_argv[0])::uuid end,
      tg_table_name, v_key, v_action,
      case when v_claims ? 'sub' then private.current_user_id() end, v_claims ->> 'iss', v_claims ->> 'sub',
      coalesce(nullif(v_claims ->> 'role', ''), current_user),
      i.old_data, i.new_data, c.changed, pg_column_size(i.old_data) + pg_column_size(i.new_data)
    from (
      select
        coalesce(array_agg(e.key order by e.key) filter (
          where e.key <> 'updated_at' and e.value is distinct from v_old -> e.key), '{}') as changed,
        coalesce(array_agg(e.key) filter (
          where pg_column_size(e.value) > 4096 and e.value = v_old -> e.key), '{}') as large
      from jsonb_each(v_new) e
    ) c
    cross join lateral (
      select (v_old || v_old_times) - v_secrets - c.large as old_data, (v_new || v_new_times) - v_secrets - c.large as new_data
      offset 0
    ) i
    where c.changed <> '{}';
  else
    insert into public.audit_logs (
      tenant_id, table_name, record_key, action,
      actor_user_id, actor_issuer, actor_subject, actor_role,
      old_data, image_bytes
    )
    select
      case when tg_argv[0] <> '' then (v_row ->> tg_argv[0])::uuid end,
      tg_table_name, v_key, 'DELETE',
      case when v_claims ? 'sub' then private.current_user_id() end, v_claims ->> 'iss', v_claims ->> 'sub',
      coalesce(nullif(v_claims ->> 'role', ''), current_user),
      i.old_data, pg_column_size(i.old_data)
    from (select (v_old || v_old_times) - v_secrets as old_data offset 0) i;
  end if;
  return null;
end;
$$;
