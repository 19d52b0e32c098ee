// The generated cross-tenant suite on the functions' path (the twin of attack-tables and
// attack-functions on the direct path). Nothing here lists a route; every people's
// operation of every function's OpenAPI document is attacked by each of acme's roles
// (admin, agent, user), by an acme API key holding every scope, by acme's admin with a
// token bound to no tenant, and by someone who is an agent of acme and an admin of
// globex, acting in acme (the policies would show them globex's rows), two ways:
// - globex's records in the path: all of them, each one alone beside acme's own (acme's
//   ticket with globex's message, acme's tenant with globex's team…), and once more with
//   `X-Tenant-Id: globex`. Every answer must be 403 or 404 in the common error shape
//   (400 tenant_mismatch where the request names globex as its tenant), and the same
//   status and code as for ids nobody has.
// - one of globex's ids in a body property or query parameter that names a record
//   (`team_id`, `user_id`, `knowledge_base_id`, `?agent_id`…, inside each member of a
//   union too: a macro's or a rule's every kind of action), acme's own records in the
//   path, one property at a time (the others name acme's records), and each must reach
//   past validation. Any answer but a 5xx, and the same status and code as for an id
//   nobody has: otherwise the answer tells globex's records from none. (A macro or rule
//   naming a team is saved whatever the team, and refused when it runs:
//   tests/functions/macros.test.ts.)
// Bodies and required query parameters are generated from the operation's own schema
// until one passes validation. No answer may hold an id of globex's that the request did
// not send; afterwards not one of globex's rows, in any table, differs (the attack kit's
// fingerprint: every row with its xmin, so even a no-op update shows), and no rate-limit
// window of globex moved. A new route is attacked without writing a test; a path
// parameter, property or query parameter naming a record that this file cannot resolve
// to a table fails it until RECORD_OF or FIELD_RECORD_OF names one.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { closeDb } from '../../shared/db.ts';
import { API_KEY_SCOPES } from '../../shared/auth/api-keys.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, type CallResult } from '../helpers/http.ts';
import { LOCAL_SUPABASE_ISSUER, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';
import { installKit, populateTenant, snapshot, VICTIM, VICTIM_PEOPLE, VICTIM_TEAM, VICTIM_TICKETS } from './attack-kit.ts';
import { functionApps as apps } from '../helpers/openapi.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };

// A JSON Schema of the documents, walked loosely.
type Schema = any;
type Param = { name: string; in: string; required?: boolean; schema?: Schema };
type Operation = {
  parameters?: Param[];
  security?: Record<string, string[]>[];
  requestBody?: { content?: Record<string, { schema?: Schema }> };
};
type Document = { paths: Record<string, Record<string, Operation>>; components?: { schemas?: Record<string, Schema> } };

/** The table a path parameter names a record of: by its name, or for a bare `{id}` by the
 *  path segment before it. */
const RECORD_OF: Record<string, string> = {
  tenantId: 'tenants',
  userId: 'users',
  invitationId: 'invitations',
  teamId: 'teams',
  endpointId: 'webhook_endpoints',
  keyId: 'api_keys',
  cannedId: 'canned_responses',
  macroId: 'macros',
  ruleId: 'automation_rules',
  fieldId: 'custom_field_definitions',
  departmentId: 'departments',
  tagId: 'tags',
  messageId: 'ticket_messages',
  attachmentId: 'attachments',
  kbId: 'voice_knowledge_bases',
  'tickets/{id}': 'tickets',
  'agents/{id}': 'voice_agents',
  'documents/{id}': 'kb_documents',
  'customers/{id}': 'voice_customers',
  'calls/{id}': 'voice_calls',
};
const recordOf = (path: string, name: string) => RECORD_OF[name] ?? RECORD_OF[`${path.slice(0, path.indexOf(`{${name}}`)).split('/').at(-2)}/{${name}}`];

/** The table a body property or query parameter holding an id names a record of (by
 *  its name; an array's items by the array's). */
const FIELD_RECORD_OF: Record<string, string> = {
  team_id: 'teams',
  lead_user_id: 'users',
  user_id: 'users',
  assigned_to: 'users',
  requester_id: 'users',
  assignee: 'users',
  requester: 'users',
  canned_response_id: 'canned_responses',
  knowledge_base_id: 'voice_knowledge_bases',
  chunk_id: 'kb_chunks',
  agent_id: 'voice_agents',
  customer_id: 'voice_customers',
  ticket_id: 'tickets',
  tenant_id: 'tenants',
  message_id: 'ticket_messages',
  into: 'tickets',
  ids: 'notifications',
};

const acme = tenants.acme.id;
const globex = VICTIM.id;
/** A 422 of the route's schema or of its handler's own checks (a webhook URL's host that
 *  does not resolve): it proves nothing about isolation; the database's refusal of a
 *  reference (`details.constraint`) does. */
const schemaRefused = (x: CallResult) =>
  x.status === 422 && x.body?.error?.code === 'validation_failed' && x.body?.error?.details?.constraint === undefined;
/** A control's body where the generated one names nothing of acme's (a number, not an id). */
const CONTROL_BODY: Record<string, () => unknown> = {
  // A failed delivery of acme's endpoint, planted before the probes.
  'POST /tenants/{tenantId}/webhooks/{endpointId}/deliveries/retry': () => ({ delivery_id: acmeFailedDelivery }),
};
let acmeFailedDelivery = 0;
/** Routes that need one of several optional query parameters (a rule the OpenAPI document
 *  cannot state): a request that names none of them gets acme's own record in the first. */
const QUERY_ONE_OF: Record<string, string[]> = {
  // Never every knowledge base of the tenant: the agent on the call, or a knowledge base.
  'GET /voice/knowledge/search': ['knowledge_base_id', 'agent_id'],
};
/** Routes whose control may refuse acme's own record to acme's admin (or not get past
 *  its body's checks), and why. */
const OWN_REFUSED: Record<string, string> = {
  'POST /tenants/{tenantId}/suspend': 'platform admins only',
  'POST /tenants/{tenantId}/resume': 'platform admins only',
  'PATCH /tenants/{tenantId}/entitlements': 'platform admins only',
  'DELETE /tenants/{tenantId}': 'platform admins only',
  'POST /tenants/invitations/{invitationId}/accept': 'the invitee only',
  'PATCH /tickets/{id}/messages/{messageId}': 'its author only',
  // Past the access checks, the handler resolves the URL's host, which no name does here.
  'POST /tenants/{tenantId}/webhooks': 'a URL whose host resolves',
};
const DUAL = { id: 'd0000000-0000-4000-8000-000000000001', email: 'both@attack.test' };
const OWN_TICKETS = { open: '5d000000-0000-4000-8000-000000000001', other: '5d000000-0000-4000-8000-000000000002' };

let db: TestDatabase;
let auth: AuthFixture;
const actors: { label: string; token: string }[] = [];
const API_KEY_ACTOR = 'acme API key (every scope)';
/** What `sample` makes of a call event's provider_call_id (a text of at least one character). */
const SAMPLED_PROVIDER_CALL_ID = 'probe-';
/** A record of each table, per tenant (the first by id, or the ticket with messages). */
const records = new Map<string, Map<string, string>>();
/** Every id of globex's: its people's and its rows' in each public table. An answer that
 *  holds one the request did not send has leaked it. */
let foreignIds: string[] = [];

/** Strings tried, in order, against a property's pattern. */
const PATTERNED = ['+14155550199', '#aa0000', 'text/plain', 'probe', 'probe-key', 'a', 'A1', 'US', 'en', '1'];

/** The schema a `$ref` names, or the schema itself. */
const deref = (schema: Schema, doc: Document): Schema =>
  schema?.$ref ? deref(doc.components?.schemas?.[schema.$ref.split('/').at(-1)], doc) : schema;

/** `member`: at each union (anyOf/oneOf), its member of that index where it has one. */
type Pick = { full?: boolean; only?: string; member?: number; uuid?: (field: string) => string | undefined };
/** A value the schema accepts: with `only` the required properties of each object and
 *  those `only` names, with `full` every property; ids from `uuid` by property name. */
function sample(schema: Schema, doc: Document, pick: Pick = {}, depth = 0, field = ''): unknown {
  if (!schema || depth > 8) return undefined;
  const inner = (s: Schema, name = field) => sample(s, doc, { full: pick.full, member: pick.member, uuid: pick.uuid }, depth + 1, name);
  if (schema.$ref) return sample(deref(schema, doc), doc, pick, depth + 1, field);
  for (const key of ['anyOf', 'oneOf'] as const) {
    if (schema[key]) {
      const options = schema[key].filter((s: Schema) => s.type !== 'null' && !s.nullable);
      const chosen = (pick.member !== undefined ? options[pick.member] : undefined) ?? options[0] ?? schema[key][0];
      return sample(chosen, doc, pick, depth + 1, field);
    }
  }
  if (schema.allOf) return Object.assign({}, ...schema.allOf.map((s: Schema) => sample(s, doc, pick, depth + 1, field)));
  if (schema.enum) return schema.enum[0];
  if ('const' in schema) return schema.const;
  if (schema.default !== undefined && !pick.full) return schema.default;
  const type = Array.isArray(schema.type) ? schema.type.find((t: string) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const required = new Set<string>(schema.required ?? []);
      for (const [name, prop] of Object.entries(schema.properties ?? {})) {
        if (pick.full || required.has(name) || pick.only === name) out[name] = inner(prop, name);
      }
      return out;
    }
    case 'array':
      return Array.from({ length: Math.max(schema.minItems ?? 0, pick.full ? 1 : 0) }, () => inner(schema.items));
    case 'integer':
    case 'number':
      return Math.max(schema.minimum ?? 1, schema.exclusiveMinimum !== undefined ? Number(schema.exclusiveMinimum) + 1 : 1);
    case 'boolean':
      return false;
    case 'string':
      switch (schema.format) {
        case 'uuid':
          return pick.uuid?.(field) ?? '30000000-0000-4000-8000-00000000beef';
        case 'email':
          return 'probe@attack.test';
        case 'date-time':
          return new Date().toISOString();
        case 'uri':
        case 'url':
          return 'https://example.com/hook';
      }
      if (schema.pattern) return PATTERNED.find((v) => new RegExp(schema.pattern).test(v)) ?? 'probe';
      return 'probe-' + 'x'.repeat(Math.max(0, (schema.minLength ?? 0) - 6));
  }
  return undefined;
}

