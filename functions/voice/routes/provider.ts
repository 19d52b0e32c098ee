// The telephony provider's call path: route a dialled number, and report call events.
// Machine callers: the service credential or VOICE_TELEPHONY_SECRET for every tenant's
// numbers, or a tenant's API key (voice:route, calls:write) for its own. Each request
// is one statement on the call path's pool, autocommit, as the function's database role:
// one round trip. A key's call event is instead a short transaction on the same pool, as
// service_role under the key's claims (so the audit trail names the key), never batched.
// The provider's routing lookups that arrive together share one statement, and so do
// small transcript-segment events (a Batcher: one parse, plan, round trip and commit for
// many; an idle call path sends each at once). The functions called
// (private.voice_route_answer, private.voice_call_*) name the tenant explicitly and hold
// every rule (reason codes, idempotency, ordering, the status machine), so nothing here
// re-implements one. An event that overtakes its call's start (404 unknown_call) is held
// instead, in a transaction of its own (private.voice_call_event_held), and sent again
// at once if the call started meanwhile: two or three statements, for early events only.
import { createRoute, z } from '@hono/zod-openapi';
import type { TypedResponse } from 'hono';
import type { JSONParsed } from 'hono/utils/types';
import { needs } from '../../../shared/auth/needs.ts';
import { Batcher } from '../../../shared/batch.ts';
import { outsideTelephonyTenant, telephonyKeyClaims, telephonyTenant } from '../../../shared/auth/service.ts';
import { callPathDb, type Sql, telephonyWrites } from '../../../shared/db.ts';
import { ApiError, type PgLikeError, toApiError } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import {
  bodyErrors,
  commonErrors,
  errorResponse,
  jsonBody,
  jsonResponse,
  unavailableError,
} from '../../../shared/schemas/common.ts';
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
      ...unavailableError,
    },
  }),
  events: createRoute({
    method: 'post',
    path: '/calls/events',
    summary: 'A call event from the provider (started, answered, transcript segments, ended), idempotent by provider call id',
    security: security.telephony,
    'x-api-key-scope': 'calls:write',
    middleware: needs.telephony('calls:write'),
    request: { body: jsonBody(s.CallEventBody) },
    responses: {
      200: jsonResponse(
        z.union([s.CallEventResult, s.CallEventDeleted]),
        'What the event did; a repeated or late event changes nothing. `deleted: true`: the call was deleted (by an ' +
          'admin, or erasing its customer) in the last 30 days, and any event for it, a start included, is dropped ' +
          'rather than creating the call again or being held',
      ),
      202: jsonResponse(
        s.CallEventHeld,
        'An answer, segments or an end for a call not started yet: held for 10 minutes and applied, in the order ' +
          'held and under the credential that sent it, when the call starts',
      ),
      ...telephonyErrors,
      404: errorResponse(
        '`unknown_call`: an answer, segments or an end for a call that did not start, in a tenant that could not start ' +
          'it (suspended, no voice in its plan), or with as many early events held as it may (32 a call; 1,000 or 16 MiB ' +
          'a tenant); `unknown_tenant`: no such tenant; `tenant_deleted`: the tenant is deleted and takes no event',
      ),
      409: errorResponse(
        "`invalid_transition`: the end asked for is not allowed from the call's status; `agent_inactive`: a " +
          'call.started names a parked agent, which takes no new call',
      ),
      403: errorResponse(
        '`tenant_suspended`: a suspended tenant takes no new call (segments and the end of a call under way are still ' +
          "taken); `feature_not_in_plan`: the tenant's plan has no voice; `insufficient_scope` for a key without calls:write",
      ),
      422: commonErrors[422],
      // A tenant API key's writes (the tenant's and the key's windows); not the provider's.
      429: commonErrors[429],
      ...bodyErrors,
      ...unavailableError,
    },
  }),
};

type Routed = { route: string };
/** private.voice_route_answer's answer as JSON text, or why the number does not route. */
type RouteAnswer = {
  answer: string | null;
  error: { status: 403 | 404; code: string; message: string; details?: unknown } | null;
};

// The provider's lookups, batched: each answered by its own row, in order. A lookup alone
// is the plain call (the batch statement's unnest and lateral cost more to plan than
// they save for one); in a batch, the function is kept from being inlined into each of
// the three expressions that read its answer (`offset 0`), which ran it three times.
// Two batches at once (the Batcher's default) measured best: 16 clients on two cores,
// about 2,500 req/s against 2,000 one statement per request, the database's CPU per
// lookup 0.23 ms against 0.3–0.45; four at once was no better, and each batch waits for
// a connection of the pool anyway.
const routeAnswers = new Batcher<{ to: string; from: string | null }, RouteAnswer>((items) =>
  items.length === 1
    ? callPathDb()<RouteAnswer>`
      select case when v ? 'error' then null else v::text end as answer, v -> 'error' as error
      from private.voice_route_answer(${items[0].to}, ${items[0].from}) v`
    : callPathDb()<RouteAnswer>`
      select case when l.v ? 'error' then null else l.v::text end as answer, l.v -> 'error' as error
      from unnest(${items.map((i) => i.to)}::text[], ${items.map((i) => i.from)}::text[]) with ordinality as x(t, f, n)
      cross join lateral (select private.voice_route_answer(x.t, x.f) as v offset 0) l
      order by x.n`
);
type Appended = { applied: number; call_id: string; status: EventRow['status'] };
type AppendAnswer = Appended & { error?: PgLikeError };
type Append = { tenant_id: string; provider_call_id: string; segments: unknown[] };
/** Events with more segments than this run alone: they already spread one statement over
 *  many rows, and a batch of them would hold its calls' locks for long. */
