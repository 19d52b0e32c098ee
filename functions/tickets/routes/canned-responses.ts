// Canned responses: reply templates for staff, tenant-wide, per team or personal. The
// database decides who sees and keeps which (canned_responses policies); a reply sent
// from one fills its placeholders in the caller's transaction (conversation.ts).
import { createRoute, z } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { caller, callerDb } from '../../../shared/auth/context.ts';
import { requireScopes } from '../../../shared/auth/key-scopes.ts';
import { needs } from '../../../shared/auth/needs.ts';
import type { Tx } from '../../../shared/db.ts';
import { forbidden, notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Checked, Column, Selected } from '../../../shared/rows.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  errorResponse,
  jsonBody,
  jsonResponse,
  keysetPage,
  textsThenIdCursor,
} from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import type { TicketsHandler } from './common.ts';

const CANNED_COLUMNS = [
  'id',
  'tenant_id',
  'scope',
  'team_id',
  'owner_id',
  'short_code',
  'title',
  'body',
  'created_by',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'canned_responses'>[];
type CannedRow = Checked<
  Selected<'canned_responses', typeof CANNED_COLUMNS>,
  { scope: z.infer<typeof s.CannedScopeSchema> }
>;

const routes = {
  list: createRoute({
    method: 'get',
    path: '/canned-responses',
    summary: "The canned responses the caller may use (staff): tenant-wide, their teams' and their own",
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('agent', { scope: 'tickets:read' }),
    request: { query: s.CannedListQuery },
    responses: {
      200: jsonResponse(
        z.object({ items: z.array(s.CannedResponseSchema), next: z.string().nullable() }),
        'A page of canned responses, by short code',
      ),
      ...commonErrors,
    },
  }),
  create: createRoute({
    method: 'post',
    path: '/canned-responses',
    summary: "Add a canned response: tenant-wide or a team's (admins), or a personal one (staff)",
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'workflow:manage' }), // tenant and team scope: admins
    request: { body: jsonBody(s.CannedResponseBody) },
    responses: { 201: jsonResponse(s.CannedResponseSchema, 'The canned response'), ...commonErrors, ...conflictError },
  }),
  get: createRoute({
    method: 'get',
    path: '/canned-responses/{cannedId}',
    summary: 'One canned response',
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('agent', { scope: 'tickets:read' }),
    request: { params: s.CannedIdParam },
    responses: { 200: jsonResponse(s.CannedResponseSchema, 'The canned response'), ...commonErrors },
  }),
  update: createRoute({
    method: 'patch',
    path: '/canned-responses/{cannedId}',
    summary: "Change a canned response's short code, title or body",
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'workflow:manage' }),
    request: { params: s.CannedIdParam, body: jsonBody(s.UpdateCannedResponseBody) },
    responses: { 200: jsonResponse(s.CannedResponseSchema, 'The canned response'), ...commonErrors, ...conflictError },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/canned-responses/{cannedId}',
    summary: 'Remove a canned response',
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'workflow:manage' }),
    request: { params: s.CannedIdParam },
    responses: {
      204: { description: 'Removed' },
      ...commonErrors,
      409: errorResponse(
        '`canned_response_in_use`: a tenant-wide macro or an automation rule sends it (`details.macros`, ' +
          '`details.automation_rules`; 20261207210000): change or delete those first',
      ),
    },
  }),
};

const list: TicketsHandler<typeof routes.list> = async (c) => {
  const q = c.req.valid('query');
  const access = c.var.access;
  const after = cursorValues(q.cursor, 3, textsThenIdCursor(2));
  const rows = await callerDb(c, access.tenantId, (tx) =>
    tx<CannedRow>`
      select ${tx.columns(CANNED_COLUMNS)} from public.canned_responses
      where tenant_id = ${access.tenantId}
        ${q.scope ? tx`and scope = ${q.scope}` : tx``}
        ${q.team_id ? tx`and team_id = ${q.team_id}` : tx``}
        ${q.code ? tx`and short_code like ${q.code.replace(/[\\%_]/g, '\\$&') + '%'}` : tx``}
        ${after ? tx`and (short_code, scope, id) > (${after[0]}::text, ${after[1]}::text, ${after[2]}::uuid)` : tx``}
      order by short_code, scope, id
      limit ${q.limit + 1}
    `);
  // A list longer than the limit says so (`next`), where it was cut silently.
  return c.json(keysetPage(rows, q.limit, (r) => [r.short_code, r.scope, r.id]), 200);
};

