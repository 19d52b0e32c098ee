// A deleted call stays deleted (issue 14; 20261204110000_voice_call_tombstones.sql,
// 20261204111000_voice_call_tombstones_review.sql): the sender of call events retries
// each until it sees a 2xx, so a start retried after its call was deleted (by an admin
// through the table, or erasing the customer) created the call again with the caller's
// number, and a late transcript was held ten minutes. Now every delete leaves a
// tombstone (the provider call id's SHA-256) for 30 days, and every event for it is
// taken and dropped — 200 `{applied: false, deleted: true}` — whatever the tenant's
// state: no call, no held event, no webhook event, no audit entry. A recording asked for
// is 410 call_deleted. Per tenant (another tenant's call of the same id starts), for the
// provider's credential and a tenant's key alike, kept only by a delete that commits
// (any role's), none for people's own calls or a tenant hard-deleted, pruned after 30
// days by the daily job; a start, segments, a recording request or an early end's resend
// racing the delete get one answer or the other, never the call back.
import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
const AGENTS: Record<string, string> = {
  [acme]: '74000000-0000-4000-8000-000000000011',
  [globex]: '74000000-0000-4000-8000-000000000012',
};

beforeAll(async () => {
  db = await freshDatabase('fn_voice_tombstones');
  auth = await configureAuth(db.url);
  service = await apiKey('service_role', TEST_JWT_SECRET);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${AGENTS[acme]}, 'Desk', '+14155554011', 'v', ${db.sql.json(LLM)}),
           (${globex}, ${AGENTS[globex]}, 'Desk', '+14155554012', 'v', ${db.sql.json(LLM)})`;
  // Every event type of acme is queued for a receiver (never sent here): a start taken
  // again would show as a call.started event.
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
    values (${acme}, 'https://hooks.example.com/tombstones', 'v1:x', '{}')`;
});
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
});

const send = (body: Record<string, unknown>, authorization = `Bearer ${service}`) =>
  call(app, 'POST', '/voice/calls/events', { body, headers: { authorization } });
const started = (tenant: string, id: string, from = '+33612345678') => ({
  type: 'call.started',
  tenant_id: tenant,
  provider_call_id: id,
  agent_id: AGENTS[tenant],
  from,
  answered: true,
});
const segments = (tenant: string, id: string, words: string) => ({
  type: 'transcript.segments',
  tenant_id: tenant,
  provider_call_id: id,
  segments: [{ seq: 0, speaker: 'customer', content: words }],
});
const answered = (tenant: string, id: string) => ({ type: 'call.answered', tenant_id: tenant, provider_call_id: id });
const ended = (tenant: string, id: string) => ({ type: 'call.ended', tenant_id: tenant, provider_call_id: id, status: 'completed' });
const hashOf = (providerCallId: string) => createHash('sha256').update(providerCallId, 'utf8').digest('hex');
/** Every event the provider could send for a call, start first. */
const everyEvent = (tenant: string, id: string, words = 'late words') =>
  [started(tenant, id), answered(tenant, id), segments(tenant, id, words), ended(tenant, id)];
/** A call the provider started, talked in and ended: its id. */
async function talkedCall(tenant: string, id: string, from?: string) {
  const r = await send(started(tenant, id, from));
  expect([r.status, r.body.applied], JSON.stringify(r.body)).toEqual([200, true]);
  expect((await send(segments(tenant, id, 'first words'))).status).toBe(200);
  expect((await send(ended(tenant, id))).status).toBe(200);
  return r.body.call_id as string;
}
/** Deletes calls through the table (PostgREST's path), committed: as acme's admin, or
 *  as the service role. */