const BATCHED_SEGMENTS_MAX = 20;
// The order a batch locks its calls in: by tenant (uuids in any letter case are one
// tenant) and provider call id.
const callKey = (a: Append) => `${a.tenant_id.toLowerCase()}\u0000${a.provider_call_id}`;

// Transcript segments, batched like /route (20261202170200_voice_segments_batched.sql,
// 20261202170300_voice_stale_calls_review.sql): one event alone is the plain call, whose
// refusal is raised as always; in a batch each event answers its outcome or its error as
// data, in its own subtransaction (its segments read as jsonb there, so one event's bad
// JSON fails only it), and the events run sorted by call, so concurrent batches lock
// calls in one order. At most 48 events a batch: each holds a subtransaction id until the
// batch commits, and a session has room for 64 before every snapshot overflows.
const segmentAppends = new Batcher<Append, AppendAnswer>(async (items) => {
  if (items.length === 1) return await appendAlone(items[0]);
  const keys = items.map(callKey);
  const order = items.map((_, i) => i).sort((i, j) => (keys[i] < keys[j] ? -1 : keys[i] > keys[j] ? 1 : i - j));
  const rows = await callPathDb()<{ v: AppendAnswer }>`
    select l.v
    from unnest(${order.map((i) => items[i].tenant_id)}::uuid[], ${order.map((i) => items[i].provider_call_id)}::text[],
                ${order.map((i) => JSON.stringify(items[i].segments))}::text[]) with ordinality as x(t, c, s, n)
    cross join lateral (select private.voice_call_segments_append_outcome(x.t, x.c, x.s) as v offset 0) l
    order by x.n`;
  const answers: AppendAnswer[] = new Array(items.length);
  order.forEach((i, k) => (answers[i] = rows[k].v));
  return answers;
}, { maxInFlight: 2, maxBatch: 48 });

async function appendAlone({ tenant_id, provider_call_id, segments }: Append, sql: Sql = callPathDb()): Promise<Appended[]> {
  return await sql<Appended>`
    select * from private.voice_call_segments_appended(${tenant_id}, ${provider_call_id}, ${sql.json(segments)})`;
}

/** A reported number as the call keeps it; a caller ID that is no number (withheld) as none. */
const reported = (n: string | undefined) => (n !== undefined && s.REPORTED_NUMBER_PATTERN.test(n) ? n : null);
/** A reported time, but never one still to come: a start or an end ahead of now is not
 *  a fact yet (a call "started" in 2099 sorted first for ever, and the stale-call sweep,
 *  which ends calls by how long ago they started, never ended it). Taken as now. */
const notAhead = (
  t: string | undefined,
) => (t !== undefined && Date.parse(t) > Date.now() ? new Date().toISOString() : t ?? null);

type EventRow = {
  applied: boolean | number;
  call_id: string;
  status: 'ringing' | 'in_progress' | 'completed' | 'failed' | 'missed';
};

