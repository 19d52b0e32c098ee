// Calls as people read them: filtered pages (agent, customer, status, time range, words
// in the transcript), newest first by keyset, and one call with its transcript in order;
// and an admin's delete of one call.
import { createRoute, type z } from '@hono/zod-openapi';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { conflict, notFound } from '../../../shared/errors.ts';
import type { Tx } from '../../../shared/db.ts';
import { createRouter, validationError } from '../../../shared/http.ts';
import { commonErrors, conflictError, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import { security } from '../../../shared/schemas/security.ts';
import { firstCharacters } from '../../../shared/text.ts';
import * as s from '../schemas.ts';
import { after, CALL_COLUMNS, type CallRow, page, type VoiceHandler } from './common.ts';

const routes = {
  list: createRoute({
    method: 'get',
    path: '/calls',
    summary: "The tenant's calls, newest first (keyset pages): by agent, customer, status, time range, transcript words",
    ...apiKeyScope('calls:read'),
    middleware: needs.activeTenantRole('user', { scope: 'calls:read', feature: 'voice' }),
    request: { query: s.CallListQuery },
    responses: { 200: jsonResponse(s.CallPageSchema, 'A page of calls'), ...commonErrors },
  }),
  heldEvents: createRoute({
    method: 'get',
    path: '/calls/held-events',
    summary: "Staff: the provider's events held for calls that have not started yet (an answer, transcript segments " +
      'or an end that overtook its call.started), in the order they arrived; each is applied when its call starts, ' +
      'or dropped at held_until',
    ...apiKeyScope('calls:read'),
    middleware: needs.activeTenantRole('agent', { scope: 'calls:read', feature: 'voice' }),
    request: { query: s.HeldEventsQuery },
    responses: { 200: jsonResponse(s.HeldEventPageSchema, 'A page of held events'), ...commonErrors },
  }),
  read: createRoute({
    method: 'get',
    path: '/calls/{id}',
    summary: "A call with its transcript's first page, in order (transcript_next: the rest, from /transcript)",
    ...apiKeyScope('calls:read'),
    middleware: needs.activeTenantRole('user', { scope: 'calls:read', feature: 'voice' }),
    request: { params: s.IdParam },
    responses: { 200: jsonResponse(s.CallDetailSchema, 'The call'), ...commonErrors },
  }),
  transcript: createRoute({
    method: 'get',
    path: '/calls/{id}/transcript',
    summary: "A page of a call's transcript, in order (after the detail's first page: its transcript_next)",
    ...apiKeyScope('calls:read'),
    middleware: needs.activeTenantRole('user', { scope: 'calls:read', feature: 'voice' }),
    request: { params: s.IdParam, query: s.TranscriptQuery },
    responses: { 200: jsonResponse(s.TranscriptPageSchema, 'The segments'), ...commonErrors },
  }),
  openTicket: createRoute({
    method: 'post',
    path: '/calls/{id}/ticket',
    summary: "Open a ticket from a call (agents): the customer's linked user is the requester, the summary its description; " +
      'the call and the ticket point at each other. Once per call (409 already_linked).',
    ...apiKeyScope('calls:write'),
    middleware: needs.activeTenantRole('agent', { write: true, scope: 'calls:write', feature: 'voice' }),
    // Optional: a call says enough for most tickets; a tenant with required custom fields
    // (or a team to route to) gives the rest.
    request: { params: s.IdParam, body: { ...jsonBody(s.OpenCallTicketBody), required: false } },
    responses: { 201: jsonResponse(s.CallTicketSchema, 'The ticket opened'), ...commonErrors, ...conflictError },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/calls/{id}',
    summary: "Delete a call (admins): its transcript and recording go with it; the provider's later events for it are " +
      'dropped for 30 days',
    description: 'The call, its transcript, and its recording in storage (deleted by jobs); the webhook events about ' +
      'it, delivered or not (their payloads hold the call), then `call.deleted` naming its id. The call leaves a ' +
      'tombstone, so an event the provider sends or retries for it later is taken and dropped (`deleted: true`) ' +
      'rather than creating the call again. A ticket opened from the call is kept. 409 `call_in_progress` ' +
      '(`details.call_ids` naming it, as a delete through the table does, and its `details.status`) while the ' +
      'call is ringing or in progress (the provider is still reporting it; the stale-call sweep ends a call whose end ' +
      'never comes, and a real end arriving after the delete is dropped); a call people logged themselves (`manual:`) ' +
      "goes in any state. A delete through the table also removes the events and sends `call.deleted`. Allowed while the tenant's plan lacks voice; " +
      'not while it is suspended, but for platform admins; not with an API key (people only).',
    // People only, no API key scope: the key that reports calls (calls:write) is the
    // telephony integration's, and must not be able to remove them.
    security: security.user,
    middleware: needs.activeTenantRole('admin', { write: true }),
    request: { params: s.IdParam },
    responses: { 204: { description: 'Deleted' }, ...commonErrors, ...conflictError },
  }),
};

type Segment = z.infer<typeof s.SegmentOutSchema>;

type HeldEvent = z.infer<typeof s.HeldEventSchema> & { id: string };

/** A page of held events stops after this many bytes of payloads (one event may be close
 *  to 1 MiB: 500 segments of up to 10,000 characters), so no answer holds a hundred. */
const HELD_PAGE_BYTES = 1024 * 1024;

/** private.voice_held_events: the staff's standing is checked there too (nothing for
 *  anyone else). Pages by event id, the order they arrived in: as many events as fit in
 *  HELD_PAGE_BYTES (at least one), in one statement that sends no payload past them;
 *  `found` (how many the function gave, up to the page and one) says whether more follow. */
const heldEvents: VoiceHandler<typeof routes.heldEvents> = async (c) => {
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const rows = await callerDb(c, tenantId, (tx) =>
    tx<HeldEvent & { found: string }>`
      select x.id::text as id, x.provider_call_id, x.type, x.payload, x.received_at, x.held_until, x.found
      from (
        select h.*, count(*) over () as found, row_number() over (order by h.id) as n,
               sum(octet_length(h.payload::text)) over (order by h.id) as bytes
        from private.voice_held_events(${tenantId}, ${q.provider_call_id ?? null}, ${q.cursor ?? null}::bigint, ${q.limit + 1}) h
      ) x
      where x.n <= ${q.limit} and (x.n = 1 or x.bytes <= ${HELD_PAGE_BYTES})
      order by x.id`);
  const next = rows.length && Number(rows[0].found) > rows.length ? rows[rows.length - 1].id : null;
  return c.json({ items: rows.map(({ id: _, found: __, ...event }) => event), next }, 200);
};

const list: VoiceHandler<typeof routes.list> = async (c) => {
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const rows = await callerDb(c, tenantId, (tx) =>
    tx<CallRow & { sort_key: string }>`
      select ${tx.columns(CALL_COLUMNS)}, cost::float8 as cost, started_at::text as sort_key from public.voice_calls
      where tenant_id = ${tenantId}
        and ${q.agent_id ? tx`agent_id = ${q.agent_id}` : tx`true`}
        and ${q.customer_id ? tx`customer_id = ${q.customer_id}` : tx`true`}
        and ${q.status ? tx`status = ${q.status}` : tx`true`}
        and ${q.started_after ? tx`started_at >= ${q.started_after}` : tx`true`}
        and ${q.started_before ? tx`started_at < ${q.started_before}` : tx`true`}
        and ${q.q ? tx`id in (select private.voice_calls_matching(${tenantId}, ${q.q}))` : tx`true`}
        -- A customer reads only the calls of their linked record (the policy's rule,
        -- 20261202180000), said here too so the customer index finds them rather than
        -- the policy filtering every call of the tenant.
        and ${c.var.access.staff ? tx`true` : tx`customer_id in (select id from private.voice_own_customer_records(${tenantId}))`}
        and ${after(tx, q.cursor, tx`started_at`, 'timestamptz', true)}
      order by started_at desc, id desc limit ${q.limit + 1}`);
  return c.json(page(rows, q.limit), 200);
};

/** Up to `limit` segments of a call after seq `after` (-1: from the start), and the
 *  cursor of the next page. */
async function transcriptPage(tx: Tx, tenantId: string, callId: string, after: number, limit: number) {
  const rows = await tx<Segment>`
    select seq, speaker, content, offset_ms from public.voice_call_segments
    where tenant_id = ${tenantId} and call_id = ${callId} and seq > ${after} order by seq limit ${limit + 1}`;
  const more = rows.length > limit;
  const items = more ? rows.slice(0, limit) : rows;
  return { items, next: more ? String(items[items.length - 1].seq) : null };
}

const read: VoiceHandler<typeof routes.read> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const detail = await callerDb(c, tenantId, async (tx) => {
    const [callRow] = await tx<CallRow>`
      select ${
      tx.columns(CALL_COLUMNS)
    }, cost::float8 as cost from public.voice_calls where tenant_id = ${tenantId} and id = ${id}`;
    if (!callRow) throw notFound('Call');
    const first = await transcriptPage(tx, tenantId, id, -1, s.TRANSCRIPT_PAGE_DEFAULT);
    return { ...callRow, transcript: first.items, transcript_next: first.next };
  });
  return c.json(detail, 200);
};

