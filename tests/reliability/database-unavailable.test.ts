// Every way the database can be unreachable, for each of the four functions (they
// share createApp's onError and shared/errors.ts): the request answers 503
// database_unavailable with Retry-After in the common error shape, never a 500, and
// the process goes on. The endpoints stand in for Postgres on loopback: nothing
// listening (refused), a listener that never answers (connect timeout), one that hangs
// up during the handshake (connection closed), and one that answers the startup with a
// FATAL error of each connection class (57P01 admin_shutdown, 57P02 crash_shutdown,
// 57P03 cannot_connect_now, 08006 connection_failure, 53300 too_many_connections).
// A backend terminated inside a request transaction (pg_terminate_backend, during a
// statement and between two) is tried on a real database.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as jobs } from '../../functions/jobs/app.ts';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as tickets } from '../../functions/tickets/app.ts';
import { app as webhooks } from '../../functions/webhooks/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { freePort } from '../../scripts/stack.mjs';
import { asUser, closeDb, connectionFailure, DatabaseUnavailableError } from '../../shared/db.ts';
import { toApiError } from '../../shared/errors.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

/** A Postgres protocol ErrorResponse: severity FATAL, the SQLSTATE, a message. */
function fatal(code: string, message: string): Buffer {
  const fields = Buffer.from(`SFATAL\0VFATAL\0C${code}\0M${message}\0\0`, 'latin1');
  const head = Buffer.alloc(5);
  head.write('E', 0, 'latin1');
  head.writeUInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

type Behaviour = 'silent' | 'hangup' | { fatal: string };

async function fakePostgres(behaviour: Behaviour): Promise<{ url: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
    socket.once('data', () => {
      if (behaviour === 'hangup') socket.destroy();
      else if (behaviour !== 'silent') socket.end(fatal(behaviour.fatal, 'the database is not available (stand-in)'));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `postgresql://postgres:postgres@127.0.0.1:${port}/postgres`,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(() => r()));
    },
  };
}

let auth: AuthFixture;
let userToken: string;
let serviceKey: string;

beforeAll(async () => {
  auth = await configureAuth('postgresql://postgres:postgres@127.0.0.1:1/unused', { DB_CONNECT_TIMEOUT_MS: '300' });
  userToken = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
  serviceKey = await apiKey('service_role', TEST_JWT_SECRET);
});
afterAll(async () => {
  await closeDb();
  await auth.close();
});

type App = { request: (path: string, init?: RequestInit) => Response | Promise<Response> };
const routes: { fn: string; app: App; method: string; path: string; machine?: boolean }[] = [
  { fn: 'tickets', app: tickets, method: 'GET', path: '/tickets' },
  { fn: 'tenants', app: tenantsApp, method: 'GET', path: `/tenants/${tenants.acme.id}/teams` },
  // The Chatwoot path authenticates against the database first (its secret or token).
  { fn: 'webhooks', app: webhooks, method: 'POST', path: `/webhooks/chatwoot/${tenants.acme.id}?token=x` },
  { fn: 'jobs', app: jobs, method: 'POST', path: '/jobs/run', machine: true },
];

async function callAll() {
  const out: Record<string, { status: number; retryAfter: string | null; body: { error?: { code?: string; message?: string } } }> = {};
  for (const r of routes) {
    const res = await r.app.request(r.path, {
      method: r.method,
      headers: { authorization: `Bearer ${r.machine ? serviceKey : userToken}`, 'content-type': 'application/json' },
      body: r.method === 'POST' ? '{}' : undefined,
    });
    out[r.fn] = { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.json() };
  }
  return out;
}

const unavailable = { status: 503, retryAfter: expect.stringMatching(/^\d+$/), body: { error: { code: 'database_unavailable', message: expect.any(String) } } };
const everyFunction = Object.fromEntries(routes.map((r) => [r.fn, unavailable]));

const endpoints: [string, () => Promise<{ url: string; close(): Promise<void> }>][] = [
  ['refused connect', async () => ({ url: `postgresql://postgres:postgres@127.0.0.1:${await freePort()}/postgres`, close: async () => {} })],
  ['connect timeout', () => fakePostgres('silent')],
  ['connection closed during the handshake', () => fakePostgres('hangup')],
  ...['57P01', '57P02', '57P03', '08006', '53300'].map((code): [string, () => Promise<{ url: string; close(): Promise<void> }>] => [
    `FATAL ${code} at connect`,
    () => fakePostgres({ fatal: code }),
  ]),
];

describe.each(endpoints)('%s', (_name, start) => {
  it('answers 503 database_unavailable with Retry-After in all four functions', async () => {
    const endpoint = await start();
    try {
      await closeDb();
      process.env.SUPABASE_DB_URL = endpoint.url;
      expect(await callAll()).toEqual(everyFunction);
    } finally {
      await closeDb();
      await endpoint.close();
    }
  });
});

