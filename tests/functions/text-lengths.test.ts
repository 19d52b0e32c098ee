// Text lengths are counted in characters on every operation, as the documents (JSON
// Schema's minLength/maxLength) and the columns' checks (char_length) count them: an emoji
// is one character, two UTF-16 units. zod 4.6's .min/.max count characters; a bound
// written by hand with `.length` (as the customer import's were, fixed with this suite)
// counts units, refusing a name of emoji at half its limit. Generated from the five
// OpenAPI documents: every string with a length bound in a JSON body or a query, so a new
// field is covered.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app as tenants } from '../../functions/tenants/app.ts';
import { app as tickets } from '../../functions/tickets/app.ts';
import { app as voice } from '../../functions/voice/app.ts';
import { closeDb } from '../../shared/db.ts';
import { maxBodyBytes } from '../../shared/limits.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { functionApps as apps, operationsOf } from '../helpers/openapi.ts';
import { tenants as seeded, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

/** Two UTF-16 units, one character, four bytes of UTF-8. */
const EMOJI = '😀';

let db: TestDatabase;
let auth: AuthFixture;
let person: string;
let service: string;

beforeAll(async () => {
  db = await freshDatabase('text_lengths');
  auth = await configureAuth(db.url);
  person = await supabaseToken(users.super, { tenantId: seeded.acme.id });
  service = await apiKey('service_role', TEST_JWT_SECRET);
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

type Schema = {
  $ref?: string;
  type?: string | string[];
  properties?: Record<string, Schema>;
  items?: Schema;
  allOf?: Schema[];
  anyOf?: Schema[];
  oneOf?: Schema[];
  const?: unknown;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  enum?: unknown[];
};
/** Values tried against a union member's patterned property (a rule condition's field). */
const PATTERNED = ['status', 'probe'];

/** A bounded free-text string at a path in a body (an array's item at index 0), with
 *  the values a union member it is in needs beside it (its discriminator). */
type Bounded = { path: (string | number)[]; min: number; max: number; fixed: Fixed[] };
type Fixed = { path: (string | number)[]; value: unknown };

/** The free-text strings with a length bound: where a format, an enum or a pattern
 *  refuses emoji, they say nothing about the count. */
function boundedStrings(s: Schema, components: Record<string, Schema>, path: (string | number)[] = []): Bounded[] {
  if (s.$ref) return boundedStrings(components[s.$ref.split('/').pop()!], components, path);
  const found: Bounded[] = [];
  if ([s.type].flat().includes('string') && s.maxLength !== undefined && !s.format && !s.enum) {
    if (s.pattern && !new RegExp(s.pattern, 'u').test(EMOJI)) return [];
    found.push({ path, min: s.minLength ?? 0, max: s.maxLength, fixed: [] });
  }
  for (const [k, v] of Object.entries(s.properties ?? {})) found.push(...boundedStrings(v, components, [...path, k]));
  if (s.items) found.push(...boundedStrings(s.items, components, [...path, 0]));
  for (const part of s.allOf ?? []) found.push(...boundedStrings(part, components, path));
  // Each member of a union (a macro's or a rule's actions), with its single-valued
  // properties set, so the member is the one the value is checked against.
  for (const member of [...(s.anyOf ?? []), ...(s.oneOf ?? [])]) {
    const m = member.$ref ? components[member.$ref.split('/').pop()!] : member;
    const fixed = Object.entries(m.properties ?? {}).flatMap(([k, v]) => {
      const value = 'const' in v ? v.const : v.enum ? v.enum[0] : v.pattern ? PATTERNED.find((x) => new RegExp(v.pattern!).test(x)) : undefined;
      return value === undefined ? [] : [{ path: [...path, k], value }];
    });
    for (const b of boundedStrings(m, components, path)) found.push({ ...b, fixed: [...fixed, ...b.fixed] });
  }
  return found;
}

/** A body holding only `value` at `path`, and the fixed values its union members need. */
function bodyWith(b: Bounded, value: string): unknown {
  let body: unknown;
  for (const { path, value: v } of [...b.fixed, { path: b.path, value }]) body = placed(body, path, v);
  return body;
}
function placed(into: unknown, path: (string | number)[], value: unknown): unknown {
  if (!path.length) return value;
  const [head, ...rest] = path;
  if (typeof head === 'number') {
    const list = Array.isArray(into) ? [...into] : [];
    list[head] = placed(list[head], rest, value);
    return list;
  }
  const obj = into && typeof into === 'object' ? { ...into as Record<string, unknown> } : {};
  obj[head] = placed(obj[head], rest, value);
  return obj;
}

it('counts characters, not UTF-16 units, on every bounded text of every body and query', async () => {
  const checked: string[] = [];
  const tooLongForTheBody: string[] = [];
  for (const { fn, app, path, method, op } of await operationsOf(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json();
    const components = doc.components?.schemas ?? {};
    // The caller's own tenant (a stranger's is a 404 before the body is read); other ids
    // are nobody's, answered after the body is checked.
    // A parameter from a list takes its first value (a bad one is refused before the body).
    const concrete = path.replace(/\{([^}]+)\}/g, (_, name: string) => {
      if (name === 'tenantId') return seeded.acme.id;
      const listed = (op.parameters ?? []).find((p) => p.in === 'path' && p.name === name)?.schema as Schema;
      return String(listed?.enum?.[0] ?? '00000000-0000-4000-8000-000000000000');
    });
    const token = JSON.stringify(op.security ?? []).includes('service') ? service : person;
    /** The length problems the answer names at `field` (too_small, too_big), and its
     *  status. Other problems are the value's (an emoji is no cursor) or other fields'. */
    const problemsAt = async (field: string, send: { body?: unknown; query?: string }) => {
      const r = await call(app, method.toUpperCase(), send.query ? `${concrete}?${send.query}` : concrete, {
        token,
        ...(send.body !== undefined ? { body: send.body } : method === 'get' || method === 'delete' ? {} : { body: {} }),
      });
      const fields: { field: string; code?: string }[] = r.status === 422 ? r.body.error.details?.fields ?? [] : [];
      const codes = fields.filter((f) => f.field === field).map((f) => f.code);
      return { status: r.status, codes: codes.filter((c) => c === 'too_small' || c === 'too_big') };
    };

    const body = (op.requestBody as { content?: Record<string, { schema: Schema }> })?.content?.['application/json'];
    for (const bounded of body ? boundedStrings(body.schema, components) : []) {
      const { path: at, min, max } = bounded;
      const field = at.join('.');
      const name = `${method} ${path} ${field}`;
      if ((max + 1) * 4 > maxBodyBytes()) {
        tooLongForTheBody.push(name);
        continue;
      }
      const atMost = await problemsAt(field, { body: bodyWith(bounded, EMOJI.repeat(max)) });
      expect(atMost.codes, `${name}: ${max} emoji`).toEqual([]);
      const over = await problemsAt(field, { body: bodyWith(bounded, EMOJI.repeat(max + 1)) });
      expect([over.status, over.codes], `${name}: ${max + 1} emoji`).toEqual([422, ['too_big']]);
      if (min > 1) {
        const under = await problemsAt(field, { body: bodyWith(bounded, EMOJI.repeat(min - 1)) });
        expect([under.status, under.codes], `${name}: ${min - 1} emoji`).toEqual([422, ['too_small']]);
        expect((await problemsAt(field, { body: bodyWith(bounded, EMOJI.repeat(min)) })).codes, `${name}: ${min} emoji`)
          .toEqual([]);
      }
      checked.push(name);
    }

    for (const p of (op.parameters ?? []).filter((p) => p.in === 'query')) {
      const s = p.schema as Schema | undefined;
      const max = s && boundedStrings(s, components).find((b) => b.path.length === 0)?.max;
      if (max === undefined) continue;
      const name = `${method} ${path} ?${p.name}`;
      const query = (n: number) => `${p.name}=${encodeURIComponent(EMOJI.repeat(n))}`;
      expect((await problemsAt(p.name, { query: query(max) })).codes, `${name}: ${max} emoji`).toEqual([]);
      const over = await problemsAt(p.name, { query: query(max + 1) });
      expect([over.status, over.codes], `${name}: ${max + 1} emoji`).toEqual([422, ['too_big']]);
      checked.push(name);
    }
  }
  // The documents have such fields, in bodies, nested, in arrays and in queries.
  expect(checked).toEqual(expect.arrayContaining([
    'post /tickets title',
    'post /voice/agents name',
    'post /voice/agents llm_config.model',
    'get /voice/calls ?q',
    // In unions: a macro's and a rule's actions, a rule's conditions, a query of one or many.
    'post /tickets/macros actions.0.content',
    'post /tickets/automation-rules conditions.all.0.value',
    'get /tickets ?custom_field',
  ]));
  expect(checked.length).toBeGreaterThan(50);
  // A knowledge document's content (1,000,000 characters) passes the body limit before
  // its bound when written in emoji: the 413 the document declares answers.
  expect(tooLongForTheBody).toEqual([
    'post /voice/knowledge-bases/{kbId}/documents content',
    'patch /voice/knowledge-bases/{kbId}/documents/{id} content',
  ]);
});

it('stores a name and a title of emoji at their full length', async () => {
  const title = EMOJI.repeat(200);
  const created = await call(tickets, 'POST', '/tickets', { token: person, body: { title } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  const [row] = await db.sql`select char_length(title) as n from public.tickets where id = ${created.body.id}`;
  expect(row.n).toBe(200);
  // Three emoji are three characters: under the title's minimum of five, refused by name
  // before the column's check (a 422 naming title, with zod's code).
  const short = await call(tickets, 'POST', '/tickets', { token: person, body: { title: EMOJI.repeat(3) } });
  expect([short.status, short.body.error.details.fields]).toEqual([
    422,
    [expect.objectContaining({ field: 'title', code: 'too_small' })],
  ]);
});
