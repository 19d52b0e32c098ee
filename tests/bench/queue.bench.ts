// Queue throughput: the job runner (shared/jobs/runner.ts) with a no-op task against a
// raw `FOR UPDATE SKIP LOCKED` claim-and-complete loop in the same run, with 1 and 4
// workers. Both take batches of BATCH jobs and complete a batch in one statement, over
// the same driver and pool (shared/db.ts); the raw loop works a bare table of its own
// (id, run_at, locked_by, locked_until), so the difference is what the queue adds: job
// keys, named queues, leases checked on completion, attempts, the task registry and
// the handler call. Each iteration adds JOBS jobs (outside the timed loop's SQL: one
// insert) and drains them; jobs/s = hz × JOBS. On a shared machine the load changes
// between one bench and the next, so a second group alternates a raw drain and a queue
// drain inside each iteration and prints the ratio of their median times: the two sides
// of that ratio always ran under the same load. The order flips every iteration (raw
// first, then queue first): a drain that runs right after another is slower (the other
// side's garbage and autovacuum), and always running raw first had favoured it.
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
  // Made by the role the loops run as (postgres, as the functions), not the fixtures' superuser.
  await pool()`create table private.bench_raw_jobs (
    id bigint generated always as identity primary key,
    run_at timestamptz not null default now(),
    locked_by text,
    locked_until timestamptz)`;
  await pool()`create index on private.bench_raw_jobs (run_at, id)`;
});
const alternating: Record<string, number[]> = { raw1: [], queue1: [], raw4: [], queue4: [] };
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] ?? NaN;

afterAll(async () => {
  const ratio = (w: 1 | 4) => median(alternating[`raw${w}`]) / median(alternating[`queue${w}`]);
  const jobsPerS = (k: string) => Math.round(JOBS / (median(alternating[k]) / 1000));
  console.log(
    `[queue bench] alternating medians, jobs/s: raw ${jobsPerS('raw1')} vs queue ${jobsPerS('queue1')} (1 worker, ` +
      `ratio ${ratio(1).toFixed(2)}); raw ${jobsPerS('raw4')} vs queue ${jobsPerS('queue4')} (4 workers, ratio ${
        ratio(4).toFixed(2)
      }); ${alternating.raw1.length} + ${alternating.raw4.length} iterations`,
  );
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

// Every measurement starts from vacuumed tables.
const setup = async () => {
  await db.sql`vacuum private.jobs, private.bench_raw_jobs`;
};
const opts = { time: 4000, warmupTime: 500, setup };

async function timed(key: string, fn: () => Promise<unknown>): Promise<void> {
  const t0 = performance.now();
  await fn();
  alternating[key].push(performance.now() - t0);
}

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

describe(`alternating in each iteration: a raw drain and a queue drain, the order flipped each time (ratio of medians printed at the end)`, () => {
  let turn = 0;
  /** Both drains, in the order of this turn. */
  const both = async (raw: () => Promise<void>, queue: () => Promise<void>) => {
    if (turn++ % 2 === 0) {
      await raw();
      await queue();
    } else {
      await queue();
      await raw();
    }
  };

  bench('1 worker: raw and queue, in turns', async () => {
    await both(
      () =>
        timed('raw1', async () => {
          await enqueueRaw();
          await rawLoop('raw-0');
        }),
      () =>
        timed('queue1', async () => {
          await enqueueQueue();
          await runQueue(0);
        }),
    );
  }, opts);

  bench('4 workers: raw and queue, in turns', async () => {
    await both(
      () =>
        timed('raw4', async () => {
          await enqueueRaw();
          await Promise.all([0, 1, 2, 3].map((w) => rawLoop(`raw-${w}`)));
        }),
      () =>
        timed('queue4', async () => {
          await enqueueQueue();
          await Promise.all([0, 1, 2, 3].map(runQueue));
        }),
    );
  }, opts);
});
