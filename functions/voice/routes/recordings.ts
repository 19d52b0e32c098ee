// Call recordings: their bytes go straight to object storage through short-lived signed
// URLs, as attachments' do (shared/storage.ts). The provider asks where to upload a
// call's recording (one per call, in the private bucket `call-recordings` at
// `<tenant_id>/<call_id>/recording.<ext>`; the path is written on the call then, since
// a recording is finished after the call's end was reported); whoever may read the call
// gets a download URL. Only a path under the call's own `<tenant_id>/<call_id>/` is ever
// signed: a recording path reported by call.ended or written by an agent can name
// anything, another tenant's object included, and is shown as it is, never signed.
import { createRoute } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { outsideTelephonyTenant, telephonyKeyClaims } from '../../../shared/auth/service.ts';
import { asApiKeyMachine, callPathDb, type Sql } from '../../../shared/db.ts';
import { ApiError, notFound } from '../../../shared/errors.ts';
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
import { objectStorage } from '../../../shared/storage.ts';
import * as s from '../schemas.ts';
import type { VoiceHandler } from './common.ts';

export const RECORDINGS_BUCKET = 'call-recordings';

const routes = {
  upload: createRoute({
    method: 'post',
    path: '/calls/recordings',
    summary: "Where to upload a call's recording (the provider): a signed URL for its bytes, valid two hours; the " +
      'path is written on the call at once. Asked again, the same path and a new URL (an upload that did not finish ' +
      'can be tried again; one that did is kept: a second upload to it is refused by the storage)',
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
          '`details.reason` `none`, `elsewhere` (its recording path names no object of this call: the provider keeps ' +
          'it, and the call shows the path) or `not_uploaded` (its upload has not finished)',
      ),
    },
  }),
};

const extensionOf = (type: s.RecordingType) => s.RECORDING_EXTENSIONS[type];
const typeOf = (extension: string) =>
  (Object.keys(s.RECORDING_EXTENSIONS) as s.RecordingType[]).find((t) => s.RECORDING_EXTENSIONS[t] === extension);

/** The recording's type when `path` is the call's own object, else undefined. */
function ownRecording(path: string, tenantId: string, callId: string): s.RecordingType | undefined {
  const prefix = `${tenantId.toLowerCase()}/${callId.toLowerCase()}/recording.`;
  return path.startsWith(prefix) ? typeOf(path.slice(prefix.length)) : undefined;
}

const noRecording = (reason: 'none' | 'elsewhere' | 'not_uploaded') =>
  new ApiError(404, 'no_recording', 'The call has no recording in storage', { reason });

const upload: VoiceHandler<typeof routes.upload> = async (c) => {
  const b = c.req.valid('json');
  // A tenant's API key uploads its own tenant's recordings only.
  if (outsideTelephonyTenant(c, b.tenant_id)) throw new ApiError(404, 'unknown_call', 'No such call in this tenant');
  // Under a key's claims, so the audit trail names the key, as for its call events.
  const keyClaims = telephonyKeyClaims(c);
  const target = (sql: Sql) =>
    sql<{ call_id: string; recording_path: string }>`
      select * from private.voice_call_recording_target(${b.tenant_id}, ${b.provider_call_id}, ${extensionOf(b.content_type)})`;
  const [t] = keyClaims ? await asApiKeyMachine(keyClaims, target) : await target(callPathDb());
  const signed = await objectStorage().createUploadUrl(RECORDINGS_BUCKET, t.recording_path, {
    contentType: b.content_type,
    size: b.size_bytes,
  });
  return c.json({ call_id: t.call_id, recording_path: t.recording_path, upload: signed }, 201);
};

const download: VoiceHandler<typeof routes.download> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const [call] = await callerDb(
    c,
    tenantId,
    (tx) =>
      tx<{ id: string; recording_path: string | null }>`
      select id, recording_path from public.voice_calls where tenant_id = ${tenantId} and id = ${id}`,
  );
  if (!call) throw notFound('Call');
  if (call.recording_path === null) throw noRecording('none');
  const type = ownRecording(call.recording_path, tenantId, call.id);
  if (!type) throw noRecording('elsewhere');
  const storage = objectStorage();
  if (!(await storage.exists(RECORDINGS_BUCKET, call.recording_path))) throw noRecording('not_uploaded');
  const signed = await storage.createDownloadUrl(RECORDINGS_BUCKET, call.recording_path, {
    fileName: `call-${call.id}.${extensionOf(type)}`,
    contentType: type,
  });
  return c.json({ call_id: call.id, content_type: type, download: signed }, 200);
};

export const recordings = createRouter()
  .openapi(routes.upload, upload)
  .openapi(routes.download, download);