it('classifies connection failures and nothing else as database_unavailable', () => {
  for (const code of ['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'CONNECTION_CLOSED', 'CONNECTION_ENDED', 'CONNECTION_DESTROYED', 'CONNECT_TIMEOUT']) {
    expect(toApiError(Object.assign(new Error('x'), { code })).code, code).toBe('database_unavailable');
  }
  for (const code of ['57P01', '57P02', '57P03', '08000', '08003', '08006', '08P01', '53300']) {
    expect(toApiError(Object.assign(new Error('x'), { name: 'PostgresError', code })).code, code).toBe('database_unavailable');
  }
  // Supabase's pooler (Supavisor) refusing a connection: XX000 with its reason in parentheses.
  for (const message of ['(EMAXCONN) max client connections reached, limit: 200', '(ECHECKOUTTIMEOUT) unable to check out connection from the pool due to timeout', '(EDBHANDLEREXITED) connection to database closed', '(ECIRCUITBREAKER) Unable to establish connection to upstream database', '(EMAXCONNSESSION) max clients reached in session mode - max clients are limited to pool_size: 15', 'Max client connections reached', 'MaxClientsInSessionMode: max clients reached - in Session mode max clients are limited to pool_size']) {
    expect(toApiError(Object.assign(new Error(message), { name: 'PostgresError', code: 'XX000' })).code, message).toBe('database_unavailable');
  }
  // A server's own XX000 (an internal error) is not an outage, nor is the pooler's refusal
  // of a configuration a retry cannot fix.
  for (const message of ['could not open relation', '(ENOTFOUND) tenant/user postgres.x not found', '(EADDRNOTALLOWED) address not in allow list']) {
    expect(toApiError(Object.assign(new Error(message), { name: 'PostgresError', code: 'XX000' })).code, message).toBe('internal_error');
  }
  expect(toApiError(new Error('Connection terminated unexpectedly')).code).toBe('database_unavailable');
  expect(toApiError(new Error('timeout exceeded when trying to connect')).code).toBe('database_unavailable');
  // Not outages: a constraint, a cancelled statement, a plain bug.
  expect(toApiError(Object.assign(new Error('dup'), { name: 'PostgresError', code: '23505' })).status).toBe(409);
  // A statement timeout is the database busy, not gone: 503 with Retry-After like the others.
  const late = toApiError(Object.assign(new Error('late'), { name: 'PostgresError', code: '57014' }));
  expect([late.status, late.code, late.headers]).toEqual([503, 'timeout', { 'Retry-After': '1' }]);
  // So is a lock waited for past lock_timeout.
  const locked = toApiError(Object.assign(new Error('lock'), { name: 'PostgresError', code: '55P03' }));
  expect([locked.status, locked.code]).toEqual([503, 'timeout']);
  expect(toApiError(new TypeError('x is undefined')).code).toBe('internal_error');
  expect(connectionFailure(new Error('Internal error'))).toBeUndefined();
});

describe('a backend terminated inside a request transaction', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    await closeDb();
    db = await freshDatabase('db_unavailable');
    process.env.SUPABASE_DB_URL = db.url;
    process.env.DB_POOL_MAX = '1';
  });
  afterAll(async () => {
    await closeDb();
    delete process.env.DB_POOL_MAX;
    await db?.close();
  });

  const claims = supabaseClaims(users.acmeAdmin, tenants.acme.id);
  const terminate = (pid: number) => db.sql`select pg_terminate_backend(${pid})`;

  it('during a statement: DatabaseUnavailableError, nothing committed, the next request succeeds', async () => {
    const attempt = asUser(claims, async (tx) => {
      await tx`insert into public.teams (tenant_id, name, department) values (${tenants.acme.id}, 'Terminated mid-statement', 'sales')`;
      const [{ pid }] = await tx`select pg_backend_pid() as pid`;
      setTimeout(() => terminate(pid).then(() => {}), 50); // postgres.js queries run when awaited
      await tx`select pg_sleep(5)`;
    });
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    const [after] = await asUser(claims, (tx) => tx`select count(*)::int as n from public.teams where name = 'Terminated mid-statement'`);
    expect(after.n).toBe(0);
  });

  it('a statement stuck behind a lock gives up after DB_LOCK_TIMEOUT_MS: 503 timeout, the connection back in the pool', async () => {
    const [{ timeout }] = await asUser(claims, (tx) => tx`select current_setting('lock_timeout') as timeout`);
    expect(timeout).toBe('30s');
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department)
      values (${tenants.acme.id}, 'Locked team', 'sales') returning id`;
    const holder = await db.sql.reserve();
    process.env.DB_LOCK_TIMEOUT_MS = '300';
    try {
      await holder`begin`;
      await holder`select 1 from public.teams where id = ${team.id} for update`;
      const res = await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/teams/${team.id}`, {
        token: await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id }),
        body: { name: 'Renamed while locked' },
      });
      expect([res.status, errorCode(res)]).toEqual([503, 'timeout']);
    } finally {
      delete process.env.DB_LOCK_TIMEOUT_MS;
      await holder`rollback`;
      holder.release();
    }
    // The pool's one connection serves the next request.
    const [{ name }] = await asUser(claims, (tx) => tx`select name from public.teams where id = ${team.id}`);
    expect(name).toBe('Locked team');
  });

  it('between two statements: the next statement fails without reaching a new connection', async () => {
    const attempt = asUser(claims, async (tx) => {
      const [{ pid }] = await tx`select pg_backend_pid() as pid`;
      await terminate(pid);
      await new Promise((r) => setTimeout(r, 100));
      // Were this sent on a fresh connection it would run outside the transaction,
      // without the role and claims: it must not run at all.
      await tx`insert into public.teams (tenant_id, name, department) values (${tenants.acme.id}, 'After termination', 'sales')`;
    });
    await expect(attempt).rejects.toBeInstanceOf(DatabaseUnavailableError);
    const [after] = await db.sql`select count(*)::int as n from public.teams where name = 'After termination'`;
    expect(after.n).toBe(0);
    const [{ role }] = await asUser(claims, (tx) => tx`select current_user as role`);
    expect(role).toBe('authenticated');
  });
});