/** Bodies to try, until one passes validation: the required properties alone, with each
 *  optional top-level property in turn (a PATCH needs one), then every property. */
function bodies(schema: Schema, doc: Document, uuid?: Pick['uuid']): unknown[] {
  const top = deref(schema, doc);
  const optional = Object.keys(top?.properties ?? {}).filter((n) => !(top.required ?? []).includes(n));
  const out = [
    sample(schema, doc, { uuid }),
    ...optional.map((only) => sample(schema, doc, { only, uuid })),
    sample(schema, doc, { full: true, uuid }),
  ];
  // With ids to place: every member of the unions too (a macro's or a rule's actions: the
  // one that sets a team, the one that assigns a person…), each in the bodies above.
  if (uuid) {
    for (let member = 1; member < UNION_MEMBERS; member++) {
      out.push(sample(schema, doc, { member, uuid }), ...optional.map((only) => sample(schema, doc, { only, member, uuid })));
      out.push(sample(schema, doc, { full: true, member, uuid }));
    }
  }
  return [...new Map(out.map((b) => [JSON.stringify(b), b])).values()];
}
/** More than any union of the documents has members. */
const UNION_MEMBERS = 24;

/** The names of the properties (an array's items by the array's) that hold an id,
 *  anywhere in the schema, every member of every union included. */
