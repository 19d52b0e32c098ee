// Every integer query parameter of every function's OpenAPI document takes decimal
// digits only. z.coerce.number read an empty value as 0 (`?after=` on a knowledge
// document's chunks skipped chunk 0), and `0x10`, `1e1`, ` 1` as numbers; each is now a
// 422 naming the parameter. Generated from the documents, so a new parameter is covered.
// And a time in a query whose `+` offset was left unencoded (a space once decoded) is
// read as the + it was.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenants } from '../../functions/tenants/app.ts';
import { app as tickets } from '../../functions/tickets/app.ts';
import { app as voice } from '../../functions/voice/app.ts';
import { closeDb } from '../../shared/db.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { functionApps as apps, operationsOf, type Parameter } from '../helpers/openapi.ts';
import { tenants as seeded, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

const BAD = ['', '0x10', '1e1', ' 1', '1.0', '+1'];

let db: TestDatabase;
let auth: AuthFixture;
let person: string;
let service: string;

beforeAll(async () => {
  db = await freshDatabase('query_integers');
  auth = await configureAuth(db.url);
  person = await supabaseToken(users.super, { tenantId: seeded.acme.id });
  service = await apiKey('service_role', TEST_JWT_SECRET);
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const isInteger = (p: Parameter) => [p.schema?.type].flat().includes('integer');

it('refuses an empty, hexadecimal, exponent, padded or signed integer by name, on every operation that takes one', async () => {
  const checked: string[] = [];
  for (const { app, path, method, op } of await operationsOf(apps)) {
    // acme for a tenant (a platform admin naming a tenant that does not exist is a 404
    // before the query is read), an id of nothing for the rest.
    const concrete = path.replace('{tenantId}', seeded.acme.id).replace(/\{[^}]+\}/g, '00000000-0000-4000-8000-000000000000');
    // The machine routes (a service key) and the people's (a super-admin in acme).
    const token = JSON.stringify(op.security ?? []).includes('service') ? service : person;
    for (const p of (op.parameters ?? []).filter((p) => p.in === 'query' && isInteger(p))) {
      for (const bad of BAD) {
        const r = await call(app, method.toUpperCase(), `${concrete}?${p.name}=${encodeURIComponent(bad)}`, {
          token,
          ...(method === 'get' || method === 'delete' ? {} : { body: {} }),
        });
        const fields = (r.body?.error?.details?.fields ?? []).map((f: { field: string }) => f.field);
        expect([r.status, fields.includes(p.name)], `${method} ${path} ?${p.name}=${JSON.stringify(bad)}`)
          .toEqual([422, true]);
      }
      checked.push(`${method} ${path} ${p.name}`);
    }
  }
  // The documents have such parameters (pages' limits, a ticket's number, a chunk ordinal).
  expect(checked).toContain('get /voice/knowledge-bases/{kbId}/documents/{id}/chunks after');
  expect(checked.length).toBeGreaterThan(15);
});

it('still reads decimal digits, a leading zero and -1 where allowed', async () => {
  const [{ id: kb }] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name)
    values (${seeded.acme.id}, 'Menu') returning id`;
  const [{ id: doc }] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
    values (${seeded.acme.id}, ${kb}, 'Menu', 'Soup of the day. Bread on the side.') returning id`;
  const chunks = (after: string) =>
    call(voice, 'GET', `/voice/knowledge-bases/${kb}/documents/${doc}/chunks?after=${after}&limit=010`, { token: person });
  const first = await chunks('-1');
  expect(first.status, JSON.stringify(first.body)).toBe(200);
  expect(first.body.items[0].ordinal).toBe(0);
  expect((await chunks('0')).body.items.map((c: { ordinal: number }) => c.ordinal)).not.toContain(0);
});

it("reads a time's + offset left unencoded in the query as the + it was, on the time filters", async () => {
  const at = '2024-01-01T09:00:00+02:00';
  for (const [app, path] of [
    [voice, '/voice/calls?started_after'],
    [voice, '/voice/calls?started_before'],
    [tickets, '/tickets?created_after'],
    [tickets, '/tickets?updated_before'],
  ] as const) {
    const plain = await call(app, 'GET', `${path}=${at}`, { token: person });
    expect([plain.status, Array.isArray(plain.body.items)], `${path} ${JSON.stringify(plain.body)}`).toEqual([200, true]);
    // A space elsewhere is still no time.
    const odd = await call(app, 'GET', `${path}=${encodeURIComponent('2024-01-01 09:00:00+02:00')}`, { token: person });
    expect(odd.status, path).toBe(422);
  }
});
