// Tickets themselves: open (idempotently), list and search, statistics, read with the
// conversation, update, move through the workflow, assign, delete and restore, merge.
import { createRoute, z } from '@hono/zod-openapi';
import { caller, callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { conflict, forbidden, namingFields, notFound, unprocessable } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Checked, Column, Json, JsonObject, Selected } from '../../../shared/rows.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  encodeCursor,
  jsonBody,
  jsonResponse,
  keysetCursor,
  keysetPage,
  realDateTime,
  UUID_PATTERN,
} from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import {
  ATTACHMENT_COLUMNS,
  type AttachmentRow,
  handOff,
  MESSAGE_COLUMNS,
  type MessageRow,
  readBack,
  requireAdmin,
  requireStaff,
  ticketColumns,
  type TicketRow,
  type TicketsHandler,
  visibleTicket,
} from './common.ts';

const routes = {
  create: createRoute({
    method: 'post',
    path: '/',
    summary: 'Open a ticket. Send Idempotency-Key to make retries safe.',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }),
    request: {
      body: jsonBody(s.CreateTicketBody),
      headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }),
    },
    responses: {
      201: {
        ...jsonResponse(s.ChangedTicketSchema, 'The ticket (or, for a repeated key, the first result)'),
        headers: {
          'Idempotent-Replayed': {
            description: '`true` when the answer is the first result of a repeated Idempotency-Key (nothing was created)',
            schema: { type: 'string', enum: ['true'] },
          },
        },
      },
      ...commonErrors,
      ...conflictError,
    },
  }),
  list: createRoute({
    method: 'get',
    path: '/',
    summary: 'List and search tickets the caller may see: filters, sort, keyset pagination, optional total',
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }),
    request: { query: s.ListQuery },
    responses: { 200: jsonResponse(s.TicketPageSchema, 'A page of tickets'), ...commonErrors },
  }),
  stats: createRoute({
    method: 'get',
    path: '/stats',
    summary: "The tenant's ticket counts by status and priority, median first-response and resolution times (staff)",
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('agent', { scope: 'tickets:read' }),
    responses: { 200: jsonResponse(s.StatsSchema, 'Statistics'), ...commonErrors },
  }),
  read: createRoute({
    method: 'get',
    path: '/{id}',
    summary: 'A ticket with its conversation, attachments and timeline, as the caller may see them',
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }),
    request: { params: s.TicketIdParam },
    responses: { 200: jsonResponse(s.TicketDetailSchema, 'The ticket'), ...commonErrors },
  }),
  update: createRoute({
    method: 'patch',
    path: '/{id}',
    summary: 'Update fields of a ticket (staff)',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // staff: checked once the ticket is visible
    request: { params: s.TicketIdParam, body: jsonBody(s.UpdateTicketBody) },
    // 409 out_of_sight: a team change that takes the ticket out of the caller's sight
    // together with other changes (they would be made where the caller cannot see them).
    responses: { 200: jsonResponse(s.ChangedTicketSchema, 'The ticket'), ...commonErrors, ...conflictError },
  }),
  setStatus: createRoute({
    method: 'post',
    path: '/{id}/status',
    summary: 'Move a ticket through its workflow (staff); refused transitions are 409s listing the allowed ones',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // staff: checked once the ticket is visible
    request: { params: s.TicketIdParam, body: jsonBody(s.TransitionBody) },
    responses: { 200: jsonResponse(s.ChangedTicketSchema, 'The ticket'), ...commonErrors, ...conflictError },
  }),
  assign: createRoute({
    method: 'put',
    path: '/{id}/assignee',
    summary: 'Assign a ticket to an agent or admin, or unassign it (staff)',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // staff: checked once the ticket is visible
    request: { params: s.TicketIdParam, body: jsonBody(s.AssignBody) },
    responses: { 200: jsonResponse(s.ChangedTicketSchema, 'The ticket'), ...commonErrors },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/{id}',
    summary: 'Soft-delete a ticket (admins); it drops out of everyone else’s reads',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // admins: checked once the ticket is visible
    request: { params: s.TicketIdParam },
    responses: { 200: jsonResponse(s.TicketSchema, 'The deleted ticket'), ...commonErrors },
  }),
  restore: createRoute({
    method: 'post',
    path: '/{id}/restore',
    summary: 'Restore a soft-deleted ticket (admins)',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // admins: checked once the ticket is visible
    request: { params: s.TicketIdParam },
    responses: { 200: jsonResponse(s.TicketSchema, 'The restored ticket'), ...commonErrors },
  }),
  merge: createRoute({
    method: 'post',
    path: '/{id}/merge',
    summary: 'Merge this ticket into another of the tenant (staff): messages move, this one closes with a pointer',
    ...apiKeyScope('tickets:write'),
    middleware: needs.activeTenantRole('user', { write: true, scope: 'tickets:write' }), // staff: checked once both tickets are visible
    request: { params: s.TicketIdParam, body: jsonBody(s.MergeBody) },
    responses: {
      200: jsonResponse(s.TicketSchema, 'The ticket merged into'),
      ...commonErrors,
      ...conflictError,
    },
  }),
};

