// Request ids and the one log line per request (shared/request-log.ts), over every
// operation of every function's OpenAPI document: each answer carries X-Request-Id
// (the caller's own when well-formed), each request writes exactly one line naming
// the route's template, and no line carries a token, an e-mail address or what the
// client put in the path or query.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as jobs } from '../../functions/jobs/app.ts';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { closeDb } from '../../shared/db.ts';
import { captureRequestLog } from '../../shared/request-log.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { functionApps as apps } from '../helpers/openapi.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
type Line = Record<string, string | number | null>;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let db: TestDatabase;
let auth: AuthFixture;
let token: string;
const serviceKey = `sb_secret_${randomBytes(16).toString('hex')}`;
beforeAll(async () => {
  db = await freshDatabase('request_log');
  auth = await configureAuth(db.url, { SUPABASE_SERVICE_ROLE_KEY: serviceKey });
  token = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
});
afterAll(async () => {
  captureRequestLog(null);
  await closeDb();
  await auth.close();
  await db.close();
});

/** Sends one request and returns the response and the lines it wrote. */
async function send(app: App, method: string, path: string, init: RequestInit = {}) {
  const lines: Line[] = [];
  captureRequestLog((l) => lines.push(l));
  try {
    const res = await app.request(path, { method, ...init });
    await res.arrayBuffer();
    return { res, lines };
  } finally {
    captureRequestLog(null);
  }
}

describe('X-Request-Id', () => {
  it('is on every answer: success, client error, unknown route, preflight', async () => {
    const auth = { authorization: `Bearer ${token}` };
    for (
      const [method, path, headers, status] of [
        ['GET', '/tenants/me', auth, 200],
        ['GET', '/tenants/not-a-uuid', auth, 422],
        ['GET', '/tenants/me', {}, 401],
        ['GET', '/tenants/no/such/route/here', auth, 404],
        ['OPTIONS', '/tenants/me', { origin: 'http://localhost:3000', 'access-control-request-method': 'GET' }, 204],
      ] as const
    ) {
      const { res, lines } = await send(tenantsApp, method, path, { headers });
      expect([path, res.status]).toEqual([path, status]);
      expect(res.headers.get('x-request-id'), `${method} ${path}`).toMatch(UUID);
      expect(lines).toHaveLength(1);
      expect(lines[0].request_id).toBe(res.headers.get('x-request-id'));
    }
  });

  it("keeps the caller's well-formed id and replaces a malformed one", async () => {
    const kept = await send(tenantsApp, 'GET', '/tenants/me', {
      headers: { authorization: `Bearer ${token}`, 'x-request-id': 'gw-7f3a9c21:trace/1' },
    });
    expect(kept.res.headers.get('x-request-id')).toBe('gw-7f3a9c21:trace/1');
    expect(kept.lines[0].request_id).toBe('gw-7f3a9c21:trace/1');
    for (const bad of ['short', 'x'.repeat(129), 'has space in it', 'quote"inside-id', 'line\u00e9break-id']) {
      const r = await send(tenantsApp, 'GET', '/tenants/me', { headers: { authorization: `Bearer ${token}`, 'x-request-id': bad } });
      expect(r.res.headers.get('x-request-id'), bad).toMatch(UUID);
    }
  });

  it('is exposed to browsers (CORS), with Retry-After, RateLimit-*, Allow and Idempotent-Replayed', async () => {
    const { res } = await send(tenantsApp, 'GET', '/tenants/me', {
      headers: { authorization: `Bearer ${token}`, origin: 'http://localhost:3000' },
    });
    const exposed = (res.headers.get('access-control-expose-headers') ?? '').toLowerCase().split(/\s*,\s*/);
    // With the headers a client needs to retry and to pace itself.
    expect(exposed).toEqual(expect.arrayContaining([
      'x-request-id', 'retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'allow', 'idempotent-replayed',
    ]));
  });
});

describe('the log line', () => {
  it('names the method, route template, status, tenant and principal of a request', async () => {
    const { res, lines } = await send(tenantsApp, 'GET', `/tenants/${tenants.acme.id}/teams/${teams.acme}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(res.status).toBe(200);
    expect(lines).toEqual([{
      level: 'info',
      msg: 'request',
      fn: 'tenants',
      method: 'GET',
      route: '/tenants/{tenantId}/teams/{teamId}',
      status: 200,
      duration_ms: expect.any(Number),
      tenant_id: tenants.acme.id,
      principal: 'user',
      request_id: res.headers.get('x-request-id'),
    }]);
  });

  it('says machine for the service credential, anonymous for nobody, error for a 5xx', async () => {
    const machine = await send(jobs, 'GET', '/jobs/metrics', { headers: { authorization: `Bearer ${serviceKey}` } });
    expect([machine.res.status, machine.lines[0].principal, machine.lines[0].route]).toEqual([200, 'machine', '/jobs/metrics']);
    const nobody = await send(jobs, 'GET', '/jobs/metrics');
    expect([nobody.res.status, nobody.lines[0].principal, nobody.lines[0].level]).toEqual([401, 'anonymous', 'info']);
    // The database out of reach: a 503, logged as an error, still with its id.
    const url = process.env.SUPABASE_DB_URL;
    await closeDb();
    process.env.SUPABASE_DB_URL = 'postgresql://postgres@127.0.0.1:1/nowhere';
    try {
      const down = await send(tenantsApp, 'GET', '/tenants/me', { headers: { authorization: `Bearer ${token}` } });
      expect([down.res.status, down.lines[0].level, down.lines[0].request_id]).toEqual([
        503,
        'error',
        down.res.headers.get('x-request-id'),
      ]);
    } finally {
      await closeDb();
      process.env.SUPABASE_DB_URL = url;
    }
  });

  it('every operation of every document writes one line with its template, and nothing personal', async () => {
    const secretWords = ['zebra-secret-search', 'mole@evil.test', '14155550123', token, serviceKey];
    let operations = 0;
    for (const [fn, app] of Object.entries(apps)) {
      const doc = (await (await app.request(`/${fn}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
      for (const [template, ops] of Object.entries(doc.paths)) {
        for (const method of Object.keys(ops)) {
          // Real-looking ids, an e-mail and a search word in the path and query: the
          // request may fail (that is not what this tests), its line must not repeat them.
          const url = template.replace(/\{(\w+)\}/g, (_, name: string) =>
            name === 'service' ? 'chatwoot' : name === 'priority' ? 'high' : name === 'provider' ? 'clerk' : tenants.globex.id) +
            '?q=zebra-secret-search&email=mole@evil.test&to=%2B14155550123&from=%2B14155550123&phone=%2B14155550123';
          const { res, lines } = await send(app, method.toUpperCase(), url, {
            headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
            body: method === 'get' ? undefined : JSON.stringify({ email: 'mole@evil.test', phone: '+14155550123' }),
          });
          operations++;
          expect(lines, `${method} ${template}`).toHaveLength(1);
          const [line] = lines;
          expect([`${method} ${template}`, line.route, line.method, line.status]).toEqual([
            `${method} ${template}`,
            template,
            method.toUpperCase(),
            res.status,
          ]);
          const text = JSON.stringify(line);
          for (const word of secretWords) expect(text, `${method} ${template}`).not.toContain(word);
          expect(Object.keys(line).sort()).toEqual(
            ['duration_ms', 'fn', 'level', 'method', 'msg', 'principal', 'request_id', 'route', 'status', 'tenant_id'],
          );
        }
      }
    }
    expect(operations).toBeGreaterThanOrEqual(120);
  });
});
