// A tenant's own telephony integration with an API key (issue 15's voice:route and
// calls:write scopes on the provider's call path, issue 14): the key routes its tenant's
// numbers and reports its tenant's calls, and nothing else — another tenant's number is
// unknown to it whatever its state, another tenant's call events are refused and change
// nothing, a key without the scope or revoked is refused on the very next request, and
// its requests count against the plan's rate limits as a key's do everywhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/voice/app.ts';
import { closeDb } from '../../shared/db.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { earlyInMinute } from '../helpers/minute.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
const AGENT = { acme: '71000000-0000-4000-8000-000000000001', globex: '71000000-0000-4000-8000-000000000002' };
const NUMBER = { acme: '+14155551001', acmeRetired: '+14155551003', globex: '+14155551002', globexRetired: '+14155551004' };
const key: Record<string, { id: string; key: string }> = {};

async function makeKey(name: string, scopes: string[]) {
  const admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  const r = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: admin, body: { name, scopes } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { id: r.body.id as string, key: r.body.key as string };
}

beforeAll(async () => {
  db = await freshDatabase('fn_voice_keys');
  auth = await configureAuth(db.url);
  await db.sql`update public.tenants set plan = 'pro' where id in (${acme}, ${globex})`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config) values
    (${acme}, ${AGENT.acme}, 'Acme desk', ${NUMBER.acme}, 'v', ${db.sql.json(LLM)}),
    (${globex}, ${AGENT.globex}, 'Globex desk', ${NUMBER.globex}, 'v', ${db.sql.json(LLM)})`;
  await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active) values
    (${acme}, 'Acme retired', ${NUMBER.acmeRetired}, 'v', ${db.sql.json(LLM)}, false),
    (${globex}, 'Globex retired', ${NUMBER.globexRetired}, 'v', ${db.sql.json(LLM)}, false)`;
  key.route = await makeKey('phone system', ['voice:route']);
  key.events = await makeKey('call recorder', ['calls:write']);
  key.other = await makeKey('crm sync', ['customers:read']);
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const route = (to: string, k: string) =>
  call(app, 'GET', `/voice/route?to=${encodeURIComponent(to)}`, { headers: { authorization: `Bearer ${k}` } });
const event = (body: Record<string, unknown>, k: string) =>
  call(app, 'POST', '/voice/calls/events', { body, headers: { authorization: `Bearer ${k}` } });

describe('a tenant API key on the call path', () => {
  it("routes its tenant's numbers with voice:route, and knows nothing of another tenant's", async () => {
    const ok = await route(NUMBER.acme, key.route.key);
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body.agent.id).toBe(AGENT.acme);
    expect(ok.body.tenant.id).toBe(acme);
    const retired = await route(NUMBER.acmeRetired, key.route.key);
    expect([retired.status, errorCode(retired)]).toEqual([404, 'agent_inactive']);
    // Another tenant's numbers, active or not, and a number nobody has: the same answer.
    for (const n of [NUMBER.globex, NUMBER.globexRetired, '+14155551999']) {
      const r = await route(n, key.route.key);
      expect([r.status, errorCode(r)], n).toEqual([404, 'unknown_number']);
    }
  });

  it("answers its tenant's state before a parked agent's, as the provider's credential does: a suspended or deleted tenant's number is not retried", async () => {
    try {
      for (const status of ['suspended', 'deleted']) {
        await db.sql`update public.tenants set status = ${status}, deleted_at = ${status === 'deleted' ? new Date() : null} where id = ${acme}`;
        for (const n of [NUMBER.acme, NUMBER.acmeRetired]) {
          const r = await route(n, key.route.key);
          expect([n, r.status, errorCode(r)]).toEqual([n, 404, `tenant_${status}`]);
        }
      }
    } finally {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${acme}`;
    }
    const parked = await route(NUMBER.acmeRetired, key.route.key);
    expect([parked.status, errorCode(parked)]).toEqual([404, 'agent_inactive']);
  });

  it('a key without the scope is 403 insufficient_scope; a malformed one 401', async () => {
    for (const k of [key.events.key, key.other.key]) {
      const r = await route(NUMBER.acme, k);
      expect([r.status, errorCode(r)]).toEqual([403, 'insufficient_scope']);
    }
    const r = await event({
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'x',
      direction: 'inbound',
    }, key.route.key);
    expect([r.status, errorCode(r)]).toEqual([403, 'insufficient_scope']);
    const bad = await route(NUMBER.acme, 'tpk_live_nonsense');
    expect([bad.status, errorCode(bad)]).toEqual([401, 'invalid_api_key']);
  });

  it("reports its tenant's calls with calls:write; another tenant's are refused and change nothing", async () => {
    const started = await event(
      {
        type: 'call.started',
        tenant_id: acme,
        agent_id: AGENT.acme,
        provider_call_id: 'key-call-1',
        direction: 'inbound',
        from: '+14155550777',
      },
      key.events.key,
    );
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    expect(started.body.applied).toBe(true);
    const before = (await db.sql`select count(*)::int as n from public.voice_calls where tenant_id = ${globex}`)[0].n;
    const theirs = await event(
      { type: 'call.started', tenant_id: globex, agent_id: AGENT.globex, provider_call_id: 'key-call-2', direction: 'inbound' },
      key.events.key,
    );
    expect([theirs.status, errorCode(theirs)]).toEqual([404, 'unknown_call']);
    expect((await db.sql`select count(*)::int as n from public.voice_calls where tenant_id = ${globex}`)[0].n).toBe(before);
  });

  it("an event that overtakes its call's start is held under the key too; the key's start applies it, audited under the key", async () => {
    const since = (await db.sql`select coalesce(max(id), 0)::bigint as id from public.audit_logs`)[0].id;
    const id = 'key-call-early';
    const early = await event(
      { type: 'transcript.segments', tenant_id: acme, provider_call_id: id, segments: [{ seq: 0, speaker: 'customer', content: 'hi' }] },
      key.events.key,
    );
    expect([early.status, early.body.held], JSON.stringify(early.body)).toEqual([202, true]);
    // Not for another tenant: the key's own tenant only, as for its calls.
    const theirs = await event(
      { type: 'transcript.segments', tenant_id: globex, provider_call_id: id, segments: [{ seq: 0, speaker: 'agent', content: 'x' }] },
      key.events.key,
    );
    expect([theirs.status, errorCode(theirs)]).toEqual([404, 'unknown_call']);
    expect((await db.sql`select count(*)::int as n from private.voice_call_early_events where tenant_id = ${globex}`)[0].n).toBe(0);
    const started = await event(
      { type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: id, direction: 'inbound' },
      key.events.key,
    );
    expect([started.status, started.body.status]).toEqual([200, 'in_progress']);
    const rows = await db.sql`
      select table_name, action, actor_subject from public.audit_logs
      where id > ${since} and table_name in ('voice_calls', 'voice_call_segments') order by id`;
    expect(rows.map((r) => `${r.action} ${r.table_name} ${r.actor_subject}`)).toEqual([
      `INSERT voice_calls ${key.events.id}`,
      `UPDATE voice_calls ${key.events.id}`,
      `INSERT voice_call_segments ${key.events.id}`,
    ]);
  });

  it('a held event is written under whoever sent it, not whoever started the call', async () => {
    const since = (await db.sql`select coalesce(max(id), 0)::bigint as id from public.audit_logs`)[0].id;
    // The key's words, then the provider's start; the provider's words, then the key's start.
    const words = (id: string) => ({
      type: 'transcript.segments',
      tenant_id: acme,
      provider_call_id: id,
      segments: [{ seq: 0, speaker: 'customer', content: 'hi' }],
    });
    const start = (id: string) => ({ type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: id, direction: 'inbound' });
    const service = await apiKey('service_role', TEST_JWT_SECRET);
    expect((await event(words('key-early-words'), key.events.key)).status).toBe(202);
    expect((await event(start('key-early-words'), service)).status).toBe(200);
    expect((await event(words('provider-early-words'), service)).status).toBe(202);
    expect((await event(start('provider-early-words'), key.events.key)).status).toBe(200);
    const rows = await db.sql`
      select a.table_name, a.action, a.actor_subject, c.provider_call_id
      from public.audit_logs a
      join public.voice_calls c on c.id = (case when a.table_name = 'voice_calls' then a.record_key ->> 'id' else a.new_data ->> 'call_id' end)::uuid
      where a.id > ${since} and a.table_name in ('voice_calls', 'voice_call_segments') order by a.id`;
    expect(rows.map((r) => `${r.provider_call_id}: ${r.action} ${r.table_name} by ${r.actor_subject ?? 'nobody'}`)).toEqual([
      'key-early-words: INSERT voice_calls by nobody',
      `key-early-words: UPDATE voice_calls by ${key.events.id}`,
      `key-early-words: INSERT voice_call_segments by ${key.events.id}`,
      `provider-early-words: INSERT voice_calls by ${key.events.id}`,
      'provider-early-words: UPDATE voice_calls by nobody',
      'provider-early-words: INSERT voice_call_segments by nobody',
    ]);
  });

  it("its call events are audited under the key and its creator, the provider's under nobody", async () => {
    const since = (await db.sql`select coalesce(max(id), 0)::bigint as id from public.audit_logs`)[0].id;
    const id = 'key-call-audited';
    const steps = [
      { type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: id, direction: 'inbound' },
      { type: 'call.answered', tenant_id: acme, provider_call_id: id },
      {
        type: 'transcript.segments',
        tenant_id: acme,
        provider_call_id: id,
        segments: [{ seq: 0, speaker: 'customer', content: 'hi' }],
      },
      { type: 'call.ended', tenant_id: acme, provider_call_id: id, status: 'completed', duration_seconds: 12 },
    ];
    for (const body of steps) {
      const r = await event(body, key.events.key);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.applied).toBe(true);
    }
    const rows = await db.sql`
      select table_name, action, actor_issuer, actor_subject, actor_user_id from public.audit_logs
      where id > ${since} and table_name in ('voice_calls', 'voice_call_segments') order by id`;
    expect(rows.map((r) => `${r.action} ${r.table_name}`)).toEqual([
      'INSERT voice_calls',
      'UPDATE voice_calls',
      'INSERT voice_call_segments',
      'UPDATE voice_calls',
    ]);
    for (const r of rows) {
      expect(r).toMatchObject({
        actor_issuer: 'tenant-platform:api-key',
        actor_subject: key.events.id,
        actor_user_id: users.acmeAdmin.id,
      });
    }
    // The key's claims are the machine's only under the service role its events run as:
    // under authenticated (as its other routes run) the people's rules hold, so a key
    // can write no provider call's times or status anywhere else.
    const keyClaims = { iss: 'tenant-platform:api-key', sub: key.events.id };
    for (const change of ['ended_at = now()', "status = 'failed'"]) {
      const r = await probeAs(
        db.sql,
        'authenticated',
        keyClaims,
        (tx) =>
          tx.unsafe(
            `update public.voice_calls set ${change} where tenant_id = $1 and provider_call_id = 'key-call-1' returning id`,
            [acme],
          ),
      );
      expect(r, change).toMatchObject({ ok: false, error: { code: 'PT409' } });
    }
    const words = await probeAs(
      db.sql,
      'authenticated',
      keyClaims,
      (tx) =>
        tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
         select tenant_id, id, 900, 'agent', 'forged' from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'key-call-1'
         returning id`,
    );
    expect(words).toMatchObject({ ok: false, error: { code: 'PT409' } });
    // The provider's own credential reports as the machine: nobody.
    const service = await apiKey('service_role', TEST_JWT_SECRET);
    const mark = (await db.sql`select max(id)::bigint as id from public.audit_logs`)[0].id;
    const r = await event(
      { type: 'call.started', tenant_id: acme, agent_id: AGENT.acme, provider_call_id: 'provider-audited' },
      service,
    );
    expect(r.status).toBe(200);
    const [row] = await db
      .sql`select actor_subject, actor_user_id from public.audit_logs where id > ${mark} and table_name = 'voice_calls'`;
    expect(row).toEqual({ actor_subject: null, actor_user_id: null });
  });

  it("cannot add words to, end or search another tenant's calls and knowledge: 404, nothing changed", async () => {
    // Globex's call under way, reported by the provider's own credential, and its knowledge.
    const service = await apiKey('service_role', TEST_JWT_SECRET);
    const theirs = 'key-call-theirs';
    expect(
      (await event(
        { type: 'call.started', tenant_id: globex, agent_id: AGENT.globex, provider_call_id: theirs, answered: true },
        service,
      )).status,
    )
      .toBe(200);
    const [kb] = await db
      .sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${globex}, 'Globex secrets') returning id`;
    await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${globex}, ${kb.id}, 'Vault', 'The vault combination is hidden behind the painting')`;
    const state = async () =>
      (await db.sql`
        select c.status, c.ended_at, (select count(*)::int from public.voice_call_segments s where s.tenant_id = c.tenant_id and s.call_id = c.id) as segments
        from public.voice_calls c where c.tenant_id = ${globex} and c.provider_call_id = ${theirs}`)[0];
    const before = await state();
    expect(before).toMatchObject({ status: 'in_progress', segments: 0 });
    const search = await makeKey('knowledge reader', ['voice:route']);
    // Acme's key names globex's call (its provider id) or globex's knowledge.
    const words = await event(
      {
        type: 'transcript.segments',
        tenant_id: globex,
        provider_call_id: theirs,
        segments: [{ seq: 0, speaker: 'agent', content: 'injected' }],
      },
      key.events.key,
    );
    const ended = await event(
      { type: 'call.ended', tenant_id: globex, provider_call_id: theirs, status: 'failed' },
      key.events.key,
    );
    const found = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${globex}&agent_id=${AGENT.globex}&q=vault`, {
      headers: { authorization: `Bearer ${search.key}` },
    });
    expect([words.status, errorCode(words)]).toEqual([404, 'unknown_call']);
    expect([ended.status, errorCode(ended)]).toEqual([404, 'unknown_call']);
    expect(found.status).toBe(404);
    expect(JSON.stringify(found.body)).not.toContain('vault');
    expect(await state()).toEqual(before);
    // The same requests for acme's own call and knowledge are answered (the refusals are the tenant's, not the shape's).
    const mine = await event(
      {
        type: 'transcript.segments',
        tenant_id: acme,
        provider_call_id: 'key-call-1',
        segments: [{ seq: 0, speaker: 'agent', content: 'hello' }],
      },
      key.events.key,
    );
    expect([mine.status, mine.body.segments_added]).toEqual([200, 1]);
    const own = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&agent_id=${AGENT.acme}&q=vault`, {
      headers: { authorization: `Bearer ${search.key}` },
    });
    expect([own.status, own.body.items]).toEqual([200, []]);
  });

  it("reads its tenant's calls and customers with calls:read and customers:read, as staff do (not a customer's own only)", async () => {
    const reader = await makeKey('crm reader', ['calls:read', 'customers:read']);
    const [{ n: calls }] = await db.sql`select count(*)::int as n from public.voice_calls where tenant_id = ${acme}`;
    await db.sql`insert into public.voice_customers (tenant_id, phone, name) values (${acme}, '+14155550778', 'Key-read caller')`;
    const [{ n: customers }] = await db.sql`select count(*)::int as n from public.voice_customers where tenant_id = ${acme}`;
    expect(calls).toBeGreaterThan(0);
    const listedCalls = await call(app, 'GET', '/voice/calls?limit=100', { headers: { authorization: `Bearer ${reader.key}` } });
    const listedCustomers = await call(app, 'GET', '/voice/customers?limit=100', {
      headers: { authorization: `Bearer ${reader.key}` },
    });
    expect([listedCalls.status, listedCalls.body.items.length]).toEqual([200, calls]);
    expect([listedCustomers.status, listedCustomers.body.items.length]).toEqual([200, customers]);
  });

  it('names its own tenant in any letter case: a uuid in capitals is the same tenant, on the call path and in knowledge search', async () => {
    // The fixtures' uuids are all digits; this tenant's has letters.
    const lettered = 'abcdef00-0000-4000-8000-0000000000ab';
    await db.sql`insert into public.tenants (id, name, slug, plan) values (${lettered}, 'Lettered', 'lettered', 'pro')`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${lettered}, ${users.acmeAdmin.id}, 'admin')`;
    const [agent] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${lettered}, 'Lettered desk', '+14155551005', 'v', ${db.sql.json(LLM)}) returning id`;
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: lettered });
    const made = await call(tenantsApp, 'POST', `/tenants/${lettered}/api-keys`, {
      token: admin,
      body: { name: 'lettered', scopes: ['calls:write', 'voice:route'] },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const shouted = await event(
      { type: 'call.started', tenant_id: lettered.toUpperCase(), agent_id: agent.id, provider_call_id: 'key-call-case' },
      made.body.key,
    );
    expect([shouted.status, shouted.body.applied], JSON.stringify(shouted.body)).toEqual([200, true]);
    const search = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${lettered.toUpperCase()}&agent_id=${agent.id}&q=vault`, {
      headers: { authorization: `Bearer ${made.body.key}` },
    });
    expect([search.status, search.body.items], JSON.stringify(search.body)).toEqual([200, []]);
  });

  it('a revoked key is refused on the very next request', async () => {
    const k = await makeKey('short-lived', ['voice:route']);
    expect((await route(NUMBER.acme, k.key)).status).toBe(200);
    await db.sql`update public.api_keys set revoked_at = now() where id = ${k.id}`;
    const r = await route(NUMBER.acme, k.key);
    expect([r.status, errorCode(r)]).toEqual([401, 'api_key_revoked']);
  });
  it("counts against the plan's rate limits: routing as the key's reads, call events as its writes; the provider's credential is not limited", async () => {
    const router = await makeKey('limited router', ['voice:route']);
    const recorder = await makeKey('limited recorder', ['calls:write']);
    // Made before the limits shrink: making a key is the admin's write, counted too.
    const other = await makeKey('budget owner', ['voice:route']);
    const service = await apiKey('service_role', TEST_JWT_SECRET);
    // With the response headers (call() keeps only status and body).
    const req = async (k: string, path: string, body?: unknown) => {
      const res = await app.request(path, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
    };
    const routePath = `/voice/route?to=${encodeURIComponent(NUMBER.acme)}`;
    const start = {
      type: 'call.started',
      tenant_id: acme,
      agent_id: AGENT.acme,
      provider_call_id: 'limited-call',
      direction: 'inbound',
    };
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits)
      values (${acme}, '{"reads_per_minute_per_key": 2, "requests_per_minute_per_caller": 2}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      await earlyInMinute();
      for (
        const [k, path, body, scope] of [
          [router.key, routePath, undefined, 'key'],
          [recorder.key, '/voice/calls/events', start, 'caller'],
        ] as const
      ) {
        const remaining: (string | null)[] = [];
        for (let i = 0; i < 2; i++) {
          const ok = await req(k, path, body);
          expect(ok.status, JSON.stringify(ok.body)).toBe(200);
          remaining.push(ok.headers.get('ratelimit-remaining'));
        }
        expect(remaining, path).toEqual(['1', '0']);
        const refused = await req(k, path, body);
        expect([refused.status, refused.body.error.code, refused.body.error.details.scope], path).toEqual([
          429,
          'rate_limited',
          scope,
        ]);
        expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      }
      // The refused event changed nothing: the call was started once.
      const [{ n }] = await db
        .sql`select count(*)::int as n from public.voice_calls where tenant_id = ${acme} and provider_call_id = 'limited-call'`;
      expect(n).toBe(1);
      // The provider's own credential routes and reports every tenant's calls, unlimited.
      for (let i = 0; i < 3; i++) {
        const r = await req(service, routePath);
        expect([r.status, r.headers.get('ratelimit-limit')]).toEqual([200, null]);
      }
      // A key presented with a wrong secret spends nothing of the real key's budget.
      const forged = other.key.slice(0, -4) + (other.key.endsWith('AAAA') ? 'BBBB' : 'AAAA');
      expect((await req(forged, routePath)).status).toBe(401);
      const fresh = await req(other.key, routePath);
      expect([fresh.status, fresh.headers.get('ratelimit-remaining')]).toEqual([200, '1']);
      // Nor does a real key refused for its scope: it is verified and counted in one
      // statement, so the refusal takes the count back with it.
      const hits = async () => (await db.sql`select coalesce(sum(hits), 0)::int as n from private.rate_limit_counters`)[0].n;
      const before = await hits();
      const outOfScope = await req(other.key, '/voice/calls/events', { ...start, provider_call_id: 'out-of-scope' });
      expect([outOfScope.status, outOfScope.body.error.code]).toEqual([403, 'insufficient_scope']);
      expect(await hits()).toBe(before);
      // The same for a read: a calls:write key routing a number.
      const readOutOfScope = await req(key.events.key, routePath);
      expect([readOutOfScope.status, readOutOfScope.body.error.code]).toEqual([403, 'insufficient_scope']);
      expect(await hits()).toBe(before);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
    }
  });
});
