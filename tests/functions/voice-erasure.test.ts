// Erasing a voice customer (issue 14; 20261204100000_voice_customer_erasure.sql,
// 20261204101000_voice_customer_erasure_trail_job.sql, POST /voice/customers/{id}/erasure):
// the request deletes the customer, their calls (linked, or unlinked with their number on
// the other party's side), transcripts, recordings, held provider events and unsent
// webhook events; the voice-erasure-trail job then erases every image of those records,
// and of their calls and records deleted before, in the audit trail. The proof is an
// attacker's: after both, every row of every table of the database is read as text and
// none holds the customer's name, e-mail, notes, transcript words or number (the twin
// tenant's rows with the same number aside); and exactly the entries of the erased
// records are redacted, no bystander's (a live record that once had the number, a call
// relinked to someone else, calls to the agent's line).
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/voice/app.ts';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
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
const ACME_AGENT = '73000000-0000-4000-8000-000000000011';
const GLOBEX_AGENT = '73000000-0000-4000-8000-000000000012';
const AUDIO = new Uint8Array(Array.from({ length: 2048 }, (_, i) => (i * 31) % 256));

beforeAll(async () => {
  db = await freshDatabase('fn_voice_erasure');
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'voice-erasure-'));
  auth = await configureAuth(db.url, { LOCAL_STORAGE_DIR: storageDir, STORAGE_BACKEND: 'local' });
  service = await apiKey('service_role', TEST_JWT_SECRET);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${ACME_AGENT}, 'Desk', '+14155553011', 'v', ${db.sql.json(LLM)}),
           (${globex}, ${GLOBEX_AGENT}, 'Desk', '+14155553012', 'v', ${db.sql.json(LLM)})`;
  // Every event type of both tenants is queued for a receiver (never sent here).
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
    values (${acme}, 'https://hooks.example.com/erasure', 'v1:x', '{}'), (${globex}, 'https://hooks.example.com/erasure', 'v1:x', '{}')`;
});
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

const asService = () => ({ authorization: `Bearer ${service}` });
const event = async (body: Record<string, unknown>) => {
  const r = await call(app, 'POST', '/voice/calls/events', { body, headers: asService() });
  expect(r.status, JSON.stringify(r.body)).toBeLessThan(300);
  return r;
};
const erase = (id: string, token = tok.admin) => call(app, 'POST', `/voice/customers/${id}/erasure`, { token });
/** Runs the erasure's trail job to its end (and the storage deletes), in batches of `batch` entries. */
async function finishTrail(batch?: number) {
  if (batch) await db.sql`update private.jobs set payload = payload || ${db.sql.json({ batch })} where task = 'voice-erasure-trail'`;
  const report = await runJobs({ tasks: ['voice-erasure-trail', 'storage-delete'] });
  expect(await db.sql`select id, last_error, payload from private.jobs where task = 'voice-erasure-trail'`).toEqual([]);
  return report.tasks['voice-erasure-trail'];
}
/** Sets aside the trail jobs that deleting calls queued (their own redaction, tested in
 *  voice-call-tombstones.test.ts): these tests are about what the erasure finds. */
const setAsideDeletionTrails = () =>
  db.sql`delete from private.jobs where task = 'voice-erasure-trail' and payload ->> 'customer_id' is null`;
/** The audit entry ids of these records, by table and record id. */
async function entriesOf(records: { table: string; ids: string[] }[]) {
  const ids = new Set<string>();
  for (const r of records.filter((x) => x.ids.length)) {
    for (const row of await db.sql`select id::text from public.audit_logs
      where tenant_id = ${acme} and table_name = ${r.table} and record_key ->> 'id' in ${db.sql(r.ids)}`) ids.add(row.id);
  }
  return ids;
}
/** The ids of the segments of these calls that the trail has entries of (deleted ones too). */
const segmentsInTrail = async (calls: string[]) =>
  (await db.sql`select distinct record_key ->> 'id' as id from public.audit_logs where tenant_id = ${acme}
    and table_name = 'voice_call_segments' and coalesce(old_data, new_data) ->> 'call_id' in ${db.sql(calls)}`).map((r) => r.id as string);
