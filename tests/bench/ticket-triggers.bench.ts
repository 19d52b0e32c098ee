// What a ticket row costs in triggers (issue 14: the bulk ticket writes' per-row cost):
// an admin's insert of 1,000 tickets in one statement (as PostgREST writes a bulk insert)
// into a tenant with a webhook endpoint, and an update of their priority, each rolled
// back, against the same statement with every trigger off and no row security
// (session_replication_role replica, as the superuser: the bare rows and their indexes),
// in turns in the same run. Then one EXPLAIN ANALYZE of each, printed per row by trigger,
// and the functions with the most time of their own (track_functions), which is how
// 20261205160000 found the SQL helpers planned again on every call.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import type { TransactionSql } from 'postgres';
import { freshDatabase, rolledBack, type TestDatabase } from '../helpers/db.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
const ROWS = 1_000;
const ms: Record<string, number[]> = {};

const statements = {
  insert: `insert into public.tickets (tenant_id, title, description)
           select '${acme}', 'Bench trigger ticket ' || g, 'Rolled back' from generate_series(1, ${ROWS}) g`,
  // Bare, the number the before-insert trigger would give is given (a column it requires).
  'insert bare': `insert into public.tickets (tenant_id, number, title, description)
           select '${acme}', 1000000 + g, 'Bench trigger ticket ' || g, 'Rolled back' from generate_series(1, ${ROWS}) g`,
  update: `update public.tickets set priority = 'high' where tenant_id = '${acme}' and title like 'Kept trigger ticket %'`,
};

/** Runs `work` as acme's admin through PostgREST's path (triggers on), or bare (as the
 *  superuser, every trigger off, no row security), rolled back. */
const asAdminOrBare = <T>(withTriggers: boolean, work: (tx: TransactionSql) => Promise<T>, profiled = false) =>
  rolledBack(db.sql, async (tx) => {
    // Functions timed only in the profiling pass: the timed runs pay no instrumentation.
    if (profiled) await tx`set local track_functions = 'all'`;
    if (withTriggers) {
      await tx`select set_config('role', 'authenticated', true),
                      set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(users.acmeAdmin, acme))}, true)`;
    } else {
      await tx`set local session_replication_role = replica`;
    }
    return await work(tx);
  });

async function timed(key: string, withTriggers: boolean, sql: string) {
  const t0 = performance.now();
  await asAdminOrBare(withTriggers, (tx) => tx.unsafe(sql));
  (ms[key] ??= []).push(performance.now() - t0);
}

beforeAll(async () => {
  db = await freshDatabase('bench_ticket_triggers');
  await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types, enabled)
    values (${acme}, 'https://hooks.example.com/bench', 'v1:x', '{ticket.created,ticket.updated}', true)`;
  await db.sql`insert into public.tickets (tenant_id, title, description)
    select ${acme}, 'Kept trigger ticket ' || g, 'Updated, rolled back' from generate_series(1, ${ROWS}) g`;
}, 120_000);

afterAll(async () => {
  // The first sample of each is the warm-up run's (cold caches): left out.
  const median = (a: number[] = []) => a.slice(1).sort((x, y) => x - y)[Math.floor((a.length - 1) / 2)] ?? NaN;
  for (const kind of ['insert', 'update'] as const) {
    const on = median(ms[kind]), off = median(ms[`${kind} bare`]);
    console.log(`[ticket triggers] ${kind} ${ROWS} tickets: ${(on / ROWS * 1000).toFixed(0)} µs a row with triggers, ` +
      `${(off / ROWS * 1000).toFixed(0)} µs bare (${(on / off).toFixed(1)}×)`);
    const { plan, funcs } = await asAdminOrBare(true, async (tx) => ({
      plan: await tx.unsafe(`explain (analyze, buffers off) ${statements[kind]}`),
      funcs: await tx`select s.schemaname || '.' || s.funcname as f, s.calls::int as calls, s.self_time as self
        from pg_catalog.pg_stat_xact_user_functions s order by s.self_time desc limit 8`,
    }), true);
    const triggers = plan.map((r) => String(r['QUERY PLAN'])).filter((l) => l.startsWith('Trigger '))
      .map((l) => l.match(/^Trigger (?:for constraint )?(\S+): time=([\d.]+) calls=(\d+)/))
      .filter((m): m is RegExpMatchArray => m !== null)
      .map((m) => ({ name: m[1], us: Number(m[2]) * 1000 / Number(m[3]) }))
      .sort((a, b) => b.us - a.us).slice(0, 8);
    console.log(`[ticket triggers]   by trigger, µs a row: ${triggers.map((t) => `${t.name} ${t.us.toFixed(0)}`).join(', ')}`);
    console.log(`[ticket triggers]   own time by function, µs a call: ${
      funcs.map((f) => `${f.f} ${(Number(f.self) * 1000 / f.calls).toFixed(0)}×${f.calls}`).join(', ')}`);
  }
  await db.close();
});

describe('ticket triggers per row (with, then bare, in turns)', () => {
  bench(`insert ${ROWS} tickets in one statement as an admin, rolled back`, async () => {
    await timed('insert bare', false, statements['insert bare']);
    await timed('insert', true, statements.insert);
  }, { time: 5000, iterations: 3, warmupIterations: 1 });
  bench(`update ${ROWS} tickets' priority in one statement as an admin, rolled back`, async () => {
    await timed('update bare', false, statements.update);
    await timed('update', true, statements.update);
  }, { time: 5000, iterations: 3, warmupIterations: 1 });
});
