// supabase/platform/bootstrap.sql reproduces what a hosted project has: the API roles,
// auth.uid()/jwt()/role() reading claims exactly as Supabase's do, the realtime
// publication, and it can run again on every start. And hosted's powers: supabase_admin
// is the superuser and owns auth; the migrations run as postgres, which is not one, so a
// migration that would fail on hosted (a table in auth, an untrusted extension, a
// superuser role) fails here too; auth.users is Supabase Auth's, 35 columns.
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, expect, inject, it } from 'vitest';
import { bootstrapFile, createDatabase, root, runSqlFile, supabaseCli } from '../scripts/stack.mjs';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('bootstrap');
});
afterAll(() => db.close());

async function inTx<T>(settings: Record<string, string>, query: string): Promise<T> {
  return await db.sql.begin(async (tx) => {
    for (const [k, v] of Object.entries(settings)) await tx`select set_config(${k}, ${v}, true)`;
    const [row] = await tx.unsafe(query);
    return row as T;
  }) as T;
}

it('has the API roles with the right attributes', async () => {
  const roles = await db.sql`
    select rolname, rolcanlogin, rolbypassrls from pg_roles
    where rolname in ('anon', 'authenticated', 'service_role', 'authenticator') order by rolname`;
  expect(roles.map((r) => `${r.rolname}:${r.rolcanlogin}:${r.rolbypassrls}`)).toEqual([
    'anon:false:false',
    'authenticated:false:false',
    'authenticator:true:false',
    'service_role:false:true',
  ]);
  const [{ member }] = await db.sql`select pg_has_role('authenticator', 'authenticated', 'member') as member`;
  expect(member).toBe(true);
});

it('reads request.jwt.claims like Supabase', async () => {
  const claims = JSON.stringify({ sub: '6f1f3f8e-4b0a-4c55-9d6a-3b7f0f2f9c11', role: 'authenticated', email: 'a@b.test' });
  const row = await inTx<{ uid: string; role: string; email: string; jwt: Record<string, unknown> }>(
    { 'request.jwt.claims': claims },
    'select auth.uid() as uid, auth.role() as role, auth.email() as email, auth.jwt() as jwt',
  );
  expect(row).toEqual({ uid: '6f1f3f8e-4b0a-4c55-9d6a-3b7f0f2f9c11', role: 'authenticated', email: 'a@b.test', jwt: JSON.parse(claims) });
});

it('prefers the legacy request.jwt.claim.sub setting when present', async () => {
  const row = await inTx<{ uid: string }>(
    { 'request.jwt.claim.sub': '11111111-1111-4111-8111-111111111111', 'request.jwt.claims': '{"sub":"22222222-2222-4222-8222-222222222222"}' },
    'select auth.uid() as uid',
  );
  expect(row.uid).toBe('11111111-1111-4111-8111-111111111111');
});

it('treats an empty setting as absent, as a pooled connection shows it after a local setting', async () => {
  const row = await inTx<{ uid: string | null; jwt: unknown; role: string | null }>(
    { 'request.jwt.claim.sub': '', 'request.jwt.claims': '' },
    'select auth.uid() as uid, auth.jwt() as jwt, auth.role() as role',
  );
  expect(row).toEqual({ uid: null, jwt: null, role: null });
  // After a transaction-local setting ends, the connection reads '' — still absent.
  await db.sql.begin((tx) => tx`select set_config('request.jwt.claims', '{"sub":"x"}', true)`);
  const [after] = await db.sql`select auth.jwt() as jwt`;
  expect(after.jwt).toBeNull();
});

it('has the realtime publication and auth.users', async () => {
  const [pub] = await db.sql`select count(*)::int as n from pg_publication where pubname = 'supabase_realtime'`;
  expect(pub.n).toBe(1);
  const [users] = await db.sql`select count(*)::int as n from information_schema.tables where table_schema = 'auth' and table_name = 'users'`;
  expect(users.n).toBe(1);
});