async function deleteAsAdmin(ids: string[], role: 'authenticated' | 'service_role' = 'authenticated') {
  await db.sql.begin(async (tx) => {
    const claims = role === 'authenticated' ? supabaseClaims(users.acmeAdmin, acme) : { role };
    await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
    const gone = await tx`delete from public.voice_calls where tenant_id = ${acme} and id in ${tx(ids)} returning id`;
    expect(gone.length).toBe(ids.length);
  });
}
/** What the database holds of a provider call id in a tenant, anywhere it could come back. */
async function tracesOf(tenant: string, id: string) {
  const [r] = await db.sql`select
      (select count(*)::int from public.voice_calls where tenant_id = ${tenant} and provider_call_id = ${id}) as calls,
      (select count(*)::int from private.voice_call_early_events where tenant_id = ${tenant} and provider_call_id = ${id}) as held,
      (select count(*)::int from private.webhook_events where tenant_id = ${tenant} and payload::text like ${'%' + id + '%'}) as events,
      (select count(*)::int from public.audit_logs where tenant_id = ${tenant} and table_name = 'voice_calls'
        and coalesce(new_data, old_data) ->> 'provider_call_id' = ${id}) as entries`;
  return r as { calls: number; held: number; events: number; entries: number };
}
/** The tenant's tombstones: the hashes of the provider call ids, sorted. */
const tombstones = async (tenant: string) =>
  (await db.sql`select encode(provider_call_hash, 'hex') as h from private.voice_call_tombstones where tenant_id = ${tenant}`)
    .map((r) => r.h as string).sort();
const hashesOf = (...ids: string[]) => ids.map(hashOf).sort();
/** The answer to an event for a deleted call: taken and dropped. */
const droppedAsDeleted = (id: string) => ({ applied: false, deleted: true, provider_call_id: id });
const askRecording = (pc: string) =>
  call(app, 'POST', '/voice/calls/recordings', {
    headers: { authorization: `Bearer ${service}` },
    body: { tenant_id: acme, provider_call_id: pc, content_type: 'audio/mpeg', size_bytes: 1024 },
  });
/** A promise and the function that settles it: a step of a staged race. */
function gate() {
  let open!: () => void;
  return { opened: new Promise<void>((r) => (open = r)), open: () => open() };
}
/** How many sessions wait on a lock the session `pid` holds. */
const blockedBy = async (pid: number) =>
  (await db.sql`select count(*)::int as n from pg_stat_activity where pg_blocking_pids(pid) @> array[${pid}::int]`)[0].n as number;
/** Starts `during` while a delete of the call is done but not committed, commits the
 *  delete once something is blocked on it, and answers what `during` did. */
async function whileDeleting<T>(callId: string, during: () => Promise<T>): Promise<T> {
  const [deleted, commit] = [gate(), gate()];
  let deleter = 0;
  const deleting = db.sql.begin(async (tx) => {
    [{ pid: deleter }] = await tx`select pg_backend_pid() as pid`;
    await tx`delete from public.voice_calls where tenant_id = ${acme} and id = ${callId}`;
    deleted.open();
    await commit.opened;
  });
  await deleted.opened;
  // `during` settling before anything waits on the delete is its own failure (a broken
  // expectation in it): reported as such, not as the poll's timeout.
  let settled = false;
  const pending = during().finally(() => (settled = true));
  pending.catch(() => {}); // awaited below, after the commit, which reports its failure
  try {
    await expect.poll(async () => settled || (await blockedBy(deleter)) > 0, { timeout: 10_000 }).toBe(true);
  } finally {
    commit.open();
    await deleting;
  }
  return await pending;
}
/** Every event for the id dropped as deleted, changing nothing anywhere. */
async function refusedAsDeleted(tenant: string, id: string, authorization?: string) {
  const before = await tracesOf(tenant, id);
  for (const body of everyEvent(tenant, id)) {
    const r = await send(body, authorization);
    expect([r.status, r.body], `${body.type}`).toEqual([200, droppedAsDeleted(id)]);
  }
  expect(await tracesOf(tenant, id)).toEqual(before);
}

