// The job runner: one run is one Edge Function invocation (POST /functions/v1/jobs/run)
// or one call from a test. It adds the recurring jobs that are due, then keeps up to
// `batch` due jobs of every registered task in hand (claimed FOR UPDATE SKIP LOCKED,
// under a lease renewed while they run; a slot that frees is filled while the others
// still run), runs each through its task's handler, completes the successes in the
// statement that claims the next jobs, fails the others one by one (backoff, dead, or
// ended when a newer job took its key),
// and stops claiming when the queue is empty or its time budget is spent — an Edge
// Function has 150 s of wall clock and about 2 s of CPU per request. Queue bookkeeping is one autocommit statement each
// (definer functions); handlers open their own service transactions, and no
// transaction is held across a handler's outside calls.
import { asService, connectionFailure, db } from '../db.ts';
import { tasks as defaultRegistry } from './registry.ts';
import {
  type AnyTask,
  type Job,
  JobDeferred,
  JobError,
  LeaseLost,
  type TaskContext,
  type TaskDeps,
  type TaskResult,
} from './types.ts';

export type Registry = Record<string, AnyTask>;

export interface RunOptions {
  workerId?: string;
  /** Jobs running at once (1–100). */
  batch?: number;
  /** Stop claiming after this long. */
  budgetMs?: number;
  /** The lease on each claimed job, renewed while the run holds it: a job whose worker
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
  deferred: number;
  superseded: number;
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
  deferred: number;
  superseded: number;
  released: number;
  ms: number;
  tasks: Record<string, TaskReport>;
}

type Outcome = 'completed' | 'retried' | 'dead' | 'lost' | 'deferred' | 'superseded';

/** Whole seconds, from `floor` to a day: what fail_job and defer_job take (an int, capped
 *  at a day), so a handler's number never fails the statement that records it. */
function withinADay(seconds: number, floor: number): number {
  return Math.min(86_400, Math.max(floor, Math.ceil(seconds)));
}

function errorInfo(err: unknown): { message: string; permanent: boolean; retryAfter: number | null } {
  const e = err as { message?: unknown; retryable?: unknown; retryAfterSeconds?: unknown };
  const message = typeof e?.message === 'string' && e.message ? e.message : String(err);
  const retryAfter = typeof e?.retryAfterSeconds === 'number' && Number.isFinite(e.retryAfterSeconds)
    ? withinADay(e.retryAfterSeconds, 0)
    : null;
  return { message: message.slice(0, 2000), permanent: e?.retryable === false, retryAfter };
}

class Lost extends Error {}
/** A failure hook ran for a job that turned out superseded (runJobs' fail). */
class HookedSuperseded extends Error {}
/** A failure hook that could not write for contention: its rows held by another session
 *  past the lock timeout (55P03), a statement timeout (57014), a deadlock (40P01) or a
 *  serialization failure (40001). */
class HookContended extends Error {}
const CONTENTION = new Set(['55P03', '57014', '40P01', '40001']);
/** A failure hook that failed otherwise (a refusal, a check, a bug in it; not the
 *  database going away, which fails the run). */
class HookFailed extends Error {}

export async function runJobs(opts: RunOptions = {}): Promise<RunReport> {
  const started = Date.now();
  const registry = opts.registry ?? defaultRegistry;
  const worker = opts.workerId ?? `worker-${crypto.randomUUID()}`;
  const budget = opts.budgetMs ?? 50_000;
  const batch = Math.min(Math.max(opts.batch ?? 10, 1), 100);
  const leaseSeconds = opts.leaseSeconds ?? 120;
  const names = opts.tasks ?? Object.keys(registry);
  /** The tasks a claim asks for while the run holds a serial job. */
  const nonSerial = names.filter((name) => !registry[name]?.serial);
  const ctx: TaskContext = { worker, deps: opts.deps ?? {} };
  const report: RunReport = {
    worker,
    scheduled: 0,
    claimed: 0,
    completed: 0,
    retried: 0,
    dead: 0,
    lost: 0,
    deferred: 0,
    superseded: 0,
    released: 0,
    ms: 0,
    tasks: {},
  };
  const taskReport = (task: string) =>
    report.tasks[task] ??= { claimed: 0, completed: 0, retried: 0, dead: 0, lost: 0, deferred: 0, superseded: 0 };
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
    const predicted = permanent || job.attempts >= job.max_attempts ? 'dead' : 'retry';
    const outcomeOf = (o: 'retry' | 'dead' | 'superseded'): Outcome => o === 'retry' ? 'retried' : o;
    // A job claimed past its last attempt (held for its hook, or its worker lost every
    // time) made max_attempts attempts: its claim counted one more that runs no work.
    const attemptsMade = job.attempts > job.max_attempts ? { ...job, attempts: job.max_attempts } : job;
    // A job whose key a newer job took (private.add_job) ends here and its failure is not
    // the domain's: the newer job, with the current payload, has yet to run. Asked before
    // the hook (domain rows are locked before the job's), the answer may turn to
    // superseded before fail_job locks the job: then what the hook wrote is rolled back and
    // the job failed again without it.
    const failOnce = (hook: boolean) =>
      asService(null, async (tx) => {
        const hooked = hook && !!task?.failed &&
          (await tx`select private.job_superseded(${job.id}) as s`)[0].s !== true;
        if (hooked) {
          await task!.failed!(tx, attemptsMade, predicted, message, ctx).catch((e: unknown) => {
            // The database gone is the run's failure, as anywhere; the hook's own refusal is not.
            if (connectionFailure(e)) throw e;
            throw CONTENTION.has((e as { code?: unknown })?.code as string)
              ? new HookContended((e as Error).message)
              : new HookFailed((e as Error)?.message ?? String(e));
          });
        }
        const [{ o }] = await tx`select private.fail_job(${worker}, ${job.id}, ${message}, ${retryAfter}, ${permanent}) as o`;
        if (o === 'lost') throw new Lost(); // rolls back what the hook wrote
        if (o === 'superseded' && hooked) throw new HookedSuperseded(); // and so does this
        return o as 'retry' | 'dead' | 'superseded';
      });
    try {
      const outcome = await failOnce(true).catch((e) => {
        if (e instanceof HookedSuperseded) return failOnce(false);
        throw e;
      });
      return outcomeOf(outcome);
    } catch (e) {
      if (e instanceof Lost || e instanceof LeaseLost) return 'lost';
      // A hook that failed otherwise (a refusal, a check, a bug: the same way every
      // time) is treated alike: rethrown, it left the job locked with nothing recorded,
      // its work run again at every claim, never dying, failing every run that claimed it.
      if (!(e instanceof HookContended) && !(e instanceof HookFailed)) throw e;
      // The hook's rows are held elsewhere (a stuck session, a long transaction). A failure
      // that would retry is recorded as any is, without the hook (it runs at the next
      // failure): backoff, Retry-After and error kept. One that would end the job is held
      // for its hook (20261207173000): its error recorded, its attempts used up, back in a
      // minute, when its claim runs the hook alone with that error — its work never runs
      // again; at most 30 times, then it ends without the hook. Failing the run instead
      // stopped a run at every claim; dying at once without the hook would leave what it
      // records (a service failed, a delivery given up) unsaid.
      console.error(`[jobs] ${job.task} #${job.id}: its failure hook could not write (${(e as Error).message})`);
      try {
        if (predicted === 'dead') {
          const [{ held }] = await db()`select private.hold_job_for_its_hook(${worker}, ${job.id}, ${message}) as held`;
          if (held) return 'deferred';
          // Not held: superseded (a newer job of its key ends it), held 30 times already
          // (20261207175000: its queue is not blocked for ever), or no longer this run's.
        }
        return outcomeOf(await failOnce(false));
      } catch (again) {
        if (again instanceof Lost || again instanceof LeaseLost) return 'lost';
        throw again;
      }
    }
  };