function uuidFields(schema: Schema, doc: Document, field = '', depth = 0, out = new Set<string>()): Set<string> {
  if (!schema || depth > 10) return out;
  if (schema.$ref) return uuidFields(deref(schema, doc), doc, field, depth + 1, out);
  for (const key of ['anyOf', 'oneOf', 'allOf'] as const) for (const m of schema[key] ?? []) uuidFields(m, doc, field, depth + 1, out);
  if (schema.format === 'uuid' && field) out.add(field);
  for (const [name, prop] of Object.entries(schema.properties ?? {})) uuidFields(prop, doc, name, depth + 1, out);
  if (schema.items) uuidFields(schema.items, doc, field, depth + 1, out);
  return out;
}

/** `path`: globex's records in the path, refused (403/404). `field`: acme's own records in
 *  the path and one of globex's ids in a body property or query parameter: any answer
 *  but a 5xx, none leaking globex, and some body of the route must pass validation. */
type Probe = {
  kind: 'path' | 'field';
  actor: string;
  route: string;
  /** For `field`: the property or `?parameter` holding globex's id. */
  target: string;
  url: string;
  method: string;
  bodies: unknown[];
  headers?: Record<string, string>;
};

/** Every request of the suite, built from the documents. */
async function probes() {
  const list: Probe[] = [];
  const unresolved: string[] = [];
  const routes: string[] = [];
  const headerRoutes: string[] = [];
  /** Each route with acme's own records in its path, by acme's admin (or its key). */
  const controls: { route: string; method: string; url: string; bodies: unknown[]; actor: string }[] = [];
  const usedFields = new Set<string>();
  const unmapped = new Set<string>();
  const fieldTargets = new Set<string>();
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json() as Document;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [m, op] of Object.entries(ops)) {
        const method = m.toUpperCase();
        // People's routes (a bearer token), by every actor; the telephony provider's routes,
        // which a tenant's API key may call for its own tenant (security.telephony), by the
        // API key; machine and signed webhook routes take no person and no key.
        const forPeople = (op.security ?? []).some((s) => 'bearerAuth' in s);
        const forKeys = (op.security ?? []).some((s) => 'apiKey' in s);
        if (!forPeople && !forKeys) continue;
        const routeActors = forPeople ? actors : actors.filter((a) => a.label === API_KEY_ACTOR);
        const params = (op.parameters ?? []).filter((p) => p.in === 'path');
        const named = params.filter((p) => !p.schema?.enum);
        const route = `${method} ${path}`;
        const tables = named.map((p) => recordOf(path, p.name));
        if (tables.some((t) => !t)) {
          unresolved.push(`${route}: ${named.filter((_, i) => !tables[i]).map((p) => p.name).join(', ')}`);
          continue;
        }
        const queryParams = (op.parameters ?? []).filter((p) => p.in === 'query');
        // The required parameters (acme's own record where one names a record), but the one
        // `extra` sets.
        const oneOf = QUERY_ONE_OF[route] ?? [];
        const query = (extra = '') =>
          [
            ...queryParams.filter((p) => p.required && !extra.startsWith(`${p.name}=`)).map((p) =>
              `${p.name}=${encodeURIComponent(String((p.schema?.format === 'uuid' && recordId(p.name, acme)) || sample(p.schema, doc)))}`
            ),
            ...(oneOf.length && !oneOf.some((name) => extra.startsWith(`${name}=`)) ? [`${oneOf[0]}=${recordId(oneOf[0], acme)}`] : []),
            extra,
          ].filter(Boolean).join('&');
        const bodySchema = op.requestBody?.content?.['application/json']?.schema;
        const url = (foreign: Set<string>, extra = '') => {
          const q = query(extra);
          return path.replace(/\{(\w+)\}/g, (_, name: string) => {
            const p = params.find((x) => x.name === name)!;
            if (p.schema?.enum) return p.schema.enum[0];
            return records.get(recordOf(path, name))!.get(foreign.has(name) ? globex : acme)!;
          }) + (q ? `?${q}` : '');
        };
        const push = (kind: Probe['kind'], u: string, candidates: unknown[], headers?: Record<string, string>, target = '') => {
          for (const actor of routeActors) list.push({ kind, actor: actor.label, route, target, url: u, method, bodies: candidates, headers });
        };
        if (named.length) {
          routes.push(route);
          controls.push({
            route,
            method,
            url: url(new Set()),
            // Acme's own records in the body too (a merge's target, a follower to add).
            bodies: CONTROL_BODY[route]
              ? [CONTROL_BODY[route]()]
              : bodySchema
              ? bodies(bodySchema, doc, (f) => FIELD_RECORD_OF[f] && records.get(FIELD_RECORD_OF[f])?.get(acme))
              : [undefined],
            actor: forPeople ? 'acme admin' : API_KEY_ACTOR,
          });
          // All of globex's records; each alone beside acme's; all of globex's with its header.
          const variants: { foreign: Set<string>; headers?: Record<string, string> }[] = [
            { foreign: new Set(named.map((p) => p.name)) },
            ...(named.length > 1 ? named.map((p) => ({ foreign: new Set([p.name]) })) : []),
            { foreign: new Set(named.map((p) => p.name)), headers: { 'x-tenant-id': globex } },
          ];
          for (const v of variants) push('path', url(v.foreign), bodySchema ? bodies(bodySchema, doc) : [undefined], v.headers);
        } else if ((op.parameters ?? []).some((p) => p.in === 'header' && p.name.toLowerCase() === 'x-tenant-id')) {
          // No record in the path: the header is what names the tenant (GET /tickets,
          // POST /voice/customers…), so globex named there must be refused too.
          headerRoutes.push(route);
          push('path', url(new Set()), bodySchema ? bodies(bodySchema, doc) : [undefined], { 'x-tenant-id': globex });
        }
        // Globex's id in one body property or query parameter naming a record at a time,
        // the others naming acme's own: each body candidate that carries it is its own
        // probe, and some candidate must pass validation for each (route, field).
        const recordId = (field: string, tenant: string) => {
          const table = FIELD_RECORD_OF[field];
          if (!table) unmapped.add(`${route}: ${field || '(unnamed)'}`);
          else usedFields.add(field);
          return table ? records.get(table)?.get(tenant) : undefined;
        };
        if (bodySchema) {
          for (const target of uuidFields(bodySchema, doc)) {
            const id = recordId(target, globex);
            if (!id) continue;
            const carrying = bodies(bodySchema, doc, (f) => recordId(f, f === target ? globex : acme))
              .filter((b) => JSON.stringify(b).includes(id));
            if (!carrying.length) continue;
            fieldTargets.add(`${route} ${target}`);
            for (const b of carrying) push('field', url(new Set()), [b], undefined, target);
          }
        }
        for (const q of queryParams) {
          const s = q.schema?.type === 'array' ? q.schema.items : q.schema;
          // An id, or a union with an id among its members (`?assignee=me|none|<id>`).
          const members: Schema[] = [s, ...(s?.anyOf ?? []), ...(s?.oneOf ?? [])];
          if (!members.some((m) => m?.format === 'uuid')) continue;
          const id = recordId(q.name, globex);
          if (!id) continue;
          fieldTargets.add(`${route} ?${q.name}`);
          push('field', url(new Set(), `${q.name}=${id}`), [bodySchema ? sample(bodySchema, doc) : undefined], undefined, `?${q.name}`);
        }
      }
    }
  }
  return { list, unresolved, routes, headerRoutes, controls, usedFields, unmapped: [...unmapped], fieldTargets: [...fieldTargets] };
}

