// What the rate limits cost on ticket create (issue 15: ≤ 10%): the same POST /tickets
// over HTTP through two real functions servers on one database, one with RATE_LIMITS=off
// (the baseline, measured in the same run) and one counting every write in Postgres
// (private.rate_limit_hit, one autocommit statement before the request transaction).
// The tenant's limits are raised so nothing is refused: the count is measured, not 429s.
// One client, then 8 concurrent requests per iteration (a loaded server).
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let off: FunctionsServer;
let on: FunctionsServer;
let token: string;
let n = 0;

beforeAll(async () => {
  db = await freshDatabase('bench_rate_limits');
  auth = await configureAuth(db.url);
  [off, on] = await Promise.all([startFunctionsServer({ RATE_LIMITS: 'off' }), startFunctionsServer({})]);
  await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${tenants.acme.id},
    ${db.sql.json({ requests_per_minute: 100_000_000, requests_per_minute_per_caller: 100_000_000, tickets_per_month: null })})`;
  // The customer files thousands of tickets in the run: above any real day's allowance.
  await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 1000000}' where id = ${tenants.acme.id}`;
  token = await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id, exp: '1h' });
}, 120_000);

afterAll(async () => {
  await Promise.all([off?.stop(), on?.stop()]);
  await closeDb();
  await auth?.close();
  await db?.close();
});

const opts = { time: 3000, warmupTime: 500 };

async function create(server: FunctionsServer): Promise<void> {
  const res = await fetch(`${server.url}/functions/v1/tickets`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ title: `Bench ${n++}` }),
  });
  await res.arrayBuffer();
  if (res.status !== 201) throw new Error(`POST /tickets answered ${res.status}`);
}

describe('ticket create, one client', () => {
  bench('RATE_LIMITS=off — baseline', () => create(off), opts);
  bench('rate limits on', () => create(on), opts);
  bench('RATE_LIMITS=off — baseline, again', () => create(off), opts);
  bench('rate limits on, again', () => create(on), opts);
});

describe('ticket create, 8 concurrent requests per iteration', () => {
  const burst = (server: FunctionsServer) => Promise.all(Array.from({ length: 8 }, () => create(server))).then(() => {});
  bench('RATE_LIMITS=off — baseline', () => burst(off), opts);
  bench('rate limits on', () => burst(on), opts);
  bench('RATE_LIMITS=off — baseline, again', () => burst(off), opts);
  bench('rate limits on, again', () => burst(on), opts);
});

describe('the count alone', () => {
  // What each limited write adds, without HTTP around it: the one autocommit statement.
  const claims = supabaseClaims(users.acmeUser, tenants.acme.id);
  bench('select private.rate_limit_hit(…) as the functions send it', async () => {
    await db.sql`select private.rate_limit_hit(${JSON.stringify(claims)}::jsonb, null::uuid, null::text, 'user', false)`;
  }, opts);
  bench('select 1 — the round trip alone', async () => {
    await db.sql`select 1`;
  }, opts);
});