// ---------------------------------------------------------------- create

async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, '0')).join('');
}

/** JSON with every object's keys in one order (sorted), arrays as they are. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_key, v) =>
      v && typeof v === 'object' && !Array.isArray(v)
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]))
        : v,
  );
}

/** A retry reads the first request's ticket id alone (the stored response keeps no more). */
type IdempotencyClaim = { claimed: boolean; request_hash: string | null; response: { id: string } };

const create: TicketsHandler<typeof routes.create> = async (c) => {
  const body = c.req.valid('json');
  const key = c.req.valid('header')['idempotency-key'];
  const access = c.var.access;
  // A customer naming a team, an assignee or another requester: the insert trigger's 403.
  // The same request whatever order the client's serialiser wrote its objects' keys in
  // (metadata, custom_fields): a retry after a restart is not "a different request".
  const requestHash = key ? await sha256Hex(canonicalJson(body)) : null;
  // The requester is the created_by column: a refusal of it names the body's requester_id.
  const result = await namingFields({ created_by: 'requester_id' }, () =>
    callerDb(c, access.tenantId, async (tx) => {
      if (key) {
        const [claim] = await tx<IdempotencyClaim>`
        select * from private.claim_idempotency_key(${access.tenantId}, ${key}, ${requestHash})
      `;
        if (!claim.claimed) {
          // Keys claimed before 2026-12-07 hashed the body as written (JSON.stringify): a
          // retry of one, within its 24 hours, is still that request. (Drop after 2026-12-09.)
          if (claim.request_hash !== requestHash && claim.request_hash !== await sha256Hex(JSON.stringify(body))) {
            throw conflict(
              'idempotency_key_reused',
              'This Idempotency-Key was used with a different request',
            );
          }
          // The ticket the first request made, as the caller may see it now (its id alone
          // when they no longer may): not the stored snapshot, which could show a caller
          // demoted since what only staff read.
          return { replayed: true, ticket: await readBack(tx, access.tenantId, claim.response.id) };
        }
      }
      // The database chooses the id; the new ticket may be invisible to its creator (an
      // agent filing for a customer on another team), so it is read back from the
      // setting the insert trigger leaves, not with RETURNING.
      await tx`
      insert into public.tickets (tenant_id, title, description, priority, department, team_id, assigned_to,
                                  created_by, due_date, tags, metadata, custom_fields)
      values (${access.tenantId}, ${body.title}, ${body.description ?? null}, ${body.priority},
              ${body.department}, ${body.team_id ?? null}, ${body.assigned_to ?? null}, ${body.requester_id ?? null},
              ${body.due_date ?? null}, ${body.tags}, ${tx.json(body.metadata)}, ${tx.json(body.custom_fields)})
    `;
      const [{ id }] = await tx<{ id: string }>`select current_setting('private.created_ticket_id') as id`;
      const ticket = await readBack(tx, access.tenantId, id);
      if (key) {
        await tx`
        select private.store_idempotent_response(${access.tenantId}, ${key}, 201, ${tx.json({ id: ticket.id })})
      `;
      }
      return { replayed: false, ticket };
    }));
  if (result.replayed) c.header('idempotent-replayed', 'true');
  return c.json(result.ticket, 201);
};