  let done: Job[] = []; // finished, to complete with the next claim

  // Runs one job; successes wait in `done` to be completed with the next claim.
  const runOne = async (job: Job) => {
    const task = registry[job.task];
    try {
      if (!task) throw new Error(`no handler for task ${job.task}`);
      // Claimed again after its last attempt's lease ran out (a worker killed or frozen
      // every time: fail_job never ran): dead now, through the task's failure hook,
      // rather than retried for ever.
      if (job.attempts > job.max_attempts) {
        // Or held for its hook, which could not write when the job failed: that failure.
        const [{ held }] = await db()`select private.held_job_error(${worker}, ${job.id}) as held`;
        throw new JobError(
          held ?? `no attempt finished: the worker stopped during each of the ${job.max_attempts} attempts`,
          { retryable: false },
        );
      }
      const result = await task.run(job, ctx);
      done.push(job);
      if (result) addCounts(taskReport(job.task), result);
    } catch (err) {
      if (err instanceof JobDeferred) {
        // Bounded as a retry's wait is; a delay that is not a number waits a second.
        const seconds = Number.isNaN(err.seconds) ? 1 : withinADay(err.seconds, 1);
        const [{ ok }] = await db()`select private.defer_job(${worker}, ${job.id}, ${seconds}) as ok`;
        return count(job, ok ? 'deferred' : 'lost');
      }
      count(job, err instanceof LeaseLost ? 'lost' : await fail(job, err));
    }
  };

