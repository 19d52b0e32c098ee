// voice-stale-calls (every minute, private.job_schedules): ends provisionally the calls
// whose end event never came — ringing for 15 minutes, or in progress with no event for
// 4 hours — so they stop counting as live; the provider's late end still replaces it
// (private.run_voice_stale_call_sweep).
import { asService } from '../../db.ts';
import type { Task } from '../types.ts';

export const voiceStaleCalls: Task = {
  async run() {
    const ended = await asService(
      null,
      async (tx) => (await tx`select private.run_voice_stale_call_sweep() as n`)[0].n as number,
    );
    return { ended };
  },
};
