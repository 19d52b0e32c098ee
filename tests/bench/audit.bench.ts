// Audit overhead (issue 12: ≤ 1.5× the same statement without the audit trigger): an
// INSERT and an UPDATE of a team, each with the audit trigger (private.audit_row) and
// with that one trigger disabled, in the same run, as the non-superuser postgres the
// functions use (the table's other triggers stay on both ways). The one-row statements
// are what the API makes; the 100-row ones (one INSERT … SELECT, one UPDATE of 100 teams)
// show the per-row cost where the statement itself is cheap per row. Prints the ratios.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { closeDb, db as pool } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { tenants } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
let teamId: string;
let n = 0;
const hz: Record<string, number[]> = {};
const BULK = 100;

beforeAll(async () => {
  db = await freshDatabase('bench_audit');
  process.env.SUPABASE_DB_URL = db.url;
  process.env.DB_POOL_MAX = '1';
  [{ id: teamId }] = await db
    .sql`insert into public.teams (tenant_id, name, department) values (${acme}, 'Audited', 'support') returning id`;
  await db.sql`
    insert into public.teams (tenant_id, name, department)
    select ${acme}, 'Bulk ' || g, 'support' from generate_series(1, ${BULK}) g`;
});

afterAll(async () => {
  // Two figures per case: the ratio of the median block times (as this bench always
  // printed), and the median of the ratios of adjacent blocks — each "with" block
  // against the "without" block just before it, which a busy machine disturbs less.
  const ratios = (a: string) => {
    const off = hz[a] ?? [], on = hz[`${a}+audit`] ?? [];
    const paired = median(on.map((t, i) => t / off[i]));
    return `${(median(on) / median(off)).toFixed(2)}× (paired ${paired.toFixed(2)}×)`;
  };
  console.log(
    `[audit bench] with ÷ without the audit trigger, time per statement: insert ${ratios('insert')}, update ${ratios('update')}`,
  );
  console.log(`[audit bench] ${BULK} rows per statement: insert ${ratios('bulk insert')}, update ${ratios('bulk update')}`);
  await closeDb();
  await db.close();
});
const median = (a: number[] = []) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;

/** Times `count` statements, audit on or off, alternating so both see the same machine. */
async function timed(key: string, audit: boolean, statement: () => Promise<unknown>, count = 50) {
  await db.sql.unsafe(`alter table public.teams ${audit ? 'enable' : 'disable'} trigger audit`);
  const t0 = performance.now();
  for (let i = 0; i < count; i++) await statement();
  (hz[key] ??= []).push((performance.now() - t0) / count);
}
const insert = () => pool()`insert into public.teams (tenant_id, name, department) values (${acme}, ${`Team ${++n}`}, 'sales')`;
const update = () => pool()`update public.teams set description = ${`d${++n}`} where tenant_id = ${acme} and id = ${teamId}`;
const bulkInsert = () =>
  pool()`insert into public.teams (tenant_id, name, department)
         select ${acme}, ${`Team ${++n}-`} || g, 'sales' from generate_series(1, ${BULK}) g`;
const bulkUpdate = () =>
  pool()`update public.teams set description = ${`d${++n}`} where tenant_id = ${acme} and name like 'Bulk %'`;

describe('audit trigger overhead (audit on and off in turns)', () => {
  bench('insert a team: without audit, then with', async () => {
    await timed('insert', false, insert);
    await timed('insert+audit', true, insert);
  }, { time: 3000, warmupTime: 300 });
  bench('update a team: without audit, then with', async () => {
    await timed('update', false, update);
    await timed('update+audit', true, update);
  }, { time: 3000, warmupTime: 300 });
  bench(`insert ${BULK} teams in one statement: without audit, then with`, async () => {
    await timed('bulk insert', false, bulkInsert, 3);
    await timed('bulk insert+audit', true, bulkInsert, 3);
  }, { time: 3000, warmupTime: 300 });
  bench(`update ${BULK} teams in one statement: without audit, then with`, async () => {
    await timed('bulk update', false, bulkUpdate, 3);
    await timed('bulk update+audit', true, bulkUpdate, 3);
  }, { time: 3000, warmupTime: 300 });
});