  const settle = (done: Job[], completedIds: number[]) => {
    const completed = new Set(completedIds);
    for (const job of done) count(job, completed.has(job.id) ? 'completed' : 'lost');
  };

  // A pool of `batch` slots rather than batch after batch: a slot that frees is filled
  // again while the others still run, so one slow job (a receiver that hangs until its
  // timeout, a partner taking its time) holds one slot, not the whole run. Claims are
  // grouped: another is made when half the slots are free, or when a slot is free
  // REFILL_MS after the last claim (IDLE_MS after one that found nothing, so a run
  // waiting on a slow job does not poll an empty queue), or when nothing is held. Each
  // claim also completes the successes since the last one: one statement, one commit,
  // and never hands back a job the run holds, running or finished and being completed
  // (p_held: a lease lapsed under a job still running goes to another worker, not to a
  // second copy here).
  const held = new Map<number, Promise<void>>(); // claimed and not finished
  const release: number[] = [];
  let failure: { error: unknown } | null = null;
  // Serial tasks' jobs run one at a time: a run holds at most one of them. While it does,
  // a claim asks for the other tasks only, and a claim that returns several gives the
  // others back at once, their attempt uncounted. A serial job held waiting its turn
  // would have its attempt counted by its claim and, were the run killed (a wall clock
  // reached under a job that hangs), lose it unrun: each kill, every waiting job an
  // attempt, until they died without running. A backlog of serial jobs (a bulk plan
  // change queues hundreds of provision jobs) runs one at a time beside the other tasks.
  let serialHeld = 0;
  let ended = 0; // held jobs ended so far
  let finished: (() => void) | null = null; // wakes the loop when a held job ends
  const outOfTime = () => Date.now() - started >= budget;

