// storage-delete: deletes one object from object storage (shared/storage.ts), added by
// the database when no row should hold it any more
// (20261203253000_storage_objects_erased_review.sql, 20261203255000_storage_delete_jobs_review.sql,
// 20261203256000_attachment_objects_erased.sql): a deleted call's recording or
// attachment's file gets two, one at once and one after its upload URL expired (an upload
// that lands after the erasure goes too); a recording object replaced before its upload
// finished gets one after its URL expired. An object a row holds again is kept. A
// replaced recording that was uploaded after all, while its call's own object never was,
// is given back to the call rather than deleted (20261203257000_voice_recording_restore.sql):
// by then no upload can still land, so this is the last word on which object the call
// keeps. A storage that does not answer is retried with the queue's backoff (1,000
// attempts). Result: { deleted }, { absent } (gone already), { kept } or { restored }.
import { asService } from '../../db.ts';
import { objectStorage, storableKey } from '../../storage.ts';
import { JobError, type Task } from '../types.ts';

/** The call a recording object's path names: <tenant>/<call>/recording.<ext>. */
const RECORDING_PATH = /^([0-9a-f-]{36})\/([0-9a-f-]{36})\/recording\.[a-z0-9]+$/;

/** What becomes of a replaced recording: `kept` when its call holds it again, `restored` when it was uploaded after all and is given
 *  back to its call, whose own object was never uploaded (every URL of the call has
 *  expired by now: 20261203258000_voice_recording_urls_outlive_jobs.sql); null — delete
 *  it — when the call is gone (an erasure), holds nothing (cleared by hand), or holds an
 *  uploaded recording of its own. */
async function recordingFate(object: string): Promise<'kept' | 'restored' | null> {
  const call = object.match(RECORDING_PATH);
  if (!call) return null;
  const [, tenantId, callId] = call;
  const [holder] = await asService(
    tenantId,
    (tx) =>
      tx<{ recording_object: string | null }>`
      select recording_object from public.voice_calls where tenant_id = ${tenantId} and id = ${callId}`,
  );
  const current = holder?.recording_object ?? null;
  if (current === object) return 'kept';
  if (!current) return null;
  const storage = objectStorage();
  if (!(await storage.exists('call-recordings', object))) return null;
  if (await storage.exists('call-recordings', current)) return null;
  const [{ restored }] = await asService(
    tenantId,
    (tx) =>
      tx<{ restored: boolean }>`
      select private.voice_call_recording_restore(${tenantId}, ${callId}, ${object}, ${current}) as restored`,
  );
  // The call changed meanwhile: decided again on the next attempt.
  if (!restored) throw new JobError('the call changed while its recording was given back');
  return 'restored';
}

export const storageDelete: Task<{ bucket?: unknown; object?: unknown }> = {
  async run(job) {
    const { bucket, object } = job.payload;
    if (typeof bucket !== 'string' || typeof object !== 'string' || !bucket || !object) {
      throw new JobError('storage-delete needs {bucket, object}', { retryable: false });
    }
    // A row that holds the object again (a recording's type asked back) keeps it. A
    // recording's call row is read once, by recordingFate, which answers that too.
    if (bucket === 'call-recordings') {
      const fate = await recordingFate(object);
      if (fate) return { [fate]: 1 };
    } else {
      const [{ used }] = await asService(
        null,
        (tx) => tx<{ used: boolean }>`select private.storage_object_in_use(${bucket}, ${object}) as used`,
      );
      if (used) return { kept: 1 };
    }
    // No object is stored under a key Storage refuses: nothing to delete (not an error to
    // retry a thousand times).
    if (!storableKey(object)) return { absent: 1 };
    return (await objectStorage().remove(bucket, object)) ? { deleted: 1 } : { absent: 1 };
  },
};
