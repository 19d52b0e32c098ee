// The tickets API: the support-ticket workflow. Every query runs as the caller under
// RLS in the request's transaction; the database enforces the status machine, the
// assignee's role, numbering, SLA dates and first responses, and this module shapes
// the API around them (clear 403/404/409s, filters, pagination, idempotent creates).
import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { activeTenant, type AuthEnv, caller, callerDb, requireUser, type TenantAccess } from '../../shared/auth/context.ts';
import type { Tx } from '../../shared/db.ts';
import { conflict, forbidden, notFound } from '../../shared/errors.ts';
import { createApp } from '../../shared/http.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  encodeCursor,
  jsonBody,
  jsonResponse,
  sortKeyAndId,
} from '../../shared/schemas/common.ts';
import { objectStorage } from '../../shared/storage.ts';
import * as s from './schemas.ts';

export const app = createApp<AuthEnv>('tickets', {
  title: 'Tickets API',
  description: 'The support-ticket workflow: tickets, replies, internal notes, assignment, SLA, search, attachments.',
});

// Every route is for a signed-in user (the SLA sweep is a job: shared/jobs/tasks/sla-sweep.ts).
app.use('*', async (c, next) => {
  if (c.req.method === 'OPTIONS' || c.req.path.endsWith('/openapi.json')) return await next();
  return await requireUser()(c, next);
});

const security = [{ bearerAuth: [] }];
type C = Context<AuthEnv>;

const TICKET_COLUMNS = `id, tenant_id, number, title, description, status, priority, department, team_id, created_by,
  assigned_to, due_date, first_response_due_at, first_response_at, resolved_at, closed_at,
  sla_first_response_breached_at, sla_resolution_breached_at, tags, metadata, merged_into_id,
  created_at, updated_at, deleted_at`;
const MESSAGE_COLUMNS = 'id, ticket_id, author_id, type, content, created_at, edited_at';
const ATTACHMENT_COLUMNS = 'id, ticket_id, message_id, file_name, content_type, size_bytes, status, uploaded_by, created_at';
const isStaff = (a: TenantAccess) => a.role !== 'user';

function requireStaff(a: TenantAccess): void {
  if (!isStaff(a)) throw forbidden('This needs the agent role in the tenant');
}

/** The ticket as the caller may see it, if they may. */
async function findTicket(tx: Tx, tenantId: string, id: string) {
  const [t] = await tx`select ${tx.unsafe(TICKET_COLUMNS)} from public.tickets where tenant_id = ${tenantId} and id = ${id}`;
  return t;
}

/** A ticket the caller can see, or 404 (other tenants' tickets are simply not there). */
async function visibleTicket(tx: Tx, tenantId: string, id: string) {
  const t = await findTicket(tx, tenantId, id);
  if (!t) throw notFound('Ticket');
  return t;
}

/** The ticket as the caller may still see it after a change, else just its id: handing
 *  a ticket to another agent or team (or filing it for someone else) can take it out of
 *  the caller's sight. */
async function readBack(tx: Tx, tenantId: string, id: string) {
  return (await findTicket(tx, tenantId, id)) ?? { id, tenant_id: tenantId };
}

/** Assignee and team changes go through private.hand_off_ticket (see there why). */
async function handOff(
  tx: Tx,
  tenantId: string,
  id: string,
  change: { assignee?: string | null; team?: string | null },
) {
  await tx`
    select private.hand_off_ticket(${tenantId}, ${id}, ${'assignee' in change}, ${change.assignee ?? null},
                                   ${'team' in change}, ${change.team ?? null})
  `;
}

// ---------------------------------------------------------------- create

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

