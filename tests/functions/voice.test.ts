// The voice function in-process through its Hono app (issue 14), with real credentials
// and a real database: routing for the telephony provider (reason codes, the known
// caller, credentials), call events (idempotency, ordering, late events, the status
// machine, 50 calls appending at once), phone uniqueness across tenants.
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { app } from '../../functions/voice/app.ts';
import { CallAnsweredEvent, CallEndedEvent, TranscriptEvent } from '../../functions/voice/schemas.ts';
import { jsonbTextBytes } from '../../shared/schemas/common.ts';
import { closeDb, observeStatements } from '../../shared/db.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { idleInTransaction, stalledBody } from '../helpers/slow-body.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const TELEPHONY_SECRET = 'test-telephony-secret';
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You are the front desk.', temperature: 0.2, tools: [] };
const AGENT = { acme: '70000000-0000-4000-8000-000000000001', globex: '70000000-0000-4000-8000-000000000002' };
const NUMBER = { acme: '+14155550001', globex: '+14155550002', inactive: '+14155550003' };
const CALLER = '+14155559999';

export let voiceCustomer: string;

beforeAll(async () => {
  db = await freshDatabase('fn_voice');
  auth = await configureAuth(db.url, { VOICE_TELEPHONY_SECRET: TELEPHONY_SECRET });
  service = await apiKey('service_role', TEST_JWT_SECRET);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  tok.super = await supabaseToken(users.super, { tenantId: acme });
  // Both tenants on a plan with voice and knowledge bases (globex is starter: neither).
  await db.sql`update public.tenants set plan = 'pro' where id = ${globex}`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config, greeting) values
    (${acme}, ${AGENT.acme}, 'Acme desk', ${NUMBER.acme}, 'voice-a', ${db.sql.json(LLM)}, 'Acme, hello!'),
    (${globex}, ${AGENT.globex}, 'Globex desk', ${NUMBER.globex}, 'voice-g', ${db.sql.json(LLM)}, null)`;
  await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active) values
    (${acme}, 'Retired', ${NUMBER.inactive}, 'voice-r', ${db.sql.json(LLM)}, false)`;
  [{ id: voiceCustomer }] = await db.sql`insert into public.voice_customers (tenant_id, phone, name, recording_consent)
    values (${acme}, ${CALLER}, 'Known caller', true) returning id`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const route = (query: string, headers: Record<string, string> = { authorization: `Bearer ${service}` }) =>
  call(app, 'GET', `/voice/route?${query}`, { headers });
const event = (body: Record<string, unknown>, headers: Record<string, string> = { authorization: `Bearer ${service}` }) =>
  call(app, 'POST', '/voice/calls/events', { body, headers });

describe('routing a dialled number', () => {
  it('answers the active agent, its tenant and configuration, and no customer for an unknown caller', async () => {
    const r = await route(`to=${encodeURIComponent(NUMBER.acme)}&from=${encodeURIComponent('+14155558888')}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({
      tenant: { id: acme, name: expect.any(String) },
      agent: {
        id: AGENT.acme,
        name: 'Acme desk',
        phone: NUMBER.acme,
        voice_id: 'voice-a',
        llm_config: LLM,
        greeting: 'Acme, hello!',
        language: 'en',
        knowledge_base_id: null,
      },
      customer: null,
    });
  });

  it("answers the caller's customer record when the tenant knows the number", async () => {
    const r = await route(`to=${encodeURIComponent(NUMBER.acme)}&from=${encodeURIComponent(CALLER)}`);
    expect(r.body.customer).toMatchObject({ id: voiceCustomer, name: 'Known caller', recording_consent: true });
    expect(r.body.customer.recording_consent_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    // Another tenant's agent never sees acme's customer with the same number.
    const g = await route(`to=${encodeURIComponent(NUMBER.globex)}&from=${encodeURIComponent(CALLER)}`);
    expect(g.body.tenant.id).toBe(globex);
    expect(g.body.customer).toBeNull();
  });

  it("takes numbers with the + left unencoded (a space once the query is decoded), for the route and a customer's phone", async () => {
    // `?to=+1…` as a provider's URL template writes it: the query decodes the + as a space.
    const r = await route(`to=${NUMBER.acme}&from=${CALLER}`);
    expect([r.status, r.body.agent?.id, r.body.customer?.id]).toEqual([200, AGENT.acme, voiceCustomer]);
    const found = await call(app, 'GET', `/voice/customers?phone=${CALLER}`, { token: tok.agent });
    expect([found.status, found.body.items?.map((c: { id: string }) => c.id)]).toEqual([200, [voiceCustomer]]);
    // A space elsewhere is still no number; a withheld caller ID still routes, to no customer.
    expect((await route(`to=${encodeURIComponent(`+1 ${NUMBER.acme.slice(2)}`)}`)).status).toBe(422);
    expect((await route(`to=${NUMBER.acme}&from=anonymous`)).body.customer).toBeNull();
  });

  it('refuses with a reason code: unknown number, inactive agent, suspended or deleted tenant', async () => {
    const unknown = await route(`to=${encodeURIComponent('+14155550999')}`);
    expect([unknown.status, errorCode(unknown)]).toEqual([404, 'unknown_number']);
    const inactive = await route(`to=${encodeURIComponent(NUMBER.inactive)}`);
    expect([inactive.status, errorCode(inactive)]).toEqual([404, 'agent_inactive']);
    await db.sql`update public.tenants set status = 'suspended' where id = ${globex}`;
    try {
      const suspended = await route(`to=${encodeURIComponent(NUMBER.globex)}`);
      expect([suspended.status, errorCode(suspended)]).toEqual([404, 'tenant_suspended']);
      await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${globex}`;
      const deleted = await route(`to=${encodeURIComponent(NUMBER.globex)}`);
      expect([deleted.status, errorCode(deleted)]).toEqual([404, 'tenant_deleted']);
      // Its agent parked as well (after a downgrade, say): the tenant's state is still the
      // reason, not the agent's, so the provider stops retrying a deleted tenant's number.
      await db.sql`update public.voice_agents set active = false where tenant_id = ${globex} and phone = ${NUMBER.globex}`;
      const parkedDeleted = await route(`to=${encodeURIComponent(NUMBER.globex)}`);
      expect([parkedDeleted.status, errorCode(parkedDeleted)]).toEqual([404, 'tenant_deleted']);
      await db.sql`update public.tenants set status = 'suspended', deleted_at = null where id = ${globex}`;
      const parkedSuspended = await route(`to=${encodeURIComponent(NUMBER.globex)}`);
      expect([parkedSuspended.status, errorCode(parkedSuspended)]).toEqual([404, 'tenant_suspended']);
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${globex}`;
      await db.sql`update public.voice_agents set active = true where tenant_id = ${globex} and phone = ${NUMBER.globex}`;
    }
    // Back to active, the parked agent's reason is its own again.
    await db.sql`update public.voice_agents set active = false where tenant_id = ${globex} and phone = ${NUMBER.globex}`;
    try {
      const parked = await route(`to=${encodeURIComponent(NUMBER.globex)}`);
      expect([parked.status, errorCode(parked)]).toEqual([404, 'agent_inactive']);
    } finally {
      await db.sql`update public.voice_agents set active = true where tenant_id = ${globex} and phone = ${NUMBER.globex}`;
    }
  });

  it("routes exactly when private.tenant_has_feature says the tenant's plan and override include voice", async () => {
    // The route reads the plan feature in its one statement; the rule that decides is
    // private.tenant_has_feature. Every combination of plan and override, both ways.
    const cases: [string, unknown][] = [];
    for (const plan of ['starter', 'pro']) {
      for (const override of [undefined, true, false, null, 'true']) cases.push([plan, override]);
    }
    const seen = new Set<number>();
    try {
      for (const [plan, override] of cases) {
        await db.sql`update public.tenants set plan = ${plan} where id = ${globex}`;
        await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${globex}`;
        if (override !== undefined) {
          await db.sql`insert into private.tenant_plan_overrides (tenant_id, features)
            values (${globex}, jsonb_build_object('voice', ${db.sql.json(override as never)}::jsonb))`;
        }
        const [{ has }] = await db.sql`select private.tenant_has_feature(${globex}, 'voice') as has`;
        const r = await route(`to=${encodeURIComponent(NUMBER.globex)}`);
        const label = `${plan}, override ${JSON.stringify(override)}`;
        seen.add(r.status);
        if (has) expect(r.status, label).toBe(200);
        else expect([r.status, errorCode(r)], label).toEqual([403, 'feature_not_in_plan']);
      }
      // Both answers occurred, so the loop compared both directions.
      expect([...seen].sort()).toEqual([200, 403]);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${globex}`;
      await db.sql`update public.tenants set plan = 'pro' where id = ${globex}`;
    }
  });

  it('lookups arriving together share a statement, each answered by its own row: the same answers as one at a time', async () => {
    const queries = [
      `to=${encodeURIComponent(NUMBER.acme)}&from=${encodeURIComponent(CALLER)}`,
      `to=${encodeURIComponent(NUMBER.acme)}`,
      `to=${encodeURIComponent(NUMBER.globex)}&from=${encodeURIComponent(CALLER)}`,
      `to=${encodeURIComponent(NUMBER.inactive)}`,
      `to=${encodeURIComponent('+14155550999')}`,
    ];
    const alone: Awaited<ReturnType<typeof route>>[] = [];
    for (const q of queries) alone.push(await route(q));
    expect(alone.map((r) => r.status)).toEqual([200, 200, 200, 404, 404]);
    // 60 at once, interleaved, so the batches mix answers and refusals.
    const together = await Promise.all(Array.from({ length: 60 }, (_, i) => route(queries[i % queries.length])));
    together.forEach((r, i) => expect(r, `request ${i}`).toEqual(alone[i % queries.length]));
    // And with a tenant suspended meanwhile, its numbers refuse in the batch as alone.
    await db.sql`update public.tenants set status = 'suspended' where id = ${globex}`;
    try {
      const mixed = await Promise.all(Array.from({ length: 20 }, (_, i) => route(queries[i % 3])));
      mixed.forEach((r, i) => {
        if (i % 3 === 2) expect([r.status, errorCode(r)]).toEqual([404, 'tenant_suspended']);
        else expect(r).toEqual(alone[i % 3]);
      });
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${globex}`;
    }
  });

  it('validates the dialled number before any lookup', async () => {
    for (const q of ['to=4155550001', 'to=%2B0123', '', `to=${encodeURIComponent(NUMBER.acme)}&from=${'9'.repeat(257)}`]) {
      const r = await route(q);
      expect([r.status, errorCode(r)], q).toEqual([422, 'validation_failed']);
    }
  });

  it('routes a withheld or malformed caller ID to no customer, and looks up only an E.164 one', async () => {
    for (const from of ['anonymous', 'Restricted', '', CALLER.slice(1), `${CALLER} `, 'sip:alice@example.com']) {
      const r = await route(`to=${encodeURIComponent(NUMBER.acme)}&from=${encodeURIComponent(from)}`);
      expect([r.status, r.body.agent?.id, r.body.customer], from).toEqual([200, AGENT.acme, null]);
    }
    const known = await route(`to=${encodeURIComponent(NUMBER.acme)}&from=${encodeURIComponent(CALLER)}`);
    expect(known.body.customer?.id).toBe(voiceCustomer);
    // And the call it routed is recorded, its caller ID kept as none.
    const started = await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'pc-anonymous',
      from: 'anonymous',
      to: NUMBER.acme,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const [row] = await db
      .sql`select from_number, to_number, customer_id from public.voice_calls where provider_call_id = 'pc-anonymous'`;
    expect(row).toEqual({ from_number: null, to_number: NUMBER.acme, customer_id: null });
  });

  it('takes the service credential or the telephony secret, nothing else', async () => {
    const q = `to=${encodeURIComponent(NUMBER.acme)}`;
    expect((await route(q, { 'x-telephony-secret': TELEPHONY_SECRET })).status).toBe(200);
    expect((await route(q, { apikey: service })).status).toBe(200);
    const refused: Record<string, string>[] = [{}, { 'x-telephony-secret': 'wrong' }, { authorization: `Bearer ${tok.super}` }, {
      authorization: `Bearer ${tok.admin}`,
    }];
    for (const headers of refused) {
      const r = await route(q, headers);
      expect([r.status, errorCode(r)]).toEqual([401, 'telephony_credential_required']);
    }
  });
});

