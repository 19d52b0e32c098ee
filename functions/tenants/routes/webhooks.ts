// Outbound webhook endpoints: registration (the signing secret shown once), changes,
// re-enabling, removal and the delivery log (admins).
import { createRoute, z } from '@hono/zod-openapi';
import { caller, type CallerContext, callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope, type Scope } from '../../../shared/auth/api-keys.ts';
import { requireScopes } from '../../../shared/auth/key-scopes.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { newEndpointSecret } from '../../../shared/webhooks/deliver.ts';
import { resolvedTargetProblem } from '../../../shared/webhooks/ssrf.ts';
import { notFound, unprocessable } from '../../../shared/errors.ts';
import { validationError } from '../../../shared/http.ts';
import { commonErrors, errorResponse, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Column, Selected } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import type { TenantsApp } from './common.ts';

const ENDPOINT_COLUMNS = [
  'id',
  'url',
  'description',
  'event_types',
  'enabled',
  'disabled_reason',
  'consecutive_failures',
  'failing_since',
  'secret_rotated_at',
  'previous_secret_expires_at',
  'created_at',
  'updated_at',
] as const satisfies readonly Column<'webhook_endpoints'>[];
type EndpointRow = Selected<'webhook_endpoints', typeof ENDPOINT_COLUMNS>;
/** What private.webhook_deliveries_for() returns. */
type DeliveryRow = z.infer<typeof s.DeliverySchema>;

async function checkTarget(url: string | undefined): Promise<void> {
  const problem = url === undefined ? null : await resolvedTargetProblem(url);
  if (problem) {
    throw unprocessable('The request is not valid', { fields: [{ field: 'url', message: problem }] });
  }
}

type EventType = typeof s.WEBHOOK_EVENT_TYPES[number];

/** The read scope an API key needs for an endpoint to receive each event type. An
 *  endpoint is a way of reading what its events carry (tickets with their notes, calls,
 *  customers, members): a key that manages webhooks sends itself only what it could read.
 *  A partner service's state is the webhooks' own business (admins' keys manage both). */
const EVENT_READ_SCOPE: Record<EventType, Scope | null> = {
  'ticket.created': 'tickets:read',
  'ticket.updated': 'tickets:read',
  'ticket.status_changed': 'tickets:read',
  'ticket.assigned': 'tickets:read',
  'ticket.deleted': 'tickets:read',
  'ticket.sla_warning': 'tickets:read',
  'ticket.sla_breached': 'tickets:read',
  'ticket.follower_added': 'tickets:read',
  'ticket.mentioned': 'tickets:read',
  'message.created': 'tickets:read',
  'message.updated': 'tickets:read',
  'message.deleted': 'tickets:read',
  'note.created': 'tickets:read',
  'note.updated': 'tickets:read',
  'note.deleted': 'tickets:read',
  'automation.triggered': 'tickets:read',
  'membership.created': 'members:read',
  'membership.updated': 'members:read',
  'membership.deleted': 'members:read',
  'call.started': 'calls:read',
  'call.ended': 'calls:read',
  'call.deleted': 'calls:read',
  'customer.created': 'customers:read',
  'customer.erased': 'customers:read',
  'customer.erasure_completed': 'customers:read',
  'service.state_changed': null,
  'service.drift_detected': null,
};

const KEY_EVENT_SCOPES = 'An API key registers only event types its scopes can read: `tickets:read` for ticket, message, ' +
  'note and automation events, `members:read` for memberships, `calls:read` for calls, `customers:read` for customers ' +
  '(every type, `[]`, needs all four); otherwise 403 `insufficient_scope` with `required_scopes`.';

/** Refuses an API key an endpoint that would receive events its scopes cannot read
 *  (403 insufficient_scope naming them); `[]` is every event type. People (admins) are
 *  not limited here. */
function requireEventScopes(c: CallerContext, eventTypes: readonly string[]): void {
  const wanted = (eventTypes.length ? eventTypes : s.WEBHOOK_EVENT_TYPES) as readonly EventType[];
  const needed = wanted.map((t) => EVENT_READ_SCOPE[t]).filter((scope): scope is Scope => scope !== null);
  requireScopes(caller(c).apiKey?.scopes, needed, 'These events carry what only some scopes read');
}