app.openapi(
  createRoute({
    method: 'post',
    path: '/',
    summary: 'Open a ticket. Send Idempotency-Key to make retries safe.',
    security,
    request: {
      body: jsonBody(s.CreateTicketBody),
      headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
    },
    responses: {
      201: jsonResponse(s.TicketSchema, 'The ticket (or, for a repeated key, the first result)'),
      ...commonErrors,
      ...conflictError,
    },
  }),
  async (c) => {
    const body = c.req.valid('json');
    const key = c.req.valid('header')['idempotency-key'];
    const access = activeTenant(c, 'user', { write: true });
    if (!isStaff(access) && (body.team_id || body.assigned_to || body.requester_id)) {
      throw forbidden('Customers cannot route, assign or file tickets for others');
    }
    const requestHash = key ? await sha256Hex(JSON.stringify(body)) : null;
    const result = await callerDb(c, access.tenantId, async (tx) => {
      if (key) {
        const [claim] = await tx`select * from private.claim_idempotency_key(${access.tenantId}, ${key}, ${requestHash})`;
        if (!claim.claimed) {
          if (claim.request_hash !== requestHash) {
            throw conflict(
              'idempotency_key_reused',
              'This Idempotency-Key was used with a different request',
            );
          }
          return { replayed: true, ticket: claim.response };
        }
      }
      // The database chooses the id; the new ticket may be invisible to its creator (an
      // agent filing for a customer on another team), so it is read back from the
      // setting the insert trigger leaves, not with RETURNING.
      await tx`
        insert into public.tickets (tenant_id, title, description, priority, department, team_id, assigned_to,
                                    created_by, due_date, tags, metadata)
        values (${access.tenantId}, ${body.title}, ${body.description ?? null}, ${body.priority},
                ${body.department}, ${body.team_id ?? null}, ${body.assigned_to ?? null}, ${body.requester_id ?? null},
                ${body.due_date ?? null}, ${body.tags}, ${tx.json(body.metadata as never)})
      `;
      const [{ id }] = await tx`select current_setting('private.created_ticket_id') as id`;
      const ticket = await readBack(tx, access.tenantId, id);
      if (key) {
        await tx`
          select private.store_idempotent_response(${access.tenantId}, ${key}, 201, ${
          tx.json(JSON.parse(JSON.stringify(ticket)))
        })
        `;
      }
      return { replayed: false, ticket };
    });
    if (result.replayed) c.header('idempotent-replayed', 'true');
    return c.json(result.ticket as never, 201);
  },
);

// ---------------------------------------------------------------- list and search

const PRIORITY_RANK = `(case priority when 'urgent' then 4 when 'high' then 3 when 'medium' then 2 else 1 end)`;

app.openapi(
  createRoute({
    method: 'get',
    path: '/',
    summary: 'List and search tickets the caller may see: filters, sort, keyset pagination, optional total',
    security,
    request: { query: s.ListQuery },
    responses: { 200: jsonResponse(s.TicketPageSchema, 'A page of tickets'), ...commonErrors },
  }),
  async (c) => {
    const q = c.req.valid('query');
    const access = activeTenant(c, 'user');
    const me = caller(c).user.id;
    const sort = q.sort ?? (q.q ? 'relevance' : 'created_at');
    const desc = q.order === 'desc';
    if (q.include_deleted && access.role !== 'admin' && access.role !== 'super_admin') {
      throw forbidden('Only admins see deleted tickets');
    }
    const after = cursorValues(q.cursor, 2, sortKeyAndId);

    const page = await callerDb(c, access.tenantId, async (tx) => {
      const sortExpr = {
        created_at: tx`created_at`,
        updated_at: tx`updated_at`,
        number: tx`number::double precision`,
        priority: tx.unsafe(`${PRIORITY_RANK}::double precision`),
        relevance: tx`ts_rank(search, websearch_to_tsquery('english', ${q.q ?? ''}))::double precision`,
      }[sort];
      const keyType = sort === 'created_at' || sort === 'updated_at' ? tx`timestamptz` : tx`double precision`;
      const where = [
        tx`tenant_id = ${access.tenantId}`,
        q.include_deleted ? tx`true` : tx`deleted_at is null`,
        q.status ? tx`status = any(${q.status})` : tx`true`,
        q.priority ? tx`priority = any(${q.priority})` : tx`true`,
        q.department ? tx`department = any(${q.department})` : tx`true`,
        q.team_id ? tx`team_id = ${q.team_id}` : tx`true`,
        q.assignee === 'none'
          ? tx`assigned_to is null`
          : q.assignee
          ? tx`assigned_to = ${q.assignee === 'me' ? me : q.assignee}`
          : tx`true`,
        q.requester ? tx`created_by = ${q.requester === 'me' ? me : q.requester}` : tx`true`,
        q.tag ? tx`tags @> array[${q.tag}]::text[]` : tx`true`,
        q.number ? tx`number = ${q.number}` : tx`true`,
        q.created_after ? tx`created_at >= ${q.created_after}` : tx`true`,
        q.created_before ? tx`created_at < ${q.created_before}` : tx`true`,
        q.updated_after ? tx`updated_at >= ${q.updated_after}` : tx`true`,
        q.updated_before ? tx`updated_at < ${q.updated_before}` : tx`true`,
        q.sla_breached === undefined
          ? tx`true`
          : q.sla_breached
          ? tx`(sla_first_response_breached_at is not null or sla_resolution_breached_at is not null)`
          : tx`(sla_first_response_breached_at is null and sla_resolution_breached_at is null)`,
        q.q ? tx`search @@ websearch_to_tsquery('english', ${q.q})` : tx`true`,
      ];
      const filter = where.reduce((acc, part) => tx`${acc} and ${part}`);
      const keyset = after
        ? desc
          ? tx`and (${sortExpr}, id) < (${after[0]}::${keyType}, ${after[1]}::uuid)`
          : tx`and (${sortExpr}, id) > (${after[0]}::${keyType}, ${after[1]}::uuid)`
        : tx``;
      const direction = desc ? tx`desc` : tx`asc`;
      const rows = await tx`
        select ${tx.unsafe(TICKET_COLUMNS)}, (${sortExpr})::text as sort_key
        from public.tickets
        where ${filter} ${keyset}
        order by ${sortExpr} ${direction}, id ${direction}
        limit ${q.limit + 1}
      `;
      const total = q.include_total
        ? Number((await tx`select count(*) as n from public.tickets where ${filter}`)[0].n)
        : undefined;
      return { rows, total };
    });
    const items = page.rows.slice(0, q.limit);
    const last = items.at(-1);
    const next = page.rows.length > q.limit && last ? encodeCursor([last.sort_key, last.id]) : null;
    for (const item of items) delete item.sort_key;
    return c.json({ items, next, ...(page.total !== undefined ? { total: page.total } : {}) } as never, 200);
  },
);