beforeAll(async () => {
  db = await freshDatabase('attack_routes');
  auth = await configureAuth(db.url);
  await installKit(db.sql);
  await populateTenant(db.sql, VICTIM, VICTIM_PEOPLE, VICTIM_TEAM);
  await populateTenant(db.sql, { id: acme }, { admin: users.acmeAdmin, agent: users.acmeAgent, user: users.acmeUser }, teams.acme, OWN_TICKETS);
  // Globex's call under the provider id a generated call event names: a key's event that
  // crossed into globex would add to it or end it, and the fingerprints would see it.
  await db.sql`update public.voice_calls set provider_call_id = ${SAMPLED_PROVIDER_CALL_ID} where tenant_id = ${globex}`;
  // Every feature, and limits no probe reaches (they are tested in rate-limits.test.ts).
  await db.sql`update public.tenants set plan = 'enterprise' where id in (${acme}, ${globex})`;
  await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits)
    values (${acme}, '{"requests_per_minute": 1000000, "requests_per_minute_per_caller": 1000000, "reads_per_minute_per_key": 1000000}')
    on conflict (tenant_id) do update set limits = excluded.limits`;
  for (const table of new Set([...Object.values(RECORD_OF), ...Object.values(FIELD_RECORD_OF)])) {
    const byTenant = new Map<string, string>();
    for (const [tenant, people, tickets] of [[acme, users.acmeAgent, OWN_TICKETS], [globex, VICTIM_PEOPLE.agent, VICTIM_TICKETS]] as const) {
      if (table === 'tenants') byTenant.set(tenant, tenant);
      else if (table === 'users') byTenant.set(tenant, people.id);
      else if (table === 'tickets') byTenant.set(tenant, tickets.open);
      else {
        const [row] = await db.sql`select id::text as id from ${db.sql('public')}.${db.sql(table)} where tenant_id = ${tenant}
          order by ${table === 'ticket_messages' || table === 'attachments' ? db.sql`(ticket_id = ${tickets.open}) desc,` : db.sql``}
                   ${table === 'macros' || table === 'canned_responses' ? db.sql`(scope = 'tenant') desc,` : db.sql``} id limit 1`;
        expect(row, `a ${table} row of ${tenant}`).toBeDefined();
        byTenant.set(tenant, row.id as string);
      }
    }
    records.set(table, byTenant);
  }
  // A failed delivery of acme's endpoint, for the retry route's control.
  const [ev] = await db.sql`insert into private.webhook_events (tenant_id, type, ordering_key, payload)
    values (${acme}, 'ticket.created', 'control', '{}') returning id`;
  const [fd] = await db.sql`insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key, status)
    values (${acme}, ${records.get('webhook_endpoints')!.get(acme)!}, ${ev.id}, 'control', 'failed') returning id`;
  acmeFailedDelivery = Number(fd.id);
  for (const [label, user] of [['admin', users.acmeAdmin], ['agent', users.acmeAgent], ['user', users.acmeUser]] as const) {
    actors.push({ label: `acme ${label}`, token: await supabaseToken(user, { tenantId: acme }) });
  }
  // A token bound to no tenant: the request's tenant is its only one, or X-Tenant-Id's.
  actors.push({ label: 'acme admin (token bound to no tenant)', token: await supabaseToken(users.acmeAdmin) });
  // Someone in both tenants (agent of acme, admin of globex) acting in acme: the policies
  // would show them globex's rows, so only the request's tenant keeps globex out.
  await db.sql`insert into public.users (id, email) values (${DUAL.id}, ${DUAL.email})`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values (${LOCAL_SUPABASE_ISSUER}, ${DUAL.id}, ${DUAL.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${DUAL.id}, 'agent'), (${globex}, ${DUAL.id}, 'admin')`;
  actors.push({ label: 'acme agent who is a globex admin (token bound to acme)', token: await supabaseToken(DUAL, { tenantId: acme }) });
  const key = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
    token: actors[0].token,
    body: { name: 'every scope', scopes: [...API_KEY_SCOPES] },
  });
  expect(key.status, JSON.stringify(key.body)).toBe(201);
  actors.push({ label: API_KEY_ACTOR, token: key.body.key as string });
  const tables = await db.sql`
    select c.table_name as t from information_schema.columns c
    join information_schema.columns i on i.table_schema = c.table_schema and i.table_name = c.table_name and i.column_name = 'id'
    join information_schema.tables r on r.table_schema = c.table_schema and r.table_name = c.table_name and r.table_type = 'BASE TABLE'
    where c.table_schema = 'public' and c.column_name = 'tenant_id'`;
  const ids = new Set<string>(Object.values(VICTIM_PEOPLE).map((u) => u.id));
  for (const { t } of tables) {
    for (const r of await db.sql`select id::text as id from ${db.sql('public')}.${db.sql(t as string)} where tenant_id = ${globex}`) ids.add(r.id as string);
  }
  // Only uuids: a serial id ("7") is no secret and would match any number.
  foreignIds = [...ids].filter((id) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(id));
  await snapshot(db.sql, globex);
}, 120_000);
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
});

