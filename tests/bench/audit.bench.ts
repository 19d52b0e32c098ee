// Audit overhead (issue 12: ≤ 1.5× the same statement without the audit trigger): an
// INSERT and an UPDATE of a team, each with the audit trigger (private.audit_row) and
// with that one trigger disabled, in the same run, as the non-superuser postgres the
// functions use (the table's other triggers stay on both ways). Prints the ratios.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { closeDb, db as pool } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
let teamId: string;
let n = 0;
const hz: Record<string, number[]> = {};

beforeAll(async () => {
  db = await freshDatabase('bench_audit');
  process.env.SUPABASE_DB_URL = db.url;
  process.env.DB_POOL_MAX = '1';
  [{ id: teamId }] = await db.sql`insert into public.teams (tenant_id, name, department) values (${acme}, 'Audited', 'support') returning id`;
});

afterAll(async () => {
  const ratio = (a: string, b: string) => (median(hz[b]) / median(hz[a])).toFixed(2);
  console.log(`[audit bench] with ÷ without the audit trigger, time per statement: insert ${ratio('insert', 'insert+audit')}×, update ${
    ratio('update', 'update+audit')
  }×`);
  await closeDb();
  await db.close();
});
const median = (a: number[] = []) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;

/** Times one statement, audit on or off, alternating so both see the same machine. */
async function timed(key: string, audit: boolean, statement: () => Promise<unknown>) {
  await db.sql.unsafe(`alter table public.teams ${audit ? 'enable' : 'disable'} trigger audit`);
  const t0 = performance.now();
  for (let i = 0; i < 50; i++) await statement();
  (hz[key] ??= []).push((performance.now() - t0) / 50);
}
const insert = () => pool()`insert into public.teams (tenant_id, name, department) values (${acme}, ${`Team ${++n}`}, 'sales')`;
const update = () => pool()`update public.teams set description = ${`d${++n}`} where tenant_id = ${acme} and id = ${teamId}`;

describe('audit trigger overhead (50 statements per iteration, audit on and off in turns)', () => {
  bench('insert a team: without audit, then with', async () => {
    await timed('insert', false, insert);
    await timed('insert+audit', true, insert);
  }, { time: 3000, warmupTime: 300 });
  bench('update a team: without audit, then with', async () => {
    await timed('update', false, update);
    await timed('update+audit', true, update);
  }, { time: 3000, warmupTime: 300 });
});
