// Deleting calls through the table does what the API's delete does (issue 14;
// 20261204120000_voice_call_table_deletes.sql). An admin's
// `supabase.from('voice_calls').delete()` used to remove the rows only: a call the
// provider still reported could go, the outbox still sent the call's `call.started` and
// `call.ended` (its numbers, its summary) after it was gone, and receivers never heard of
// the delete. Now every delete of calls, on any path, takes the calls' webhook events
// with it and sends `call.deleted` (the id only) for each; people are refused a call the
// provider still reports (409 call_in_progress, nothing changed), while the service role
// may, and calls people logged (`manual:`) go in any state. A customer's erasure keeps
// its own accounting (no `call.deleted` per call; the events it removed counted in its
// answer), and a tenant hard-deleted with a ringing call is not refused. The notices
// are written for the whole statement at once and take no lock
// (20261204122000_voice_call_deleted_at_once.sql): 20,000 calls deleted at once, sent one
// by one, had filled the server's shared lock table.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

type SeedUser = (typeof users)[keyof typeof users];
let db: TestDatabase;
let auth: AuthFixture;
let service: string;
let adminToken: string;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
const AGENTS: Record<string, string> = {
  [acme]: '75000000-0000-4000-8000-000000000011',
  [globex]: '75000000-0000-4000-8000-000000000012',
};

beforeAll(async () => {
  db = await freshDatabase('fn_voice_table_deletes');
  // The receiver's secret is kept encrypted.
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  service = await apiKey('service_role', TEST_JWT_SECRET);
  adminToken = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${AGENTS[acme]}, 'Desk', '+14155554021', 'v', ${db.sql.json(LLM)}),
           (${globex}, ${AGENTS[globex]}, 'Desk', '+14155554022', 'v', ${db.sql.json(LLM)})`;
  // Both tenants have a receiver for every event type (never sent here): what is queued
  // for it is what would go out.
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
    values (${acme}, 'https://hooks.example.com/calls', 'v1:x', '{}'),
           (${globex}, 'https://hooks.example.com/calls', 'v1:x', '{}')`;
});
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
});

const send = (body: Record<string, unknown>) =>
  call(app, 'POST', '/voice/calls/events', { body, headers: { authorization: `Bearer ${service}` } });
