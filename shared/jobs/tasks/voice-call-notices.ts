// voice-call-notices: the `call.deleted` events of a large delete of calls
// (20261204121000_voice_call_deleted_notices.sql). Sending them in the deleting
// transaction holds locks per event and per delivery until it commits, and a delete of
// thousands of calls filled the server's shared lock table; so the calls' delete trigger
// sends a statement's notices itself only while they fit 500 locks, and queues the rest
// as these jobs of at most 500 calls. Each sends what fits 500 locks in its own
// transaction (at least one) and queues the rest. Result: this batch's counts.
import { asService } from '../../db.ts';
import { LeaseLost, type Task } from '../types.ts';

interface NoticesJob {
  tenant_id: string;
  call_ids: string[];
}

export const voiceCallNotices: Task<NoticesJob> = {
  async run(job, { worker }) {
    // At most once per job, under its lease (as voice-erasure-trail).
    const [{ batch }] = await asService(
      job.payload.tenant_id,
      (tx) =>
        tx<
          { batch: { sent: number; queued: number } | null }
        >`select private.voice_call_notices_batch(${job.id}, ${worker}) as batch`,
    );
    if (!batch) throw new LeaseLost();
    return batch;
  },
};