// ---------------------------------------------------------------- statistics

app.openapi(
  createRoute({
    method: 'get',
    path: '/stats',
    summary: "The tenant's ticket counts by status and priority, median first-response and resolution times (staff)",
    security,
    responses: { 200: jsonResponse(s.StatsSchema, 'Statistics'), ...commonErrors },
  }),
  async (c) => {
    const access = activeTenant(c, 'agent');
    const [row] = await callerDb(
      c,
      access.tenantId,
      (tx) => tx`select private.ticket_stats(${access.tenantId}) as stats`,
    );
    return c.json(row.stats as never, 200);
  },
);

// ---------------------------------------------------------------- SLA policies

const SLA_COLUMNS = 'priority, first_response_minutes, resolution_minutes, business_hours, updated_at';

app.openapi(
  createRoute({
    method: 'get',
    path: '/sla-policies',
    summary: "The tenant's SLA targets per priority",
    security,
    responses: {
      200: jsonResponse(z.object({ items: z.array(s.SlaPolicySchema) }), 'SLA policies'),
      ...commonErrors,
    },
  }),
  async (c) => {
    const access = activeTenant(c, 'user');
    const items = await callerDb(
      c,
      access.tenantId,
      (tx) =>
        tx`select ${tx.unsafe(SLA_COLUMNS)} from public.sla_policies where tenant_id = ${access.tenantId}
         order by case priority when 'urgent' then 1 when 'high' then 2 when 'medium' then 3 else 4 end`,
    );
    return c.json({ items } as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'put',
    path: '/sla-policies/{priority}',
    summary: 'Set the SLA targets of a priority (admins); applies to tickets created or re-prioritised from now on',
    security,
    request: { params: s.PriorityParam, body: jsonBody(s.SlaPolicyBody) },
    responses: { 200: jsonResponse(s.SlaPolicySchema, 'The policy'), ...commonErrors },
  }),
  async (c) => {
    const { priority } = c.req.valid('param');
    const body = c.req.valid('json');
    const access = activeTenant(c, 'admin', { write: true });
    const [policy] = await callerDb(c, access.tenantId, (tx) =>
      tx`
        insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes, business_hours)
        values (${access.tenantId}, ${priority}, ${body.first_response_minutes}, ${body.resolution_minutes},
                ${body.business_hours ? tx.json(body.business_hours as never) : null})
        on conflict (tenant_id, priority) do update set
          first_response_minutes = excluded.first_response_minutes,
          resolution_minutes = excluded.resolution_minutes,
          business_hours = excluded.business_hours
        returning ${tx.unsafe(SLA_COLUMNS)}
      `);
    return c.json(policy as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'delete',
    path: '/sla-policies/{priority}',
    summary: 'Remove the SLA targets of a priority (admins)',
    security,
    request: { params: s.PriorityParam },
    responses: { 204: { description: 'Removed' }, ...commonErrors },
  }),
  async (c) => {
    const { priority } = c.req.valid('param');
    const access = activeTenant(c, 'admin', { write: true });
    const deleted = await callerDb(
      c,
      access.tenantId,
      (tx) => tx`delete from public.sla_policies where tenant_id = ${access.tenantId} and priority = ${priority} returning id`,
    );
    if (!deleted.length) throw notFound('SLA policy');
    return c.body(null, 204);
  },
);