// ---------------------------------------------------------------- list and search

/** How many of the caller's newest matching tickets the first pages of a relevance
 *  search rank (private.ticket_search_candidates; at most 1,000). */
export const SEARCH_CANDIDATES = 1000;

/** The list's query, with its custom-field filters resolved (resolveFieldFilters). */
type ListQuery = z.infer<typeof s.ListQuery> & { fields?: FieldFilter[] };
type Tx = Parameters<Parameters<typeof callerDb>[2]>[0];

/** A custom-field filter as containment JSON, and where the field's values live. */
type FieldFilter = { visible: boolean; contains: JsonObject };

const badFilter = (message: string) =>
  unprocessable('The request is not valid', { fields: [{ field: 'custom_field', message }] });

/** Reads the definitions of the filtered fields as the caller may see them (customers:
 *  only fields visible to them — a hidden one is unknown, as in a write) and turns each
 *  `<key>:<value>` into the JSON its values contain when they match: the GIN indexes on
 *  tickets.custom_fields and ticket_internal_fields answer `@>`. */
async function resolveFieldFilters(tx: Tx, tenantId: string, filters: ListQuery['custom_field']): Promise<FieldFilter[]> {
  if (!filters?.length) return [];
  const defs = await tx<{ key: string; type: string; visible_to_customers: boolean }>`
    select key, type, visible_to_customers from public.custom_field_definitions
    where tenant_id = ${tenantId} and key = any(${[...new Set(filters.map((f) => f.key))]}::text[])
  `;
  return filters.map(({ key, value }) => {
    const def = defs.find((d) => d.key === key);
    if (!def) throw badFilter(`${key} is not a custom field of this tenant`);
    let v: Json;
    switch (def.type) {
      case 'number':
        // A decimal as written (Number() also reads `0x10`, `1e1` and ` 7 `: none is one).
        if (!/^-?\d{1,15}(\.\d{1,15})?$/.test(value)) throw badFilter(`${key} takes a number`);
        v = Number(value);
        break;
      case 'checkbox':
        if (value !== 'true' && value !== 'false') throw badFilter(`${key} takes true or false`);
        v = value === 'true';
        break;
      case 'date': {
        // A day of the calendar (2026-02-30 matched nothing, silently), as the value's check
        // takes it: years 0001 to 0099 too (JavaScript's Date.UTC read them as 19xx).
        const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(value);
        if (!day || !realDateTime(+day[1], false, +day[2], +day[3], 0, 0, 0)) {
          throw badFilter(`${key} takes a date (YYYY-MM-DD)`);
        }
        v = value;
        break;
      }
      case 'multi_select':
        v = [value];
        break;
      default:
        v = value;
    }
    return { visible: def.visible_to_customers, contains: { [key]: v } };
  });
}

/** A relevance search page's keyset, as the cursor carries it: the phase ('c': ranking
 *  the candidates; 'x': the exact order, over the matches older than the candidates'
 *  oldest, `edge`, when there is one), then the last row's rank, created_at and id
 *  (empty at the start of a phase), then the edge's created_at and id (or empty). A
 *  phase-c cursor carries the first page's edge when the candidates were bounded: the
 *  later pages rank the matches from it on, so tickets created meanwhile cannot push a
 *  ticket already shown out of the candidates and into phase x, where it came again. */
type RelevanceCursor = { phase: 'c' | 'x'; last?: [string, string, string]; edge?: [string, string] };

/** A rank as the query writes it: the exponent bounded, so the `::double precision` cast
 *  cannot overflow (1e400 failed there, a 422 naming the body). */
