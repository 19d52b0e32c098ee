// The job runner: one run is one Edge Function invocation (POST /functions/v1/jobs/run)
// or one call from a test. It adds the recurring jobs that are due, then claims small
// batches of due jobs of every registered task (FOR UPDATE SKIP LOCKED, under a lease
// renewed while they run),
// runs each through its task's handler, completes the batch's successes in the
// statement that claims the next batch, fails the others one by one (backoff or dead),
// and stops claiming when the queue is empty or its time budget is spent — an Edge
// Function has 150 s of wall clock and about 2 s of CPU per request. Queue bookkeeping is one autocommit statement each
// (definer functions); handlers open their own service transactions, and no
// transaction is held across a handler's outside calls.
import { asService, db } from '../db.ts';
import { tasks as defaultRegistry } from './registry.ts';
import { type AnyTask, type Job, JobError, LeaseLost, type TaskContext, type TaskDeps, type TaskResult } from './types.ts';

export type Registry = Record<string, AnyTask>;

export interface RunOptions {
  workerId?: string;
  /** Jobs per claim (1–100). */
  batch?: number;
  /** Stop claiming after this long. */
  budgetMs?: number;
  /** The lease on each claimed batch, renewed while the batch runs: a job whose worker
   *  stopped for this long may run elsewhere. */
  leaseSeconds?: number;
  /** Only these tasks (default: every task of the registry). */
  tasks?: string[];
  /** Add the recurring jobs that are due first (default: when `tasks` is not given). */
  schedule?: boolean;
  registry?: Registry;
  deps?: TaskDeps;
}

export interface TaskReport {
  claimed: number;
  completed: number;
  retried: number;
  dead: number;
  lost: number;
  [count: string]: number;
}

export interface RunReport {
  worker: string;
  scheduled: number;
  claimed: number;
  completed: number;
  retried: number;
  dead: number;
  lost: number;
  released: number;
  ms: number;
  tasks: Record<string, TaskReport>;
}

type Outcome = 'completed' | 'retried' | 'dead' | 'lost';

function errorInfo(err: unknown): { message: string; permanent: boolean; retryAfter: number | null } {
  const e = err as { message?: unknown; retryable?: unknown; retryAfterSeconds?: unknown };
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  // At most a day (fail_job takes an int and caps at a day too): a task's error must not
  // overflow the statement that records it, which would fail the whole run's batch.
  const retryAfter = typeof e?.retryAfterSeconds === 'number' && Number.isFinite(e.retryAfterSeconds)
    ? Math.min(86_400, Math.max(0, Math.ceil(e.retryAfterSeconds)))
    : null;
  return { message: message.slice(0, 2000), permanent: e?.retryable === false, retryAfter };
}

class Lost extends Error {}

