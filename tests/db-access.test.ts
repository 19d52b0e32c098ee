// shared/db: asUser runs a request as PostgREST would (role authenticated, claims
// published, RLS on) inside one transaction; nothing survives into the next request on
// the same pooled connection; asService bypasses RLS for trusted paths only.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { asService, asUser, closeDb, db as pool } from '../shared/db.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { supabaseClaims, tenants, users } from './helpers/seed.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('db_access');
  process.env.SUPABASE_DB_URL = db.url;
  process.env.DB_POOL_MAX = '1'; // one connection: every call reuses it, as a pooler would
});
afterAll(async () => {
  await closeDb();
  await db.close();
});

it('runs as authenticated with the claims, under RLS', async () => {
  const row = await asUser(supabaseClaims(users.acmeAgent, tenants.acme.id), async (tx) => {
    const [r] = await tx`select current_user as role, auth.jwt() ->> 'sub' as sub, (select count(*)::int from public.tenants) as tenants`;
    return r;
  });
  expect(row).toEqual({ role: 'authenticated', sub: users.acmeAgent.id, tenants: 1 });
});

it('leaves nothing behind on the connection for the next caller', async () => {
  await asUser(supabaseClaims(users.super), (tx) => tx`select 1`);
  const [after] = await pool()`select current_user as role, auth.jwt() as jwt, (select count(*)::int from public.tenants) as tenants`;
  expect(after.role).toBe('postgres');
  expect(after.jwt).toBeNull();
  // A second user on the same connection sees only their own tenant.
  const seen = await asUser(supabaseClaims(users.globexUser, tenants.globex.id), (tx) => tx`select id from public.tenants`);
  expect(seen.map((r) => r.id)).toEqual([tenants.globex.id]);
});

it('forces role authenticated even if the claims say otherwise', async () => {
  const [r] = await asUser({ ...supabaseClaims(users.acmeUser), role: 'service_role' }, (tx) => tx`select current_user as role, auth.role() as claim`);
  expect(r).toEqual({ role: 'authenticated', claim: 'authenticated' });
});

it('rolls back everything when the handler throws', async () => {
  await expect(asUser(supabaseClaims(users.acmeAdmin, tenants.acme.id), async (tx) => {
    await tx`update public.tenants set name = 'Half done' where id = ${tenants.acme.id}`;
    throw new Error('boom');
  })).rejects.toThrow('boom');
  const [t] = await db.sql`select name from public.tenants where id = ${tenants.acme.id}`;
  expect(t.name).toBe('Acme Corporation');
});

it('asService bypasses RLS and names the tenant in the claims', async () => {
  const row = await asService(tenants.acme.id, async (tx) => {
    const [r] = await tx`select current_user as role, auth.jwt() ->> 'tenant_id' as tenant, (select count(*)::int from public.tenants) as tenants`;
    return r;
  });
  expect(row).toEqual({ role: 'service_role', tenant: tenants.acme.id, tenants: 2 });
});

it('quotes column lists as identifiers (tx.columns), so names never travel as SQL text', async () => {
  const sql = pool();
  const q = sql`select ${sql.columns(['id', 'we"ird name'])} from t where x = ${1}`;
  expect(q.build()).toEqual({ text: 'select "id", "we""ird name" from t where x = $1', values: [1] });
  expect(() => sql`select ${sql.columns([])} from t`.build()).toThrow(/empty identifier list/);
  const [row] = await sql`select ${sql.columns(['slug', 'name'])} from public.tenants where id = ${tenants.acme.id}`;
  expect(row).toEqual({ slug: 'acme', name: 'Acme Corporation' });
});
