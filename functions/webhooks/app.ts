// Inbound webhooks (Clerk, Chatwoot). Events are verified first, then recorded and
// applied exactly once (shared/webhooks/inbox.ts). Outbound delivery is a job of the
// one queue (shared/jobs/tasks/deliver-webhook.ts, run by the jobs function).
// Bad signature, stale timestamp, malformed body: a clear 4xx and nothing written;
// unknown event types: 200 and ignored.
import { createRoute, z } from '@hono/zod-openapi';
import { asService } from '../../shared/db.ts';
import { badRequest } from '../../shared/errors.ts';
import { createApp } from '../../shared/http.ts';
import { commonErrors, jsonResponse, Uuid } from '../../shared/schemas/common.ts';
import { chatwootErrors, clerkErrors, security } from '../../shared/schemas/security.ts';
import {
  applyChatwootEvent,
  chatwootEventAccount,
  chatwootEventId,
  requireChatwootTenantWritable,
  verifyChatwoot,
} from '../../shared/webhooks/chatwoot.ts';
import { applyClerkEvent, verifyClerk } from '../../shared/webhooks/clerk.ts';
import { applyOnce } from '../../shared/webhooks/inbox.ts';
import { markPrincipal } from '../../shared/request-log.ts';

export const app = createApp('webhooks', {
  title: 'Webhooks',
  description: 'Inbound events from Clerk and Chatwoot.',
});

// The bodies as documentation only: plain JSON Schema, which @hono/zod-openapi does not
// validate. A zod schema would have it parse and check the body before the handler
// verifies the signature: a stranger's unsigned body would be told what is wrong with it
// (400, 422) instead of the 401 every unauthenticated sender gets.
const ClerkEvent = {
  type: 'object',
  required: ['type', 'data'],
  properties: {
    type: { type: 'string', description: 'e.g. user.created, organizationMembership.deleted' },
    data: { type: 'object', description: "The object the event is about, as Clerk's API returns it" },
    object: { type: 'string', enum: ['event'] },
    timestamp: { type: 'integer', description: 'Milliseconds since the epoch' },
  },
} as const;
const ChatwootEvent = {
  type: 'object',
  required: ['event'],
  properties: {
    event: {
      type: 'string',
      description: 'conversation_created, message_created, conversation_status_changed; any other is acknowledged and ignored',
    },
    id: { type: 'integer', description: "The message's id (message_created) or the conversation's" },
    account: { type: 'object', properties: { id: { type: 'integer' } } },
  },
} as const;
/** A required JSON body, documented only (not the shared jsonBody, whose zod schema is
 *  parsed before the route): read as text by the handler for its signature. */
const signedJsonBody = (schema: object, description: string) => ({
  required: true,
  description,
  content: { 'application/json': { schema } },
});

const Ack = z.object({ received: z.boolean(), outcome: z.enum(['applied', 'ignored', 'duplicate']) });
const ack = (outcome: 'applied' | 'ignored' | 'duplicate') => ({ received: true, outcome });

app.openapi(
  createRoute({
    method: 'post',
    path: '/clerk',
    summary: 'Clerk events (user, organization, organizationMembership), signed by Svix',
    request: { body: signedJsonBody(ClerkEvent, 'The event as Svix delivers it, signed over its exact bytes') },
    security: security.clerk,
    responses: { 200: jsonResponse(Ack, 'Received'), ...clerkErrors },
  }),
  async (c) => {
    const body = await c.req.text();
    const event = verifyClerk(body, c.req.raw.headers);
    markPrincipal(c, 'webhook');
    if (typeof event !== 'object' || event === null || typeof event.type !== 'string') {
      throw badRequest('invalid_payload', 'Expected a Clerk event object');
    }
    const outcome = await applyOnce(
      'clerk',
      c.req.header('svix-id')!,
      event.type,
      null,
      (tx) => applyClerkEvent(tx, event),
    );
    return c.json(ack(outcome), 200);
  },
);

app.openapi(
  createRoute({
    method: 'post',
    path: '/chatwoot/{tenantId}',
    summary: "Chatwoot events from a tenant's account: conversations become tickets",
    request: {
      params: z.object({ tenantId: Uuid.openapi({ param: { name: 'tenantId', in: 'path' } }) }),
      query: z.object({ token: z.string().max(200).optional() }),
      body: signedJsonBody(ChatwootEvent, 'The event as Chatwoot sends it, signed over its exact bytes'),
    },
    security: security.chatwoot,
    responses: { 200: jsonResponse(Ack, 'Received'), ...chatwootErrors, 422: commonErrors[422] },
  }),
  async (c) => {
    // As the tenant's id was written when its secrets were sealed (they are bound to it):
    // an id in capitals found the tenant, and its secrets then failed to open (a 500).
    const tenantId = c.req.valid('param').tenantId.toLowerCase();
    const { token } = c.req.valid('query');
    const body = await c.req.text();
    // Authenticate before reading the body as an event; a tenant without Chatwoot is a
    // 401 like a bad token, a suspended one a 403.
    const { accountId } = await asService(
      tenantId,
      (tx) => verifyChatwoot(tx, tenantId, body, c.req.raw.headers, token ?? null),
    );
    markPrincipal(c, 'webhook');
    let event: Record<string, unknown>;
    try {
      event = JSON.parse(body);
    } catch {
      throw badRequest('invalid_payload', 'The body is not valid JSON');
    }
    if (typeof event !== 'object' || event === null || typeof event.event !== 'string') {
      throw badRequest('invalid_payload', 'Expected a Chatwoot event object');
    }
    // Another account's event than the tenant's (a former account, switched off and
    // winding down at Chatwoot, whose webhook had this same URL): its conversation
    // numbers are not this account's, whose tickets they would land on. Messages name
    // their account, conversation events their last message's; an event that names none
    // is taken as the tenant's. Nothing is recorded for it: its dedupe key would be read
    // under the tenant's account, and the account's own event with that conversation
    // number would pass for its repeat.
    const named = chatwootEventAccount(event);
    if (accountId !== null && named !== null && named !== String(accountId)) {
      return c.json(ack('ignored'), 200);
    }
    // The repeat's key is read from the signed body, where Chatwoot's ids are numbers: a
    // message without one would make every later one pass for its repeat, and a key
    // longer than its index takes was a 500.
    if (event.event === 'message_created' && !/^\d{1,18}$/.test(String(event.id ?? ''))) {
      throw badRequest('invalid_payload', 'A message_created event needs its numeric id');
    }
    const key = `${tenantId}:${chatwootEventId(event, accountId)}`;
    if (key.length > 500) throw badRequest('invalid_payload', "The event's ids are too long");
    const result = await applyOnce(
      'chatwoot',
      key,
      event.event as string,
      tenantId,
      async (tx) => {
        await requireChatwootTenantWritable(tx, tenantId);
        return await applyChatwootEvent(tx, tenantId, event);
      },
    );
    return c.json(ack(result), 200);
  },
);
