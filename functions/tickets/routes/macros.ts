// Macros: named action lists staff apply to a ticket in one request. Each action runs as
// the caller, under RLS, through the statements the API's own routes run (status,
// priority, hand-off, tags, messages, canned responses), in order, in one transaction:
// the status machine, the hand-off rules and the audit trail treat it as the caller's
// own change, and one refused action refuses the whole macro, naming the action.
import { createRoute, z } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb, type TenantAccess } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import type { Tx } from '../../../shared/db.ts';
import { ApiError, conflict, forbidden, notFound, toApiError, unprocessable } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Checked, Column, Selected } from '../../../shared/rows.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  jsonBody,
  jsonResponse,
  keysetPage,
  textsThenIdCursor,
} from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { fillCannedResponse, handOff, readBack, requireStaff, type TicketsHandler, visibleTicket } from './common.ts';

const MACRO_COLUMNS = [
  'id',
  'tenant_id',
  'scope',
  'owner_id',
  'name',
  'description',
  'actions',
  'created_by',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'macros'>[];
type MacroAction = z.infer<typeof s.MacroActionSchema>;
type MacroRow = Checked<
  Selected<'macros', typeof MACRO_COLUMNS>,
  { scope: z.infer<typeof s.MacroScopeSchema>; actions: MacroAction[] }
>;

const routes = {
  list: createRoute({
    method: 'get',
    path: '/macros',
    summary: "The macros you may apply (staff): the tenant's and your own",
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('agent', { scope: 'tickets:read' }),
    request: { query: s.ListMacrosQuery },
    responses: {
      200: jsonResponse(z.object({ items: z.array(s.MacroSchema), next: z.string().nullable() }), 'A page of macros, by name'),
      ...commonErrors,
    },
  }),
  create: createRoute({
    method: 'post',
    path: '/macros',
    summary: 'Add a macro: tenant-wide (admins) or personal (staff)',
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'workflow:manage' }),
    request: { body: jsonBody(s.MacroBody) },
    responses: { 201: jsonResponse(s.MacroSchema, 'The macro'), ...commonErrors, ...conflictError },
  }),
  get: createRoute({
    method: 'get',
    path: '/macros/{macroId}',
    summary: 'One macro',
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('agent', { scope: 'tickets:read' }),
    request: { params: s.MacroIdParam },
    responses: { 200: jsonResponse(s.MacroSchema, 'The macro'), ...commonErrors },
  }),
  update: createRoute({
    method: 'patch',
    path: '/macros/{macroId}',
    summary: "Change a macro's name, description or actions",
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'workflow:manage' }),
    request: { params: s.MacroIdParam, body: jsonBody(s.UpdateMacroBody) },
    responses: { 200: jsonResponse(s.MacroSchema, 'The macro'), ...commonErrors, ...conflictError },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/macros/{macroId}',
    summary: 'Remove a macro',
    ...apiKeyScope('workflow:manage'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'workflow:manage' }),
    request: { params: s.MacroIdParam },
    responses: { 204: { description: 'Removed' }, ...commonErrors },
  }),
  apply: createRoute({
    method: 'post',
    path: '/{id}/macros/{macroId}/apply',
    summary: 'Apply a macro to the ticket (staff): all its actions, in order, or none',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // staff: checked once the ticket is known visible
    request: { params: s.ApplyMacroParam },
    responses: {
      200: jsonResponse(
        z.object({ ticket: z.union([s.TicketSchema, s.TicketOutOfSightSchema]), applied: z.number().int() }),
        'The ticket after the macro',
      ),
      ...commonErrors,
      ...conflictError,
    },
  }),
};

async function visibleMacro(tx: Tx, tenantId: string, id: string): Promise<MacroRow> {
  const [m] = await tx<MacroRow>`
    select ${tx.columns(MACRO_COLUMNS)} from public.macros where tenant_id = ${tenantId} and id = ${id}
  `;
  if (!m) throw notFound('Macro');
  return m;
}

const list: TicketsHandler<typeof routes.list> = async (c) => {
  const access = c.var.access;
  const q = c.req.valid('query');
  const after = cursorValues(q.cursor, 3, textsThenIdCursor(2));
  // Past the 500th a list was cut with nothing to say so: pages, with `next`.
  const rows = await callerDb(c, access.tenantId, (tx) =>
    tx<MacroRow>`
      select ${tx.columns(MACRO_COLUMNS)} from public.macros where tenant_id = ${access.tenantId}
        and (${after?.[0] ?? null}::text is null
             or (name, scope, id) > (${after?.[0] ?? null}::text, ${after?.[1] ?? null}::text, ${after?.[2] ?? null}::uuid))
      order by name, scope, id limit ${q.limit + 1}
    `);
  return c.json(keysetPage(rows, q.limit, (m) => [m.name, m.scope, m.id]), 200);
};

const create: TicketsHandler<typeof routes.create> = async (c) => {
  const body = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, async (tx) => {
    const [m] = await tx<MacroRow>`
      insert into public.macros (tenant_id, scope, owner_id, name, description, actions, created_by)
      values (${access.tenantId}, ${body.scope}, ${body.scope === 'personal' ? tx`private.current_user_id()` : null},
              ${body.name}, ${body.description ?? null}, ${tx.json(body.actions)}, private.current_user_id())
      returning ${tx.columns(MACRO_COLUMNS)}
    `;
    return m;
  });
  return c.json(row, 201);
};

