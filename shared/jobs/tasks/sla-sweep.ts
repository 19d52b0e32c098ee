// sla-sweep (every minute, private.job_schedules): marks each SLA breach once, escalates
// open or pending tickets, writes a system message and a timeline event
// (private.run_sla_sweep).
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const slaSweep: Task = {
  async run() {
    const breaches = await asService(null, async (tx) => (await tx`select private.run_sla_sweep() as n`)[0].n as number);
    return { breaches };
  },
};
