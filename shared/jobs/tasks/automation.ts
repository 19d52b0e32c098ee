// automation (added in the transaction of a ticket change, a message or an SLA breach
// when the tenant has an active rule for that event; by the automation sweep for
// time-based rules — 20261202140000_automation_rules.sql): evaluates the tenant's rules
// for the event and applies the matching ones, each as its own actor, all in one
// transaction (private.run_automation). Jobs of one ticket share a queue, so its events
// are evaluated in commit order. A refused action is recorded on the rule's runs and
// completes the job; only a failure of the evaluation itself retries it, and then
// nothing of it was kept.
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

/** Rules applied and failed; `stopped` when the chain of rules behind the event was too long. */
type Counts = { applied: number; failed: number; stopped?: number };

export const automation: Task<{ tenant_id: string; ticket_id: string; event: string }> = {
  async run(job) {
    return await asService(
      job.payload.tenant_id,
      async (tx) => (await tx<{ counts: Counts }>`select private.run_automation(${tx.json(job.payload)}) as counts`)[0].counts,
    );
  },
};
