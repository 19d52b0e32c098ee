// Inputs that passed the schemas and then failed somewhere a 4xx could not name them (review
// of bad input): JSON nested 400,000 levels (a recursive walk ran out of stack: a 500), a
// timestamp with 200 digits of a second (Postgres's reader refused it: a 422 naming the
// body), a NUL in a rule's condition (jsonb refused it: the body again), and a service
// name that is none, checked as a plan feature before it was validated (403 instead of
// 422). Each is a 422 naming the field now, and nothing is written.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { app as voiceApp } from '../../functions/voice/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, type CallResult, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

const acme = tenants.acme.id;
let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};

beforeAll(async () => {
  db = await freshDatabase('bad_input_edges');
  auth = await configureAuth(db.url);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

/** The fields a 422 names. */
const fields = (r: CallResult) => (r.body?.error?.details?.fields ?? []).map((f: { field: string }) => f.field);
const count = async (table: string) => (await db.sql`select count(*)::int as n from ${db.sql('public')}.${db.sql(table)}`)[0].n as number;
/** JSON nested `depth` arrays deep, written as text (a recursive JSON.stringify could not). */
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

it('JSON nested 400,000 levels deep in a free-form object is a 422 naming it, not a 500', async () => {
  const agents = await count('voice_agents');
  const agent = await call(voiceApp, 'POST', '/voice/agents', {
    token: tok.admin,
    rawBody: `{"name":"Deep","phone":"+14155550177","voice_id":"v","llm_config":{"model":"m","system_prompt":"p","tools":[{"a":${
      nested(400_000)
    }}]}}`,
  });
  expect([agent.status, errorCode(agent), fields(agent)]).toEqual([422, 'validation_failed', ['llm_config.tools.0']]);
  expect(await count('voice_agents')).toBe(agents);

  const tickets = await count('tickets');
  const ticket = await call(ticketsApp, 'POST', '/tickets', {
    token: tok.user,
    rawBody: `{"title":"Deep metadata","metadata":{"a":${nested(400_000)}}}`,
  });
  expect([ticket.status, errorCode(ticket), fields(ticket)]).toEqual([422, 'validation_failed', ['metadata']]);
  expect(await count('tickets')).toBe(tickets);
  // 64 levels are fine.
  const fine = await call(ticketsApp, 'POST', '/tickets', {
    token: tok.user,
    rawBody: `{"title":"Nested metadata","metadata":{"a":${nested(63)}}}`,
  });
  expect(fine.status, JSON.stringify(fine.body)).toBe(201);
});

it('a timestamp with more than nine digits of a second is a 422 naming its field', async () => {
  const long = `2030-01-01T00:00:00.${'0'.repeat(200)}Z`;
  const tickets = await count('tickets');
  const r = await call(ticketsApp, 'POST', '/tickets', { token: tok.agent, body: { title: 'Precise due date', due_date: long } });
  expect([r.status, errorCode(r), fields(r)]).toEqual([422, 'validation_failed', ['due_date']]);
  expect(await count('tickets')).toBe(tickets);
  const q = await call(ticketsApp, 'GET', `/tickets?created_after=${encodeURIComponent(long)}`, { token: tok.agent });
  expect([q.status, fields(q)]).toEqual([422, ['created_after']]);
  const nine = await call(ticketsApp, 'POST', '/tickets', {
    token: tok.agent,
    body: { title: 'Precise enough', due_date: '2030-01-01T00:00:00.123456789Z' },
  });
  expect(nine.status, JSON.stringify(nine.body)).toBe(201);
});

it("a NUL in a rule's condition is a 422 naming the condition's value", async () => {
  const rules = await count('automation_rules');
  for (const op of ['eq', 'contains']) {
    const r = await call(ticketsApp, 'POST', '/tickets/automation-rules', {
      token: tok.admin,
      body: {
        name: 'NUL',
        event: 'ticket.created',
        conditions: { all: [{ field: 'title', op, value: 'a\u0000b' }] },
        actions: [{ type: 'set_priority', priority: 'low' }],
      },
    });
    expect([r.status, errorCode(r), fields(r)], op).toEqual([422, 'validation_failed', ['conditions.all.0.value']]);
  }
  expect(await count('automation_rules')).toBe(rules);
});

it('a service name that is none is a 422 naming it, also where the plan lacks a feature of that name', async () => {
  await db.sql`insert into private.tenant_plan_overrides (tenant_id, features) values (${acme}, '{"voice": false}')
    on conflict (tenant_id) do update set features = excluded.features`;
  for (const path of ['retry', 'credentials', 'rotate-credentials']) {
    const r = await call(tenantsApp, 'POST', `/tenants/${acme}/services/voice/${path}`, { token: tok.admin });
    expect([r.status, errorCode(r), fields(r)], path).toEqual([422, 'validation_failed', ['service']]);
  }
});

it("free-form JSON is measured as the database's check measures it (its jsonb text): within the bound there is within the check, and beyond it a 422 that names the bound", async () => {
  const tickets = await count('tickets');
  // 1,500 keys: 15,001 bytes as JSON.stringify writes them, 18,000 as jsonb's text (a space
  // after every ':' and ','), past the 16,384 the column's check allows.
  const metadata = Object.fromEntries(Array.from({ length: 1500 }, (_, i) => [`k${String(i).padStart(4, '0')}`, 0]));
  const wide = await call(ticketsApp, 'POST', '/tickets', { token: tok.agent, body: { title: 'Wide metadata', metadata } });
  expect([wide.status, wide.body.error?.details?.fields]).toEqual([422, [{ field: 'metadata', message: 'must be at most 16384 bytes of JSON', code: 'custom' }]]);
  // Custom field values too: three lists of 100 long options, within every per-value bound.
  const list = Array.from({ length: 100 }, (_, i) => `${'o'.repeat(95)}${String(i).padStart(5, '0')}`);
  const values = await call(ticketsApp, 'POST', '/tickets', {
    token: tok.agent,
    body: { title: 'Wide values', custom_fields: { a: list, b: list, c: list } },
  });
  expect([values.status, values.body.error?.details?.fields]).toEqual([422, [{ field: 'custom_fields', message: 'at most 16384 bytes of JSON in all', code: 'custom' }]]);
  expect(await count('tickets')).toBe(tickets);
});
