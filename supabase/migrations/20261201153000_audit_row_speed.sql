-- The audit trigger made cheaper (issue 12: audit overhead ≤ 1.5× the same statement
-- without it), measured by tests/bench/audit.bench.ts and, server side, by sampling the
-- backend with perf while it runs one-row and 100-row INSERTs and UPDATEs of teams.
--
-- Where a one-row write's audit time went: the INSERT into audit_logs (three indexes,
-- one a btree over jsonb), a second query per row for the changed fields, PL/pgSQL
-- statements per argument and per timestamp column (every expression is set up again
-- in each transaction), and the actor looked up even with no claims. Now:
--
-- * one statement per row: the changed fields are a subquery of the INSERT, one INSERT
--   per operation so each plans only what it needs;
-- * one pass over the arguments builds the key, the rendered timestamps (a small object
--   merged once into each image) and the secret columns;
-- * the actor is looked up (private.current_user_id(), the transaction's cached caller
--   context) only when the claims name a subject: without one it is nobody;
-- * audit_logs_record_idx goes: a btree over (table_name, record_key jsonb) that no
--   query uses (the trail is read by tenant, newest first, through
--   audit_logs_tenant_id_idx), and the dearest of the three index insertions.
--
-- An audit row holds what it held: table, record key, action (INSERT, UPDATE, DELETE,
-- SOFT_DELETE, RESTORE), actor from the claims, the old and new row with the secret
-- columns left out and timestamps as the API renders them, the changed fields (sorted,
-- found from the full values before rendering; updated_at alone is no change). The
-- trigger's arguments stay as private.enable_audit makes them.
--
-- A statement-level trigger with transition tables was measured as well: about half
-- the cost per row in 100-row statements, but no cheaper (5-10% dearer) for the one-row
-- statements the API makes, and it needs three triggers per table (a transition table
-- serves one event) with the audit rows of nested statements written before their
-- parent's. The trail stays a row trigger.

-- Redefined (20261201099000_audit_secret_arguments.sql): one statement per row.
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
  -- columns and '-'-prefixed secret columns (private.enable_audit reads them all from
  -- the catalog). Timestamps as the API renders them (UTC, Z, milliseconds; see
  -- private.api_timestamp).
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
      else
        v_key := v_key || jsonb_build_object(v_arg, v_row -> v_arg);
    end case;
  end loop;

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
    -- The changed fields from the full values; a no-op UPDATE (nothing but updated_at
    -- changed) writes nothing.
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
      (v_old || v_old_times) - v_secrets, (v_new || v_new_times) - v_secrets, c.changed
    from (
      select array(
        select e.key from jsonb_each(v_new) e
        where e.key <> 'updated_at' and e.value is distinct from v_old -> e.key
        order by e.key) as changed
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

drop index public.audit_logs_record_idx;
