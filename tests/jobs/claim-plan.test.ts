// A claim reads one batch, however many jobs are due or done
// (20261201090000_jobs_claim_plan.sql). The queue's statistics are those of an empty
// table (as after autovacuum on a quiet queue) when a burst arrives and the heap holds
// the garbage of the jobs done since. A claim of 10 must then still read about 10
// entries of the due index, not all of them, and never scan the table — neither with a
// fresh plan nor with the generic plan PL/pgSQL cached in the backend while the queue
// was quiet. Counted with the backend's own statistics (pg_stat_get_xact_*), so the
// figures are exact and no clock is involved.
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

const DUE = 200;
const DONE = 20_000;
let db: TestDatabase;
/** A backend that claimed while the queue was empty: its cached plan is the quiet one. */
let warm: postgres.Sql;
/** A backend that never claimed: it plans afresh, from the statistics. */
let cold: postgres.Sql;

beforeAll(async () => {
  db = await freshDatabase('claim_plan');
  await db.sql`vacuum analyze private.jobs`; // statistics of the empty queue
  warm = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
  cold = postgres(db.adminUrl, { max: 1, onnotice: () => {} });
  for (let i = 0; i < 10; i++) await warm`select id from private.claim_due_jobs('warm', 10, 60, ${['burst']}, ${[0]})`;
  // The garbage of jobs done since: dead rows in the heap, due later, so no claim's index
  // scan reaches their entries; a scan of the table reads them all.
  await db.sql`insert into private.jobs (task, run_at) select 'done', now() + interval '1 day' from generate_series(1, ${DONE})`;
  await db.sql`delete from private.jobs where task = 'done'`;
  await db.sql`insert into private.jobs (task, run_at)
    select 'burst', now() - make_interval(secs => ${DUE} - g) from generate_series(1, ${DUE}) g`;
});
afterAll(async () => {
  await warm.end();
  await cold.end();
  await db.close();
});

/** What this backend has read so far: its counters not yet flushed to the statistics
 *  (earlier transactions' included), so a statement's reads are a difference of two. */
const counters = async (tx: postgres.TransactionSql) =>
  (await tx`select pg_stat_get_xact_tuples_returned('private.jobs_due_idx'::regclass)::int as index_entries,
    pg_stat_get_xact_numscans('private.jobs'::regclass)::int as table_scans,
    pg_stat_get_xact_tuples_returned('private.jobs'::regclass)::int as table_rows_scanned`)[0];

/** A claim (completing `done` first) on `backend`, with what it read. */
async function claim(backend: postgres.Sql, worker: string, done: number[] | null = null) {
  return await backend.begin(async (tx) => {
    const before = await counters(tx);
    const rows = await tx`select id, completed from private.claim_due_jobs(${worker}, 10, 60, ${['burst']}, ${done})`;
    const after = await counters(tx);
    return {
      ids: rows.filter((r) => !r.completed).map((r) => Number(r.id)),
      completed: rows.filter((r) => r.completed).map((r) => Number(r.id)).sort((a, b) => a - b),
      index_entries: after.index_entries - before.index_entries,
      table_scans: after.table_scans - before.table_scans,
      table_rows_scanned: after.table_rows_scanned - before.table_rows_scanned,
    };
  });
}

describe('a claim during a burst, with the statistics of an empty queue and a heap of garbage', () => {
  it('planned afresh: reads about one batch of the due index, in due order, and no table scan', async () => {
    const first = await claim(cold, 'w1');
    const expected = (await db.sql`select id from private.jobs where task = 'burst' order by run_at, id limit 10`).map((r) => Number(r.id));
    expect(first.ids).toEqual(expected);
    // 10 claimed, plus some slack; a bitmap scan and a sort read all 200.
    expect(first.index_entries).toBeGreaterThanOrEqual(10);
    expect(first.index_entries).toBeLessThan(50);
    // The claimed rows are updated through the primary key, not found by a scan of the
    // heap and its 20,000 dead rows.
    expect(first).toMatchObject({ table_scans: 0, table_rows_scanned: 0 });
  });

  it('with the plan cached while the queue was empty: skips the running jobs ahead, reads one batch more', async () => {
    const second = await claim(warm, 'w2');
    expect(second.ids).toHaveLength(10);
    expect(second.index_entries).toBeLessThan(70); // the 10 running jobs before them, then 10
    expect(second).toMatchObject({ table_scans: 0, table_rows_scanned: 0 });
  });

  it('completing a batch with the next claim deletes by key, without scanning the done jobs', async () => {
    const done = await claim(warm, 'w3');
    const next = await claim(warm, 'w3', done.ids);
    expect(next.completed).toEqual([...done.ids].sort((a, b) => a - b));
    expect(next.ids).toHaveLength(10);
    expect(next).toMatchObject({ table_scans: 0, table_rows_scanned: 0 });
  });
});