const create: TicketsHandler<typeof routes.create> = async (c) => {
  const body = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, async (tx) => {
    // A refused scope is a 403 from the insert policy (42501); a team of another tenant
    // fails the composite foreign key (422).
    const [r] = await tx<CannedRow>`
      insert into public.canned_responses (tenant_id, scope, team_id, owner_id, short_code, title, body, created_by)
      values (${access.tenantId}, ${body.scope}, ${body.scope === 'team' ? body.team_id! : null},
              ${body.scope === 'personal' ? tx`private.current_user_id()` : null},
              ${body.short_code}, ${body.title}, ${body.body}, private.current_user_id())
      returning ${tx.columns(CANNED_COLUMNS)}
    `;
    return r;
  });
  return c.json(row, 201);
};

async function visibleCanned(tx: Tx, tenantId: string, id: string): Promise<CannedRow> {
  const [r] = await tx<CannedRow>`
    select ${tx.columns(CANNED_COLUMNS)} from public.canned_responses where tenant_id = ${tenantId} and id = ${id}
  `;
  if (!r) throw notFound('Canned response');
  return r;
}

const get: TicketsHandler<typeof routes.get> = async (c) => {
  const { cannedId } = c.req.valid('param');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, (tx) => visibleCanned(tx, access.tenantId, cannedId));
  return c.json(row, 200);
};

const update: TicketsHandler<typeof routes.update> = async (c) => {
  const { cannedId } = c.req.valid('param');
  const body = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, async (tx) => {
    const current = await visibleCanned(tx, access.tenantId, cannedId);
    // The words of a template an automation rule sends are that rule's reply: an API key
    // changes them only with the scopes a rule needs (tickets:read, tickets:write), or a
    // key refused the rule itself rewrote what it says to every customer.
    const key = caller(c).apiKey;
    if (key && body.body !== undefined) {
      const [{ sent }] = await tx<{ sent: boolean }>`
        select exists (
          select 1 from public.automation_rules r
          where r.tenant_id = ${access.tenantId} and exists (
            select 1 from jsonb_array_elements(r.actions) a
            where a ->> 'type' = 'send_canned' and lower(a ->> 'canned_response_id') = ${cannedId}::text)
        ) as sent`;
      if (sent) requireScopes(key.scopes, ['tickets:read', 'tickets:write'], 'Automation rules send this canned response');
    }
    // Only what the body names is written, over the row as it is when locked: a
    // concurrent change to another field stays (no read-then-write of every column).
    const [r] = await tx<CannedRow>`
      update public.canned_responses set
        short_code = coalesce(${body.short_code ?? null}::text, short_code),
        title = coalesce(${body.title ?? null}::text, title),
        body = coalesce(${body.body ?? null}::text, body)
      where tenant_id = ${access.tenantId} and id = ${cannedId}
      returning ${tx.columns(CANNED_COLUMNS)}
    `;
    // Seen but not updated: the update policy refused (an agent and a tenant-wide one).
    if (!r) throw forbiddenToKeep(current.scope);
    return r;
  });
  return c.json(row, 200);
};

const remove: TicketsHandler<typeof routes.remove> = async (c) => {
  const { cannedId } = c.req.valid('param');
  const access = c.var.access;
  await callerDb(c, access.tenantId, async (tx) => {
    const current = await visibleCanned(tx, access.tenantId, cannedId);
    const deleted = await tx`
      delete from public.canned_responses where tenant_id = ${access.tenantId} and id = ${cannedId} returning id
    `;
    if (!deleted.length) throw forbiddenToKeep(current.scope);
  });
  return c.body(null, 204);
};

/** Seen but refused by the update or delete policy: only an admin keeps tenant-wide and
 *  team templates (a personal one is seen by its owner alone, who may change it). */
function forbiddenToKeep(scope: string) {
  return forbidden(`Only admins change ${scope === 'team' ? 'team' : 'tenant-wide'} canned responses`);
}

export const cannedResponses = createRouter()
  .openapi(routes.list, list)
  .openapi(routes.create, create)
  .openapi(routes.get, get)
  .openapi(routes.update, update)
  .openapi(routes.remove, remove);
