// A customer files at most the tenant's `settings.customer_tickets_per_day` tickets a
// UTC day (50 unless set), on both paths (20261206031000): the plan's tickets_per_month is
// the tenant's, and one customer with PostgREST spent it with one bulk insert, after which
// nobody in the tenant could file a ticket until the month turned. Past the allowance the
// insert is refused whole (PT429, the API's 429 rate_limited with Retry-After) and the
// quota is untouched; staff (for them too) and other customers still file; soft-deleting
// frees nothing; two filings at once take the last place once.
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/tickets/app.ts';
import { app as voiceApp } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { committedAs, freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const customer = supabaseClaims(users.acmeUser, acme);

beforeAll(async () => {
  db = await freshDatabase('fn_customer_ticket_cap');
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

/** The customer's count of the day set to `filed` (as if they had filed that many). */
async function filedToday(filed: number) {
  await db.sql`
    insert into private.customer_ticket_filings (tenant_id, user_id, day, filed)
    values (${acme}, ${users.acmeUser.id}, (now() at time zone 'UTC')::date, ${filed})
    on conflict (tenant_id, user_id) do update set day = excluded.day, filed = excluded.filed`;
}
async function allowance(perDay: unknown) {
  const r = await call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { customer_tickets_per_day: perDay } } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
}
/** The customer's count of the day, and the tenant's monthly ticket count. */
async function state() {
  const [s] = await db.sql`
    select (select coalesce(sum(filed), 0)::int from private.customer_ticket_filings
            where tenant_id = ${acme} and user_id = ${users.acmeUser.id} and day = (now() at time zone 'UTC')::date) as filed,
           (select coalesce(sum(used), 0)::int from private.usage_counters where tenant_id = ${acme} and metric = 'tickets_per_month') as month`;
  return s as { filed: number; month: number };
}
/** Seconds from now to the next UTC day, as the database counts them. */
const toMidnight = async () =>
  (await db.sql`select extract(epoch from ((((now() at time zone 'UTC')::date + 1)::timestamp at time zone 'UTC') - clock_timestamp()))::float8 as s`)[0]
    .s as number;
/** Runs `fn` as the customer on PostgREST's path (role authenticated, their claims), committed. */
function asCustomer<T>(fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return committedAs(db.sql, 'authenticated', customer, fn);
}
const bulk = (tx: postgres.TransactionSql, n: number) =>
  tx`insert into public.tickets (tenant_id, title) select ${acme}, 'spam ' || g from generate_series(1, ${n}::int) g`;

describe("a customer's tickets a day", () => {
  it('the direct path: a bulk insert past the allowance is refused whole, and the month is not spent', async () => {
    await allowance(5);
    const before = await state();
    const refused = await asCustomer((tx) => bulk(tx, 5 - before.filed + 1)).catch((e: { code?: string; detail?: string }) => e);
    expect((refused as { code?: string }).code).toBe('PT429');
    expect(JSON.parse((refused as { detail: string }).detail)).toMatchObject({
      code: 'rate_limited',
      details: { scope: 'customer_tickets_per_day', limit: 5 },
    });
    expect(await state()).toEqual(before);
    // Up to the allowance it files; one more is refused.
    await asCustomer((tx) => bulk(tx, 5 - before.filed));
    expect(await state()).toEqual({ filed: 5, month: before.month + 5 - before.filed });
    const oneMore = await asCustomer((tx) => bulk(tx, 1)).catch((e: { code?: string }) => e);
    expect((oneMore as { code?: string }).code).toBe('PT429');
    expect((await state()).filed).toBe(5);
  });

  it('the API: 429 rate_limited with Retry-After; staff and other customers still file; deleting frees nothing', async () => {
    await allowance(5);
    await filedToday(5);
    const earliest = await toMidnight();
    const res = await app.request('/tickets', {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.user}`, 'content-type': 'application/json' },
      body: JSON.stringify({ title: 'One too many' }),
    });
    const latest = await toMidnight();
    const body = await res.json();
    expect([res.status, body.error.code, body.error.details]).toEqual([429, 'rate_limited', {
      scope: 'customer_tickets_per_day',
      limit: 5,
      retry_after: expect.any(Number),
    }]);
    expect(res.headers.get('retry-after')).toBe(String(body.error.details.retry_after));
    // Come back when the UTC day turns.
    expect(body.error.details.retry_after).toBeLessThanOrEqual(Math.ceil(earliest) + 1);
    expect(body.error.details.retry_after).toBeGreaterThanOrEqual(Math.max(1, Math.floor(latest) - 1));

    // Staff still file for them, and it is not the customer's count.
    const byAgent = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Filed by staff', requester_id: users.acmeUser.id } });
    expect(byAgent.status, JSON.stringify(byAgent.body)).toBe(201);
    expect((await state()).filed).toBe(5);
    expect((await call(app, 'DELETE', `/tickets/${byAgent.body.id}`, { token: tok.admin })).status).toBe(200);
    const still = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Still too many' } });
    expect([still.status, errorCode(still)]).toEqual([429, 'rate_limited']);

    // Another customer of the tenant is not held by this one's count.
    const [other] = await db.sql`
      insert into public.users (id, email) values ('00000000-0000-4000-8000-0000000000c9', 'other-customer@acme.test') returning id, email`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${other.id}, ${other.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${other.id}, 'user')`;
    const otherTok = await supabaseToken({ id: other.id, email: other.email }, { tenantId: acme });
    expect((await call(app, 'POST', '/tickets', { token: otherTok, body: { title: 'Mine is new' } })).status).toBe(201);

    // A larger allowance lets them file again, up to it; the next day counts afresh.
    await allowance(6);
    expect((await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'The sixth' } })).status).toBe(201);
    expect((await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'The seventh' } })).status).toBe(429);
    await db.sql`update private.customer_ticket_filings set day = day - 1 where user_id = ${users.acmeUser.id}`;
    expect((await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'The next day' } })).status).toBe(201);
    expect(await state()).toMatchObject({ filed: 1 });
  });

  it('tickets filed for the customer by an API key or opened from their call are not theirs to count', async () => {
    await allowance(5);
    await filedToday(5);
    const key = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: tok.admin, body: { name: 'crm', scopes: ['tickets:write'] } });
    expect(key.status, JSON.stringify(key.body)).toBe(201);
    const byKey = await call(app, 'POST', '/tickets', { token: key.body.key, body: { title: 'Synced from the CRM', requester_id: users.acmeUser.id } });
    expect([byKey.status, byKey.body.created_by]).toEqual([201, users.acmeUser.id]);

    // A call from the customer's voice record, opened as a ticket by an agent: the
    // ticket's requester is the customer.
    await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
    const agentId = '75000000-0000-4000-8000-000000000051';
    await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
      values (${acme}, ${agentId}, 'Desk', '+14155554051', 'v', ${db.sql.json({ model: 'm', system_prompt: 'p' })})`;
    await db.sql`insert into public.voice_customers (tenant_id, phone, name, user_id) values (${acme}, '+14155550151', 'Caller', ${users.acmeUser.id})`;
    const service = await apiKey('service_role', TEST_JWT_SECRET);
    const started = await call(voiceApp, 'POST', '/voice/calls/events', {
      headers: { authorization: `Bearer ${service}` },
      body: { type: 'call.started', tenant_id: acme, agent_id: agentId, provider_call_id: 'cap-call-1', from: '+14155550151', answered: true },
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const [{ id: callId }] = await db.sql`select id from public.voice_calls where provider_call_id = 'cap-call-1'`;
    const opened = await call(voiceApp, 'POST', `/voice/calls/${callId}/ticket`, { token: tok.agent });
    expect(opened.status, JSON.stringify(opened.body)).toBe(201);
    const [{ created_by }] = await db.sql`select created_by from public.tickets where id = ${opened.body.ticket_id}`;
    expect(created_by).toBe(users.acmeUser.id);

    // Neither counted: the customer's own count is where it was, and still full.
    expect((await state()).filed).toBe(5);
    const own = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'My own ticket' } });
    expect([own.status, errorCode(own)], JSON.stringify(own.body)).toEqual([429, 'rate_limited']);
  });

  it('two filings at once take the last place once', async () => {
    const { filed } = await state();
    await allowance(filed + 1);
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    let started!: (pid: number) => void;
    const first = new Promise<number>((r) => (started = r));
    const holder = asCustomer(async (tx) => {
      await bulk(tx, 1);
      started((await tx`select pg_backend_pid() as pid`)[0].pid);
      await held;
    });
    const pid = await first;
    const second = asCustomer((tx) => bulk(tx, 1)).then(() => 'filed', (e: { code?: string }) => e.code);
    // The second waits for the first's count (else both would see the last place free).
    expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
    release();
    await holder;
    expect(await second).toBe('PT429');
    expect((await state()).filed).toBe(filed + 1);
  });

  it('the setting is a whole number from 1 to 1,000,000; one written past the API counts as 50', async () => {
    for (const bad of [0, 1.5, '5', 1_000_001, true]) {
      const r = await call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { customer_tickets_per_day: bad } } });
      expect([JSON.stringify(bad), r.status, r.body.error?.details?.fields?.[0]?.field]).toEqual([
        JSON.stringify(bad),
        422,
        'settings.customer_tickets_per_day',
      ]);
    }
    for (const [written, read] of [['"abc"', 50], ['0', 1], ['99999999', 1_000_000], ['7.9', 7], ['null', 50]] as const) {
      await db.sql`update public.tenants set settings = jsonb_set(settings, '{customer_tickets_per_day}', ${written}::text::jsonb) where id = ${acme}`;
      const [{ n }] = await db.sql`select private.customer_tickets_per_day(${acme}) as n`;
      expect([written, n]).toEqual([written, read]);
    }
  });

  it('called directly, the check counts only the caller’s own tickets', async () => {
    // Another tenant, with an allowance of one: checking it as this customer (not a
    // member there) is nothing, and counts nothing there.
    await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 1}' where id = ${tenants.globex.id}`;
    const probe = await asCustomer(async (tx) => {
      await tx`select private.check_customer_filing(${tenants.globex.id})`;
      return 'nothing';
    });
    expect(probe).toBe('nothing');
    expect(await db.sql`select * from private.customer_ticket_filings where tenant_id = ${tenants.globex.id}`).toEqual([]);
  });
});