const get: TicketsHandler<typeof routes.get> = async (c) => {
  const { macroId } = c.req.valid('param');
  const access = c.var.access;
  return c.json(await callerDb(c, access.tenantId, (tx) => visibleMacro(tx, access.tenantId, macroId)), 200);
};

const update: TicketsHandler<typeof routes.update> = async (c) => {
  const { macroId } = c.req.valid('param');
  const body = c.req.valid('json');
  const access = c.var.access;
  const row = await callerDb(c, access.tenantId, async (tx) => {
    await visibleMacro(tx, access.tenantId, macroId);
    // Only what the body names is written, over the row as it is when locked: a
    // concurrent change to another field stays (no read-then-write of every column).
    const [m] = await tx<MacroRow>`
      update public.macros set
        name = coalesce(${body.name ?? null}::text, name),
        description = case when ${'description' in body} then ${body.description ?? null}::text else description end,
        actions = coalesce(${body.actions ? tx.json(body.actions) : null}::jsonb, actions)
      where tenant_id = ${access.tenantId} and id = ${macroId}
      returning ${tx.columns(MACRO_COLUMNS)}
    `;
    if (!m) throw forbidden('Only admins change tenant-wide macros');
    return m;
  });
  return c.json(row, 200);
};

const remove: TicketsHandler<typeof routes.remove> = async (c) => {
  const { macroId } = c.req.valid('param');
  const access = c.var.access;
  await callerDb(c, access.tenantId, async (tx) => {
    await visibleMacro(tx, access.tenantId, macroId);
    const deleted = await tx`delete from public.macros where tenant_id = ${access.tenantId} and id = ${macroId} returning id`;
    if (!deleted.length) throw forbidden('Only admins remove tenant-wide macros');
  });
  return c.body(null, 204);
};

/** One action, as the caller, with the statement its own route runs. */
async function runAction(tx: Tx, access: TenantAccess, ticketId: string, a: MacroAction): Promise<void> {
  const t = access.tenantId;
  const changed = (rows: readonly unknown[]): void => {
    // Seen before the macro but not changed now: an earlier action took it out of sight.
    if (!rows.length) throw conflict('out_of_sight', 'An earlier action took the ticket out of your sight');
  };
  // The actions that do not update the ticket's row ask first: a hand-off or a message on a
  // ticket an earlier action moved away would answer 404 or 403, as if the caller had never
  // seen it or could not write there.
  const inSight = async (): Promise<void> =>
    changed(await tx`select id from public.tickets where tenant_id = ${t} and id = ${ticketId}`);
  switch (a.type) {
    case 'set_status':
      return changed(
        await tx`update public.tickets set status = ${a.status} where tenant_id = ${t} and id = ${ticketId} returning id`,
      );
    case 'set_priority':
      return changed(
        await tx`update public.tickets set priority = ${a.priority} where tenant_id = ${t} and id = ${ticketId} returning id`,
      );
    case 'set_team':
      await inSight();
      return handOff(tx, t, ticketId, { team: a.team_id });
    case 'assign':
      await inSight();
      return handOff(tx, t, ticketId, { assignee: a.user_id });
    case 'add_tags':
      return changed(
        await tx`
        update public.tickets set tags = tags || array(select x from unnest(${[
          ...new Set(a.tags),
        ]}::text[]) x where not x = any (tags))
        where tenant_id = ${t} and id = ${ticketId} returning id`,
      );
    case 'remove_tags':
      return changed(
        await tx`
        update public.tickets set tags = array(select x from unnest(tags) x where not x = any (${a.tags}::text[]))
        where tenant_id = ${t} and id = ${ticketId} returning id`,
      );
    case 'add_note':
    case 'reply':
      await inSight();
      await tx`insert into public.ticket_messages (tenant_id, ticket_id, type, content)
               values (${t}, ${ticketId}, ${a.type === 'add_note' ? 'note' : 'message'}, ${a.content})`;
      return;
    case 'send_canned': {
      await inSight();
      // As POST /{id}/messages answers it: the template is there, its text is not.
      const text = await fillCannedResponse(tx, t, a.canned_response_id, ticketId);
      if (!text) {
        throw unprocessable('The canned response is empty once filled', {
          fields: [{ field: 'canned_response_id', message: 'fills in as empty text' }],
        });
      }
      await tx`insert into public.ticket_messages (tenant_id, ticket_id, type, content)
               values (${t}, ${ticketId}, 'message', ${text})`;
      return;
    }
  }
}

const apply: TicketsHandler<typeof routes.apply> = async (c) => {
  const { id, macroId } = c.req.valid('param');
  const access = c.var.access;
  const result = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    requireStaff(access);
    const macro = await visibleMacro(tx, access.tenantId, macroId);
    for (const [i, action] of macro.actions.entries()) {
      try {
        await runAction(tx, access, id, action);
      } catch (err) {
        const e = toApiError(err);
        if (e.status >= 500) throw err;
        // The whole macro rolls back; the client learns which action was refused and why.
        throw new ApiError(e.status, e.code, `Action ${i + 1} (${action.type}): ${e.message}`, {
          action: i,
          type: action.type,
          ...(e.details && typeof e.details === 'object' ? e.details : {}),
        }, e.headers);
      }
    }
    return { ticket: await readBack(tx, access.tenantId, id), applied: macro.actions.length };
  });
  return c.json(result, 200);
};

export const macros = createRouter()
  .openapi(routes.list, list)
  .openapi(routes.create, create)
  .openapi(routes.get, get)
  .openapi(routes.update, update)
  .openapi(routes.remove, remove)
  .openapi(routes.apply, apply);