const RANK = /^-?\d+(\.\d+)?(e[-+]?\d{1,2})?$/i;
/** created_at as the query writes it (to_char in UTC): an instant that exists, since the
 *  cursor's value goes into a `::timestamptz` cast (30 February failed there, naming the body). */
const ISO_MICROS = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.\d{6}Z$/;
const isoMicros = (v: string) => {
  const m = ISO_MICROS.exec(v);
  if (!m) return false;
  const [year, month, day, h, min, s] = m.slice(1, 7).map(Number);
  return realDateTime(year, false, month, day, h, min, s);
};
const relevanceCursorValue = (v: string, i: number) =>
  i === 0
    ? v === 'c' || v === 'x'
    : v === '' || (i === 1 ? RANK.test(v) && v.length <= 40 : i === 2 || i === 4 ? isoMicros(v) : UUID_PATTERN.test(v));

function relevanceCursor(cursor: string | undefined): RelevanceCursor | null {
  const v = cursorValues(cursor, 6, relevanceCursorValue);
  if (!v) return null;
  const lastParts = [v[1], v[2], v[3]].filter((x) => x !== '').length;
  const edgeParts = [v[4], v[5]].filter((x) => x !== '').length;
  // A phase-c cursor always has a last row; the parts come whole.
  if ((lastParts !== 0 && lastParts !== 3) || (edgeParts !== 0 && edgeParts !== 2) || (v[0] === 'c' && !lastParts)) {
    throw unprocessable('The request is not valid', { fields: [{ field: 'cursor', message: 'Invalid cursor' }] });
  }
  return {
    phase: v[0] as 'c' | 'x',
    last: lastParts ? [v[1], v[2], v[3]] : undefined,
    edge: edgeParts ? [v[4], v[5]] : undefined,
  };
}

const encodeRelevance = (c: RelevanceCursor) => encodeCursor([c.phase, ...(c.last ?? ['', '', '']), ...(c.edge ?? ['', ''])]);

/** The list's filters, and-ed (the search match among them when q is given). */
function listFilter(tx: Tx, q: ListQuery, tenantId: string, me: string, staff: boolean) {
  const where = [
    tx`tenant_id = ${tenantId}`,
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
    // Staff: the matching ids first, once, through the GIN index of the place the
    // field's values live (private.tickets_with_custom_fields: under RLS no index can
    // answer `@>`), then the page by primary key. Customers: their own tickets, under RLS.
    ...(q.fields ?? []).map((f) =>
      staff
        ? tx`id = any(array(select private.tickets_with_custom_fields(${tenantId}, ${tx.json(f.contains)}, ${!f.visible})))`
        : tx`custom_fields @> ${tx.json(f.contains)}::jsonb`
    ),
    q.number ? tx`number = ${q.number}` : tx`true`,
    q.created_after ? tx`created_at >= ${q.created_after}` : tx`true`,
    q.created_before ? tx`created_at < ${q.created_before}` : tx`true`,
    q.updated_after ? tx`updated_at >= ${q.updated_after}` : tx`true`,
    q.updated_before ? tx`updated_at < ${q.updated_before}` : tx`true`,
    q.sla_breached === undefined
      ? tx`true`
      : q.sla_breached
      ? tx`(sla_first_response_breached_at is not null or sla_resolution_breached_at is not null
            or sla_next_response_breached_at is not null)`
      : tx`(sla_first_response_breached_at is null and sla_resolution_breached_at is null
            and sla_next_response_breached_at is null)`,
    q.q ? tx`search @@ websearch_to_tsquery('english', ${q.q})` : tx`true`,
  ];
  return where.reduce((acc, part) => tx`${acc} and ${part}`);
}

/** Whether a relevance search may rank candidates: staff (a customer's own tickets are
 *  few, and their search's time must not depend on other customers' tickets, which the
 *  candidates' walk reads and discards), most relevant first and no filter but the
 *  query (the candidates are the newest matches of the query alone). */