it('is idempotent: running it again changes nothing and fails nothing', async () => {
  const snapshot = () => db.sql`
    select (select count(*) from pg_roles) as roles, (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'auth') as fns,
      (select array_agg(rolname || ':' || rolsuper || rolinherit || rolcreatedb || rolcreaterole || rolreplication || rolbypassrls order by rolname) from pg_roles where rolname !~ '^pg_') as attrs,
      (select array_agg(relname || ':' || pg_get_userbyid(relowner) || ':' || coalesce(relacl::text, '') order by relname) from pg_class where relnamespace = 'auth'::regnamespace) as auth,
      (select nspacl::text from pg_namespace where nspname = 'auth') as auth_acl`;
  const before = await snapshot();
  // As postgres (the --db-url path: it only checks), then as the superuser (npm start).
  await runSqlFile(db.url, bootstrapFile);
  await runSqlFile(db.url, bootstrapFile);
  expect(await snapshot()).toEqual(before);
  await runSqlFile(db.adminUrl, bootstrapFile);
  await runSqlFile(db.adminUrl, bootstrapFile);
  expect(await snapshot()).toEqual(before);
});

// ------------------------------------------------------------------ hosted's powers

/** Pushes one extra migration with the real Supabase CLI, as postgres (db.url), on top of
 *  the project's own (already applied in the template). Resolves with the CLI's error, or
 *  null when the push went through. */
async function pushProbe(name: string, body: string): Promise<string | null> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bootstrap-probe-'));
  try {
    await mkdir(path.join(dir, 'supabase', 'migrations'), { recursive: true });
    await cp(path.join(root, 'supabase', 'config.toml'), path.join(dir, 'supabase', 'config.toml'));
    await cp(path.join(root, 'supabase', 'migrations'), path.join(dir, 'supabase', 'migrations'), { recursive: true });
    await writeFile(path.join(dir, 'supabase', 'migrations', `29991231000000_${name}.sql`), body);
    await supabaseCli(['--workdir', dir, 'db', 'push', `--remote=${db.url}`, '--yes', '--include-all']);
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs one statement as postgres (the migrations' role) and as supabase_admin, each in
 *  a rolled-back transaction: the SQLSTATE each gets, or 'ok'. */
async function asBoth(statement: string): Promise<{ postgres: string; supabase_admin: string }> {
  const run = async (url: string) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    try {
      await sql.begin(async (tx) => {
        await tx.unsafe(statement);
        throw Object.assign(new Error('rollback'), { code: 'ok' });
      });
      return 'unreachable';
    } catch (err) {
      return String((err as { code?: string }).code);
    } finally {
      await sql.end();
    }
  };
  return { postgres: await run(db.url), supabase_admin: await run(db.adminUrl) };
}

it('runs the migrations as postgres, which is no superuser: hosted\'s attributes', async () => {
  const url = new URL(db.url);
  expect(url.username).toBe('postgres');
  const probe = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const [me] = await probe`select current_user as who, rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, rolcanlogin, rolinherit
      from pg_roles where rolname = current_user`;
    expect(me).toEqual({
      who: 'postgres', rolsuper: false, rolcreatedb: true, rolcreaterole: true, rolreplication: true,
      rolbypassrls: true, rolcanlogin: true, rolinherit: true,
    });
  } finally {
    await probe.end();
  }
  const [admin] = await db.sql`select current_user as who, rolsuper from pg_roles where rolname = current_user`;
  expect(admin).toEqual({ who: 'supabase_admin', rolsuper: true });
  // The database and so its public schema are postgres's, as hosted leaves them.
  const [dbo] = await db.sql`select pg_get_userbyid(datdba) as owner, has_schema_privilege('postgres', 'public', 'create') as create
    from pg_database where datname = current_database()`;
  expect(dbo).toEqual({ owner: 'postgres', create: true });
  // The migrations' objects are postgres's: the CLI pushed them as postgres.
  const [owner] = await db.sql`select pg_get_userbyid(relowner) as owner from pg_class where oid = 'public.tenants'::regclass`;
  expect(owner.owner).toBe('postgres');
  const [history] = await db.sql`select count(*)::int as n from supabase_migrations.schema_migrations`;
  expect(history.n).toBeGreaterThan(0);
});

