// storage-delete: deletes one object from object storage (shared/storage.ts), added by
// the database when the row that held the object goes: a call deleted with its
// recording, or a recording object replaced before its upload finished (added to run
// after that upload's URL expired, so a late upload is not left behind)
// (20261203252000_storage_objects_erased.sql). An object a row holds again is kept; one
// already gone is done; a storage that does not answer is retried with the queue's
// backoff. Result: { deleted } or { kept }.
import { asService } from '../../db.ts';
import { objectStorage } from '../../storage.ts';
import { JobError, type Task } from '../types.ts';

export const storageDelete: Task<{ bucket?: unknown; object?: unknown }> = {
  async run(job) {
    const { bucket, object } = job.payload;
    if (typeof bucket !== 'string' || typeof object !== 'string' || !bucket || !object) {
      throw new JobError('storage-delete needs {bucket, object}', { retryable: false });
    }
    // A row that holds the object again (a recording's type asked back) keeps it.
    const [{ used }] = await asService(
      null,
      (tx) => tx<{ used: boolean }>`select private.storage_object_in_use(${bucket}, ${object}) as used`,
    );
    if (used) return { kept: 1 };
    await objectStorage().remove(bucket, object);
    return { deleted: 1 };
  },
};
