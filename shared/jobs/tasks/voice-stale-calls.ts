// voice-stale-calls (every minute, private.job_schedules): ends provisionally the calls
// whose end event never came — ringing for 15 minutes, or in progress with no event for
// 4 hours — so they stop counting as live; the provider's late end still replaces it
// (private.run_voice_stale_call_sweep). And drops the call events held for a start that
// did not come within 10 minutes (private.prune_voice_early_events). The two in their own
// transactions, each run whatever the other did; either failing fails the run (retried
// next minute). Result: { ended, early_events_dropped }.
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const voiceStaleCalls: Task = {
  async run() {
    const steps = await Promise.allSettled([
      asService(null, async (tx) => (await tx`select private.run_voice_stale_call_sweep() as n`)[0].n as number),
      asService(null, async (tx) => (await tx`select private.prune_voice_early_events() as n`)[0].n as number),
    ]);
    const [ended, early_events_dropped] = steps.map((step) => {
      if (step.status === 'rejected') throw step.reason;
      return step.value;
    });
    return { ended, early_events_dropped };
  },
};
