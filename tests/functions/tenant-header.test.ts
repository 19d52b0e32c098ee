// X-Tenant-Id as the OpenAPI documents declare it (shared/auth/tenant-header.ts): every
// operation that declares the header reads it, and every other operation people call
// ignores it. Generated from the documents of the functions people call: each operation
// is called by acme's user with a token bound to acme and `X-Tenant-Id` naming globex —
// a declaring operation must answer 400 `tenant_mismatch` (the header was read), any
// other must not (it was not). A route whose needs start reading the header, or stop,
// fails here until its declaration follows.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { app as voiceApp } from '../../functions/voice/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
type Operation = { parameters?: { name: string; in: string }[]; security?: Record<string, string[]>[] };
const apps: Record<string, App> = { tenants: tenantsApp, tickets: ticketsApp, voice: voiceApp };
const NOBODYS = '30000000-0000-4000-8000-00000000beef';

let db: TestDatabase;
let auth: AuthFixture;
beforeAll(async () => {
  db = await freshDatabase('tenant_header');
  auth = await configureAuth(db.url);
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

it('every operation people call declares X-Tenant-Id exactly when it reads it', async () => {
  // Role user: writes it may not make are refused, so an operation that ignores the
  // header changes nothing either.
  const token = await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id });
  const declared: string[] = [];
  const wrong: string[] = [];
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json() as { paths: Record<string, Record<string, Operation>> };
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        if (!(op.security ?? []).some((r) => 'bearerAuth' in r)) continue;
        const declares = (op.parameters ?? []).some((p) => p.in === 'header' && p.name.toLowerCase() === 'x-tenant-id');
        const url = path.replace('{tenantId}', tenants.acme.id).replace(/\{\w+\}/g, NOBODYS);
        const r = await call(app, method.toUpperCase(), url, {
          token,
          headers: { 'x-tenant-id': tenants.globex.id },
          body: ['get', 'delete'].includes(method) ? undefined : {},
        });
        const mismatch = r.status === 400 && r.body?.error?.code === 'tenant_mismatch';
        if (declares) declared.push(`${method} ${path}`);
        if (declares !== mismatch) {
          wrong.push(
            `${method.toUpperCase()} ${path}: ${
              declares ? 'declares' : 'does not declare'
            } it, answered ${r.status} ${r.body?.error?.code}`,
          );
        }
      }
    }
  }
  expect(wrong).toEqual([]);
  // The routes without a tenant in their path: the tickets' and the voice CRM's, /me.
  expect(declared).toEqual(expect.arrayContaining(['get /tenants/me', 'get /tickets', 'post /tickets', 'get /voice/calls']));
  expect(declared.length).toBeGreaterThan(60);
});
