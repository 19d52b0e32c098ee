// The tenant's audit trail, newest first, paged (admins).
import { createRoute } from '@hono/zod-openapi';
import { caller, callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope, type Scope } from '../../../shared/auth/api-keys.ts';
import { missingScopes, requireScopes } from '../../../shared/auth/key-scopes.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { forbidden } from '../../../shared/errors.ts';
import { commonErrors, cursorValues, encodeCursor, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Checked, JsonObject, Tables } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import type { TenantsApp } from './common.ts';

/** An entry as read: the id as text (bigint), keys and row images as JSON objects. */
type AuditEntryRow =
  & Checked<
    Pick<
      Tables<'audit_logs'>,
      | 'table_name'
      | 'record_key'
      | 'action'
      | 'actor_user_id'
      | 'actor_issuer'
      | 'actor_subject'
      | 'actor_role'
      | 'old_data'
      | 'new_data'
      | 'changed_fields'
      | 'created_at'
      | 'redacted_at'
    >,
    { record_key: JsonObject; old_data: JsonObject | null; new_data: JsonObject | null }
  >
  & { id: string };

/** A page stops early once its entries' row images, uncompressed, pass this many bytes:
 *  an entry that changed a large value (a knowledge-base document's content is up to
 *  1 MB) holds it twice, and a page of 100 such entries would not fit in an Edge
 *  Function's memory. The first entry is always returned; `next` goes on from the last. */
export const AUDIT_PAGE_BYTES = 2 * 1024 * 1024;

/** The read scopes an API key needs besides `audit:read` to read each audited table's
 *  entries, whose row images hold the rows themselves (a message's content, a call's
 *  transcript, a customer's phone): the scopes its own routes need. null: the tenant's
 *  configuration, which `audit:read` alone reads. false: no key reads them, as no key
 *  reads their routes. Every audited table is here (tests/functions/audit-scopes.test.ts
 *  holds it to the catalog). */
export const AUDIT_READ_SCOPE: Record<string, Scope | readonly Scope[] | null | false> = {
  tickets: 'tickets:read',
  ticket_messages: 'tickets:read',
  ticket_events: 'tickets:read',
  ticket_followers: 'tickets:read',
  ticket_internal_fields: 'tickets:read',
  attachments: 'tickets:read',
  // A person's inbox (mentions, note snippets, when they read them): /notifications
  // refuses keys, and its entries are shown to the person named in them.
  notifications: false,
  tags: 'tickets:read',
  custom_field_definitions: 'tickets:read',
  sla_policies: 'tickets:read',
  canned_responses: 'tickets:read',
  macros: 'tickets:read',
  automation_rules: 'workflow:manage',
  // A rule's runs name the tickets it matched: reading them needs tickets:read too (GET
  // …/runs asks tickets:write as well, as its rule's routes do).
  automation_runs: ['workflow:manage', 'tickets:read'],
  memberships: 'members:read',
  users: 'members:read',
  user_identities: 'members:read',
  // Who was invited (people who never joined too): /invitations refuses keys.
  invitations: false,
  teams: 'teams:read',
  team_members: 'teams:read',
  departments: 'teams:read',
  voice_calls: 'calls:read',
  voice_call_segments: 'calls:read',
  voice_customers: 'customers:read',
  voice_agents: 'agents:read',
  voice_knowledge_bases: 'knowledge:read',
  kb_documents: 'knowledge:read',
  tenants: null,
  tenant_services: null,
  tenant_org_links: null,
  api_keys: null,
  // An endpoint's URL may be its receiver's bearer token (catch-hook URLs): read as its
  // routes read it.
  webhook_endpoints: 'webhooks:manage',
  // Written by hand, not by a trigger: who re-sent a delivery (20261207114000).
  webhook_deliveries: 'webhooks:manage',
  platform_admins: null,
  // The tenant's plan as platform admins changed it (private tables, audited all the same).
  tenant_plan_overrides: null,
  tenant_feature_flags: null,
};

/** The tables whose entries an API key reads (null: a person, every table); a named table
 *  it may not read is 403 insufficient_scope, as its own routes answer. */
function keyReadableTables(scopes: readonly Scope[], named: string | undefined): string[] {
  const scopesFor = (table: string): readonly Scope[] => [AUDIT_READ_SCOPE[table] || []].flat();
  const readable = Object.keys(AUDIT_READ_SCOPE).filter((t) =>
    AUDIT_READ_SCOPE[t] !== false && missingScopes(scopes, scopesFor(t)).length === 0
  );
  // Own keys only: `?table_name=constructor` names no table (an empty page), not a scope.
  if (named !== undefined && Object.hasOwn(AUDIT_READ_SCOPE, named)) {
    if (AUDIT_READ_SCOPE[named] === false) {
      throw forbidden(`API keys do not read the audit entries of ${named}, as they do not read its routes`, 'insufficient_scope');
    }
    requireScopes(scopes, scopesFor(named), `The audit entries of ${named} hold its rows`);
  }
  return readable;
}

