// attachment-upload-check: settles one attachment registered but, as far as the database
// knows, never uploaded, once its upload URL has expired (added with the registration,
// 20261206015000_abandoned_attachments_released.sql). The storage has the file: the
// attachment is `uploaded`. It has not: the attachment is deleted, which gives its
// announced size back to the tenant's storage quota — a registration without a file no
// longer holds storage for ever. A storage that does not answer is retried with the
// queue's backoff. Result: { uploaded }, { released } or { settled } (no longer pending).
import { asService } from '../../db.ts';
import { objectStorage, storableKey } from '../../storage.ts';
import { JobError, type Task } from '../types.ts';

export const attachmentUploadCheck: Task<{ tenant_id?: unknown; attachment_id?: unknown }> = {
  async run(job) {
    const { tenant_id: tenantId, attachment_id: attachmentId } = job.payload;
    if (typeof tenantId !== 'string' || typeof attachmentId !== 'string') {
      throw new JobError('attachment-upload-check needs {tenant_id, attachment_id}', { retryable: false });
    }
    const [pending] = await asService(
      tenantId,
      (tx) =>
        tx<{ bucket: string; path: string }>`
        select bucket, path from public.attachments
        where tenant_id = ${tenantId} and id = ${attachmentId} and status = 'pending'`,
    );
    if (!pending) return { settled: 1 };
    // Past the URL's expiry no upload can land: what the storage says now is final. A key
    // Storage refuses (a file name as given, before 20261205191000) never held a file: it
    // was retried for ever, its size charged and its customer's pending cap full.
    const uploaded = storableKey(pending.path) && await objectStorage().exists(pending.bucket, pending.path);
    const [{ outcome }] = await asService(
      tenantId,
      (tx) =>
        tx<{ outcome: string }>`
        select private.settle_pending_attachment(${tenantId}, ${attachmentId}, ${uploaded}) as outcome`,
    );
    return { [outcome]: 1 };
  },
};
