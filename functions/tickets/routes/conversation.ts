// The conversation on a ticket: replies (everyone who sees the ticket) and internal
// notes (staff), and editing one's own messages.
import { createRoute } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { forbidden, notFound, unprocessable } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import { commonErrors, conflictError, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import {
  fillCannedResponse,
  MESSAGE_COLUMNS,
  type MessageRow,
  requireStaff,
  type TicketsHandler,
  visibleTicket,
} from './common.ts';

const routes = {
  post: createRoute({
    method: 'post',
    path: '/{id}/messages',
    summary: 'Reply on a ticket, or add an internal note (staff)',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // notes: staff
    request: { params: s.TicketIdParam, body: jsonBody(s.MessageBody) },
    // 409 ticket_merged: the ticket was merged into another (details.merged_into_id).
    responses: { 201: jsonResponse(s.MessageSchema, 'The message'), ...commonErrors, ...conflictError },
  }),
  edit: createRoute({
    method: 'patch',
    path: '/{id}/messages/{messageId}',
    summary: 'Edit one of your own messages',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // the author only
    request: { params: s.MessageParam, body: jsonBody(s.EditMessageBody) },
    responses: { 200: jsonResponse(s.MessageSchema, 'The message'), ...commonErrors },
  }),
};

const post: TicketsHandler<typeof routes.post> = async (c) => {
  const { id } = c.req.valid('param');
  const body = c.req.valid('json');
  const access = c.var.access;
  // Notes are staff-only in the database (ticket_messages_before_insert: PT403).
  const message = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    let content = body.content;
    if (body.canned_response_id !== undefined) {
      // Templates are for staff (customers see none: a 404 tells them nothing either).
      requireStaff(access);
      content = await fillCannedResponse(tx, access.tenantId, body.canned_response_id, id);
      if (!content) {
        throw unprocessable('The canned response is empty once filled', {
          fields: [{ field: 'canned_response_id', message: 'fills in as empty text' }],
        });
      }
    }
    const [m] = await tx<MessageRow>`
      insert into public.ticket_messages (tenant_id, ticket_id, type, content)
      values (${access.tenantId}, ${id}, ${body.type}, ${content!})
      returning ${tx.columns(MESSAGE_COLUMNS)}
    `;
    return m;
  });
  return c.json(message, 201);
};

const edit: TicketsHandler<typeof routes.edit> = async (c) => {
  const { id, messageId } = c.req.valid('param');
  const { content } = c.req.valid('json');
  const access = c.var.access;
  const message = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    const [m] = await tx<MessageRow>`
      update public.ticket_messages set content = ${content}
      where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${messageId}
      returning ${tx.columns(MESSAGE_COLUMNS)}
    `;
    if (m) return m;
    // The update policy refused, or there is no such message: the rule says which.
    const [refused] = await tx<{ reason: string | null }>`
      select private.message_edit_refusal(m) as reason from public.ticket_messages m
      where m.tenant_id = ${access.tenantId} and m.ticket_id = ${id} and m.id = ${messageId}
    `;
    if (!refused) throw notFound('Message');
    throw forbidden(refused.reason ?? 'The message cannot be edited');
  });
  return c.json(message, 200);
};

export const conversation = createRouter()
  .openapi(routes.post, post)
  .openapi(routes.edit, edit);