export async function runJobs(opts: RunOptions = {}): Promise<RunReport> {
  const started = Date.now();
  const registry = opts.registry ?? defaultRegistry;
  const worker = opts.workerId ?? `worker-${crypto.randomUUID()}`;
  const budget = opts.budgetMs ?? 50_000;
  const batch = Math.min(Math.max(opts.batch ?? 10, 1), 100);
  const leaseSeconds = opts.leaseSeconds ?? 120;
  const names = opts.tasks ?? Object.keys(registry);
  const ctx: TaskContext = { worker, deps: opts.deps ?? {} };
  const report: RunReport = {
    worker,
    scheduled: 0,
    claimed: 0,
    completed: 0,
    retried: 0,
    dead: 0,
    lost: 0,
    released: 0,
    ms: 0,
    tasks: {},
  };
  const taskReport = (task: string) => report.tasks[task] ??= { claimed: 0, completed: 0, retried: 0, dead: 0, lost: 0 };
  const count = (job: Job, outcome: Outcome) => {
    report[outcome]++;
    taskReport(job.task)[outcome]++;
  };

  if (opts.schedule ?? !opts.tasks) {
    report.scheduled = (await db()`select private.add_scheduled_jobs() as n`)[0].n as number;
  }

  const fail = async (job: Job, err: unknown): Promise<Outcome> => {
    const { message, permanent, retryAfter } = errorInfo(err);
    const task = registry[job.task];
    try {
      const outcome = await asService(null, async (tx) => {
        const predicted = permanent || job.attempts >= job.max_attempts ? 'dead' : 'retry';
        if (task?.failed) await task.failed(tx, job, predicted, message, ctx);
        const [{ o }] = await tx`select private.fail_job(${worker}, ${job.id}, ${message}, ${retryAfter}, ${permanent}) as o`;
        if (o === 'lost') throw new Lost(); // rolls back what the hook wrote
        return o as 'retry' | 'dead';
      });
      return outcome === 'retry' ? 'retried' : 'dead';
    } catch (e) {
      if (e instanceof Lost || e instanceof LeaseLost) return 'lost';
      throw e;
    }
  };

  // Runs one job; successes wait in `done` for the batch's completion.
  const runOne = async (job: Job, done: Job[]) => {
    const task = registry[job.task];
    try {
      if (!task) throw new Error(`no handler for task ${job.task}`);
      // Claimed again after its last attempt's lease ran out (a worker killed or frozen
      // every time: fail_job never ran): dead now, through the task's failure hook,
      // rather than retried for ever.
      if (job.attempts > job.max_attempts) {
        throw new JobError(`no attempt finished: the worker stopped during each of the ${job.max_attempts} attempts`, {
          retryable: false,
        });
      }
      const result = await task.run(job, ctx);
      done.push(job);
      if (result) addCounts(taskReport(job.task), result);
    } catch (err) {
      count(job, err instanceof LeaseLost ? 'lost' : await fail(job, err));
    }
  };

  const settle = (done: Job[], completedIds: number[]) => {
    const completed = new Set(completedIds);
    for (const job of done) count(job, completed.has(job.id) ? 'completed' : 'lost');
  };

  // Each claim also completes the previous batch's successes: one statement, one commit
  // per batch.
  let done: Job[] = [];
  for (;;) {
    if (Date.now() - started >= budget) {
      if (done.length) {
        settle(done, (await db()`select id from private.complete_jobs(${worker}, ${done.map((j) => j.id)})`).map((r) => r.id));
      }
      break;
    }
    const rows = await db()<Job & { completed: boolean }>`
      select * from private.claim_jobs(${worker}, ${batch}, ${leaseSeconds}, ${names}, ${
      done.length ? done.map((j) => j.id) : null
    })`;
    settle(done, rows.filter((r) => r.completed).map((r) => r.id));
    const jobs = rows.filter((r) => !r.completed);
    done = [];
    if (!jobs.length) break;
    report.claimed += jobs.length;
    for (const job of jobs) taskReport(job.task).claimed++;
    const release: number[] = [];
    const serial = jobs.filter((j) => registry[j.task]?.serial);
    const stopRenewing = renewLeases(worker, jobs.map((j) => j.id), leaseSeconds, started);
    try {
      await Promise.all([
        ...jobs.filter((j) => !registry[j.task]?.serial).map((j) => runOne(j, done)),
        (async () => {
          for (const job of serial) {
            // Out of time: the jobs not started go back at once, their attempt uncounted.
            if (Date.now() - started >= budget) release.push(job.id);
            else await runOne(job, done);
          }
        })(),
      ]);
    } finally {
      stopRenewing();
    }
    if (release.length) {
      report.released += (await db()`select private.release_jobs(${worker}, ${release}) as n`)[0].n as number;
    }
  }
  report.ms = Date.now() - started;
  return report;
}

/** How long a run keeps renewing its leases at most: far past any platform's wall clock
 *  for one invocation (150 s on Supabase, 400 s on paid plans), so only a handler that
 *  hangs for good lets its job go to another worker. */
const MAX_HOLD_MS = 15 * 60_000;

/** Renews the lease of a batch's jobs every third of the lease while they run, so a job
 *  that takes longer than its lease (a serial job started late in its batch, a slow
 *  partner) is not claimed by the next run while this one is still in it; a lease runs
 *  out only when its worker stops. Returns the function that stops the renewals. A
 *  renewal that fails (the database away for a moment) is tried again at the next tick;
 *  a job whose lease was lost meanwhile stays lost (its handler finds out when it
 *  records anything). */
function renewLeases(worker: string, ids: number[], leaseSeconds: number, started: number): () => void {
  let inFlight = false;
  const timer = setInterval(() => {
    if (inFlight || Date.now() - started > MAX_HOLD_MS) return;
    inFlight = true;
    db()`select id from private.renew_job_leases(${worker}, ${ids}, ${leaseSeconds})`
      .catch((err: unknown) => console.error(`[jobs] ${worker}: could not renew leases: ${(err as Error).message}`))
      .finally(() => inFlight = false);
  }, Math.max(100, (leaseSeconds * 1000) / 3));
  return () => clearInterval(timer);
}

function addCounts(into: TaskReport, result: TaskResult) {
  for (const [k, v] of Object.entries(result)) {
    if (typeof v === 'number' && !['claimed', 'completed', 'retried', 'dead', 'lost'].includes(k)) into[k] = (into[k] ?? 0) + v;
  }
}
