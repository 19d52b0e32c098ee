-- Audit trail: one row per change, written by a generic trigger (never by application
-- code), append-only for everyone but the table's owner. Every table in public but the
-- trail itself is audited, attached by one function that reads the table's keys from the
-- catalog (private.enable_audit, supa_audit's enable_tracking shape): each concern calls
-- it next to the tables it creates.

-- ------------------------------------------------------------------ the trail

create table public.audit_logs (
  id bigint generated always as identity primary key,
  -- Null for platform-level rows (users, platform admins), which only super-admins read.
  tenant_id uuid,
  table_name text not null,
  record_key jsonb not null,
  action text not null check (action in ('INSERT', 'UPDATE', 'DELETE', 'SOFT_DELETE', 'RESTORE')),
  actor_user_id uuid,
  actor_issuer text,
  actor_subject text,
  actor_role text not null,
  old_data jsonb,
  new_data jsonb,
  changed_fields text[],
  transaction_id bigint not null default txid_current(),
  created_at timestamptz not null default clock_timestamp()
);
-- Serves the admins' trail (newest first, keyset on id) and the RLS filter on tenant_id.
create index audit_logs_tenant_id_idx on public.audit_logs (tenant_id, id desc);
create index audit_logs_record_idx on public.audit_logs (table_name, record_key);
comment on table public.audit_logs is 'Append-only change history written by private.audit_row().';

alter table public.audit_logs enable row level security;
revoke all on public.audit_logs from anon, authenticated, service_role;
revoke all on sequence public.audit_logs_id_seq from anon, authenticated, service_role;
grant select on public.audit_logs to authenticated, service_role;

create policy audit_logs_select on public.audit_logs for select to authenticated
  using (tenant_id = any ((select private.tenant_ids('admin'))::uuid[]) or (select private.is_platform_admin()));

-- Even a role granted UPDATE or DELETE by mistake cannot rewrite history: only the
-- owner of the table (the migration role) may, e.g. for retention jobs.
create function private.audit_logs_append_only() returns trigger
language plpgsql
set search_path = ''
as $$
begin
  if current_user <> (select pg_catalog.pg_get_userbyid(c.relowner) from pg_catalog.pg_class c where c.oid = tg_relid) then
    raise exception 'audit_logs is append-only' using errcode = '42501';
  end if;
  return coalesce(new, old);
end;
$$;
revoke all on function private.audit_logs_append_only() from public, anon;
create trigger audit_logs_append_only before update or delete on public.audit_logs
  for each row execute function private.audit_logs_append_only();
create trigger audit_logs_no_truncate before truncate on public.audit_logs
  for each statement execute function private.audit_logs_append_only();

-- ------------------------------------------------------------------ the trigger

-- The generic row trigger. Arguments: the column holding the tenant id ('' for
-- platform tables), then the primary-key columns — private.enable_audit reads both from
-- the catalog. A no-op UPDATE (nothing but updated_at changed) writes nothing. Setting
-- deleted_at is a SOFT_DELETE, clearing it a RESTORE.
create function private.audit_row() returns trigger
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
  i int;
begin
  for i in 1 .. tg_nargs - 1 loop
    v_key := v_key || jsonb_build_object(tg_argv[i], v_row -> tg_argv[i]);
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

  v_old := v_old - array(select k from jsonb_object_keys(coalesce(v_old, '{}')) k where k like '%\_encrypted');
  v_new := v_new - array(select k from jsonb_object_keys(coalesce(v_new, '{}')) k where k like '%\_encrypted');

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
revoke all on function private.audit_row() from public, anon;

-- Attaches the trail to a table: a trigger `audit` calling private.audit_row with the
-- table's tenant column and its primary-key columns, in key order, as the catalog has
-- them — so no migration lists key columns by hand, and a table keyed differently gets
-- the right record_key. p_tenant_column names the column that holds the tenant id
-- (tenant_id; public.tenants is its own tenant, 'id'); a table without it is
-- platform-level (users, identities, platform admins): its rows have no tenant and only
-- super-admins read them. Idempotent (create or replace trigger). For migrations only.
create function private.enable_audit(p_table regclass, p_tenant_column text default 'tenant_id') returns void
language plpgsql volatile
set search_path = ''
as $$
declare
  v_keys text[];
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
  v_tenant := case when exists (
    select 1 from pg_catalog.pg_attribute a
    where a.attrelid = p_table and a.attname = p_tenant_column and a.attnum > 0 and not a.attisdropped
  ) then p_tenant_column else '' end;
  execute format('create or replace trigger audit after insert or update or delete on %s '
                 'for each row execute function private.audit_row(%s)',
                 p_table, array_to_string(pg_catalog.quote_literal(v_tenant) || v_keys, ', '));
end;
$$;
revoke all on function private.enable_audit(regclass, text) from public, anon, authenticated, service_role;

-- ------------------------------------------------------------------ tenant core

-- The tables created before the trail existed; every later concern enables it next to
-- its own tables.
select private.enable_audit('public.tenants', 'id');
select private.enable_audit('public.users');
select private.enable_audit('public.user_identities');
select private.enable_audit('public.tenant_org_links');
select private.enable_audit('public.platform_admins');
select private.enable_audit('public.memberships');
select private.enable_audit('public.teams');
select private.enable_audit('public.team_members');
select private.enable_audit('public.invitations');
