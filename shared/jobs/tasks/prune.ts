// prune (daily, private.job_schedules): drops webhook history older than 30 days — the
// inbox, finished deliveries with their events and attempts, replies sent or given up
// (private.prune_webhook_history); pending deliveries stay whatever their age —, dead
// jobs 30 days after they died (private.prune_dead_jobs), and deleted calls' tombstones
// after 30 days (private.prune_voice_call_tombstones: the provider's events for the
// call are dropped until then). It also queues the upload check of any attachment still
// pending past its upload URL without one (private.queue_missing_attachment_checks:
// registrations from before the checks existed), and drops Idempotency-Keys past their
// 24 hours (private.prune_idempotency_keys: a key expired only when sent again).
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const prune: Task = {
  async run() {
    return await asService(null, async (tx) => {
      const [{ pruned, dead_jobs, call_tombstones, attachment_checks, idempotency_keys }] = await tx<
        { pruned: number; dead_jobs: number; call_tombstones: number; attachment_checks: number; idempotency_keys: number }
      >`
        select private.prune_webhook_history() as pruned, private.prune_dead_jobs() as dead_jobs,
          private.prune_voice_call_tombstones() as call_tombstones,
          private.queue_missing_attachment_checks() as attachment_checks,
          private.prune_idempotency_keys() as idempotency_keys`;
      return { pruned, dead_jobs, call_tombstones, attachment_checks, idempotency_keys };
    });
  },
};
