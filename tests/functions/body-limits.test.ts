// Bounded request bodies, in-process on every function's Hono app. The routes come
// from each function's own OpenAPI document, so a new POST/PUT/PATCH route is covered
// without a new test: an over-limit body is refused with 413 in the common error shape
// before authentication (even the super-admin's), from Content-Length and while
// streaming, and the database does not change; a body at the limit is not refused.
import { createHmac, randomBytes } from 'node:crypto';
import { Webhook as SvixWebhook } from 'svix';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { encryptJson } from '../../shared/crypto.ts';
import { closeDb } from '../../shared/db.ts';
import { envInt } from '../../shared/env.ts';
import { DEFAULT_MAX_BODY_BYTES, maxBodyBytes } from '../../shared/limits.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { idleInTransaction, stalledBody } from '../helpers/slow-body.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';
import { functionApps as apps } from '../helpers/openapi.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
const LIMIT = DEFAULT_MAX_BODY_BYTES;
const CLERK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
const CW_SECRET = 'chatwoot-webhook-secret-limits';

let db: TestDatabase;
let auth: AuthFixture;
let superToken: string;
const routes: { fn: string; method: string; path: string }[] = [];
const counted = { routes: 0, requests: 0, bytesOffered: 0, bytesPulled: 0 };

beforeAll(async () => {
  db = await freshDatabase('body_limits');
  auth = await configureAuth(db.url, {
    CLERK_WEBHOOK_SECRET: CLERK_SECRET,
    PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  });
  delete process.env.MAX_BODY_BYTES;
  superToken = await supabaseToken(users.super, { tenantId: tenants.acme.id });
  await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted)
    values (${tenants.acme.id}, 'chatwoot', 'active', ${await encryptJson({ webhook_secret: CW_SECRET }, { tenantId: tenants.acme.id, service: 'chatwoot' })})
    on conflict (tenant_id, service) do update set credentials_encrypted = excluded.credentials_encrypted`;

  // Path parameters get ids of real rows of the seeded tenant (and enum values their
  // first value), so that without the limit the super-admin's request would reach data.
  const [ticket] = await db.sql`insert into public.tickets (tenant_id, title, department)
    values (${tenants.acme.id}, 'Limits ticket', 'support') returning id`;
  const [message] = await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, type, content)
    values (${tenants.acme.id}, ${ticket.id}, 'message', 'hello') returning id`;
  const [invitation] = await db.sql`insert into public.invitations (tenant_id, email)
    values (${tenants.acme.id}, 'limits@acme.test') returning id`;
  const ids: Record<string, string> = {
    tenantId: tenants.acme.id, teamId: teams.acme, userId: users.acmeAgent.id, ticketId: ticket.id,
    id: ticket.id, messageId: message.id, invitationId: invitation.id,
  };
  type Param = { name: string; in: string; schema?: { enum?: string[] } };
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json() as {
      paths: Record<string, Record<string, { parameters?: Param[] }>>;
    };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!['post', 'put', 'patch'].includes(method)) continue;
        const params = new Map((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => [p.name, p]));
        const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) =>
          params.get(name)?.schema?.enum?.[0] ?? ids[name] ?? '30000000-0000-4000-8000-00000000dead');
        routes.push({ fn, method: method.toUpperCase(), path: concrete });
      }
    }
  }
});
afterAll(async () => {
  console.log(
    `[body-limits] ${counted.routes} POST/PUT/PATCH routes from the OpenAPI documents; ${counted.requests} requests; ` +
      `${counted.bytesOffered} bytes offered by over-limit streams, ${counted.bytesPulled} pulled`,
  );
  await closeDb();
  await auth.close();
  await db.close();
});

/** Everything the platform stores, as one comparable value. */
async function fingerprint(): Promise<string> {
  const tables = await db.sql`
    select table_schema as s, table_name as t from information_schema.tables
    where table_type = 'BASE TABLE' and table_schema in ('public', 'private', 'audit') order by 1, 2`;
  const parts: string[] = [];
  for (const { s, t } of tables) {
    const [row] = await db.sql.unsafe(`select count(*)::text as n, md5(coalesce(string_agg(x::text, ',' order by x::text), '')) as h from "${s}"."${t}" x`);
    parts.push(`${s}.${t}:${row.n}:${row.h}`);
  }
  return parts.join('|');
}

/** A JSON object of exactly `size` bytes. */
function jsonOfSize(size: number): string {
  const head = '{"name":"';
  const tail = '"}';
  return head + 'a'.repeat(size - head.length - tail.length) + tail;
}

/** A body stream of `total` bytes in 64 KiB chunks that counts what was pulled from it. */
function countingStream(total: number, chunk = 64 * 1024) {
  const state = { pulled: 0 };
  const bytes = new Uint8Array(chunk).fill(0x20);
  const stream = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (state.pulled >= total) return controller.close();
      const n = Math.min(chunk, total - state.pulled);
      state.pulled += n;
      controller.enqueue(bytes.subarray(0, n));
    },
  }, { highWaterMark: 0 });
  return { stream, state };
}

