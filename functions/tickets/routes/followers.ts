// Followers of a ticket and each person's notifications. The database decides who may
// follow (staff of the tenant, added by staff who see the ticket; customers of the
// tenant, added by the ticket's requester or by staff, where the tenant's
// settings.customer_followers is true), who sees the followers (staff all of them; a
// customer their own follow and those they added), and that notifications are their
// owner's alone; these routes shape the answers.
import { createRoute, z } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { caller, callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { conflict, notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Checked, Column, JsonObject, Selected } from '../../../shared/rows.ts';
import { commonErrors, cursorValues, jsonBody, jsonResponse, keysetCursor, keysetPage } from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { security, type TicketsHandler, visibleTicket } from './common.ts';

const FOLLOWER_COLUMNS = ['user_id', 'reason', 'added_by', 'created_at'] as const satisfies readonly Column<
  'ticket_followers'
>[];
type FollowerRow = Checked<
  Selected<'ticket_followers', typeof FOLLOWER_COLUMNS>,
  { reason: z.infer<typeof s.FollowReasonSchema> }
>;
const NOTIFICATION_COLUMNS = [
  'id',
  'ticket_id',
  'type',
  'actor_user_id',
  'data',
  'read_at',
  'created_at',
] as const satisfies readonly Column<'notifications'>[];
type NotificationRow = Checked<Selected<'notifications', typeof NOTIFICATION_COLUMNS>, { data: JsonObject }>;

const routes = {
  list: createRoute({
    method: 'get',
    path: '/{id}/followers',
    summary: 'Who follows the ticket (staff: everyone; a customer: themselves and the colleagues they added)',
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }), // the select policy decides which rows
    request: { params: s.TicketIdParam },
    responses: { 200: jsonResponse(z.object({ items: z.array(s.FollowerSchema) }), 'Followers'), ...commonErrors },
  }),
  follow: createRoute({
    method: 'post',
    path: '/{id}/followers',
    summary:
      "Follow the ticket, or add a colleague (staff); the requester adds fellow customers where the tenant allows it (settings.customer_followers); following twice changes nothing (200; 409 already_following where the existing follow is not the caller's to see)",
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // the insert policy and trigger decide
    request: { params: s.TicketIdParam, body: jsonBody(s.FollowBody) },
    responses: {
      200: jsonResponse(s.FollowerSchema, 'Already a follower'),
      201: jsonResponse(s.FollowerSchema, 'Now a follower'),
      409: s.notStaffError,
      ...commonErrors,
    },
  }),
  unfollow: createRoute({
    method: 'delete',
    path: '/{id}/followers/{userId}',
    summary: 'Stop following (yourself), or remove a follower (staff who see the ticket; a customer those they added)',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // the delete policy decides
    request: { params: s.FollowerParam },
    responses: { 204: { description: 'Removed' }, ...commonErrors },
  }),
  // A person's own inbox: no scope, so API keys are refused (a key acts as its creator,
  // and an integration has no business reading or clearing that person's notifications).
  notifications: createRoute({
    method: 'get',
    path: '/notifications',
    summary: 'Your notifications in the tenant, newest first, with the unread count',
    security,
    middleware: needs.activeTenantRole('user'),
    request: { query: s.NotificationsQuery },
    responses: {
      200: jsonResponse(
        z.object({ items: z.array(s.NotificationSchema), next: z.string().nullable(), unread: z.number().int() }),
        'Notifications',
      ),
      ...commonErrors,
    },
  }),
  read: createRoute({
    method: 'post',
    path: '/notifications/read',
    summary: 'Mark some (ids) or all of your notifications read',
    security,
    middleware: needs.activeTenantRole('user', { write: true }),
    request: { body: jsonBody(s.MarkReadBody) },
    responses: { 200: jsonResponse(z.object({ updated: z.number().int() }), 'How many changed'), ...commonErrors },
  }),
};