/** A call the provider started (answered) and, unless `open`, ended: its id. */
async function providerCall(tenant: string, pc: string, { open = false, answered = true } = {}) {
  const r = await send({ type: 'call.started', tenant_id: tenant, provider_call_id: pc, agent_id: AGENTS[tenant], from: '+33612345678', answered });
  expect([r.status, r.body.applied], JSON.stringify(r.body)).toEqual([200, true]);
  if (!open) expect((await send({ type: 'call.ended', tenant_id: tenant, provider_call_id: pc, status: 'completed' })).status).toBe(200);
  return r.body.call_id as string;
}
/** A call people logged themselves, in the given status: its id. */
async function manualCall(pc: string, status: string) {
  const [c] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id, to_number)
    values (${acme}, ${AGENTS[acme]}, 'outbound', ${status}, ${'manual:' + pc}, '+33611112222') returning id`;
  return c.id as string;
}
/** Deletes calls through the table (PostgREST's path) in one committed statement, as
 *  `who` (a person of acme, or the service role): the ids deleted, or the error. */
async function deleteThroughTable(ids: string[], who: SeedUser | 'service_role' = users.acmeAdmin) {
  try {
    return await db.sql.begin(async (tx) => {
      const [role, claims] = who === 'service_role' ? ['service_role', { role: who }] : ['authenticated', supabaseClaims(who, acme)];
      await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
      return (await tx`delete from public.voice_calls where id in ${tx(ids)} returning id`).map((r) => r.id as string).sort();
    });
  } catch (err) {
    return err as { code: string; detail: string };
  }
}
/** The webhook events about a call, oldest first: [type, data]. */
const eventsOf = async (tenant: string, callId: string) =>
  (await db.sql`select type, payload -> 'data' as data from private.webhook_events
    where tenant_id = ${tenant} and ordering_key = ${'call:' + callId} order by id`).map((e) => [e.type, e.data]);
/** Everything a delete could change: calls, events, deliveries, tombstones. */
const state = async () => ({
  calls: (await db.sql`select id, status from public.voice_calls order by id`).map((r) => `${r.id}:${r.status}`),
  events: (await db.sql`select id, type from private.webhook_events order by id`).map((r) => `${r.id}:${r.type}`),
  deliveries: (await db.sql`select count(*)::int as n from private.webhook_deliveries`)[0].n,
  tombstones: (await db.sql`select count(*)::int as n from private.voice_call_tombstones`)[0].n,
});

describe('deleting calls through the table', () => {
  it("an admin's delete takes the call's webhook events (delivered or not, with their deliveries) and sends call.deleted; a bystander's stay", async () => {
    const id = await providerCall(acme, 'pc-table-1');
    const bystander = await providerCall(acme, 'pc-table-bystander');
    const twin = await providerCall(globex, 'pc-table-1');
    expect((await eventsOf(acme, id)).map(([type]) => type)).toEqual(['call.started', 'call.ended']);
    const [first] = await db.sql`select min(id) as id from private.webhook_events where tenant_id = ${acme} and ordering_key = ${'call:' + id}`;
    await db.sql`update private.webhook_deliveries set status = 'delivered', delivered_at = now() where event_id = ${first.id}`;
    const [kept, twinKept] = [await eventsOf(acme, bystander), await eventsOf(globex, twin)];

    expect(await deleteThroughTable([id])).toEqual([id]);
    expect(await eventsOf(acme, id)).toEqual([['call.deleted', { id }]]);
    const deliveries = await db.sql`select e.type, d.status, d.endpoint_id is not null as endpoint
      from private.webhook_deliveries d join private.webhook_events e on e.id = d.event_id
      where e.tenant_id = ${acme} and e.ordering_key = ${'call:' + id}`;
    expect(deliveries).toEqual([{ type: 'call.deleted', status: 'pending', endpoint: true }]);
    // Nothing about the deleted call is waiting to go out with the caller's number.
    expect(await db.sql`select id from private.webhook_events where tenant_id = ${acme} and ordering_key = ${'call:' + id}
      and payload::text like '%+33612345678%'`).toEqual([]);
    expect([await eventsOf(acme, bystander), await eventsOf(globex, twin)]).toEqual([kept, twinKept]);
    // The audit names the admin, as for the route.
    const [entry] = await db.sql`select actor_user_id from public.audit_logs
      where tenant_id = ${acme} and table_name = 'voice_calls' and action = 'DELETE' and record_key ->> 'id' = ${id}`;
    expect(entry).toEqual({ actor_user_id: users.acmeAdmin.id });
  });

  it('a delete of several calls in one statement sends one call.deleted each, in id order', async () => {
    const ids = [await providerCall(acme, 'pc-table-bulk-1'), await providerCall(acme, 'pc-table-bulk-2'), await providerCall(acme, 'pc-table-bulk-3')];
    const [{ last }] = await db.sql`select coalesce(max(id), 0) as last from private.webhook_events`;
    expect(await deleteThroughTable(ids)).toEqual([...ids].sort());
    const told = await db.sql`select type, ordering_key, payload -> 'data' as data from private.webhook_events
      where id > ${last} order by id`;
    expect(told).toEqual([...ids].sort().map((id) => ({ type: 'call.deleted', ordering_key: `call:${id}`, data: { id } })));
  });

  it('people may not delete a call the provider still reports: 409 call_in_progress naming it, and the whole statement changes nothing', async () => {
    const ended = await providerCall(acme, 'pc-table-ended');
    const talking = await providerCall(acme, 'pc-table-talking', { open: true });
    const ringing = await providerCall(acme, 'pc-table-ringing', { open: true, answered: false });
    const before = await state();
    for (const who of [users.acmeAdmin, users.super]) {
      const refused = await deleteThroughTable([ended, talking, ringing], who);
      expect('code' in refused && [refused.code, JSON.parse(refused.detail)], who.email).toEqual([
        'PT409',
        { code: 'call_in_progress', details: { call_ids: [talking, ringing].sort() } },
      ]);
      expect(await state(), who.email).toEqual(before);
    }
    // The ended call alone goes.
    expect(await deleteThroughTable([ended])).toEqual([ended]);
    // The service role may (the machine's clean-up), and receivers are told.
    expect(await deleteThroughTable([talking, ringing], 'service_role')).toEqual([talking, ringing].sort());
    for (const id of [talking, ringing]) expect(await eventsOf(acme, id)).toEqual([['call.deleted', { id }]]);
  });

  it('calls people logged themselves go in any state, through the table and the route, with call.deleted', async () => {
    const inTable = await manualCall('table-ringing', 'ringing');
    const inRoute = await manualCall('route-in-progress', 'in_progress');
    expect(await deleteThroughTable([inTable])).toEqual([inTable]);
    const r = await call(app, 'DELETE', `/voice/calls/${inRoute}`, { token: adminToken });
    expect(r.status, JSON.stringify(r.body)).toBe(204);
    for (const id of [inTable, inRoute]) expect(await eventsOf(acme, id)).toEqual([['call.deleted', { id }]]);
    // A provider call in progress is still refused by the route, named as the table names it.
    const live = await providerCall(acme, 'pc-table-route-live', { open: true });
    const refused = await call(app, 'DELETE', `/voice/calls/${live}`, { token: adminToken });
    expect([refused.status, errorCode(refused), refused.body.error?.details]).toEqual([409, 'call_in_progress', {
      call_ids: [live],
      status: 'in_progress',
    }]);
  });

  it("an erasure sends no call.deleted per call and counts the events it removed; its mark ends with its statement", async () => {
    const customer = await call(app, 'POST', '/voice/customers', {
      token: adminToken,
      body: { phone: '+33698765400', name: 'Dominique' },
    });
    expect(customer.status, JSON.stringify(customer.body)).toBe(201);
    const calls = [];
    for (const pc of ['pc-table-erased-1', 'pc-table-erased-2']) {
      const r = await send({ type: 'call.started', tenant_id: acme, provider_call_id: pc, agent_id: AGENTS[acme], from: '+33698765400', answered: true });
      expect(r.status).toBe(200);
      expect((await send({ type: 'call.ended', tenant_id: acme, provider_call_id: pc, status: 'completed' })).status).toBe(200);
      calls.push(r.body.call_id as string);
    }
    const afterwards = await providerCall(acme, 'pc-table-after-erasure');
    const [events] = await db.sql`select count(*)::int as n from private.webhook_events
      where tenant_id = ${acme} and (ordering_key = any (${calls.map((c) => 'call:' + c)}) or ordering_key = ${'customer:' + customer.body.id})`;
    // The erasure and a delete through the table in one transaction, as an admin.
    const [erased, deleted] = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(users.acmeAdmin, acme))}, true)`;
      const [e] = await tx`select private.voice_customer_erase(${acme}, ${customer.body.id}) as r`;
      const d = await tx`delete from public.voice_calls where id = ${afterwards} returning id`;
      return [e.r, d];
    });
    expect(erased.erased.webhook_events).toBe(events.n);
    expect(erased.call_ids).toEqual([...calls].sort());
    for (const id of calls) expect(await eventsOf(acme, id)).toEqual([]);
    const [told] = await db.sql`select payload -> 'data' -> 'call_ids' as ids from private.webhook_events
      where tenant_id = ${acme} and type = 'customer.erased'`;
    expect(told.ids).toEqual([...calls].sort());
    // The delete after it, in the same transaction, is told as any other.
    expect(deleted.length).toBe(1);
    expect(await eventsOf(acme, afterwards)).toEqual([['call.deleted', { id: afterwards }]]);
  });

  it('10,000 calls deleted in one statement: every call told in its transaction, in id order, and no advisory lock taken for it', async () => {
    // Before (one event at a time through emit_webhook_event, three locks a call with one
    // receiver, held to commit: 30,000 here), this filled the server's shared lock table
    // (64 x 200 slots locally): "out of shared memory". The calls are written while the
    // receiver is off (their call.started would take those locks too).
    await db.sql`update public.webhook_endpoints set enabled = false where tenant_id = ${acme}`;
    const ids = (await db.sql`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id)
      select ${acme}, ${AGENTS[acme]}, 'outbound', 'ringing', 'manual:bulk-' || g from generate_series(1, 10000) g returning id`)
      .map((r) => r.id as string).sort();
    await db.sql`update public.webhook_endpoints set enabled = true where tenant_id = ${acme}`;
    const [{ last }] = await db.sql`select coalesce(max(id), 0) as last from private.webhook_events`;
    const locks = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(users.acmeAdmin, acme))}, true)`;
      expect((await tx`delete from public.voice_calls where tenant_id = ${acme} and provider_call_id like 'manual:bulk-%' returning id`).length).toBe(10000);
      await tx`reset role`;
      return (await tx`select count(*)::int as n from pg_locks where pid = pg_backend_pid() and locktype = 'advisory'`)[0].n as number;
    });
    expect(locks).toBe(0);
    const told = await db.sql`select e.payload -> 'data' ->> 'id' as id, e.ordering_key, d.endpoint_id, j.queue, j.max_attempts,
        j.payload = jsonb_build_object('tenant_id', e.tenant_id, 'delivery_id', d.id) and j.tenant_id = e.tenant_id
          and j.attempts = 0 and j.locked_by is null and j.dead_at is null and j.run_at <= now() as queued_as_add_job_does
      from private.webhook_events e
      join private.webhook_deliveries d on d.event_id = e.id
      join private.jobs j on j.task = 'deliver-webhook' and j.job_key = 'delivery:' || d.id
      where e.id > ${last} and e.type = 'call.deleted' order by e.id`;
    const [endpoint] = await db.sql`select id from public.webhook_endpoints where tenant_id = ${acme}`;
    // One event a call, in id order; one delivery to the one receiver; its job queued as
    // add_job queues it, in the call's queue (the order in it: the receiver test below).
    expect(told.length).toBe(10000);
    expect(told.map((t) => t.id)).toEqual(ids);
    expect(told.filter((t) =>
      t.ordering_key !== `call:${t.id}` || t.endpoint_id !== endpoint.id || t.queue !== `webhook:${endpoint.id}:call:${t.id}` ||
      t.max_attempts !== 25 || !t.queued_as_add_job_does
    )).toEqual([]);
    await db.sql`delete from private.jobs where task = 'deliver-webhook' and tenant_id = ${acme}`;
  }, 120_000);

  it("a delete across tenants (the service role's, a platform admin's) tells each tenant's receivers of its own calls, every endpoint that wants the type", async () => {
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${globex}, 'https://hooks.example.com/globex-deletes', 'v1:x', '{call.deleted}'),
             (${globex}, 'https://hooks.example.com/globex-other', 'v1:x', '{call.started}'),
             (${globex}, 'https://hooks.example.com/globex-off', 'v1:x', '{}')`;
    await db.sql`update public.webhook_endpoints set enabled = false where url = 'https://hooks.example.com/globex-off'`;
    try {
      // Each statement: two calls of each tenant, globex's written (and listed) first.
      const calls: string[] = [];
      for (const n of [1, 2]) {
        for (const [tenant, k] of [[globex, 'a'], [globex, 'b'], [acme, 'a'], [acme, 'b']]) calls.push(await providerCall(tenant, `pc-table-across-${n}${k}`));
      }
      const tenantOf = (i: number) => (i % 4 < 2 ? globex : acme);
      const [{ last }] = await db.sql`select coalesce(max(id), 0) as last from private.webhook_events`;
      for (const who of ['service_role', users.super] as const) {
        const ids = who === 'service_role' ? calls.slice(0, 4) : calls.slice(4);
        const deleted = await db.sql.begin(async (tx) => {
          const [role, claims] = who === 'service_role' ? ['service_role', { role: who }] : ['authenticated', supabaseClaims(who)];
          await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)`;
          return (await tx`delete from public.voice_calls where id in ${tx(ids)} returning id`).length;
        });
        expect(deleted).toBe(ids.length);
      }
      const receivers = async (callId: string) =>
        (await db.sql`select e.tenant_id, w.url from private.webhook_events e
          join private.webhook_deliveries d on d.event_id = e.id join public.webhook_endpoints w on w.id = d.endpoint_id
          where e.type = 'call.deleted' and e.ordering_key = ${'call:' + callId} order by w.url`).map((r) => [r.tenant_id, r.url]);
      for (const [i, id] of calls.entries()) {
        expect(await receivers(id)).toEqual(
          tenantOf(i) === acme
            ? [[acme, 'https://hooks.example.com/calls']]
            : [[globex, 'https://hooks.example.com/calls'], [globex, 'https://hooks.example.com/globex-deletes']],
        );
      }
      // Each statement's events in (tenant, id) order.
      const order = (await db.sql`select e.tenant_id, e.payload -> 'data' ->> 'id' as call from private.webhook_events e
        where e.id > ${last} and e.type = 'call.deleted' order by e.id`).map((r) => `${r.tenant_id}/${r.call}`);
      const byStatement = [calls.slice(0, 4), calls.slice(4)].flatMap((ids) => ids.map((id, i) => `${tenantOf(i)}/${id}`).sort());
      expect(order).toEqual(byStatement);
    } finally {
      await db.sql`delete from public.webhook_endpoints where url like 'https://hooks.example.com/globex-%'`;
    }
  });

  it('a tenant with 250 receivers: one delete tells every one of them in its transaction; a plan without webhooks tells none', async () => {
    await db.sql`update public.tenants set plan = 'enterprise' where id = ${globex}`;
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      select ${globex}, 'https://hooks.example.com/many/' || g, 'v1:x', '{}' from generate_series(2, 250) g`;
    try {
      const id = await providerCall(globex, 'pc-table-many-receivers');
      expect(await deleteThroughTable([id], 'service_role')).toEqual([id]);
      expect(await eventsOf(globex, id)).toEqual([['call.deleted', { id }]]);
      expect((await db.sql`select count(*)::int as n from private.webhook_deliveries d join private.webhook_events e on e.id = d.event_id
        where e.ordering_key = ${'call:' + id}`)[0].n).toBe(250);
      // The plan loses outbound webhooks: nothing is written for its receivers.
      await db.sql`update private.plans set features = features || '{"outbound_webhooks": false}' where id = 'enterprise'`;
      try {
        const muted = await providerCall(globex, 'pc-table-muted');
        expect(await deleteThroughTable([muted], 'service_role')).toEqual([muted]);
        expect(await eventsOf(globex, muted)).toEqual([]);
      } finally {
        await db.sql`update private.plans set features = features || '{"outbound_webhooks": true}' where id = 'enterprise'`;
      }
    } finally {
      await db.sql`delete from public.webhook_endpoints where tenant_id = ${globex} and url like 'https://hooks.example.com/many/%'`;
      await db.sql`update public.tenants set plan = 'pro' where id = ${globex}`;
    }
  });

  it("a receiver gets the deleted call's call.deleted, signed, and nothing of the call's earlier events still queued", async () => {
    const received: string[] = [];
    let secret = '';
    const server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const event = new StandardWebhook(secret).verify(Buffer.concat(chunks).toString('utf8'), req.headers as Record<string, string>) as {
        type: string;
        data: { id: string };
      };
      received.push(`${event.type}:${event.data.id}`);
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    await db.sql`update public.webhook_endpoints set enabled = false where tenant_id = ${acme}`;
    let endpoint = '';
    try {
      const reg = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, {
        token: adminToken,
        body: { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, event_types: ['call.started', 'call.ended', 'call.deleted'] },
      });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      [secret, endpoint] = [reg.body.secret, reg.body.id];
      const id = await providerCall(acme, 'pc-table-delivered');
      expect(await deleteThroughTable([id])).toEqual([id]);
      // The receiver's queue alone: call.started's and call.ended's jobs, then call.deleted's.
      await db.sql`delete from private.jobs where task = 'deliver-webhook' and queue not like ${'webhook:' + endpoint + ':%'}`;
      expect((await db.sql`select count(*)::int as n from private.jobs where queue = ${`webhook:${endpoint}:call:${id}`}`)[0].n).toBe(3);
      const report = await runJobs({ tasks: ['deliver-webhook'] });
      expect(received).toEqual([`call.deleted:${id}`]);
      expect(report.tasks['deliver-webhook']).toMatchObject({ completed: 3, dead: 0 });
      const [delivery] = await db.sql`select d.status from private.webhook_deliveries d join private.webhook_events e on e.id = d.event_id
        where d.endpoint_id = ${endpoint} and e.ordering_key = ${'call:' + id}`;
      expect(delivery.status).toBe('delivered');
    } finally {
      if (endpoint) await db.sql`delete from public.webhook_endpoints where id = ${endpoint}`;
      await db.sql`update public.webhook_endpoints set enabled = true where tenant_id = ${acme}`;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("a platform admin hard-deleting a tenant with a ringing call is not refused", async () => {
    const doomed = '10000000-0000-4000-8000-0000000000d2';
    await db.sql`insert into public.tenants (id, name, slug, plan) values (${doomed}, 'Doomed', 'doomed-table-deletes', 'pro')`;
    AGENTS[doomed] = '75000000-0000-4000-8000-0000000000d2';
    await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
      values (${doomed}, ${AGENTS[doomed]}, 'Desk', '+14155554023', 'v', ${db.sql.json(LLM)})`;
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${doomed}, 'https://hooks.example.com/doomed', 'v1:x', '{}')`;
    await providerCall(doomed, 'pc-table-doomed', { open: true, answered: false });
    const gone = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(users.super))}, true)`;
      return await tx`delete from public.tenants where id = ${doomed} returning id`;
    });
    expect(gone.length).toBe(1);
    const [left] = await db.sql`select
        (select count(*)::int from public.voice_calls where tenant_id = ${doomed}) as calls,
        (select count(*)::int from private.webhook_events where tenant_id = ${doomed}) as events`;
    expect(left).toEqual({ calls: 0, events: 0 });
  });
});