async function send(route: { method: string; path: string }, init: RequestInit & { duplex?: 'half' }) {
  counted.requests++;
  const app = apps[route.path.split('/')[1]];
  const res = await app.request(route.path, { method: route.method, ...init });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : null };
}

describe('the routes under test', () => {
  it('come from the OpenAPI documents and cover every function', () => {
    counted.routes = routes.length;
    expect(new Set(routes.map((r) => r.fn))).toEqual(new Set(Object.keys(apps)));
    expect(routes.length).toBeGreaterThanOrEqual(20);
    expect(routes.some((r) => r.path.startsWith('/webhooks/chatwoot/'))).toBe(true);
  });
});

describe('over the limit: 413 before anything else, nothing written', () => {
  it('by Content-Length, on every POST/PUT/PATCH route, with the super-admin token', async () => {
    const before = await fingerprint();
    const body = jsonOfSize(LIMIT + 1);
    for (const route of routes) {
      const res = await send(route, {
        body,
        headers: {
          authorization: `Bearer ${superToken}`,
          'content-type': 'application/json',
          'content-length': String(LIMIT + 1),
          'idempotency-key': randomBytes(8).toString('hex'),
        },
      });
      expect({ route, res }).toEqual({
        route,
        res: {
          status: 413,
          body: { error: { code: 'payload_too_large', message: expect.any(String), details: { limit: LIMIT } } },
        },
      });
    }
    expect(await fingerprint()).toBe(before);
  });

  it('streamed without Content-Length, on every route: reading stops at the limit', async () => {
    const before = await fingerprint();
    const total = 16 * LIMIT;
    for (const route of routes) {
      const { stream, state } = countingStream(total);
      const res = await send(route, {
        body: stream,
        duplex: 'half',
        headers: { authorization: `Bearer ${superToken}`, 'content-type': 'application/json' },
      });
      expect({ route, status: res.status, code: res.body?.error?.code }).toEqual({ route, status: 413, code: 'payload_too_large' });
      counted.bytesOffered += total;
      counted.bytesPulled += state.pulled;
      // At most one chunk past the limit was taken from the client.
      expect(state.pulled).toBeLessThanOrEqual(LIMIT + 64 * 1024);
    }
    expect(await fingerprint()).toBe(before);
  });

  it('a webhook with a bad token is refused for its size, not read and then answered 401', async () => {
    const { stream, state } = countingStream(256 * 1024 * 1024);
    const res = await send({ method: 'POST', path: `/webhooks/chatwoot/${tenants.acme.id}?token=bad` }, { body: stream, duplex: 'half' });
    expect(res.status).toBe(413);
    expect(state.pulled).toBeLessThanOrEqual(LIMIT + 64 * 1024);
  });
});

describe('at the limit: not refused', () => {
  it('every route answers something other than 413 to an anonymous body of exactly the limit, and writes nothing', async () => {
    const before = await fingerprint();
    const body = jsonOfSize(LIMIT);
    for (const route of routes) {
      const res = await send(route, { body, headers: { 'content-type': 'application/json', 'content-length': String(LIMIT) } });
      // Read, routed and refused for what it is (no credentials, no signature).
      expect({ route, status: res.status }).toEqual({ route, status: expect.toSatisfy((s: number) => s === 401 || s === 400) });
    }
    expect(await fingerprint()).toBe(before);
  });

  it('a team is created from a body of exactly the limit, sent with Content-Length and streamed', async () => {
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
    for (const [i, streamed] of [[1, false], [2, true]] as const) {
      const json = JSON.stringify({ name: `Limit team ${i}`, department: 'support' });
      const body = json + ' '.repeat(LIMIT - json.length);
      const res = await send({ method: 'POST', path: `/tenants/${tenants.acme.id}/teams` }, {
        body: streamed ? new Blob([body]).stream() : body,
        duplex: 'half',
        headers: {
          authorization: `Bearer ${admin}`,
          'content-type': 'application/json',
          ...(streamed ? {} : { 'content-length': String(LIMIT) }),
        },
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ name: `Limit team ${i}` });
    }
  });

  it('signed webhooks of exactly the limit, streamed, verify against the bytes that were read', async () => {
    const event = { event: 'conversation_created', id: 7001, inbox_id: 1, status: 'open', meta: { sender: { name: 'Lim' } } };
    const json = JSON.stringify(event);
    const cwBody = json + ' '.repeat(LIMIT - json.length);
    const ts = Math.floor(Date.now() / 1000);
    const sig = createHmac('sha256', CW_SECRET).update(`${ts}.${cwBody}`).digest('hex');
    const cw = await send({ method: 'POST', path: `/webhooks/chatwoot/${tenants.acme.id}` }, {
      body: new Blob([cwBody]).stream(),
      duplex: 'half',
      headers: { 'x-chatwoot-signature': `sha256=${sig}`, 'x-chatwoot-timestamp': String(ts) },
    });
    expect(cw).toEqual({ status: 200, body: { received: true, outcome: 'applied' } });

    const clerkJson = JSON.stringify({ type: 'unknown.event', data: {} });
    const clerkBody = clerkJson + ' '.repeat(LIMIT - clerkJson.length);
    const id = `msg_${randomBytes(6).toString('hex')}`;
    const at = new Date();
    const clerk = await send({ method: 'POST', path: '/webhooks/clerk' }, {
      body: new Blob([clerkBody]).stream(),
      duplex: 'half',
      headers: {
        'svix-id': id,
        'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
        'svix-signature': new SvixWebhook(CLERK_SECRET).sign(id, at, clerkBody),
      },
    });
    expect(clerk).toEqual({ status: 200, body: { received: true, outcome: 'ignored' } });
  });
});

