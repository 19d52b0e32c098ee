// Call recordings: their bytes go straight to object storage through short-lived signed
// URLs, as attachments' do (shared/storage.ts). The provider asks where to upload a
// call's recording (one per call, in the private bucket `call-recordings` at
// `<tenant_id>/<call_id>/recording.<ext>`, kept on the call as `recording_object` when
// the URL is handed out: recordings are often finished after the call's end); whoever
// may read the call gets a download URL. `recording_object` is the call's own object by
// a check in the database, written only here (20261203251000_voice_call_recording_objects.sql);
// `recording_path` stays the provider's own text (call.ended's: a URL of its own
// storage, say), shown on the call, never signed. Whether a customer consented to being
// recorded is the provider's to decide (/route gives `recording_consent`), unless the
// tenant asks the platform to refuse recordings without it
// (`settings.voice_recording_requires_consent`, 20261203254000_voice_recording_consent.sql).
import { createRoute } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { outsideTelephonyTenant, telephonyKeyClaims } from '../../../shared/auth/service.ts';
import { telephonyWrites } from '../../../shared/db.ts';
import { ApiError, notFound, toApiError } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import {
  bodyErrors,
  commonErrors,
  errorResponse,
  jsonBody,
  jsonResponse,
  unavailableError,
} from '../../../shared/schemas/common.ts';
import { security, telephonyErrors } from '../../../shared/schemas/security.ts';
import { fromStorage, objectStorage } from '../../../shared/storage.ts';
import * as s from '../schemas.ts';
import type { VoiceHandler } from './common.ts';

const RECORDINGS_BUCKET = 'call-recordings';

const routes = {
  upload: createRoute({
    method: 'post',
    path: '/calls/recordings',
    summary: "Where to upload a call's recording (the provider): a signed URL for its bytes, valid two hours; the " +
      'object is kept on the call at once. Asked again before the upload finished, a new URL (for another type, ' +
      'another object); after, 409 recording_exists: a recording once uploaded is kept',
    security: security.telephony,
    'x-api-key-scope': 'calls:write',
    middleware: needs.telephony('calls:write'),
    request: { body: jsonBody(s.RecordingUploadBody) },
    responses: {
      201: jsonResponse(s.RecordingUploadSchema, 'Where to upload'),
      ...telephonyErrors,
      403: commonErrors[403],
      404: errorResponse(
        '`unknown_call`: no call with this provider call id in the tenant (or the key is confined to another); ' +
          '`unknown_tenant`; `tenant_deleted`',
      ),
      410: errorResponse(
        '`call_deleted`: the call was deleted (by an admin, or erasing its customer) in the last 30 days: discard ' +
          'its recording',
      ),
      409: errorResponse(
        "`recording_exists`: the call's recording was uploaded (it is kept, whatever type is asked now); " +
          '`recording_changed`: another request for this call gave it another object meanwhile (ask again); ' +
          '`recording_not_consented`: the tenant records only customers who consented ' +
          '(`settings.voice_recording_requires_consent`), and this call has none, or one who did not',
      ),
      422: commonErrors[422],
      429: commonErrors[429],
      ...bodyErrors,
      ...unavailableError,
    },
  }),
  download: createRoute({
    method: 'get',
    path: '/calls/{id}/recording',
    summary: "A call's recording: a signed URL to download it, valid five minutes (whoever may read the call)",
    ...apiKeyScope('calls:read'),
    middleware: needs.activeTenantRole('user', { scope: 'calls:read', feature: 'voice' }),
    request: { params: s.IdParam },
    responses: {
      200: jsonResponse(s.CallRecordingSchema, 'Where to download it'),
      ...commonErrors,
      404: errorResponse(
        '`not_found`: no such call the caller may read; `no_recording`: the call has none in storage — ' +
          '`details.reason` `none` (no upload was asked for: a `recording_path` on the call is where the provider ' +
          'keeps it) or `not_uploaded` (its upload has not finished)',
      ),
      409: errorResponse(
        '`recording_not_consented`: the tenant records only customers who consented ' +
          "(`settings.voice_recording_requires_consent`), and the call's customer has not (or withdrew) or it has " +
          'none: the recording is kept, and available again once they consent',
      ),
      ...unavailableError,
    },
  }),
};

const extensionOf = (type: s.RecordingType) => s.RECORDING_EXTENSIONS[type];
/** The type of a recording object (the database checks it ends in one of these). */
const typeOf = (object: string) =>
  (Object.keys(s.RECORDING_EXTENSIONS) as s.RecordingType[]).find((t) =>
    object.endsWith(`/recording.${s.RECORDING_EXTENSIONS[t]}`)
  )!;

const noRecording = (reason: 'none' | 'not_uploaded') =>
  new ApiError(404, 'no_recording', 'The call has no recording in storage', { reason });