// ---------------------------------------------------------------- one ticket

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}',
    summary: 'A ticket with its conversation, attachments and timeline, as the caller may see them',
    security,
    request: { params: s.TicketIdParam },
    responses: { 200: jsonResponse(s.TicketDetailSchema, 'The ticket'), ...commonErrors },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const access = activeTenant(c, 'user');
    const detail = await callerDb(c, access.tenantId, async (tx) => {
      const ticket = await visibleTicket(tx, access.tenantId, id);
      const [messages, attachments, timeline] = await Promise.all([
        tx`select ${tx.unsafe(MESSAGE_COLUMNS)} from public.ticket_messages
           where tenant_id = ${access.tenantId} and ticket_id = ${id} order by created_at, id`,
        tx`select ${tx.unsafe(ATTACHMENT_COLUMNS)} from public.attachments
           where tenant_id = ${access.tenantId} and ticket_id = ${id} order by created_at, id`,
        tx`select id::text, type, data, actor_user_id, created_at from public.ticket_events
           where tenant_id = ${access.tenantId} and ticket_id = ${id} order by ticket_events.id`,
      ]);
      return { ...ticket, messages, attachments, timeline };
    });
    return c.json(detail as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'patch',
    path: '/{id}',
    summary: 'Update fields of a ticket (staff)',
    security,
    request: { params: s.TicketIdParam, body: jsonBody(s.UpdateTicketBody) },
    responses: { 200: jsonResponse(s.TicketSchema, 'The ticket'), ...commonErrors },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const access = activeTenant(c, 'user', { write: true });
    const ticket = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      requireStaff(access);
      const set = (field: keyof typeof body) => field in body;
      await tx`
        update public.tickets set
          title = case when ${set('title')} then ${body.title ?? null}::text else title end,
          description = case when ${set('description')} then ${body.description ?? null}::text else description end,
          priority = coalesce(${body.priority ?? null}::text, priority),
          department = coalesce(${body.department ?? null}::text, department),
          due_date = case when ${set('due_date')} then ${body.due_date ?? null}::timestamptz else due_date end,
          tags = coalesce(${body.tags ?? null}::text[], tags),
          metadata = coalesce(${body.metadata ? tx.json(body.metadata as never) : null}::jsonb, metadata)
        where tenant_id = ${access.tenantId} and id = ${id}
      `;
      if (set('team_id')) await handOff(tx, access.tenantId, id, { team: body.team_id ?? null });
      return await readBack(tx, access.tenantId, id);
    });
    return c.json(ticket as never, 200);
  },
);