function rankCandidates(q: ListQuery, staff: boolean): boolean {
  return staff && q.order === 'desc' && !q.status && !q.priority && !q.department && !q.team_id && !q.assignee &&
    !q.requester && !q.tag && !q.number && !q.created_after && !q.created_before && !q.updated_after &&
    !q.updated_before && q.sla_breached === undefined && !q.custom_field;
}

type RankedRow = TicketRow & { rank_key: string; at_key: string };

/**
 * A page of a relevance search. For staff, most relevant first (ts_rank, then newest
 * first, then id) with no filter but the query: the first pages rank the caller's newest
 * SEARCH_CANDIDATES matching tickets (phase 'c'); once those are paged through (the
 * last candidate page may be short), and only if the candidates were bounded, the
 * next pages give the older matches in the exact order (phase 'x'). So a page never
 * repeats a ticket, but a well-ranked ticket older than the candidates comes after
 * them. Otherwise (customers, least relevant first, other filters) every page is exact.
 */
async function relevancePage(
  tx: Tx,
  q: ListQuery,
  access: { tenantId: string; staff: boolean },
  me: string,
  cursor: RelevanceCursor | null,
) {
  const tenantId = access.tenantId;
  const query = q.q!;
  const desc = q.order === 'desc';
  const rank = tx`ts_rank(search, websearch_to_tsquery('english', ${query}))::double precision`;
  const cols = tx`${ticketColumns(tx)}, (${rank})::text as rank_key,
    to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at_key`;
  const keyset = (last: [string, string, string] | undefined) =>
    !last
      ? tx``
      : desc
      ? tx`and (${rank}, created_at, id) < (${last[0]}::double precision, ${last[1]}::timestamptz, ${last[2]}::uuid)`
      : tx`and (${rank}, created_at, id) > (${last[0]}::double precision, ${last[1]}::timestamptz, ${last[2]}::uuid)`;
  const direction = desc ? tx`desc` : tx`asc`;
  const filter = listFilter(tx, q, tenantId, me, access.staff);
  const lastOf = (row: RankedRow): [string, string, string] => [row.rank_key, row.at_key, row.id];
  const approximate = rankCandidates(q, access.staff);
  if (cursor?.phase === 'c' && !approximate) {
    throw unprocessable('The request is not valid', { fields: [{ field: 'cursor', message: 'Invalid cursor' }] });
  }

  if (approximate && !cursor) {
    // The candidates (found by a definer function that applies the tickets select
    // policy), read again here under RLS, ranked. edge: the oldest of them and how many.
    const rows = await tx<RankedRow & { edge_at: string; edge_id: string; candidates: number }>`
      with c as materialized (
        select id, created_at from private.ticket_search_candidates(
          ${tenantId}, ${query}, ${q.include_deleted}, ${SEARCH_CANDIDATES})
      ), edge as (
        select to_char(created_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as edge_at, id as edge_id,
               (select count(*)::int from c) as candidates
        from c order by created_at, id limit 1
      )
      select ${cols}, edge.edge_at, edge.edge_id, edge.candidates
      from public.tickets, edge
      where ${filter} and id in (select id from c)
      order by ${rank} desc, created_at desc, id desc
      limit ${q.limit + 1}
    `;
    const shown = rows.slice(0, q.limit);
    const edge = rows[0];
    const bounded: [string, string] | undefined = edge && edge.candidates >= SEARCH_CANDIDATES
      ? [edge.edge_at, edge.edge_id]
      : undefined;
    const next: RelevanceCursor | null = rows.length > q.limit
      ? { phase: 'c', last: lastOf(shown.at(-1)!), edge: bounded }
      : bounded
      ? { phase: 'x', edge: bounded }
      : null;
    return {
      items: shown.map(({ rank_key: _r, at_key: _a, edge_at: _e, edge_id: _i, candidates: _n, ...ticket }) => ticket),
      next,
    };
  }

  // The exact order over a stretch of the matches. A later candidate page (phase c, so
  // most relevant first): the first page's candidates, the matches from its edge on (all
  // of them when they were not bounded), with what was created since; phase x: the
  // matches older than the edge when there is one.
  const phase = cursor?.phase ?? 'x';
  const edge = cursor?.edge;
  const stretch = !edge
    ? tx``
    : phase === 'c'
    ? tx`and (created_at, id) >= (${edge[0]}::timestamptz, ${edge[1]}::uuid)`
    : tx`and (created_at, id) < (${edge[0]}::timestamptz, ${edge[1]}::uuid)`;
  const rows = await tx<RankedRow>`
    select ${cols}
    from public.tickets
    where ${filter} ${stretch} ${keyset(cursor?.last)}
    order by ${rank} ${direction}, created_at ${direction}, id ${direction}
    limit ${q.limit + 1}
  `;
  const shown = rows.slice(0, q.limit);
  const next: RelevanceCursor | null = rows.length > q.limit
    ? { phase, last: lastOf(shown.at(-1)!), edge }
    : phase === 'c' && edge
    ? { phase: 'x', edge }
    : null;
  return { items: shown.map(({ rank_key: _r, at_key: _a, ...ticket }) => ticket), next };
}