it('lets anon, authenticated and service_role inherit, and authenticator not', async () => {
  const roles = await db.sql`
    select rolname, rolinherit from pg_roles
    where rolname in ('anon', 'authenticated', 'service_role', 'authenticator', 'postgres', 'supabase_admin', 'supabase_auth_admin')
    order by rolname`;
  expect(Object.fromEntries(roles.map((r) => [r.rolname, r.rolinherit]))).toEqual({
    anon: true, authenticated: true, authenticator: false, postgres: true, service_role: true,
    supabase_admin: true, supabase_auth_admin: false,
  });
  const members = await db.sql`
    select r.rolname as role, m.rolname as member from pg_auth_members a
    join pg_roles r on r.oid = a.roleid join pg_roles m on m.oid = a.member
    where m.rolname in ('authenticator', 'postgres') and r.rolname in ('anon', 'authenticated', 'service_role', 'supabase_admin', 'supabase_auth_admin')
    order by 2, 1`;
  expect(members.map((m) => `${m.member}>${m.role}`)).toEqual([
    'authenticator>anon', 'authenticator>authenticated', 'authenticator>service_role',
    'postgres>anon', 'postgres>authenticated', 'postgres>service_role',
  ]);
});

it('gives auth to supabase_admin and its tables and functions to supabase_auth_admin', async () => {
  const [schema] = await db.sql`select pg_get_userbyid(nspowner) as owner from pg_namespace where nspname = 'auth'`;
  expect(schema.owner).toBe('supabase_admin');
  const owners = await db.sql`
    select distinct pg_get_userbyid(relowner) as owner from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'auth' and c.relkind in ('r', 'p')`;
  expect(owners.map((o) => o.owner)).toEqual(['supabase_auth_admin']);
  const fns = await db.sql`
    select distinct pg_get_userbyid(proowner) as owner from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'auth'`;
  expect(fns.map((o) => o.owner)).toEqual(['supabase_auth_admin']);
  const [rights] = await db.sql`
    select has_schema_privilege('postgres', 'auth', 'usage') as usage, has_schema_privilege('postgres', 'auth', 'create') as create`;
  expect(rights).toEqual({ usage: true, create: false });
});

it('fails a migration that creates a table in auth, as hosted does', async () => {
  const error = await pushProbe('auth_table', 'create table auth.custom_table (id int primary key);\n');
  expect(error).toMatch(/permission denied for schema auth/);
  expect(error).toMatch(/42501/);
  const [left] = await db.sql`select to_regclass('auth.custom_table') as t`;
  expect(left.t).toBeNull();
  // The same statement as the superuser passes: it is the role that stops it.
  expect(await asBoth('create table auth.custom_table (id int primary key)')).toEqual({ postgres: '42501', supabase_admin: 'ok' });
  expect(await asBoth("create function auth.hello() returns int language sql as 'select 1'")).toEqual({ postgres: '42501', supabase_admin: 'ok' });
});

it('fails a migration that needs a superuser: an untrusted extension, alter system, a superuser role', async () => {
  const [ext] = await db.sql`
    select e.name from pg_available_extension_versions e
    where e.superuser and not e.trusted and e.name in ('file_fdw', 'dblink', 'postgres_fdw', 'pageinspect', 'pg_buffercache')
      and not exists (select from pg_extension x where x.extname = e.name)
    order by e.name limit 1`;
  expect(ext?.name).toBeTruthy();
  const extension = await pushProbe('untrusted_extension', `create extension ${ext.name};\n`);
  expect(extension).toMatch(/permission denied to create extension|must be superuser/);
  expect(await asBoth(`create extension ${ext.name}`)).toEqual({ postgres: '42501', supabase_admin: 'ok' });

  const system = await pushProbe('alter_system', "alter system set log_min_messages = 'debug1';\n");
  expect(system).toMatch(/permission denied to set parameter|must be superuser/);

  const role = await pushProbe('superuser_role', 'create role sneaky superuser;\n');
  expect(role).toMatch(/permission denied to create role|must be superuser/);
  expect(await asBoth('create role sneaky superuser')).toEqual({ postgres: '42501', supabase_admin: 'ok' });
  const [sneaky] = await db.sql`select count(*)::int as n from pg_roles where rolname = 'sneaky'`;
  expect(sneaky.n).toBe(0);

  // And a harmless migration goes through the same way: the probe itself is sound.
  expect(await pushProbe('harmless', 'create table public.probe_ok (id int primary key);\nalter table public.probe_ok enable row level security;\n')).toBeNull();
  const [ok] = await db.sql`select pg_get_userbyid(relowner) as owner from pg_class where oid = 'public.probe_ok'::regclass`;
  expect(ok.owner).toBe('postgres');
  // Four runs of the Supabase CLI, each checking the whole migration history: past the
  // default 30 s on a busy two-core machine (a timeout here is no finding).
}, 120_000);

