// The tenant's partner services (Chatwoot, Botpress, n8n, Odoo): state, enabling and
// disabling, retrying a failed one, and the owner credentials shown once.
import { createRoute, z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { decryptJson } from '../../../shared/crypto.ts';
import { passwordUnsettled, shownCredentials } from '../../../shared/connectors/types.ts';
import { chatwootInboundUrl } from '../../../shared/webhooks/chatwoot.ts';
import { conflict } from '../../../shared/errors.ts';
import { commonErrors, conflictError, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Checked, Column, JsonObject, Selected, Tables } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import { security, type TenantsApp } from './common.ts';

type Service = z.infer<typeof s.TenantServiceSchema>;
const SERVICE_COLUMNS = [
  'service',
  'desired_state',
  'state',
  'external_ids',
  'last_error',
  'attempts',
  'remove_after',
  'drift_detected_at',
  'drift_detail',
  'drift_repaired_at',
  'updated_at',
] as const satisfies readonly Column<'tenant_services'>[];
const LISTED_COLUMNS = [...SERVICE_COLUMNS, 'credentials_stored', 'credentials_revealed_at'] as const satisfies readonly Column<
  'tenant_services'
>[];
type ServiceRow = Checked<
  Selected<'tenant_services', typeof SERVICE_COLUMNS>,
  {
    service: Service['service'];
    desired_state: Service['desired_state'];
    state: Service['state'];
    external_ids: JsonObject;
  }
>;

/** A partner service is a feature of the plan, by its name (issue 15). */
const serviceFeature = (c: { req: { param(name: string): string | undefined } }) => c.req.param('service') ?? '';

export function registerServices(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/services',
      summary: "The tenant's partner services and their provisioning state (admins)",
      security,
      middleware: needs.tenantRole('admin'),
      request: { params: s.TenantIdParam },
      responses: {
        200: jsonResponse(z.object({ items: z.array(s.TenantServiceSchema) }), 'Services'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const items = await callerDb(c, tenantId, async (tx) => {
        const rows = await tx<ServiceRow & Pick<Tables<'tenant_services'>, 'credentials_stored' | 'credentials_revealed_at'>>`
          select ${tx.columns(LISTED_COLUMNS)}
          from public.tenant_services where tenant_id = ${tenantId} order by service`;
        return await Promise.all(rows.map(async ({ credentials_stored, credentials_revealed_at, ...r }) => ({
          ...r,
          credentials_available: credentials_stored && credentials_revealed_at === null,
          // Where the tenant's Chatwoot account sends its webhooks (provisioning creates the
          // webhook; for versions that do not sign, the token in the URL authenticates).
          ...(r.service === 'chatwoot' ? { inbound_webhook_url: await chatwootInboundUrl(tenantId) } : {}),
        })));
      });
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'put',
      path: '/{tenantId}/services/{service}',
      summary: 'Enable or disable a partner service (admins); disabling removes its accounts',
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.ServiceParam, body: jsonBody(s.SetServiceBody) },
      responses: { 200: jsonResponse(s.TenantServiceSchema, 'The service'), ...commonErrors },
    }),
    async (c) => {
      const { tenantId, service } = c.req.valid('param');
      const { enabled } = c.req.valid('json');
      const [row] = await callerDb(c, tenantId, (tx) =>
        tx<ServiceRow & { credentials_available: boolean }>`
          insert into public.tenant_services (tenant_id, service, desired_state)
          values (${tenantId}, ${service}, ${enabled ? 'active' : 'removed'})
          on conflict (tenant_id, service) do update set desired_state = excluded.desired_state
          returning ${
          tx.columns(SERVICE_COLUMNS)
        }, credentials_stored and credentials_revealed_at is null as credentials_available
        `);
      return c.json(row, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/services/{service}/retry',
      summary: 'Retry a failed service once its cause is fixed (admins)',
      security,
      middleware: needs.tenantRole('admin', { write: true, feature: serviceFeature }),
      request: { params: s.ServiceParam },
      responses: {
        202: jsonResponse(z.object({ queued: z.boolean() }), 'Queued'),
        ...commonErrors,
        ...conflictError,
      },
    }),
    async (c) => {
      const { tenantId, service } = c.req.valid('param');
      await callerDb(c, tenantId, (tx) => tx`select private.retry_tenant_service(${tenantId}, ${service})`);
      return c.json({ queued: true }, 202);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/services/{service}/credentials',
      summary: "The owner login of a partner account, shown once to the tenant's admins",
      security,
      middleware: needs.tenantRole('admin', { feature: serviceFeature }),
      request: { params: s.ServiceParam },
      responses: {
        200: jsonResponse(z.object({ credentials: z.record(z.string(), z.unknown()) }), 'The credentials'),
        ...commonErrors,
        ...conflictError,
      },
    }),
    async (c) => {
      const { tenantId, service } = c.req.valid('param');
      const login = await callerDb(c, tenantId, async (tx) => {
        const [row] = await tx<{ sealed: string | null }>`
          select private.reveal_service_credentials(${tenantId}, ${service}) as sealed`;
        if (!row.sealed) {
          throw conflict('credentials_unavailable', 'No credentials to show: none yet, or already shown once');
        }
        const stored = await decryptJson<Record<string, unknown>>(row.sealed, { tenantId, service });
        // A password the partner has not taken yet would not work: refused, and (the
        // transaction rolled back) still to be shown once it does.
        if (passwordUnsettled(stored)) {
          throw conflict('credentials_pending', 'The login is still being set up at the partner; ask again once it is active');
        }
        // The login only: the machine secrets kept beside it stay with the server.
        return shownCredentials(stored);
      });
      return c.json({ credentials: login }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/services/{service}/rotate-credentials',
      summary: "Give the partner account's owner a new password; shown once afterwards (admins; Chatwoot)",
      security,
      middleware: needs.tenantRole('admin', { write: true, feature: serviceFeature }),
      request: { params: s.ServiceParam },
      responses: {
        202: jsonResponse(z.object({ queued: z.boolean() }), 'Queued'),
        ...commonErrors,
        ...conflictError,
      },
    }),
    async (c) => {
      const { tenantId, service } = c.req.valid('param');
      await callerDb(
        c,
        tenantId,
        (tx) => tx`select private.rotate_service_credentials(${tenantId}, ${service})`,
      );
      return c.json({ queued: true }, 202);
    },
  );
}