describe("the call path's own connections", () => {
  it("routes a call while people's requests hold every connection of the main pool", async () => {
    // Six people's writes to one customer, each waiting on a row lock held here: the main
    // pool (DB_POOL_MAX, 4) is all theirs, and two more wait for a connection.
    const holder = await db.sql.reserve();
    let writes: Promise<{ status: number }>[] = [];
    try {
      await holder`begin`;
      await holder`select 1 from public.voice_customers where id = ${voiceCustomer} for update`;
      writes = Array.from(
        { length: 6 },
        (_, i) => call(app, 'PATCH', `/voice/customers/${voiceCustomer}`, { token: tok.agent, body: { notes: `note ${i}` } }),
      );
      // Until all four connections of the main pool wait on the lock.
      for (;;) {
        const [{ n }] = await db.sql`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and application_name = 'edge-functions' and wait_event_type = 'Lock'`;
        if (n >= 4) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      // The provider's lookup does not queue behind them (before its own pool, it waited here
      // for as long as the lock was held, which is until it answered).
      const routed = await route(`to=${encodeURIComponent(NUMBER.acme)}&from=${encodeURIComponent(CALLER)}`);
      expect([routed.status, routed.body.customer?.id]).toEqual([200, voiceCustomer]);
      await holder`commit`;
    } finally {
      holder.release();
    }
    expect((await Promise.all(writes)).map((w) => w.status)).toEqual([200, 200, 200, 200, 200, 200]);
    await db.sql`update public.voice_customers set notes = null where id = ${voiceCustomer}`;
  });
});

describe('the contract at its edges', () => {
  it('a JSON content type with parameters in any legal form is JSON', async () => {
    const res = await app.request('/voice/customers', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'application/json ; charset=utf-8' },
      body: JSON.stringify({ phone: '+14155552701', name: 'Spaced type' }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const plain = await app.request('/voice/customers', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/plain' },
      body: '{}',
    });
    expect([plain.status, (await plain.json()).error.code]).toEqual([415, 'unsupported_media_type']);
  });

  it('a lone surrogate is refused by name, not stored as U+FFFD; the six characters \\u0000 in a tool are text', async () => {
    const agent = (name: string, tools: unknown[] = []) =>
      call(app, 'POST', '/voice/agents', {
        token: tok.admin,
        body: { name, phone: '+14155550188', voice_id: 'v', llm_config: { ...LLM, tools } },
      });
    const lone = await agent('Desk \ud800');
    expect([lone.status, lone.body.error.details.fields[0].field]).toEqual([422, 'name']);
    const inTools = await agent('Desk', [{ pattern: 'x\udc00' }]);
    expect([inTools.status, inTools.body.error.details.fields[0].message]).toEqual([
      422,
      'must be well-formed Unicode (no lone surrogate)',
    ]);
    const literal = await agent('Desk', [{ pattern: '\\u0000' }]);
    expect([literal.status, literal.body.llm_config?.tools]).toEqual([201, [{ pattern: '\\u0000' }]]);
    await db.sql`delete from public.voice_agents where id = ${literal.body.id}`;
  });

  it("another list's cursor, or a year ISO has and Postgres has not, is a 422 naming the parameter", async () => {
    const agents = await call(app, 'GET', '/voice/agents?limit=1', { token: tok.admin });
    expect(agents.body.next).toEqual(expect.any(String));
    const wrong = await call(app, 'GET', `/voice/calls?cursor=${agents.body.next}`, { token: tok.agent });
    expect([wrong.status, wrong.body.error.details.fields[0].field]).toEqual([422, 'cursor']);
    const year0 = await call(app, 'GET', `/voice/calls?started_after=${encodeURIComponent('0000-01-01T00:00:00Z')}`, {
      token: tok.agent,
    });
    expect([year0.status, year0.body.error.details.fields[0].field]).toEqual([422, 'started_after']);
  });
});

describe('phone numbers', () => {
  it("a number is its tenant's while any of its agents uses it: another tenant is refused even while the agent is parked", async () => {
    const insert = (tenant: string, name: string, phone: string, active = true) =>
      db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
        values (${tenant}, ${name}, ${phone}, 'v', ${db.sql.json(LLM)}, ${active}) returning id`;
    const refused = async (p: Promise<unknown>) => {
      const err = await p.then(() => null, (e) => e);
      expect(err?.code, String(err)).toBe('PT409');
      expect(JSON.parse(err.detail)).toEqual({
        code: 'already_exists',
        details: { fields: [{ field: 'phone', message: 'is already taken' }] },
      });
    };
    await refused(insert(globex, 'Thief', NUMBER.acme));
    await refused(insert(globex, 'Parked thief', NUMBER.acme, false));
    // The attack: acme parks its agent; globex takes the number and receives acme's callers.
    await db.sql`update public.voice_agents set active = false where id = ${AGENT.acme}`;
    try {
      await refused(insert(globex, 'Thief', NUMBER.acme));
      const [g] = await insert(globex, 'Mover', '+14155550160');
      await refused(db.sql`update public.voice_agents set phone = ${NUMBER.acme} where id = ${g.id}`);
      await db.sql`delete from public.voice_agents where id = ${g.id}`;
    } finally {
      await db.sql`update public.voice_agents set active = true where id = ${AGENT.acme}`;
    }
    expect((await route(`to=${encodeURIComponent(NUMBER.acme)}`)).body.agent.id).toBe(AGENT.acme);
    // Within the tenant a parked twin shares the number; only one of them is active.
    await db.sql.begin(async (tx) => {
      await tx`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
        values (${acme}, 'Parked twin', ${NUMBER.acme}, 'v', ${tx.json(LLM)}, false)`;
      const dup = await tx`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
        values (${acme}, 'Active twin', ${NUMBER.acme}, 'v', ${tx.json(LLM)})`.catch((e) => e);
      expect(dup.code).toBe('23505');
      throw Object.assign(new Error('rollback'), { rollback: true });
    }).catch((e) => {
      if (!e.rollback) throw e;
    });
  });

  it("a number is free again once the tenant's last agent on it is deleted or moves to another number", async () => {
    const insert = (tenant: string, name: string, phone: string, active = false) =>
      db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
        values (${tenant}, ${name}, ${phone}, 'v', ${db.sql.json(LLM)}, ${active}) returning id`;
    const [a1] = await insert(acme, 'Held 1', '+14155550161');
    const [a2] = await insert(acme, 'Held 2', '+14155550161');
    await db.sql`delete from public.voice_agents where id = ${a1.id}`;
    // One agent of acme's still uses it.
    expect((await insert(globex, 'Too early', '+14155550161').catch((e) => e)).code).toBe('PT409');
    await db.sql`update public.voice_agents set phone = '+14155550162' where id = ${a2.id}`;
    const [g] = await insert(globex, 'Now free', '+14155550161', true);
    expect((await route(`to=${encodeURIComponent('+14155550161')}`)).body.agent.id).toBe(g.id);
    expect((await insert(globex, 'Held by acme', '+14155550162').catch((e) => e)).code).toBe('PT409');
    await db.sql`delete from public.voice_agents where id in (${a2.id}, ${g.id})`;
  });

  it("a deleted tenant's number goes to the next tenant that claims it", async () => {
    const [parked] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
      values (${globex}, 'Left behind', '+14155550163', 'v', ${db.sql.json(LLM)}, false) returning id`;
    const claim = () =>
      db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
        values (${acme}, 'Next owner', '+14155550163', 'v', ${db.sql.json(LLM)}) returning id`;
    expect((await claim().catch((e) => e)).code).toBe('PT409');
    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${globex}`;
    try {
      const [mine] = await claim();
      expect((await route(`to=${encodeURIComponent('+14155550163')}`)).body.agent.id).toBe(mine.id);
      await db.sql`delete from public.voice_agents where id = ${mine.id}`;
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${globex}`;
      await db.sql`delete from public.voice_agents where id = ${parked.id}`;
    }
  });

  it('an agent leaving a number while another of the tenant takes it: both commit, no deadlock', async () => {
    // The leaving agent's statement is held between its row change and its AFTER triggers
    // (a test-only trigger that sleeps, named to run first), when the claim arrives.
    await db.sql`create function public.test_pause() returns trigger language plpgsql set search_path = '' as $$
      begin perform pg_catalog.pg_sleep(1.5); return null; end $$`;
    await db
      .sql`create trigger a_test_pause after delete on public.voice_agents for each row execute function public.test_pause()`;
    const leaving = await db.sql.reserve();
    const taking = await db.sql.reserve();
    try {
      const [old] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
        values (${acme}, 'Leaving', '+14155550164', 'v', ${db.sql.json(LLM)}) returning id`;
      await leaving`begin`;
      await taking`begin`;
      const left = leaving`delete from public.voice_agents where id = ${old.id}`.then(() => 'ok', (e) => e.code);
      await new Promise((r) => setTimeout(r, 300));
      const took = taking`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
        values (${acme}, 'Taking', '+14155550164', 'v', ${db.sql.json(LLM)})`.then(() => 'ok', (e) => e.code);
      expect(await left).toBe('ok');
      await leaving`commit`;
      expect(await took).toBe('ok');
      await taking`commit`;
      expect((await db.sql`select name from public.voice_agents where phone = '+14155550164'`).map((r) => r.name)).toEqual([
        'Taking',
      ]);
    } finally {
      leaving.release();
      taking.release();
      await db.sql`drop trigger a_test_pause on public.voice_agents`;
      await db.sql`drop function public.test_pause()`;
      await db.sql`delete from public.voice_agents where phone = '+14155550164'`;
    }
  });

  it('two agents of a tenant trading numbers at once: both commit, no deadlock', async () => {
    const [n1, n2] = ['+14155550191', '+14155550192'];
    const [a] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${acme}, 'Trader A', ${n1}, 'v', ${db.sql.json(LLM)}) returning id`;
    const [b] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
      values (${acme}, 'Trader B', ${n2}, 'v', ${db.sql.json(LLM)}, false) returning id`;
    // Someone reading n1 under a share lock holds A's change between its two number locks.
    const holder = await db.sql.reserve();
    const first = await db.sql.reserve();
    const second = await db.sql.reserve();
    const waiting = async (n: number) => {
      for (;;) {
        const [{ w }] = await db.sql`select count(*)::int as w from pg_stat_activity
          where wait_event_type = 'Lock' and query like 'update public.voice_agents set phone%'`;
        if (w >= n) return;
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    try {
      await holder`begin`;
      await holder`select 1 from private.voice_numbers where phone = ${n1} for share`;
      await first`begin`;
      await second`begin`;
      const aMoved = first`update public.voice_agents set phone = ${n2} where id = ${a.id}`.then(() => 'ok', (e) => e.code);
      await waiting(1);
      const bMoved = second`update public.voice_agents set phone = ${n1} where id = ${b.id}`.then(() => 'ok', (e) => e.code);
      await waiting(2);
      await holder`commit`;
      expect(await aMoved).toBe('ok');
      await first`commit`;
      expect(await bMoved).toBe('ok');
      await second`commit`;
      expect(await db.sql`select name, phone from public.voice_agents where id in (${a.id}, ${b.id}) order by name`).toEqual([
        { name: 'Trader A', phone: n2 },
        { name: 'Trader B', phone: n1 },
      ]);
    } finally {
      for (const c of [holder, first, second]) {
        await c`rollback`.catch(() => {});
        c.release();
      }
      await db.sql`delete from public.voice_agents where id in (${a.id}, ${b.id})`;
    }
  });

  it('take_over hands a number from one active agent to another in one change: no moment without an agent; swaps need one each', async () => {
    const [n1, n2] = ['+14155550193', '+14155550194'];
    const agent = async (name: string, phone: string, active: boolean) =>
      (await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
        values (${acme}, ${name}, ${phone}, 'v', ${db.sql.json(LLM)}, ${active}) returning id`)[0].id as string;
    const [x, y, z] = [await agent('Outgoing', n1, true), await agent('Incoming', n1, false), await agent('Other line', n2, true)];
    const patch = (id: string, body: Record<string, unknown>) => call(app, 'PATCH', `/voice/agents/${id}`, { token: tok.admin, body });
    const answering = async (n: string) => (await route(`to=${encodeURIComponent(n)}`)).body.agent?.id;
    const active = async () =>
      Object.fromEntries((await db.sql`select id, active from public.voice_agents where id in (${x}, ${y}, ${z})`).map((r) => [r.id, r.active]));
    try {
      // Without it, the one active agent per number refuses, changing nothing.
      const refused = await patch(y, { active: true });
      expect([refused.status, errorCode(refused)]).toEqual([409, 'already_exists']);
      expect(await answering(n1)).toBe(x);
      // Alone it names no change.
      expect((await patch(y, { take_over: true })).status).toBe(422);
      const taken = await patch(y, { active: true, take_over: true });
      expect([taken.status, taken.body.active]).toEqual([200, true]);
      expect(await active()).toEqual({ [x]: false, [y]: true, [z]: true });
      expect(await answering(n1)).toBe(y);
      // A move onto another line parks its agent; a parked agent's take_over parks nobody.
      const moved = await patch(y, { phone: n2, take_over: true });
      expect([moved.status, moved.body.phone]).toEqual([200, n2]);
      expect(await active()).toEqual({ [x]: false, [y]: true, [z]: false });
      expect(await answering(n2)).toBe(y);
      expect((await patch(z, { name: 'Parked line', take_over: true })).status).toBe(200);
      expect(await active()).toEqual({ [x]: false, [y]: true, [z]: false });
      // Another tenant's number is no one's to take over.
      const foreign = await patch(x, { phone: NUMBER.globex, active: true, take_over: true });
      expect([foreign.status, errorCode(foreign)]).toEqual([409, 'already_exists']);
      expect(await answering(NUMBER.globex)).toBe(AGENT.globex);
    } finally {
      await db.sql`delete from public.voice_agents where id in (${x}, ${y}, ${z})`;
    }
  });

  it("a move onto another tenant's number does not hold up that tenant's claims of it while it is refused", async () => {
    // The move is held between the number locks and the claim that refuses it (a
    // test-only trigger that sleeps, named to run between them).
    await db.sql`create function public.test_pause() returns trigger language plpgsql set search_path = '' as $$
      begin perform pg_catalog.pg_sleep(1.5); return new; end $$`;
    await db.sql`create trigger b_test_pause before update of phone on public.voice_agents for each row execute function public.test_pause()`;
    const [a] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${acme}, 'Mover', '+14155550193', 'v', ${db.sql.json(LLM)}) returning id`;
    try {
      const moved = db.sql`update public.voice_agents set phone = ${NUMBER.globex} where id = ${a.id}`.then(() => 'ok', (e) => e.code);
      await new Promise((r) => setTimeout(r, 300));
      // Globex's own claim of its number (a share lock) is not held up meanwhile.
      const claim = await db.sql.begin(async (tx) => {
        await tx`set local lock_timeout = '500ms'`;
        return (await tx`select tenant_id from private.voice_numbers where phone = ${NUMBER.globex} for share`)[0].tenant_id;
      }).catch((e) => e.code);
      expect(claim).toBe(globex);
      expect(await moved).toBe('PT409');
    } finally {
      await db.sql`drop trigger b_test_pause on public.voice_agents`;
      await db.sql`drop function public.test_pause()`;
      await db.sql`delete from public.voice_agents where id = ${a.id}`;
    }
  });

  it("claims of a deleted tenant's number arriving at once: each lands or is refused, none deadlocks", async () => {
    const [parked] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
      values (${globex}, 'Left behind', '+14155550164', 'v', ${db.sql.json(LLM)}, false) returning id`;
    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${globex}`;
    try {
      const attempts = await Promise.allSettled(Array.from({ length: 8 }, (_, i) =>
        db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
          values (${acme}, ${`Heir ${i}`}, '+14155550164', 'v', ${db.sql.json(LLM)}, false)`));
      // All acme's: the first takes the number over, the rest find it theirs (they deadlocked).
      expect(attempts.map((a) => a.status === 'fulfilled' ? 'ok' : (a as PromiseRejectedResult).reason.code)).toEqual(Array(8).fill('ok'));
      expect((await db.sql`select tenant_id from private.voice_numbers where phone = '+14155550164'`)[0].tenant_id).toBe(acme);
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${globex}`;
      await db.sql`delete from public.voice_agents where phone = '+14155550164'`;
      await db.sql`delete from public.voice_agents where id = ${parked.id}`;
    }
  });

  it('two tenants claiming one free number at once: exactly one of them gets it', async () => {
    for (let round = 0; round < 5; round++) {
      const phone = `+1415555017${round}`;
      const attempts = await Promise.allSettled(
        Array.from(
          { length: 10 },
          (_, i) =>
            db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
            values (${i % 2 ? globex : acme}, ${`Race ${round}.${i}`}, ${phone}, 'v', ${db.sql.json(LLM)}, false)`,
        ),
      );
      const winners = await db.sql`select distinct tenant_id from public.voice_agents where phone = ${phone}`;
      expect(winners).toHaveLength(1);
      // Every attempt of the winner landed, every one of the other tenant was refused with 409.
      attempts.forEach((a, i) => {
        const mine = (i % 2 ? globex : acme) === winners[0].tenant_id;
        expect(a.status, String((a as PromiseRejectedResult).reason)).toBe(mine ? 'fulfilled' : 'rejected');
        if (!mine) expect((a as PromiseRejectedResult).reason.code).toBe('PT409');
      });
      await db.sql`delete from public.voice_agents where phone = ${phone}`;
    }
  });

  it('the database refuses numbers that are not E.164 and an LLM configuration without a model, with a setting it does not know, or with tools the API refuses', async () => {
    for (
      const [phone, llm] of [
        ['4155550001', LLM],
        ['+1415555000a', LLM],
        ['+14155550077', { system_prompt: 'x' }],
        [
          '+14155550078',
          { ...LLM, temperature: 3 },
        ],
        ['+14155550079', { ...LLM, top_p: 0.9 }],
        ['+14155550080', { ...LLM, tools: [1, 'x'] }],
        ['+14155550083', { ...LLM, tools: [[{ name: 'nested' }]] }],
        [
          '+14155550084',
          { ...LLM, tools: [[]] },
        ],
        ['+14155550081', {
          ...LLM,
          tools: Array.from({ length: 51 }, (_, i) => ({ name: `tool${i}` })),
        }],
      ] as const
    ) {
      const err = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
        values (${acme}, 'Bad', ${phone}, 'v', ${db.sql.json(llm)})`.catch((e) => e);
      expect(err.code, phone).toBe('23514');
    }
    // The most tools the API takes is what the table takes.
    const [ok] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${acme}, 'Tooled', '+14155550082', 'v', ${
      db.sql.json({ ...LLM, tools: Array.from({ length: 50 }, (_, i) => ({ name: `tool${i}` })) })
    })
      returning id`;
    await db.sql`delete from public.voice_agents where id = ${ok.id}`;
  });

  it('a configuration the table took (one tool of 20,000 bytes) is taken back unchanged through the API', async () => {
    const llm = { ...LLM, tools: [{ name: 'big', description: 'd'.repeat(20_000) }] };
    const [written] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
      values (${acme}, 'Written directly', '+14155550085', 'v', ${db.sql.json(llm)}, false) returning id`;
    const got = await call(app, 'GET', `/voice/agents/${written.id}`, { token: tok.admin });
    expect(got.body.llm_config).toEqual(llm);
    const sent = await call(app, 'PATCH', `/voice/agents/${written.id}`, { token: tok.admin, body: { llm_config: got.body.llm_config } });
    expect([sent.status, sent.body.llm_config], JSON.stringify(sent.body.error)).toEqual([200, llm]);
    // The whole's bound stays, named.
    const over = await call(app, 'PATCH', `/voice/agents/${written.id}`, {
      token: tok.admin, body: { llm_config: { ...LLM, tools: [{ d: 'x'.repeat(70_000) }] } },
    });
    expect([over.status, over.body.error?.details?.fields?.[0]?.field]).toEqual([422, 'llm_config.tools.0']);
    await db.sql`delete from public.voice_agents where id = ${written.id}`;
  });
});

describe('call events', () => {
  const started = (id: string, extra: Record<string, unknown> = {}) =>
    event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: id,
      from: CALLER,
      to: NUMBER.acme,
      ...extra,
    });
  const segments = (id: string, segs: { seq: number; content?: string }[]) =>
    event({
      type: 'transcript.segments',
      tenant_id: acme,
      provider_call_id: id,
      segments: segs.map((s) => ({
        seq: s.seq,
        speaker: s.seq % 2 ? 'agent' : 'customer',
        content: s.content ?? `line ${s.seq}`,
        offset_ms: s.seq * 1000,
      })),
    });
  const ended = (id: string, extra: Record<string, unknown> = {}) =>
    event({
      type: 'call.ended',
      tenant_id: acme,
      provider_call_id: id,
      status: 'completed',
      duration_seconds: 42,
      outcome: 'answered',
      cost: 0.12,
      ...extra,
    });
  const answered = (id: string, answered_at?: string) =>
    event({ type: 'call.answered', tenant_id: acme, provider_call_id: id, ...(answered_at ? { answered_at } : {}) });
  /** The tenant's call_minutes used this month. */
  const used = async () =>
    (await db.sql`select coalesce(sum(used), 0)::int as n from private.usage_counters
      where tenant_id = ${acme} and metric = 'call_minutes' and period = date_trunc('month', now() at time zone 'UTC')::date`)[0]
      .n as number;
  const transcript = async (id: string) =>
    (await db
      .sql`select s.seq, s.content from public.voice_call_segments s join public.voice_calls c on c.tenant_id = s.tenant_id and c.id = s.call_id
                  where c.provider_call_id = ${id} order by s.seq`).map((r) => `${r.seq}:${r.content}`);

  it("counts each ended call's minutes, rounded up, in the month's call_minutes usage; a repeated end counts nothing more", async () => {
    const before = await used();
    await started('pc-minutes-1');
    expect((await ended('pc-minutes-1', { duration_seconds: 61 })).status).toBe(200);
    expect(await used()).toBe(before + 2);
    await started('pc-minutes-2');
    await ended('pc-minutes-2', { duration_seconds: 120 });
    await ended('pc-minutes-2', { duration_seconds: 120 });
    expect(await used()).toBe(before + 4);
    // A correction counts the difference.
    await db.sql`update public.voice_calls set duration_seconds = 30 where tenant_id = ${acme} and provider_call_id = 'pc-minutes-2'`;
    expect(await used()).toBe(before + 3);
    // A call that ended last month (a late end, the sweep's guess before midnight) counts
    // there, and so does its correction: this month's minutes are not touched.
    const usedIn = async (period: string) =>
      (await db.sql`select coalesce(sum(used), 0)::int as n from private.usage_counters
        where tenant_id = ${acme} and metric = 'call_minutes' and period = ${period}::date`)[0].n as number;
    const [{ last }] = await db.sql`select (date_trunc('month', now() at time zone 'UTC') - interval '1 month')::date::text as last`;
    const lastBefore = await usedIn(last);
    await started('pc-minutes-last-month', { started_at: new Date(Date.parse(`${last}T12:00:00Z`)).toISOString() });
    await ended('pc-minutes-last-month', { duration_seconds: 14_400, ended_at: new Date(Date.parse(`${last}T16:00:00Z`)).toISOString() });
    expect([await usedIn(last), await used()]).toEqual([lastBefore + 240, before + 3]);
    await db.sql`update public.voice_calls set duration_seconds = 600 where tenant_id = ${acme} and provider_call_id = 'pc-minutes-last-month'`;
    expect([await usedIn(last), await used()]).toEqual([lastBefore + 10, before + 3]);
    // Its end moved into this month (an operator's fix), the same duration: its minutes move with it.
    await db.sql`update public.voice_calls set ended_at = now() where tenant_id = ${acme} and provider_call_id = 'pc-minutes-last-month'`;
    expect([await usedIn(last), await used()]).toEqual([lastBefore, before + 13]);
    // A call whose duration is computed from its times when it ends (a person's manual
    // call, the stale-call sweep): five minutes.
    const [manual] = await db.sql`insert into public.voice_calls
      (tenant_id, agent_id, direction, status, provider_call_id, to_number, started_at, answered_at)
      values (${acme}, ${AGENT.acme}, 'outbound', 'in_progress', 'manual:minutes', '+33611112222',
              now() - interval '5 minutes', now() - interval '5 minutes')
      returning id`;
    await db.sql`update public.voice_calls set status = 'completed', ended_at = now() where id = ${manual.id}`;
    expect((await db.sql`select duration_seconds from public.voice_calls where id = ${manual.id}`)[0].duration_seconds).toBe(300);
    expect(await used()).toBe(before + 18);
    // What the tenant's admins read.
    const usage = await call(tenantsApp, 'GET', `/tenants/${acme}/usage`, { token: tok.admin });
    expect(usage.body.metrics.call_minutes.used).toBe(before + 18);
  });

  it('a call that fails while ringing was never answered: no answer time, the end the provider gave, 0 seconds, no minutes', async () => {
    const before = await used();
    const start = new Date(Date.now() - 60_000);
    const end = new Date(start.getTime() + 5_000);
    expect((await started('pc-busy', { answered: false, started_at: start.toISOString() })).body).toMatchObject({ status: 'ringing' });
    const r = await ended('pc-busy', { status: 'failed', outcome: 'busy', ended_at: end.toISOString(), duration_seconds: 25 });
    expect(r.body).toMatchObject({ applied: true, status: 'failed' });
    const [c] = await db.sql`select answered_at, ended_at, duration_seconds from public.voice_calls
      where tenant_id = ${acme} and provider_call_id = 'pc-busy'`;
    expect(c).toEqual({ answered_at: null, ended_at: end, duration_seconds: 0 });
    expect(await used()).toBe(before);
  });

  it('an answer arriving after its failed end is taken: the duration runs from it to the end, and its minutes count', async () => {
    const before = await used();
    const start = new Date(Date.now() - 900_000);
    const pickedUp = new Date(start.getTime() + 10_000);
    const end = new Date(pickedUp.getTime() + 600_000);
    expect((await started('pc-answer-late', { answered: false, started_at: start.toISOString() })).body).toMatchObject({ status: 'ringing' });
    // The call drops after ten minutes of talk; the provider's answer event is retried after its end.
    expect((await ended('pc-answer-late', { status: 'failed', outcome: 'dropped', ended_at: end.toISOString() })).body)
      .toMatchObject({ applied: true, status: 'failed' });
    // An answer that does not say when is no answer time to count from (now is after the end).
    expect((await answered('pc-answer-late')).body).toMatchObject({ applied: false, status: 'failed' });
    const late = await answered('pc-answer-late', pickedUp.toISOString());
    expect(late.body).toMatchObject({ applied: true, status: 'failed' });
    const [c] = await db.sql`select status, answered_at, ended_at, duration_seconds from public.voice_calls
      where tenant_id = ${acme} and provider_call_id = 'pc-answer-late'`;
    expect(c).toEqual({ status: 'failed', answered_at: pickedUp, ended_at: end, duration_seconds: 600 });
    expect(await used()).toBe(before + 10);
    // Told again, nothing more.
    expect((await answered('pc-answer-late', pickedUp.toISOString())).body).toMatchObject({ applied: false });
    expect(await used()).toBe(before + 10);
    // A call that ended missed was never picked up: a stray answer changes nothing.
    await started('pc-missed-answer', { answered: false });
    await ended('pc-missed-answer', { status: 'missed' });
    expect((await answered('pc-missed-answer')).body).toMatchObject({ applied: false, status: 'missed' });
  });

  it('start, segments in order, end: once each; repeated and late events change nothing', async () => {
    const first = await started('pc-1');
    expect(first.body).toMatchObject({ applied: true, status: 'ringing' });
    const again = await started('pc-1', { agent_id: AGENT.acme, started_at: '2020-01-01T00:00:00Z' });
    expect(again.body).toEqual({ applied: false, call_id: first.body.call_id, status: 'ringing' });
    const [row] = await db.sql`select customer_id, started_at from public.voice_calls where id = ${first.body.call_id}`;
    expect(row.customer_id).toBe(voiceCustomer);
    expect(new Date(row.started_at).getFullYear()).toBeGreaterThan(2020);

    // Out of order and repeated: stored once each, read in sequence.
    expect((await segments('pc-1', [{ seq: 2 }, { seq: 0 }])).body).toMatchObject({
      applied: true,
      segments_added: 2,
      status: 'in_progress',
    });
    expect((await segments('pc-1', [{ seq: 1 }, { seq: 2, content: 'rewritten' }])).body).toMatchObject({ segments_added: 1 });
    expect((await segments('pc-1', [{ seq: 0, content: 'rewritten' }])).body).toMatchObject({
      applied: false,
      segments_added: 0,
    });
    expect(await transcript('pc-1')).toEqual(['0:line 0', '1:line 1', '2:line 2']);

    const end = await ended('pc-1');
    expect(end.body).toMatchObject({ applied: true, status: 'completed' });
    const late = [
      await ended('pc-1', { status: 'failed', outcome: 'late' }),
      await segments('pc-1', [{ seq: 3 }]),
      await started('pc-1'),
    ];
    expect(late.map((r) => r.body.applied)).toEqual([false, false, false]);
    const [done] = await db
      .sql`select status, outcome, duration_seconds, cost::float as cost, answered_at, ended_at from public.voice_calls where id = ${first.body.call_id}`;
    expect(done).toMatchObject({ status: 'completed', outcome: 'answered', duration_seconds: 42, cost: 0.12 });
    expect(done.answered_at).not.toBeNull();
    expect(await transcript('pc-1')).toEqual(['0:line 0', '1:line 1', '2:line 2']);
  });

  it('batches: out of order, overlapping and repeated batches store each segment once, read in seq order', async () => {
    await started('pc-batch', { answered: true });
    const batch = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => ({ seq: from + k }));
    // 0–199 arrive as 200–399 first, then 0–249 (overlapping 200–249), then 0–399 again.
    expect((await segments('pc-batch', batch(200, 400).reverse())).body).toMatchObject({ segments_added: 200 });
    expect((await segments('pc-batch', batch(0, 250))).body).toMatchObject({ segments_added: 200 });
    expect((await segments('pc-batch', batch(0, 400))).body).toMatchObject({ applied: false, segments_added: 0 });
    const stored = await transcript('pc-batch');
    expect(stored).toEqual(Array.from({ length: 400 }, (_, i) => `${i}:line ${i}`));
    await ended('pc-batch');
    // A late batch after the end, even of new segments, changes nothing.
    expect((await segments('pc-batch', batch(400, 410))).body).toMatchObject({ applied: false, segments_added: 0 });
    expect(await transcript('pc-batch')).toHaveLength(400);
  });

  it('a ringing call that ends unanswered is missed; completing a ringing call answers it at its start', async () => {
    await started('pc-missed');
    expect((await ended('pc-missed', { status: 'missed', duration_seconds: undefined })).body).toMatchObject({
      applied: true,
      status: 'missed',
    });
    const [m] = await db.sql`select answered_at, duration_seconds from public.voice_calls where provider_call_id = 'pc-missed'`;
    expect(m).toEqual({ answered_at: null, duration_seconds: 0 });
    await started('pc-quick');
    expect((await ended('pc-quick')).body).toMatchObject({ applied: true, status: 'completed' });
    const [q] = await db.sql`select started_at, answered_at from public.voice_calls where provider_call_id = 'pc-quick'`;
    expect(q.answered_at).not.toBeNull();
    expect(new Date(q.answered_at).getTime()).toBe(new Date(q.started_at).getTime());
  });

  it('refuses a status the machine does not allow', async () => {
    await started('pc-answered', { answered: true });
    const missed = await ended('pc-answered', { status: 'missed' });
    expect([missed.status, errorCode(missed), missed.body.error.details]).toEqual([409, 'invalid_transition', {
      from: 'in_progress',
      to: 'missed',
      allowed: ['completed', 'failed'],
    }]);
  });

  const heldRows = async (id: string) =>
    (await db.sql`select type from private.voice_call_early_events where provider_call_id = ${id} order by id`).map((r) => r.type);

  it('an answer, segments and an end that overtake the start are held; the start applies them in the order they came', async () => {
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${acme}, 'https://hooks.example.com/early', 'v1:x', '{call.started,call.ended}')`;
    onTestFinished(async () => {
      await db.sql`delete from private.webhook_events where tenant_id = ${acme}`;
      await db.sql`delete from public.webhook_endpoints where url = 'https://hooks.example.com/early'`;
    });
    const early = [
      await segments('pc-early-1', [{ seq: 1 }]),
      await segments('pc-early-1', [{ seq: 0 }, { seq: 1, content: 'a repeat keeps the first' }]),
      await ended('pc-early-1'),
    ];
    for (const r of early) {
      expect([r.status, r.body.held, r.body.provider_call_id], JSON.stringify(r.body)).toEqual([202, true, 'pc-early-1']);
    }
    // Each held for ten minutes from when it was received (the database's clock).
    const received = (await db.sql`
      select received_at from private.voice_call_early_events where provider_call_id = 'pc-early-1' order by id`).map((x) => x.received_at);
    expect(early.map((r, i) => Date.parse(r.body.held_until) - (received[i] as Date).getTime())).toEqual(early.map(() => 10 * 60_000));
    expect(await db.sql`select id from public.voice_calls where provider_call_id = 'pc-early-1'`).toEqual([]);
    expect(await heldRows('pc-early-1')).toEqual(['transcript.segments', 'transcript.segments', 'call.ended']);

    const start = await started('pc-early-1');
    expect([start.status, start.body.applied, start.body.status]).toEqual([200, true, 'completed']);
    expect(await transcript('pc-early-1')).toEqual(['0:line 0', '1:line 1']);
    const [c] = await db.sql`select status, duration_seconds, cost::float8 as cost, outcome, answered_at = started_at as answered_at_start,
      ended_at >= started_at as ends_after_start from public.voice_calls where provider_call_id = 'pc-early-1'`;
    expect(c).toEqual({ status: 'completed', duration_seconds: 42, cost: 0.12, outcome: 'answered', answered_at_start: true, ends_after_start: true });
    expect(await heldRows('pc-early-1')).toEqual([]);
    // The webhooks as if each had arrived in time: the start first.
    const hooks = await db.sql`select type from private.webhook_events where tenant_id = ${acme} and payload -> 'data' ->> 'provider_call_id' = 'pc-early-1' order by id`;
    expect(hooks.map((h) => h.type)).toEqual(['call.started', 'call.ended']);
    // Once applied, they are the call's: a repeated start or end changes nothing.
    expect((await started('pc-early-1')).body).toMatchObject({ applied: false, status: 'completed' });
    expect((await ended('pc-early-1', { status: 'failed' })).body).toMatchObject({ applied: false, status: 'completed' });
  });

  it('held events keep the times they arrived: an answer or a first segment answers then, an end without a time ends then', async () => {
    const arrivals = async (id: string) =>
      (await db.sql`select received_at from private.voice_call_early_events where provider_call_id = ${id} order by id`)
        .map((r) => r.received_at.toISOString());
    const times = async (id: string) =>
      (await db.sql`select answered_at, ended_at from public.voice_calls where provider_call_id = ${id}`)
        .map((c) => [c.answered_at.toISOString(), c.ended_at.toISOString()])[0];
    const aMinuteAgo = new Date(Date.now() - 60_000).toISOString();
    await answered('pc-early-times');
    await ended('pc-early-times');
    const [answerCame, endCame] = await arrivals('pc-early-times');
    await started('pc-early-times', { started_at: aMinuteAgo });
    expect(await times('pc-early-times')).toEqual([answerCame, endCame]);
    // Words before the start: the call was answered when they came, not when the start did.
    await segments('pc-early-words', [{ seq: 0 }]);
    await ended('pc-early-words');
    const [wordsCame, wordsEndCame] = await arrivals('pc-early-words');
    await started('pc-early-words', { started_at: aMinuteAgo });
    expect(await times('pc-early-words')).toEqual([wordsCame, wordsEndCame]);
    // A start reported after the held end (the provider's clocks disagree): the end is the start.
    await ended('pc-early-skew');
    await started('pc-early-skew', { started_at: new Date(Date.now() - 1).toISOString() });
    const [k] = await db.sql`select ended_at = started_at as at_start, status from public.voice_calls where provider_call_id = 'pc-early-skew'`;
    expect(k).toEqual({ at_start: true, status: 'completed' });
  });

  it('held events after a held failed end answer nothing: the retried answer with its time counts the call', async () => {
    const before = await used();
    const start = new Date(Date.now() - 900_000);
    const pickedUp = new Date(start.getTime() + 10_000);
    const end = new Date(pickedUp.getTime() + 600_000);
    // The start is late (an outage): the call's failed end, words and an answer without a time are held.
    for (const r of [
      await ended('pc-early-failed', { status: 'failed', outcome: 'dropped', ended_at: end.toISOString(), duration_seconds: undefined }),
      await segments('pc-early-failed', [{ seq: 0 }]),
      await answered('pc-early-failed'),
    ]) expect(r.status).toBe(202);
    expect((await started('pc-early-failed', { answered: false, started_at: start.toISOString() })).body).toMatchObject({ status: 'failed' });
    const call = async () =>
      (await db.sql`select status, answered_at, ended_at, duration_seconds from public.voice_calls
        where tenant_id = ${acme} and provider_call_id = 'pc-early-failed'`)[0];
    // As had they come after the start: the end first, then nothing answers a failed call at the end.
    expect(await call()).toEqual({ status: 'failed', answered_at: null, ended_at: end, duration_seconds: 0 });
    // The provider's answer, retried with its time: taken, and the ten minutes count.
    expect((await answered('pc-early-failed', pickedUp.toISOString())).body).toMatchObject({ applied: true, status: 'failed' });
    expect(await call()).toEqual({ status: 'failed', answered_at: pickedUp, ended_at: end, duration_seconds: 600 });
    expect(await used()).toBe(before + 10);
  });

  it('a held event keeps every field its schema has, and the start applies each: none dropped on the way', async () => {
    // The fields an early event carries besides its type and its call (the schemas'), all set.
    const fieldsOf = (schema: { shape: Record<string, unknown> }) =>
      Object.keys(schema.shape).filter((k) => !['type', 'tenant_id', 'provider_call_id'].includes(k)).sort();
    const endedAt = new Date(Date.now() - 5_000).toISOString();
    const answeredAt = new Date(Date.now() - 50_000).toISOString();
    const end = {
      status: 'completed',
      ended_at: endedAt,
      duration_seconds: 45,
      outcome: 'booked',
      cost: 0.37,
      summary: 'Booked a table for two.',
      recording_path: 'recordings/pc-early-full.wav',
    };
    expect(Object.keys(end).sort()).toEqual(fieldsOf(CallEndedEvent));
    expect(['answered_at']).toEqual(fieldsOf(CallAnsweredEvent));
    expect(['segments']).toEqual(fieldsOf(TranscriptEvent));
    await answered('pc-early-fields', answeredAt);
    await segments('pc-early-fields', [{ seq: 0, content: 'a table for two' }]);
    await ended('pc-early-fields', end);
    const held = await db.sql`select type, payload from private.voice_call_early_events where provider_call_id = 'pc-early-fields' order by id`;
    expect(held.map((h) => [h.type, Object.keys(h.payload).sort()])).toEqual([
      ['call.answered', ['answered_at']],
      ['transcript.segments', ['segments']],
      ['call.ended', fieldsOf(CallEndedEvent)],
    ]);
    await started('pc-early-fields', { started_at: new Date(Date.now() - 60_000).toISOString() });
    const [c] = await db.sql`
      select status, answered_at, ended_at, duration_seconds, outcome, cost::float8 as cost, summary, recording_path
      from public.voice_calls where provider_call_id = 'pc-early-fields'`;
    // The call as the end said it, answered when the answer said.
    expect({ ...c, answered_at: c.answered_at.toISOString(), ended_at: c.ended_at.toISOString() })
      .toEqual({ ...end, answered_at: answeredAt });
    expect(await transcript('pc-early-fields')).toEqual(['0:a table for two']);
  });

  it('an end its call then refuses is dropped, and the start and the events before it stand', async () => {
    await answered('pc-early-refused');
    await ended('pc-early-refused', { status: 'missed' }); // an answered call cannot be missed
    const start = await started('pc-early-refused');
    expect([start.status, start.body.applied, start.body.status]).toEqual([200, true, 'in_progress']);
    expect(await heldRows('pc-early-refused')).toEqual([]);
    // The real end that follows applies as always.
    expect((await ended('pc-early-refused')).body).toMatchObject({ applied: true, status: 'completed' });
  });

  it('held events older than 10 minutes are dropped: a start after that finds nothing, and the job clears them', async () => {
    await segments('pc-early-stale', [{ seq: 0 }]);
    await ended('pc-early-stale');
    await db.sql`update private.voice_call_early_events set received_at = now() - interval '11 minutes' where provider_call_id = 'pc-early-stale'`;
    const start = await started('pc-early-stale');
    expect([start.body.applied, start.body.status]).toEqual([true, 'ringing']);
    expect(await transcript('pc-early-stale')).toEqual([]);
    expect(await heldRows('pc-early-stale')).toEqual([]);
    // Those of a call that never starts: dropped by the stale-call job's prune, the live kept.
    await segments('pc-early-never', [{ seq: 0 }]);
    await segments('pc-early-never', [{ seq: 1 }]);
    await segments('pc-early-live', [{ seq: 0 }]);
    await db.sql`update private.voice_call_early_events set received_at = now() - interval '11 minutes' where provider_call_id = 'pc-early-never'`;
    const [{ n }] = await db.sql`select private.prune_voice_early_events() as n`;
    expect(n).toBe(2);
    expect(await heldRows('pc-early-never')).toEqual([]);
    expect(await heldRows('pc-early-live')).toEqual(['transcript.segments']);
  });

  it('a call holds at most 32 early events, a tenant 1,000 and 16 MiB; beyond, 404 unknown_call as before; other tenants unaffected', async () => {
    const refused = async (r: Awaited<ReturnType<typeof event>>) => expect([r.status, errorCode(r)]).toEqual([404, 'unknown_call']);
    await db.sql`delete from private.voice_call_early_events where tenant_id = ${acme}`;
    onTestFinished(async () => {
      await db.sql`delete from private.voice_call_early_events where tenant_id = ${acme}`;
    });
    // One call: 32 taken, the 33rd refused.
    for (let seq = 0; seq < 32; seq++) expect((await segments('pc-early-chatty', [{ seq }])).status).toBe(202);
    await refused(await segments('pc-early-chatty', [{ seq: 32 }]));
    // The tenant: 999 held, the 1,000th taken, the 1,001st refused.
    await db.sql`delete from private.voice_call_early_events where tenant_id = ${acme}`;
    await db.sql`insert into private.voice_call_early_events (tenant_id, provider_call_id, type, payload)
      select ${acme}, 'pc-flood-' || g, 'call.ended', '{"status": "completed"}' from generate_series(1, 999) g`;
    expect((await ended('pc-early-1000th')).status).toBe(202);
    await refused(await ended('pc-early-1001st'));
    expect(await heldRows('pc-early-1001st')).toEqual([]);
    // Expired ones do not count.
    await db.sql`update private.voice_call_early_events set received_at = now() - interval '11 minutes' where provider_call_id = 'pc-flood-1'`;
    expect((await ended('pc-early-1001st')).status).toBe(202);
    // Bytes: 17 events of 1 MiB of random text.
    await db.sql`delete from private.voice_call_early_events where tenant_id = ${acme}`;
    await db.sql`insert into private.voice_call_early_events (tenant_id, provider_call_id, type, payload)
      select ${acme}, 'pc-big-' || g, 'call.ended',
        jsonb_build_object('summary', (select string_agg(md5(random()::text || g || x), '') from generate_series(1, 32768) x))
      from generate_series(1, 17) g`;
    const [{ mb }] = await db.sql`select sum(pg_column_size(payload)) / 1048576.0 as mb from private.voice_call_early_events where tenant_id = ${acme}`;
    expect(Number(mb)).toBeGreaterThan(16);
    await refused(await ended('pc-early-bytes'));
    const theirs = await event({ type: 'call.ended', tenant_id: globex, provider_call_id: 'pc-early-globex', status: 'completed' });
    expect(theirs.status).toBe(202);
  });

  it('a start and an event of one call arriving at once: every event applied, once', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `pc-early-race-${i}`);
    const results = await Promise.all(ids.flatMap((id) => [started(id), segments(id, [{ seq: 0 }]), ended(id)]));
    expect(results.every((r) => r.status === 200 || r.status === 202), JSON.stringify(results.find((r) => r.status >= 300)?.body))
      .toBe(true);
    const calls = await db.sql`
      select c.status, (select count(*)::int from public.voice_call_segments s where s.tenant_id = c.tenant_id and s.call_id = c.id) as n
      from public.voice_calls c where c.provider_call_id like 'pc-early-race-%'`;
    expect(calls).toHaveLength(40);
    // The segment may arrive after the end (then a late one: dropped, as always); the end always applies.
    expect(calls.filter((c) => c.status !== 'completed')).toEqual([]);
    const [{ n }] = await db.sql`select count(*)::int as n from private.voice_call_early_events where provider_call_id like 'pc-early-race-%'`;
    expect(n).toBe(0);
  });

  it('a hold and a start of one call id take turns: the start applies an event held meanwhile, or the event finds the call', async () => {
    const a = await db.sql.reserve();
    const b = await db.sql.reserve();
    // Until the statement of this pid waits for a lock (a bounded wait: it never does without one).
    const waiting = async (pid: number) => {
      for (let i = 0; i < 500; i++) {
        const [w] = await db.sql`select wait_event_type from pg_stat_activity where pid = ${pid}`;
        if (w?.wait_event_type === 'Lock') return;
        await new Promise((r) => setTimeout(r, 10));
      }
      throw new Error(`backend ${pid} never waited for the lock`);
    };
    const end = db.sql.json({ status: 'completed', duration_seconds: 7 });
    try {
      const [{ pid: pidA }] = await a`select pg_backend_pid() as pid`;
      const [{ pid: pidB }] = await b`select pg_backend_pid() as pid`;
      // Held first; the start comes while the hold is not committed yet.
      await a`begin`;
      const [h] = await a`select held from private.voice_call_event_held(${acme}, 'pc-turns-1', 'call.ended', ${end})`;
      expect(h.held).toBe(true);
      const start = b`select * from private.voice_call_started(${acme}, ${AGENT.acme}, 'pc-turns-1', 'inbound', null, null, null, false)`
        .then((rows) => rows);
      await waiting(pidB);
      await a`commit`;
      expect((await start)[0]).toMatchObject({ applied: true, status: 'completed' });
      expect((await db.sql`select duration_seconds from public.voice_calls where provider_call_id = 'pc-turns-1'`)[0].duration_seconds)
        .toBe(7);
      // Started first; the event comes while the start is not committed yet: not held, sent again.
      await b`begin`;
      await b`select * from private.voice_call_started(${acme}, ${AGENT.acme}, 'pc-turns-2', 'inbound', null, null, null, false)`;
      const hold = a`select held from private.voice_call_event_held(${acme}, 'pc-turns-2', 'call.ended', ${end})`
        .then((rows) => rows);
      await waiting(pidA);
      await b`commit`;
      expect((await hold)[0].held).toBe(false);
      expect(await heldRows('pc-turns-2')).toEqual([]);
    } finally {
      a.release();
      b.release();
    }
  });

  it('a tenant that could not start the call holds nothing: suspended, no voice in its plan, deleted', async () => {
    const early = () => event({ type: 'call.ended', tenant_id: globex, provider_call_id: 'pc-early-state', status: 'completed' });
    try {
      await db.sql`update public.tenants set status = 'suspended' where id = ${globex}`;
      const suspended = await early();
      await db.sql`update public.tenants set status = 'active', plan = 'starter' where id = ${globex}`;
      const offPlan = await early();
      await db.sql`update public.tenants set status = 'deleted', deleted_at = now(), plan = 'pro' where id = ${globex}`;
      const deleted = await early();
      expect([suspended, offPlan, deleted].map((r) => [r.status, errorCode(r)]))
        .toEqual([[404, 'unknown_call'], [404, 'unknown_call'], [404, 'tenant_deleted']]);
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null, plan = 'pro' where id = ${globex}`;
    }
    expect(await heldRows('pc-early-state')).toEqual([]);
  });

  it('call.answered: the first answer of a ringing call applies with its time (bounded by the start and now); a repeated or late one changes nothing', async () => {
    const at = new Date(Date.now() - 60_000);
    expect((await started('pc-answer', { started_at: at.toISOString() })).body.status).toBe('ringing');
    const picked = new Date(at.getTime() + 7_000).toISOString();
    const first = await answered('pc-answer', picked);
    expect([first.status, first.body.applied, first.body.status], JSON.stringify(first.body)).toEqual([200, true, 'in_progress']);
    const again = await answered('pc-answer', new Date().toISOString());
    expect([again.body.applied, again.body.status]).toEqual([false, 'in_progress']);
    const [c] = await db.sql`select status, answered_at from public.voice_calls where provider_call_id = 'pc-answer'`;
    expect([c.status, c.answered_at.toISOString()]).toEqual(['in_progress', picked]);
    // A time before the start is the start; an answer after the end changes nothing.
    await started('pc-answer-early', { started_at: at.toISOString() });
    expect((await answered('pc-answer-early', new Date(at.getTime() - 3_600_000).toISOString())).body.applied).toBe(true);
    expect(
      (await db.sql`select answered_at from public.voice_calls where provider_call_id = 'pc-answer-early'`)[0].answered_at
        .toISOString(),
    )
      .toBe(at.toISOString());
    await ended('pc-answer-early');
    const late = await answered('pc-answer-early');
    expect([late.body.applied, late.body.status]).toEqual([false, 'completed']);
    const nowhere = await answered('pc-answer-nowhere');
    expect([nowhere.status, nowhere.body.held]).toEqual([202, true]);
  });

  it("a guessed answer time gives way to the provider's call.answered naming the real one; the duration and the minutes billed follow", async () => {
    const at = new Date(Date.now() - 600_000);
    // The transcript came first (answered, by a guess, at its arrival), the answer's delivery after.
    await started('pc-guess-a', { started_at: at.toISOString() });
    expect((await segments('pc-guess-a', [{ seq: 0 }])).status).toBe(200);
    const guessed = (await db.sql`select answer_inferred from public.voice_calls where provider_call_id = 'pc-guess-a'`)[0];
    expect(guessed.answer_inferred).toBe(true);
    const real = new Date(at.getTime() + 10_000).toISOString();
    const a = await answered('pc-guess-a', real);
    expect([a.body.applied, a.body.status]).toEqual([true, 'in_progress']);
    // Given by the provider now: a repeat with another time changes nothing.
    expect((await answered('pc-guess-a', new Date(at.getTime() + 20_000).toISOString())).body.applied).toBe(false);
    const [ca] = await db.sql`select answered_at, answer_inferred from public.voice_calls where provider_call_id = 'pc-guess-a'`;
    expect([ca.answered_at.toISOString(), ca.answer_inferred]).toEqual([real, false]);

    // Ended completed while still ringing, without a duration (answered, by a guess, at the
    // start: three minutes billed, the ringing too); the answer's retry says a minute in.
    const before = await used();
    await started('pc-guess-b', { started_at: at.toISOString() });
    await ended('pc-guess-b', { duration_seconds: undefined, ended_at: new Date(at.getTime() + 180_000).toISOString() });
    const call = async () =>
      (await db.sql`select duration_seconds, answer_inferred from public.voice_calls where provider_call_id = 'pc-guess-b'`)[0];
    expect(await call()).toEqual({ duration_seconds: 180, answer_inferred: true });
    expect(await used()).toBe(before + 3);
    const b = await answered('pc-guess-b', new Date(at.getTime() + 60_000).toISOString());
    expect([b.body.applied, b.body.status]).toEqual([true, 'completed']);
    expect(await call()).toEqual({ duration_seconds: 120, answer_inferred: false });
    expect(await used()).toBe(before + 2);
    expect((await answered('pc-guess-b', new Date(at.getTime() + 90_000).toISOString())).body.applied).toBe(false);

    // The provider's own duration stays (its count, not the guess's).
    await started('pc-guess-c', { started_at: at.toISOString() });
    await ended('pc-guess-c', { ended_at: new Date(at.getTime() + 180_000).toISOString() });
    expect((await answered('pc-guess-c', new Date(at.getTime() + 60_000).toISOString())).body.applied).toBe(true);
    expect((await db.sql`select duration_seconds from public.voice_calls where provider_call_id = 'pc-guess-c'`)[0].duration_seconds)
      .toBe(42);
  });

  it('takes a start or an end reported ahead of now as now: a call started in 2099 would never be swept', async () => {
    const ahead = '2099-01-01T00:00:00Z';
    expect((await started('pc-ahead', { started_at: ahead, answered: true })).status).toBe(200);
    expect((await ended('pc-ahead', { ended_at: ahead })).status).toBe(200);
    const [c] = await db.sql`select started_at <= now() and started_at > now() - interval '1 minute' as started_now,
      ended_at <= now() and ended_at >= started_at as ended_now from public.voice_calls where provider_call_id = 'pc-ahead'`;
    expect(c).toEqual({ started_now: true, ended_now: true });
  });

  it('an event naming a tenant that does not exist is 404 unknown_tenant (not the plan of no tenant)', async () => {
    const nobody = '10000000-0000-4000-8000-0000000000ff';
    for (
      const body of [
        { type: 'call.started', agent_id: AGENT.acme },
        { type: 'call.answered' },
        { type: 'transcript.segments', segments: [{ seq: 0, speaker: 'customer', content: 'hello' }] },
        { type: 'call.ended', status: 'completed' },
      ]
    ) {
      const r = await event({ ...body, tenant_id: nobody, provider_call_id: 'pc-nobody' });
      expect([r.status, errorCode(r)], JSON.stringify(r.body)).toEqual([404, 'unknown_tenant']);
    }
  });

  it('never takes a manual: id, the calls people log by hand: no provider event can reach one', async () => {
    await db.sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status)
      values (${acme}, ${AGENT.acme}, 'manual:front-desk-1', 'in_progress')`;
    for (
      const r of [
        await started('manual:front-desk-1'),
        await segments('manual:front-desk-1', [{ seq: 0 }]),
        await ended('manual:front-desk-1'),
      ]
    ) {
      expect([r.status, errorCode(r), r.body.error.details.fields[0].field]).toEqual([
        422,
        'validation_failed',
        'provider_call_id',
      ]);
    }
    const [c] = await db.sql`select status, (select count(*)::int from public.voice_call_segments s where s.call_id = c.id) as n
      from public.voice_calls c where provider_call_id = 'manual:front-desk-1'`;
    expect(c).toEqual({ status: 'in_progress', n: 0 });
  });

  it("follows the tenant's state: suspended takes no new call but finishes those under way; deleted takes nothing; no voice in the plan, no call", async () => {
    const start = (id: string) =>
      event({ type: 'call.started', tenant_id: globex, agent_id: AGENT.globex, provider_call_id: id, answered: true });
    const segment = (id: string, seq: number) =>
      event({
        type: 'transcript.segments',
        tenant_id: globex,
        provider_call_id: id,
        segments: [{ seq, speaker: 'agent', content: `line ${seq}` }],
      });
    const end = (id: string) =>
      event({ type: 'call.ended', tenant_id: globex, provider_call_id: id, status: 'completed', cost: 0.3 });
    const calls = async () => (await db.sql`select count(*)::int as n from public.voice_calls where tenant_id = ${globex}`)[0].n;
    expect((await start('pc-state-1')).status).toBe(200);
    expect((await start('pc-state-2')).status).toBe(200);
    await db.sql`update public.tenants set status = 'suspended' where id = ${globex}`;
    try {
      const before = await calls();
      const refused = await start('pc-state-new');
      expect([refused.status, errorCode(refused)]).toEqual([403, 'tenant_suspended']);
      expect(await calls()).toBe(before);
      // A repeated start answers the call as it is; the call under way gets its words and its end.
      expect((await start('pc-state-1')).body).toMatchObject({ applied: false, status: 'in_progress' });
      expect((await segment('pc-state-1', 0)).body).toMatchObject({ segments_added: 1 });
      expect((await end('pc-state-1')).body).toMatchObject({ applied: true, status: 'completed' });

      await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${globex}`;
      const [{ snapshot }] = await db
        .sql`select md5(string_agg(c::text, ',' order by c.id)) as snapshot from public.voice_calls c where tenant_id = ${globex}`;
      for (
        const r of [
          await start('pc-state-new'),
          await start('pc-state-1'),
          await segment('pc-state-2', 0),
          await end('pc-state-2'),
        ]
      ) {
        expect([r.status, errorCode(r)]).toEqual([404, 'tenant_deleted']);
      }
      const [after] = await db
        .sql`select md5(string_agg(c::text, ',' order by c.id)) as snapshot from public.voice_calls c where tenant_id = ${globex}`;
      expect(after.snapshot).toBe(snapshot);

      await db.sql`update public.tenants set status = 'active', deleted_at = null, plan = 'starter' where id = ${globex}`;
      const offPlan = await start('pc-state-new');
      expect([offPlan.status, errorCode(offPlan)]).toEqual([403, 'feature_not_in_plan']);
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null, plan = 'pro' where id = ${globex}`;
    }
  });

  it("cannot start a call of one tenant with another tenant's agent", async () => {
    const r = await event({ type: 'call.started', tenant_id: globex, agent_id: AGENT.acme, provider_call_id: 'pc-cross' });
    expect([r.status, errorCode(r)]).toEqual([422, 'validation_failed']);
    expect(await db.sql`select id from public.voice_calls where provider_call_id = 'pc-cross'`).toEqual([]);
  });

  it('the same provider call id in two tenants is two calls', async () => {
    const a = await started('pc-shared');
    const g = await event({ type: 'call.started', tenant_id: globex, agent_id: AGENT.globex, provider_call_id: 'pc-shared' });
    expect([a.body.applied, g.body.applied]).toEqual([true, true]);
    expect(a.body.call_id).not.toBe(g.body.call_id);
  });

  it('50 calls appending at once, and two calls of one customer at once: every segment once, in order', async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `pc-load-${i}`);
    const starts = await Promise.all(ids.map((id) => started(id)));
    expect(starts.every((r) => r.body.applied)).toBe(true);
    // Each call gets 4 batches of 5 segments, the batches racing each other (and repeated).
    const batches = ids.flatMap((id) =>
      [0, 1, 2, 3, 0].map((b) => () => segments(id, Array.from({ length: 5 }, (_, k) => ({ seq: b * 5 + k }))))
    );
    const results = await Promise.all(batches.map((f) => f()));
    expect(results.every((r) => r.status === 200)).toBe(true);
    const counts = await db.sql`
      select c.provider_call_id, count(s.*)::int as n,
             array_agg(s.seq || ':' || s.content order by s.seq) = array(select g || ':line ' || g from generate_series(0, 19) g) as exact
      from public.voice_calls c left join public.voice_call_segments s on s.tenant_id = c.tenant_id and s.call_id = c.id
      where c.provider_call_id like 'pc-load-%' group by 1`;
    expect(counts).toHaveLength(50);
    // Each seq once, with its own words: no batch's segment landed under another seq.
    expect(counts.every((r) => r.n === 20 && r.exact)).toBe(true);
    // And a reader gets the transcript in seq order, whatever order the batches landed in.
    const [{ id: one }] = await db.sql`select id from public.voice_calls where provider_call_id = 'pc-load-7'`;
    const detail = await call(app, 'GET', `/voice/calls/${one}`, { token: tok.agent });
    expect(detail.body.transcript.map((x: { seq: number; content: string }) => `${x.seq}:${x.content}`))
      .toEqual(Array.from({ length: 20 }, (_, g) => `${g}:line ${g}`));
    const [{ n }] = await db
      .sql`select count(*)::int as n from public.voice_calls where provider_call_id like 'pc-load-%' and customer_id = ${voiceCustomer}`;
    expect(n).toBe(50);
  });

  it('segment events sent at once share statements, and each answers as it would alone, refusals included', async () => {
    // Three open calls, one ended, one unknown, and an event whose text Postgres cannot
    // take as JSON (a lone surrogate passes validation); each event's answer alone first.
    for (const id of ['pc-bat-0', 'pc-bat-1', 'pc-bat-2', 'pc-bat-ended', 'pc-bat-bad']) await started(id, { answered: true });
    await ended('pc-bat-ended');
    const ids = ['pc-bat-0', 'pc-bat-1', 'pc-bat-2', 'pc-bat-ended', 'pc-bat-unknown', 'pc-bat-bad'];
    onTestFinished(async () => {
      await db.sql`delete from private.voice_call_early_events where provider_call_id = 'pc-bat-unknown'`;
    });
    const content = (id: string) => (id === 'pc-bat-bad' ? 'broken \ud800 text' : undefined);
    const alone: Awaited<ReturnType<typeof event>>[] = [];
    for (const id of ids) alone.push(await segments(id, [{ seq: 0, content: content(id) }]));
    // The unknown call's events are held for it (each answer with its own time).
    const same = (r: Awaited<ReturnType<typeof event>>) => (r.body.held ? { ...r, body: { ...r.body, held_until: 'later' } } : r);
    expect(alone.map((r) => [r.status, r.body.segments_added ?? (r.body.held ? 'held' : errorCode(r))]))
      .toEqual([[200, 1], [200, 1], [200, 1], [200, 0], [202, 'held'], [422, 'validation_failed']]);
    const statements: string[] = [];
    observeStatements((text) => statements.push(text));
    try {
      // 120 at once, in reverse call order across the burst: seq 1..20 of each id.
      const burst = Array.from({ length: 120 }, (_, i) => ({ id: ids[(119 - i) % 6], seq: 1 + Math.floor(i / 6) }));
      const together = await Promise.all(burst.map((b) => segments(b.id, [{ seq: b.seq, content: content(b.id) }])));
      // A new seq adds one segment as the first did; the ended call takes none; the
      // unknown is held; the bad text is its own 422, and no other event's.
      together.forEach((r, i) => expect(same(r), `event ${i}`).toEqual(same(alone[ids.indexOf(burst[i].id)])));
    } finally {
      observeStatements(null);
    }
    expect(statements.filter((t) => t.includes('voice_call_segments_append_outcome')).length).toBeGreaterThan(0);
    for (const id of ids.slice(0, 3)) expect(await transcript(id)).toHaveLength(21);
    expect(await transcript('pc-bat-ended')).toHaveLength(0);
    expect(await transcript('pc-bat-bad')).toHaveLength(0);
  });

  it('validates events before anything is written', async () => {
    for (
      const body of [
        { type: 'call.started', tenant_id: acme, provider_call_id: 'x' },
        { type: 'call.exploded', tenant_id: acme, provider_call_id: 'x' },
        { type: 'transcript.segments', tenant_id: acme, provider_call_id: 'x', segments: [] },
        {
          type: 'transcript.segments',
          tenant_id: acme,
          provider_call_id: 'pc-1',
          segments: [{ seq: 7, speaker: 'agent', content: 'one' }, { seq: 7, speaker: 'agent', content: 'two' }],
        },
        { type: 'call.ended', tenant_id: acme, provider_call_id: 'x', status: 'vanished' },
      ]
    ) {
      const r = await event(body);
      expect([r.status, errorCode(r)], JSON.stringify(body)).toEqual([422, 'validation_failed']);
    }
  });

  it('a time ISO has and Postgres has not (year 0000, an offset past ±15:59) is a 422 naming the field, nothing written', async () => {
    const calls = async () => (await db.sql`select count(*)::int as n from public.voice_calls where tenant_id = ${acme}`)[0].n;
    const before = await calls();
    for (
      const [field, body] of [
        ['started_at', { type: 'call.started', agent_id: AGENT.acme, to: NUMBER.acme, started_at: '0000-06-01T00:00:00Z' }],
        ['started_at', { type: 'call.started', agent_id: AGENT.acme, to: NUMBER.acme, started_at: '2026-01-01T00:00:00+16:00' }],
        ['started_at', { type: 'call.started', agent_id: AGENT.acme, to: NUMBER.acme, started_at: '2026-01-01T00:00:00-23:30' }],
        ['answered_at', { type: 'call.answered', answered_at: '0000-06-01T00:00:00Z' }],
        ['ended_at', { type: 'call.ended', status: 'completed', ended_at: '2026-01-01T00:00:00+20:00' }],
      ] as const
    ) {
      const r = await event({ tenant_id: acme, provider_call_id: 'odd-time', ...body });
      expect([r.status, errorCode(r), r.body.error.details?.fields?.[0]?.field], JSON.stringify(body)).toEqual([
        422,
        'validation_failed',
        field,
      ]);
    }
    expect(await calls()).toBe(before);
    // The edge Postgres takes: an offset of ±15:59.
    const edge = await started('edge-time', { started_at: '2026-01-01T00:00:00+15:59' });
    expect([edge.status, edge.body.applied]).toEqual([200, true]);
    const [{ started_at }] = await db.sql`select started_at from public.voice_calls where provider_call_id = 'edge-time'`;
    expect(started_at.toISOString()).toBe('2025-12-31T08:01:00.000Z');
    await db.sql`delete from public.voice_calls where provider_call_id = 'edge-time'`;
  });
});