export function registerAudit(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/audit',
      summary: "Read the tenant's audit trail, newest first (admins)",
      description: 'A page holds up to `limit` entries, fewer when their row images pass about 2 MB: ' +
        "follow `next` until it is null. An API key reads the entries of the tables its read scopes cover (a ticket's " +
        "with `tickets:read`, a call's with `calls:read`…) and the tenant's configuration; naming a table it cannot read " +
        'is 403 `insufficient_scope`. Search columns are never in the trail, and an UPDATE leaves out of both ' +
        'images an unchanged value of more than 4 kB (the entry that last changed it holds it). An entry is numbered ' +
        'when its change is written and listed once its transaction commits, so a long transaction (an import, a ' +
        'bulk delete) can add entries below ones already read: a reader that follows the trail re-reads the last ' +
        'minutes from the top on its next pass (ids are unique, so repeats are recognised).',
      ...apiKeyScope('audit:read'),
      middleware: needs.tenantRole('admin', { scope: 'audit:read' }),
      request: { params: s.TenantIdParam, query: s.AuditQuery },
      responses: {
        200: jsonResponse(s.page(s.AuditEntrySchema), 'A page of audit entries'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const q = c.req.valid('query');
      const before = cursorValues(q.cursor, 1, (v) => /^\d{1,18}$/.test(v));
      const key = caller(c).apiKey;
      const tables = key ? keyReadableTables(key.scopes, q.table_name) : null;
      const rows = await callerDb(c, tenantId, (tx) =>
        // The tenant comes in as a lateral value (offset 0 keeps the planner from folding
        // it into a constant), so the page is planned for a tenant of average size: with
        // the constant, a tenant holding most of the rows made walking the primary key
        // backwards look cheapest, and that walk read every newer row of the other
        // tenants first (6,670 on the dataset of tests/schema/endpoint-plans.test.ts)
        // where audit_logs_tenant_id_idx reads this tenant's page alone.
        //
        // The size bound: each fetched entry's image size as written (image_bytes,
        // uncompressed; for entries written before it existed, the stored size, which
        // pg_column_size reads without reading the value), summed over the newer entries
        // of the page; only entries that start below the bound are returned, and
        // `fetched` says how many the page had before it was cut.
        tx<AuditEntryRow & { fetched: number }>`
          select page.id::text, page.table_name, page.record_key, page.action, page.actor_user_id,
                 page.actor_issuer, page.actor_subject, page.actor_role,
                 page.old_data, page.new_data, page.changed_fields, page.created_at, page.redacted_at, page.fetched
          from (select ${tenantId}::uuid as tenant_id offset 0) as caller
          cross join lateral (
            select w.*, (count(*) over ())::int as fetched,
                   coalesce(sum(w.bytes) over (order by w.id desc rows between unbounded preceding and 1 preceding), 0) as bytes_before
            from (
              select l.id, l.table_name, l.record_key, l.action, l.actor_user_id, l.actor_issuer, l.actor_subject, l.actor_role,
                     l.old_data, l.new_data, l.changed_fields, l.created_at, l.redacted_at,
                     coalesce(l.image_bytes, coalesce(pg_column_size(l.old_data), 0) + coalesce(pg_column_size(l.new_data), 0)) as bytes
              from public.audit_logs l
              where l.tenant_id = caller.tenant_id
                and (${q.table_name ?? null}::text is null or l.table_name = ${q.table_name ?? null}::text)
                and (${tables}::text[] is null or l.table_name = any (${tables}::text[]))
                and (${q.action ?? null}::text is null or l.action = ${q.action ?? null}::text)
                and (${before?.[0] ?? null}::bigint is null or l.id < ${before?.[0] ?? null}::bigint)
              order by l.id desc
              limit ${q.limit + 1}
            ) as w
          ) as page
          where page.bytes_before < ${AUDIT_PAGE_BYTES}
          order by page.id desc
        `);
      const items = rows.slice(0, q.limit).map(({ fetched: _, ...entry }) => entry);
      const last = items.at(-1);
      const more = (rows[0]?.fetched ?? 0) > items.length;
      return c.json({ items, next: more && last ? encodeCursor([last.id]) : null }, 200);
    },
  );
}
