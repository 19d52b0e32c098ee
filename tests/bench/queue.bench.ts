// Queue throughput: the job runner (shared/jobs/runner.ts) with a no-op task against a
// raw `FOR UPDATE SKIP LOCKED` claim-and-complete loop in the same run, with 1 and 4
// workers. Both take batches of BATCH jobs and complete a batch in one statement, over
// the same driver and pool (shared/db.ts); the raw loop works a bare table of its own
// (id, run_at, locked_by, locked_until), so the difference is what the queue adds: job
// keys, named queues, leases checked on completion, attempts, the task registry and
// the handler call. Each iteration adds JOBS jobs (outside the timed loop's SQL: one
// insert) and drains them; jobs/s = hz × JOBS.
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { closeDb, db as pool } from '../../shared/db.ts';
import { type Registry, runJobs } from '../../shared/jobs/runner.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

const JOBS = 200;
const BATCH = 10;
let db: TestDatabase;
const registry: Registry = { noop: { run: () => Promise.resolve() } as never };

beforeAll(async () => {
  db = await freshDatabase('bench_queue');
  process.env.SUPABASE_DB_URL = db.url;
  process.env.DB_POOL_MAX = '8';
  await db.sql`create table private.bench_raw_jobs (
    id bigint generated always as identity primary key,
    run_at timestamptz not null default now(),
    locked_by text,
    locked_until timestamptz)`;
  await db.sql`create index on private.bench_raw_jobs (run_at, id)`;
});
afterAll(async () => {
  await closeDb();
  await db.close();
});

async function enqueueQueue() {
  await pool()`insert into private.jobs (task) select 'noop' from generate_series(1, ${JOBS})`;
}
async function enqueueRaw() {
  await pool()`insert into private.bench_raw_jobs (run_at) select now() from generate_series(1, ${JOBS})`;
}

async function rawLoop(worker: string) {
  for (;;) {
    const claimed = await pool()`
      update private.bench_raw_jobs j set locked_by = ${worker}, locked_until = now() + interval '60 s'
      where j.id in (select id from private.bench_raw_jobs
                     where run_at <= now() and (locked_until is null or locked_until < now())
                     order by run_at, id limit ${BATCH} for update skip locked)
      returning j.id`;
    if (!claimed.length) return;
    await Promise.all(claimed.map(() => Promise.resolve())); // the no-op "handler"
    await pool()`delete from private.bench_raw_jobs where id = any (${claimed.map((j) => j.id)})`;
  }
}

const runQueue = (w: number) => runJobs({ registry, tasks: ['noop'], batch: BATCH, budgetMs: 60_000, workerId: `bench-${w}` });

const opts = { time: 4000, warmupTime: 500 };

describe(`queue: ${JOBS} jobs per iteration, batches of ${BATCH}, no-op task (jobs/s = hz × ${JOBS})`, () => {
  bench('raw SKIP LOCKED claim-and-complete loop, 1 worker — baseline', async () => {
    await enqueueRaw();
    await rawLoop('raw-0');
  }, opts);

  bench('job queue (runJobs), 1 worker', async () => {
    await enqueueQueue();
    await runQueue(0);
  }, opts);

  bench('raw SKIP LOCKED claim-and-complete loop, 4 workers — baseline', async () => {
    await enqueueRaw();
    await Promise.all([0, 1, 2, 3].map((w) => rawLoop(`raw-${w}`)));
  }, opts);

  bench('job queue (runJobs), 4 workers', async () => {
    await enqueueQueue();
    await Promise.all([0, 1, 2, 3].map(runQueue));
  }, opts);
});