describe('a deleted call stays deleted', () => {
  it("an admin's delete through the table: a retried start, answer, transcript or end is dropped and brings nothing back", async () => {
    const id = await talkedCall(acme, 'pc-tomb-1');
    await deleteAsAdmin([id]);
    expect(await tombstones(acme)).toEqual(hashesOf('pc-tomb-1'));
    // The tombstone holds no provider call id as sent (an integrator may build it from
    // the caller's number).
    expect(await db.sql`select * from private.voice_call_tombstones t where t::text like '%pc-tomb%'`).toEqual([]);
    const gone = await tracesOf(acme, 'pc-tomb-1');
    expect([gone.calls, gone.held]).toEqual([0, 0]);
    await refusedAsDeleted(acme, 'pc-tomb-1');
    // Segments sent at once (events arriving together may share one statement) are
    // dropped alike, each answering its own outcome.
    const other = await talkedCall(acme, 'pc-tomb-2');
    await deleteAsAdmin([other]);
    const answers = await Promise.all(
      ['pc-tomb-1', 'pc-tomb-2', 'pc-tomb-1', 'pc-tomb-2'].map((pc, i) => send(segments(acme, pc, `batched ${i}`))),
    );
    expect(answers.map((r) => [r.status, r.body])).toEqual(
      ['pc-tomb-1', 'pc-tomb-2', 'pc-tomb-1', 'pc-tomb-2'].map((pc) => [200, droppedAsDeleted(pc)]),
    );
    expect((await db.sql`select count(*)::int as n from private.voice_call_early_events where tenant_id = ${acme}`)[0].n).toBe(0);
  });

  it("erasing a customer: the provider's retries of their calls bring back neither the calls nor the number", async () => {
    const r = await call(app, 'POST', '/voice/customers', { token: tok.agent, body: { phone: '+33698765432', name: 'Camille' } });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    await talkedCall(acme, 'pc-tomb-erased-1', '+33698765432');
    await talkedCall(acme, 'pc-tomb-erased-2', '+33698765432');
    const erased = await call(app, 'POST', `/voice/customers/${r.body.id}/erasure`, { token: tok.admin });
    expect(erased.status, JSON.stringify(erased.body)).toBe(200);
    expect(await tombstones(acme)).toEqual(expect.arrayContaining(hashesOf('pc-tomb-erased-1', 'pc-tomb-erased-2')));
    for (const pc of ['pc-tomb-erased-1', 'pc-tomb-erased-2']) {
      for (const body of [{ ...started(acme, pc, '+33698765432') }, segments(acme, pc, 'Camille again')]) {
        const again = await send(body);
        expect([again.status, again.body]).toEqual([200, droppedAsDeleted(pc)]);
      }
    }
    expect(await db.sql`select id from public.voice_calls where from_number = '+33698765432' or to_number = '+33698765432'`)
      .toEqual([]);
    expect(await db.sql`select id from private.voice_call_early_events where payload::text like '%Camille%'`).toEqual([]);
  });

  it("is its tenant's only: another tenant's call of the same id starts; a tenant's key's events are dropped as the provider's are", async () => {
    const id = await talkedCall(acme, 'pc-tomb-shared');
    await deleteAsAdmin([id]);
    const twin = await send(started(globex, 'pc-tomb-shared'));
    expect([twin.status, twin.body.applied], JSON.stringify(twin.body)).toEqual([200, true]);
    expect(await tombstones(globex)).toEqual([]);
    const k = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: tok.admin,
      body: { name: 'recorder', scopes: ['calls:write'] },
    });
    expect(k.status, JSON.stringify(k.body)).toBe(201);
    await refusedAsDeleted(acme, 'pc-tomb-shared', `Bearer ${k.body.key}`);
    // Deleting globex's call leaves globex's own tombstone, acme's untouched.
    await db.sql`delete from public.voice_calls where tenant_id = ${globex} and provider_call_id = 'pc-tomb-shared'`;
    expect(await tombstones(globex)).toEqual(hashesOf('pc-tomb-shared'));
    await refusedAsDeleted(globex, 'pc-tomb-shared');
  });

  it("keeps a tombstone only for a delete that commits, and none for people's own calls", async () => {
    const id = await talkedCall(acme, 'pc-tomb-rolled');
    await db.sql.begin(async (tx) => {
      await tx`delete from public.voice_calls where tenant_id = ${acme} and id = ${id}`;
      throw new Error('rolled back');
    }).catch((err: Error) => expect(err.message).toBe('rolled back'));
    expect(await tombstones(acme)).not.toContain(hashOf('pc-tomb-rolled'));
    const repeat = await send(started(acme, 'pc-tomb-rolled'));
    expect([repeat.status, repeat.body.applied, repeat.body.call_id]).toEqual([200, false, id]);
    // A call people logged themselves (a manual: id, which the provider may not send).
    const [manual] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id, to_number)
      values (${acme}, ${AGENTS[acme]}, 'outbound', 'ringing', 'manual:pc-tomb', '+33611112222') returning id`;
    const before = await tombstones(acme);
    await deleteAsAdmin([manual.id]);
    expect(await tombstones(acme)).toEqual(before);
  });

  it('is out of reach of every API role: only the definer functions read or write it', async () => {
    for (const [role, claims] of [
      ['authenticated', supabaseClaims(users.acmeAdmin, acme)],
      ['anon', {}],
      ['service_role', {}],
    ] as const) {
      for (const statement of [
        (tx: Parameters<Parameters<typeof probeAs>[3]>[0]) => tx`select * from private.voice_call_tombstones`,
        (tx: Parameters<Parameters<typeof probeAs>[3]>[0]) => tx`delete from private.voice_call_tombstones`,
        (tx: Parameters<Parameters<typeof probeAs>[3]>[0]) =>
          tx`insert into private.voice_call_tombstones (tenant_id, provider_call_hash) values (${globex}, '\\x00')`,
      ]) {
        const probe = await probeAs(db.sql, role, claims, statement);
        expect(probe.ok, role).toBe(false);
        if (!probe.ok) expect(probe.error.code, role).toBe('42501');
      }
    }
    for (const role of ['authenticated', 'anon'] as const) {
      const probe = await probeAs(db.sql, role, {}, (tx) => tx`select private.prune_voice_call_tombstones(interval '0')`);
      expect(probe.ok ? 'ran' : probe.error.code, role).toBe('42501');
    }
  });

  it('a tenant hard-deleted with its calls leaves no tombstone (and the delete is not refused)', async () => {
    const doomed = '10000000-0000-4000-8000-0000000000d1';
    await db.sql`insert into public.tenants (id, name, slug, plan) values (${doomed}, 'Doomed', 'doomed-tombstones', 'pro')`;
    await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
      values (${doomed}, '74000000-0000-4000-8000-0000000000d1', 'Desk', '+14155554013', 'v', ${db.sql.json(LLM)})`;
    AGENTS[doomed] = '74000000-0000-4000-8000-0000000000d1';
    await talkedCall(doomed, 'pc-tomb-doomed');
    await db.sql`delete from public.tenants where id = ${doomed}`;
    expect(await tombstones(doomed)).toEqual([]);
    expect(await db.sql`select id from public.voice_calls where tenant_id = ${doomed}`).toEqual([]);
  });

  it('the daily prune drops tombstones after 30 days; only then is the id taken as a new call', async () => {
    const id = await talkedCall(acme, 'pc-tomb-old');
    const young = await talkedCall(acme, 'pc-tomb-young');
    await deleteAsAdmin([id, young]);
    await db.sql`update private.voice_call_tombstones set deleted_at = now() - interval '30 days 1 minute'
      where tenant_id = ${acme} and provider_call_hash = ${Buffer.from(hashOf('pc-tomb-old'), 'hex')}`;
    await db.sql`update private.voice_call_tombstones set deleted_at = now() - interval '29 days 23 hours'
      where tenant_id = ${acme} and provider_call_hash = ${Buffer.from(hashOf('pc-tomb-young'), 'hex')}`;
    const before = (await tombstones(acme)).length;
    await db.sql`select private.add_job('prune')`;
    const report = await runJobs({ tasks: ['prune'] });
    expect(report.tasks.prune).toMatchObject({ completed: 1, call_tombstones: 1 });
    expect(await tombstones(acme)).toHaveLength(before - 1);
    expect(await tombstones(acme)).not.toContain(hashOf('pc-tomb-old'));
    await refusedAsDeleted(acme, 'pc-tomb-young');
    const again = await send(started(acme, 'pc-tomb-old'));
    expect([again.status, again.body.applied], JSON.stringify(again.body)).toEqual([200, true]);
  });

  it("is the answer whatever the tenant's state: suspended, or its plan without voice", async () => {
    const id = await talkedCall(acme, 'pc-tomb-state');
    await deleteAsAdmin([id]);
    try {
      for (const change of [
        () => db.sql`update public.tenants set status = 'suspended' where id = ${acme}`,
        () => db.sql`update public.tenants set status = 'active', plan = 'starter' where id = ${acme}`,
      ]) {
        await change();
        await refusedAsDeleted(acme, 'pc-tomb-state');
      }
      // A call never started is still unknown there (404), as before: the tombstone
      // answers for deleted calls only.
      const unknown = await send(segments(acme, 'pc-tomb-never', 'words'));
      expect([unknown.status, errorCode(unknown)]).toEqual([404, 'unknown_call']);
    } finally {
      await db.sql`update public.tenants set status = 'active', plan = 'pro' where id = ${acme}`;
    }
  });

  it("a recording asked for a deleted call is 410 call_deleted (the provider discards it); a call never started stays 404", async () => {
    const id = await talkedCall(acme, 'pc-tomb-rec');
    await deleteAsAdmin([id]);
    const r = await askRecording('pc-tomb-rec');
    expect([r.status, errorCode(r)], JSON.stringify(r.body)).toEqual([410, 'call_deleted']);
    const never = await askRecording('pc-tomb-rec-never');
    expect([never.status, errorCode(never)], JSON.stringify(never.body)).toEqual([404, 'unknown_call']);
    // Asked while the call is being deleted: the call is found, its object's write waits
    // for the delete's lock and then finds no call, and the answer is the tombstone's.
    const racing = await talkedCall(acme, 'pc-tomb-rec-race');
    const raced = await whileDeleting(racing, () => askRecording('pc-tomb-rec-race'));
    expect([raced.status, errorCode(raced)], JSON.stringify(raced.body)).toEqual([410, 'call_deleted']);
  });

  it('the service role deleting through the table leaves one too; a call inserted again by hand and deleted again renews it', async () => {
    const id = await talkedCall(acme, 'pc-tomb-service');
    await deleteAsAdmin([id], 'service_role');
    expect(await tombstones(acme)).toContain(hashOf('pc-tomb-service'));
    const key = Buffer.from(hashOf('pc-tomb-service'), 'hex');
    await db.sql`update private.voice_call_tombstones set deleted_at = now() - interval '20 days'
      where tenant_id = ${acme} and provider_call_hash = ${key}`;
    // An operator's hand insert (the event path refuses the id), then its delete.
    const [again] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id, from_number)
      values (${acme}, ${AGENTS[acme]}, 'inbound', 'ringing', 'pc-tomb-service', '+33612345678') returning id`;
    await deleteAsAdmin([again.id], 'service_role');
    const [{ age }] = await db.sql`select now() - deleted_at < interval '1 minute' as age
      from private.voice_call_tombstones where tenant_id = ${acme} and provider_call_hash = ${key}`;
    expect(age).toBe(true);
    await refusedAsDeleted(acme, 'pc-tomb-service');
    // While a call and a tombstone of its id both exist (an operator's hand insert), a
    // hold (reached when a race made the event miss the call) answers the call is there,
    // rather than dropping an event of a live call.
    await db.sql`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id, from_number)
      values (${acme}, ${AGENTS[acme]}, 'inbound', 'ringing', 'pc-tomb-service', '+33612345678')`;
    const [hold] = await db.sql`select held from private.voice_call_event_held(${acme}, 'pc-tomb-service', 'call.answered', '{}')`;
    expect(hold).toEqual({ held: false });
    await db.sql`update public.voice_calls set status = 'missed' where tenant_id = ${acme} and provider_call_id = 'pc-tomb-service'`;
    await db.sql`delete from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'pc-tomb-service'`;
  });

  it('a start or segments racing an uncommitted delete: the call as it is, or dropped, never created again or held', async () => {
    const id = await talkedCall(acme, 'pc-tomb-race');
    const appended = await whileDeleting(id, async () => {
      // A retried start while the delete is open sees the call and answers it: a 2xx,
      // nothing created.
      const start = await send(started(acme, 'pc-tomb-race'));
      expect([start.status, start.body]).toEqual([200, { applied: false, call_id: id, status: 'completed' }]);
      // Segments lock the call, so they wait for the delete; once it commits, they find
      // no call, and the hold finds the tombstone.
      return await send(segments(acme, 'pc-tomb-race', 'racing words'));
    });
    expect([appended.status, appended.body]).toEqual([200, droppedAsDeleted('pc-tomb-race')]);
    expect(await tracesOf(acme, 'pc-tomb-race')).toMatchObject({ calls: 0, held: 0 });
  });

  it('an early end whose resend finds the call deleted meanwhile is held again, and so dropped by the tombstone', async () => {
    // The end arrives before its call is there (held), the call is there when the hold
    // looks (sent again), and the call is deleted before the resend writes: the route's
    // second hold finds the tombstone. Staged with the call id's lock and a row lock.
    const pc = 'pc-tomb-resend';
    const [insertDone, insertCommit, queuedDone, queuedCommit, deleteDone, deleteCommit] = [gate(), gate(), gate(), gate(), gate(), gate()];
    let inserter = 0, deleter = 0;
    // A: the call inserted under its id's lock, not committed (the end does not see it).
    const a = db.sql.begin(async (tx) => {
      [{ pid: inserter }] = await tx`select pg_backend_pid() as pid`;
      await tx`select private.voice_call_id_lock(${acme}, ${pc})`;
      await tx`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id, from_number, answered_at)
        values (${acme}, ${AGENTS[acme]}, 'inbound', 'in_progress', ${pc}, '+33612345678', now())`;
      insertDone.open();
      await insertCommit.opened;
    });
    await insertDone.opened;
    // B: queued for the id's lock first, so it, not the hold, takes it when A commits.
    const b = db.sql.begin(async (tx) => {
      queuedDone.open();
      await tx`select private.voice_call_id_lock(${acme}, ${pc})`;
      await queuedCommit.opened;
    });
    await queuedDone.opened;
    await expect.poll(() => blockedBy(inserter), { timeout: 10_000 }).toBe(1);
    // The end: refused (no call yet), then its hold waits behind A and B.
    const ending = send(ended(acme, pc));
    await expect.poll(() => blockedBy(inserter), { timeout: 10_000 }).toBe(2);
    insertCommit.open();
    await a;
    // C: the call deleted, not committed, holding its row.
    const [{ id }] = await db.sql`select id from public.voice_calls where tenant_id = ${acme} and provider_call_id = ${pc}`;
    const c = db.sql.begin(async (tx) => {
      [{ pid: deleter }] = await tx`select pg_backend_pid() as pid`;
      await tx`delete from public.voice_calls where tenant_id = ${acme} and id = ${id}`;
      deleteDone.open();
      await deleteCommit.opened;
    });
    await deleteDone.opened;
    // B lets the hold go: it sees the call (C has not committed), so the end is sent
    // again, and waits on C's row lock.
    queuedCommit.open();
    await b;
    await expect.poll(() => blockedBy(deleter), { timeout: 10_000 }).toBe(1);
    deleteCommit.open();
    await c;
    const r = await ending;
    expect([r.status, r.body]).toEqual([200, droppedAsDeleted(pc)]);
    expect(await tracesOf(acme, pc)).toMatchObject({ calls: 0, held: 0 });
  });

  it("DELETE /voice/calls/{id}: an admin deletes an ended call with its transcript, recording and webhook events, then call.deleted; the audit names them; the provider's retries are dropped", async () => {
    const id = await talkedCall(acme, 'pc-tomb-api');
    const other = await talkedCall(acme, 'pc-tomb-api-bystander');
    const object = `${acme}/${id}/recording.mp3`;
    await db.sql`update public.voice_calls set recording_object = ${object} where tenant_id = ${acme} and id = ${id}`;
    const eventsOf = async (callId: string) =>
      (await db.sql`select type, payload -> 'data' as data from private.webhook_events
        where tenant_id = ${acme} and ordering_key = ${'call:' + callId} order by id`).map((e) => [e.type, e.data]);
    // The call's events, one delivered already: their payloads hold the caller's number.
    expect((await eventsOf(id)).map(([type]) => type)).toEqual(['call.started', 'call.ended']);
    await db.sql`update private.webhook_deliveries set status = 'delivered', delivered_at = now()
      where event_id = (select min(id) from private.webhook_events where tenant_id = ${acme} and ordering_key = ${'call:' + id})`;
    const bystanderEvents = await eventsOf(other);
    const r = await call(app, 'DELETE', `/voice/calls/${id}`, { token: tok.admin });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    expect(await eventsOf(id)).toEqual([['call.deleted', { id }]]);
    expect(await db.sql`select id from private.webhook_events where tenant_id = ${acme} and payload::text like '%+33612345678%'
      and ordering_key = ${'call:' + id}`).toEqual([]);
    expect(await eventsOf(other)).toEqual(bystanderEvents);
    const [left] = await db.sql`select
        (select count(*)::int from public.voice_calls where id = ${id}) as calls,
        (select count(*)::int from public.voice_call_segments where call_id = ${id}) as segments,
        (select count(*)::int from private.jobs where task = 'storage-delete' and payload ->> 'object' = ${object}) as jobs`;
    expect(left).toEqual({ calls: 0, segments: 0, jobs: 2 });
    const [entry] = await db.sql`select actor_user_id, actor_role from public.audit_logs
      where tenant_id = ${acme} and table_name = 'voice_calls' and action = 'DELETE' and record_key ->> 'id' = ${id}`;
    expect(entry).toEqual({ actor_user_id: users.acmeAdmin.id, actor_role: 'authenticated' });
    // The trail keeps its entries, not their images: the call's and its transcript's
    // (each segment's twice: its insert and the cascade's delete) are redacted by a job;
    // the bystander's stay whole.
    const entriesOf = async (callId: string) =>
      (await db.sql`select l.id, l.table_name, l.action from public.audit_logs l where l.tenant_id = ${acme}
        and ((l.table_name = 'voice_calls' and l.record_key ->> 'id' = ${callId})
          or (l.table_name = 'voice_call_segments' and coalesce(l.old_data, l.new_data) ->> 'call_id' = ${callId}))
        order by l.id`);
    const mine = await entriesOf(id);
    expect(mine.map((e) => `${e.table_name} ${e.action}`)).toEqual(expect.arrayContaining([
      'voice_calls INSERT', 'voice_calls DELETE', 'voice_call_segments INSERT', 'voice_call_segments DELETE',
    ]));
    const theirs = await db.sql`select id, old_data, new_data from public.audit_logs where id in ${db.sql((await entriesOf(other)).map((e) => e.id))} order by id`;
    const trail = await runJobs({ tasks: ['voice-erasure-trail'] });
    expect(trail.tasks['voice-erasure-trail']?.done).toBeGreaterThan(0);
    const after = await db.sql`select old_data is null and new_data is null and redacted_at is not null as redacted
      from public.audit_logs where id in ${db.sql(mine.map((e) => e.id))}`;
    expect(after.map((e) => e.redacted)).toEqual(mine.map(() => true));
    expect(await db.sql`select id, old_data, new_data from public.audit_logs where id in ${db.sql(theirs.map((e) => e.id))} order by id`)
      .toEqual(theirs);
    // No erasure's notice for it: call.deleted told receivers.
    expect(await db.sql`select 1 from private.webhook_events where tenant_id = ${acme} and type = 'customer.erasure_completed'
      and payload -> 'data' -> 'call_ids' ? ${id}`).toEqual([]);
    await refusedAsDeleted(acme, 'pc-tomb-api');
    const again = await call(app, 'DELETE', `/voice/calls/${id}`, { token: tok.admin });
    expect([again.status, errorCode(again)]).toEqual([404, 'not_found']);
  });

  it("a deleted call's trail job reads back only to the call's first entry, not the tenant's whole history", async () => {
    // A history: 40 calls logged by hand, their entries (and every other of acme's calls)
    // made a day old — older than the call below.
    await db.sql`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id)
      select ${acme}, ${AGENTS[acme]}, 'outbound', 'ringing', 'manual:history-' || g from generate_series(1, 40) g`;
    // (Past the trail's append-only trigger, as a test alone may.)
    const [{ older }] = await db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      return await tx`with aged as (
          update public.audit_logs set created_at = created_at - interval '1 day'
          where tenant_id = ${acme} and table_name = 'voice_calls' returning 1)
        select count(*)::int as older from aged`;
    });
    expect(older).toBeGreaterThanOrEqual(40);
    const id = await talkedCall(acme, 'pc-tomb-bounded');
    await db.sql`delete from private.jobs where task = 'voice-erasure-trail'`;
    expect((await call(app, 'DELETE', `/voice/calls/${id}`, { token: tok.admin })).status).toBe(204);
    await db.sql`update private.jobs set payload = payload || '{"batch": 2}' where task = 'voice-erasure-trail'`;
    const report = await runJobs({ tasks: ['voice-erasure-trail'] });
    // Its own entries (a start, an answer, an end, the delete: a few batches of two), and
    // one batch reaching past its first: not one per two of the day-old ones.
    expect(report.tasks['voice-erasure-trail']?.done).toBe(1);
    expect(report.tasks['voice-erasure-trail']?.completed).toBeLessThan(older / 4);
    const [{ whole }] = await db.sql`select count(*)::int as whole from public.audit_logs
      where tenant_id = ${acme} and table_name = 'voice_calls' and record_key ->> 'id' = ${id} and redacted_at is null`;
    expect(whole).toBe(0);
  });

  it('DELETE /voice/calls/{id} refused, changing nothing: agents, users, API keys, another tenant, an open call, a suspended tenant, bad ids', async () => {
    const id = await talkedCall(acme, 'pc-tomb-api-kept');
    const open = await send(started(acme, 'pc-tomb-api-open'));
    expect(open.status).toBe(200);
    await send({ ...started(acme, 'pc-tomb-api-ringing'), answered: false });
    const state = async () => [
      ...(await db.sql`select id, status from public.voice_calls where tenant_id = ${acme} order by id`).map((r) => `${r.id}:${r.status}`),
      ...(await db.sql`select id, type from private.webhook_events where tenant_id = ${acme} order by id`).map((r) => `${r.id}:${r.type}`),
    ];
    const [before, tombsBefore] = [await state(), await tombstones(acme)];
    const del = (callId: string, headers: Record<string, string>) => call(app, 'DELETE', `/voice/calls/${callId}`, { headers });
    const bearer = (t: string) => ({ authorization: `Bearer ${t}` });
    for (const who of ['agent', 'user']) {
      const r = await del(id, bearer(tok[who]));
      expect([r.status, errorCode(r)], who).toEqual([403, 'forbidden']);
    }
    // An admin's key with every call scope: people only.
    const k = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: tok.admin,
      body: { name: 'telephony', scopes: ['calls:read', 'calls:write'] },
    });
    expect(k.status, JSON.stringify(k.body)).toBe(201);
    const byKey = await del(id, bearer(k.body.key));
    expect([byKey.status, errorCode(byKey)]).toEqual([403, 'insufficient_scope']);
    // Another tenant's admin names acme's call: not found in their tenant.
    const globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
    const foreign = await del(id, bearer(globexAdmin));
    expect([foreign.status, errorCode(foreign)]).toEqual([404, 'not_found']);
    // A call the provider is still reporting.
    const live = await del(open.body.call_id, bearer(tok.admin));
    expect([live.status, errorCode(live), live.body.error?.details]).toEqual([409, 'call_in_progress', {
      call_ids: [open.body.call_id],
      status: 'in_progress',
    }]);
    const ringing = await send({ ...started(acme, 'pc-tomb-api-ringing'), answered: false });
    const rang = await del(ringing.body.call_id, bearer(tok.admin));
    expect([rang.status, errorCode(rang), rang.body.error?.details]).toEqual([409, 'call_in_progress', {
      call_ids: [ringing.body.call_id],
      status: 'ringing',
    }]);
    // Malformed and unknown ids.
    const bad = await del('not-a-uuid', bearer(tok.admin));
    expect([bad.status, errorCode(bad)]).toEqual([422, 'validation_failed']);
    const unknown = await del('74000000-0000-4000-8000-0000000000ff', bearer(tok.admin));
    expect([unknown.status, errorCode(unknown)]).toEqual([404, 'not_found']);
    // A suspended tenant deletes nothing.
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    const superToken = await supabaseToken(users.super, { tenantId: acme });
    try {
      const suspended = await del(id, bearer(tok.admin));
      expect([suspended.status, errorCode(suspended)]).toEqual([403, 'tenant_suspended']);
      expect([await state(), await tombstones(acme)]).toEqual([before, tombsBefore]);
      // A platform admin may, as the table's policy lets them.
      expect((await del(id, bearer(superToken))).status).toBe(204);
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
    // Once ended, the open call can go; and a tenant whose plan lost voice still removes
    // what it has.
    expect((await send(ended(acme, 'pc-tomb-api-open'))).status).toBe(200);
    await db.sql`update public.tenants set plan = 'starter' where id = ${acme}`;
    try {
      expect((await del(open.body.call_id, bearer(tok.admin))).status).toBe(204);
    } finally {
      await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
    }
    expect(await tombstones(acme)).toEqual(expect.arrayContaining(hashesOf('pc-tomb-api-open', 'pc-tomb-api-kept')));
  });
});
