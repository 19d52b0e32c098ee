// voice-erasure-trail: the audit trail's part of a customer erasure
// (20261204101000_voice_customer_erasure_trail_job.sql), queued by the erasure's request;
// and of a deletion of calls (20261208127000: their entries and their segments', back to
// their first, under the key `…:calls:<first id>`, with no customer and no notice at the end).
// The request deleted what indexes reach under its locks; the trail has no index by
// record, so its entries are found by reading the tenant's voice entries newest first,
// one batch per job in its own transaction, holding no lock on a live row: first which
// calls and customer records were the customer's (erased now, or gone before), then
// their entries and their calls' segments' entries are redacted
// (20261204102000_voice_customer_erasure_review.sql: one chain per erasure, under its job
// key; `customer.erasure_completed` at the end). A batch that is not the last queues the
// next with the payload it leaves. Result: done or continued, and this batch's counts.
import { asService } from '../../db.ts';
import { LeaseLost, type Task } from '../types.ts';

interface TrailJob {
  tenant_id: string;
  stage: string;
  redacted: number;
  webhook_events: number;
  [field: string]: unknown;
}

export const voiceErasureTrail: Task<TrailJob> = {
  async run(job, { worker }) {
    // At most once per job (20261204103000): under the job's lease, and a job claimed
    // again after its batch committed (a lease lost before the runner completed it) does
    // nothing.
    const [{ step }] = await asService(
      job.payload.tenant_id,
      (tx) => tx<{ step: TrailJob | null }>`select private.voice_erasure_trail_batch(${job.id}, ${worker}) as step`,
    );
    if (!step) throw new LeaseLost();
    // The payload keeps running totals; this batch's part is what it added.
    return {
      [step.stage === 'done' ? 'done' : 'continued']: 1,
      redacted: step.redacted - job.payload.redacted,
      webhook_events: step.webhook_events - job.payload.webhook_events,
    };
  },
};
