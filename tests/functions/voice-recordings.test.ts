// Call recordings in storage (issue 14; migrations 20261203250000…20261203255000,
// functions/voice/routes/recordings.ts, shared/jobs/tasks/storage-delete.ts): the
// provider asks where to upload a call's recording and gets a signed URL for
// `<tenant>/<call>/recording.<ext>` in the `call-recordings` bucket, kept on the call as
// `recording_object` at once; whoever may read the call gets a signed download URL once
// the bytes are there. Only the call's own object is ever signed: `recording_object` is
// checked against the row's tenant and id and written only by the provider's route, and
// `recording_path` (the provider's text, which call.ended writes) is never signed. An
// uploaded recording is kept; a tenant may require the customer's consent; a deleted
// call's recording is deleted by jobs. The local stack's storage backend (a folder behind
// HMAC-signed URLs) serves the bytes here, as `npm start` runs it; then a stand-in of
// Supabase Storage's API, as on a hosted project.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { resetIssuerProfiles, supabaseUrl } from '../../shared/auth/issuers.ts';
import { closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { handleLocalStorage } from '../../shared/storage.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let storageDir: string;
let service: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
const ACME_AGENT = '72000000-0000-4000-8000-000000000011';
const GLOBEX_AGENT = '72000000-0000-4000-8000-000000000012';
const AUDIO = new Uint8Array(Array.from({ length: 4096 }, (_, i) => (i * 37) % 256));

beforeAll(async () => {
  db = await freshDatabase('fn_voice_recordings');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'voice-recordings-'));
  auth = await configureAuth(db.url, { LOCAL_STORAGE_DIR: storageDir, STORAGE_BACKEND: 'local' });
  service = await apiKey('service_role', TEST_JWT_SECRET);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${ACME_AGENT}, 'Desk', '+14155552011', 'v', ${db.sql.json(LLM)}),
           (${globex}, ${GLOBEX_AGENT}, 'Desk', '+14155552012', 'v', ${db.sql.json(LLM)})`;
});
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

const asService = () => ({ authorization: `Bearer ${service}` });
const event = (body: Record<string, unknown>, headers = asService()) => call(app, 'POST', '/voice/calls/events', { body, headers });
/** A call the provider started and ended: its id. */
async function endedCall(tenant: string, providerCallId: string, agent = tenant === acme ? ACME_AGENT : GLOBEX_AGENT) {
  const started = await event({ type: 'call.started', tenant_id: tenant, provider_call_id: providerCallId, agent_id: agent, from: '+33612345678' });
  expect(started.status, JSON.stringify(started.body)).toBe(200);
  const ended = await event({ type: 'call.ended', tenant_id: tenant, provider_call_id: providerCallId, status: 'completed', duration_seconds: 42 });
  expect(ended.status, JSON.stringify(ended.body)).toBe(200);
  return started.body.call_id as string;
}
const askUpload = (body: Record<string, unknown>, headers: Record<string, string> = asService()) =>
  call(app, 'POST', '/voice/calls/recordings', { body, headers });
const put = (url: string, bytes: Uint8Array) => handleLocalStorage(new Request(url, { method: 'PUT', body: bytes as BufferSource }));
const recording = (id: string, token: string) => call(app, 'GET', `/voice/calls/${id}/recording`, { token });
const callRow = async (tenant: string, id: string) =>
  (await db.sql`select recording_object, recording_path from public.voice_calls where tenant_id = ${tenant} and id = ${id}`)[0];

describe('a call recording, uploaded by the provider and played by staff', () => {
  it('the provider gets a signed upload URL for the call\'s own object; staff get a download URL once it is there, and the bytes', async () => {
    const id = await endedCall(acme, 'pc-rec-1');
    const asked = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-1', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect(asked.body.call_id).toBe(id);
    expect(asked.body.recording_object).toBe(`${acme}/${id}/recording.mp3`);
    expect(asked.body.upload).toMatchObject({ method: 'PUT', headers: { 'content-type': 'audio/mpeg' } });
    expect(new URL(asked.body.upload.url).pathname).toBe(`/storage/v1/local/call-recordings/${acme}/${id}/recording.mp3`);
    // Kept on the call at once (its end is long applied); the provider's own path untouched.
    expect(await callRow(acme, id)).toEqual({ recording_object: asked.body.recording_object, recording_path: null });
    // Not uploaded yet: 404 saying so.
    const early = await recording(id, tok.agent);
    expect([early.status, errorCode(early), early.body.error.details]).toEqual([404, 'no_recording', { reason: 'not_uploaded' }]);
    // The signed size is the size: other bytes are refused; the right ones taken once.
    expect((await put(asked.body.upload.url, AUDIO.slice(1))).status).toBe(400);
    expect((await put(asked.body.upload.url, AUDIO)).status).toBe(200);
    expect((await put(asked.body.upload.url, AUDIO)).status).toBe(409);
    for (const token of [tok.agent, tok.admin]) {
      const got = await recording(id, token);
      expect(got.status, JSON.stringify(got.body)).toBe(200);
      expect(got.body).toMatchObject({ call_id: id, content_type: 'audio/mpeg', download: { method: 'GET' } });
      const res = await handleLocalStorage(new Request(got.body.download.url));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('audio/mpeg');
      expect(res.headers.get('content-disposition')).toContain(`filename="call-${id}.mp3"`);
      expect(new Uint8Array(await res.arrayBuffer())).toEqual(AUDIO);
    }
  });

  it("a call's end reported after its recording was uploaded, with the provider's own path, leaves the recording as it is", async () => {
    const started = await event({ type: 'call.started', tenant_id: acme, provider_call_id: 'pc-rec-9', agent_id: ACME_AGENT });
    const id = started.body.call_id as string;
    const asked = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-9', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    expect((await put(asked.body.upload.url, AUDIO)).status).toBe(200);
    const ended = await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'pc-rec-9', status: 'completed', recording_path: 'https://provider.example/rec/9.mp3' });
    expect([ended.status, ended.body.applied]).toEqual([200, true]);
    expect(await callRow(acme, id)).toEqual({ recording_object: asked.body.recording_object, recording_path: 'https://provider.example/rec/9.mp3' });
    const got = await recording(id, tok.agent);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(new Uint8Array(await (await handleLocalStorage(new Request(got.body.download.url))).arrayBuffer())).toEqual(AUDIO);
  });

  it('asked again before the upload: a URL for the same object (no audit row) or, for another type, another; after it: 409, the recording kept', async () => {
    const id = await endedCall(acme, 'pc-rec-2');
    const body = { tenant_id: acme, provider_call_id: 'pc-rec-2', content_type: 'audio/wav', size_bytes: AUDIO.length };
    const first = await askUpload(body);
    const audits = async () =>
      (await db.sql`select count(*)::int as n from public.audit_logs
        where table_name = 'voice_calls' and record_key ->> 'id' = ${id} and action = 'UPDATE'`)[0].n;
    const before = await audits();
    const again = await askUpload(body);
    expect(again.status).toBe(201);
    expect(again.body.recording_object).toBe(first.body.recording_object);
    expect(await audits()).toBe(before);
    const ogg = await askUpload({ ...body, content_type: 'audio/ogg' });
    expect(ogg.body.recording_object).toBe(`${acme}/${id}/recording.ogg`);
    expect((await callRow(acme, id)).recording_object).toBe(ogg.body.recording_object);
    expect(await audits()).toBe(before + 1);
    expect((await put(ogg.body.upload.url, AUDIO)).status).toBe(200);
    for (const content_type of ['audio/ogg', 'audio/mpeg']) {
      const after = await askUpload({ ...body, content_type });
      expect([after.status, errorCode(after), after.body.error.details], content_type).toEqual([409, 'recording_exists', { content_type: 'audio/ogg' }]);
    }
    expect((await callRow(acme, id)).recording_object).toBe(ogg.body.recording_object);
    const got = await recording(id, tok.agent);
    expect([got.status, got.body.content_type]).toEqual([200, 'audio/ogg']);
  });

  it('asked again for a type whose upload finished after another type was asked for: 409 recording_exists, the call holding it, not a URL the storage refuses', async () => {
    const id = await endedCall(acme, 'pc-rec-back');
    const body = { tenant_id: acme, provider_call_id: 'pc-rec-back', size_bytes: AUDIO.length };
    const mp3 = await askUpload({ ...body, content_type: 'audio/mpeg' });
    const wav = await askUpload({ ...body, content_type: 'audio/wav' });
    expect([mp3.status, wav.status]).toEqual([201, 201]);
    // The mp3's upload, begun before, lands now.
    expect((await put(mp3.body.upload.url, AUDIO)).status).toBe(200);
    const again = await askUpload({ ...body, content_type: 'audio/mpeg' });
    expect([again.status, errorCode(again), again.body.error?.details]).toEqual([409, 'recording_exists', { content_type: 'audio/mpeg' }]);
    expect((await callRow(acme, id)).recording_object).toBe(mp3.body.recording_object);
    const got = await recording(id, tok.agent);
    expect([got.status, got.body.content_type]).toEqual([200, 'audio/mpeg']);
  });

  it('another request in between: the object is written only if it is still the one the storage was asked about', async () => {
    const id = await endedCall(acme, 'pc-rec-8');
    await expect(db.sql`select private.voice_call_recording_set(${acme}, ${id}, 'mp3', ${`${acme}/${id}/recording.wav`})`)
      .rejects.toMatchObject({ code: 'PT409' });
    expect((await callRow(acme, id)).recording_object).toBeNull();
    const [{ object }] = await db.sql`select private.voice_call_recording_set(${acme}, ${id}, 'mp3', null) as object`;
    expect(object).toBe(`${acme}/${id}/recording.mp3`);
    // An identical request at once (it read null too): the object the call holds, not 409.
    const [{ again }] = await db.sql`select private.voice_call_recording_set(${acme}, ${id}, 'mp3', null) as again`;
    expect(again).toBe(object);
    // Another type on a stale read: 409, nothing written.
    await expect(db.sql`select private.voice_call_recording_set(${acme}, ${id}, 'wav', null)`).rejects.toMatchObject({ code: 'PT409' });
    expect((await callRow(acme, id)).recording_object).toBe(object);
  });

  it('refuses what it cannot sign: an unknown call or tenant, a type or size out of bounds, a person\'s own call id, no credential', async () => {
    await endedCall(acme, 'pc-rec-3');
    const ok = { tenant_id: acme, provider_call_id: 'pc-rec-3', content_type: 'audio/mpeg', size_bytes: 10 };
    const cases: [Record<string, unknown>, number, string][] = [
      [{ ...ok, provider_call_id: 'pc-nobody' }, 404, 'unknown_call'],
      [{ ...ok, tenant_id: '00000000-0000-4000-8000-00000000beef' }, 404, 'unknown_tenant'],
      [{ ...ok, content_type: 'text/html' }, 422, 'validation_failed'],
      [{ ...ok, content_type: 'audio/x-evil' }, 422, 'validation_failed'],
      [{ ...ok, size_bytes: 0 }, 422, 'validation_failed'],
      [{ ...ok, size_bytes: 50 * 1024 * 1024 + 1 }, 422, 'validation_failed'],
      [{ ...ok, provider_call_id: 'manual:1' }, 422, 'validation_failed'],
      [{ ...ok, path: '../x' }, 422, 'validation_failed'],
    ];
    const before = await db.sql`select id, recording_object from public.voice_calls order by tenant_id, id`;
    for (const [body, status, code] of cases) {
      const r = await askUpload(body);
      expect([r.status, errorCode(r)], JSON.stringify(body)).toEqual([status, code]);
    }
    for (const headers of [{}, { authorization: `Bearer ${tok.admin}` }] as Record<string, string>[]) {
      const r = await askUpload(ok, headers);
      expect([r.status, errorCode(r)]).toEqual([401, 'telephony_credential_required']);
    }
    expect(await db.sql`select id, recording_object from public.voice_calls order by tenant_id, id`).toEqual(before);
    // The database's own check, as a direct caller would reach it.
    const [{ id }] = await db.sql`select id from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'pc-rec-3'`;
    await expect(db.sql`select private.voice_call_recording_set(${acme}, ${id}, 'html', null)`)
      .rejects.toMatchObject({ code: 'PT422' });
  });

  it("a tenant that records only consenting customers: 409 recording_not_consented for a customer who did not, and for an unknown caller", async () => {
    await db.sql`insert into public.voice_customers (tenant_id, phone, name, recording_consent)
      values (${acme}, '+33612340001', 'Consents', true), (${acme}, '+33612340002', 'Declines', false)`;
    const startFrom = async (providerCallId: string, from?: string) => {
      const r = await event({ type: 'call.started', tenant_id: acme, provider_call_id: providerCallId, agent_id: ACME_AGENT, ...(from ? { from } : {}) });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      return r.body.call_id as string;
    };
    await startFrom('pc-rec-c1', '+33612340001');
    const declining = await startFrom('pc-rec-c2', '+33612340002');
    await startFrom('pc-rec-c3');
    const ask = (id: string) => askUpload({ tenant_id: acme, provider_call_id: id, content_type: 'audio/mpeg', size_bytes: 10 });
    // Not required (the default): every call takes one.
    expect((await ask('pc-rec-c2')).status).toBe(201);
    await db.sql`update public.voice_calls set recording_object = null where tenant_id = ${acme} and id = ${declining}`;
    const setting = async (value: unknown) =>
      call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { voice_recording_requires_consent: value } } });
    expect((await setting(true)).status).toBe(200);
    try {
      expect((await ask('pc-rec-c1')).status).toBe(201);
      const [{ customer }] = await db.sql`select customer_id as customer from public.voice_calls where tenant_id = ${acme} and id = ${declining}`;
      for (const [id, customer_id] of [['pc-rec-c2', customer], ['pc-rec-c3', null]]) {
        const r = await ask(id);
        expect([r.status, errorCode(r), r.body.error.details], id).toEqual([409, 'recording_not_consented', { customer_id }]);
      }
      expect((await callRow(acme, declining)).recording_object).toBeNull();
      // Consent given since: taken.
      await db.sql`update public.voice_customers set recording_consent = true where tenant_id = ${acme} and phone = '+33612340002'`;
      const asked = await ask('pc-rec-c2');
      expect(asked.status).toBe(201);
      expect((await put(asked.body.upload.url, new Uint8Array(10))).status).toBe(200);
      expect((await recording(declining, tok.agent)).status).toBe(200);
      // Withdrawn: kept, but no longer handed out, to anyone; given again, available again.
      const withdraw = await call(app, 'PATCH', `/voice/customers/${customer}`, { token: tok.agent, body: { recording_consent: false } });
      expect(withdraw.status, JSON.stringify(withdraw.body)).toBe(200);
      for (const token of [tok.agent, tok.admin]) {
        const r = await recording(declining, token);
        expect([r.status, errorCode(r), r.body.error.details]).toEqual([409, 'recording_not_consented', { customer_id: customer }]);
      }
      expect((await callRow(acme, declining)).recording_object).not.toBeNull();
      await db.sql`update public.voice_customers set recording_consent = true where tenant_id = ${acme} and phone = '+33612340002'`;
      expect((await recording(declining, tok.agent)).status).toBe(200);
      // The customer themselves (role user, the record linked to them) gets their own
      // call's recording while they consent, and not once they withdraw.
      await db.sql`update public.voice_customers set user_id = ${users.acmeUser.id} where tenant_id = ${acme} and phone = '+33612340002'`;
      try {
        expect((await recording(declining, tok.user)).status).toBe(200);
        await db.sql`update public.voice_customers set recording_consent = false where tenant_id = ${acme} and phone = '+33612340002'`;
        const own = await recording(declining, tok.user);
        expect([own.status, errorCode(own)]).toEqual([409, 'recording_not_consented']);
      } finally {
        await db.sql`update public.voice_customers set user_id = null, recording_consent = true where tenant_id = ${acme} and phone = '+33612340002'`;
      }
      // The setting is a boolean.
      const bad = await setting('yes');
      expect([bad.status, bad.body.error.details.fields]).toEqual([422, [expect.objectContaining({ field: 'settings.voice_recording_requires_consent' })]]);
    } finally {
      expect((await setting(false)).status).toBe(200);
    }
  });

  it('a suspended tenant\'s call still takes its recording; a deleted tenant\'s does not', async () => {
    await endedCall(acme, 'pc-rec-4');
    const body = { tenant_id: acme, provider_call_id: 'pc-rec-4', content_type: 'audio/flac', size_bytes: 10 };
    try {
      await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
      expect((await askUpload(body)).status).toBe(201);
      await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${acme}`;
      const gone = await askUpload(body);
      expect([gone.status, errorCode(gone)]).toEqual([404, 'tenant_deleted']);
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${acme}`;
    }
  });
});

describe('only the call\'s own object is signed, only for those who may read the call', () => {
  it("a call's recording object is its own: a recording path naming another tenant's recording is never signed, and no write can point the object elsewhere", async () => {
    // globex's recording, uploaded.
    const theirs = await endedCall(globex, 'pc-rec-g1');
    const up = await askUpload({ tenant_id: globex, provider_call_id: 'pc-rec-g1', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    expect((await put(up.body.upload.url, AUDIO)).status).toBe(200);
    expect((await recording(theirs, tok.globexAdmin)).status).toBe(200);
    // An acme call whose end reports globex's object as its recording path: shown, not signed.
    const started = await event({ type: 'call.started', tenant_id: acme, provider_call_id: 'pc-rec-5', agent_id: ACME_AGENT });
    const mine = started.body.call_id as string;
    const ended = await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'pc-rec-5', status: 'completed', recording_path: up.body.recording_object });
    expect(ended.status, JSON.stringify(ended.body)).toBe(200);
    expect(await callRow(acme, mine)).toEqual({ recording_object: null, recording_path: up.body.recording_object });
    const none = await recording(mine, tok.agent);
    expect([none.status, errorCode(none), none.body.error.details]).toEqual([404, 'no_recording', { reason: 'none' }]);
    // Past every route, as the table's owner: the object is the row's own or nothing
    // (another tenant's, another call's, a climb out of the folder, another name, upper case).
    for (
      const p of [
        up.body.recording_object,
        `${acme}/${theirs}/recording.mp3`,
        `${acme}/${mine}/recording.mp3/../../${theirs}/recording.mp3`,
        `${acme}/${mine}/other.mp3`,
        `${acme}/${mine}/recording.exe`,
        `${acme}/${mine.toUpperCase()}/recording.mp3`,
      ]
    ) {
      await expect(db.sql`update public.voice_calls set recording_object = ${p} where tenant_id = ${acme} and id = ${mine}`, p)
        .rejects.toMatchObject({ code: '23514' });
    }
    // People may not write it at all (the update grants name their columns), even their own object.
    const claims = supabaseClaims(users.acmeAdmin, acme);
    const own = `${acme}/${mine}/recording.mp3`;
    const r = await probeAs(db.sql, 'authenticated', claims, (tx) => tx`update public.voice_calls set recording_object = ${own} where tenant_id = ${acme} and id = ${mine}`);
    expect(r).toMatchObject({ ok: false, error: { code: '42501' } });
    // Nor on a call they log by hand.
    const inserted = await probeAs(db.sql, 'authenticated', claims, (tx) =>
      tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, recording_object)
         values (${acme}, ${ACME_AGENT}, 'manual:rec', 'completed', ${`${acme}/00000000-0000-4000-8000-000000000000/recording.mp3`})`);
    expect(inserted).toMatchObject({ ok: false, error: { code: '42501' } });
    expect(await callRow(acme, mine)).toEqual({ recording_object: null, recording_path: up.body.recording_object });
  });

  it("another tenant's staff, and a customer the call is not theirs, get what an unknown id gets", async () => {
    const id = await endedCall(acme, 'pc-rec-6');
    const up = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-6', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    expect((await put(up.body.upload.url, AUDIO)).status).toBe(200);
    expect((await recording(id, tok.agent)).status).toBe(200);
    const unknown = '00000000-0000-4000-8000-00000000beef';
    for (const token of [tok.globexAdmin, tok.user]) {
      const foreign = await recording(id, token);
      const nobody = await recording(unknown, token);
      expect(foreign.status).toBe(404);
      expect(foreign.body).toEqual(nobody.body);
    }
  });

  it("a tenant's API key uploads its own tenant's recordings only, as itself in the audit trail, and needs calls:write", async () => {
    const id = await endedCall(acme, 'pc-rec-7');
    await endedCall(globex, 'pc-rec-7');
    const createKey = async (scopes: string[]) => {
      const created = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: tok.admin, body: { name: `rec ${scopes}`, scopes } });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      return created.body as { id: string; key: string };
    };
    const key = await createKey(['calls:write']);
    const headers = { authorization: `Bearer ${key.key}` };
    const own = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-7', content_type: 'audio/webm', size_bytes: 10 }, headers);
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    const [row] = await db.sql`select actor_issuer, actor_subject from public.audit_logs
      where table_name = 'voice_calls' and record_key ->> 'id' = ${id} and action = 'UPDATE'
        and new_data ->> 'recording_object' = ${own.body.recording_object}`;
    expect(row).toEqual({ actor_issuer: 'tenant-platform:api-key', actor_subject: key.id });
    const other = await askUpload({ tenant_id: globex, provider_call_id: 'pc-rec-7', content_type: 'audio/webm', size_bytes: 10 }, headers);
    expect([other.status, errorCode(other)]).toEqual([404, 'unknown_call']);
    const readOnly = await createKey(['calls:read']);
    const refused = await askUpload(
      { tenant_id: acme, provider_call_id: 'pc-rec-7', content_type: 'audio/webm', size_bytes: 10 },
      { authorization: `Bearer ${readOnly.key}` },
    );
    expect([refused.status, errorCode(refused)]).toEqual([403, 'insufficient_scope']);
  });
});