export const provider = createRouter()
  .openapi(routes.route, async (c) => {
    const q = c.req.valid('query');
    // A caller ID that is no E.164 number (withheld, or a network's placeholder) knows no customer.
    const from = q.from !== undefined && s.E164_PATTERN.test(q.from) ? q.from : null;
    // The answer as the database renders it (jsonb as text), passed through: parsing it
    // into objects only to serialise them again was most of this handler's own work.
    // A tenant's API key routes its own tenant's numbers only; another tenant's number is
    // unknown to it, whatever its state.
    const confined = telephonyTenant(c);
    let route: string;
    if (confined) {
      [{ route }] = await callPathDb()<Routed>`
        select private.voice_route_in_tenant(${confined}, ${q.to}, ${from})::text as route`;
    } else {
      const a = await routeAnswers.load({ to: q.to, from });
      if (a.error) throw new ApiError(a.error.status, a.error.code, a.error.message, a.error.details);
      route = a.answer!;
    }
    return c.body(route, 200, { 'content-type': 'application/json' }) as unknown as TypedResponse<
      JSONParsed<z.infer<typeof s.RouteAnswerSchema>>,
      200,
      'json'
    >;
  })
  .openapi(routes.events, async (c) => {
    const e = c.req.valid('json');
    // A tenant's API key reports its own tenant's calls only.
    if (outsideTelephonyTenant(c, e.tenant_id)) {
      throw new ApiError(404, 'unknown_call', 'No such call in this tenant');
    }
    // A key's event runs under the key's claims (the audit names it) and alone: a batch
    // is one statement for many callers.
    const keyClaims = telephonyKeyClaims(c);
    const run = telephonyWrites(keyClaims);
    try {
      try {
        return c.json(await run((sql) => reportEvent(e, sql, !keyClaims)), 200);
      } catch (err) {
        // An event that overtook its call's start is held for it (in a transaction of its
        // own: the refused one is over); when the call started in between, it is sent
        // again, as it would arrive now. Should the call be gone by then (deleted between
        // the hold's look and the resend), the second hold finds its tombstone.
        if (e.type === 'call.started' || toApiError(err).code !== 'unknown_call') throw err;
        for (let attempt = 0;; attempt++) {
          const [held] = await run((sql) => holdEvent(e, sql));
          if (held.held) {
            return c.json({ held: true as const, provider_call_id: e.provider_call_id, held_until: held.held_until }, 202);
          }
          try {
            return c.json(await run((sql) => reportEvent(e, sql, false)), 200);
          } catch (again) {
            if (attempt > 0 || toApiError(again).code !== 'unknown_call') throw again;
          }
        }
      }
    } catch (err) {
      // A call deleted in the last 30 days (20261204110000_voice_call_tombstones.sql):
      // the database refuses its event, and the sender is told it was taken and dropped,
      // as a late event is (a 2xx: it stops retrying).
      if (toApiError(err).code !== 'call_deleted') throw err;
      return c.json({ applied: false as const, deleted: true as const, provider_call_id: e.provider_call_id }, 200);
    }
  });

type Early = Exclude<z.infer<typeof s.CallEventBody>, { type: 'call.started' }>;

/** An end as the database takes it, reported at once or held for its call's start: its
 *  time never ahead of now, what the provider left out null. */
const endOf = (e: z.infer<typeof s.CallEndedEvent>) => ({
  status: e.status,
  ended_at: notAhead(e.ended_at),
  duration_seconds: e.duration_seconds ?? null,
  outcome: e.outcome ?? null,
  cost: e.cost ?? null,
  summary: e.summary ?? null,
  recording_path: e.recording_path ?? null,
});

/** Holds an event for a call not started yet: what the start will apply, with the times
 *  taken as they would be now (none stays none: the start takes the time it arrived). */
async function holdEvent(e: Early, sql: Sql) {
  const payload = e.type === 'call.answered'
    ? { answered_at: notAhead(e.answered_at) }
    : e.type === 'transcript.segments'
    ? { segments: e.segments }
    : endOf(e);
  return await sql<{ held: boolean; held_until: string }>`
    select held, to_char(held_until at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') as held_until
    from private.voice_call_event_held(${e.tenant_id}, ${e.provider_call_id}, ${e.type}, ${sql.json(payload)})`;
}

/** One call event, reported on `sql` (small transcript events join a batch when `batch`):
 *  what it did to the call. */
async function reportEvent(
  e: z.infer<typeof s.CallEventBody>,
  sql: Sql,
  batch: boolean,
): Promise<z.infer<typeof s.CallEventResult>> {
  let r: EventRow;
  switch (e.type) {
    case 'call.started':
      [r] = await sql<EventRow>`
        select * from private.voice_call_started(${e.tenant_id}, ${e.agent_id}, ${e.provider_call_id}, ${e.direction},
          ${reported(e.from)}, ${reported(e.to)}, ${notAhead(e.started_at)}, ${e.answered})`;
      break;
    case 'call.answered':
      [r] = await sql<EventRow>`
        select * from private.voice_call_answered(${e.tenant_id}, ${e.provider_call_id}, ${notAhead(e.answered_at)})`;
      break;
    case 'transcript.segments': {
      const item = { tenant_id: e.tenant_id, provider_call_id: e.provider_call_id, segments: e.segments };
      const a: AppendAnswer = !batch || e.segments.length > BATCHED_SEGMENTS_MAX
        ? (await appendAlone(item, sql))[0]
        : await segmentAppends.load(item);
      // A refusal in a batch, raised as the driver raises it alone: the same answer, and
      // the same server log for a failure.
      if (a.error) throw Object.assign(new Error(a.error.message), { ...a.error, name: 'PostgresError' });
      return { applied: a.applied > 0, segments_added: a.applied, call_id: a.call_id, status: a.status };
    }
    case 'call.ended': {
      const end = endOf(e);
      [r] = await sql<EventRow>`
        select * from private.voice_call_ended(${e.tenant_id}, ${e.provider_call_id}, ${end.status}, ${end.ended_at},
          ${end.duration_seconds}, ${end.outcome}, ${end.cost}, ${end.summary}, ${end.recording_path})`;
      break;
    }
  }
  // A start, an answer or an end: what it did to the call.
  return { applied: r.applied as boolean, call_id: r.call_id, status: r.status };
}