const transcript: VoiceHandler<typeof routes.transcript> = async (c) => {
  const { id } = c.req.valid('param');
  const q = c.req.valid('query');
  const tenantId = c.var.access.tenantId;
  const result = await callerDb(c, tenantId, async (tx) => {
    // The call first: a call the caller may not read is a 404, not an empty page.
    const [callRow] = await tx`select 1 from public.voice_calls where tenant_id = ${tenantId} and id = ${id}`;
    if (!callRow) throw notFound('Call');
    return await transcriptPage(tx, tenantId, id, q.cursor === undefined ? -1 : Number(q.cursor), q.limit);
  });
  return c.json(result, 200);
};

/** Through the ticket workflow, as the caller: the insert triggers number it, route it
 *  and check the requester. The call row is locked first (FOR NO KEY UPDATE), so two
 *  agents opening a ticket from one call make one ticket. */
const openTicket: VoiceHandler<typeof routes.openTicket> = async (c) => {
  const { id } = c.req.valid('param');
  // No body at all (no Content-Type) is the defaults; a JSON one is checked by the route.
  const given = s.OpenCallTicketBody.safeParse(c.req.valid('json') ?? {});
  if (!given.success) throw validationError(given.error.issues, 'json');
  const body = given.data;
  const tenantId = c.var.access.tenantId;
  const opened = await callerDb(c, tenantId, async (tx) => {
    const [callRow] = await tx<
      {
        ticket_id: string | null;
        summary: string | null;
        outbound: boolean;
        phone: string | null;
        name: string | null;
        user_id: string | null;
      }
    >`
      -- The other party's number: the caller's on an inbound call, the callee's on an
      -- outbound one (from_number is then the agent's own line).
      select v.ticket_id, v.summary, v.direction = 'outbound' as outbound,
             coalesce(cu.phone, case when v.direction = 'outbound' then v.to_number else v.from_number end) as phone,
             cu.name, cu.user_id
      from public.voice_calls v
      left join public.voice_customers cu on cu.tenant_id = v.tenant_id and cu.id = v.customer_id
      where v.tenant_id = ${tenantId} and v.id = ${id}
      for no key update of v`;
    if (!callRow) throw notFound('Call');
    if (callRow.ticket_id) throw conflict('already_linked', 'This call already has a ticket', { ticket_id: callRow.ticket_id });
    // An empty name is no name.
    const who = callRow.name || callRow.phone || (callRow.outbound ? 'an unknown number' : 'an unknown caller');
    const title = `${callRow.outbound ? 'Call to' : 'Call from'} ${who}`;
    await tx`
      insert into public.tickets (tenant_id, title, description, priority, department, team_id, assigned_to, created_by,
                                  due_date, tags, metadata, custom_fields)
      values (${tenantId}, ${body.title ?? firstCharacters(title, 200)}, ${ticketDescription(callRow.summary)},
              ${body.priority}, ${body.department}, ${body.team_id ?? null}, ${body.assigned_to ?? null},
              ${callRow.user_id ?? null}, ${body.due_date ?? null}, ${body.tags}, ${tx.json({ voice_call_id: id })},
              ${tx.json(body.custom_fields)})`;
    const [{ ticket_id }] = await tx<{ ticket_id: string }>`select current_setting('private.created_ticket_id') as ticket_id`;
    await tx`update public.voice_calls set ticket_id = ${ticket_id} where tenant_id = ${tenantId} and id = ${id}`;
    return { ticket_id, call_id: id };
  });
  return c.json(opened, 201);
};

