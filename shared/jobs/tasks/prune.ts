// prune (daily, private.job_schedules): drops webhook history older than 30 days — the
// inbox, finished deliveries with their events and attempts, replies sent or given up
// (private.prune_webhook_history); pending deliveries stay whatever their age —, dead
// jobs 30 days after they died (private.prune_dead_jobs), and deleted calls' tombstones
// after 30 days (private.prune_voice_call_tombstones: the provider's events for the
// call are dropped until then). It also queues the upload check of any attachment still
// pending past its upload URL without one (private.queue_missing_attachment_checks:
// registrations from before the checks existed), and drops Idempotency-Keys past their
// 24 hours (private.prune_idempotency_keys: a key expired only when sent again). And it
// retires API keys past their expiry (private.retire_expired_api_keys: revoked as of
// their expires_at), which otherwise kept their places in the plan's api_keys limit.
//
// Each pruner deletes at most a batch (5,000 rows a table) and the batches run a
// transaction each, again while they find rows (20261207170000): a backlog in one
// transaction could outlast the function's wall clock, be killed and roll back every
// day. A backlog larger than one run's budget is left to the job run again a second
// later (deferred: no attempt counted).
import { asService } from '../../db.ts';
import { JobDeferred, type Task } from '../types.ts';

const BUDGET_MS = 20_000;

type Counts = {
  pruned: number;
  dead_jobs: number;
  call_tombstones: number;
  idempotency_keys: number;
  expired_api_keys: number;
};

export const prune: Task = {
  async run(_job, { deps }) {
    const until = Date.now() + (deps.pruneBudgetMs ?? BUDGET_MS);
    const [{ attachment_checks }] = await asService(
      null,
      (tx) => tx<{ attachment_checks: number }>`select private.queue_missing_attachment_checks() as attachment_checks`,
    );
    const total: Counts = { pruned: 0, dead_jobs: 0, call_tombstones: 0, idempotency_keys: 0, expired_api_keys: 0 };
    for (;;) {
      const [batch] = await asService(null, (tx) =>
        tx<Counts>`
          select private.prune_webhook_history() as pruned, private.prune_dead_jobs() as dead_jobs,
            private.prune_voice_call_tombstones() as call_tombstones,
            private.prune_idempotency_keys() as idempotency_keys,
            private.retire_expired_api_keys(null) as expired_api_keys`);
      for (const key of Object.keys(total) as (keyof Counts)[]) total[key] += batch[key];
      if (Object.values(batch).every((n) => n === 0)) break;
      if (Date.now() >= until) {
        console.log(`[prune] out of time after ${JSON.stringify(total)}: the rest in the next run`);
        throw new JobDeferred(1, 'more history to prune than one run deletes');
      }
    }
    return { ...total, attachment_checks };
  },
};