const list: TicketsHandler<typeof routes.list> = async (c) => {
  const { id } = c.req.valid('param');
  const access = c.var.access;
  const items = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    return await tx<FollowerRow>`
      select ${tx.columns(FOLLOWER_COLUMNS)} from public.ticket_followers
      where tenant_id = ${access.tenantId} and ticket_id = ${id} order by created_at, id
    `;
  });
  return c.json({ items }, 200);
};

const follow: TicketsHandler<typeof routes.follow> = async (c) => {
  const { id } = c.req.valid('param');
  const body = c.req.valid('json');
  const access = c.var.access;
  const userId = body.user_id ?? caller(c).user.id;
  const [row, created] = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    const [added] = await tx<FollowerRow>`
      insert into public.ticket_followers (tenant_id, ticket_id, user_id)
      values (${access.tenantId}, ${id}, ${userId})
      on conflict (tenant_id, ticket_id, user_id) do nothing
      returning ${tx.columns(FOLLOWER_COLUMNS)}
    `;
    if (added) return [added, true] as const;
    const [existing] = await tx<FollowerRow>`
      select ${tx.columns(FOLLOWER_COLUMNS)} from public.ticket_followers
      where tenant_id = ${access.tenantId} and ticket_id = ${id} and user_id = ${userId}
    `;
    // A follow the caller may not see (a customer re-adding a colleague staff added): it
    // exists, but its row is not theirs to read.
    if (!existing) throw conflict('already_following', 'This person already follows the ticket');
    return [existing, false] as const;
  });
  return created ? c.json(row, 201) : c.json(row, 200);
};

const unfollow: TicketsHandler<typeof routes.unfollow> = async (c) => {
  const { id, userId } = c.req.valid('param');
  const access = c.var.access;
  await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    const deleted = await tx`
      delete from public.ticket_followers where tenant_id = ${access.tenantId} and ticket_id = ${id} and user_id = ${userId}
      returning id
    `;
    if (!deleted.length) throw notFound('Follower');
  });
  return c.body(null, 204);
};

const notifications: TicketsHandler<typeof routes.notifications> = async (c) => {
  const q = c.req.valid('query');
  const access = c.var.access;
  const after = cursorValues(q.cursor, 2, keysetCursor('timestamptz'));
  const me = caller(c).user.id;
  const { rows, unread } = await callerDb(c, access.tenantId, async (tx) => {
    // The policies keep others' rows out; user_id here picks the index.
    const rows = await tx<NotificationRow & { sort_key: string }>`
      select ${tx.columns(NOTIFICATION_COLUMNS)}, created_at::text as sort_key from public.notifications
      where user_id = ${me} and tenant_id = ${access.tenantId}
        ${q.unread ? tx`and read_at is null` : tx``}
        ${after ? tx`and (created_at, id) < (${after[0]}::timestamptz, ${after[1]}::uuid)` : tx``}
      order by created_at desc, id desc
      limit ${q.limit + 1}
    `;
    const [{ n }] = await tx<{ n: number }>`
      select count(*)::int as n from public.notifications
      where user_id = ${me} and tenant_id = ${access.tenantId} and read_at is null
    `;
    return { rows, unread: n };
  });
  const page = keysetPage(rows, q.limit, (n) => [n.sort_key, n.id]);
  return c.json({ items: page.items.map(({ sort_key: _, ...n }) => n), next: page.next, unread }, 200);
};

const read: TicketsHandler<typeof routes.read> = async (c) => {
  const body = c.req.valid('json');
  const access = c.var.access;
  const me = caller(c).user.id;
  const updated = await callerDb(c, access.tenantId, async (tx) => {
    const rows = await tx`
      update public.notifications set read_at = now()
      where user_id = ${me} and tenant_id = ${access.tenantId} and read_at is null
        ${body.ids ? tx`and id = any(${body.ids}::uuid[])` : tx``}
      returning id
    `;
    return rows.length;
  });
  return c.json({ updated }, 200);
};

export const followers = createRouter()
  .openapi(routes.notifications, notifications)
  .openapi(routes.read, read)
  .openapi(routes.list, list)
  .openapi(routes.follow, follow)
  .openapi(routes.unfollow, unfollow);