it('lets postgres use auth.users as hosted grants it: read, write, triggers — not alter it', async () => {
  const probe = postgres(db.url, { max: 1, onnotice: () => {} });
  try {
    const id = '7a0c2a52-4e1b-4f8e-9a51-2d4b8c1e0f31';
    await probe.begin(async (tx) => {
      await tx`insert into auth.users (id, email, email_confirmed_at) values (${id}, 'probe@bootstrap.test', now())`;
      await tx`update auth.users set raw_user_meta_data = '{"a":1}' where id = ${id}`;
      const [row] = await tx`select email from auth.users where id = ${id}`;
      expect(row.email).toBe('probe@bootstrap.test');
      await tx`create function public.noop_probe() returns trigger language plpgsql set search_path = '' as 'begin return null; end'`;
      await tx`create trigger noop_probe after insert on auth.users for each row execute function public.noop_probe()`;
      await tx`delete from auth.users where id = ${id}`;
      throw Object.assign(new Error('rollback'), { code: 'ok' });
    }).catch((err) => {
      if ((err as { code?: string }).code !== 'ok') throw err;
    });
  } finally {
    await probe.end();
  }
  expect(await asBoth('alter table auth.users add column probe int')).toEqual({ postgres: '42501', supabase_admin: 'ok' });
  expect(await asBoth('create index probe_idx on auth.users (created_at)')).toEqual({ postgres: '42501', supabase_admin: 'ok' });
  const [rls] = await db.sql`select relrowsecurity from pg_class where oid = 'auth.users'::regclass`;
  expect(rls.relrowsecurity).toBe(true);
});