const remove: VoiceHandler<typeof routes.remove> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  // Every rule is the database's: who and the open call in the function
  // (20261204120000_voice_call_table_deletes.sql), the webhook events about the call and
  // call.deleted in the calls' delete trigger, which a delete through the table runs too.
  await callerDb(c, tenantId, (tx) => tx`select private.voice_call_delete(${tenantId}, ${id})`);
  return c.body(null, 204);
};

/** A ticket's description holds 5,000 characters and a call's summary 20,000: a longer
 *  summary is cut with a note saying so, not in silence. */
const DESCRIPTION_MAX = 5000;
const CUT_NOTE = '\n\n[…] The summary goes on in the call this ticket was opened from.';
function ticketDescription(summary: string | null): string | null {
  if (summary === null || [...summary].length <= DESCRIPTION_MAX) return summary;
  return firstCharacters(summary, DESCRIPTION_MAX - [...CUT_NOTE].length) + CUT_NOTE;
}

export const calls = createRouter()
  .openapi(routes.list, list)
  // Before /calls/{id}, which would otherwise take held-events for an id.
  .openapi(routes.heldEvents, heldEvents)
  .openapi(routes.read, read)
  .openapi(routes.transcript, transcript)
  .openapi(routes.openTicket, openTicket)
  .openapi(routes.remove, remove);