describe('agents, as people manage them', () => {
  const body = (phone: string, extra: Record<string, unknown> = {}) => ({
    name: 'Night desk',
    phone,
    voice_id: 'voice-n',
    llm_config: LLM,
    ...extra,
  });

  it('stores a number in its canonical form, so one line is one tenant’s however it is written', async () => {
    const created = await call(app, 'POST', '/voice/agents', { token: tok.admin, body: body('+330612345679') });
    expect([created.status, created.body.phone]).toEqual([201, '+33612345679']);
    const other = await call(app, 'POST', '/voice/agents', { token: tok.globexAdmin, body: body('+33612345679') });
    expect([other.status, errorCode(other)]).toEqual([409, 'already_exists']);
    await db.sql`delete from public.voice_agents where id = ${created.body.id}`;
  });

  it('an LLM configuration larger in all than the database holds is a 422 naming it, before SQL', async () => {
    const tools = Array.from({ length: 10 }, (_, i) => ({ name: `tool_${i}`, description: 'x'.repeat(10_000) }));
    const r = await call(app, 'POST', '/voice/agents', {
      token: tok.admin,
      body: body('+14155550177', { llm_config: { ...LLM, tools } }),
    });
    expect([r.status, r.body.error.details.fields]).toEqual([422, [{
      code: 'custom',
      field: 'llm_config',
      message: 'at most 65536 bytes in all (as JSON)',
    }]]);
  });

  it("jsonbTextBytes counts what the database's check counts (octet_length of the jsonb's text)", async () => {
    const samples: unknown[] = [
      LLM,
      {
        model: 'm',
        system_prompt: 'line\nbreak\ttab "quoted" \\ back \u0001 ctl é 😀',
        tools: [{ a: [1, 2, { b: null }], c: true }],
      },
      { model: 'm', system_prompt: '', temperature: 0.25, tools: [] },
      // Numbers JSON.stringify writes in exponent form, which Postgres writes digit by digit.
      { model: 'm', system_prompt: 'p', tools: [{ big: 1e300, small: 1.5e-7, negative: -2e21, plain: 123.456 }] },
    ];
    for (const sample of samples) {
      const [{ n }] = await db.sql`select octet_length(${db.sql.json(sample as never)}::jsonb::text) as n`;
      expect(jsonbTextBytes(sample), JSON.stringify(sample)).toBe(n);
    }
  });

  it('admins create and change agents; agents read them, users without their LLM configuration; other tenants see nothing', async () => {
    const created = await call(app, 'POST', '/voice/agents', { token: tok.admin, body: body('+14155550100') });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body).toMatchObject({ tenant_id: acme, phone: '+14155550100', active: true, language: 'en', llm_config: LLM });
    const refused = await call(app, 'POST', '/voice/agents', { token: tok.agent, body: body('+14155550101') });
    expect([refused.status, errorCode(refused)]).toEqual([403, 'forbidden']);
    const read = await call(app, 'GET', `/voice/agents/${created.body.id}`, { token: tok.user });
    expect(read.body.name).toBe('Night desk');
    // A customer reads the agents without their LLM configuration (the system prompt, the
    // tools with their credentials): through the API as null, directly not at all.
    expect(read.body).toMatchObject({ id: created.body.id, phone: '+14155550100', llm_config: null });
    const listed = await call(app, 'GET', '/voice/agents?limit=100', { token: tok.user });
    expect(listed.body.items.length).toBeGreaterThan(1);
    expect(listed.body.items.filter((a: { llm_config: unknown }) => a.llm_config !== null)).toEqual([]);
    expect((await call(app, 'GET', `/voice/agents/${created.body.id}`, { token: tok.agent })).body.llm_config).toEqual(LLM);
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser, acme), async (tx) =>
      (await tx`select llm_config from public.voice_agents where tenant_id = ${acme}`).length);
    expect(direct).toEqual({ ok: true, value: 0 });
    const patched = await call(app, 'PATCH', `/voice/agents/${created.body.id}`, {
      token: tok.admin,
      body: { active: false, greeting: 'Closed' },
    });
    expect(patched.body).toMatchObject({ active: false, greeting: 'Closed', phone: '+14155550100' });
    // An update changes only what it names (no defaults filled in).
    const renamed = await call(app, 'PATCH', `/voice/agents/${created.body.id}`, {
      token: tok.admin,
      body: { name: 'Night desk' },
    });
    expect(renamed.body).toMatchObject({ active: false, greeting: 'Closed', language: 'en' });
    // Another tenant's admin: not found, unchanged.
    for (const [method, b] of [['GET', undefined], ['PATCH', { name: 'Stolen' }], ['DELETE', undefined]] as const) {
      const r = await call(app, method, `/voice/agents/${created.body.id}`, { token: tok.globexAdmin, body: b });
      expect([r.status, errorCode(r)], method).toEqual([404, 'not_found']);
    }
    const list = await call(app, 'GET', '/voice/agents?active=false', { token: tok.agent });
    expect(list.body.items.map((a: { name: string }) => a.name)).toEqual(['Night desk', 'Retired']);
    const del = await call(app, 'DELETE', `/voice/agents/${created.body.id}`, { token: tok.admin });
    expect(del.status).toBe(204);
  });

  it("a number another tenant's active agent answers is 409 already_exists naming phone", async () => {
    const r = await call(app, 'POST', '/voice/agents', { token: tok.admin, body: body(NUMBER.globex) });
    expect([r.status, errorCode(r), r.body.error.details.fields]).toEqual([409, 'already_exists', [{
      field: 'phone',
      message: 'is already taken',
    }]]);
  });

  it('refuses a bad number or LLM configuration with a 422 naming the field', async () => {
    const cases: [unknown, string][] = [
      [body('0415555'), 'phone'],
      [body('+14155550102', { llm_config: { model: 'x' } }), 'llm_config.system_prompt'],
      [body('+14155550102', { llm_config: { ...LLM, temperature: 9 } }), 'llm_config.temperature'],
      // An unknown setting is named, not dropped.
      [body('+14155550102', { llm_config: { ...LLM, top_p: 0.9 } }), 'llm_config.top_p'],
    ];
    const before = (await db.sql`select count(*)::int as n from public.voice_agents`)[0].n;
    for (const [b, field] of cases) {
      const r = await call(app, 'POST', '/voice/agents', { token: tok.admin, body: b });
      expect([r.status, errorCode(r)], JSON.stringify(b)).toEqual([422, 'validation_failed']);
      expect(r.body.error.details.fields.map((f: { field: string }) => f.field), JSON.stringify(r.body)).toContain(field);
    }
    expect((await db.sql`select count(*)::int as n from public.voice_agents`)[0].n).toBe(before);
  });

  it('deletes an agent without calls; one with calls is 409 still_referenced and stays, to be deactivated', async () => {
    const [{ n }] = await db
      .sql`select count(*)::int as n from public.voice_calls where tenant_id = ${acme} and agent_id = ${AGENT.acme}`;
    expect(n).toBeGreaterThan(0);
    const kept = await call(app, 'DELETE', `/voice/agents/${AGENT.acme}`, { token: tok.admin });
    expect([kept.status, errorCode(kept)]).toEqual([409, 'still_referenced']);
    expect((await db.sql`select 1 from public.voice_agents where id = ${AGENT.acme}`).length).toBe(1);
    const spare = await call(app, 'POST', '/voice/agents', { token: tok.admin, body: body('+14155550177') });
    expect(spare.status, JSON.stringify(spare.body)).toBe(201);
    expect((await call(app, 'DELETE', `/voice/agents/${spare.body.id}`, { token: tok.admin })).status).toBe(204);
    expect((await db.sql`select 1 from public.voice_agents where id = ${spare.body.id}`).length).toBe(0);
  });

  it('pages agents by name with a cursor', async () => {
    const first = await call(app, 'GET', '/voice/agents?limit=1', { token: tok.user });
    expect(first.body.items).toHaveLength(1);
    const second = await call(app, 'GET', `/voice/agents?limit=1&cursor=${first.body.next}`, { token: tok.user });
    expect(second.body.items[0].name > first.body.items[0].name).toBe(true);
    const bad = await call(app, 'GET', '/voice/agents?cursor=nonsense', { token: tok.user });
    expect([bad.status, errorCode(bad)]).toEqual([422, 'validation_failed']);
  });
});

