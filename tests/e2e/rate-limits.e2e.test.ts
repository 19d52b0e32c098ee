// Rate limits across function instances (issue 15): two real local functions servers
// (scripts/serve.ts under Deno) share one database; a caller's writes spread over both
// count against one window, so the limit holds exactly, whichever instance answers; the
// same for an API key's reads against the key's read window.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';
import { earlyInMinute } from '../helpers/minute.ts';

const LIMIT = 8;
let db: TestDatabase;
let auth: AuthFixture;
let servers: FunctionsServer[] = [];

beforeAll(async () => {
  db = await freshDatabase('e2e_rate_limits');
  auth = await configureAuth(db.url);
  servers = await Promise.all([startFunctionsServer({}), startFunctionsServer({})]);
  await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits)
    values (${tenants.globex.id}, ${db.sql.json({ requests_per_minute_per_caller: LIMIT })})`;
}, 120_000);
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
  await auth?.close();
  await db?.close();
});

it('two instances sharing one database hold one limit between them', async () => {
  const token = await supabaseToken(users.globexUser, { tenantId: tenants.globex.id });
  await earlyInMinute();
  const statuses: number[] = [];
  const served: string[] = [];
  // Alternating, then a burst on both at once: LIMIT allowed in all, whatever the order.
  const send = async (i: number) => {
    const server = servers[i % 2];
    const res = await fetch(`${server.url}/functions/v1/tickets`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: `Two instances ${i}` }),
    });
    await res.arrayBuffer();
    statuses.push(res.status);
    if (res.status === 201) served.push(server.url);
    if (res.status === 429) {
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(res.headers.get('ratelimit-limit')).toBe(String(LIMIT));
      expect(res.headers.get('ratelimit-remaining')).toBe('0');
    }
  };
  for (let i = 0; i < 4; i++) await send(i);
  await Promise.all(Array.from({ length: 12 }, (_, i) => send(4 + i)));
  expect(statuses.filter((s) => s === 201)).toHaveLength(LIMIT);
  expect(statuses.filter((s) => s === 429)).toHaveLength(16 - LIMIT);
  expect(new Set(served).size).toBe(2); // both instances answered some
  const [{ n }] = await db.sql`select count(*)::int as n from public.tickets where title like 'Two instances %'`;
  expect(n).toBe(LIMIT);
  for (const s of servers) expect(s.alive()).toBe(true);
}, 120_000);

it("an API key's reads spread over both instances hold one read limit", async () => {
  const admin = await supabaseToken(users.globexAdmin, { tenantId: tenants.globex.id });
  const made = await fetch(`${servers[0].url}/functions/v1/tenants/${tenants.globex.id}/api-keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: 'poller', scopes: ['tickets:read'] }),
  });
  expect(made.status).toBe(201);
  const { key } = await made.json() as { key: string };
  await db.sql`update private.tenant_plan_overrides set limits = limits || ${db.sql.json({ reads_per_minute_per_key: LIMIT })}
    where tenant_id = ${tenants.globex.id}`;
  await earlyInMinute();
  const statuses: number[] = [];
  const send = async (i: number) => {
    const res = await fetch(`${servers[i % 2].url}/functions/v1/tickets`, { headers: { authorization: `Bearer ${key}` } });
    await res.arrayBuffer();
    statuses.push(res.status);
    if (res.status === 429) {
      expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      expect(res.headers.get('ratelimit-limit')).toBe(String(LIMIT));
    }
  };
  for (let i = 0; i < 4; i++) await send(i);
  await Promise.all(Array.from({ length: 12 }, (_, i) => send(4 + i)));
  expect(statuses.filter((s) => s === 200)).toHaveLength(LIMIT);
  expect(statuses.filter((s) => s === 429)).toHaveLength(16 - LIMIT);
}, 120_000);