const list: TicketsHandler<typeof routes.list> = async (c) => {
  const query = c.req.valid('query');
  const q: ListQuery = query;
  const access = c.var.access;
  const me = caller(c).user.id;
  const sort = q.sort ?? (q.q ? 'relevance' : 'created_at');
  const desc = q.order === 'desc';
  if (q.include_deleted && !access.admin) {
    throw forbidden('Only admins see deleted tickets');
  }
  const relevance = sort === 'relevance';
  const searchFrom = relevance ? relevanceCursor(q.cursor) : null;
  const keyType = sort === 'created_at' || sort === 'updated_at' ? 'timestamptz' : 'double precision';
  const after = relevance ? null : cursorValues(q.cursor, 2, keysetCursor(keyType));

  const page = await callerDb(c, access.tenantId, async (tx) => {
    const fq: ListQuery = { ...query, fields: await resolveFieldFilters(tx, access.tenantId, query.custom_field) };
    const filter = listFilter(tx, fq, access.tenantId, me, access.staff);
    const total = q.include_total
      ? Number((await tx<{ n: number }>`select count(*) as n from public.tickets where ${filter}`)[0].n)
      : undefined;
    if (relevance) {
      const { items, next } = await relevancePage(tx, fq, access, me, searchFrom);
      return { items: items as TicketRow[], next: next ? encodeRelevance(next) : null, total };
    }
    const sortExpr = {
      created_at: tx`created_at`,
      updated_at: tx`updated_at`,
      number: tx`number::double precision`,
      priority: tx`(case priority when 'urgent' then 4 when 'high' then 3 when 'medium' then 2 else 1 end)::double precision`,
    }[sort];
    const cast = keyType === 'timestamptz' ? tx`timestamptz` : tx`double precision`;
    const keyset = after
      ? desc
        ? tx`and (${sortExpr}, id) < (${after[0]}::${cast}, ${after[1]}::uuid)`
        : tx`and (${sortExpr}, id) > (${after[0]}::${cast}, ${after[1]}::uuid)`
      : tx``;
    const direction = desc ? tx`desc` : tx`asc`;
    const rows = await tx<TicketRow & { sort_key: string }>`
      select ${ticketColumns(tx)}, (${sortExpr})::text as sort_key
      from public.tickets
      where ${filter} ${keyset}
      order by ${sortExpr} ${direction}, id ${direction}
      limit ${q.limit + 1}
    `;
    const shown = keysetPage(rows, q.limit, (t) => [t.sort_key, t.id]);
    const items: TicketRow[] = shown.items.map(({ sort_key: _, ...ticket }) => ticket);
    return { items, next: shown.next, total };
  });
  return c.json({ items: page.items, next: page.next, ...(page.total !== undefined ? { total: page.total } : {}) }, 200);
};

// ---------------------------------------------------------------- statistics