describe('customers', () => {
  it("a customer's tags are trimmed, blanks dropped and each kept once, through the API and the import alike", async () => {
    const made = await call(app, 'POST', '/voice/customers', {
      token: tok.agent,
      body: { phone: '+14155551290', tags: [' vip', 'vip', '   ', 'new '] },
    });
    expect([made.status, made.body.tags]).toEqual([201, ['vip', 'new']]);
    const patched = await call(app, 'PATCH', `/voice/customers/${made.body.id}`, {
      token: tok.agent,
      body: { tags: ['late ', ' late', 'vip'] },
    });
    expect([patched.status, patched.body.tags]).toEqual([200, ['late', 'vip']]);
    const imported = await call(app, 'POST', '/voice/customers/import', {
      token: tok.agent,
      body: { csv: 'phone,tags\n+14155551290,late; late ;|vip\n' },
    });
    expect([imported.status, imported.body.unchanged], JSON.stringify(imported.body)).toEqual([200, 1]);
    const [row] = await db.sql`select tags from public.voice_customers where id = ${made.body.id}`;
    expect(row.tags).toEqual(['late', 'vip']);
    await db.sql`delete from public.voice_customers where id = ${made.body.id}`;
  });

  it('agents add customers; consent times are the database’s; staff read, a customer (user) not; the number is unique per tenant', async () => {
    const r = await call(app, 'POST', '/voice/customers', {
      token: tok.agent,
      body: { phone: '+14155551234', name: 'Ada', email: 'ada@example.test', tags: ['vip'], marketing_consent: true },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.marketing_consent_at).not.toBeNull();
    expect(r.body.recording_consent_at).toBeNull();
    const off = await call(app, 'PATCH', `/voice/customers/${r.body.id}`, {
      token: tok.agent,
      body: { marketing_consent: false, notes: 'Prefers mornings' },
    });
    expect(off.body).toMatchObject({
      marketing_consent: false,
      marketing_consent_at: null,
      notes: 'Prefers mornings',
      name: 'Ada',
      tags: ['vip'],
    });
    const dup = await call(app, 'POST', '/voice/customers', { token: tok.agent, body: { phone: '+14155551234' } });
    expect([dup.status, errorCode(dup)]).toEqual([409, 'already_exists']);
    const elsewhere = await call(app, 'POST', '/voice/customers', { token: tok.globexAdmin, body: { phone: '+14155551234' } });
    expect(elsewhere.status).toBe(201);
    const byUser = await call(app, 'POST', '/voice/customers', { token: tok.user, body: { phone: '+14155551235' } });
    expect(byUser.status).toBe(403);
    const found = await call(app, 'GET', `/voice/customers?phone=${encodeURIComponent('+14155551234')}`, { token: tok.agent });
    expect(found.body.items.map((x: { id: string }) => x.id)).toEqual([r.body.id]);
    // A tenant's customer (role user) reads no other customer's record (20261202180000).
    const byCustomer = await call(app, 'GET', `/voice/customers?phone=${encodeURIComponent('+14155551234')}`, {
      token: tok.user,
    });
    expect([byCustomer.status, byCustomer.body.items]).toEqual([200, []]);
    expect((await call(app, 'GET', `/voice/customers/${r.body.id}`, { token: tok.user })).status).toBe(404);
    const foreign = await call(app, 'GET', `/voice/customers/${r.body.id}`, { token: tok.globexAdmin });
    expect(foreign.status).toBe(404);
  });

  it('pages newest first without repeats', async () => {
    for (let i = 0; i < 5; i++) {
      await call(app, 'POST', '/voice/customers', { token: tok.agent, body: { phone: `+1415555130${i}`, tags: ['paged'] } });
    }
    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const r = await call(app, 'GET', `/voice/customers?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.agent });
      seen.push(...r.body.items.map((x: { phone: string }) => x.phone).filter((p: string) => p.startsWith('+1415555130')));
      cursor = r.body.next;
    }
    expect(seen).toEqual(['+14155551304', '+14155551303', '+14155551302', '+14155551301', '+14155551300']);
  });
});

describe('calls, as people read them', () => {
  beforeAll(async () => {
    await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'read-1',
      from: CALLER,
      answered: true,
    });
    await event({
      type: 'transcript.segments',
      tenant_id: acme,
      provider_call_id: 'read-1',
      segments: [{ seq: 1, speaker: 'agent', content: 'Your refund is on its way' }, {
        seq: 0,
        speaker: 'customer',
        content: 'Where is my refund?',
      }],
    });
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'read-1', status: 'completed', cost: 0.5 });
    await event({ type: 'call.started', tenant_id: globex, agent_id: AGENT.globex, provider_call_id: 'read-g', answered: true });
    await event({
      type: 'transcript.segments',
      tenant_id: globex,
      provider_call_id: 'read-g',
      segments: [{ seq: 0, speaker: 'customer', content: 'refund please' }],
    });
  });

  it('finds calls by transcript words (stemmed), status and customer; the detail has the transcript in order', async () => {
    const found = await call(app, 'GET', '/voice/calls?q=refunds&status=completed', { token: tok.agent });
    expect(found.status, JSON.stringify(found.body)).toBe(200);
    expect(found.body.items.map((x: { provider_call_id: string }) => x.provider_call_id)).toEqual(['read-1']);
    const detail = await call(app, 'GET', `/voice/calls/${found.body.items[0].id}`, { token: tok.agent });
    expect(detail.body).toMatchObject({ status: 'completed', cost: 0.5, customer_id: voiceCustomer });
    expect(detail.body.transcript.map((x: { seq: number; content: string }) => x.content)).toEqual([
      'Where is my refund?',
      'Your refund is on its way',
    ]);
    const byCustomer = await call(app, 'GET', `/voice/calls?customer_id=${voiceCustomer}&limit=100`, { token: tok.agent });
    expect(byCustomer.body.items.length).toBeGreaterThan(50);
    expect(byCustomer.body.items.every((x: { tenant_id: string }) => x.tenant_id === acme)).toBe(true);
  });

  it("another tenant's calls are not there", async () => {
    const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = 'read-g'`;
    const r = await call(app, 'GET', `/voice/calls/${id}`, { token: tok.admin });
    expect(r.status).toBe(404);
    const words = await call(app, 'GET', '/voice/calls?q=please', { token: tok.admin });
    expect(words.body.items).toEqual([]);
  });

  it('pages calls newest first, within a time range', async () => {
    const all = await call(app, 'GET', '/voice/calls?agent_id=' + AGENT.acme + '&limit=100', { token: tok.agent });
    expect(all.body.items.length).toBeGreaterThan(7);
    const seen: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const r = await call(app, 'GET', `/voice/calls?agent_id=${AGENT.acme}&limit=7${cursor ? `&cursor=${cursor}` : ''}`, {
        token: tok.agent,
      });
      seen.push(...r.body.items.map((x: { id: string }) => x.id));
      cursor = r.body.next;
    }
    // The pages in turn are the one long page (its first 100), then the rest: each call once.
    expect(seen.slice(0, all.body.items.length)).toEqual(all.body.items.map((x: { id: string }) => x.id));
    const [{ n }] = await db.sql`select count(*)::int as n from public.voice_calls where agent_id = ${AGENT.acme}`;
    expect([seen.length, new Set(seen).size]).toEqual([n, n]);
    const none = await call(app, 'GET', '/voice/calls?started_before=2000-01-01T00:00:00Z', { token: tok.agent });
    expect(none.body.items).toEqual([]);
  });

  it('a page ending on a call started before year 1 (Postgres writes BC) has a next cursor that works', async () => {
    const [agent] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
      values (${acme}, 'Antiquity', '+14155557301', 'v', ${db.sql.json(LLM)}, false) returning id`;
    try {
      // Its calls from when it was active (a parked agent takes no new call).
      const ids = await db.sql.begin(async (tx) => {
        await tx`set local session_replication_role = replica`;
        return (await tx`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
          values (${acme}, ${agent.id}, 'manual:bc-1', 'ringing', '0044-03-15 12:00:00+00 BC'),
                 (${acme}, ${agent.id}, 'manual:bc-2', 'ringing', '0044-03-14 12:00:00+00 BC')
          returning id`).map((r) => r.id);
      });
      const first = await call(app, 'GET', `/voice/calls?agent_id=${agent.id}&limit=1`, { token: tok.agent });
      expect([first.status, first.body.items.map((x: { id: string }) => x.id)]).toEqual([200, [ids[0]]]);
      const second = await call(app, 'GET', `/voice/calls?agent_id=${agent.id}&limit=1&cursor=${first.body.next}`, {
        token: tok.agent,
      });
      expect(second.status).toBe(200);
      expect([second.body.items.map((x: { id: string }) => x.id), second.body.next]).toEqual([[ids[1]], null]);
    } finally {
      await db.sql`delete from public.voice_calls where agent_id = ${agent.id}`;
      await db.sql`delete from public.voice_agents where id = ${agent.id}`;
    }
  });
  it('transcript words that an index cannot look up (negations only) find no call, not every other one', async () => {
    const found = await call(app, 'GET', `/voice/calls?q=${encodeURIComponent('refund')}`, { token: tok.agent });
    expect(found.body.items.length).toBeGreaterThan(0);
    for (const q of ['-refund', '-zzzz', 'the']) {
      const r = await call(app, 'GET', `/voice/calls?q=${encodeURIComponent(q)}`, { token: tok.agent });
      expect([r.status, r.body.items], q).toEqual([200, []]);
    }
  });

  it("reads a long transcript in pages: the detail's first, then /transcript from its transcript_next", async () => {
    await event({ type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: 'long-read', answered: true });
    const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = 'long-read'`;
    await db.sql`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
      select ${acme}, ${id}, g, 'agent', 'line ' || g from generate_series(0, 449) g`;
    const detail = await call(app, 'GET', `/voice/calls/${id}`, { token: tok.agent });
    expect([detail.status, detail.body.transcript.length, detail.body.transcript_next]).toEqual([200, 200, '199']);
    const second = await call(app, 'GET', `/voice/calls/${id}/transcript?cursor=199`, { token: tok.agent });
    expect([second.status, second.body.items[0].seq, second.body.items.length, second.body.next]).toEqual([200, 200, 200, '399']);
    const last = await call(app, 'GET', `/voice/calls/${id}/transcript?cursor=399&limit=500`, { token: tok.agent });
    expect([last.body.items.length, last.body.items.at(-1).seq, last.body.next]).toEqual([50, 449, null]);
    const bad = await call(app, 'GET', `/voice/calls/${id}/transcript?cursor=-1`, { token: tok.agent });
    expect([bad.status, errorCode(bad)]).toEqual([422, 'validation_failed']);
    const stranger = await call(app, 'GET', `/voice/calls/${id}/transcript`, { token: tok.globexAdmin });
    expect(stranger.status).toBe(404);
  });
});

describe('a customer (role user) reads their own voice data', () => {
  it('their linked customer record (through the API, without staff’s notes and tags), its calls and transcripts on both paths; no other caller’s', async () => {
    const ids = (r: { body: { items: { id: string }[] } }) => r.body.items.map((x) => x.id).sort();
    // A call of the known caller's record, and another caller's call, in the same tenant.
    await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'mine-1',
      from: CALLER,
      answered: true,
    });
    await event({
      type: 'transcript.segments',
      tenant_id: acme,
      provider_call_id: 'mine-1',
      segments: [{ seq: 1, speaker: 'agent', content: 'Your refund is on its way' }, {
        seq: 0,
        speaker: 'customer',
        content: 'Where is my refund?',
      }],
    });
    const [{ id: readOne }] = await db
      .sql`select id from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'mine-1'`;
    await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'stranger-1',
      from: '+14155550777',
      answered: true,
    });
    await event({
      type: 'transcript.segments',
      tenant_id: acme,
      provider_call_id: 'stranger-1',
      segments: [{ seq: 0, speaker: 'customer', content: 'my refund' }],
    });
    const [{ id: stranger }] = await db
      .sql`select id from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'stranger-1'`;
    const asUser = (fn: Parameters<typeof probeAs>[3]) =>
      probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser, acme), fn);
    const direct = () =>
      asUser(async (tx) => ({
        customers: (await tx`select id from public.voice_customers order by id`).map((r) => r.id),
        calls: (await tx`select count(*)::int as n from public.voice_calls`)[0].n,
        segments: (await tx`select count(*)::int as n from public.voice_call_segments`)[0].n,
      }));

    // Linked to no record: nothing, on either path.
    expect(ids(await call(app, 'GET', '/voice/customers?limit=100', { token: tok.user }))).toEqual([]);
    expect(ids(await call(app, 'GET', '/voice/calls?limit=100', { token: tok.user }))).toEqual([]);
    expect((await call(app, 'GET', `/voice/calls/${readOne}`, { token: tok.user })).status).toBe(404);
    expect(await direct()).toEqual({ ok: true, value: { customers: [], calls: 0, segments: 0 } });

    const [before] = await db.sql`select notes, tags from public.voice_customers where id = ${voiceCustomer}`;
    await db.sql`
      update public.voice_customers set user_id = ${users.acmeUser.id}, notes = 'Shouts at agents; refunds need a manager',
        tags = '{watchlist}'
      where id = ${voiceCustomer}`;
    try {
      const own = await db.sql`select id from public.voice_calls where tenant_id = ${acme} and customer_id = ${voiceCustomer}`;
      const [{ n: ownSegments }] = await db.sql`
        select count(*)::int as n from public.voice_call_segments s join public.voice_calls c on c.tenant_id = s.tenant_id and c.id = s.call_id
        where c.tenant_id = ${acme} and c.customer_id = ${voiceCustomer}`;
      expect(own.length).toBeGreaterThan(0);
      expect(ownSegments).toBeGreaterThan(1);
      expect(ids(await call(app, 'GET', '/voice/customers?limit=100', { token: tok.user }))).toEqual([voiceCustomer]);
      // Their record, without what staff note about them (a policy filters rows, not
      // columns: the record is read through private.voice_own_customer_records).
      for (
        const theirs of [
          (await call(app, 'GET', '/voice/customers?limit=100', { token: tok.user })).body.items[0],
          (await call(app, 'GET', `/voice/customers/${voiceCustomer}`, { token: tok.user })).body,
          (await call(app, 'GET', `/voice/customers?phone=${encodeURIComponent(CALLER)}`, { token: tok.user })).body.items[0],
        ]
      ) {
        expect(theirs).toMatchObject({ id: voiceCustomer, phone: CALLER, user_id: users.acmeUser.id, notes: null, tags: [] });
      }
      expect((await call(app, 'GET', `/voice/customers/${voiceCustomer}`, { token: tok.agent })).body).toMatchObject({
        notes: 'Shouts at agents; refunds need a manager',
        tags: ['watchlist'],
      });
      const listed = await call(app, 'GET', `/voice/calls?customer_id=${voiceCustomer}&limit=100`, { token: tok.user });
      expect(listed.body.items.length).toBe(Math.min(own.length, 100));
      const detail = await call(app, 'GET', `/voice/calls/${readOne}`, { token: tok.user });
      expect(detail.body.transcript.map((x: { content: string }) => x.content)).toEqual([
        'Where is my refund?',
        'Your refund is on its way',
      ]);
      // A word in both transcripts finds only theirs.
      const byWord = ids(await call(app, 'GET', '/voice/calls?q=refund&limit=100', { token: tok.user }));
      expect(byWord).toContain(readOne);
      expect(byWord).not.toContain(stranger);
      expect(ids(await call(app, 'GET', '/voice/calls?q=refund&limit=100', { token: tok.agent }))).toContain(stranger);
      expect((await call(app, 'GET', `/voice/calls/${stranger}`, { token: tok.user })).status).toBe(404);
      // Directly: their calls and transcripts, not the record with staff's notes.
      expect(await direct()).toEqual({
        ok: true,
        value: { customers: [], calls: own.length, segments: ownSegments },
      });
      // Their record in another tenant's eyes: nothing.
      expect((await call(app, 'GET', `/voice/customers/${voiceCustomer}`, { token: tok.globexAdmin })).status).toBe(404);
    } finally {
      await db.sql`
        update public.voice_customers set user_id = null, notes = ${before.notes}, tags = ${before.tags}
        where id = ${voiceCustomer}`;
    }
  });
});