/** Runs a ticket update; a refused status transition becomes a 409 listing the allowed ones. */
async function transition(c: C, id: string, status: string) {
  const access = activeTenant(c, 'user', { write: true });
  return await callerDb(c, access.tenantId, async (tx) => {
    const current = await visibleTicket(tx, access.tenantId, id);
    requireStaff(access);
    if (current.status !== status) {
      const [{ allowed }] = await tx`select private.allowed_ticket_transitions(${current.status}) as allowed`;
      if (!allowed.includes(status)) {
        throw conflict('invalid_transition', `A ${current.status} ticket cannot become ${status}`, {
          from: current.status,
          to: status,
          allowed,
        });
      }
    }
    await tx`update public.tickets set status = ${status} where tenant_id = ${access.tenantId} and id = ${id}`;
    return await readBack(tx, access.tenantId, id);
  });
}

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/status',
    summary: 'Move a ticket through its workflow (staff); refused transitions are 409s listing the allowed ones',
    security,
    request: { params: s.TicketIdParam, body: jsonBody(s.TransitionBody) },
    responses: { 200: jsonResponse(s.TicketSchema, 'The ticket'), ...commonErrors, ...conflictError },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const { status } = c.req.valid('json');
    return c.json(await transition(c, id, status) as never, 200);
  },
);

app.openapi(
  createRoute({
    method: 'put',
    path: '/{id}/assignee',
    summary: 'Assign a ticket to an agent or admin, or unassign it (staff)',
    security,
    request: { params: s.TicketIdParam, body: jsonBody(s.AssignBody) },
    responses: { 200: jsonResponse(s.TicketSchema, 'The ticket'), ...commonErrors },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const { user_id } = c.req.valid('json');
    const access = activeTenant(c, 'user', { write: true });
    const ticket = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      requireStaff(access);
      await handOff(tx, access.tenantId, id, { assignee: user_id });
      return await readBack(tx, access.tenantId, id);
    });
    return c.json(ticket as never, 200);
  },
);

// ---------------------------------------------------------------- conversation

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/messages',
    summary: 'Reply on a ticket, or add an internal note (staff)',
    security,
    request: { params: s.TicketIdParam, body: jsonBody(s.MessageBody) },
    responses: { 201: jsonResponse(s.MessageSchema, 'The message'), ...commonErrors },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const access = activeTenant(c, 'user', { write: true });
    if (body.type === 'note') requireStaff(access);
    const message = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      const [m] = await tx`
        insert into public.ticket_messages (tenant_id, ticket_id, type, content)
        values (${access.tenantId}, ${id}, ${body.type}, ${body.content})
        returning ${tx.unsafe(MESSAGE_COLUMNS)}
      `;
      return m;
    });
    return c.json(message as never, 201);
  },
);

app.openapi(
  createRoute({
    method: 'patch',
    path: '/{id}/messages/{messageId}',
    summary: 'Edit one of your own messages',
    security,
    request: { params: s.MessageParam, body: jsonBody(s.EditMessageBody) },
    responses: { 200: jsonResponse(s.MessageSchema, 'The message'), ...commonErrors },
  }),
  async (c) => {
    const { id, messageId } = c.req.valid('param');
    const { content } = c.req.valid('json');
    const access = activeTenant(c, 'user', { write: true });
    const message = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      const [visible] = await tx`
        select author_id from public.ticket_messages where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${messageId}
      `;
      if (!visible) throw notFound('Message');
      if (visible.author_id !== caller(c).user.id) throw forbidden('Only the author edits a message');
      const [m] = await tx`
        update public.ticket_messages set content = ${content}
        where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${messageId}
        returning ${tx.unsafe(MESSAGE_COLUMNS)}
      `;
      return m;
    });
    if (!message) throw forbidden('System messages cannot be edited');
    return c.json(message as never, 200);
  },
);

// ---------------------------------------------------------------- attachments

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/attachments',
    summary: 'Register an attachment and get a signed URL to upload its bytes to',
    security,
    request: { params: s.TicketIdParam, body: jsonBody(s.AttachmentBody) },
    responses: {
      201: jsonResponse(
        z.object({ attachment: s.AttachmentSchema, upload: s.SignedUrlSchema }),
        'Where to upload',
      ),
      ...commonErrors,
    },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const body = c.req.valid('json');
    const access = activeTenant(c, 'user', { write: true });
    const attachment = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      if (body.message_id) {
        const [m] =
          await tx`select 1 from public.ticket_messages where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${body.message_id}`;
        if (!m) throw notFound('Message');
      }
      const [a] = await tx`
        insert into public.attachments (tenant_id, ticket_id, message_id, file_name, content_type, size_bytes)
        values (${access.tenantId}, ${id}, ${body.message_id ?? null}, ${body.file_name},
                ${body.content_type}, ${body.size_bytes})
        returning ${tx.unsafe(ATTACHMENT_COLUMNS)}, bucket, path
      `;
      return a;
    });
    const upload = await objectStorage().createUploadUrl(attachment.bucket, attachment.path, {
      contentType: body.content_type,
      size: body.size_bytes,
    });
    delete attachment.bucket;
    delete attachment.path;
    return c.json({ attachment, upload } as never, 201);
  },
);