describe("a customer's messages a day", () => {
  const written = async () =>
    (await db.sql`select coalesce(sum(posted), 0)::int as n from private.customer_message_posts
      where tenant_id = ${acme} and user_id = ${users.acmeUser.id} and day = (now() at time zone 'UTC')::date`)[0].n as number;
  const messagesAllowance = async (perDay: unknown) => {
    const r = await call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { customer_messages_per_day: perDay } } });
    return r;
  };

  it('are counted on both paths: a bulk insert past the allowance is refused whole; the API answers 429; staff still write', async () => {
    await allowance(1000);
    const t = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Where I write a lot' } });
    expect(t.status, JSON.stringify(t.body)).toBe(201);
    expect((await messagesAllowance(5)).status).toBe(200);
    const before = await written();
    const count = async () => (await db.sql`select count(*)::int as n from public.ticket_messages where ticket_id = ${t.body.id}`)[0].n;
    const inTicket = await count();
    // PostgREST's path: 10,000 rows at once, refused whole.
    const refused = await asCustomer((tx) =>
      tx`insert into public.ticket_messages (tenant_id, ticket_id, type, content)
        select ${acme}, ${t.body.id}, 'message', 'spam ' || g from generate_series(1, 10000) g`
    ).catch((e: { code?: string; detail?: string }) => e);
    expect((refused as { code?: string }).code).toBe('PT429');
    expect(JSON.parse((refused as { detail: string }).detail)).toMatchObject({
      code: 'rate_limited',
      details: { scope: 'customer_messages_per_day', limit: 5 },
    });
    expect([await count(), await written()]).toEqual([inTicket, before]);
    // The API: up to the allowance, then 429 with Retry-After.
    for (let i = before; i < 5; i++) {
      const ok = await call(app, 'POST', `/tickets/${t.body.id}/messages`, { token: tok.user, body: { content: `message ${i}` } });
      expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    }
    const res = await app.request(`/tickets/${t.body.id}/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tok.user}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'one too many' }),
    });
    const body = await res.json();
    expect([res.status, body.error.code, body.error.details.scope]).toEqual([429, 'rate_limited', 'customer_messages_per_day']);
    expect(res.headers.get('retry-after')).toBe(String(body.error.details.retry_after));
    // Staff's replies (an admin's) are not the customer's count.
    const reply = await call(app, 'POST', `/tickets/${t.body.id}/messages`, { token: tok.admin, body: { content: 'We hear you' } });
    expect(reply.status).toBe(201);
    expect(await written()).toBe(5);
    // The next day counts afresh; the setting is a whole number from 1 to 1,000,000.
    await db.sql`update private.customer_message_posts set day = day - 1 where user_id = ${users.acmeUser.id}`;
    expect((await call(app, 'POST', `/tickets/${t.body.id}/messages`, { token: tok.user, body: { content: 'a new day' } })).status).toBe(201);
    // Edits count too, on a counter of their own with the same allowance: rewriting every
    // message of theirs in one statement is as many writes (each a message.updated, a
    // delivery per endpoint, an audit entry).
    expect((await messagesAllowance(3)).status).toBe(200);
    const edits = async () =>
      (await db.sql`select coalesce(sum(edited), 0)::int as n from private.customer_message_edits
        where tenant_id = ${acme} and user_id = ${users.acmeUser.id} and day = (now() at time zone 'UTC')::date`)[0].n as number;
    const mine = async () =>
      (await db.sql`select id, content from public.ticket_messages where ticket_id = ${t.body.id} and author_id = ${users.acmeUser.id}
        order by created_at, id`).map((m) => ({ id: m.id as string, content: m.content as string }));
    const contents = await mine();
    expect(contents.length).toBeGreaterThan(3);
    const edit = await asCustomer((tx) =>
      tx`update public.ticket_messages set content = content || ' (edited)' where ticket_id = ${t.body.id} and author_id = ${users.acmeUser.id}`
    ).catch((e: { code?: string; detail?: string }) => e);
    expect((edit as { code?: string }).code).toBe('PT429');
    expect(JSON.parse((edit as { detail: string }).detail).details).toMatchObject({ scope: 'customer_message_edits_per_day', limit: 3 });
    expect([await mine(), await edits(), await written()]).toEqual([contents, 0, 1]);
    // One edit counts one; one that changes nothing counts nothing; staff's edits are theirs.
    const path = (id: string) => `/tickets/${t.body.id}/messages/${id}`;
    expect((await call(app, 'PATCH', path(contents[0].id), { token: tok.user, body: { content: 'fixed typo' } })).status).toBe(200);
    await asCustomer((tx) => tx`update public.ticket_messages set content = content where id = ${contents[1].id}`);
    expect(await edits()).toBe(1);
    // Through the API, past the allowance: 429 with Retry-After, and the message as it was.
    await db.sql`update private.customer_message_edits set edited = 3 where user_id = ${users.acmeUser.id}`;
    const over = await app.request(path(contents[2].id), {
      method: 'PATCH',
      headers: { authorization: `Bearer ${tok.user}`, 'content-type': 'application/json' },
      body: JSON.stringify({ content: 'one edit too many' }),
    });
    const overBody = await over.json();
    expect([over.status, overBody.error.code, overBody.error.details.scope]).toEqual([429, 'rate_limited', 'customer_message_edits_per_day']);
    expect(over.headers.get('retry-after')).toBe(String(overBody.error.details.retry_after));
    expect((await mine())[2].content).toBe(contents[2].content);
    for (const bad of [0, 1.5, 1_000_001, 'many']) {
      const r = await messagesAllowance(bad);
      expect([r.status, errorCode(r)], String(bad)).toEqual([422, 'validation_failed']);
    }
    expect((await messagesAllowance(null)).status).toBe(200);
  });
});