describe('knowledge base', () => {
  let kb: string;
  it('admins upload documents, chunked on write; search finds the best chunks, by stem or exact word', async () => {
    const created = await call(app, 'POST', '/voice/knowledge-bases', { token: tok.admin, body: { name: 'Front desk' } });
    expect(created.status).toBe(201);
    kb = created.body.id;
    const refused = await call(app, 'POST', `/voice/knowledge-bases/${kb}/documents`, {
      token: tok.agent,
      body: { title: 'x', content: 'y' },
    });
    expect(refused.status).toBe(403);
    const filler = Array.from(
      { length: 30 },
      (_, i) => `Paragraph ${i} about nothing in particular, padded to some length for chunking.`,
    ).join('\n\n');
    const doc = await call(app, 'POST', `/voice/knowledge-bases/${kb}/documents`, {
      token: tok.admin,
      body: {
        title: 'Policies',
        format: 'markdown',
        content: `# Refunds\n\nRefunds are paid within 14 days.\n\n${filler}\n\nParking: the garage code is XJ-42.`,
      },
    });
    expect(doc.status, JSON.stringify(doc.body)).toBe(201);
    expect(doc.body.chunks).toBeGreaterThan(1);
    const stem = await call(app, 'GET', `/voice/knowledge-bases/search?q=refunded`, { token: tok.user });
    expect(stem.body.items[0].content).toContain('Refunds are paid within 14 days');
    const exact = await call(app, 'GET', `/voice/knowledge-bases/search?q=XJ-42&knowledge_base_id=${kb}`, { token: tok.user });
    expect(exact.body.items[0].content).toContain('garage code');
    const foreign = await call(app, 'GET', `/voice/knowledge-bases/search?q=refund`, { token: tok.globexAdmin });
    expect(foreign.body.items).toEqual([]);
    const docs = await call(app, 'GET', `/voice/knowledge-bases/${kb}/documents`, { token: tok.user });
    expect(docs.body.items.map((d: { title: string }) => d.title)).toEqual(['Policies']);
  });

  it('the provider searches for the agent during a call, tenant named, with its credential only', async () => {
    const [{ kb }] = await db.sql`select knowledge_base_id as kb from public.kb_documents where tenant_id = ${acme} and title = 'Policies'`;
    const r = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&knowledge_base_id=${kb}&q=parking`, {
      headers: { 'x-telephony-secret': TELEPHONY_SECRET },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.items[0].content).toContain('garage code');
    const other = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${globex}&knowledge_base_id=${kb}&q=parking`, {
      headers: { 'x-telephony-secret': TELEPHONY_SECRET },
    });
    expect(other.body.items).toEqual([]);
    const user = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&knowledge_base_id=${kb}&q=parking`, { token: tok.admin });
    expect(user.status).toBe(401);
    // A deleted tenant has no knowledge left for an agent, as one that never existed.
    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${acme}`;
    try {
      const gone = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&knowledge_base_id=${kb}&q=parking`, {
        headers: { 'x-telephony-secret': TELEPHONY_SECRET },
      });
      expect([gone.status, gone.body.items]).toEqual([200, []]);
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${acme}`;
    }
  });

  it("the provider's search for the agent on the call reads that agent's knowledge base alone: none, nothing found", async () => {
    const headers = { 'x-telephony-secret': TELEPHONY_SECRET };
    const [{ kb }] = await db.sql`select knowledge_base_id as kb from public.kb_documents where tenant_id = ${acme} and title = 'Policies'`;
    const [{ kept }] = await db.sql`select knowledge_base_id as kept from public.voice_agents where id = ${AGENT.acme}`;
    const found = async (agent: string) => {
      const get = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&agent_id=${agent}&q=parking`, { headers });
      const post = await call(app, 'POST', '/voice/knowledge/search', { headers, body: { tenant_id: acme, agent_id: agent, q: 'parking' } });
      expect([get.status, post.status], JSON.stringify([get.body, post.body])).toEqual([200, 200]);
      expect(post.body.items).toEqual(get.body.items);
      return get.body.items.map((i: { content: string }) => i.content.includes('garage code'));
    };
    try {
      await db.sql`update public.voice_agents set knowledge_base_id = null where id = ${AGENT.acme}`;
      // Naming neither the agent nor a knowledge base: refused, never every knowledge base
      // of the tenant (an integration passing on /route's null knowledge base for an agent
      // without one read the others' then). With the agent, its own: none.
      for (const neither of [
        await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&q=parking`, { headers }),
        await call(app, 'POST', '/voice/knowledge/search', { headers, body: { tenant_id: acme, q: 'parking' } }),
      ]) {
        expect([neither.status, errorCode(neither)]).toEqual([422, 'validation_failed']);
        expect(neither.body.error.details.fields).toEqual([
          expect.objectContaining({ field: 'agent_id', message: expect.stringContaining('knowledge_base_id') }),
        ]);
      }
      expect(await found(AGENT.acme)).toEqual([]);
      await db.sql`update public.voice_agents set knowledge_base_id = ${kb} where id = ${AGENT.acme}`;
      expect((await found(AGENT.acme))[0]).toBe(true);
      // Another tenant's agent, or an unknown one: nothing, alike.
      expect(await found(AGENT.globex)).toEqual([]);
      expect(await found('70000000-0000-4000-8000-0000000000ff')).toEqual([]);
      const both = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&agent_id=${AGENT.acme}&knowledge_base_id=${kb}&q=parking`, {
        headers,
      });
      expect([both.status, errorCode(both)]).toEqual([422, 'validation_failed']);
    } finally {
      await db.sql`update public.voice_agents set knowledge_base_id = ${kept} where id = ${AGENT.acme}`;
    }
  });

  it('admins rename a knowledge base, change a document (a new content is chunked again, a new title not) and delete them; others cannot', async () => {
    const created = await call(app, 'POST', '/voice/knowledge-bases', {
      token: tok.admin,
      body: { name: 'Kitchen', description: 'Menus' },
    });
    const id = created.body.id;
    const doc = await call(app, 'POST', `/voice/knowledge-bases/${id}/documents`, {
      token: tok.admin,
      body: { title: 'Menu', content: 'The soup of the day is tomato.' },
    });
    const docUrl = `/voice/knowledge-bases/${id}/documents/${doc.body.id}`;
    const chunks = async () => (await db
      .sql`select id, content from public.kb_chunks where tenant_id = ${acme} and document_id = ${doc.body.id} order by ordinal`);
    const search = async (q: string) =>
      (await call(app, 'GET', `/voice/knowledge-bases/search?q=${q}&knowledge_base_id=${id}`, { token: tok.agent })).body.items
        .map((x: { content: string }) => x.content);

    // Staff and customers read it; only admins change it; another tenant sees nothing.
    expect((await call(app, 'GET', `/voice/knowledge-bases/${id}`, { token: tok.user })).body).toMatchObject({
      name: 'Kitchen',
      description: 'Menus',
    });
    expect((await call(app, 'GET', docUrl, { token: tok.agent })).body).toMatchObject({
      title: 'Menu',
      content: 'The soup of the day is tomato.',
      chunks: 1,
    });
    for (
      const [method, url, body] of [['PATCH', `/voice/knowledge-bases/${id}`, { name: 'x' }], ['PATCH', docUrl, { title: 'x' }], [
        'DELETE',
        `/voice/knowledge-bases/${id}`,
        undefined,
      ]] as const
    ) {
      expect((await call(app, method, url, { token: tok.agent, body })).status, `${method} ${url}`).toBe(403);
      expect((await call(app, method, url, { token: tok.globexAdmin, body })).status, `${method} ${url}`).toBe(404);
    }
    expect((await call(app, 'GET', docUrl, { token: tok.globexAdmin })).status).toBe(404);
    // A document addressed through another knowledge base of the same tenant is not there.
    const [other] = await db
      .sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Pantry') returning id`;
    expect((await call(app, 'GET', `/voice/knowledge-bases/${other.id}/documents/${doc.body.id}`, { token: tok.admin })).status)
      .toBe(404);
    expect(
      (await call(app, 'PATCH', `/voice/knowledge-bases/${other.id}/documents/${doc.body.id}`, {
        token: tok.admin,
        body: { title: 'x' },
      })).status,
    )
      .toBe(404);

    const renamed = await call(app, 'PATCH', `/voice/knowledge-bases/${id}`, {
      token: tok.admin,
      body: { name: 'Kitchen and bar', description: null },
    });
    expect([renamed.status, renamed.body.name, renamed.body.description]).toEqual([200, 'Kitchen and bar', null]);
    const taken = await call(app, 'PATCH', `/voice/knowledge-bases/${id}`, { token: tok.admin, body: { name: 'Pantry' } });
    expect([taken.status, errorCode(taken)]).toEqual([409, 'already_exists']);
    const empty = await call(app, 'PATCH', `/voice/knowledge-bases/${id}`, { token: tok.admin, body: {} });
    expect([empty.status, errorCode(empty)]).toEqual([422, 'validation_failed']);

    const before = await chunks();
    const retitled = await call(app, 'PATCH', docUrl, {
      token: tok.admin,
      body: { title: 'Lunch menu', source: 'https://example.test/menu' },
    });
    expect(retitled.body).toMatchObject({ title: 'Lunch menu', source: 'https://example.test/menu', chunks: 1 });
    expect(await chunks()).toEqual(before); // the same chunk rows: not chunked again
    const resent = await call(app, 'PATCH', docUrl, { token: tok.admin, body: { content: 'The soup of the day is tomato.' } });
    expect(resent.status).toBe(200);
    expect(await chunks()).toEqual(before); // the same content sent again: not chunked again either
    const rewritten = await call(app, 'PATCH', docUrl, {
      token: tok.admin,
      body: { content: 'Today: pumpkin soup.\n\nDessert: apple pie.' },
    });
    expect(rewritten.status, JSON.stringify(rewritten.body)).toBe(200);
    expect((await chunks()).map((c) => c.content).join(' ')).toContain('pumpkin');
    expect(await search('tomato')).toEqual([]);
    expect((await search('pumpkin'))[0]).toContain('pumpkin soup');
    const bad = await call(app, 'PATCH', docUrl, { token: tok.admin, body: { content: '' } });
    expect([bad.status, errorCode(bad)]).toEqual([422, 'validation_failed']);
    expect((await search('pumpkin'))[0]).toContain('pumpkin soup');

    // An agent answering from it keeps answering, without it.
    const [agent] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, knowledge_base_id)
      values (${acme}, 'Kitchen line', '+14155550091', 'v', ${db.sql.json(LLM)}, ${id}) returning id`;
    expect((await call(app, 'DELETE', `/voice/knowledge-bases/${id}`, { token: tok.admin })).status).toBe(204);
    expect((await call(app, 'GET', `/voice/knowledge-bases/${id}`, { token: tok.admin })).status).toBe(404);
    expect(await chunks()).toEqual([]);
    expect((await db.sql`select knowledge_base_id from public.voice_agents where id = ${agent.id}`)[0].knowledge_base_id)
      .toBeNull();
    expect((await route(`to=${encodeURIComponent('+14155550091')}`)).status).toBe(200);
    await db.sql`update public.voice_agents set active = false where id = ${agent.id}`;
  });

  it('lists knowledge bases and documents in keyset pages', async () => {
    const [second] = await db
      .sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Zzz paged') returning id`;
    // A name past Latin-1 is a sort key like any other: pages of one end on it, and its
    // cursor must encode (btoa alone threw, a 500) and come back (100 such characters,
    // escaped, are past the 500 a cursor could be).
    await db.sql`insert into public.voice_knowledge_bases (tenant_id, name)
      values (${acme}, 'Aaa paged'), (${acme}, 'Mmm paged'), (${acme}, 'Bbb – Łódź paged 😀'), (${acme}, ${
      'Ccc ' + 'Ж'.repeat(96)
    }), (${acme}, 'Ooo paged')`;
    // Five documents written at one instant: the id orders them.
    await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      select ${acme}, ${second.id}, 'Page ' || g, 'page ' || g from generate_series(0, 4) g`;
    const tied = (await db
      .sql`select title from public.kb_documents where knowledge_base_id = ${second.id} order by created_at desc, id desc`)
      .map((r) => r.title);
    expect(
      new Set(
        (await db.sql`select created_at from public.kb_documents where knowledge_base_id = ${second.id}`).map((r) =>
          +r.created_at
        ),
      ).size,
    )
      .toBe(1);
    const walk = async (url: string, limit = 2) => {
      const seen: string[] = [];
      let cursor: string | null = '';
      while (cursor !== null) {
        const r = await call(app, 'GET', `${url}?limit=${limit}${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.agent });
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        seen.push(...r.body.items.map((x: { name?: string; title?: string }) => x.name ?? x.title));
        cursor = r.body.next;
      }
      return seen;
    };
    const names = (await db.sql`select name from public.voice_knowledge_bases where tenant_id = ${acme} order by name, id`).map((
      r,
    ) => r.name);
    expect(names.length).toBeGreaterThan(4);
    expect(await walk('/voice/knowledge-bases')).toEqual(names);
    expect(await walk('/voice/knowledge-bases', 1)).toEqual(names);
    expect(await walk(`/voice/knowledge-bases/${second.id}/documents`)).toEqual(tied);
    expect(tied).toHaveLength(5);
  });
  it("a document's new content and its knowledge base's deletion at once: one waits for the other, no deadlock", async () => {
    // The content change locked the document, then its new chunks' link the base; the
    // base's deletion locked the base, then cascaded to the document: each waited for the
    // other, and one was aborted (503 retry).
    const base = await call(app, 'POST', '/voice/knowledge-bases', { token: tok.admin, body: { name: 'Going away' } });
    expect(base.status).toBe(201);
    const doc = await call(app, 'POST', `/voice/knowledge-bases/${base.body.id}/documents`, {
      token: tok.admin,
      body: { title: 'Hours', content: 'Open from nine to five.' },
    });
    expect(doc.status, JSON.stringify(doc.body)).toBe(201);
    // Someone holds one of the old chunks: the content change waits there, its document locked.
    const holder = await db.sql.reserve();
    const deleter = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.kb_chunks where document_id = ${doc.body.id} for update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const edit = call(app, 'PATCH', `/voice/knowledge-bases/${base.body.id}/documents/${doc.body.id}`, {
        token: tok.admin,
        body: { content: 'Open from eight to six.' },
      });
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      // The base's deletion starts meanwhile.
      await deleter`begin`;
      const [{ pid: deleterPid }] = await deleter`select pg_backend_pid() as pid`;
      const removal = deleter`delete from public.voice_knowledge_bases where id = ${base.body.id}`
        .then(() => 'deleted', (e) => `failed: ${e.code}`);
      // It waits for the change: for the base (locked first now), or for the document.
      let waiting = false;
      for (let i = 0; i < 200 && !waiting; i++) {
        [{ waiting }] = await db.sql`select exists (select 1 from pg_catalog.pg_stat_activity
          where pid = ${deleterPid} and wait_event_type = 'Lock') as waiting`;
        if (!waiting) await new Promise((r) => setTimeout(r, 25));
      }
      expect(waiting).toBe(true);
      await holder`rollback`;
      const edited = await edit;
      expect(edited.status, JSON.stringify(edited.body)).toBe(200);
      expect(await removal).toBe('deleted');
      await deleter`commit`;
    } finally {
      await holder`rollback`.catch(() => {});
      await deleter`rollback`.catch(() => {});
      holder.release();
      deleter.release();
    }
    expect(await db.sql`select 1 from public.kb_documents where id = ${doc.body.id}`).toEqual([]);
  });
});

