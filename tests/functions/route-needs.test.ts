// Every route declares what it needs on itself (createRoute({ middleware: [needs.…] }),
// shared/auth/needs.ts); nothing is guarded app-wide, so a route that forgot would be
// open. Every operation in every function's OpenAPI document is called without
// credentials, with input that would otherwise be a 422: each is a 401 in the common
// error shape (authentication comes before validation), machine routes refuse a
// super-admin's user token too, and nothing is written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as jobs } from '../../functions/jobs/app.ts';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { app as webhooksApp } from '../../functions/webhooks/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
const apps: Record<string, App> = { tenants: tenantsApp, tickets: ticketsApp, webhooks: webhooksApp, jobs };
/** Authenticated by their signatures instead (tests/webhooks.test.ts). */
const SIGNED = ['POST /webhooks/clerk', 'POST /webhooks/chatwoot/{tenantId}'];
const isMachineRoute = (fn: string) => fn === 'jobs';

let db: TestDatabase;
let auth: AuthFixture;
let superToken: string;
const routes: { fn: string; method: string; documented: string; url: string }[] = [];

beforeAll(async () => {
  db = await freshDatabase('route_needs');
  auth = await configureAuth(db.url);
  superToken = await supabaseToken(users.super, { tenantId: tenants.acme.id });
  type Param = { name: string; in: string; schema?: { enum?: string[] } };
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json() as {
      paths: Record<string, Record<string, { parameters?: Param[] }>>;
    };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const params = new Map((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => [p.name, p]));
        // Real ids of the seeded tenant where the path names one, so a route that forgot
        // its declaration would reach data.
        const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) =>
          params.get(name)?.schema?.enum?.[0] ?? (name === 'tenantId' ? tenants.acme.id : '30000000-0000-4000-8000-00000000dead'));
        // Input that fails validation: a query limit of 0, an unknown body field.
        routes.push({ fn, method: method.toUpperCase(), documented: `${method.toUpperCase()} ${path}`, url: `${concrete}?limit=0` });
      }
    }
  }
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const auditCount = async () => Number((await db.sql`select count(*) as n from public.audit_logs`)[0].n);

describe('each route declares what it needs', () => {
  it('documents the operations it walks (all four functions)', () => {
    expect([...new Set(routes.map((r) => r.fn))].sort()).toEqual(['jobs', 'tenants', 'tickets', 'webhooks']);
    expect(routes.length).toBeGreaterThan(40);
    for (const signed of SIGNED) expect(routes.map((r) => r.documented)).toContain(signed);
  });

  it('without credentials every route is a 401 before validation, and nothing is written', async () => {
    const before = await auditCount();
    let tried = 0;
    for (const r of routes) {
      if (SIGNED.includes(r.documented)) continue;
      const body = ['POST', 'PUT', 'PATCH'].includes(r.method) ? { not_a_field: true } : undefined;
      const res = await call(apps[r.fn], r.method, r.url, { body });
      expect(res.status, `${r.documented}: ${JSON.stringify(res.body)}`).toBe(401);
      errorCode(res); // the common error shape
      tried++;
    }
    expect(tried).toBe(routes.length - SIGNED.length);
    expect(await auditCount()).toBe(before);
  });

  it("machine routes refuse a super-admin's user token", async () => {
    const machine = routes.filter((r) => isMachineRoute(r.fn));
    // The one job runner is the only machine route (the queue replaced five of them).
    expect(machine.map((r) => r.documented)).toEqual(['POST /jobs/run']);
    for (const r of machine) {
      const res = await call(apps[r.fn], r.method, r.url, { token: superToken });
      expect([res.status, errorCode(res)], r.documented).toEqual([401, 'service_credential_required']);
    }
  });
});