export function registerWebhooks(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/webhooks',
      summary: 'Register a webhook endpoint (admins); its signing secret is shown this once',
      description: KEY_EVENT_SCOPES,
      ...apiKeyScope('webhooks:manage'),
      middleware: needs.tenantRole('admin', { write: true, feature: 'outbound_webhooks', scope: 'webhooks:manage' }),
      request: { params: s.TenantIdParam, body: jsonBody(s.CreateEndpointBody) },
      responses: {
        201: jsonResponse(s.EndpointSchema.extend({ secret: z.string() }), 'The endpoint and its secret'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const body = c.req.valid('json');
      requireEventScopes(c, body.event_types);
      await checkTarget(body.url);
      // The secret is sealed for (tenant, endpoint id) and the database chooses the id:
      // insert, then seal and store the secret, in one transaction.
      const { endpoint, secret } = await callerDb(c, tenantId, async (tx) => {
        const [row] = await tx<EndpointRow>`
          insert into public.webhook_endpoints (tenant_id, url, description, event_types, secret_encrypted)
          values (${tenantId}, ${body.url}, ${body.description ?? null}, ${body.event_types}, '')
          returning ${tx.columns(ENDPOINT_COLUMNS)}
        `;
        const { secret, sealed } = await newEndpointSecret(tenantId, row.id);
        await tx`update public.webhook_endpoints set secret_encrypted = ${sealed} where tenant_id = ${tenantId} and id = ${row.id}`;
        return { endpoint: row, secret };
      });
      return c.json({ ...endpoint, secret }, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/webhooks',
      summary: "The tenant's webhook endpoints (admins)",
      ...apiKeyScope('webhooks:manage'),
      // No feature: a tenant whose plan lost outbound_webhooks still removes its
      // endpoints (which count against its limits), and must find them to do so.
      middleware: needs.tenantRole('admin', { scope: 'webhooks:manage' }),
      request: { params: s.TenantIdParam },
      responses: {
        200: jsonResponse(z.object({ items: z.array(s.EndpointSchema) }), 'Endpoints'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const items = await callerDb(
        c,
        tenantId,
        (tx) =>
          tx<EndpointRow>`select ${
            tx.columns(ENDPOINT_COLUMNS)
          } from public.webhook_endpoints where tenant_id = ${tenantId} order by created_at`,
      );
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/{tenantId}/webhooks/{endpointId}',
      summary: 'Change or re-enable an endpoint (admins)',
      description: `${KEY_EVENT_SCOPES} A key changing an endpoint's url or event types, or enabling it, needs them for ` +
        'what it will receive.',
      ...apiKeyScope('webhooks:manage'),
      middleware: needs.tenantRole('admin', {
        write: true,
        whileSuspended: true,
        feature: 'outbound_webhooks',
        scope: 'webhooks:manage',
      }),
      request: { params: s.EndpointParam, body: jsonBody(s.UpdateEndpointBody) },
      responses: { 200: jsonResponse(s.EndpointSchema, 'The endpoint'), ...commonErrors },
    }),
    async (c) => {
      const { tenantId, endpointId } = c.req.valid('param');
      const body = c.req.valid('json');
      await checkTarget(body.url);
      const endpoint = await callerDb(c, tenantId, async (tx) => {
        // Whether it was on: turning an endpoint on is receiving, sending `enabled: true`
        // with the rest of an endpoint that is on is not.
        const [before] = await tx<{ enabled: boolean }>`
          select enabled from public.webhook_endpoints where tenant_id = ${tenantId} and id = ${endpointId}
          for no key update`;
        if (!before) throw notFound('Webhook endpoint');
        const [row] = await tx<EndpointRow | undefined>`
          update public.webhook_endpoints set
            url = coalesce(${body.url ?? null}::text, url),
            description = case when ${'description' in body} then ${body.description ?? null}::text else description end,
            event_types = coalesce(${body.event_types ?? null}::text[], event_types),
            enabled = coalesce(${body.enabled ?? null}::boolean, enabled)
          where tenant_id = ${tenantId} and id = ${endpointId}
          returning ${tx.columns(ENDPOINT_COLUMNS)}
        `;
        if (!row) throw notFound('Webhook endpoint');
        // Pointing an endpoint elsewhere, changing what it receives, or turning it back on
        // (disabled by an admin, or when the key that set it up ended) is registering it
        // anew: the key must be able to read what it will then receive (rolled back if not).
        if (body.url !== undefined || body.event_types !== undefined || (body.enabled === true && !before.enabled)) {
          requireEventScopes(c, row.event_types);
        }
        return row;
      });
      return c.json(endpoint, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/webhooks/{endpointId}/rotate-secret',
      summary: "Rotate an endpoint's signing secret (admins); the new one is shown this once",
      description: 'Deliveries carry a signature with the previous secret too for `previous_secret_hours` (24 unless ' +
        'given; 0 for a secret that leaked), so the receiver can switch without missing any. Pending and held ' +
        'deliveries stay queued and are signed with the new secret. The secret signs what the endpoint receives: ' +
        'an API key rotates it only with the scopes to read those events (403 `insufficient_scope` otherwise).',
      ...apiKeyScope('webhooks:manage'),
      middleware: needs.tenantRole('admin', {
        write: true,
        whileSuspended: true,
        revokes: true,
        feature: 'outbound_webhooks',
        scope: 'webhooks:manage',
      }),
      request: { params: s.EndpointParam, body: { ...jsonBody(s.RotateSecretBody), required: false } },
      responses: {
        200: jsonResponse(s.EndpointSchema.extend({ secret: z.string() }), 'The endpoint and its new secret'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId, endpointId } = c.req.valid('param');
      // No body at all is the defaults; a JSON one is checked by the route.
      const given = s.RotateSecretBody.safeParse(c.req.valid('json') ?? {});
      if (!given.success) throw validationError(given.error.issues, 'json');
      const hours = given.data.previous_secret_hours;
      // The endpoint first, as the caller sees it (another tenant's is not found), then
      // its new secret sealed for it, under its row lock.
      const rotated = await callerDb(c, tenantId, async (tx) => {
        const [found] = await tx<{ event_types: string[] }>`
          select event_types from public.webhook_endpoints where tenant_id = ${tenantId} and id = ${endpointId}
          for no key update`;
        if (!found) return undefined;
        // Whoever holds the secret can sign deliveries the receiver will believe: a key gets
        // it only for an endpoint whose events it could register itself.
        requireEventScopes(c, found.event_types);
        const { secret, sealed } = await newEndpointSecret(tenantId, endpointId);
        const [endpoint] = await tx<EndpointRow>`
          -- The secret it replaces is kept as the previous one by the table's trigger
          -- (webhook_endpoint_secret_rotated), for as long as this says.
          update public.webhook_endpoints set
            secret_encrypted = ${sealed},
            previous_secret_expires_at = case when ${hours} > 0 then now() + make_interval(hours => ${hours}) end
          where tenant_id = ${tenantId} and id = ${endpointId}
          returning ${tx.columns(ENDPOINT_COLUMNS)}
        `;
        return { endpoint, secret };
      });
      if (!rotated) throw notFound('Webhook endpoint');
      const { endpoint, secret } = rotated;
      return c.json({ ...endpoint, secret }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/{tenantId}/webhooks/{endpointId}',
      summary: 'Remove an endpoint and its pending deliveries (admins)',
      ...apiKeyScope('webhooks:manage'),
      middleware: needs.tenantRole('admin', { write: true, whileSuspended: true, revokes: true, scope: 'webhooks:manage' }),
      request: { params: s.EndpointParam },
      responses: { 204: { description: 'Removed' }, ...commonErrors },
    }),
    async (c) => {
      const { tenantId, endpointId } = c.req.valid('param');
      const deleted = await callerDb(
        c,
        tenantId,
        (tx) => tx`delete from public.webhook_endpoints where tenant_id = ${tenantId} and id = ${endpointId} returning id`,
      );
      if (!deleted.length) throw notFound('Webhook endpoint');
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/webhooks/{endpointId}/deliveries/retry',
      summary: 'Send a failed delivery again (admins)',
      description: 'The delivery is pending again, with its webhook-id (a receiver that took it deduplicates) and its ' +
        'attempts kept, and is queued (on a disabled endpoint, when it is enabled again). Only a failed delivery: ' +
        'another is 409 `not_failed` with its status; one whose last job is still finishing 409 `delivery_busy` ' +
        '(retry in a moment); one of a type the endpoint no longer takes 409 `not_subscribed`.',
      ...apiKeyScope('webhooks:manage'),
      middleware: needs.tenantRole('admin', { write: true, feature: 'outbound_webhooks', scope: 'webhooks:manage' }),
      request: { params: s.EndpointParam, body: jsonBody(s.RetryDeliveryBody) },
      responses: {
        202: jsonResponse(s.RetriedDeliverySchema, 'Queued again'),
        ...commonErrors,
        409: errorResponse('`not_failed` (its status in details), `delivery_busy` (retry in a moment) or `not_subscribed`'),
      },
    }),
    async (c) => {
      const { tenantId, endpointId } = c.req.valid('param');
      const { delivery_id: deliveryId } = c.req.valid('json');
      const [{ retried }] = await callerDb(
        c,
        tenantId,
        (tx) =>
          tx<{ retried: z.infer<typeof s.RetriedDeliverySchema> }>`
            select private.retry_webhook_delivery(${tenantId}::uuid, ${endpointId}::uuid, ${deliveryId}::bigint) as retried`,
      );
      return c.json(retried, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/webhooks/{endpointId}/deliveries',
      summary: "An endpoint's recent deliveries: status, attempts, last error (admins)",
      ...apiKeyScope('webhooks:manage'),
      middleware: needs.tenantRole('admin', { feature: 'outbound_webhooks', scope: 'webhooks:manage' }),
      request: { params: s.EndpointParam },
      responses: {
        200: jsonResponse(z.object({ items: z.array(s.DeliverySchema) }), 'Deliveries'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId, endpointId } = c.req.valid('param');
      const items = await callerDb(c, tenantId, async (tx) => {
        const [endpoint] = await tx`select 1 from public.webhook_endpoints where tenant_id = ${tenantId} and id = ${endpointId}`;
        if (!endpoint) throw notFound('Webhook endpoint');
        return await tx<DeliveryRow>`select * from private.webhook_deliveries_for(${tenantId}, ${endpointId})`;
      });
      return c.json({ items }, 200);
    },
  );
}
