// The runner (shared/jobs/runner.ts) over the queue with tasks of this test's own:
// named queues run one job at a time, in order, under four concurrent workers, also
// through a retry at a queue's head; a handler's Retry-After and permanent errors reach
// the stored job; a task the registry does not know is never claimed; a handler that
// runs past its lease keeps it while its worker renews it, and one whose worker stopped
// cannot complete its job; jobs not started within the budget go back; a slow job holds
// one slot of the run's pool while the others keep running; a deferred job goes back
// untried, keeping its queue's head.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Registry, runJobs } from '../../shared/jobs/runner.ts';
import { tasks as productionTasks } from '../../shared/jobs/registry.ts';
import { JobDeferred, JobError, type Job } from '../../shared/jobs/types.ts';
import { closeConcurrencyDb, type ConcurrencyDb, concurrencyDatabase, deadlocks } from '../concurrency/harness.ts';
import { DatabaseUnavailableError, type Tx } from '../../shared/db.ts';
import { whileHeld } from '../helpers/advisory-locks.ts';

let db: ConcurrencyDb;
beforeAll(async () => {
  db = await concurrencyDatabase('jobs_runner');
});
afterAll(async () => {
  await closeConcurrencyDb(db);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('looks up every production task by name', () => {
  expect(Object.keys(productionTasks).sort()).toEqual(
    ['assign-ticket', 'attachment-upload-check', 'automation', 'automation-sweep', 'chatwoot-reply', 'deliver-webhook', 'prune', 'provision', 'reconcile', 'sla-sweep', 'storage-delete', 'voice-erasure-trail', 'voice-stale-calls'].sort(),
  );
});

describe('named queues', () => {
  it('run one job at a time per queue, in order, under four concurrent workers and a retry', async () => {
    const QUEUES = 6;
    const PER_QUEUE = 15;
    const ran: { queue: string; seq: number }[] = [];
    const running = new Map<string, number>();
    let overlap = 0;
    let failedOnce = false;
    const registry: Registry = {
      ordered: {
        async run(job: Job<{ seq: number }>) {
          const q = job.queue ?? `unordered-${job.id}`;
          running.set(q, (running.get(q) ?? 0) + 1);
          if (running.get(q)! > 1) overlap++;
          await sleep(Math.random() * 3);
          running.set(q, running.get(q)! - 1);
          // The head of queue q-0 fails once: what follows it waits for it.
          if (q === 'q-0' && job.payload.seq === 3 && !failedOnce) {
            failedOnce = true;
            throw new JobError('once');
          }
          ran.push({ queue: q, seq: job.payload.seq });
        },
      } as never,
    };
    // Interleaved across queues, plus unordered jobs alongside.
    for (let seq = 0; seq < PER_QUEUE; seq++) {
      for (let q = 0; q < QUEUES; q++) {
        await db.sql`select private.add_job('ordered', ${db.sql.json({ seq })}, null, null, null, ${`q-${q}`})`;
      }
      await db.sql`select private.add_job('ordered', ${db.sql.json({ seq })}, null, null, null, null)`;
    }
    const before = await deadlocks(db.sql, db.name);
    for (let round = 0; round < 20; round++) {
      await db.sql`update private.jobs set run_at = now() where task = 'ordered' and run_at > now()`;
      const reports = await Promise.all([0, 1, 2, 3].map((w) => runJobs({ registry, workerId: `w${round}-${w}`, batch: 4, budgetMs: 10_000 })));
      if (reports.every((r) => r.claimed === 0)) break;
    }
    expect((await deadlocks(db.sql, db.name)) - before).toBe(0);
    expect(overlap).toBe(0);
    expect(failedOnce).toBe(true);
    for (let q = 0; q < QUEUES; q++) {
      expect(ran.filter((r) => r.queue === `q-${q}`).map((r) => r.seq), `q-${q}`).toEqual([...Array(PER_QUEUE).keys()]);
    }
    expect((await db.sql`select count(*)::int as n from private.jobs where task = 'ordered'`)[0].n).toBe(0);
  });
});

describe('the pool', () => {
  it('a slow job holds one slot, not the run: the others are claimed and run while it waits', async () => {
    // The slow job waits until every fast job has run (or 8 s). Run batch after batch,
    // its batch would wait for it and the fast jobs after that batch would never start.
    const FAST = 12;
    let fastRan = 0;
    let allFast: () => void = () => {};
    const fastDone = new Promise<void>((r) => allFast = r);
    let sawFast = -1;
    const registry: Registry = {
      slow: {
        async run() {
          await Promise.race([fastDone, sleep(8_000)]);
          sawFast = fastRan;
        },
      } as never,
      fast: {
        async run() {
          await sleep(5);
          if (++fastRan === FAST) allFast();
        },
      } as never,
    };
    await db.sql`select private.add_job('slow')`; // claimed first (oldest run_at)
    for (let i = 0; i < FAST; i++) await db.sql`select private.add_job('fast')`;
    const report = await runJobs({ registry, batch: 4, budgetMs: 20_000 });
    expect(sawFast).toBe(FAST);
    expect(report).toMatchObject({ claimed: FAST + 1, completed: FAST + 1, lost: 0 });
    expect((await db.sql`select count(*)::int as n from private.jobs where task in ('slow', 'fast')`)[0].n).toBe(0);
  });
});

describe('deferred jobs', () => {
  it('go back untried: the attempt uncounted, due when asked, at the head of their queue; a worker that lost the lease defers nothing', async () => {
    let behindRan = false;
    const registry: Registry = {
      later: { run: () => Promise.reject(new JobDeferred(60, 'not now')) } as never,
      behind: {
        async run() {
          behindRan = true;
        },
      } as never,
    };
    const [{ id }] = await db.sql`select id from private.add_job('later', '{}', null, null, null, 'deferred-q')`;
    await db.sql`select private.add_job('behind', '{}', null, null, null, 'deferred-q')`;
    const report = await runJobs({ registry, budgetMs: 5_000 });
    expect(report).toMatchObject({ claimed: 1, deferred: 1, retried: 0, completed: 0 });
    expect(report.tasks.later).toMatchObject({ claimed: 1, deferred: 1 });
    const [job] = await db.sql`select attempts, locked_by, last_error, extract(epoch from run_at - now()) as wait
      from private.jobs where id = ${id}`;
    expect(job).toMatchObject({ attempts: 0, locked_by: null, last_error: null });
    expect(Number(job.wait)).toBeGreaterThan(55);
    expect(Number(job.wait)).toBeLessThanOrEqual(60);
    expect(behindRan).toBe(false); // its queue waits for the deferred head
    // A lease run out before the defer: the job is no longer this worker's to put off, so
    // it stays due and is claimed again at once (here by the same run, and done).
    await db.sql`update private.jobs set run_at = now() where id = ${id}`;
    let tries = 0;
    const lateRegistry: Registry = {
      later: {
        async run() {
          if (++tries > 1) return;
          await db.sql`update private.jobs set locked_until = now() - interval '1 second' where id = ${id}`;
          throw new JobDeferred(60, 'not now');
        },
      } as never,
    };
    expect(await runJobs({ registry: lateRegistry, tasks: ['later'], budgetMs: 5_000 })).toMatchObject({ claimed: 2, deferred: 0, lost: 1, completed: 1 });
    expect(await db.sql`select 1 from private.jobs where id = ${id}`).toHaveLength(0);
    await db.sql`delete from private.jobs where queue = 'deferred-q'`;
  });

  it('a delay out of range is held to a day, not an error that fails the run', async () => {
    const registry: Registry = { far: { run: () => Promise.reject(new JobDeferred(1e12, 'much later')) } as never };
    const [{ id }] = await db.sql`select id from private.add_job('far')`;
    expect(await runJobs({ registry, budgetMs: 5_000 })).toMatchObject({ claimed: 1, deferred: 1 });
    const [job] = await db.sql`select attempts, extract(epoch from run_at - now()) as wait from private.jobs where id = ${id}`;
    expect(job.attempts).toBe(0);
    expect(Number(job.wait)).toBeGreaterThan(86_000);
    expect(Number(job.wait)).toBeLessThanOrEqual(86_400);
    await db.sql`delete from private.jobs where id = ${id}`;
  });
});

/** A handler that holds its job until the test releases it (`held`/`release`), saying
 *  when it started (`running`/`started`): the window in which a test hands its key over. */
function handOverWindow() {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let started!: () => void;
  const running = new Promise<void>((r) => (started = r));
  return { held, release, running, started };
}

describe('failures reported by handlers', () => {
  it("store the handler's Retry-After (never sooner) and end permanent errors at once", async () => {
    const registry: Registry = {
      'rate-limited': { run: () => Promise.reject(new JobError('429 slow down', { retryAfterSeconds: 900 })) } as never,
      refused: { run: () => Promise.reject(new JobError('401 bad token', { retryable: false })) } as never,
    };
    const [{ id: limited }] = await db.sql`select id from private.add_job('rate-limited')`;
    const [{ id: refused }] = await db.sql`select id from private.add_job('refused')`;
    const [{ before }] = await db.sql`select now() as before`;
    const report = await runJobs({ registry, budgetMs: 5_000 });
    const [{ after }] = await db.sql`select now() as after`;
    expect(report).toMatchObject({ claimed: 2, retried: 1, dead: 1, completed: 0 });
    const [l] = await db.sql`select attempts, last_error, run_at from private.jobs where id = ${limited}`;
    expect(l.attempts).toBe(1);
    expect(l.last_error).toBe('429 slow down');
    // 900 s after the failure, which the database recorded between the two readings of its clock.
    const [window] = await db.sql`
      select ${l.run_at}::timestamptz >= ${before}::timestamptz + interval '900 seconds' as not_early,
             ${l.run_at}::timestamptz <= ${after}::timestamptz + interval '900 seconds' as not_late`;
    expect(window).toEqual({ not_early: true, not_late: true });
    const [r] = await db.sql`select attempts, dead_at is not null as dead, last_error from private.jobs where id = ${refused}`;
    expect(r).toEqual({ attempts: 1, dead: true, last_error: '401 bad token' });
  });

  it('a job whose key went to a newer job ends when it fails: no failure hook, and the newer job runs when due, not after a backoff', async () => {
    const hooked: string[] = [];
    const ran: number[] = [];
    const { held, release, running, started } = handOverWindow();
    const registry: Registry = {
      handed: {
        async run(job: Job<{ v: number }>) {
          ran.push(job.payload.v);
          if (job.payload.v === 1) {
            started();
            await held;
            throw new JobError('partner down'); // retryable: backed off, before
          }
        },
        async failed(_tx: unknown, job: Job<{ v: number }>, outcome: string) {
          hooked.push(`${job.payload.v}: ${outcome}`);
        },
      } as never,
    };
    const [{ id: first }] = await db.sql`select id from private.add_job('handed', '{"v": 1}', 'handed-key')`;
    const run = runJobs({ registry, workerId: 'handed-1', budgetMs: 5_000, batch: 1 });
    await running;
    // The key is added again while its job runs (a tenant suspended mid-provisioning).
    const [next] = await db.sql`select id, queue from private.add_job('handed', '{"v": 2}', 'handed-key')`;
    release();
    const report = await run;
    // The first ended without its hook (no failure for the domain) and without a backoff;
    // the second ran in the same run, as soon as the first was out of its way.
    expect(report.tasks.handed).toMatchObject({ superseded: 1, dead: 0, completed: 1 });
    expect(hooked).toEqual([]);
    expect(ran).toEqual([1, 2]);
    expect(await db.sql`select id from private.jobs where id in (${first}, ${next.id})`).toEqual([]);
  });

  it("a job handed over while its failure hook runs ends superseded, the hook's writes rolled back", async () => {
    let hooked = 0;
    const registry: Registry = {
      racing: {
        async run(job: Job<{ v: number }>) {
          if (job.payload.v === 1) throw new JobError('partner down');
        },
        async failed(tx: Tx) {
          hooked++;
          await tx`select private.add_job('racing-marker')`; // the hook's own write
          // Meanwhile, on another connection, the key is added again: a hand-over.
          await db.sql`select private.add_job('racing', '{"v": 2}', 'racing-key')`;
        },
      } as never,
    };
    await db.sql`select private.add_job('racing', '{"v": 1}', 'racing-key')`;
    const report = await runJobs({ registry, tasks: ['racing'], workerId: 'racing-1', budgetMs: 5_000, batch: 1 });
    expect(report.tasks.racing).toMatchObject({ superseded: 1, completed: 1, retried: 0 });
    expect(hooked).toBe(1);
    expect(await db.sql`select 1 from private.jobs where task in ('racing', 'racing-marker')`).toEqual([]);
  });

  it('a failure hook that itself fails: a retry is recorded without it; an end is held for it (bounded), and the run goes on', async () => {
    let runs = 0;
    let hooked = 0;
    const registry: Registry = {
      brokenhook: {
        async run() {
          runs++;
          throw new JobError('partner down');
        },
        async failed(tx: Tx) {
          hooked++;
          await tx`select 1/0`; // refused the same way every time
        },
      } as never,
    };
    await db.sql`select private.add_job('brokenhook')`;
    await db.sql`update private.jobs set max_attempts = 2 where task = 'brokenhook'`;
    const first = await runJobs({ registry, tasks: ['brokenhook'], workerId: 'brokenhook-1', budgetMs: 5_000 });
    expect(first.tasks.brokenhook).toMatchObject({ claimed: 1, retried: 1 });
    const [job] = await db.sql`select attempts, locked_by, last_error, dead_at from private.jobs where task = 'brokenhook'`;
    expect(job).toMatchObject({ attempts: 1, locked_by: null, last_error: 'partner down', dead_at: null });
    // Its last attempt: held for its hook (its work never run again), as for contention.
    await db.sql`update private.jobs set run_at = now() where task = 'brokenhook'`;
    const second = await runJobs({ registry, tasks: ['brokenhook'], workerId: 'brokenhook-2', budgetMs: 5_000 });
    expect(second.tasks.brokenhook).toMatchObject({ claimed: 1, deferred: 1 });
    expect(runs).toBe(2);
    // Held as often as the bound allows, it ends without the hook.
    await db.sql`update private.jobs set run_at = now(), hook_holds = 30 where task = 'brokenhook'`;
    const third = await runJobs({ registry, tasks: ['brokenhook'], workerId: 'brokenhook-3', budgetMs: 5_000 });
    expect(third.tasks.brokenhook).toMatchObject({ claimed: 1, dead: 1 });
    const [dead] = await db.sql`select dead_at is not null as dead, last_error from private.jobs where task = 'brokenhook'`;
    expect(dead).toEqual({ dead: true, last_error: 'partner down' });
    expect(runs).toBe(2); // the work ran twice, its two attempts; the hook was tried each time
    expect(hooked).toBe(3);
  });

  it("a superseded job's Retry-After holds its successor back; the successor's own failure goes through its hook", async () => {
    const hooked: string[] = [];
    const { held, release, running, started } = handOverWindow();
    const registry: Registry = {
      throttled: {
        async run(job: Job<{ v: number }>) {
          started();
          await held;
          throw new JobError(`429 for ${job.payload.v}`, { retryAfterSeconds: 600 });
        },
        async failed(_tx: unknown, job: Job<{ v: number }>, outcome: string) {
          hooked.push(`${job.payload.v}: ${outcome}`);
        },
      } as never,
    };
    await db.sql`select id from private.add_job('throttled', '{"v": 1}', 'throttled-key')`;
    const run = runJobs({ registry, workerId: 'throttled-1', budgetMs: 3_000, batch: 1 });
    await running;
    const [next] = await db.sql`select id from private.add_job('throttled', '{"v": 2}', 'throttled-key')`;
    release();
    expect((await run).tasks.throttled).toMatchObject({ claimed: 1, superseded: 1 });
    const [row] = await db.sql`
      select extract(epoch from run_at - now())::float8 as wait, attempts from private.jobs where id = ${next.id}`;
    expect(row.attempts).toBe(0);
    expect(row.wait).toBeGreaterThan(590);
    expect(row.wait).toBeLessThanOrEqual(600);
    // Due now, it runs, and its failure is the domain's.
    await db.sql`update private.jobs set run_at = now() where id = ${next.id}`;
    expect((await runJobs({ registry, workerId: 'throttled-2', budgetMs: 3_000, batch: 1 })).tasks.throttled)
      .toMatchObject({ retried: 1 });
    expect(hooked).toEqual(['2: retry']);
    await db.sql`delete from private.jobs where id = ${next.id}`;
  });

  it('never claims a task the registry does not know', async () => {
    const [{ id }] = await db.sql`select id from private.add_job('not-deployed-here')`;
    const report = await runJobs({ registry: { known: { run: async () => {} } as never }, budgetMs: 2_000 });
    expect(report.claimed).toBe(0);
    expect((await db.sql`select attempts, locked_by from private.jobs where id = ${id}`)[0]).toEqual({ attempts: 0, locked_by: null });
    await db.sql`delete from private.jobs where id = ${id}`;
  });
});

describe('leases and budgets', () => {
  it('a handler that runs past its lease keeps it: the next run does not take the job, which runs once', async () => {
    let runs = 0;
    const registry: Registry = {
      slow: {
        serial: true,
        async run() {
          runs++;
          await sleep(2_200); // more than twice the 1 s lease
        },
      } as never,
    };
    const [{ id }] = await db.sql`select id from private.add_job('slow')`;
    const first = runJobs({ registry, leaseSeconds: 1, workerId: 'first', budgetMs: 10_000 });
    await sleep(1_300);
    const next = await runJobs({ registry, workerId: 'next', budgetMs: 2_000 });
    expect(next.claimed).toBe(0);
    expect(await first).toMatchObject({ claimed: 1, completed: 1, lost: 0 });
    expect(runs).toBe(1);
    expect(await db.sql`select 1 from private.jobs where id = ${id}`).toHaveLength(0);
  });

  it('a worker that stopped renewing loses the job: counted lost, run again by another worker', async () => {
    let runs = 0;
    let taken: Promise<unknown> | undefined;
    const registry: Registry = {
      stalled: {
        async run() {
          runs++;
          if (runs > 1) return;
          // As if this worker froze past its lease: the lease runs out, another worker
          // claims the job, and only then does this one go on.
          await db.sql`update private.jobs set locked_until = now() - interval '1 second' where task = 'stalled'`;
          taken = runJobs({ registry, workerId: 'other', budgetMs: 5_000 });
          await taken;
        },
      } as never,
    };
    const [{ id }] = await db.sql`select id from private.add_job('stalled')`;
    const late = await runJobs({ registry, leaseSeconds: 1, workerId: 'late', budgetMs: 10_000 });
    expect(late).toMatchObject({ claimed: 1, completed: 0, lost: 1 });
    expect(await taken).toMatchObject({ claimed: 1, completed: 1 });
    expect(runs).toBe(2);
    expect(await db.sql`select 1 from private.jobs where id = ${id}`).toHaveLength(0);
  });

  it('a run never claims a job it still holds, even once its lease has lapsed under it', async () => {
    let runs = 0;
    const registry: Registry = {
      lapsing: {
        async run(job: Job) {
          runs++;
          if (runs > 1) return;
          // As if the renewals had failed for a while: the lease runs out while the job
          // runs. The run's pool claims meanwhile (a free slot is filled within 200 ms).
          await db.sql`update private.jobs set locked_until = now() - interval '1 second' where id = ${job.id}`;
          await sleep(700);
          // The renewals back before another worker came by: the job is still this run's.
          await db.sql`update private.jobs set locked_until = now() + interval '1 minute' where id = ${job.id}`;
        },
      } as never,
    };
    const [{ id }] = await db.sql`select id from private.add_job('lapsing')`;
    const report = await runJobs({ registry, batch: 4, budgetMs: 5_000 });
    expect(runs).toBe(1);
    expect(report).toMatchObject({ claimed: 1, completed: 1, lost: 0 });
    expect(await db.sql`select 1 from private.jobs where id = ${id}`).toHaveLength(0);
  });

  it('a run that fails still completes what it finished; the serial jobs claimed beside the failing one are back, their attempt uncounted', async () => {
    const registry: Registry = {
      // Still running when the serial job fails: finished after the run stopped claiming.
      quick: { run: () => sleep(300) } as never,
      serialFails: {
        serial: true,
        run: () => Promise.reject(new JobError('this one fails')),
        // The failure cannot be recorded (the database went away meanwhile): the run fails
        // with it. (A hook's own refusal is recorded without it: below.)
        failed: () => Promise.reject(new DatabaseUnavailableError('the failure could not be recorded')),
      } as never,
    };
    for (let i = 0; i < 3; i++) await db.sql`select private.add_job('quick')`;
    for (let i = 0; i < 3; i++) await db.sql`select private.add_job('serialFails')`;
    await expect(runJobs({ registry, batch: 10, budgetMs: 5_000 })).rejects.toThrow('the failure could not be recorded');
    // The quick jobs ran: completed, not left to run again when their lease ends.
    expect(await db.sql`select 1 from private.jobs where task = 'quick'`).toHaveLength(0);
    // The serial job that ran holds its lease (its failure went unrecorded); the two claimed
    // with it went back at their claim, their attempt uncounted.
    const serial = await db.sql`select attempts, locked_by is not null as locked from private.jobs where task = 'serialFails' order by id`;
    expect(serial.map((r) => ({ ...r }))).toEqual([
      { attempts: 1, locked: true },
      { attempts: 0, locked: false },
      { attempts: 0, locked: false },
    ]);
    await db.sql`delete from private.jobs where task = 'serialFails'`;
  });

  it('a renewal neither shortens a lease nor takes back one another worker holds', async () => {
    const [{ id }] = await db.sql`select id from private.add_job('held-elsewhere')`;
    await db.sql`update private.jobs set locked_by = 'owner', locked_until = now() + interval '10 minutes', attempts = 1 where id = ${id}`;
    expect(await db.sql`select id from private.renew_job_leases('intruder', ${[id]}, 600)`).toEqual([]);
    expect(await db.sql`select id from private.renew_job_leases('owner', ${[id]}, 1)`).toHaveLength(1);
    const [row] = await db.sql`select locked_by, locked_until > now() + interval '9 minutes' as long from private.jobs where id = ${id}`;
    expect(row).toEqual({ locked_by: 'owner', long: true });
    await db.sql`update private.jobs set locked_until = now() - interval '1 second' where id = ${id}`;
    expect(await db.sql`select id from private.renew_job_leases('owner', ${[id]}, 600)`).toEqual([]);
    await db.sql`delete from private.jobs where id = ${id}`;
  });

  it("a renewal renews the leases it can at once: a job row another transaction holds is skipped, not waited for (nor does it fail the others')", async () => {
    const ids: number[] = [];
    for (const key of ['renew-held', 'renew-free']) {
      const [{ id }] = await db.sql`select id from private.add_job(${key})`;
      await db.sql`update private.jobs set locked_by = 'renewer', locked_until = now() + interval '1 minute', attempts = 1 where id = ${id}`;
      ids.push(Number(id));
    }
    const [held, free] = ids;
    const renewed = await whileHeld(
      db.sql,
      (tx) => tx`select 1 from private.jobs where id = ${held} for no key update`,
      () => db.sql`select id from private.renew_job_leases('renewer', ${ids}, 600)`.execute(),
      { waits: false },
    );
    expect(renewed.map((r) => Number(r.id))).toEqual([free]);
    const rows = await db.sql`select id, locked_until > now() + interval '9 minutes' as long from private.jobs where id in ${db.sql(ids)} order by id`;
    expect(rows.map((r) => [Number(r.id), r.long])).toEqual([[held, false], [free, true]]);
    // The next tick renews it.
    expect((await db.sql`select id from private.renew_job_leases('renewer', ${ids}, 600)`).map((r) => Number(r.id)).sort()).toEqual([...ids].sort());
    await db.sql`delete from private.jobs where id in ${db.sql(ids)}`;
  });

  it('a job whose worker stopped during every attempt ends dead, through the failure hook, instead of running for ever', async () => {
    let runs = 0;
    const hooked: string[] = [];
    const registry: Registry = {
      fragile: {
        async run() {
          runs++;
        },
        async failed(_tx: unknown, job: Job, outcome: string, error: string) {
          hooked.push(`${outcome} after ${job.attempts}: ${error}`);
        },
      } as never,
    };
    const [{ id }] = await db.sql`select id from private.add_job('fragile', '{}', null, null, 2)`;
    // Two attempts, each claimed by a worker that dies with it: the lease runs out.
    for (const worker of ['dies-1', 'dies-2']) {
      const claimed = await db.sql`select id from private.claim_due_jobs(${worker}, 10, 60, array['fragile'])`;
      expect(claimed.map((j) => j.id)).toEqual([id]);
      await db.sql`update private.jobs set locked_until = now() - interval '1 second' where id = ${id}`;
    }
    const report = await runJobs({ registry, workerId: 'third', budgetMs: 5_000 });
    expect(report).toMatchObject({ claimed: 1, dead: 1, completed: 0 });
    expect(runs).toBe(0);
    // Told the attempts made (two), not the claim's count that ran no work.
    expect(hooked).toEqual([expect.stringMatching(/^dead after 2: no attempt finished/)]);
    const [row] = await db.sql`select dead_at is not null as dead, locked_by from private.jobs where id = ${id}`;
    expect(row).toEqual({ dead: true, locked_by: null });
    await db.sql`delete from private.jobs where id = ${id}`;
  });

  it("a job whose failure hook finds its rows held elsewhere: a retry is recorded without it; an end is held for it, the work never run again, and the run goes on", async () => {
    const hooked: string[] = [];
    const told: number[] = []; // the attempts each hook was told
    let runs = 0;
    // A lock the hook must take, held by another session (a stuck transaction); the hook
    // gives up after its lock timeout (55P03), as a statement over held rows does.
    const key = 7_700_001;
    const registry: Registry = {
      contended: {
        run: (job: Job) => {
          runs++;
          return Promise.reject(
            job.payload.permanent
              ? new JobError('the partner said no', { retryable: false })
              : new JobError('the partner is busy', { retryAfterSeconds: 3600 }),
          );
        },
        async failed(tx: Tx, job: Job, outcome: string, error: string) {
          hooked.push(`${outcome}: ${error}`);
          told.push(job.attempts);
          // A newer job takes this one's key while its hook waits.
          if (job.payload.superseded) await db.sql`update private.jobs set superseded = true where id = ${job.id}`;
          await tx`select set_config('lock_timeout', '50ms', true)`;
          await tx`select pg_advisory_xact_lock(${key})`;
        },
      } as never,
      'beside-contended': { async run() {} } as never,
    };
    const [{ id: ended }] = await db.sql`select id from private.add_job('contended', '{"permanent": true}', null, null, 3)`;
    const [{ id: retried }] = await db.sql`select id from private.add_job('contended', '{"permanent": false}', null, null, 3)`;
    for (let i = 0; i < 2; i++) await db.sql`select private.add_job('beside-contended')`;
    const job = async (id: number) =>
      (await db.sql`select attempts, locked_by, dead_at is not null as dead, last_error,
                      run_at > now() + interval '50 seconds' as later, run_at > now() + interval '50 minutes' as much_later
                    from private.jobs where id = ${id}`)[0];
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select pg_advisory_xact_lock(${key})`;
      const report = await runJobs({ registry, tasks: ['contended', 'beside-contended'], budgetMs: 5_000 });
      expect(report).toMatchObject({ claimed: 4, completed: 2, retried: 1, deferred: 1, dead: 0, lost: 0 });
      expect(hooked.sort()).toEqual(['dead: the partner said no', 'retry: the partner is busy']);
      // The retry: recorded as any failure, its Retry-After kept.
      expect(await job(retried)).toMatchObject({ attempts: 1, locked_by: null, dead: false, last_error: 'the partner is busy', much_later: true });
      // The end: held for its hook, its attempts used up.
      expect(await job(ended)).toMatchObject({ attempts: 3, locked_by: null, dead: false, later: true });
      // Claimed again while the hook still cannot write: its work does not run again, only
      // its hook, told the job's own error; held again.
      await db.sql`update private.jobs set run_at = now() where id = ${ended}`;
      hooked.length = 0;
      expect(await runJobs({ registry, tasks: ['contended'], budgetMs: 5_000 })).toMatchObject({ claimed: 1, deferred: 1, dead: 0 });
      expect([runs, hooked]).toEqual([2, ['dead: the partner said no']]);
      // Held as often as it may be: it ends without its hook, its queue no longer blocked.
      const [{ id: worn }] = await db.sql`select id from private.add_job('contended', '{"permanent": true}', null, null, 3)`;
      await db.sql`update private.jobs set attempts = 3, hook_holds = 30, last_error = 'failure hook pending: worn out' where id = ${worn}`;
      expect(await runJobs({ registry, tasks: ['contended'], budgetMs: 5_000 })).toMatchObject({ claimed: 1, dead: 1, deferred: 0 });
      expect(await job(worn)).toMatchObject({ dead: true, last_error: 'worn out' });
      // An operator's retry starts it over, its holds too (20261207179000).
      await db.sql`select private.retry_job(${worn})`;
      expect((await db.sql`select attempts, hook_holds, dead_at from private.jobs where id = ${worn}`)[0]).toEqual({ attempts: 0, hook_holds: 0, dead_at: null });
      await db.sql`delete from private.jobs where id = ${worn}`;
      // A newer job took its key while its hook waited: it ends (superseded), not held.
      const [{ id: old }] = await db.sql`select id from private.add_job('contended', '{"permanent": true, "superseded": true}', null, null, 3)`;
      expect(await runJobs({ registry, tasks: ['contended'], budgetMs: 5_000 })).toMatchObject({ claimed: 1, superseded: 1, deferred: 0 });
      expect(await db.sql`select 1 from private.jobs where id = ${old}`).toEqual([]);
    } finally {
      await holder`rollback`;
      holder.release();
    }
    // The lock free again: the next claim records the end through the hook, with its error.
    await db.sql`update private.jobs set run_at = now() where id = ${ended}`;
    hooked.length = 0;
    told.length = 0;
    expect(await runJobs({ registry, tasks: ['contended'], budgetMs: 5_000 })).toMatchObject({ claimed: 1, dead: 1 });
    expect([runs, hooked]).toEqual([3, ['dead: the partner said no']]);
    expect(told).toEqual([3]); // the attempts it made, not the claim's fourth that ran none
    expect(await job(ended)).toMatchObject({ dead: true, last_error: 'the partner said no' });
    await db.sql`delete from private.jobs where id in (${ended}, ${retried})`;
  });

  it('out of time, a job that finishes while a slower one still runs is completed then, not when the run ends', async () => {
    const registry: Registry = {
      'quick-one': {
        async run() {
          await sleep(300);
        },
      } as never,
      'slow-one': {
        async run() {
          await sleep(3_000);
        },
      } as never,
    };
    const [{ id: quick }] = await db.sql`select id from private.add_job('quick-one', '{}')`;
    const [{ id: slow }] = await db.sql`select id from private.add_job('slow-one', '{}')`;
    // The budget is spent at once: both are claimed, then the run only waits for them.
    const run = runJobs({ registry, tasks: ['quick-one', 'slow-one'], schedule: false, budgetMs: 100 });
    await sleep(1_500);
    const left = (await db.sql`select id from private.jobs where id in (${quick}, ${slow})`).map((j) => j.id);
    expect(left).toEqual([slow]);
    const report = await run;
    expect(report).toMatchObject({ claimed: 2, completed: 2 });
    expect(await db.sql`select id from private.jobs where id in (${quick}, ${slow})`).toEqual([]);
  });

  it('a backlog of serial jobs runs one at a time beside the other tasks, not in every slot', async () => {
    let running = 0;
    let most = 0;
    const registry: Registry = {
      provisionLike: {
        serial: true,
        async run() {
          most = Math.max(most, ++running);
          await sleep(300);
          running--;
        },
      } as never,
      quick: {
        async run() {},
      } as never,
    };
    // Twenty serial jobs queued first (older), then five others.
    for (let i = 0; i < 20; i++) await db.sql`select private.add_job('provisionLike')`;
    for (let i = 0; i < 5; i++) await db.sql`select private.add_job('quick')`;
    const report = await runJobs({ registry, batch: 4, budgetMs: 3_000 });
    // The other tasks all ran while the serial backlog went on (about ten of its jobs fit
    // in the budget), rather than waiting behind serial jobs holding every slot.
    expect(report.tasks.quick).toMatchObject({ claimed: 5, completed: 5 });
    // ... and the serial ones still one at a time.
    expect(report.tasks.provisionLike.completed).toBeGreaterThan(0);
    expect(most).toBe(1);
    expect(await db.sql`select 1 from private.jobs where task = 'quick'`).toHaveLength(0);
    await db.sql`delete from private.jobs where task = 'provisionLike'`;
  });

  it('holds one serial job at a time: those claimed with it go back at once, so a run killed under one costs the others no attempt', async () => {
    const seen: { attempts: number; locked: boolean }[][] = [];
    const registry: Registry = {
      serialOne: {
        serial: true,
        async run(job: Job) {
          // While this one runs (a run the wall clock might kill here), the others are free
          // and their attempts as before.
          seen.push((await db.sql`select attempts, locked_by is not null as locked from private.jobs
            where task = 'serialOne' and id <> ${job.id} order by id`).map((r) => ({ ...r }) as { attempts: number; locked: boolean }));
        },
      } as never,
    };
    for (let i = 0; i < 3; i++) await db.sql`select private.add_job('serialOne')`;
    const report = await runJobs({ registry, batch: 5, budgetMs: 5_000 });
    expect(report.tasks.serialOne).toMatchObject({ completed: 3 });
    expect(seen[0]).toEqual([{ attempts: 0, locked: false }, { attempts: 0, locked: false }]);
    expect(seen.every((others) => others.every((o) => !o.locked))).toBe(true);
  });

  it('gives back at once the serial jobs claimed beside the running one, their attempt uncounted', async () => {
    const registry: Registry = {
      serial: {
        serial: true,
        async run() {
          await sleep(400);
        },
      } as never,
    };
    for (let i = 0; i < 3; i++) await db.sql`select private.add_job('serial')`;
    const report = await runJobs({ registry, batch: 3, budgetMs: 300 });
    expect(report).toMatchObject({ claimed: 3, completed: 1, released: 2 });
    const left = await db.sql`select attempts, locked_by from private.jobs where task = 'serial'`;
    expect(left).toEqual([{ attempts: 0, locked_by: null }, { attempts: 0, locked_by: null }]);
  });
});

describe('recurring jobs (private.job_schedules)', () => {
  const tick = async (name: string) => {
    await db.sql`update private.job_schedules set next_run_at = now() where name = ${name}`;
    await db.sql`select private.add_scheduled_jobs()`;
  };
  const jobOf = async (name: string) =>
    (await db.sql`select id, attempts, last_error, run_at <= now() as due, dead_at is not null as dead, locked_by
                  from private.jobs where job_key = ${`schedule:${name}`}`)[0];

  it('a failing one keeps its failures from tick to tick, and ends dead after its attempts', async () => {
    await db.sql`insert into private.job_schedules (name, task, every, next_run_at) values ('test-flaky', 'flaky-sweep', interval '1 minute', now())`;
    const registry: Registry = {
      'flaky-sweep': {
        async run() {
          throw new JobError('the sweep failed');
        },
      } as never,
    };
    try {
      await tick('test-flaky');
      await db.sql`update private.jobs set max_attempts = 3 where job_key = 'schedule:test-flaky'`;
      for (let attempt = 1; attempt <= 3; attempt++) {
        const report = await runJobs({ registry, tasks: ['flaky-sweep'], schedule: false, budgetMs: 5_000 });
        expect(report.claimed, `attempt ${attempt}`).toBe(1);
        const failed = await jobOf('test-flaky');
        expect(failed).toMatchObject({ attempts: attempt, last_error: expect.stringContaining('the sweep failed'), dead: attempt === 3 });
        if (attempt < 3) {
          // The next tick makes it due again, its attempts and error kept.
          await tick('test-flaky');
          expect(await jobOf('test-flaky')).toMatchObject({ attempts: attempt, last_error: expect.stringContaining('the sweep failed'), due: true });
        }
      }
      // The metrics show it; the next tick brings it back for a new round, its error kept.
      await tick('test-flaky');
      expect(await jobOf('test-flaky')).toMatchObject({ attempts: 0, dead: false, due: true, last_error: expect.stringContaining('the sweep failed') });
    } finally {
      await db.sql`delete from private.job_schedules where name = 'test-flaky'`;
      await db.sql`delete from private.jobs where job_key = 'schedule:test-flaky'`;
    }
  });

  it("a waiting one takes its schedule's task and payload as they are now (a migration may change them)", async () => {
    await db.sql`insert into private.job_schedules (name, task, payload, every, next_run_at)
      values ('test-renamed', 'old-sweep', '{"v": 1}', interval '1 minute', now())`;
    try {
      await tick('test-renamed');
      await db.sql`update private.jobs set run_at = now() + interval '1 hour' where job_key = 'schedule:test-renamed'`;
      await db.sql`update private.job_schedules set task = 'new-sweep', payload = '{"v": 2}' where name = 'test-renamed'`;
      await tick('test-renamed');
      const [job] = await db.sql`select task, payload, run_at <= now() as due from private.jobs where job_key = 'schedule:test-renamed'`;
      expect(job).toEqual({ task: 'new-sweep', payload: { v: 2 }, due: true });
    } finally {
      await db.sql`delete from private.job_schedules where name = 'test-renamed'`;
      await db.sql`delete from private.jobs where job_key = 'schedule:test-renamed'`;
    }
  });

  it('one whose worker crashed runs once when its lease ends: no successor queued behind it', async () => {
    await db.sql`insert into private.job_schedules (name, task, every, next_run_at) values ('test-crash', 'counted-sweep', interval '1 minute', now())`;
    let runs = 0;
    const registry: Registry = {
      'counted-sweep': {
        async run() {
          runs++;
        },
      } as never,
    };
    try {
      await tick('test-crash');
      const [{ id }] = await db.sql`select id from private.claim_due_jobs('crashed-worker', 10, 60, array['counted-sweep'])`;
      // The worker is gone; ticks come and go while its lease runs.
      await tick('test-crash');
      await tick('test-crash');
      expect((await db.sql`select id from private.jobs where task = 'counted-sweep'`).map((j) => j.id)).toEqual([id]);
      await db.sql`update private.jobs set locked_until = now() - interval '1 second' where id = ${id}`;
      for (let i = 0; i < 3; i++) await runJobs({ registry, tasks: ['counted-sweep'], schedule: false, budgetMs: 5_000 });
      expect(runs).toBe(1);
    } finally {
      await db.sql`delete from private.job_schedules where name = 'test-crash'`;
      await db.sql`delete from private.jobs where task = 'counted-sweep'`;
    }
  });
});
