// Calls as people read them: filtered pages (agent, customer, status, time range, words
// in the transcript), newest first by keyset, and one call with its transcript in order.
import { createRoute, type z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import { commonErrors, jsonResponse } from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { after, CALL_COLUMNS, type CallRow, page, security, type VoiceHandler } from './common.ts';

const routes = {
  list: createRoute({
    method: 'get',
    path: '/calls',
    summary: "The tenant's calls, newest first (keyset pages): by agent, customer, status, time range, transcript words",
    security,
    middleware: needs.activeTenantRole('user'),
    request: { query: s.CallListQuery },
    responses: { 200: jsonResponse(s.CallPageSchema, 'A page of calls'), ...commonErrors },
  }),
  read: createRoute({
    method: 'get',
    path: '/calls/{id}',
    summary: 'A call with its transcript, in order',
    security,
    middleware: needs.activeTenantRole('user'),
    request: { params: s.IdParam },
    responses: { 200: jsonResponse(s.CallDetailSchema, 'The call'), ...commonErrors },
  }),
};

type Segment = z.infer<typeof s.SegmentOutSchema>;

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
        and ${after(tx, q.cursor, tx`started_at`, tx`timestamptz`, true)}
      order by started_at desc, id desc limit ${q.limit + 1}`);
  return c.json(page(rows, q.limit), 200);
};

const read: VoiceHandler<typeof routes.read> = async (c) => {
  const { id } = c.req.valid('param');
  const tenantId = c.var.access.tenantId;
  const detail = await callerDb(c, tenantId, async (tx) => {
    const [callRow] = await tx<CallRow>`
      select ${
      tx.columns(CALL_COLUMNS)
    }, cost::float8 as cost from public.voice_calls where tenant_id = ${tenantId} and id = ${id}`;
    if (!callRow) throw notFound('Call');
    const transcript = await tx<Segment>`
      select seq, speaker, content, offset_ms from public.voice_call_segments
      where tenant_id = ${tenantId} and call_id = ${id} order by seq`;
    return { ...callRow, transcript };
  });
  return c.json(detail, 200);
};

export const calls = createRouter()
  .openapi(routes.list, list)
  .openapi(routes.read, read);