  const start = (job: Job) => {
    const serial = Boolean(registry[job.task]?.serial);
    if (serial) serialHeld++;
    held.set(
      job.id,
      runOne(job).catch((error: unknown) => void (failure ??= { error })).finally(() => {
        if (serial) serialHeld--;
        held.delete(job.id);
        ended++;
        finished?.();
      }),
    );
  };
  /** Until a held job ends, or `ms` have passed. */
  const progress = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      finished = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => finished = null);

  // The leases of the jobs the run holds (running, or finished
  // and waiting for the next claim to complete them) are renewed while it holds them.
  const stopRenewing = renewLeases(worker, () => [...held.keys(), ...done.map((j) => j.id)], leaseSeconds, started);
  try {
    let lastClaim = 0;
    let lastFoundNone = false;
    while (!failure && !outOfTime()) {
      const endedBefore = ended;
      const free = batch - held.size;
      const since = Date.now() - lastClaim;
      if (
        !held.size ||
        (free > 0 && (lastFoundNone ? since >= IDLE_MS : free >= Math.ceil(batch / 2) || since >= REFILL_MS))
      ) {
        const completing = done;
        const completingIds = completing.map((j) => j.id);
        done = [];
        let rows: (Job & { completed: boolean })[];
        try {
          rows = await db()<Job & { completed: boolean }>`
            select * from private.claim_due_jobs(${worker}, ${free}, ${leaseSeconds}, ${serialHeld ? nonSerial : names}, ${
            completingIds.length ? completingIds : null
          }, ${held.size || completingIds.length ? [...held.keys(), ...completingIds] : null})`;
        } catch (error) {
          // Not completed: they are completed at the end of the run, as far as it can.
          done = [...completing, ...done];
          failure = { error };
          break;
        }
        lastClaim = Date.now();
        settle(completing, rows.filter((r) => r.completed).map((r) => r.id));
        const jobs = rows.filter((r) => !r.completed);
        if (!jobs.length && !held.size) break; // the queue is empty and nothing runs
        lastFoundNone = !jobs.length;
        report.claimed += jobs.length;
        // One serial job at a time: the others claimed with it go back at once, before any
        // job starts (so none runs while they are still held).
        let serialTaken = serialHeld > 0;
        const extra: number[] = [];
        const starting: Job[] = [];
        for (const job of jobs) {
          taskReport(job.task).claimed++;
          if (registry[job.task]?.serial) {
            if (serialTaken) {
              extra.push(job.id);
              continue;
            }
            serialTaken = true;
          }
          starting.push(job);
        }
        if (extra.length) {
          try {
            report.released += (await db()`select private.release_jobs(${worker}, ${extra}) as n`)[0].n as number;
          } catch (error) {
            release.push(...extra, ...starting.map((j) => j.id)); // given back at the end of the run, as far as it can
            failure = { error };
            break;
          }
        }
        for (const job of starting) start(job);
      }
      // Unless a job ended meanwhile (its wake-up would be lost), wait for one to end, or
      // for the time of the next claim; with every slot taken, only for a job to end.
      const busy = held.size >= batch; // every slot taken
      const next = busy ? started + budget : lastClaim + (lastFoundNone ? IDLE_MS : REFILL_MS);
      if (ended === endedBefore) await progress(Math.max(10, next - Date.now()));
    }
    // Out of time or failed: no more claims; what is held finishes, and what finishes
    // meanwhile is completed as it ends, not when the last one does. A job claimed late
    // may outrun the function's wall clock: killed under it, the run would leave the
    // finished ones uncompleted, to run again once their lease lapsed.
    while (held.size) {
      const endedBefore = ended;
      if (done.length && !failure) {
        const completing = done;
        done = [];
        try {
          const completed = await db()`select id from private.complete_jobs(${worker}, ${completing.map((j) => j.id)})`;
          settle(completing, completed.map((r) => r.id));
        } catch (error) {
          done = [...completing, ...done]; // tried again at the end of the run
          failure = { error };
        }
      }
      if (held.size && ended === endedBefore) await progress(REFILL_MS);
    }
  } finally {
    stopRenewing();
  }
  // Even after a failure, what finished is completed and what was not started goes back:
  // otherwise both would wait out their lease, and the finished jobs would run again.
  let endFailure = failure;
  if (done.length) {
    try {
      const completed = await db()`select id from private.complete_jobs(${worker}, ${done.map((j) => j.id)})`;
      settle(done, completed.map((r) => r.id));
    } catch (error) {
      endFailure ??= { error };
    }
  }
  if (release.length) {
    try {
      report.released += (await db()`select private.release_jobs(${worker}, ${release}) as n`)[0].n as number;
    } catch (error) {
      endFailure ??= { error };
    }
  }
  if (endFailure) throw endFailure.error;
  report.ms = Date.now() - started;
  return report;
}

/** How long after a claim a free slot waits for others to free before it is filled
 *  alone: claims are grouped (one statement for several jobs) without letting a slow job
 *  starve the pool. */
const REFILL_MS = 200;
/** The same after a claim that found nothing due: the queue is polled once a second at
 *  most while the run waits on jobs it holds. */
const IDLE_MS = 1_000;

/** How long a run keeps renewing its leases at most: far past any platform's wall clock
 *  for one invocation (150 s on Supabase, 400 s on paid plans), so only a handler that
 *  hangs for good lets its job go to another worker. */
const MAX_HOLD_MS = 15 * 60_000;

/** Renews the lease of the jobs the run holds (`ids()`: running, or finished and not yet
 *  completed) every third of the lease, so a job that takes longer than its lease (a slow
 *  partner) is not claimed by the next run while this one is still in it; a lease runs
 *  out only when its worker stops. Returns the function that stops the renewals. A
 *  renewal that fails (the database away for a moment) is tried again at the next tick;
 *  a job whose lease was lost meanwhile stays lost (its handler finds out when it
 *  records anything). */
function renewLeases(worker: string, ids: () => number[], leaseSeconds: number, started: number): () => void {
  let inFlight = false;
  const timer = setInterval(() => {
    const held = ids();
    if (inFlight || !held.length || Date.now() - started > MAX_HOLD_MS) return;
    inFlight = true;
    db()`select id from private.renew_job_leases(${worker}, ${held}, ${leaseSeconds})`
      .catch((err: unknown) => console.error(`[jobs] ${worker}: could not renew leases: ${(err as Error).message}`))
      .finally(() => inFlight = false);
  }, Math.max(100, (leaseSeconds * 1000) / 3));
  return () => clearInterval(timer);
}

function addCounts(into: TaskReport, result: TaskResult) {
  for (const [k, v] of Object.entries(result)) {
    if (typeof v === 'number' && !['claimed', 'completed', 'retried', 'dead', 'lost', 'deferred'].includes(k)) {
      into[k] = (into[k] ?? 0) + v;
    }
  }
}