const stats: TicketsHandler<typeof routes.stats> = async (c) => {
  const access = c.var.access;
  // private.ticket_stats builds the object StatsSchema describes.
  const [row] = await callerDb(
    c,
    access.tenantId,
    (tx) => tx<{ stats: z.infer<typeof s.StatsSchema> }>`select private.ticket_stats(${access.tenantId}) as stats`,
  );
  return c.json(row.stats, 200);
};

// ---------------------------------------------------------------- one ticket

type EventRow = { id: string; type: string; data: JsonObject; actor_user_id: string | null; created_at: string };
const LINKED_CALL_COLUMNS = ['id', 'status', 'started_at'] as const satisfies readonly Column<'voice_calls'>[];
type LinkedCallRow = Checked<
  Selected<'voice_calls', typeof LINKED_CALL_COLUMNS>,
  { status: z.infer<typeof s.LinkedCallSchema>['status'] }
>;

const read: TicketsHandler<typeof routes.read> = async (c) => {
  const { id } = c.req.valid('param');
  const access = c.var.access;
  const detail = await callerDb(c, access.tenantId, async (tx) => {
    const ticket = await visibleTicket(tx, access.tenantId, id);
    // An API key reads the calls only with their own scope (calls:read), as on the voice API.
    const key = caller(c).apiKey;
    const readsCalls = !key || key.scopes.includes('calls:read');
    const [messages, attachments, timeline, calls] = await Promise.all([
      tx<MessageRow>`select ${tx.columns(MESSAGE_COLUMNS)} from public.ticket_messages
         where tenant_id = ${access.tenantId} and ticket_id = ${id} order by created_at, id`,
      tx<AttachmentRow>`select ${tx.columns(ATTACHMENT_COLUMNS)} from public.attachments
         where tenant_id = ${access.tenantId} and ticket_id = ${id} order by created_at, id`,
      tx<EventRow>`select id::text, type, data, actor_user_id, created_at from public.ticket_events
         where tenant_id = ${access.tenantId} and ticket_id = ${id} order by ticket_events.id`,
      readsCalls
        ? tx<LinkedCallRow>`select ${tx.columns(LINKED_CALL_COLUMNS)} from public.voice_calls
           where tenant_id = ${access.tenantId} and ticket_id = ${id} order by started_at, id`
        : undefined,
    ]);
    return { ...ticket, messages, attachments, timeline, ...(calls ? { calls } : {}) };
  });
  return c.json(detail, 200);
};

const update: TicketsHandler<typeof routes.update> = async (c) => {
  const { id } = c.req.valid('param');
  const body = c.req.valid('json');
  const access = c.var.access;
  const ticket = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    requireStaff(access);
    const set = (field: keyof typeof body) => field in body;
    // A new team first: picking its assignee locks the team, and the lock order puts
    // teams before tickets (20261126100000_conventions.sql), so the ticket is not yet
    // locked by this transaction's own update when hand_off_ticket picks.
    if (set('team_id')) await handOff(tx, access.tenantId, id, { team: body.team_id ?? null });
    const fields = Object.keys(body).some((k) => k !== 'team_id');
    if (!fields) return await readBack(tx, access.tenantId, id);
    // A due date named here stays through this update's priority change even when it is
    // the one the ticket has (private.tickets_before_update reads this, 20261207105000).
    if (set('due_date')) await tx`select set_config('private.due_date_named', 'on', true)`;
    const updated = await tx`
      update public.tickets set
        title = case when ${set('title')} then ${body.title ?? null}::text else title end,
        description = case when ${set('description')} then ${body.description ?? null}::text else description end,
        priority = coalesce(${body.priority ?? null}::text, priority),
        department = coalesce(${body.department ?? null}::text, department),
        due_date = case when ${set('due_date')} then ${body.due_date ?? null}::timestamptz else due_date end,
        tags = coalesce(${body.tags ?? null}::text[], tags),
        metadata = coalesce(${body.metadata ? tx.json(body.metadata) : null}::jsonb, metadata)
        ${
      // Named only when given: the values' trigger fires on an update of the column.
      body.custom_fields ? tx`, custom_fields = custom_fields || ${tx.json(body.custom_fields)}::jsonb` : tx``}
      where tenant_id = ${access.tenantId} and id = ${id}
      returning id
    `;
    if (set('due_date')) await tx`select set_config('private.due_date_named', '', true)`;
    if (!updated.length && set('team_id')) {
      // The team change took the ticket out of the caller's sight before the rest.
      throw conflict('out_of_sight', 'The new team takes the ticket out of your sight: change the other fields first');
    }
    // Someone else's change (a team the caller is not on, a deletion) committed after the
    // read took it out of the caller's sight: nothing was written.
    if (!updated.length) throw notFound('Ticket');
    return await readBack(tx, access.tenantId, id);
  });
  return c.json(ticket, 200);
};

