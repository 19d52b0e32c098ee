// storage-delete: deletes one object from object storage (shared/storage.ts), added by
// the database when no row should hold it any more
// (20261203253000_storage_objects_erased_review.sql, 20261203255000_storage_delete_jobs_review.sql):
// a deleted call's recording gets two, one at once and one after its upload URL expired
// (an upload that lands after the erasure goes too); a recording object replaced before
// its upload finished gets one after its URL expired. An object a row holds again is kept;
// a storage that does not answer is retried with the queue's backoff (1,000 attempts).
// Result: { deleted }, { absent } (gone already) or { kept }.
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
    return (await objectStorage().remove(bucket, object)) ? { deleted: 1 } : { absent: 1 };
  },
};
