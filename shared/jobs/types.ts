// The shape of a task: a handler looked up by the job's task name (shared/jobs/registry.ts),
// run by shared/jobs/runner.ts. A handler that returns completes its job; one that throws
// fails it — retried with the queue's backoff (never sooner than `retryAfterSeconds`),
// or dead at once when the error says `retryable: false` (PartnerError, JobError).
import type { Connectors } from '../connectors/index.ts';
import type { Tx } from '../db.ts';

export interface Job<P = Record<string, unknown>> {
  id: number;
  task: string;
  payload: P;
  queue: string | null;
  job_key: string | null;
  /** This attempt's number (1 on the first run). */
  attempts: number;
  max_attempts: number;
}

/** What handlers need from the deployment; every field has a default from the environment. */
export interface TaskDeps {
  /** provision: the partner connectors (default: connectorsFromEnv()). */
  connectors?: Connectors;
  /** deliver-webhook: timeout of one delivery (10 s). */
  webhookTimeoutMs?: number;
  /** chatwoot-reply: Chatwoot's URL (CHATWOOT_URL) and the call's timeout. */
  chatwootUrl?: string;
  chatwootTimeoutMs?: number;
  /** reconcile: drift checks per partner per run (DRIFT_CHECKS_PER_PARTNER, 5) and the
   *  least time between two checks of one service (DRIFT_CHECK_INTERVAL_S, 3600). */
  driftChecksPerPartner?: number;
  driftCheckIntervalS?: number;
  /** prune: how long one run keeps deleting batches before it hands the rest to the
   *  job's next run, a second later (20 s: well within the function's wall clock). */
  pruneBudgetMs?: number;
}

export interface TaskContext {
  /** The worker holding the job's lease: SQL that records progress checks it. */
  worker: string;
  deps: TaskDeps;
}

/** Counts a handler reports (summed per task in the run's report), e.g. { delivered: 1 }. */
export type TaskResult = Record<string, number | undefined>;

export interface Task<P = Record<string, unknown>> {
  /** A run holds at most one job of this task; the others a claim returns go back at
   *  once, their attempt uncounted (default: as many as the run has slots). */
  serial?: boolean;
  run(job: Job<P>, ctx: TaskContext): Promise<TaskResult | void>;
  /** Records a failure in the domain, in the transaction that fails the job and before
   *  it (domain rows are locked before the job row): `dead` when no attempt is left. */
  failed?(tx: Tx, job: Job<P>, outcome: 'retry' | 'dead', error: string, ctx: TaskContext): Promise<void>;
}

/** A task as the registry holds it, whatever its payload's type. */
export type AnyTask = Task<object>;

/** Registers a task under the registry's one type. A task declares its payload's shape
 *  (`Task<{ reply_id: number }>`); the SQL that adds its jobs (private.add_job in the
 *  migrations) is what gives payloads that shape, so the narrowing happens once, here. */
export function registered<P extends object>(task: Task<P>): AnyTask {
  const failed = task.failed;
  return {
    serial: task.serial,
    run: (job, ctx) => task.run(job as Job<P>, ctx),
    failed: failed && ((tx, job, outcome, error, ctx) => failed.call(task, tx, job as Job<P>, outcome, error, ctx)),
  };
}

/** A failure the handler classifies: permanent (dead at once) or retryable, with the
 *  earliest retry a partner asked for. */
export class JobError extends Error {
  readonly retryable: boolean;
  readonly retryAfterSeconds?: number;
  constructor(message: string, opts: { retryable?: boolean; retryAfterSeconds?: number } = {}) {
    super(message);
    this.name = 'JobError';
    this.retryable = opts.retryable ?? true;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

/** Not now, and not a failure: the job goes back untried until `seconds` from now, its
 *  attempt uncounted, still at the head of its named queue (a webhook endpoint whose
 *  breaker is open: private.webhook_endpoint_gate). */
export class JobDeferred extends Error {
  readonly seconds: number;
  constructor(seconds: number, reason: string) {
    super(reason);
    this.name = 'JobDeferred';
    this.seconds = seconds;
  }
}

/** The job's lease ran out and another worker owns it now: stop, record nothing. */
export class LeaseLost extends Error {
  constructor() {
    super('the lease on this job was lost');
    this.name = 'LeaseLost';
  }
}