/** The database decides the transition (private.tickets_before_update): a refused one is
 *  its 409 invalid_transition listing the allowed targets. */
const setStatus: TicketsHandler<typeof routes.setStatus> = async (c) => {
  const { id } = c.req.valid('param');
  const { status } = c.req.valid('json');
  const access = c.var.access;
  const ticket = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    requireStaff(access);
    const changed = await tx`
      update public.tickets set status = ${status} where tenant_id = ${access.tenantId} and id = ${id} returning id`;
    // Out of the caller's sight since the read (someone else's team change, a deletion):
    // nothing was written, which a 200 would have hidden.
    if (!changed.length) throw notFound('Ticket');
    return await readBack(tx, access.tenantId, id);
  });
  return c.json(ticket, 200);
};

const assign: TicketsHandler<typeof routes.assign> = async (c) => {
  const { id } = c.req.valid('param');
  const { user_id } = c.req.valid('json');
  const access = c.var.access;
  // The body names the assignee user_id: a refusal of the column says so.
  const ticket = await namingFields({ assigned_to: 'user_id' }, () =>
    callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      requireStaff(access);
      await handOff(tx, access.tenantId, id, { assignee: user_id });
      return await readBack(tx, access.tenantId, id);
    }));
  return c.json(ticket, 200);
};

// ---------------------------------------------------------------- delete, restore, merge

function setDeleted(deleted: boolean): TicketsHandler<typeof routes.remove | typeof routes.restore> {
  return async (c) => {
    const { id } = c.req.valid('param');
    const access = c.var.access;
    const ticket = await callerDb(c, access.tenantId, async (tx) => {
      await visibleTicket(tx, access.tenantId, id);
      requireAdmin(access, 'Only admins delete and restore tickets');
      const [t] = await tx<TicketRow>`
        update public.tickets set deleted_at = ${deleted ? tx`coalesce(deleted_at, now())` : null}
        where tenant_id = ${access.tenantId} and id = ${id}
        returning ${ticketColumns(tx)}
      `;
      if (!t) throw notFound('Ticket'); // gone since the read
      return t;
    });
    return c.json(ticket, 200);
  };
}

const merge: TicketsHandler<typeof routes.merge> = async (c) => {
  const { id } = c.req.valid('param');
  const { into } = c.req.valid('json');
  const access = c.var.access;
  const target = await callerDb(c, access.tenantId, async (tx) => {
    await visibleTicket(tx, access.tenantId, id);
    await visibleTicket(tx, access.tenantId, into);
    requireStaff(access);
    await tx`select private.merge_tickets(${access.tenantId}, ${id}, ${into})`;
    return await visibleTicket(tx, access.tenantId, into);
  });
  return c.json(target, 200);
};

// Registration order matters where paths overlap: /stats before /{id}.
export const tickets = createRouter()
  .openapi(routes.create, create)
  .openapi(routes.list, list)
  .openapi(routes.stats, stats)
  .openapi(routes.read, read)
  .openapi(routes.update, update)
  .openapi(routes.setStatus, setStatus)
  .openapi(routes.assign, assign)
  .openapi(routes.remove, setDeleted(true))
  .openapi(routes.restore, setDeleted(false))
  .openapi(routes.merge, merge);
