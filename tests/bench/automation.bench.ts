// Automation rules (issue 16): what 20 active rules cost a ticket create — evaluation is
// deferred, so the create only pays the capture trigger's probe and one job row — and
// how fast the queue drains rule evaluations. Two tenants on the same plan in the same
// run: acme with 20 active rules on ticket.created and ticket.updated, globex with none.
// The create is measured where a client makes it: as the user under RLS (the direct
// PostgREST path, where the difference is largest) and over HTTP through the functions.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { apiKey } from '../../scripts/tokens.mjs';
import { asUser, closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

const acme = tenants.acme.id;
const globex = tenants.globex.id;
let db: TestDatabase;
let auth: AuthFixture;
let server: FunctionsServer;
const token: Record<string, string> = {};
const claims = { acme: supabaseClaims(users.acmeUser, acme), globex: supabaseClaims(users.globexUser, globex) };
/** Drained in the drain bench: events (jobs), rule applications, and the time the drain took. */
const drained = { events: 0, applied: 0, ms: 0 };

beforeAll(async () => {
  db = await freshDatabase('bench_automation');
  // Same plan for both, so only the rules differ; the ticket quota does not stop the run.
  await db.sql`update public.tenants set plan = 'enterprise' where id in (${acme}, ${globex})`;
  // Their customers file thousands of tickets in the run: above any real day's allowance.
  await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 1000000}' where id in (${acme}, ${globex})`;
  for (let i = 0; i < 20; i++) {
    await db.sql`insert into public.automation_rules (tenant_id, name, event, position, conditions, actions) values
      (${acme}, ${'created ' + i}, 'ticket.created', ${i},
       ${db.sql.json({ all: [{ field: 'title', op: 'contains', value: `topic-${i}` }] })},
       ${db.sql.json([{ type: 'add_tags', tags: [`t${i}`] }])}),
      (${acme}, ${'updated ' + i}, 'ticket.updated', ${i},
       ${db.sql.json({ all: [{ field: 'changed', op: 'contains', value: 'priority' }] })},
       ${db.sql.json([{ type: 'add_tags', tags: [`u${i % 4}`] }])})`;
  }
  auth = await configureAuth(db.url);
  server = await startFunctionsServer({ RATE_LIMITS: 'off', SUPABASE_ANON_KEY: await apiKey('anon', TEST_JWT_SECRET) });
  token.acme = await supabaseToken(users.acmeUser, { tenantId: acme, exp: '1h' });
  token.globex = await supabaseToken(users.globexUser, { tenantId: globex, exp: '1h' });
}, 120_000);

afterAll(async () => {
  if (drained.ms > 0) {
    console.log(
      `automation drain: ${drained.events} events in ${(drained.ms / 1000).toFixed(1)} s = ` +
        `${Math.round(drained.events / (drained.ms / 1000))} events/s, ` +
        `${Math.round(drained.applied / (drained.ms / 1000))} rule applications/s (2 workers, 20 rules per event)`,
    );
  }
  await server?.stop();
  await closeDb();
  await auth?.close();
  await db?.close();
});

const opts = { time: 3000, warmupTime: 300 };
let n = 0;

describe('ticket create, 20 active rules vs none (same run)', () => {
  bench('as the user under RLS, no rules (globex) — baseline', async () => {
    await asUser(claims.globex, (tx) => tx`insert into public.tickets (tenant_id, title) values (${globex}, ${'Bench topic-' + (n++ % 40)})`);
  }, opts);

  bench('as the user under RLS, 20 active rules (acme)', async () => {
    await asUser(claims.acme, (tx) => tx`insert into public.tickets (tenant_id, title) values (${acme}, ${'Bench topic-' + (n++ % 40)})`);
  }, opts);

  for (const tenant of ['globex', 'acme'] as const) {
    bench(`HTTP POST /functions/v1/tickets, ${tenant === 'acme' ? '20 active rules (acme)' : 'no rules (globex) — baseline'}`, async () => {
      const res = await fetch(`${server.url}/functions/v1/tickets`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token[tenant]}`, 'content-type': 'application/json' },
        body: JSON.stringify({ title: `Bench topic-${n++ % 40}` }),
      });
      if (res.status !== 201) throw new Error(`status ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
    }, opts);
  }
});

describe('rule evaluation drained by the queue', () => {
  const drain = async () => {
    let claimed = 0;
    for (;;) {
      const reports = await Promise.all([0, 1].map((i) => runJobs({ tasks: ['automation'], budgetMs: 60_000, workerId: `bench-${i}` })));
      const n = reports.reduce((s, r) => s + r.claimed, 0);
      if (n === 0) return claimed;
      claimed += n;
    }
  };
  bench('200 priority changes under 20 rules, drained by 2 workers', async () => {
    await drain(); // what the create benches left, untimed
    // The events: 200 of acme's tickets change priority in one statement (200 jobs).
    await db.sql`
      update public.tickets set priority = case priority when 'high' then 'low' else 'high' end
      where tenant_id = ${acme} and id in (select id from public.tickets where tenant_id = ${acme} order by random() limit 200)`;
    const [{ before }] = await db.sql`select count(*)::int as before from public.automation_runs where tenant_id = ${acme}`;
    const t0 = performance.now();
    drained.events += await drain();
    drained.ms += performance.now() - t0;
    const [{ after }] = await db.sql`select count(*)::int as after from public.automation_runs where tenant_id = ${acme}`;
    drained.applied += after - before;
  }, { time: 0, warmupTime: 0, iterations: 5 });
});