describe('customers from CSV', () => {
  /** The file as it is sent: text/csv, streamed in chunks of `chunk` bytes (so rows,
   *  quoted fields and multi-byte characters are split across reads). */
  const csvStream = (csv: string, chunk = 7) => {
    const bytes = new TextEncoder().encode(csv);
    let at = 0;
    return new ReadableStream<Uint8Array>({
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      },
    });
  };
  const importCsv = async (csv: string, query: Record<string, string> = {}, token = tok.agent, chunk = 7) => {
    const qs = new URLSearchParams(query).toString();
    const res = await app.request(`/voice/customers/import${qs ? `?${qs}` : ''}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv; charset=utf-8' },
      body: csvStream(csv, chunk),
      duplex: 'half',
    } as RequestInit);
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  };
  const countAcme = async () =>
    (await db.sql`select count(*)::int as n from public.voice_customers where tenant_id = ${acme}`)[0].n as number;

  it('reads a BOM, CRLF, quoted commas and newlines; normalises national numbers with the default region', async () => {
    const csv = '\uFEFFPhone,Name,Notes,Tags,Recording_Consent\r\n' +
      '(415) 555-2671,"Doe, Jane","Line one\nline two",vip;new,yes\r\n' +
      '+33 1 42 68 53 00,Jéan,,fr,\r\n' +
      '415.555.2672,"Quoted ""nick""",,,no\r\n';
    const r = await importCsv(csv, { default_region: 'US' });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toEqual({ rows: 3, inserted: 3, updated: 0, unchanged: 0 });
    const rows = await db.sql`select phone, name, notes, tags, recording_consent, recording_consent_at is not null as since
      from public.voice_customers where phone in ('+14155552671', '+33142685300', '+14155552672') order by phone`;
    expect(rows).toEqual([
      {
        phone: '+14155552671',
        name: 'Doe, Jane',
        notes: 'Line one\nline two',
        tags: ['vip', 'new'],
        recording_consent: true,
        since: true,
      },
      { phone: '+14155552672', name: 'Quoted "nick"', notes: null, tags: [], recording_consent: false, since: false },
      { phone: '+33142685300', name: 'Jéan', notes: null, tags: ['fr'], recording_consent: false, since: false },
    ]);
  });

  it('upserts by phone: blank cells keep what the customer has; the JSON form still works', async () => {
    const r = await importCsv('phone,name,notes,tags\n+14155552671,,Called back,\n+14155552673,New person,,"a\\b;""q"""\n');
    expect(r.body).toEqual({ rows: 2, inserted: 1, updated: 1, unchanged: 0 });
    const [jane] = await db
      .sql`select name, notes, tags, recording_consent from public.voice_customers where tenant_id = ${acme} and phone = '+14155552671'`;
    expect(jane).toEqual({ name: 'Doe, Jane', notes: 'Called back', tags: ['vip', 'new'], recording_consent: true });
    const [odd] = await db.sql`select tags from public.voice_customers where tenant_id = ${acme} and phone = '+14155552673'`;
    expect(odd.tags).toEqual(['a\\b', '"q"']);
    const json = await call(app, 'POST', '/voice/customers/import', {
      token: tok.agent,
      body: { csv: 'phone,name\n(415) 555-2674,Json person\n', default_region: 'US' },
    });
    expect(json.body).toEqual({ rows: 1, inserted: 1, updated: 0, unchanged: 0 });
    const neither = await call(app, 'POST', '/voice/customers/import', { token: tok.agent, body: { default_region: 'US' } });
    expect([neither.status, neither.body.error.details.fields[0].field]).toEqual([422, 'csv']);
    // The handler reads the JSON form itself (the document's body is required, which a zod
    // declaration would have parsed as JSON, CSV too): each refusal as before, nothing imported.
    const before = await countAcme();
    const send = (headers: Record<string, string>, body?: string) =>
      app.request('/voice/customers/import', { method: 'POST', headers: { authorization: `Bearer ${tok.agent}`, ...headers }, body });
    const broken = await send({ 'content-type': 'application/json' }, '{"csv": ');
    expect([broken.status, (await broken.json()).error.code]).toEqual([400, 'invalid_json']);
    const empty = await send({ 'content-type': 'application/json' }, '');
    expect([empty.status, (await empty.json()).error.code]).toEqual([400, 'invalid_json']);
    const none = await send({});
    expect([none.status, (await none.json()).error.details.fields[0].field]).toEqual([422, 'csv']);
    const plain = await send({ 'content-type': 'text/plain' }, 'phone\n+14155552675\n');
    expect([plain.status, (await plain.json()).error.code]).toEqual([415, 'unsupported_media_type']);
    const extra = await call(app, 'POST', '/voice/customers/import', { token: tok.agent, body: { csv: 'phone\n+14155552675\n', x: 1 } });
    expect(extra.status).toBe(422);
    expect(await countAcme()).toBe(before);
  });

  it('a bad row in the middle, or one number twice: nothing is imported, each problem with its line', async () => {
    const before = await countAcme();
    const bad = await importCsv(
      'phone,name,email,marketing_consent\n+14155552681,A,,\n12,B,,\n+14155552682,C,not-an-email,maybe\n',
    );
    expect([bad.status, bad.body.error.code]).toEqual([422, 'validation_failed']);
    expect(bad.body.error.details.rows).toEqual([
      { line: 3, field: 'phone', message: 'has no country code and no default region was given' },
      { line: 4, field: 'email', message: 'is not an e-mail address' },
      { line: 4, field: 'marketing_consent', message: 'must be true or false' },
    ]);
    const dup = await importCsv('phone\n(415) 555-2691\n+1 415 555 2691\n', { default_region: 'US' });
    expect(dup.body.error.details.rows).toEqual([{ line: 3, field: 'phone', message: 'duplicates line 2 (+14155552691)' }]);
    const header = await importCsv('phone,shoe_size\n+14155552692,44\n');
    expect(header.body.error.details.rows).toEqual([{ line: 1, field: 'header', message: 'unknown columns: shoe_size' }]);
    const broken = await importCsv('phone,name\n+14155552693,"unclosed\n');
    expect(broken.body.error.details.rows[0].field).toBe('csv');
    // An address past the column's 320 characters is the row's problem, with its line.
    const long = await importCsv(`phone,email\n+14155552694,${'a'.repeat(310)}@example.com\n`);
    expect(long.body.error.details.rows).toEqual([{ line: 2, field: 'email', message: 'at most 320 characters' }]);
    // An empty file is no file of customers; a header alone is an import of nothing.
    for (const empty of ['', '\uFEFF', '\n\n']) {
      const r = await importCsv(empty);
      expect([r.status, r.body.error?.details?.rows?.[0]?.field], JSON.stringify(empty)).toEqual([422, 'header']);
    }
    const headerOnly = await importCsv('phone,name\n');
    expect([headerOnly.status, headerOnly.body.rows]).toEqual([200, 0]);
    // A record is named by the line it starts on: after blank lines, and when a quoted
    // field spans lines (csv-parse counts the line a record ends on).
    const spanning = await importCsv('\n\nphone,notes\n12,"one\ntwo\nthree"\n\n+14155552695,x\n(415) 555-2695,"a\nb"\n', {
      default_region: 'US',
    });
    expect(spanning.body.error.details.rows).toEqual([
      { line: 4, field: 'phone', message: 'is not a valid phone number' },
      { line: 9, field: 'phone', message: 'duplicates line 8 (+14155552695)' },
    ]);
    const lateHeader = await importCsv('\n\nphone,shoe_size\n');
    expect(lateHeader.body.error.details.rows).toEqual([{ line: 3, field: 'header', message: 'unknown columns: shoe_size' }]);
    expect(await countAcme()).toBe(before);
  });

  it('a number written by hand is stored as the import writes it: one person is one record', async () => {
    // The French trunk 0 kept after the country code: valid E.164 in form, not the number's canonical one.
    const made = await call(app, 'POST', '/voice/customers', {
      token: tok.agent,
      body: { phone: '+330612345678', name: 'Trunk zero' },
    });
    expect([made.status, made.body.phone], JSON.stringify(made.body)).toEqual([201, '+33612345678']);
    const found = await call(app, 'GET', `/voice/customers?phone=${encodeURIComponent('+330612345678')}`, { token: tok.agent });
    expect(found.body.items.map((c: { id: string }) => c.id)).toEqual([made.body.id]);
    const imported = await importCsv('phone,notes\n06 12 34 56 78,Imported later\n', { default_region: 'FR' });
    expect(imported.body).toEqual({ rows: 1, inserted: 0, updated: 1, unchanged: 0 });
    const moved = await call(app, 'PATCH', `/voice/customers/${made.body.id}`, {
      token: tok.agent,
      body: { phone: '+330612345679' },
    });
    expect([moved.status, moved.body.phone]).toEqual([200, '+33612345679']);
    // A number libphonenumber-js does not know is kept as given.
    const unknown = await call(app, 'POST', '/voice/customers', { token: tok.agent, body: { phone: '+15559990042' } });
    expect([unknown.status, unknown.body.phone]).toEqual([201, '+15559990042']);
    // ... and imported again as it is (an export re-imported): the same customer, no bad row.
    const again = await importCsv('phone\n+1 555 999 0042\n', { default_region: 'US' });
    expect([again.status, again.body], JSON.stringify(again.body)).toEqual([200, { rows: 1, inserted: 0, updated: 0, unchanged: 1 }]);
    // Two numbers in one cell are not one made up of both (15 digits, E.164 in form).
    for (const cell of ['+1 415 555 0123 / 0124', '+1 415 555 0123 - 0124']) {
      const two = await importCsv(`phone\n${cell}\n`, { default_region: 'US' });
      expect([two.status, two.body.error?.details?.rows?.[0]?.field], cell).toEqual([422, 'phone']);
    }
    expect(await db.sql`select phone from public.voice_customers where phone = '+141555501230124'`).toEqual([]);
  });

  it('rows of empty cells (as spreadsheets end their exports) are no rows', async () => {
    const r = await importCsv('phone,name\r\n+14155552696,Kept\r\n,\r\n,\r\n');
    expect([r.status, r.body], JSON.stringify(r.body)).toEqual([200, { rows: 1, inserted: 1, updated: 0, unchanged: 0 }]);
  });

  it('counts a cell in characters, as the API does: a name, notes or tag of emoji at its full length is taken', async () => {
    // An emoji is two UTF-16 units: the import counted 101 of them as a name of 202.
    const [name, notes, tag] = ['😀'.repeat(200), '🎉'.repeat(10_000), '🏷'.repeat(50)];
    const full = await importCsv(`phone,name,notes,tags\n+14155552697,${name},${notes},${tag};vip\n`);
    expect([full.status, full.body], JSON.stringify(full.body).slice(0, 300)).toEqual([
      200,
      { rows: 1, inserted: 1, updated: 0, unchanged: 0 },
    ]);
    const [row] = await db.sql`select name, notes, tags from public.voice_customers where phone = '+14155552697'`;
    expect(row).toEqual({ name, notes, tags: [tag, 'vip'] });
    // The API takes the same, and one more is refused on either path.
    const api = await call(app, 'POST', '/voice/customers', {
      token: tok.agent,
      body: { phone: '+14155552698', name, notes, tags: [tag] },
    });
    expect(api.status, JSON.stringify(api.body).slice(0, 300)).toBe(201);
    const over = await importCsv(`phone,name,notes,tags\n+14155552699,${name}😀,${notes}🎉,${tag}🏷\n`);
    expect(over.body.error.details.rows).toEqual([
      { line: 2, field: 'tags', message: 'at most 50 tags of 50 characters' },
      { line: 2, field: 'name', message: 'at most 200 characters' },
      { line: 2, field: 'notes', message: 'at most 10000 characters' },
    ]);
  });

  /** The file's bytes as they are (not necessarily UTF-8), in one request. */
  const importBytes = async (bytes: Uint8Array<ArrayBuffer>) => {
    const res = await app.request('/voice/customers/import', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/csv' },
      body: bytes,
    });
    const text = await res.text();
    return { status: res.status, text, body: text ? JSON.parse(text) : null };
  };

  it('a file still arriving holds no database connection (its bytes are read before the transaction)', async () => {
    const slow = stalledBody('phone,name\n+14155552611,Slow ', 'upload\n');
    const pending = app.request('/voice/customers/import', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/csv' },
      body: slow.stream,
      duplex: 'half',
    } as RequestInit);
    // Past the credential check and the rate limit, waiting for the rest of the body.
    await slow.firstPartRead();
    expect(await idleInTransaction(db.sql)).toBe(0);
    slow.release();
    const res = await pending;
    expect([res.status, await res.json()]).toEqual([200, { rows: 1, inserted: 1, updated: 0, unchanged: 0 }]);
  });

  it('an upload that breaks off is 400 body_incomplete (a client gone away), not a 500, and imports nothing', async () => {
    const before = await countAcme();
    const broken = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('phone,name\n+14155552620,Cut off\n'));
        controller.error(new Error('connection reset'));
      },
    });
    const res = await app.request('/voice/customers/import', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/csv' },
      body: broken,
      duplex: 'half',
    } as RequestInit);
    expect([res.status, (await res.json()).error.code]).toEqual([400, 'body_incomplete']);
    expect(await countAcme()).toBe(before);
  });

  it('a file that is not UTF-8 (Windows-1252 from Excel) is refused at its line, nothing imported', async () => {
    const before = await countAcme();
    const latin1 = Uint8Array.from(
      [...'phone,name\n+14155552612,Ann\n+14155552613,M', 0xfc, ...'ller\n'].map((c) =>
        typeof c === 'number' ? c : c.charCodeAt(0)
      ),
    );
    const r = await importBytes(latin1);
    expect([r.status, r.body.error.details.rows]).toEqual([422, [{
      line: 3,
      field: 'csv',
      message: 'is not UTF-8 text: save the file as "CSV UTF-8"',
    }]]);
    expect(await countAcme()).toBe(before);
  });

  /** Bytes of text, a number being one byte as it is (a Windows-1252 or Mac Roman one). */
  const bytesOf = (...parts: (string | number)[]) =>
    Uint8Array.from(parts.flatMap((p) => (typeof p === 'number' ? [p] : [...new TextEncoder().encode(p)])));
  /** The file sent in exactly these chunks. */
  const importChunks = async (chunks: Uint8Array[]) => {
    const res = await app.request('/voice/customers/import?default_region=US', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/csv' },
      body: new ReadableStream<Uint8Array>({
        pull(controller) {
          const next = chunks.shift();
          if (next) controller.enqueue(next);
          else controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    return { status: res.status, body: await res.json() };
  };
  const problems = (r: { body: { error?: { details?: { rows?: unknown } } } }) => r.body.error?.details?.rows;
  const NOT_UTF8 = 'is not UTF-8 text: save the file as "CSV UTF-8"';

  it('lines are the file\'s lines: a CRLF inside a cell, CR-only line ends, a bad byte held across chunks', async () => {
    const before = await countAcme();
    // A Windows tool's file: CRLF between rows and inside a quoted cell (counted twice before).
    const crlf = await importCsv('phone,notes\r\n+14155552671,"a\r\nb"\r\n12,x\r\n', { default_region: 'US' });
    expect(problems(crlf)).toEqual([{ line: 4, field: 'phone', message: 'is not a valid phone number' }]);
    // Excel for Mac: CR alone, a Mac Roman é (0x8E) on line 3.
    const mac = await importChunks([bytesOf('phone,name\r+14155552672,Ann\r+14155552673,Ren', 0x8e, '\r')]);
    expect(problems(mac)).toEqual([{ line: 3, field: 'csv', message: NOT_UTF8 }]);
    // A Windows-1252 é (0xE9) ending a chunk: the decoder holds it for the next chunk,
    // whose newlines were all counted before.
    const heldOver = await importChunks([
      bytesOf('phone,name\n+14155552674,Ren', 0xe9),
      bytesOf('\n+14155552675,Bob\n+14155552676,Cy\n'),
    ]);
    expect(problems(heldOver)).toEqual([{ line: 2, field: 'csv', message: NOT_UTF8 }]);
    // A good é split by the chunks, then a bad byte on line 3 (the split read as the
    // first bad byte before).
    const split = await importChunks([
      bytesOf('phone,name\n+14155552677,Ren', 0xc3),
      bytesOf(0xa9, '\n+14155552678,M', 0xfc, 'ller\n'),
    ]);
    expect(problems(split)).toEqual([{ line: 3, field: 'csv', message: NOT_UTF8 }]);
    // Cut off at the very end: the last line.
    const cut = await importChunks([bytesOf('phone,name\n+14155552679,Ren', 0xc3)]);
    expect(problems(cut)).toEqual([{ line: 2, field: 'csv', message: NOT_UTF8 }]);
    expect(await countAcme()).toBe(before);
  });

  it("a record csv-parse cannot take is named at the line it starts on, after the rows before it; a blank phone is required", async () => {
    const before = await countAcme();
    const r = await importCsv('phone,notes\n12,a\n+14155552680,"x\ny",extra\n', { default_region: 'US' });
    expect(problems(r)).toEqual([
      { line: 2, field: 'phone', message: 'is not a valid phone number' },
      { line: 3, field: 'csv', message: expect.stringContaining('Invalid Record Length') },
    ]);
    const blank = await importCsv('phone,name\n,Jane\n  ,Joe\n', { default_region: 'US' });
    expect(problems(blank)).toEqual([
      { line: 2, field: 'phone', message: 'is required' },
      { line: 3, field: 'phone', message: 'is required' },
    ]);
    expect(await countAcme()).toBe(before);
    // A cell's CRLF is kept as LF.
    const ok = await importCsv('phone,notes\r\n+14155552681,"a\r\nb"\r\n', { default_region: 'US' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const [row] = await db.sql`select notes from public.voice_customers where tenant_id = ${acme} and phone = '+14155552681'`;
    expect(row.notes).toBe('a\nb');
    await db.sql`delete from public.voice_customers where tenant_id = ${acme} and phone = '+14155552681'`;
  });

  it('one huge field (an unclosed quote) is refused without being held whole or echoed back', async () => {
    const huge = 'phone,name\n+14155552614,"' + 'a'.repeat(200_000) + '\n+14155552615,Bob\n';
    const r = await importBytes(new TextEncoder().encode(huge));
    expect(r.status).toBe(422);
    expect(r.body.error.details.rows).toEqual([{
      line: expect.any(Number),
      field: 'csv',
      message: 'a record larger than 64 KiB (an unclosed quote?)',
    }]);
    expect(r.text.length).toBeLessThan(2_000);
  });

  it('a phone cell holds one number: a sentence, two numbers, an extension or a number the column refuses is a problem of its line', async () => {
    const r = await importCsv(
      'phone,name\n' +
        '"call me at 415 555 2671 tomorrow",A\n' +
        '4155552671;4155552672,B\n' +
        '+1 415 555 2671 x123,C\n' +
        '+43 1 117,D\n' +
        // No-break spaces and a typographic dash, as spreadsheets write them: a number.
        '415\u00a0555\u20112673,E\n',
      { default_region: 'US' },
    );
    const one = 'must be one phone number (digits, spaces, + ( ) . / -), without an extension';
    expect([r.status, r.body.error.details.rows]).toEqual([422, [
      { line: 2, field: 'phone', message: one },
      { line: 3, field: 'phone', message: one },
      { line: 4, field: 'phone', message: one },
      { line: 5, field: 'phone', message: 'is not a valid phone number' },
    ]]);
  });

  it('a header cell without a name is no column; a column named twice is refused', async () => {
    const trailing = await importCsv('phone,name,\n+14155552616,Trailing,\n');
    expect([trailing.status, trailing.body]).toEqual([200, { rows: 1, inserted: 1, updated: 0, unchanged: 0 }]);
    const twice = await importCsv('phone,tags,tags\n+14155552617,a,b\n');
    expect([twice.status, twice.body.error.details.rows]).toEqual([422, [
      { line: 1, field: 'header', message: 'columns named twice: tags' },
    ]]);
    // A French or German spreadsheet's export: said so, nothing imported.
    const semicolons = await importCsv('phone;name\n06 12 34 56 78;Jean\n', { default_region: 'FR' });
    expect([semicolons.status, semicolons.body.error.details.rows]).toEqual([422, [
      { line: 1, field: 'header', message: 'the columns are separated by semicolons: save the file as CSV with commas ("CSV UTF-8")' },
    ]]);
  });

  it('one import at a time per tenant: another is 409 import_in_progress with Retry-After, and imports nothing', async () => {
    // An import under way in acme holds the tenant's import lock (as the route takes it).
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select pg_advisory_xact_lock(hashtextextended(${`voice_customers_import:${acme}`}, 0))`;
      const before = await countAcme();
      const res = await app.request('/voice/customers/import', {
        method: 'POST',
        headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/csv' },
        body: 'phone,name\n+14155552618,Waiting\n',
      });
      expect([res.status, res.headers.get('retry-after'), (await res.json()).error.code]).toEqual([
        409,
        '5',
        'import_in_progress',
      ]);
      expect(await countAcme()).toBe(before);
      // Another tenant's import is not held up.
      const other = await importCsv('phone,name\n+14155552619,Elsewhere\n', {}, tok.globexAdmin);
      expect(other.status, JSON.stringify(other.body)).toBe(200);
      await holder`commit`;
    } finally {
      holder.release();
    }
    const after = await importCsv('phone,name\n+14155552618,Waiting\n');
    expect([after.status, after.body.inserted]).toEqual([200, 1]);
  });

  it('a caller who may not import is refused before the file is read (a file that never ends included)', async () => {
    const endless = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode('phone,name\n'));
      },
    });
    const res = await app.request('/voice/customers/import', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.user}`, 'content-type': 'text/csv' },
      body: endless,
      duplex: 'half',
    } as RequestInit);
    expect([res.status, (await res.json()).error.code]).toEqual([403, 'forbidden']);
  });

  it('a bad row after several batches were written rolls every batch back', async () => {
    const before = await countAcme();
    const lines = Array.from({ length: 5_000 }, (_, i) => `+1646${2_000_000 + i},Batch ${i}`);
    lines[4_500] = '5550100,Bad';
    const r = await importCsv(`phone,name\n${lines.join('\n')}\n`, {}, tok.agent, 65_536);
    expect([r.status, r.body.error.details.rows]).toEqual([422, [{
      line: 4_502,
      field: 'phone',
      message: 'has no country code and no default region was given',
    }]]);
    expect(await countAcme()).toBe(before);
  });

  it('into a tenant that listens: one customer.created per new customer, none for an updated one, and no lock per row', async () => {
    // 1,000 customers known before anyone listens; then three endpoints: every event,
    // another event type, every event but disabled.
    await db.sql`insert into public.voice_customers (tenant_id, phone, name)
      select ${globex}, '+1646' || (2000000 + g), 'Known ' || g from generate_series(0, 999) g`;
    const endpoints = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types, enabled)
      values (${globex}, 'https://hooks.example.com/all', 'v1:x', '{}', true),
             (${globex}, 'https://hooks.example.com/calls', 'v1:x', '{call.started}', true),
             (${globex}, 'https://hooks.example.com/off', 'v1:x', '{}', false)
      returning id`;
    onTestFinished(async () => {
      await db.sql`delete from private.jobs where tenant_id = ${globex} and task = 'deliver-webhook'`;
      await db.sql`delete from private.webhook_events where tenant_id = ${globex}`;
      await db.sql`delete from public.webhook_endpoints where id in ${db.sql(endpoints.map((e) => e.id))}`;
      await db.sql`delete from public.voice_customers where tenant_id = ${globex} and phone like '+1646%'`;
    });
    const before = (await db.sql`select count(*)::int as n from private.webhook_events where tenant_id = ${globex}`)[0].n;
    // 10,000 new customers and 1,000 renamed ones, in one transaction: three advisory locks
    // per new customer filled the shared lock table (out of shared memory, a 500).
    const rows = Array.from({ length: 11_000 }, (_, i) => `+1646${2_000_000 + i},Imported ${i}`);
    const r = await importCsv(`phone,name\n${rows.join('\n')}\n`, {}, tok.globexAdmin, 65_536);
    expect(r.status, JSON.stringify(r.body).slice(0, 500)).toBe(200);
    expect(r.body).toEqual({ rows: 11_000, inserted: 10_000, updated: 1_000, unchanged: 0 });
    const [events] = await db.sql`
      select count(*)::int as n, count(distinct ev.ordering_key)::int as keys,
             bool_and(ev.type = 'customer.created' and ev.ordering_key = 'customer:' || c.id and ev.payload ->> 'type' = 'customer.created'
                      and ev.payload -> 'data' ->> 'phone' = c.phone and ev.payload -> 'data' ->> 'name' = c.name
                      and ev.payload -> 'data' ->> 'created_at' like '%Z' and ev.payload ->> 'tenant_id' = ${globex}) as exact,
             count(*) filter (where c.phone < '+16462001000')::int as renamed
      from private.webhook_events ev
      left join public.voice_customers c on c.tenant_id = ev.tenant_id and 'customer:' || c.id = ev.ordering_key
      where ev.tenant_id = ${globex}`;
    expect(events).toEqual({ n: before + 10_000, keys: before + 10_000, exact: true, renamed: 0 });
    // One delivery each, to the endpoint that wants every event, each with its job, as
    // add_job writes it.
    const [deliveries] = await db.sql`
      select count(*)::int as n, count(distinct d.endpoint_id)::int as endpoints, min(d.endpoint_id::text) as endpoint,
             count(j.id)::int as jobs,
             bool_and(j.task = 'deliver-webhook' and j.queue = 'webhook:' || d.endpoint_id || ':' || d.ordering_key
                      and (j.payload ->> 'delivery_id')::bigint = d.id and j.tenant_id = ${globex} and j.attempts = 0) as exact
      from private.webhook_deliveries d left join private.jobs j on j.job_key = 'delivery:' || d.id
      where d.tenant_id = ${globex}`;
    expect(deliveries).toEqual({ n: 10_000, endpoints: 1, endpoint: endpoints[0].id, jobs: 10_000, exact: true });
  });

  it("customers created in a tenant nobody listens to build no customer.created payload (counted, not timed)", async () => {
    // 20261204124000: the payload (private.api_timestamps, a catalog read) was built for
    // every new row before the tenants nobody listens to were dropped.
    const calls = await db.sql.begin(async (tx) => {
      await tx`set local track_functions = 'all'`;
      const counted = async () =>
        (await tx`select coalesce(pg_stat_get_xact_function_calls('private.api_timestamps(jsonb, regclass)'::regprocedure), 0)::int as n`)[0].n as number;
      await tx`insert into public.voice_customers (tenant_id, phone) select ${globex}, '+1646' || (3000000 + g) from generate_series(0, 49) g`;
      const unheard = await counted();
      await tx`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types) values (${globex}, 'https://hooks.example.com/heard', 'v1:x', '{}')`;
      await tx`insert into public.voice_customers (tenant_id, phone) select ${globex}, '+1646' || (3000100 + g) from generate_series(0, 49) g`;
      const heard = (await counted()) - unheard;
      const [{ n }] = await tx`select count(*)::int as n from private.webhook_events where tenant_id = ${globex} and type = 'customer.created'`;
      throw Object.assign(new Error('rolled back'), { result: [unheard, heard, n] });
    }).catch((err: Error & { result?: number[] }) => err.result ?? Promise.reject(err));
    expect(calls).toEqual([0, 50, 50]);
  });

  it('50,000 rows in one streamed request; the same file again changes nothing', async () => {
    const before = await countAcme();
    const rows = Array.from(
      { length: 50_000 },
      (_, i) => `+1332${2_000_000 + i},"Customer ${i}, imported",c${i}@example.com,,bulk;wave-1,${i % 2 ? 'yes' : ''},no`,
    );
    const csv = `phone,name,email,notes,tags,recording_consent,marketing_consent\n${rows.join('\n')}\n`;
    const first = await importCsv(csv, {}, tok.agent, 65_536);
    expect(first.status, JSON.stringify(first.body).slice(0, 500)).toBe(200);
    expect(first.body).toEqual({ rows: 50_000, inserted: 50_000, updated: 0, unchanged: 0 });
    expect(await countAcme()).toBe(before + 50_000);
    const [stats] = await db.sql`select count(*)::int as n, count(*) filter (where recording_consent)::int as consented
      from public.voice_customers where tenant_id = ${acme} and phone like '+1332%'`;
    expect(stats).toEqual({ n: 50_000, consented: 25_000 });
    const again = await importCsv(csv, {}, tok.agent, 65_536);
    expect(again.body).toEqual({ rows: 50_000, inserted: 0, updated: 0, unchanged: 50_000 });
    const [{ audits }] = await db.sql`select count(*)::int as audits from public.audit_logs
      where table_name = 'voice_customers' and action = 'UPDATE' and new_data ->> 'phone' like '+1332%'`;
    expect(audits).toBe(0);
    // Past 50,000 rows the file is refused (its first row is bad too, so that the check
    // does not first write 50,000 rows to roll back).
    const tooMany = ['bad', ...Array.from({ length: 50_000 }, (_, i) => `+1415${2_000_000 + i}`)];
    const over = await importCsv(`phone\n${tooMany.join('\n')}\n`, {}, tok.agent, 65_536);
    expect([over.status, over.body.error.details.rows.at(-1).message]).toEqual([422, 'more than 50000 rows']);
    expect(await countAcme()).toBe(before + 50_000);
  }, 300_000);

  it('a file over MAX_IMPORT_BODY_BYTES is 413, from Content-Length or while streaming, and nothing is imported', async () => {
    const before = await countAcme();
    process.env.MAX_IMPORT_BODY_BYTES = '4096';
    try {
      const csv = `phone\n${Array.from({ length: 400 }, (_, i) => `+1646${3_000_000 + i}`).join('\n')}\n`;
      const streamed = await importCsv(csv, {}, tok.agent, 512);
      expect([streamed.status, streamed.body.error.code, streamed.body.error.details]).toEqual([413, 'payload_too_large', {
        limit: 4096,
      }]);
      const declared = await app.request('/voice/customers/import', {
        method: 'POST',
        headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/csv', 'content-length': String(csv.length) },
        body: csv,
      });
      expect(declared.status).toBe(413);
      // The JSON form keeps the ordinary limit, not the import's.
      const json = await call(app, 'POST', '/voice/customers/import', {
        token: tok.agent,
        body: { csv: 'phone\n+16463999999\n'.repeat(1) },
      });
      expect(json.status).toBe(200);
      const other = await app.request('/voice/customers', {
        method: 'POST',
        headers: { authorization: `Bearer ${tok.agent}`, 'content-type': 'text/csv' },
        body: 'phone\n+16463999998\n',
      });
      expect(other.status).toBe(415);
    } finally {
      delete process.env.MAX_IMPORT_BODY_BYTES;
    }
    expect(await countAcme()).toBe(before + 1);
  });

  it("takes the tenant's default region, and only agents import", async () => {
    await db.sql`update public.tenants set settings = settings || '{"voice_default_region": "FR"}' where id = ${acme}`;
    const r = await importCsv('phone\n01 42 68 53 01\n');
    expect(r.body).toEqual({ rows: 1, inserted: 1, updated: 0, unchanged: 0 });
    const [fr] = await db.sql`select phone from public.voice_customers where tenant_id = ${acme} and phone = '+33142685301'`;
    expect(fr).toBeDefined();
    const user = await importCsv('phone\n+14155552699\n', {}, tok.user);
    expect(user.status).toBe(403);
  });

  it("refuses a default region libphonenumber-js does not know: in the tenant's settings, and named where it came from", async () => {
    const [{ settings }] = await db.sql`select settings from public.tenants where id = ${acme}`;
    const patch = (region: unknown) =>
      call(tenantsApp, 'PATCH', `/tenants/${acme}`, {
        token: tok.admin,
        body: { settings: { ...settings, voice_default_region: region } },
      });
    for (const region of ['XX', 'fr', 42]) {
      const r = await patch(region);
      expect([r.status, errorCode(r)], String(region)).toEqual([422, 'validation_failed']);
      expect(JSON.stringify(r.body.error.details), String(region)).toContain('voice_default_region');
    }
    expect((await db.sql`select settings from public.tenants where id = ${acme}`)[0].settings).toEqual(settings);
    expect((await patch('DE')).status).toBe(200);
    // A bad one written past the API (straight to the table): the import names the setting, not the query it was not given.
    await db.sql`update public.tenants set settings = settings || '{"voice_default_region": "XX"}' where id = ${acme}`;
    try {
      const refused = await importCsv('phone\n030 1234567\n');
      expect([refused.status, errorCode(refused), refused.body.error.details.fields[0].field]).toEqual([
        422,
        'validation_failed',
        'settings.voice_default_region',
      ]);
      const named = await importCsv('phone\n030 1234567\n', { default_region: 'DE' });
      expect(named.body).toMatchObject({ rows: 1 });
      const query = await importCsv('phone\n030 1234567\n', { default_region: 'XX' });
      expect(query.body.error.details.fields[0].field).toBe('default_region');
    } finally {
      await db.sql`update public.tenants set settings = ${db.sql.json(settings)} where id = ${acme}`;
    }
  });

  it('blank cells keep what the customer has when the import writes, a consent withdrawn meanwhile included', async () => {
    await db.sql`update public.voice_customers set recording_consent = true where tenant_id = ${acme} and phone = '+14155552671'`;
    const holder = await db.sql.reserve();
    let imported: Awaited<ReturnType<typeof importCsv>>;
    try {
      // Someone else's edit of the customer under way: the import queues for the row.
      await holder`begin`;
      await holder`select 1 from public.voice_customers where tenant_id = ${acme} and phone = '+14155552671' for update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const pending = importCsv('phone,name\n+14155552671,Jane Renamed\n');
      expect(await someoneWaitsFor(db.sql, pid as number)).toBe(true);
      // The edit: the customer withdraws their consent to recording.
      await holder`update public.voice_customers set recording_consent = false where tenant_id = ${acme} and phone = '+14155552671'`;
      await holder`commit`;
      imported = await pending;
    } finally {
      holder.release();
    }
    expect(imported.status, JSON.stringify(imported.body)).toBe(200);
    expect(imported.body).toEqual({ rows: 1, inserted: 0, updated: 1, unchanged: 0 });
    const [jane] = await db.sql`select name, recording_consent from public.voice_customers
      where tenant_id = ${acme} and phone = '+14155552671'`;
    expect(jane).toEqual({ name: 'Jane Renamed', recording_consent: false });
  });

  it("a customer renumbered or deleted while the import waited for it: the file's row goes to its own number, not to them", async () => {
    await db.sql`insert into public.voice_customers (tenant_id, phone, name) values
      (${acme}, '+14155552681', 'Renumbered'), (${acme}, '+14155552682', 'Deleted'),
      (${acme}, '+14155552683', 'Swapped away'), (${acme}, '+14155552684', 'Swapped in')`;
    for (const edit of ['renumber', 'delete', 'swap'] as const) {
      const phone = { renumber: '+14155552681', delete: '+14155552682', swap: '+14155552683' }[edit];
      const holder = await db.sql.reserve();
      let imported: Awaited<ReturnType<typeof importCsv>>;
      try {
        await holder`begin`;
        await holder`select 1 from public.voice_customers where tenant_id = ${acme} and phone = ${phone} for update`;
        const [{ pid }] = await holder`select pg_backend_pid() as pid`;
        const pending = importCsv(`phone,name\n${phone},From the file\n`);
        expect(await someoneWaitsFor(db.sql, pid as number)).toBe(true);
        if (edit === 'renumber') {
          await holder`update public.voice_customers set phone = '+14155552689' where tenant_id = ${acme} and phone = ${phone}`;
        } else if (edit === 'delete') {
          await holder`delete from public.voice_customers where tenant_id = ${acme} and phone = ${phone}`;
        } else {
          // The number passes from one customer to another: the file's row is the new holder's.
          await holder`update public.voice_customers set phone = '+14155552688' where tenant_id = ${acme} and phone = ${phone}`;
          await holder`update public.voice_customers set phone = ${phone} where tenant_id = ${acme} and phone = '+14155552684'`;
        }
        await holder`commit`;
        imported = await pending;
      } finally {
        holder.release();
      }
      const written = edit === 'swap' ? { inserted: 0, updated: 1 } : { inserted: 1, updated: 0 };
      expect([imported.status, imported.body], edit).toEqual([200, { rows: 1, ...written, unchanged: 0 }]);
      const [row] = await db.sql`select name from public.voice_customers where tenant_id = ${acme} and phone = ${phone}`;
      expect(row, edit).toEqual({ name: 'From the file' });
    }
    const [away] = await db.sql`select name from public.voice_customers where tenant_id = ${acme} and phone = '+14155552688'`;
    expect(away).toEqual({ name: 'Swapped away' });
    const [moved] = await db.sql`select name from public.voice_customers where tenant_id = ${acme} and phone = '+14155552689'`;
    expect(moved).toEqual({ name: 'Renumbered' });
  });
});

describe('a ticket from a call', () => {
  it("opens once, through the ticket workflow: the customer's user is the requester, the summary the description, linked both ways", async () => {
    await db.sql`update public.voice_customers set user_id = ${users.acmeUser.id} where id = ${voiceCustomer}`;
    onTestFinished(async () => void await db.sql`update public.voice_customers set user_id = null where id = ${voiceCustomer}`);
    await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'ticket-1',
      from: CALLER,
      answered: true,
    });
    await event({
      type: 'call.ended',
      tenant_id: acme,
      provider_call_id: 'ticket-1',
      status: 'completed',
      summary: 'Printer on fire again',
    });
    const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = 'ticket-1'`;
    expect((await call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.user })).status).toBe(403);
    expect((await call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.globexAdmin })).status).toBe(404);
    const [first, second] = await Promise.all([
      call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.agent }),
      call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.admin }),
    ]);
    const statuses = [first.status, second.status].sort();
    expect(statuses).toEqual([201, 409]);
    const opened = first.status === 201 ? first : second;
    const refused = first.status === 201 ? second : first;
    expect([errorCode(refused), refused.body.error.details]).toEqual(['already_linked', { ticket_id: opened.body.ticket_id }]);
    const [ticket] = await db
      .sql`select title, description, created_by, status, metadata from public.tickets where id = ${opened.body.ticket_id}`;
    expect(ticket).toEqual({
      title: 'Call from Known caller',
      description: 'Printer on fire again',
      created_by: users.acmeUser.id,
      status: 'open',
      metadata: { voice_call_id: id },
    });
    const detail = await call(app, 'GET', `/voice/calls/${id}`, { token: tok.user });
    expect(detail.body.ticket_id).toBe(opened.body.ticket_id);
    // The ticket's side reads the enforced link (voice_calls.ticket_id), not its metadata.
    const ticketDetail = await call(ticketsApp, 'GET', `/tickets/${opened.body.ticket_id}`, { token: tok.user });
    expect(ticketDetail.body.calls).toEqual([{ id, status: 'completed', started_at: detail.body.started_at }]);
    await db.sql`update public.tickets set metadata = '{}' where id = ${opened.body.ticket_id}`;
    expect((await call(ticketsApp, 'GET', `/tickets/${opened.body.ticket_id}`, { token: tok.admin })).body.calls)
      .toEqual([{ id, status: 'completed', started_at: detail.body.started_at }]);
    // Another tenant's admin reads neither.
    expect((await call(ticketsApp, 'GET', `/tickets/${opened.body.ticket_id}`, { token: tok.globexAdmin })).status).toBe(404);
    // An API key reads the linked calls only with calls:read, as on the voice API.
    const keyFor = async (scopes: string[]) =>
      (await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
        token: tok.admin,
        body: { name: scopes.join(' '), scopes },
      }))
        .body.key as string;
    const ticketsOnly = await call(ticketsApp, 'GET', `/tickets/${opened.body.ticket_id}`, {
      token: await keyFor(['tickets:read']),
    });
    expect(ticketsOnly.status).toBe(200);
    expect(ticketsOnly.body).not.toHaveProperty('calls');
    const withCalls = await call(ticketsApp, 'GET', `/tickets/${opened.body.ticket_id}`, {
      token: await keyFor(['tickets:read', 'calls:read']),
    });
    expect(withCalls.body.calls).toEqual([{ id, status: 'completed', started_at: detail.body.started_at }]);
  });

  it("a summary longer than a ticket's description is cut with a note, at a character, not in silence", async () => {
    // 20,000 characters, emoji among them (two UTF-16 units each).
    const summary = 'Caller 😀 explains. '.repeat(1000);
    await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'ticket-long',
      from: '+14155558123',
      answered: true,
    });
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'ticket-long', status: 'completed', summary });
    const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = 'ticket-long'`;
    const opened = await call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.agent });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const [t] = await db
      .sql`select title, description, char_length(description) as n from public.tickets where id = ${opened.body.ticket_id}`;
    expect(t.title).toBe('Call from +14155558123');
    expect(t.n).toBe(5000);
    expect(t.description.endsWith('[…] The summary goes on in the call this ticket was opened from.')).toBe(true);
    expect(summary.startsWith(t.description.split('\n\n[…]')[0])).toBe(true);
  });
  it("an outbound call's ticket names the person called, not the agent's own line", async () => {
    const open = async (providerCallId: string, to: string | undefined) => {
      await event({
        type: 'call.started',
        tenant_id: acme,
        agent_id: AGENT.acme,
        provider_call_id: providerCallId,
        direction: 'outbound',
        from: NUMBER.acme,
        ...(to === undefined ? {} : { to }),
        answered: true,
      });
      const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = ${providerCallId}`;
      const opened = await call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.agent });
      expect(opened.status, JSON.stringify(opened.body)).toBe(201);
      const [t] = await db.sql`select title from public.tickets where id = ${opened.body.ticket_id}`;
      return t;
    };
    expect((await open('ticket-out-1', '+14155557777')).title).toBe('Call to +14155557777');
    // A known customer called: named.
    expect((await open('ticket-out-2', CALLER)).title).toBe('Call to Known caller');
    expect((await open('ticket-out-3', undefined)).title).toBe('Call to an unknown number');
  });
  it('takes what the call does not say: a tenant with a required custom field gets it in the body, or a clear 422', async () => {
    await db.sql`insert into public.custom_field_definitions (tenant_id, key, label, type, required, visible_to_customers)
      values (${acme}, 'product', 'Product', 'text', true, true)`;
    onTestFinished(async () =>
      void await db.sql`delete from public.custom_field_definitions where tenant_id = ${acme} and key = 'product'`
    );
    await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'ticket-fields',
      answered: true,
    });
    const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = 'ticket-fields'`;
    const tickets = async () => (await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme}`)[0].n;
    const before = await tickets();
    const bare = await call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.agent });
    expect([bare.status, bare.body.error.details.fields]).toEqual([422, [{
      field: 'custom_fields.product',
      message: 'is required',
    }]]);
    const unknown = await call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.agent, body: { colour: 'red' } });
    expect([unknown.status, errorCode(unknown)]).toEqual([422, 'validation_failed']);
    expect(await tickets()).toBe(before);
    const opened = await call(app, 'POST', `/voice/calls/${id}/ticket`, {
      token: tok.agent,
      body: { custom_fields: { product: 'Printer' }, priority: 'high', tags: ['voice'], title: 'Printer jammed again' },
    });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    expect(await db.sql`select title, priority, tags, custom_fields from public.tickets where id = ${opened.body.ticket_id}`)
      .toEqual([{
        title: 'Printer jammed again',
        priority: 'high',
        tags: ['voice'],
        custom_fields: { product: 'Printer' },
      }]);
  });

  it("a call's ticket deleted outright (an operator's delete) clears the link; a person still cannot unlink it", async () => {
    await event({ type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: 'ticket-deleted', from: CALLER });
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'ticket-deleted', status: 'completed' });
    const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = 'ticket-deleted'`;
    const opened = await call(app, 'POST', `/voice/calls/${id}/ticket`, { token: tok.agent });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const unlink = await probeAs(
      db.sql,
      'authenticated',
      supabaseClaims(users.acmeAdmin, acme),
      (tx) => tx`update public.voice_calls set ticket_id = null where id = ${id}`,
    );
    expect(unlink.ok ? 'unlinked' : unlink.error.code).toBe('PT409');
    await db.sql`delete from public.tickets where id = ${opened.body.ticket_id}`;
    expect((await db.sql`select ticket_id from public.voice_calls where id = ${id}`)[0].ticket_id).toBeNull();
  });
});

describe('realtime', () => {
  it('calls are in the realtime publication, their transcripts and customers are not', async () => {
    const names =
      (await db.sql`select tablename from pg_publication_tables where pubname = 'supabase_realtime' and schemaname = 'public'`)
        .map((r) => r.tablename as string);
    expect(names).toContain('voice_calls');
    expect(names).not.toContain('voice_call_segments');
    expect(names).not.toContain('voice_customers');
  });
});

describe('outbound webhook events', () => {
  it('call.started, call.ended and customer.created go to the outbox of a tenant that listens', async () => {
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${acme}, 'https://hooks.example.com/voice', 'v1:x', '{call.started,call.ended,customer.created}')`;
    await event({ type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: 'hook-1', answered: true });
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'hook-1', status: 'completed' });
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'hook-1', status: 'completed' }); // repeated: no event
    await call(app, 'POST', '/voice/customers', { token: tok.agent, body: { phone: '+14155557001' } });
    const events = await db
      .sql`select type, ordering_key, payload from private.webhook_events where tenant_id = ${acme} order by id`;
    expect(events.map((e) => e.type)).toEqual(['call.started', 'call.ended', 'customer.created']);
    expect(events[1].payload.data).toMatchObject({ provider_call_id: 'hook-1', status: 'completed' });
    expect(events[1].payload.data.ended_at).toMatch(/Z$/);
    // Globex listens to nothing: its calls write no event.
    await event({ type: 'call.started', tenant_id: globex, agent_id: AGENT.globex, provider_call_id: 'hook-g' });
    expect(await db.sql`select id from private.webhook_events where tenant_id = ${globex}`).toEqual([]);
  });
});

