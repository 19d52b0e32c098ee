// The telephony provider's call path: route a dialled number, and report call events.
// Machine callers: the service credential or VOICE_TELEPHONY_SECRET for every tenant's
// numbers, or a tenant's API key (voice:route, calls:write) for its own. Each request
// is one statement on the pool, autocommit, as the function's database role: one round
// trip, the fastest the call path can be. The functions it calls (private.voice_route,
// private.voice_call_*) name the tenant explicitly and hold every rule (reason codes,
// idempotency, ordering, the status machine), so nothing here re-implements one.
import { createRoute, type z } from '@hono/zod-openapi';
import type { TypedResponse } from 'hono';
import type { JSONParsed } from 'hono/utils/types';
import { needs } from '../../../shared/auth/needs.ts';
import { telephonyTenant } from '../../../shared/auth/service.ts';
import { db } from '../../../shared/db.ts';
import { ApiError } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import { commonErrors, errorResponse, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import { security, telephonyErrors } from '../../../shared/schemas/security.ts';
import * as s from '../schemas.ts';

const routes = {
  route: createRoute({
    method: 'get',
    path: '/route',
    summary: 'The active agent for a dialled number, its tenant and configuration, and the known caller (the provider)',
    security: security.telephony,
    'x-api-key-scope': 'voice:route',
    middleware: needs.telephony('voice:route'),
    request: { query: s.RouteQuery },
    responses: {
      200: jsonResponse(s.RouteAnswerSchema, 'Where to route the call'),
      ...telephonyErrors,
      404: errorResponse(
        'Not routable, with a code the provider can act on: `unknown_number` (no agent has it), `agent_inactive`, ' +
          '`tenant_suspended`, `tenant_deleted`',
      ),
      403: commonErrors[403],
      422: commonErrors[422],
      // A tenant API key's reads (reads_per_minute_per_key); the provider's credentials are not limited.
      429: commonErrors[429],
    },
  }),
  events: createRoute({
    method: 'post',
    path: '/calls/events',
    summary: 'A call event from the provider (started, transcript segments, ended), idempotent by provider call id',
    security: security.telephony,
    'x-api-key-scope': 'calls:write',
    middleware: needs.telephony('calls:write'),
    request: { body: jsonBody(s.CallEventBody) },
    responses: {
      200: jsonResponse(s.CallEventResult, 'What the event did; a repeated or late event changes nothing'),
      ...telephonyErrors,
      404: errorResponse('`unknown_call`: segments or an end for a call that never started'),
      409: errorResponse("`invalid_transition`: the end asked for is not allowed from the call's status"),
      403: commonErrors[403],
      422: commonErrors[422],
      // A tenant API key's writes (the tenant's and the key's windows); not the provider's.
      429: commonErrors[429],
    },
  }),
};

type Routed = { route: string };
type EventRow = {
  applied: boolean | number;
  call_id: string;
  status: 'ringing' | 'in_progress' | 'completed' | 'failed' | 'missed';
};

export const provider = createRouter()
  .openapi(routes.route, async (c) => {
    const q = c.req.valid('query');
    // The answer as the database renders it (jsonb as text), passed through: parsing it
    // into objects only to serialise them again was most of this handler's own work.
    // A tenant's API key routes its own tenant's numbers only; another tenant's number is
    // unknown to it, whatever its state.
    const confined = telephonyTenant(c);
    const [row] = confined
      ? await db()<Routed>`select private.voice_route_in_tenant(${confined}, ${q.to}, ${q.from ?? null})::text as route`
      : await db()<Routed>`select private.voice_route(${q.to}, ${q.from ?? null})::text as route`;
    return c.body(row.route, 200, { 'content-type': 'application/json' }) as unknown as TypedResponse<
      JSONParsed<z.infer<typeof s.RouteAnswerSchema>>,
      200,
      'json'
    >;
  })
  .openapi(routes.events, async (c) => {
    const e = c.req.valid('json');
    // A tenant's API key reports its own tenant's calls only.
    const confined = telephonyTenant(c);
    if (confined && confined !== e.tenant_id) throw new ApiError(404, 'unknown_call', 'No such call in this tenant');
    const sql = db();
    let r: EventRow;
    switch (e.type) {
      case 'call.started':
        [r] = await sql<EventRow>`
          select * from private.voice_call_started(${e.tenant_id}, ${e.agent_id}, ${e.provider_call_id}, ${e.direction},
            ${e.from ?? null}, ${e.to ?? null}, ${e.started_at ?? null}, ${e.answered})`;
        return c.json({ applied: r.applied as boolean, call_id: r.call_id, status: r.status }, 200);
      case 'transcript.segments':
        [r] = await sql<EventRow>`
          select * from private.voice_call_segments_appended(${e.tenant_id}, ${e.provider_call_id}, ${sql.json(e.segments)})`;
        return c.json({
          applied: (r.applied as number) > 0,
          segments_added: r.applied as number,
          call_id: r.call_id,
          status: r.status,
        }, 200);
      case 'call.ended':
        [r] = await sql<EventRow>`
          select * from private.voice_call_ended(${e.tenant_id}, ${e.provider_call_id}, ${e.status}, ${e.ended_at ?? null},
            ${e.duration_seconds ?? null}, ${e.outcome ?? null}, ${e.cost ?? null}, ${e.summary ?? null}, ${
          e.recording_path ?? null
        })`;
        return c.json({ applied: r.applied as boolean, call_id: r.call_id, status: r.status }, 200);
    }
  });