describe("another tenant's records through every route of every function", () => {
  it("refuses globex's records in paths (403/404), takes its ids elsewhere without a leak, and changes nothing of globex's", async () => {
    const { list, unresolved, routes, headerRoutes, controls, usedFields, unmapped, fieldTargets } = await probes();
    // Every field named in FIELD_RECORD_OF is found in some document (a union's member too).
    expect(Object.keys(FIELD_RECORD_OF).filter((f) => !usedFields.has(f)), 'FIELD_RECORD_OF names a field no route has').toEqual([]);
    // The routes whose tenant only the header names are walked too.
    expect(headerRoutes).toEqual(expect.arrayContaining(['GET /tickets', 'POST /tickets', 'GET /voice/customers', 'GET /voice/calls']));
    expect(unresolved, 'path parameters RECORD_OF does not resolve to a table').toEqual([]);
    expect(unmapped, 'body properties or query parameters holding an id that FIELD_RECORD_OF does not name').toEqual([]);
    // Every function with people's record routes is walked (a broken document would be empty).
    expect(new Set(routes.map((r) => r.split(' ')[1].split('/')[1]))).toEqual(new Set(['tenants', 'tickets', 'voice']));
    expect(foreignIds.length).toBeGreaterThan(30);
    // Globex's windows: its tenant's and callers' (keyed by its id) and its keys' reads
    // (keyed by the key's id, one of globex's ids).
    const counters = async () =>
      (await db.sql`select key, hits from private.rate_limit_counters order by key`)
        .filter((c) => [globex, ...foreignIds].some((id) => (c.key as string).includes(id)))
        .map((c) => `${c.key}=${c.hits}`).join(',');
    const countersBefore = await counters();
    // Per table, so a failure names what changed; shared tables (the kit's 'global' scope:
    // plans, settings, the rate-limit windows of every tenant) are left out, acme's own
    // requests change them, and globex's windows are compared below.
    const shared = (await db.sql`select rel::text as rel from attack_probe.scope where kind = 'global'`).map((r) => r.rel as string);
    const fingerprints = async () => {
      const fp = (await db.sql`select attack_probe.fingerprints(${globex}) as fp`)[0].fp as Record<string, string>;
      for (const rel of shared) delete fp[rel];
      return fp;
    };
    const before = await fingerprints();
    const wrong: string[] = [];
    const validated = new Set<string>();
    for (const p of list) {
      const app = apps[p.url.split('/')[1].split('?')[0]];
      const token = actors.find((a) => a.label === p.actor)!.token;
      // The first body that passes validation decides.
      let r: CallResult | undefined;
      let sent: unknown;
      for (const body of p.bodies) {
        sent = body;
        r = await call(app, p.method, p.url, { token, body, headers: p.headers });
        if (!schemaRefused(r)) break;
      }
      r = r!;
      // Past validation, and past the caller's credential: a key refused a route for its
      // scope (or a people-only route) answers before the body is read, and counted, it
      // made a route that refused every body look reached.
      const refusedCredential = r.status === 401 ||
        (r.status === 403 && ['insufficient_scope', 'user_token_required'].includes(r.body?.error?.code));
      if (!schemaRefused(r) && !refusedCredential) validated.add(`${p.kind} ${p.route} ${p.target}`);
      // Globex's id must be answered as an id nobody has: the same status and code, or the
      // answer tells globex's records from none.
      let oracle = '';
      if (!schemaRefused(r)) {
        const unknown = randomUUID();
        // The twin's own names and number, so a record the probe made cannot collide with it.
        const swap = (text: string) =>
          foreignIds.reduce((t, id) => t.replaceAll(id, unknown), text).replaceAll('probe', 'probf').replaceAll('+14155550199', '+14155550188');
        const twin = await call(app, p.method, swap(p.url), {
          token,
          body: sent === undefined ? undefined : JSON.parse(swap(JSON.stringify(sent))),
          headers: p.headers,
        });
        if (twin.status !== r.status || twin.body?.error?.code !== r.body?.error?.code) {
          oracle = ` ORACLE: an unknown id gets ${twin.status} ${twin.body?.error?.code ?? ''}`;
        }
      }
      const request = `${p.url} ${JSON.stringify(sent ?? null)}`;
      const answer = JSON.stringify(r.body);
      const leaked = foreignIds.filter((id) => answer.includes(id) && !request.includes(id));
      const shaped = r.status < 400 || (typeof r.body?.error?.code === 'string' && typeof r.body?.error?.message === 'string');
      // A token bound to acme asked to act in globex (X-Tenant-Id, or globex's tenant in the
      // path) is refused as a mismatch (400).
      const namesGlobex = p.headers?.['x-tenant-id'] === globex || p.url.includes(`/tenants/${globex}`);
      const refused = [403, 404].includes(r.status) || (namesGlobex && r.status === 400 && r.body?.error?.code === 'tenant_mismatch');
      const fine = p.kind === 'path' ? refused && shaped : r.status < 500 && shaped;
      if (!fine || leaked.length || oracle) {
        wrong.push(
          `${p.kind} ${p.actor}: ${p.method} ${p.url}${p.headers ? ' (X-Tenant-Id: globex)' : ''} ${JSON.stringify(sent ?? null).slice(0, 120)} -> ` +
            `${r.status} ${answer.slice(0, 200)}${leaked.length ? ` LEAKED ${leaked.join(', ')}` : ''}${oracle}`,
        );
      }
    }
    const fieldProbes = list.filter((p) => p.kind === 'field').length;
    console.info(
      `function-path attack: ${routes.length} routes × ${list.length - fieldProbes} requests with globex's records in the path; ` +
        `${fieldTargets.length} (route, field) pairs × ${fieldProbes} requests with globex's ids in a body or query; ` +
        `${actors.length} actors; each compared with an id nobody has; wrong answers: ${wrong.length}`,
    );
    expect(wrong).toEqual([]);
    // Every route probed with globex's ids in a body or query reached past validation.
    expect(fieldTargets.filter((t) => !validated.has(`field ${t}`)), 'no generated request passes validation').toEqual([]);
    expect(list.filter((p) => p.kind === 'path').length).toBeGreaterThan(500);
    expect(fieldTargets.length).toBeGreaterThan(30);
    // The provider's call path is walked by the API key too, its events with globex's tenant.
    expect(fieldTargets).toEqual(expect.arrayContaining(['POST /voice/calls/events tenant_id', 'GET /voice/knowledge/search ?tenant_id']));
    // ... naming globex's call: each kind of event.
    const events = list.filter((p) => p.route === 'POST /voice/calls/events' && p.target === 'tenant_id').map((p) => p.bodies[0] as Record<string, unknown>);
    expect(new Set(events.filter((b) => b.provider_call_id === SAMPLED_PROVIDER_CALL_ID).map((b) => b.type)))
      .toEqual(new Set(['call.started', 'call.answered', 'transcript.segments', 'call.ended']));
    expect(await fingerprints()).toEqual(before);
    expect(await counters()).toBe(countersBefore);
    // Nor did any of acme's rows take one of globex's ids (a foreign key gone would take
    // globex's team as quietly as an unknown id is refused): every table with a tenant,
    // read as text. Macros and rules keep the ids their actions name (refused when they
    // run: 20261207210000 names only what the tenant has, and the control below clears
    // them), as does the trail of those writes.
    const pattern = foreignIds.join('|');
    const holding: string[] = [];
    for (const { table } of await db.sql`select c.relname::text as table from pg_class c
        join pg_namespace n on n.oid = c.relnamespace join pg_attribute a on a.attrelid = c.oid and a.attname = 'tenant_id'
        where n.nspname = 'public' and c.relkind = 'r' order by 1`) {
      const trailOfActions = table === 'audit_logs' ? db.sql`and x.table_name not in ('macros', 'automation_rules')` : db.sql``;
      const [{ n }] = await db.sql`select count(*)::int as n from ${db.sql('public')}.${db.sql(table)} x
        where x.tenant_id = ${acme} and to_jsonb(x)::text ~ ${pattern} ${trailOfActions}`;
      if (n && !['macros', 'automation_rules'].includes(table)) holding.push(`${table}: ${n}`);
    }
    expect(holding, "acme's rows holding one of globex's ids after the probes").toEqual([]);

    // The control: acme's own records in the same paths reach the route (no 403 or 404),
    // so the refusals above are about globex, not a record map or a route that refuses
    // everyone. Last, deletes last and the deepest path first: they change acme's records.
    const order = (c: (typeof controls)[number]) => (c.method === 'DELETE' ? 1_000 - c.url.length : 0);
    // What the probes left in acme's records that a control reads: its macros hold the
    // ids the field probes saved in them (globex's, refused when the macro runs).
    await db.sql`update public.macros set actions = '[{"type": "set_priority", "priority": "urgent"}]' where tenant_id = ${acme}`;
    const refusedOwn: string[] = [];
    let deleting = false;
    for (const c of [...controls].sort((a, b) => order(a) - order(b))) {
      if (c.method === 'DELETE' && !deleting) {
        // The follower and team member the DELETE controls remove, an agent again after
        // the member controls changed their role (a demotion takes both away).
        deleting = true;
        const person = records.get('users')!.get(acme)!;
        await db.sql`update public.memberships set role = 'agent' where tenant_id = ${acme} and user_id = ${person}`;
        await db.sql`insert into public.ticket_followers (tenant_id, ticket_id, user_id)
          values (${acme}, ${OWN_TICKETS.open}, ${person}) on conflict do nothing`;
        await db.sql`insert into public.team_members (tenant_id, team_id, user_id)
          values (${acme}, ${teams.acme}, ${person}) on conflict do nothing`;
      }
      const app = apps[c.url.split('/')[1].split('?')[0]];
      const token = actors.find((a) => a.label === c.actor)!.token;
      let r: CallResult | undefined;
      for (const body of c.bodies) {
        r = await call(app, c.method, c.url, { token, body });
        if (!schemaRefused(r)) break;
      }
      // A 404 of another kind (`no_recording`) is the record's state, past the refusal; a
      // body no schema check lets through proves nothing either way.
      const refused = schemaRefused(r!) || r!.status === 403 || (r!.status === 404 && r!.body?.error?.code === 'not_found');
      if (refused && !(c.route in OWN_REFUSED)) {
        refusedOwn.push(`${c.route}: ${r!.status} ${JSON.stringify(r!.body).slice(0, 160)}`);
      }
    }
    expect(refusedOwn, "routes that refuse acme's own records to acme's admin: their probes prove nothing").toEqual([]);
    expect(controls.length).toBe(routes.length);
  }, 300_000);
});