const upload: VoiceHandler<typeof routes.upload> = async (c) => {
  const b = c.req.valid('json');
  // A tenant's API key uploads its own tenant's recordings only.
  if (outsideTelephonyTenant(c, b.tenant_id)) throw new ApiError(404, 'unknown_call', 'No such call in this tenant');
  // Under a key's claims, so the audit trail names the key, as for its call events.
  const run = telephonyWrites(telephonyKeyClaims(c));
  const [seen] = await run((sql) =>
    sql<{ call_id: string; recording_object: string | null }>`
      select * from private.voice_call_recording_of(${b.tenant_id}, ${b.provider_call_id})`
  );
  // Asked between two statements, so no connection waits on the storage.
  const storage = objectStorage();
  const current = seen.recording_object;
  const uploaded = (object: string) => fromStorage(() => storage.exists(RECORDINGS_BUCKET, object));
  const recordingExists = (object: string) =>
    new ApiError(409, 'recording_exists', "The call's recording was uploaded; it is kept", { content_type: typeOf(object) });
  if (current && (await uploaded(current))) throw recordingExists(current);
  const [{ object }] = await run((sql) =>
    sql<{ object: string }>`
      select private.voice_call_recording_set(${b.tenant_id}, ${seen.call_id}, ${extensionOf(b.content_type)}, ${current})
        as object`
  ).catch(async (err) => {
    // The call was there a statement ago: deleted since, it says so (410 call_deleted,
    // by its tombstone) as a request after the delete would.
    if (toApiError(err).code === 'unknown_call') {
      await run((sql) => sql`select private.voice_call_refuse_deleted(${b.tenant_id}, ${b.provider_call_id})`);
    }
    throw err;
  });
  const restore = async () => {
    const [{ restored }] = await run((sql) =>
      sql<{ restored: boolean }>`
        select private.voice_call_recording_restore(${b.tenant_id}, ${seen.call_id}, ${current}, ${object}) as restored`
    );
    return restored;
  };
  let signed;
  try {
    // Another type: the first object's upload may have finished between the storage's
    // answer and the write. Asked again, and if it did, the call is given it back (its
    // delayed delete job then keeps it: private.storage_object_in_use). Should the upload
    // land just after this look, that job gives the finished recording back itself once
    // the first URL expired (shared/jobs/tasks/storage-delete.ts).
    if (current && object !== current && (await uploaded(current))) {
      if (!(await restore())) {
        throw new ApiError(409, 'recording_changed', "The call's recording changed meanwhile; ask again");
      }
      throw recordingExists(current);
    }
    // Back to an object asked for before, whose upload finished meanwhile (asked for
    // mp3, then wav, the mp3 landed, then mp3 again): the call holds it now, and a URL to
    // write it again would be refused by the storage.
    if (current && object !== current && (await uploaded(object))) throw recordingExists(object);
    signed = await fromStorage(() =>
      storage.createUploadUrl(RECORDINGS_BUCKET, object, { contentType: b.content_type, size: b.size_bytes })
    );
  } catch (err) {
    // The storage failed after a new type's write (a look, or the signing): the call is
    // given back the type it had, so the 503 leaves it as it was. Not a first request's
    // (no type before): naming an object never signed is harmless — a retry signs it —
    // while clearing it could undo a retry that got its URL meanwhile (its write wrote
    // nothing, the name being the same), and the delete job queued for the object so
    // cleared would delete the recording uploaded through that URL.
    if (err instanceof ApiError && err.code === 'storage_unavailable' && current && object !== current) await restore();
    throw err;
  }
  return c.json({ call_id: seen.call_id, recording_object: object, upload: signed }, 201);
};

const download: VoiceHandler<typeof routes.download> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const [call] = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx<{ id: string; recording_object: string | null; customer_id: string | null; withheld: boolean }>`
      -- Under the caller's RLS: staff read the customer's record; a customer theirs,
      -- through voice_own_customer_records (the table's policy is staff's, so read there
      -- their own consent was always missing). A record they may read neither way counts
      -- as no consent.
      select v.id, v.recording_object, v.customer_id,
        coalesce(t.settings -> 'voice_recording_requires_consent' = 'true'::jsonb, false)
          and not coalesce(c.recording_consent, o.recording_consent, false) as withheld
      from public.voice_calls v
      join public.tenants t on t.id = v.tenant_id
      left join public.voice_customers c on c.tenant_id = v.tenant_id and c.id = v.customer_id
      left join private.voice_own_customer_records(${tenantId}) o on o.id = v.customer_id
      where v.tenant_id = ${tenantId} and v.id = ${id}`,
  );
  if (!call) throw notFound('Call');
  // Consent withdrawn since the upload (or never given): kept, not handed out.
  if (call.withheld) {
    throw new ApiError(409, 'recording_not_consented', 'The tenant plays recordings only of customers who consented', {
      customer_id: call.customer_id,
    });
  }
  const object = call.recording_object;
  if (object === null) throw noRecording('none');
  const type = typeOf(object);
  const storage = objectStorage();
  if (!(await fromStorage(() => storage.exists(RECORDINGS_BUCKET, object)))) throw noRecording('not_uploaded');
  const signed = await fromStorage(() =>
    storage.createDownloadUrl(RECORDINGS_BUCKET, object, {
      fileName: `call-${call.id}.${extensionOf(type)}`,
      contentType: type,
    })
  );
  return c.json({ call_id: call.id, content_type: type, download: signed }, 200);
};

export const recordings = createRouter()
  .openapi(routes.upload, upload)
  .openapi(routes.download, download);
