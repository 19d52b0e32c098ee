// prune (daily, private.job_schedules): drops webhook history older than 30 days — the
// inbox, finished deliveries with their events and attempts, replies sent or given up
// (private.prune_webhook_history); pending deliveries stay whatever their age.
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const prune: Task = {
  async run() {
    const pruned = await asService(null, async (tx) => (await tx`select private.prune_webhook_history() as n`)[0].n as number);
    return { pruned };
  },
};