describe('a recording goes with its call', () => {
  const file = (object: string) => path.join(storageDir, 'call-recordings', ...object.split('/'));
  const there = (object: string) => stat(file(object)).then(() => true, () => false);
  const jobsFor = (object: string) =>
    db.sql`select job_key, payload, run_at > now() + interval '2 hours' as later from private.jobs
      where task = 'storage-delete' and payload ->> 'object' = ${object} order by run_at`;
  /** Other tests' storage-delete jobs out of the way, so a run's counts are these objects'. */
  const onlyJobsFor = (objects: string[]) =>
    db.sql`delete from private.jobs where task = 'storage-delete' and not (payload ->> 'object' = any(${objects}))`;

  it("deleting a call adds jobs for its recording in the same transaction, at once and after its URL expired: the bytes go, and so do those of an upload that lands later", async () => {
    const id = await endedCall(acme, 'pc-rec-e1');
    const asked = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-e1', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    expect((await put(asked.body.upload.url, AUDIO)).status).toBe(200);
    expect(await there(asked.body.recording_object)).toBe(true);
    // A call without a recording adds nothing.
    const bare = await endedCall(acme, 'pc-rec-e2');
    const [{ before }] = await db.sql`select count(*)::int as before from private.jobs where task = 'storage-delete'`;
    // A delete rolled back adds nothing: the jobs are the delete's own transaction's.
    await db.sql.begin(async (tx) => {
      await tx`delete from public.voice_calls where tenant_id = ${acme} and id = ${id}`;
      throw new Error('rolled back');
    }).catch((err: Error) => expect(err.message).toBe('rolled back'));
    expect((await db.sql`select count(*)::int as n from private.jobs where task = 'storage-delete'`)[0].n).toBe(before);
    await db.sql`delete from public.voice_calls where tenant_id = ${acme} and id in (${id}, ${bare})`;
    const [{ after }] = await db.sql`select count(*)::int as after from private.jobs where task = 'storage-delete'`;
    expect(after).toBe(before + 2);
    const payload = { bucket: 'call-recordings', object: asked.body.recording_object };
    expect(await jobsFor(asked.body.recording_object)).toEqual([
      { job_key: null, payload, later: false },
      { job_key: null, payload, later: true },
    ]);
    await onlyJobsFor([asked.body.recording_object]);
    const report = await runJobs({ tasks: ['storage-delete'] });
    expect(report.tasks['storage-delete']).toMatchObject({ completed: 1, deleted: 1 });
    expect(await there(asked.body.recording_object)).toBe(false);
    // The provider's upload landing after the call was erased (its URL lasts two hours),
    // gone when the later job runs.
    const late = await endedCall(acme, 'pc-rec-e4');
    const lateAsk = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-e4', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    await db.sql`delete from public.voice_calls where tenant_id = ${acme} and id = ${late}`;
    await onlyJobsFor([lateAsk.body.recording_object]);
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 1, absent: 1 });
    expect((await put(lateAsk.body.upload.url, AUDIO)).status).toBe(200);
    expect(await there(lateAsk.body.recording_object)).toBe(true);
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete' and payload ->> 'object' = ${lateAsk.body.recording_object}`;
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 1, deleted: 1 });
    expect(await there(lateAsk.body.recording_object)).toBe(false);
  });

  it('a tenant deleted with 10,000 recorded calls: their jobs in one statement, without a lock per call', async () => {
    // A platform admin's delete of a tenant cascades to its calls. One add_job per row,
    // as the first version did, took an advisory lock per job key until commit, bounded by
    // the server's lock table (max_locks_per_transaction × connections: 6,400 at the
    // defaults). Here: two keyless jobs per call, tagged with the tenant, one statement.
    const tenant = '10000000-0000-4000-8000-0000000000e5';
    const agent = '72000000-0000-4000-8000-0000000000e5';
    await db.sql`insert into public.tenants (id, name, slug, plan) values (${tenant}, 'Erased', 'erased-recordings', 'pro')`;
    await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
      values (${tenant}, ${agent}, 'Desk', '+14155552099', 'v', ${db.sql.json(LLM)})`;
    await db.sql`
      with c as (select g, gen_random_uuid() as id from generate_series(1, 10000) g)
      insert into public.voice_calls (tenant_id, id, agent_id, status, provider_call_id, started_at, answered_at, recording_object)
      select ${tenant}, c.id, ${agent}, 'in_progress', 'erase-' || c.g, now() - interval '1 minute', now(),
             ${tenant}::text || '/' || c.id::text || '/recording.mp3'
      from c`;
    await db.sql`delete from public.tenants where id = ${tenant}`;
    const [jobs] = await db.sql`select count(*)::int as n, count(distinct payload ->> 'object')::int as objects,
        count(*) filter (where job_key is null and tenant_id = ${tenant})::int as tagged
      from private.jobs where task = 'storage-delete' and payload ->> 'object' like ${`${tenant}/%`}`;
    expect(jobs).toEqual({ n: 20_000, objects: 10_000, tagged: 20_000 });
    await db.sql`delete from private.jobs where task = 'storage-delete' and payload ->> 'object' like ${`${tenant}/%`}`;
  });

  it('an object replaced before its upload is deleted once the first URL expired; one given back to its call is kept', async () => {
    await endedCall(acme, 'pc-rec-e3');
    const body = { tenant_id: acme, provider_call_id: 'pc-rec-e3', size_bytes: AUDIO.length };
    const mp3 = await askUpload({ ...body, content_type: 'audio/mpeg' });
    const ogg = await askUpload({ ...body, content_type: 'audio/ogg' });
    expect(await jobsFor(mp3.body.recording_object)).toEqual([expect.objectContaining({ later: true })]);
    const [tagged] = await db.sql`select tenant_id from private.jobs where task = 'storage-delete' and payload ->> 'object' = ${mp3.body.recording_object}`;
    expect(tagged.tenant_id).toBe(acme);
    // Back to mp3, and uploaded: the job its first replacement added must not delete it.
    const back = await askUpload({ ...body, content_type: 'audio/mpeg' });
    expect(back.body.recording_object).toBe(mp3.body.recording_object);
    expect(await jobsFor(ogg.body.recording_object)).toEqual([expect.objectContaining({ later: true })]);
    expect((await put(back.body.upload.url, AUDIO)).status).toBe(200);
    // A late upload through the ogg URL, before it expired.
    expect((await put(ogg.body.upload.url, AUDIO)).status).toBe(200);
    await onlyJobsFor([mp3.body.recording_object, ogg.body.recording_object]);
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
    const report = await runJobs({ tasks: ['storage-delete'] });
    expect(report.tasks['storage-delete']).toMatchObject({ completed: 2, deleted: 1, kept: 1 });
    expect(await there(mp3.body.recording_object)).toBe(true);
    expect(await there(ogg.body.recording_object)).toBe(false);
    const [{ id }] = await db.sql`select id from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'pc-rec-e3'`;
    expect((await recording(id, tok.agent)).status).toBe(200);
  });

  it('a replaced recording uploaded after all (past every look the route took) is given back to its call by its job, when the call\'s own object never was', async () => {
    const id = await endedCall(acme, 'pc-rec-e5');
    const body = { tenant_id: acme, provider_call_id: 'pc-rec-e5', size_bytes: AUDIO.length };
    const mp3 = await askUpload({ ...body, content_type: 'audio/mpeg' });
    const wav = await askUpload({ ...body, content_type: 'audio/wav' });
    expect(wav.status).toBe(201);
    // The mp3 lands through its URL, still valid; the wav never comes.
    expect((await put(mp3.body.upload.url, AUDIO)).status).toBe(200);
    await onlyJobsFor([mp3.body.recording_object]);
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 1, restored: 1 });
    expect((await callRow(acme, id)).recording_object).toBe(mp3.body.recording_object);
    expect(await there(mp3.body.recording_object)).toBe(true);
    const got = await recording(id, tok.agent);
    expect([got.status, got.body.content_type]).toEqual([200, 'audio/mpeg']);
    // The wav's own job (its replacement by the restore) finds nothing to delete.
    await onlyJobsFor([wav.body.recording_object]);
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 1, absent: 1 });
    // Both uploaded: the call's own stays, the replaced one goes.
    const id2 = await endedCall(acme, 'pc-rec-e6');
    const b2 = { tenant_id: acme, provider_call_id: 'pc-rec-e6', size_bytes: AUDIO.length };
    const first = await askUpload({ ...b2, content_type: 'audio/mpeg' });
    const second = await askUpload({ ...b2, content_type: 'audio/ogg' });
    expect((await put(first.body.upload.url, AUDIO)).status).toBe(200);
    expect((await put(second.body.upload.url, AUDIO)).status).toBe(200);
    await onlyJobsFor([first.body.recording_object]);
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 1, deleted: 1 });
    expect((await callRow(acme, id2)).recording_object).toBe(second.body.recording_object);
    expect(await there(first.body.recording_object)).toBe(false);
  });

  it("every URL signed for a call moves its other objects' jobs past that URL's expiry, so a job never decides while an upload can still land", async () => {
    const id = await endedCall(acme, 'pc-rec-e7');
    const body = { tenant_id: acme, provider_call_id: 'pc-rec-e7', size_bytes: AUDIO.length };
    const mp3 = await askUpload({ ...body, content_type: 'audio/mpeg' });
    await askUpload({ ...body, content_type: 'audio/wav' });
    // An hour on, as it were: the mp3's job would run in 70 minutes; the wav asked again
    // signs a URL valid two hours, and the job moves past it.
    await db.sql`update private.jobs set run_at = now() + interval '70 minutes'
      where task = 'storage-delete' and payload ->> 'object' = ${mp3.body.recording_object}`;
    // As the queue can also hold them: the keyed job's worker died (its lease ran out), and
    // another whose key add_job released while it ran (it waits in the queue 'job:' || key,
    // pending again after a failed run).
    const key = `storage-delete:call-recordings/${mp3.body.recording_object}`;
    await db.sql`update private.jobs set locked_by = 'gone-worker', locked_until = now() - interval '1 minute' where job_key = ${key}`;
    await db.sql`insert into private.jobs (task, payload, queue, run_at)
      values ('storage-delete', ${db.sql.json({ bucket: 'call-recordings', object: mp3.body.recording_object })}, ${`job:${key}`}, now())`;
    const again = await askUpload({ ...body, content_type: 'audio/wav' });
    expect(again.status).toBe(201);
    expect(await jobsFor(mp3.body.recording_object)).toEqual([expect.objectContaining({ later: true }), expect.objectContaining({ later: true })]);
    await db.sql`update private.jobs set locked_by = null, locked_until = null where job_key = ${key}`;
    // A call cleared by hand holds nothing: its replaced object is deleted, not given back.
    expect((await put(mp3.body.upload.url, AUDIO)).status).toBe(200);
    await db.sql`update public.voice_calls set recording_object = null where tenant_id = ${acme} and id = ${id}`;
    await onlyJobsFor([mp3.body.recording_object]);
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
    // Its two jobs: one deletes it, the other finds it gone.
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 2, deleted: 1, absent: 1 });
    expect((await callRow(acme, id)).recording_object).toBeNull();
    expect(await there(mp3.body.recording_object)).toBe(false);
  });
});

describe('on a hosted project: Supabase Storage (a stand-in following its API)', () => {
  // Storage's answers as its API gives them: a signed upload path, 400 with statusCode
  // "409" for an object that exists (no upsert), object info 200 or 400 with statusCode
  // "404", a signed download path; and a switch for an outage (503 to everything).
  const stored = new Set<string>();
  const seen: string[] = [];
  let outage = false;
  let refused = false;
  /** An object whose upload finishes just after the storage was first asked about it. */
  let landsAfterFirstLook: string | null = null;
  /** The storage answers its next look, then goes down (an outage after the first answer). */
  let downAfterNextLook = false;
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const url = new URL(req.url!, 'http://storage');
      seen.push(`${req.method} ${decodeURIComponent(url.pathname)} ${req.headers.authorization === `Bearer ${service}`}`);
      const json = (status: number, body: unknown) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
      if (outage) return json(503, { statusCode: '503', error: 'Service Unavailable', message: 'down' });
      if (refused) return json(400, { statusCode: '403', error: 'Unauthorized', message: 'invalid signature' });
      if (req.method === 'DELETE') {
        const object = decodeURIComponent(url.pathname).replace(/^\/storage\/v1\/object\//, '');
        if (!stored.delete(object)) return json(400, { statusCode: '404', error: 'not_found', message: 'Object not found' });
        return json(200, { message: 'Successfully deleted' });
      }
      const m = decodeURIComponent(url.pathname).match(/^\/storage\/v1\/object\/(upload\/sign|info|sign)\/(.+)$/);
      if (!m) return json(404, { statusCode: '404', error: 'not_found', message: 'route' });
      const [, op, object] = m;
      if (op === 'upload/sign') {
        if (stored.has(object)) return json(400, { statusCode: '409', error: 'Duplicate', message: 'The resource already exists' });
        return json(200, { url: `/object/upload/sign/${object}?token=upload-token` });
      }
      if (op === 'info') {
        if (downAfterNextLook) {
          downAfterNextLook = false;
          outage = true;
        }
        if (landsAfterFirstLook === object) {
          landsAfterFirstLook = null;
          stored.add(object);
          return json(400, { statusCode: '404', error: 'not_found', message: 'Object not found' });
        }
        return stored.has(object) ? json(200, { name: object, size: AUDIO.length }) : json(400, { statusCode: '404', error: 'not_found', message: 'Object not found' });
      }
      return json(200, { signedURL: `/object/sign/${object}?token=download-token` });
    });
  });
  const saved: Record<string, string | undefined> = {};
  const vars = ['STORAGE_BACKEND', 'SUPABASE_URL', 'SUPABASE_SERVICE_ROLE_KEY', 'SUPABASE_AUTH_ISSUER'];
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    for (const v of vars) saved[v] = process.env[v];
    // Tokens stay verified against the issuer they were made for.
    process.env.SUPABASE_AUTH_ISSUER = `${supabaseUrl()}/auth/v1`;
    process.env.STORAGE_BACKEND = 'supabase';
    process.env.SUPABASE_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.SUPABASE_SERVICE_ROLE_KEY = service;
    resetIssuerProfiles();
  });
  afterAll(async () => {
    for (const v of vars) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
    resetIssuerProfiles();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('signs the upload and the download with the service key; a recording uploaded is 409, not a 500 from the storage refusing to sign again', async () => {
    seen.length = 0;
    const id = await endedCall(acme, 'pc-rec-h1');
    const object = `call-recordings/${acme}/${id}/recording.mp3`;
    const asked = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-h1', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect(asked.body.upload.url).toBe(`${process.env.SUPABASE_URL}/storage/v1/object/upload/sign/${object}?token=upload-token`);
    expect(seen).toEqual([`POST /storage/v1/object/upload/sign/${object} true`]);
    const early = await recording(id, tok.agent);
    expect([early.status, early.body.error?.details]).toEqual([404, { reason: 'not_uploaded' }]);
    stored.add(object);
    const got = await recording(id, tok.agent);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    const url = new URL(got.body.download.url);
    expect(url.pathname).toBe(`/storage/v1/object/sign/${object}`);
    expect(url.searchParams.get('download')).toBe(`call-${id}.mp3`);
    seen.length = 0;
    const again = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-h1', content_type: 'audio/wav', size_bytes: AUDIO.length });
    expect([again.status, errorCode(again)]).toEqual([409, 'recording_exists']);
    expect(seen).toEqual([`GET /storage/v1/object/info/${object} true`]);
    expect((await callRow(acme, id)).recording_object).toBe(`${acme}/${id}/recording.mp3`);
  });

  it('an upload that finishes while another type is asked for: the call keeps it (409 recording_exists), and so does its delayed delete job', async () => {
    const id = await endedCall(acme, 'pc-rec-h4');
    const first = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-h4', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    const object = `call-recordings/${first.body.recording_object}`;
    landsAfterFirstLook = object;
    const other = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-h4', content_type: 'audio/wav', size_bytes: AUDIO.length })
      .finally(() => (landsAfterFirstLook = null));
    expect([other.status, errorCode(other), other.body.error.details]).toEqual([409, 'recording_exists', { content_type: 'audio/mpeg' }]);
    expect((await callRow(acme, id)).recording_object).toBe(first.body.recording_object);
    // The job its brief replacement added, run now: the call holds the object, so it stays.
    await db.sql`delete from private.jobs where task = 'storage-delete' and payload ->> 'object' <> ${first.body.recording_object}`;
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 1, kept: 1 });
    expect(stored.has(object)).toBe(true);
    expect((await recording(id, tok.agent)).status).toBe(200);
  });

  it("a deleted call's recording is deleted with the service key; through an outage its job is retried", async () => {
    const id = await endedCall(acme, 'pc-rec-h3');
    const asked = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-h3', content_type: 'audio/mpeg', size_bytes: AUDIO.length });
    const object = `call-recordings/${asked.body.recording_object}`;
    stored.add(object);
    await db.sql`delete from public.voice_calls where tenant_id = ${acme} and id = ${id}`;
    await db.sql`delete from private.jobs where task = 'storage-delete' and payload ->> 'object' <> ${asked.body.recording_object}`;
    // Down, then refusing the key (400 with statusCode 403: no answer about the object,
    // not its absence): the job is retried both times, the object still there.
    for (const fault of ['outage', 'refused'] as const) {
      if (fault === 'outage') outage = true;
      else refused = true;
      try {
        await db.sql`update private.jobs set run_at = now() where task = 'storage-delete' and run_at < now() + interval '1 hour'`;
        const failed = await runJobs({ tasks: ['storage-delete'] });
        expect(failed.tasks['storage-delete'], fault).toMatchObject({ claimed: 1, retried: 1 });
        expect(stored.has(object)).toBe(true);
      } finally {
        outage = refused = false;
      }
    }
    // Both jobs due (the one at once, and the one for a late upload): one deletes it, the
    // other finds it gone (400 with statusCode 404) and is done too.
    await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
    seen.length = 0;
    const done = await runJobs({ tasks: ['storage-delete'] });
    expect(done.tasks['storage-delete']).toMatchObject({ completed: 2, deleted: 1, absent: 1 });
    expect(seen).toEqual([`DELETE /storage/v1/object/${object} true`, `DELETE /storage/v1/object/${object} true`]);
    expect(stored.has(object)).toBe(false);
    // Gone already (deleted by hand, say): done, not retried for ever.
    await db.sql`select private.add_job('storage-delete', ${db.sql.json({ bucket: 'call-recordings', object: asked.body.recording_object })})`;
    expect((await runJobs({ tasks: ['storage-delete'] })).tasks['storage-delete']).toMatchObject({ completed: 1, absent: 1 });
  });

  it('a storage outage is a 503 to retry, on both routes, and writes nothing', async () => {
    const id = await endedCall(acme, 'pc-rec-h2');
    const first = await askUpload({ tenant_id: acme, provider_call_id: 'pc-rec-h2', content_type: 'audio/mpeg', size_bytes: 10 });
    expect(first.status).toBe(201);
    outage = true;
    try {
      const asked = await app.request('/voice/calls/recordings', {
        method: 'POST',
        headers: { ...asService(), 'content-type': 'application/json' },
        body: JSON.stringify({ tenant_id: acme, provider_call_id: 'pc-rec-h2', content_type: 'audio/ogg', size_bytes: 10 }),
      });
      expect([asked.status, (await asked.json()).error.code, asked.headers.get('retry-after')]).toEqual([503, 'storage_unavailable', '5']);
      // Not moved to the type asked for while the storage could not say what it holds.
      expect((await callRow(acme, id)).recording_object).toBe(first.body.recording_object);
      const got = await recording(id, tok.agent);
      expect([got.status, errorCode(got)]).toEqual([503, 'storage_unavailable']);
    } finally {
      outage = false;
    }
    // Down after the call was written (the signing, or the look after a new type's write):
    // the call is given back what it had, not left naming an object nobody can upload.
    const fresh = await endedCall(acme, 'pc-rec-h5');
    const ask = (provider_call_id: string, content_type: string) =>
      app.request('/voice/calls/recordings', {
        method: 'POST',
        headers: { ...asService(), 'content-type': 'application/json' },
        body: JSON.stringify({ tenant_id: acme, provider_call_id, content_type, size_bytes: 10 }),
      });
    // A first request's call keeps the name (a retry signs the same object; cleared, a
    // delete job would follow it, and could take a recording a concurrent retry's URL put
    // there), and nothing is uploaded there yet.
    outage = true;
    try {
      const refused = await ask('pc-rec-h5', 'audio/mpeg');
      expect([refused.status, (await refused.json()).error.code]).toEqual([503, 'storage_unavailable']);
      expect((await callRow(acme, fresh)).recording_object).toBe(`${acme}/${fresh}/recording.mp3`);
    } finally {
      outage = false;
    }
    expect((await db.sql`select count(*)::int as n from private.jobs where task = 'storage-delete'
      and payload ->> 'object' = ${`${acme}/${fresh}/recording.mp3`}`)[0].n).toBe(0);
    downAfterNextLook = true;
    try {
      const moved = await ask('pc-rec-h2', 'audio/wav');
      expect([moved.status, (await moved.json()).error.code]).toEqual([503, 'storage_unavailable']);
      expect((await callRow(acme, id)).recording_object).toBe(first.body.recording_object);
    } finally {
      outage = downAfterNextLook = false;
    }
    // Up again, both go on as if the outage had not been.
    expect((await ask('pc-rec-h5', 'audio/mpeg')).status).toBe(201);
    expect((await callRow(acme, fresh)).recording_object).toBe(`${acme}/${fresh}/recording.mp3`);
  });
});
