// automation-sweep (every minute, private.job_schedules): adds the evaluation jobs of
// time-based rules that have come due — tickets pending for the rule's business time,
// or waiting on the customer's reply for the rule's time (private.run_automation_sweep).
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const automationSweep: Task = {
  async run() {
    const queued = await asService(null, async (tx) => (await tx`select private.run_automation_sweep() as n`)[0].n as number);
    return { queued };
  },
};