app.openapi(
  createRoute({
    method: 'get',
    path: '/{id}/attachments/{attachmentId}',
    summary: 'An attachment with a short-lived signed download URL',
    security,
    request: { params: s.AttachmentParam },
    responses: {
      200: jsonResponse(
        z.object({ attachment: s.AttachmentSchema, download: s.SignedUrlSchema.nullable() }),
        'The attachment',
      ),
      ...commonErrors,
    },
  }),
  async (c) => {
    const { id, attachmentId } = c.req.valid('param');
    const access = activeTenant(c, 'user');
    const attachment = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      const [a] = await tx`
        select ${tx.unsafe(ATTACHMENT_COLUMNS)}, bucket, path from public.attachments
        where tenant_id = ${access.tenantId} and ticket_id = ${id} and id = ${attachmentId}
      `;
      if (!a) throw notFound('Attachment');
      if (a.status === 'pending' && (await objectStorage().exists(a.bucket, a.path))) {
        await tx`select private.mark_attachment_uploaded(${access.tenantId}, ${attachmentId})`;
        a.status = 'uploaded';
      }
      return a;
    });
    const download = attachment.status === 'uploaded'
      ? await objectStorage().createDownloadUrl(attachment.bucket, attachment.path, {
        fileName: attachment.file_name,
        contentType: attachment.content_type,
      })
      : null;
    delete attachment.bucket;
    delete attachment.path;
    return c.json({ attachment, download } as never, 200);
  },
);

// ---------------------------------------------------------------- delete, restore, merge

app.openapi(
  createRoute({
    method: 'delete',
    path: '/{id}',
    summary: 'Soft-delete a ticket (admins); it drops out of everyone else’s reads',
    security,
    request: { params: s.TicketIdParam },
    responses: { 200: jsonResponse(s.TicketSchema, 'The deleted ticket'), ...commonErrors },
  }),
  async (c) => c.json(await setDeleted(c, c.req.valid('param').id, true) as never, 200),
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/restore',
    summary: 'Restore a soft-deleted ticket (admins)',
    security,
    request: { params: s.TicketIdParam },
    responses: { 200: jsonResponse(s.TicketSchema, 'The restored ticket'), ...commonErrors },
  }),
  async (c) => c.json(await setDeleted(c, c.req.valid('param').id, false) as never, 200),
);

async function setDeleted(c: C, id: string, deleted: boolean) {
  const access = activeTenant(c, 'user', { write: true });
  return await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    if (access.role !== 'admin' && access.role !== 'super_admin') {
      throw forbidden('Only admins delete and restore tickets');
    }
    const [t] = await tx`
      update public.tickets set deleted_at = ${deleted ? tx`coalesce(deleted_at, now())` : null}
      where tenant_id = ${access.tenantId} and id = ${id}
      returning ${tx.unsafe(TICKET_COLUMNS)}
    `;
    return t;
  });
}

app.openapi(
  createRoute({
    method: 'post',
    path: '/{id}/merge',
    summary: 'Merge this ticket into another of the tenant (staff): messages move, this one closes with a pointer',
    security,
    request: { params: s.TicketIdParam, body: jsonBody(s.MergeBody) },
    responses: {
      200: jsonResponse(s.TicketSchema, 'The ticket merged into'),
      ...commonErrors,
      ...conflictError,
    },
  }),
  async (c) => {
    const { id } = c.req.valid('param');
    const { into } = c.req.valid('json');
    const access = activeTenant(c, 'user', { write: true });
    const target = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      await visibleTicket(tx, access.tenantId, into);
      requireStaff(access);
      await tx`select private.merge_tickets(${access.tenantId}, ${id}, ${into})`;
      return await visibleTicket(tx, access.tenantId, into);
    });
    return c.json(target as never, 200);
  },
);
