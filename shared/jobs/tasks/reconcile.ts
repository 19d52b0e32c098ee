// reconcile (every ten minutes, private.job_schedules): re-queues `provision` for
// services whose known state drifted from the desired one and that have no live job
// (private.reconcile_tenant_services).
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const reconcile: Task = {
  async run() {
    const queued = await asService(
      null,
      async (tx) => (await tx`select private.reconcile_tenant_services() as n`)[0].n as number,
    );
    return { queued };
  },
};