it('has auth.users as Supabase Auth\'s migrations leave it: 35 columns, their defaults, unique e-mail unless SSO', async () => {
  const cols = await db.sql`
    select column_name as name, data_type as type, column_default as def, is_nullable as nullable, is_generated as generated, generation_expression as expr
    from information_schema.columns where table_schema = 'auth' and table_name = 'users' order by ordinal_position`;
  expect(cols.map((c) => c.name).sort()).toEqual([
    'aud', 'banned_until', 'confirmation_sent_at', 'confirmation_token', 'confirmed_at', 'created_at', 'deleted_at',
    'email', 'email_change', 'email_change_confirm_status', 'email_change_sent_at', 'email_change_token_current',
    'email_change_token_new', 'email_confirmed_at', 'encrypted_password', 'id', 'instance_id', 'invited_at',
    'is_anonymous', 'is_sso_user', 'is_super_admin', 'last_sign_in_at', 'phone', 'phone_change', 'phone_change_sent_at',
    'phone_change_token', 'phone_confirmed_at', 'raw_app_meta_data', 'raw_user_meta_data', 'reauthentication_sent_at',
    'reauthentication_token', 'recovery_sent_at', 'recovery_token', 'role', 'updated_at',
  ]);
  expect(cols).toHaveLength(35);
  const by = Object.fromEntries(cols.map((c) => [c.name, c]));
  expect(by.id.nullable).toBe('NO');
  expect(by.phone.type).toBe('text');
  expect(by.phone_change.def).toBe("''::text");
  for (const c of ['phone_change_token', 'email_change_token_current', 'reauthentication_token']) expect(by[c].def).toBe("''::character varying");
  expect(by.email_change_confirm_status.def).toBe('0');
  expect([by.is_sso_user.def, by.is_sso_user.nullable, by.is_anonymous.def, by.is_anonymous.nullable]).toEqual(['false', 'NO', 'false', 'NO']);
  expect(by.confirmed_at.generated).toBe('ALWAYS');
  expect(by.confirmed_at.expr).toMatch(/LEAST\(email_confirmed_at, phone_confirmed_at\)/);

  const [idx] = await db.sql`select indexdef from pg_indexes where schemaname = 'auth' and indexname = 'users_email_partial_key'`;
  expect(idx.indexdef).toBe('CREATE UNIQUE INDEX users_email_partial_key ON auth.users USING btree (email) WHERE (is_sso_user = false)');

  const outcome = await db.sql.begin(async (tx) => {
    const tries: Record<string, string> = {};
    const attempt = async (label: string, query: string) => {
      try {
        await tx.savepoint((sp) => sp.unsafe(query));
        tries[label] = 'ok';
      } catch (err) {
        tries[label] = String((err as { code?: string }).code);
      }
    };
    await attempt('first', "insert into auth.users (id, email) values ('00000000-0000-4000-8000-0000000000a1', 'same@bootstrap.test')");
    await attempt('same e-mail', "insert into auth.users (id, email) values ('00000000-0000-4000-8000-0000000000a2', 'same@bootstrap.test')");
    await attempt('same e-mail, SSO', "insert into auth.users (id, email, is_sso_user) values ('00000000-0000-4000-8000-0000000000a3', 'same@bootstrap.test', true)");
    await attempt('second SSO', "insert into auth.users (id, email, is_sso_user) values ('00000000-0000-4000-8000-0000000000a4', 'same@bootstrap.test', true)");
    await attempt('status 3', "insert into auth.users (id, email_change_confirm_status) values ('00000000-0000-4000-8000-0000000000a5', 3)");
    await attempt('set confirmed_at', "insert into auth.users (id, confirmed_at) values ('00000000-0000-4000-8000-0000000000a6', now())");
    const [row] = await tx`
      insert into auth.users (id, email_confirmed_at, phone_confirmed_at) values
        ('00000000-0000-4000-8000-0000000000a7', '2026-01-02T00:00:00Z', '2026-01-01T00:00:00Z')
      returning confirmed_at, is_anonymous, is_sso_user, phone_change, email_change_confirm_status`;
    await tx`select 1`;
    throw Object.assign(new Error('rollback'), { tries, row });
  }).catch((err) => err as { tries: Record<string, string>; row: Record<string, unknown> });
  expect(outcome.tries).toEqual({
    first: 'ok', 'same e-mail': '23505', 'same e-mail, SSO': 'ok', 'second SSO': 'ok', 'status 3': '23514', 'set confirmed_at': '428C9',
  });
  expect(outcome.row).toEqual({
    confirmed_at: new Date('2026-01-01T00:00:00Z'), is_anonymous: false, is_sso_user: false, phone_change: '', email_change_confirm_status: 0,
  });
});

it('as a non-superuser on a database without the platform, says what is missing instead of half-building it', async () => {
  const name = `bare_${db.url.split('/').pop()!.slice(-8)}`;
  const bare = await createDatabase(inject('pgUrl'), name);
  try {
    await expect(runSqlFile(bare, bootstrapFile)).rejects.toThrow(/lacks the Supabase platform/);
    const sql = postgres(bare, { max: 1, onnotice: () => {} });
    try {
      const [s] = await sql`select to_regnamespace('auth') as auth`;
      expect(s.auth).toBeNull();
    } finally {
      await sql.end();
    }
  } finally {
    await db.sql.unsafe(`drop database "${name}"`);
  }
});

it('leaves alone an auth that Supabase Auth migrated (a `supabase start` database)', async () => {
  const definition = "create or replace function auth.uid() returns uuid language sql stable as $$ select '00000000-0000-4000-8000-00000000beef'::uuid $$";
  await db.sql.begin(async (tx) => {
    await tx.unsafe('create table auth.schema_migrations (version varchar(255) primary key)');
    await tx.unsafe(definition);
    await tx.unsafe(await readFile(bootstrapFile, 'utf8'));
    const [row] = await tx`select auth.uid() as uid, (select count(*)::int from information_schema.columns where table_schema = 'auth' and table_name = 'users') as cols`;
    expect(row).toEqual({ uid: '00000000-0000-4000-8000-00000000beef', cols: 35 });
    throw Object.assign(new Error('rollback'), { code: 'ok' });
  }).catch((err) => {
    if ((err as { code?: string }).code !== 'ok') throw err;
  });
});
