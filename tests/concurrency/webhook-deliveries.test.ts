// One webhook endpoint's ordered deliveries: 200 concurrent writers on four tickets
// (replies, status changes, message edits) and on the endpoint itself (an admin editing
// it) while three delivery workers run. No deadlock, no 5xx; every event reaches the
// receiver exactly once, each ticket's events in the order their transactions
// committed.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/tickets/app.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { call } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { supabaseToken } from '../helpers/tokens.ts';
import {
  closeConcurrencyDb,
  type ConcurrencyDb,
  concurrencyDatabase,
  deadlocks,
  failures,
  runAll,
  shuffle,
  tally,
  type Writer,
  WRITERS,
} from './harness.ts';

const acme = tenants.acme.id;
let db: ConcurrencyDb;
const tok: Record<string, string> = {};
interface Received {
  id: string;
  type: string;
  data: Record<string, any>;
}
const received: Received[] = [];
let server: http.Server;
let url: string;

beforeAll(async () => {
  db = await concurrencyDatabase('conc_webhooks', { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const event = JSON.parse(body);
      received.push({ id: String(req.headers['webhook-id']), type: event.type, data: event.data });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
});
afterAll(async () => {
  await closeConcurrencyDb(db);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
});

type Kind = 'reply' | 'staff_reply' | 'status' | 'edit' | 'endpoint';

it(`one endpoint, ${WRITERS} concurrent writers and three delivery workers: every event once, in commit order per ticket`, async () => {
  const endpoint = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, { token: tok.admin, body: { url } });
  expect(endpoint.status).toBe(201);
  const ticketIds: string[] = [];
  const firstMessages: string[] = [];
  for (let i = 0; i < 4; i++) {
    const t = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: `Webhook ticket ${i}` } });
    await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${t.body.id}`;
    const m = await call(app, 'POST', `/tickets/${t.body.id}/messages`, { token: tok.user, body: { content: 'first' } });
    ticketIds.push(t.body.id);
    firstMessages.push(m.body.id);
  }
  const [{ mark }] = await db.sql`select coalesce(max(id), 0)::int as mark from public.audit_logs`;
  const deadlocksBefore = await deadlocks(db.sql, db.name);

  const staff = [tok.agent, tok.admin];
  const targets = ['pending', 'escalated', 'open'];
  const writers: Writer<Kind>[] = [
    ...Array.from({ length: 50 }, (_, i): Writer<Kind> => ({
      kind: 'reply',
      run: () => call(app, 'POST', `/tickets/${ticketIds[i % 4]}/messages`, { token: tok.user, body: { content: `customer ${i}` } }),
    })),
    ...Array.from({ length: 50 }, (_, i): Writer<Kind> => ({
      kind: 'staff_reply',
      run: () => call(app, 'POST', `/tickets/${ticketIds[i % 4]}/messages`, { token: staff[i % 2], body: { content: `staff ${i}` } }),
    })),
    ...Array.from({ length: 60 }, (_, i): Writer<Kind> => ({
      kind: 'status',
      run: () => call(app, 'POST', `/tickets/${ticketIds[i % 4]}/status`, { token: staff[i % 2], body: { status: targets[i % 3] } }),
    })),
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'edit',
      run: () =>
        call(app, 'PATCH', `/tickets/${ticketIds[i % 4]}/messages/${firstMessages[i % 4]}`, { token: tok.user, body: { content: `edit ${i}` } }),
    })),
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'endpoint',
      run: () =>
        call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${endpoint.body.id}`, { token: tok.admin, body: { description: `edit ${i}` } }),
    })),
  ];
  expect(writers).toHaveLength(WRITERS);

  // Three workers deliver while the writers write, then until nothing is left.
  let writing = true;
  const worker = async (n: number) => {
    for (let round = 0; round < 500; round++) {
      const r = await runJobs({ tasks: ['deliver-webhook'], workerId: `worker-${n}`, batch: 10, deps: { webhookTimeoutMs: 5_000 }, budgetMs: 2_000 });
      if (!writing && r.claimed === 0) return;
      if (r.claimed === 0) await new Promise((res) => setTimeout(res, 10));
    }
  };
  const workers = [0, 1, 2].map(worker);
  const outcomes = await runAll(shuffle(writers), db.sql);
  // They contended: the pool's connections at work at once, and writers queued on locks.
  expect(outcomes.overlap.busy).toBeGreaterThan(1);
  expect(outcomes.overlap.lockWaiters).toBeGreaterThan(1);
  writing = false;
  await Promise.all(workers);
  await worker(3); // anything a worker's last empty claim raced with
  const deadlocksAfter = await deadlocks(db.sql, db.name);
  const counts = tally(outcomes);
  console.info(`[concurrency] webhook endpoint: ${JSON.stringify(counts)}, deliveries ${received.length}, deadlocks ${deadlocksAfter - deadlocksBefore}`);

  expect({ deadlocks: deadlocksAfter - deadlocksBefore, ...failures(outcomes) }).toEqual({ deadlocks: 0, serverErrors: 0, retry: 0 });
  expect(counts).toEqual({ reply: { 201: 50 }, staff_reply: { 201: 50 }, status: { 200: 60 }, edit: { 200: 20 }, endpoint: { 200: 20 } });

  // Every event delivered, exactly once, and nothing else.
  const events = await db.sql`
    select ev.id::int, ev.message_id, ev.ordering_key, d.status from private.webhook_events ev
    join private.webhook_deliveries d on d.event_id = ev.id where d.endpoint_id = ${endpoint.body.id} order by ev.id`;
  expect(events.every((e) => e.status === 'delivered')).toBe(true);
  expect(received.map((r) => r.id).sort()).toEqual(events.map((e) => e.message_id).sort());
  expect(new Set(received.map((r) => r.id)).size).toBe(received.length);

  // Per ticket: arrival order is event order, and event order is commit order — the
  // messages in the order their ticket's audit rows were written, the status changes in
  // timeline order.
  const eventId = new Map(events.map((e) => [e.message_id, e.id]));
  for (const ticketId of ticketIds) {
    const arrivals = received.filter((r) => (r.type.startsWith('ticket.') ? r.data.id : r.data.ticket_id) === ticketId);
    const ids = arrivals.map((r) => eventId.get(r.id)!);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    const auditedMessages = (await db.sql`
      select record_key ->> 'id' as message from public.audit_logs
      where table_name = 'ticket_messages' and action = 'INSERT' and new_data ->> 'ticket_id' = ${ticketId} order by id`)
      .map((r) => r.message);
    expect(arrivals.filter((r) => r.type === 'message.created').map((r) => r.data.id)).toEqual(auditedMessages);
    const timeline = (await db.sql`
      select data ->> 'to' as status from public.ticket_events where ticket_id = ${ticketId} and type = 'status_changed' order by id`)
      .map((r) => r.status);
    expect(arrivals.filter((r) => r.type === 'ticket.status_changed').map((r) => r.data.status)).toEqual(timeline);
    expect(arrivals.filter((r) => r.type === 'message.updated')).toHaveLength(5);
  }

  // The endpoint row: every admin edit audited once, no failures counted.
  const [ep] = await db.sql`select enabled, consecutive_failures, description from public.webhook_endpoints where id = ${endpoint.body.id}`;
  expect(ep).toMatchObject({ enabled: true, consecutive_failures: 0 });
  const endpointAudit = await db.sql`
    select new_data ->> 'description' as description from public.audit_logs
    where id > ${mark} and table_name = 'webhook_endpoints' and action = 'UPDATE' order by id`;
  expect(endpointAudit).toHaveLength(20);
  expect(endpointAudit.at(-1)!.description).toBe(ep.description);
}, 60_000);
