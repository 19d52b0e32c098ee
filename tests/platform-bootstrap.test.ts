// supabase/platform/bootstrap.sql reproduces what a hosted project has: the API roles,
// auth.uid()/jwt()/role() reading claims exactly as Supabase's do, the realtime
// publication, and it can run again on every start.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bootstrapFile, runSqlFile } from '../scripts/stack.mjs';
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
    select (select count(*) from pg_roles) as roles, (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'auth') as fns`;
  const before = await snapshot();
  await runSqlFile(db.url, bootstrapFile);
  await runSqlFile(db.url, bootstrapFile);
  expect(await snapshot()).toEqual(before);
});