describe('a body that arrives slowly', () => {
  it('is read before the route opens its transaction: no connection waits idle in transaction for it', async () => {
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
    const json = JSON.stringify({ name: 'Slow team', department: 'support' });
    const slow = stalledBody(json.slice(0, 10), json.slice(10));
    const pending = tenantsApp.request(`/tenants/${tenants.acme.id}/teams`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json', 'content-length': String(json.length) },
      body: slow.stream,
      duplex: 'half',
    } as RequestInit);
    await slow.firstPartRead();
    expect(await idleInTransaction(db.sql)).toBe(0);
    slow.release();
    const res = await pending;
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ name: 'Slow team' });
  });

  it('that breaks off is 400 body_incomplete, not a 500, with or without Content-Length', async () => {
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
    for (const declared of [true, false]) {
      const broken = new ReadableStream<Uint8Array>({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"name": "Cut'));
          controller.error(new Error('connection reset'));
        },
      });
      const res = await tenantsApp.request(`/tenants/${tenants.acme.id}/teams`, {
        method: 'POST',
        headers: {
          authorization: `Bearer ${admin}`,
          'content-type': 'application/json',
          ...(declared ? { 'content-length': '40' } : {}),
        },
        body: broken,
        duplex: 'half',
      } as RequestInit);
      expect([res.status, (await res.json()).error.code], `Content-Length: ${declared}`).toEqual([400, 'body_incomplete']);
    }
  });

  it('is not read at all for a caller whose token is refused: 401 at once, not the 408 of a body waited for', async () => {
    const json = JSON.stringify({ name: 'Never read', department: 'support' });
    const slow = stalledBody(json.slice(0, 10), json.slice(10));
    try {
      const res = await tenantsApp.request(`/tenants/${tenants.acme.id}/teams`, {
        method: 'POST',
        headers: { authorization: 'Bearer not-a-token', 'content-type': 'application/json', 'content-length': String(json.length) },
        body: slow.stream,
        duplex: 'half',
      } as RequestInit);
      expect(res.status).toBe(401);
    } finally {
      slow.release();
    }
  });
});

describe('MAX_BODY_BYTES', () => {
  it('moves the limit, and the 413 names it', async () => {
    process.env.MAX_BODY_BYTES = '2048';
    try {
      const route = { method: 'POST', path: `/tenants/${tenants.acme.id}/teams` };
      const over = await send(route, { body: jsonOfSize(2049), headers: { 'content-type': 'application/json' } });
      expect(over.body).toMatchObject({ error: { code: 'payload_too_large', details: { limit: 2048 } } });
      const under = await send(route, { body: jsonOfSize(2048), headers: { 'content-type': 'application/json' } });
      expect(under.status).toBe(401);
    } finally {
      delete process.env.MAX_BODY_BYTES;
    }
  });

  it('is parsed strictly: anything but a whole number within bounds gives the default, with one log line', () => {
    const log = vi.spyOn(console, 'error').mockImplementation(() => {});
    try {
      for (const bad of ['1e6', '-1', '0', '0x400', '1048576abc', '1.5', '10 MB', '99999999999999999999', '67108865', 'NaN']) {
        process.env.MAX_BODY_BYTES = bad;
        expect({ bad, limit: maxBodyBytes() }).toEqual({ bad, limit: DEFAULT_MAX_BODY_BYTES });
        maxBodyBytes();
      }
      expect(log).toHaveBeenCalledTimes(10);
      expect(String(log.mock.calls[0][0])).toMatch(/MAX_BODY_BYTES="1e6" is not a whole number .*using the default 1048576/);
      process.env.MAX_BODY_BYTES = ' 4096 ';
      expect(maxBodyBytes()).toBe(4096);
      process.env.MAX_BODY_BYTES = '67108864';
      expect(maxBodyBytes()).toBe(67108864);
      delete process.env.MAX_BODY_BYTES;
      expect(maxBodyBytes()).toBe(DEFAULT_MAX_BODY_BYTES);
      expect(envInt('SOME_UNSET_LIMIT_FOR_TEST', 7, 1, 10)).toBe(7);
    } finally {
      log.mockRestore();
      delete process.env.MAX_BODY_BYTES;
    }
  });
});
