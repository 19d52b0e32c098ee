// prune (daily, private.job_schedules): drops webhook history older than 30 days — the
// inbox, finished deliveries with their events and attempts, replies sent or given up
// (private.prune_webhook_history); pending deliveries stay whatever their age — and
// dead jobs 30 days after they died (private.prune_dead_jobs).
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const prune: Task = {
  async run() {
    return await asService(null, async (tx) => {
      const [{ pruned, dead_jobs }] = await tx<{ pruned: number; dead_jobs: number }>`
        select private.prune_webhook_history() as pruned, private.prune_dead_jobs() as dead_jobs`;
      return { pruned, dead_jobs };
    });
  },
};
