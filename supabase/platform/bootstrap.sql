-- Local-only platform bootstrap: what every hosted Supabase project already has and the
-- migrations rely on — its objects and its powers. Applied by `npm start` and the test
-- setup before the migrations; never pushed to a hosted project. Idempotent: safe to run
-- on every start, and it only adds what is missing.
--
-- Modelled on Supabase's own setup (github.com/supabase/postgres migrations/db: the
-- init scripts, 10000000000000_demote-postgres, 20211115181400_update-auth-permissions,
-- 20230201083204_grant_auth_roles_to_postgres, 20230529180330_alter_api_roles_for_inherit,
-- 20240606060239_grant_predefined_roles_to_postgres, and the 2025 revocation of
-- supabase_auth_admin from postgres) and on Supabase Auth's migrations for auth.users
-- (github.com/supabase/auth migrations/):
--   * supabase_admin is the superuser; it owns the auth schema (and storage, where a
--     database has one); supabase_auth_admin owns auth's tables and functions.
--   * postgres — the role migrations, the seed and the functions use — is NOSUPERUSER
--     CREATEDB CREATEROLE REPLICATION BYPASSRLS. It may use auth's tables (all table
--     privileges, as hosted grants them) but not create anything in auth.
--   * anon, authenticated and service_role INHERIT; authenticator is NOINHERIT and a
--     member of the three.
--
-- Run as a superuser (the local cluster's supabase_admin) it builds all of that. Run as
-- any other role — `npm start -- --db-url` against a database such as `supabase start`'s,
-- which already has it all — it checks what exists and leaves it be: nothing here alters
-- an object it finds, except auth.users columns and grants a superuser run adds.

do $bootstrap$
declare
  v_super boolean := (select rolsuper from pg_catalog.pg_roles where rolname = current_user);
  v_admin boolean := exists (select from pg_catalog.pg_roles where rolname = 'supabase_admin' and rolsuper);
begin
  if not v_super then
    -- Not a superuser: a database set up by Supabase (or by an earlier run). Only check
    -- that what the migrations need is there, and say what is missing.
    if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated')
       or to_regclass('auth.users') is null then
      raise exception 'the database lacks the Supabase platform (roles anon/authenticated/service_role, auth.users): '
        'run supabase/platform/bootstrap.sql once as a superuser, or use a database Supabase set up';
    end if;
    return;
  end if;

  -- ------------------------------------------------------------------ roles
  if not exists (select from pg_catalog.pg_roles where rolname = 'postgres') then
    create role postgres login;
  end if;
  -- Demote postgres as hosted does — only where supabase_admin is the superuser that
  -- remains (never on a database whose one superuser is postgres itself).
  -- (A cluster initialised with postgres as its bootstrap superuser — a local data folder
  -- older than this file — cannot demote it: Postgres forbids it; scripts/stack.mjs says so.)
  if v_admin and current_user <> 'postgres' and (select oid from pg_catalog.pg_roles where rolname = 'postgres') <> 10 then
    alter role postgres nosuperuser createdb createrole login replication bypassrls;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin noinherit createrole login noreplication;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'anon') then
    create role anon nologin inherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticated') then
    create role authenticated nologin inherit;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'service_role') then
    create role service_role nologin inherit bypassrls;
  end if;
  if not exists (select from pg_catalog.pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit;
  end if;
  alter role anon inherit;
  alter role authenticated inherit;
  alter role service_role inherit;
  alter role authenticator noinherit;
  grant anon, authenticated, service_role to authenticator;
  grant anon, authenticated, service_role to postgres;
  grant pg_read_all_data, pg_signal_backend, pg_monitor to postgres;
  -- Hosted revoked these from postgres: with them it could create objects in auth/storage.
  revoke supabase_auth_admin from postgres;
  alter role authenticator set statement_timeout = '8s';
  alter role authenticator set lock_timeout = '8s';
  alter role anon set statement_timeout = '3s';
  alter role authenticated set statement_timeout = '8s';
  alter role supabase_auth_admin set search_path = 'auth';

  -- The database is postgres's, as hosted's migrate.sh leaves it (`alter database postgres
  -- owner to postgres`): so postgres owns public (pg_database_owner) and creates in it.
  if v_admin and current_user <> 'postgres'
     and (select pg_catalog.pg_get_userbyid(datdba) from pg_catalog.pg_database where datname = current_database()) = current_user then
    execute format('alter database %I owner to postgres', current_database());
  end if;
  execute format('grant all on database %I to postgres', current_database());

  -- ------------------------------------------------------------------ schemas
  create schema if not exists extensions authorization postgres;
  grant usage on schema extensions to postgres, anon, authenticated, service_role;
  grant usage on schema public to postgres, anon, authenticated, service_role;

  if v_admin then
    create schema if not exists auth authorization supabase_admin;
    alter schema auth owner to supabase_admin;
    if exists (select from pg_catalog.pg_namespace where nspname = 'storage') then
      alter schema storage owner to supabase_admin;
    end if;
  else
    create schema if not exists auth;
  end if;
  revoke all on schema auth from public;
  revoke create on schema auth from postgres, anon, authenticated, service_role;
  grant usage on schema auth to postgres, anon, authenticated, service_role;
  grant all on schema auth to supabase_auth_admin;

  -- Realtime publishes changes of the tables added to this publication; postgres owns it
  -- (hosted's init scripts create it as postgres), so migrations may add tables to it.
  if not exists (select from pg_catalog.pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
  alter publication supabase_realtime owner to postgres;
end
$bootstrap$;

-- ------------------------------------------------------------------ auth.users
-- As Supabase Auth's migrations leave it: 35 columns, e-mail unique where not SSO
-- (users_email_partial_key), confirmed_at generated from the two confirmations.
-- Built by a superuser only; an existing table only gets the columns it lacks.
do $users$
begin
  -- Only a superuser builds auth; and a database whose auth Supabase Auth migrated
  -- (auth.schema_migrations) keeps Supabase's own definitions.
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
     or to_regclass('auth.schema_migrations') is not null then
    return;
  end if;
  create table if not exists auth.users (
    instance_id uuid null,
    id uuid not null,
    aud varchar(255) null,
    "role" varchar(255) null,
    email varchar(255) null,
    encrypted_password varchar(255) null,
    email_confirmed_at timestamptz null,
    invited_at timestamptz null,
    confirmation_token varchar(255) null,
    confirmation_sent_at timestamptz null,
    recovery_token varchar(255) null,
    recovery_sent_at timestamptz null,
    email_change_token_new varchar(255) null,
    email_change varchar(255) null,
    email_change_sent_at timestamptz null,
    last_sign_in_at timestamptz null,
    raw_app_meta_data jsonb null,
    raw_user_meta_data jsonb null,
    is_super_admin bool null,
    created_at timestamptz null,
    updated_at timestamptz null,
    constraint users_pkey primary key (id)
  );
  alter table auth.users
    add column if not exists invited_at timestamptz null,
    add column if not exists confirmation_token varchar(255) null,
    add column if not exists confirmation_sent_at timestamptz null,
    add column if not exists recovery_token varchar(255) null,
    add column if not exists recovery_sent_at timestamptz null,
    add column if not exists email_change_token_new varchar(255) null,
    add column if not exists email_change varchar(255) null,
    add column if not exists email_change_sent_at timestamptz null,
    -- 20210710035447_alter_users (phone types widened by 20230116124310_alter_phone_type)
    add column if not exists phone text null unique default null,
    add column if not exists phone_confirmed_at timestamptz null default null,
    add column if not exists phone_change text null default '',
    add column if not exists phone_change_token varchar(255) null default '',
    add column if not exists phone_change_sent_at timestamptz null default null;
  -- 20210722035447_adds_confirmed_at
  alter table auth.users
    add column if not exists confirmed_at timestamptz generated always as (least(users.email_confirmed_at, users.phone_confirmed_at)) stored;
  alter table auth.users
    -- 20210730183235_add_email_change_confirmed
    add column if not exists email_change_token_current varchar(255) null default '',
    add column if not exists email_change_confirm_status smallint default 0
      check (email_change_confirm_status >= 0 and email_change_confirm_status <= 2),
    -- 20220114185340_add_banned_until
    add column if not exists banned_until timestamptz null,
    -- 20220323170000_add_user_reauthentication
    add column if not exists reauthentication_token varchar(255) null default '',
    add column if not exists reauthentication_sent_at timestamptz null default null,
    -- 20221215195500_modify_users_email_unique_index
    add column if not exists is_sso_user boolean not null default false,
    -- 20230116124412_add_deleted_at
    add column if not exists deleted_at timestamptz null,
    -- 20240214120130_add_is_anonymous_column
    add column if not exists is_anonymous boolean not null default false;
  comment on table auth.users is 'Auth: Stores user login data within a secure schema.';
  comment on column auth.users.is_sso_user is 'Auth: Set this column to true when the account comes from SSO. These accounts can have duplicate emails.';
  -- An earlier local bootstrap's plain e-mail index gives way to Auth's own ones.
  drop index if exists auth.users_email_idx;
  create index if not exists users_instance_id_email_idx on auth.users using btree (instance_id, lower(email));
  create index if not exists users_instance_id_idx on auth.users using btree (instance_id);
  create unique index if not exists confirmation_token_idx on auth.users using btree (confirmation_token) where confirmation_token !~ '^[0-9 ]*$';
  create unique index if not exists recovery_token_idx on auth.users using btree (recovery_token) where recovery_token !~ '^[0-9 ]*$';
  create unique index if not exists email_change_token_current_idx on auth.users using btree (email_change_token_current) where email_change_token_current !~ '^[0-9 ]*$';
  create unique index if not exists email_change_token_new_idx on auth.users using btree (email_change_token_new) where email_change_token_new !~ '^[0-9 ]*$';
  create unique index if not exists reauthentication_token_idx on auth.users using btree (reauthentication_token) where reauthentication_token !~ '^[0-9 ]*$';
  create unique index if not exists users_email_partial_key on auth.users (email) where (is_sso_user = false);
  comment on index auth.users_email_partial_key is 'Auth: A partial unique index that applies only when is_sso_user is false';
  create index if not exists users_is_anonymous_idx on auth.users using btree (is_anonymous);
  -- 20240612123726_enable_rls_update_grants
  alter table auth.users enable row level security;
  alter table auth.users owner to supabase_auth_admin;
end
$users$;

-- Request helpers, reading the claims exactly as Supabase's own do. The legacy
-- request.jwt.claim.* settings are honoured first; an empty string means "absent",
-- which is what a pooled connection shows after an earlier transaction's set_config(…, true).
-- Written by a superuser only (auth belongs to supabase_admin; the functions to
-- supabase_auth_admin, as hosted's 20211124212715_update-auth-owner leaves them).
do $functions$
begin
  -- Only a superuser builds auth; and a database whose auth Supabase Auth migrated
  -- (auth.schema_migrations) keeps Supabase's own definitions.
  if not (select rolsuper from pg_catalog.pg_roles where rolname = current_user)
     or to_regclass('auth.schema_migrations') is not null then
    return;
  end if;

  create or replace function auth.uid() returns uuid
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.sub', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
    )::uuid
  $$;

  create or replace function auth.role() returns text
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.role', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
    )::text
  $$;

  create or replace function auth.email() returns text
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim.email', true), ''),
      (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'email')
    )::text
  $$;

  create or replace function auth.jwt() returns jsonb
  language sql stable
  as $$
    select coalesce(
      nullif(current_setting('request.jwt.claim', true), ''),
      nullif(current_setting('request.jwt.claims', true), '')
    )::jsonb
  $$;

  alter function auth.uid() owner to supabase_auth_admin;
  alter function auth.role() owner to supabase_auth_admin;
  alter function auth.email() owner to supabase_auth_admin;
  alter function auth.jwt() owner to supabase_auth_admin;
  grant execute on function auth.uid(), auth.role(), auth.email(), auth.jwt()
    to anon, authenticated, service_role;

  -- What postgres may do with auth's objects (10000000000000_demote-postgres,
  -- 20211115181400_update-auth-permissions, 20240612123726_enable_rls_update_grants):
  -- every table privilege — read, write, reference, add triggers — but no CREATE on
  -- the schema, and not ownership.
  grant all on all tables in schema auth to postgres;
  grant all on all sequences in schema auth to postgres;
  grant all on all routines in schema auth to postgres;
  grant select on auth.users to postgres with grant option;
  grant all on all tables in schema auth to supabase_auth_admin;
  grant all on all sequences in schema auth to supabase_auth_admin;
  alter default privileges for role supabase_auth_admin in schema auth grant all on tables to postgres;
  alter default privileges for role supabase_auth_admin in schema auth grant all on sequences to postgres;
  alter default privileges for role supabase_auth_admin in schema auth grant all on routines to postgres;

  -- Default privileges like a hosted project: the API roles get table rights on what
  -- postgres (the migrations) or supabase_admin creates in public, and Row Level Security
  -- decides which rows they reach.
  alter default privileges for role postgres in schema public grant all on tables to postgres, anon, authenticated, service_role;
  alter default privileges for role postgres in schema public grant all on sequences to postgres, anon, authenticated, service_role;
  alter default privileges for role postgres in schema public grant all on functions to postgres, anon, authenticated, service_role;
  if exists (select from pg_catalog.pg_roles where rolname = 'supabase_admin') then
    alter default privileges for role supabase_admin in schema public grant all on tables to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public grant all on sequences to postgres, anon, authenticated, service_role;
    alter default privileges for role supabase_admin in schema public grant all on functions to postgres, anon, authenticated, service_role;
  end if;
end
$functions$;

-- The issuer of the local Supabase Auth tokens (`supabase start`'s and `npm run token`'s),
-- read by the migration that creates private.settings. A hosted database has no such
-- setting: there the deploy step sets private.settings' supabase_auth_issuer.
do $issuer$
begin
  execute format('alter database %I set app.supabase_auth_issuer = %L', current_database(), 'http://127.0.0.1:54321/auth/v1');
exception when insufficient_privilege then
  raise notice 'app.supabase_auth_issuer not set: % may not alter this database (set private.settings yourself)', current_user;
end
$issuer$;