const addCustomer = async (body: Record<string, unknown>, token = tok.agent) => {
  const r = await call(app, 'POST', '/voice/customers', { token, body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
};
/** A call the provider started, talked in and ended: its id. */
async function talkedCall(tenant: string, providerCallId: string, from: string, words: string, summary?: string, to?: string) {
  const started = await event({
    type: 'call.started',
    tenant_id: tenant,
    provider_call_id: providerCallId,
    agent_id: tenant === acme ? ACME_AGENT : GLOBEX_AGENT,
    from,
    ...(to ? { to } : {}),
    answered: true,
  });
  await event({
    type: 'transcript.segments',
    tenant_id: tenant,
    provider_call_id: providerCallId,
    segments: [
      { seq: 0, speaker: 'agent', content: 'Hello, how can I help?' },
      { seq: 1, speaker: 'customer', content: `It is about the ${words}` },
    ],
  });
  await event({ type: 'call.ended', tenant_id: tenant, provider_call_id: providerCallId, status: 'completed', summary: summary ?? words });
  return started.body.call_id as string;
}

/** Every row of every table outside Postgres's own catalogs that holds `needle`, as
 *  `schema.table` and the row as text, leaving out rows of the tables with a tenant_id
 *  that belong to `except` (the twin tenant). Read as the superuser: what a copy of the
 *  database's tables would show. */
async function hitsOf(needle: string, except?: string): Promise<{ table: string; row: string }[]> {
  const tables = await db.sql<{ schema: string; name: string; tenanted: boolean }[]>`
    select n.nspname as schema, c.relname as name,
           exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped) as tenanted
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname !~ '^pg_toast'
    order by 1, 2`;
  expect(tables.map((t) => `${t.schema}.${t.name}`)).toEqual(expect.arrayContaining(['public.audit_logs', 'private.webhook_events']));
  const found: { table: string; row: string }[] = [];
  for (const t of tables) {
    const rows = await db.sql<{ row: string }[]>`
      select r::text as row from ${db.sql(t.schema)}.${db.sql(t.name)} r
      where strpos(r::text, ${needle}) > 0
        and ${t.tenanted && except ? db.sql`r.tenant_id is distinct from ${except}::uuid` : db.sql`true`}`;
    for (const r of rows) found.push({ table: `${t.schema}.${t.name}`, row: r.row });
  }
  return found;
}
/** The tables of those rows. */
const rowsHolding = async (needle: string, except?: string) => [...new Set((await hitsOf(needle, except)).map((h) => h.table))];

describe('erasing a customer', () => {
  it('leaves no trace of them in any table: record, calls, transcripts, recording, held events, webhooks, audit images', async () => {
    const phone = '+33611112222';
    // A call from their number before they were a customer (no customer linked), and one
    // the provider reported without the '+'.
    const before = await talkedCall(acme, 'pc-erase-0', phone, 'quokkaberry invoice', 'Quentin Erasmus asked about an invoice');
    const noPlus = await talkedCall(acme, 'pc-erase-5', '33611112222', 'quokkaberry noplus');
    // An earlier record with their number, deleted (its images stay in the trail).
    const earlier = await addCustomer({ phone, name: 'Old Quentin Erasmus' });
    expect((await call(app, 'DELETE', `/voice/customers/${earlier}`, { token: tok.agent })).status).toBe(204);
    // A live record that had their number once, and moved on: a bystander.
    const movedOn = await addCustomer({ phone, name: 'Bea Bystander' });
    expect((await call(app, 'PATCH', `/voice/customers/${movedOn}`, { token: tok.agent, body: { phone: '+33644445555' } })).status).toBe(200);
    const id = await addCustomer({
      phone,
      name: 'Q. Erasmus',
      email: 'quentin.erasmus@example.org',
      notes: 'Allergic to marmalade',
      tags: ['vip'],
      recording_consent: true,
    });
    const renamed = await call(app, 'PATCH', `/voice/customers/${id}`, { token: tok.agent, body: { name: 'Quentin Erasmus' } });
    expect(renamed.status).toBe(200);
    const linked = await talkedCall(acme, 'pc-erase-1', phone, 'quokkaberry refund', 'Quentin Erasmus wants a refund');
    const removedEarlier = await talkedCall(acme, 'pc-erase-2', phone, 'quokkaberry delivery');
    const [{ customer_id }] = await db.sql`select customer_id from public.voice_calls where id = ${linked}`;
    expect(customer_id).toBe(id);
    // An admin deleted one of their calls before: only the trail holds it.
    await db.sql`delete from public.voice_calls where tenant_id = ${acme} and id = ${removedEarlier}`;
    await setAsideDeletionTrails();
    // Another customer's call, linked to them by mistake and relinked: a bystander, whose
    // entries name them.
    const other = await addCustomer({ phone: '+33633334444', name: 'Olga Bystander' });
    const relinked = await talkedCall(acme, 'pc-erase-6', '+33633334444', 'pelican relinked');
    await db.sql`update public.voice_calls set customer_id = ${id} where id = ${relinked}`;
    await db.sql`update public.voice_calls set customer_id = ${other} where id = ${relinked}`;
    // A recording uploaded for the linked call.
    const asked = await call(app, 'POST', '/voice/calls/recordings', {
      headers: asService(),
      body: { tenant_id: acme, provider_call_id: 'pc-erase-1', content_type: 'audio/mpeg', size_bytes: AUDIO.length },
    });
    expect(asked.status, JSON.stringify(asked.body)).toBe(201);
    expect((await handleLocalStorage(new Request(asked.body.upload.url, { method: 'PUT', body: AUDIO }))).status).toBe(200);
    const file = path.join(storageDir, 'call-recordings', acme, linked, 'recording.mp3');
    expect((await stat(file)).size).toBe(AUDIO.length);
    // An event held under the linked call's provider id (left over, as a held row is).
    await db.sql`insert into private.voice_call_early_events (tenant_id, provider_call_id, type, payload)
      values (${acme}, 'pc-erase-1', 'call.ended', ${db.sql.json({ summary: 'Quentin Erasmus, again' })})`;

    // Bystanders: another customer's call, and the twin tenant's customer with the same number.
    const otherCall = await talkedCall(acme, 'pc-erase-3', '+33633334444', 'pelican order');
    const twin = await addCustomer({ phone, name: 'Twin Erasmus' }, await supabaseToken(users.globexAgent, { tenantId: globex }));
    const twinCall = await talkedCall(globex, 'pc-erase-1', phone, 'quokkaberry twin');

    const needles = ['Quentin', 'quokkaberry', 'marmalade', 'quentin.erasmus@example.org'];
    for (const needle of needles) expect(await rowsHolding(needle, globex), needle).toContain('public.audit_logs');
    // What must be redacted, found here by the records' ids (the erasure finds them otherwise).
    const erasedCalls = [before, noPlus, linked, removedEarlier];
    const bystanders = await entriesOf([
      { table: 'voice_customers', ids: [movedOn, other] },
      { table: 'voice_calls', ids: [relinked, otherCall] },
      { table: 'voice_call_segments', ids: await segmentsInTrail([relinked, otherCall]) },
    ]);
    const erasedSegments = await segmentsInTrail(erasedCalls);
    expect(erasedSegments).toHaveLength(8);
    const segments = (await db.sql`select count(*)::int as n from public.voice_call_segments where call_id in ${db.sql([before, noPlus, linked])}`)[0].n;
    expect(segments).toBe(6);

    const erased = await erase(id);
    expect(erased.status, JSON.stringify(erased.body)).toBe(200);
    expect(erased.body).toMatchObject({
      customer_id: id,
      erased: { calls: 3, transcript_segments: 6, recordings: 1, held_events: 1 },
      tickets_kept: [],
      audit_trail: 'queued',
    });
    expect([...erased.body.call_ids].sort()).toEqual([before, noPlus, linked].sort());
    // customer.created of this record; call.started and call.ended of its three calls.
    expect(erased.body.erased.webhook_events).toBe(7);
    // Receivers are told, with ids only.
    const [told] = await db.sql`select payload from private.webhook_events where tenant_id = ${acme} and type = 'customer.erased'`;
    expect(told.payload.data.id).toBe(id);
    expect([...told.payload.data.call_ids].sort()).toEqual([before, noPlus, linked].sort());

    // A batch whose lease was lost after it committed runs again: the erasure's job key
    // keeps one chain (without it, a second successor would start a second chain).
    await db.sql`update private.jobs set payload = payload || ${db.sql.json({ batch: 3 })} where task = 'voice-erasure-trail'`;
    const [first] = await db.sql`update private.jobs set locked_by = 'lost-worker', locked_until = now() + interval '2 minutes'
      where task = 'voice-erasure-trail' returning id`;
    for (let i = 0; i < 2; i++) await db.sql`select private.voice_erasure_trail_batch(${first.id}, 'lost-worker')`;
    const chain = await db.sql`select id, job_key from private.jobs where task = 'voice-erasure-trail' order by id`;
    expect(chain.map((j) => [j.id === first.id, j.job_key])).toEqual([[true, null], [false, `voice-erasure-trail:${acme}:${id}`]]);
    await db.sql`delete from private.jobs where id = ${first.id}`;
    // The trail, in batches of 3 entries: many jobs, one after another.
    const trail = await finishTrail(3);
    expect(trail.completed).toBeGreaterThan(10);
    expect(trail.done).toBe(1);
    // The call deleted before told receivers so (its id only): the trail keeps that notice.
    expect(await db.sql`select type, payload -> 'data' as data from private.webhook_events
      where ordering_key = ${'call:' + removedEarlier}`).toEqual([{ type: 'call.deleted', data: { id: removedEarlier } }]);

    // Nothing of them is left anywhere (the twin tenant's own rows aside).
    for (const needle of needles) expect(await rowsHolding(needle, globex), needle).toEqual([]);
    // The number is left only in the history of the record that had it before and moved
    // on (its own entries and its customer.created event): that was Bea's number then.
    const numberLeft = await hitsOf('33611112222', globex);
    expect(numberLeft.filter((h) => !h.row.includes(movedOn))).toEqual([]);
    expect(numberLeft.map((h) => h.table).sort()).toEqual(['private.webhook_events', 'public.audit_logs', 'public.audit_logs']);
    // Exactly the entries of the erased records are redacted: the customer's, the earlier
    // record's, the four calls' and their segments' (the erasure's own deletes included).
    const expected = await entriesOf([
      { table: 'voice_customers', ids: [id, earlier] },
      { table: 'voice_calls', ids: erasedCalls },
      { table: 'voice_call_segments', ids: erasedSegments },
    ]);
    const redacted = await db.sql<{ id: string; images: boolean }[]>`
      select id::text, old_data is not null or new_data is not null as images from public.audit_logs where redacted_at is not null`;
    expect(new Set(redacted.map((r) => r.id))).toEqual(expected);
    expect(redacted.filter((r) => r.images)).toEqual([]);
    for (const e of bystanders) expect(expected.has(e), `bystander entry ${e}`).toBe(false);
    const [kept] = await db.sql`select count(*)::int as n from public.audit_logs
      where id in ${db.sql([...bystanders].map(Number))} and redacted_at is null and (old_data is not null or new_data is not null)`;
    expect(kept.n).toBe(bystanders.size);
    // Receivers hear at the end of every call erased, those deleted before included.
    const [completed] = await db.sql`select payload from private.webhook_events where tenant_id = ${acme} and type = 'customer.erasure_completed'`;
    expect(completed.payload.data.id).toBe(id);
    expect([...completed.payload.data.call_ids].sort()).toEqual([...erasedCalls].sort());
    expect(completed.payload.data.audit_entries).toBe(expected.size);
    expect(trail.redacted).toBe(expected.size);
    const [deletedBy] = await db.sql`
      select actor_user_id, actor_role, old_data, redacted_at is not null as redacted from public.audit_logs
      where table_name = 'voice_customers' and record_key ->> 'id' = ${id} and action = 'DELETE'`;
    expect(deletedBy).toEqual({ actor_user_id: users.acmeAdmin.id, actor_role: 'authenticated', old_data: null, redacted: true });
    // The recording's bytes go with the job the erasure queued.
    await expect(stat(file)).rejects.toMatchObject({ code: 'ENOENT' });

    // Bystanders untouched: records, calls, transcripts.
    expect((await call(app, 'GET', `/voice/customers/${other}`, { token: tok.agent })).body.name).toBe('Olga Bystander');
    expect((await call(app, 'GET', `/voice/customers/${movedOn}`, { token: tok.agent })).body.name).toBe('Bea Bystander');
    expect(JSON.stringify((await call(app, 'GET', `/voice/calls/${relinked}/transcript`, { token: tok.agent })).body)).toContain('pelican relinked');
    expect((await call(app, 'GET', `/voice/calls/${otherCall}/transcript`, { token: tok.agent })).status).toBe(200);
    const globexToken = await supabaseToken(users.globexAgent, { tenantId: globex });
    expect((await call(app, 'GET', `/voice/customers/${twin}`, { token: globexToken })).body.name).toBe('Twin Erasmus');
    const twinTranscript = await call(app, 'GET', `/voice/calls/${twinCall}/transcript`, { token: globexToken });
    expect(JSON.stringify(twinTranscript.body)).toContain('quokkaberry twin');

    // The admins' trail shows the redacted entries as such.
    const page = await call(tenantsApp, 'GET', `/tenants/${acme}/audit?table_name=voice_customers&limit=100`, { token: tok.admin });
    expect(page.status).toBe(200);
    const ofErased = page.body.items.filter((e: { record_key: { id: string } }) => e.record_key.id === id);
    expect(ofErased.map((e: { action: string }) => e.action).sort()).toEqual(['DELETE', 'INSERT', 'UPDATE']);
    for (const e of ofErased) expect(e).toMatchObject({ old_data: null, new_data: null, redacted_at: expect.any(String) });

    // Erased is gone: a second erasure, a transcript are 404s.
    expect([(await erase(id)).status, errorCode(await erase(id))]).toEqual([404, 'not_found']);
    expect((await call(app, 'GET', `/voice/calls/${linked}/transcript`, { token: tok.admin })).status).toBe(404);
  });

  it('each batch runs at most once: a job claimed again after its batch committed does nothing; a worker whose lease ran out records nothing', async () => {
    const phone = '+33600000005';
    const id = await addCustomer({ phone, name: 'Twice Erased' });
    const callId = await talkedCall(acme, 'pc-erase-twice', phone, 'twice words');
    const segmentIds = await segmentsInTrail([callId]);
    expect((await erase(id)).status).toBe(200);
    await db.sql`update private.jobs set payload = payload || ${db.sql.json({ batch: 3 })} where task = 'voice-erasure-trail'`;
    // A worker whose lease ran out: nothing recorded, no next batch.
    const [stale] = await db.sql`update private.jobs set locked_by = 'late', locked_until = now() - interval '1 second'
      where task = 'voice-erasure-trail' returning id, payload`;
    expect((await db.sql`select private.voice_erasure_trail_batch(${stale.id}, 'late') as step`)[0].step).toBeNull();
    expect(await db.sql`select id, payload from private.jobs where task = 'voice-erasure-trail'`).toEqual([{ id: stale.id, payload: stale.payload }]);
    await db.sql`update private.jobs set locked_by = null, locked_until = null where id = ${stale.id}`;
    // Every batch run twice by its worker before it is completed: the second does nothing.
    let batches = 0;
    for (;;) {
      const [job] = await db.sql`select id from private.jobs where task = 'voice-erasure-trail' order by id limit 1`;
      if (!job) break;
      await db.sql`update private.jobs set locked_by = 'w', locked_until = now() + interval '2 minutes' where id = ${job.id}`;
      const [{ step: once }] = await db.sql`select private.voice_erasure_trail_batch(${job.id}, 'w') as step`;
      const [{ step: again }] = await db.sql`select private.voice_erasure_trail_batch(${job.id}, 'w') as step`;
      expect(again).toEqual({ ...once, committed: true });
      await db.sql`delete from private.jobs where id = ${job.id}`;
      batches++;
    }
    expect(batches).toBeGreaterThan(5);
    const expected = await entriesOf([
      { table: 'voice_customers', ids: [id] },
      { table: 'voice_calls', ids: [callId] },
      { table: 'voice_call_segments', ids: segmentIds },
    ]);
    const [{ n }] = await db.sql`select count(*)::int as n from public.audit_logs where redacted_at is not null and id in ${db.sql([...expected].map(Number))}`;
    expect(n).toBe(expected.size);
    const told = await db.sql`select payload from private.webhook_events
      where type = 'customer.erasure_completed' and payload -> 'data' ->> 'id' = ${id}`;
    expect(told.map((e) => [e.payload.data.call_ids, e.payload.data.audit_entries])).toEqual([[[callId], expected.size]]);
  });

  it("a customer whose number is the agent's own line takes only their own calls, not every call to that line", async () => {
    const line = '+14155553011'; // ACME_AGENT's number: every inbound call's to_number
    const id = await addCustomer({ phone: line, name: 'Line Tester' });
    const inbound = await talkedCall(acme, 'pc-erase-line-1', '+33612121212', 'lighthouse question', undefined, line);
    expect((await db.sql`select to_number from public.voice_calls where id = ${inbound}`)[0].to_number).toBe(line);
    // Someone else's call to the line, deleted before: its entries are theirs, not the customer's.
    const deletedInbound = await talkedCall(acme, 'pc-erase-line-3', '+33613131313', 'harbour question', undefined, line);
    await db.sql`delete from public.voice_calls where id = ${deletedInbound}`;
    await setAsideDeletionTrails();
    const outbound = await event({
      type: 'call.started',
      tenant_id: acme,
      provider_call_id: 'pc-erase-line-2',
      agent_id: ACME_AGENT,
      direction: 'outbound',
      from: '+33600000099',
      to: line,
    });
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'pc-erase-line-2', status: 'completed' });
    const done = await erase(id);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.call_ids).toEqual([outbound.body.call_id]);
    await finishTrail();
    const [left] = await db.sql`select count(*)::int as n from public.voice_calls where id = ${inbound}`;
    expect(left.n).toBe(1);
    const redactedCalls = await db.sql`select distinct record_key ->> 'id' as id from public.audit_logs
      where redacted_at is not null and table_name = 'voice_calls' and record_key ->> 'id' in (${inbound}, ${deletedInbound}, ${outbound.body.call_id})`;
    expect(redactedCalls.map((r) => r.id)).toEqual([outbound.body.call_id]);
    // Its entries are left as they were (its webhook events went with its delete, which
    // told receivers: that notice stays too).
    expect(await rowsHolding('harbour question', globex)).toEqual(['public.audit_logs']);
    expect(await db.sql`select type from private.webhook_events where ordering_key = ${'call:' + deletedInbound}`)
      .toEqual([{ type: 'call.deleted' }]);
    // The caller's own call to the line keeps everything: its events wait to be sent.
    expect(await rowsHolding('lighthouse question', globex)).toEqual([
      'private.webhook_events',
      'public.audit_logs',
      'public.voice_call_segments',
      'public.voice_calls',
    ]);
  });

  it('only admins of the tenant erase: agents, users and the other tenant\'s admin are refused, and nothing changes', async () => {
    const id = await addCustomer({ phone: '+33655556666', name: 'Refused Erasure' });
    const callId = await talkedCall(acme, 'pc-erase-refused', '+33655556666', 'kiwifruit');
    const state = async () => ({
      customer: (await db.sql`select count(*)::int as n from public.voice_customers where id = ${id}`)[0].n,
      calls: (await db.sql`select count(*)::int as n from public.voice_calls where id = ${callId}`)[0].n,
      redacted: (await db.sql`select count(*)::int as n from public.audit_logs where redacted_at is not null`)[0].n,
    });
    const unchanged = await state();
    expect(unchanged).toMatchObject({ customer: 1, calls: 1 });
    for (const token of [tok.agent, tok.user]) {
      const r = await erase(id, token);
      expect([r.status, errorCode(r)]).toEqual([403, 'forbidden']);
    }
    // Another tenant's admin names acme's customer: not found in their tenant.
    const foreign = await erase(id, tok.globexAdmin);
    expect([foreign.status, errorCode(foreign)]).toEqual([404, 'not_found']);
    // An API key, even an admin's with customers:write: people only.
    const made = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: tok.admin,
      body: { name: 'crm sync', scopes: ['customers:read', 'customers:write'] },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const byKey = await call(app, 'POST', `/voice/customers/${id}/erasure`, { headers: { authorization: `Bearer ${made.body.key}` } });
    expect([byKey.status, errorCode(byKey)]).toEqual([403, 'insufficient_scope']);
    // Malformed and unknown ids.
    expect([(await erase('not-a-uuid')).status, errorCode(await erase('not-a-uuid'))]).toEqual([422, 'validation_failed']);
    expect((await erase('73000000-0000-4000-8000-0000000000ff')).status).toBe(404);
    expect(await state()).toEqual(unchanged);

    // Straight to the function with the caller's own rights (as a function's transaction
    // runs): agents of the tenant, admins of another, nobody signed in are refused.
    for (const [role, claims] of [
      ['authenticated', supabaseClaims(users.acmeAgent, acme)],
      ['authenticated', supabaseClaims(users.globexAdmin, globex)],
      ['authenticated', supabaseClaims(users.globexAdmin, acme)],
      ['anon', {}],
    ] as const) {
      const r = await probeAs(db.sql, role, claims, (tx) => tx`select private.voice_customer_erase(${acme}, ${id})`);
      expect(r.ok ? 'ran' : r.error.code, `${role} ${JSON.stringify(claims)}`).toBe('42501');
    }
    // The other tenant's admin passing their own tenant with acme's customer: not found.
    const cross = await probeAs(db.sql, 'authenticated', supabaseClaims(users.globexAdmin, globex), (tx) =>
      tx`select private.voice_customer_erase(${globex}, ${id})`);
    expect(cross.ok ? 'ran' : cross.error.code).toBe('PT404');
    expect(await state()).toEqual(unchanged);
  });

  it('refuses while one of their calls has not ended, naming it; erases once it has', async () => {
    const phone = '+33677778888';
    const id = await addCustomer({ phone, name: 'Busy Caller' });
    const started = await event({ type: 'call.started', tenant_id: acme, provider_call_id: 'pc-erase-open', agent_id: ACME_AGENT, from: phone });
    const refused = await erase(id);
    expect([refused.status, errorCode(refused), refused.body.error.details]).toEqual([409, 'calls_in_progress', {
      call_ids: [started.body.call_id],
    }]);
    expect((await db.sql`select count(*)::int as n from public.voice_customers where id = ${id}`)[0].n).toBe(1);
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'pc-erase-open', status: 'missed' });
    const done = await erase(id);
    expect([done.status, done.body.erased.calls]).toEqual([200, 1]);
  });

  it('keeps the tickets opened from their calls, naming them, and unlinks nothing else', async () => {
    const id = await addCustomer({ phone: '+33699990000', name: 'Ticket Holder' });
    const callId = await talkedCall(acme, 'pc-erase-ticket', '+33699990000', 'broken kettle');
    const opened = await call(app, 'POST', `/voice/calls/${callId}/ticket`, { token: tok.agent, body: {} });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const done = await erase(id);
    expect(done.status).toBe(200);
    expect(done.body.tickets_kept).toEqual([opened.body.ticket_id]);
    expect((await db.sql`select count(*)::int as n from public.tickets where id = ${opened.body.ticket_id}`)[0].n).toBe(1);
  });

  it("a call from the customer starting while their erasure commits is recorded as an unknown caller's, not refused", async () => {
    const phone = '+33600000003';
    const id = await addCustomer({ phone, name: 'Racing Caller' });
    let erased!: () => void;
    let release!: () => void;
    const ran = new Promise<void>((r) => (erased = r));
    const commit = new Promise<void>((r) => (release = r));
    // The erasure, done but not committed: it holds the customer's row.
    const erasing = db.sql.begin(async (tx) => {
      await tx`select private.voice_customer_erase(${acme}, ${id})`;
      erased();
      await commit;
    });
    await ran;
    // The call's insert saw the customer in its snapshot; its foreign key check waits.
    const starting = call(app, 'POST', '/voice/calls/events', {
      headers: asService(),
      body: { type: 'call.started', tenant_id: acme, provider_call_id: 'pc-erase-race', agent_id: ACME_AGENT, from: phone },
    });
    await expect.poll(async () =>
      (await db.sql`select count(*)::int as n from pg_stat_activity
        where datname = current_database() and wait_event_type = 'Lock' and query ilike '%voice_call_started%'`)[0].n, {
        timeout: 10_000,
      }).toBeGreaterThan(0);
    release();
    await erasing;
    const started = await starting;
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const [row] = await db.sql`select customer_id, from_number from public.voice_calls where id = ${started.body.call_id}`;
    expect(row).toEqual({ customer_id: null, from_number: phone });
  });

  it('a platform admin may erase in any tenant', async () => {
    const id = await addCustomer({ phone: '+33600000004', name: 'Platform Erasure' });
    const superToken = await supabaseToken(users.super, { tenantId: acme });
    const done = await erase(id, superToken);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
  });

  it('a suspended tenant, or one whose plan no longer has voice, may still erase', async () => {
    const a = await addCustomer({ phone: '+33600000001', name: 'Suspended Erasure' });
    const b = await addCustomer({ phone: '+33600000002', name: 'Downgraded Erasure' });
    try {
      await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
      expect((await erase(a)).status).toBe(200);
      await db.sql`update public.tenants set status = 'active', plan = 'starter' where id = ${acme}`;
      expect((await erase(b)).status).toBe(200);
    } finally {
      await db.sql`update public.tenants set status = 'active', plan = 'pro' where id = ${acme}`;
    }
    expect((await db.sql`select count(*)::int as n from public.voice_customers where id in (${a}, ${b})`)[0].n).toBe(0);
  });
});