describe('ids in capitals', () => {
  it('name the same call: a ticket opens from POST /calls/{ID}/ticket, linked by the id as stored', async () => {
    await event({ type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: 'ticket-upper', from: CALLER, answered: true });
    await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'ticket-upper', status: 'completed', summary: 'Shouted id' });
    const [{ id }] = await db.sql`select id from public.voice_calls where provider_call_id = 'ticket-upper'`;
    const opened = await call(app, 'POST', `/voice/calls/${id.toUpperCase()}/ticket`, { token: tok.agent, body: {} });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    expect(opened.body.call_id).toBe(id);
    const [ticket] = await db.sql`select metadata from public.tickets where id = ${opened.body.ticket_id}`;
    expect(ticket.metadata).toEqual({ voice_call_id: id });
    expect((await call(app, 'GET', `/voice/calls/${id.toUpperCase()}`, { token: tok.agent })).body.ticket_id).toBe(opened.body.ticket_id);
  });
});

describe('a parked agent', () => {
  it('takes no new call from the call events (409 agent_inactive, nothing stored); its calls under way go on', async () => {
    await event({ type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: 'parked-before', from: CALLER, answered: true });
    await db.sql`update public.voice_agents set active = false where id = ${AGENT.acme}`;
    onTestFinished(async () => void await db.sql`update public.voice_agents set active = true where id = ${AGENT.acme}`);
    const refused = await event({ type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: 'parked-new', from: CALLER });
    expect([refused.status, errorCode(refused)], JSON.stringify(refused.body)).toEqual([409, 'agent_inactive']);
    expect(await db.sql`select id from public.voice_calls where provider_call_id = 'parked-new'`).toEqual([]);
    // A call people log by hand, after the fact, still names the agent that took it.
    const [logged] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status, started_at)
      values (${acme}, ${AGENT.acme}, 'manual:parked-log', 'in_progress', now() - interval '1 day') returning agent_id`;
    expect(logged.agent_id).toBe(AGENT.acme);
    const ended = await event({ type: 'call.ended', tenant_id: acme, provider_call_id: 'parked-before', status: 'completed' });
    expect(ended.status, JSON.stringify(ended.body)).toBe(200);
    const [before] = await db.sql`select status from public.voice_calls where provider_call_id = 'parked-before'`;
    expect(before.status).toBe('completed');
  });
});
