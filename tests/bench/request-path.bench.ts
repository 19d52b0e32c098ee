// What the request path costs, against a raw-SQL baseline measured in the same run:
// the same read (a tenant's teams) as superuser without RLS, through asUser under RLS,
// and over HTTP through the Deno functions server (JWT verification, caller lookup,
// RLS transaction). Data: 200 tenants × 50 members and 5 teams each.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { loadTenantsAndTeams } from '../../scripts/bench-data.mjs';
import { apiKey } from '../../scripts/tokens.mjs';
import { asUser, closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { configureAuth, supabaseToken, TEST_JWT_SECRET, type AuthFixture } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let server: FunctionsServer;
let token: string;
let key: string;
const tenantId = tenants.acme.id;
const claims = supabaseClaims(users.acmeAgent, tenantId);

beforeAll(async () => {
  db = await freshDatabase('bench');
  await loadTenantsAndTeams(db.sql);
  await db.sql`analyze`;
  auth = await configureAuth(db.url);
  server = await startFunctionsServer({ SUPABASE_ANON_KEY: await apiKey('anon', TEST_JWT_SECRET) });
  token = await supabaseToken(users.acmeAgent, { tenantId, exp: '1h' });
  // An API key with teams:read (issue 15): verified by the database in the caller's statement.
  const made = await fetch(`${server.url}/functions/v1/tenants/${tenantId}/api-keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${await supabaseToken(users.acmeAdmin, { tenantId, exp: '1h' })}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'bench', scopes: ['teams:read'] }),
  });
  key = ((await made.json()) as { key: string }).key;
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await closeDb();
  await auth?.close();
  await db?.close();
});

const opts = { time: 3000, warmupTime: 500 };

describe("read a tenant's teams", () => {
  bench('raw SQL (superuser, no RLS) — baseline', async () => {
    await db.sql`select id, name, department from public.teams where tenant_id = ${tenantId} order by lower(name)`;
  }, opts);

  bench('same transaction shape as asUser, superuser (no RLS): the cost of BEGIN/COMMIT', async () => {
    await db.sql.begin(async (tx) => {
      const setup = tx`select set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`.execute();
      await tx`select id, name, department from public.teams where tenant_id = ${tenantId} order by lower(name)`;
      await setup;
    });
  }, opts);

  bench('asUser: transaction + claims + RLS (shared/db)', async () => {
    await asUser(claims, (tx) => tx`select id, name, department from public.teams where tenant_id = ${tenantId} order by lower(name)`);
  }, opts);

  bench('HTTP GET /functions/v1/tenants/{id}/teams (Deno, JWT, RLS)', async () => {
    const res = await fetch(`${server.url}/functions/v1/tenants/${tenantId}/teams`, { headers: { authorization: `Bearer ${token}` } });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    await res.arrayBuffer();
  }, opts);

  bench('HTTP GET /functions/v1/tenants/{id}/teams with an API key (teams:read)', async () => {
    const res = await fetch(`${server.url}/functions/v1/tenants/${tenantId}/teams`, { headers: { authorization: `Bearer ${key}` } });
    if (res.status !== 200) throw new Error(`status ${res.status}`);
    await res.arrayBuffer();
  }, opts);

  bench('HTTP, 8 concurrent requests per iteration (×8 for requests/s)', async () => {
    await Promise.all(Array.from({ length: 8 }, async () => {
      const res = await fetch(`${server.url}/functions/v1/tenants/${tenantId}/teams`, { headers: { authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
    }));
  }, opts);
});
