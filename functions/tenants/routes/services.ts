// The tenant's partner services (Chatwoot, Botpress, n8n, Odoo): state, enabling and
// disabling, retrying a failed one, and the owner credentials shown once.
import { createRoute, z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import type { Tx } from '../../../shared/db.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { decryptJson } from '../../../shared/crypto.ts';
import { passwordUnsettled, secretHolderOf, shownCredentials } from '../../../shared/connectors/types.ts';
import { chatwootInboundUrl } from '../../../shared/webhooks/chatwoot.ts';
import { urlTokenGenerations } from '../../../shared/connectors/chatwoot.ts';
import { conflict, forbidden } from '../../../shared/errors.ts';
import { commonErrors, conflictError, errorResponse, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Checked, Column, JsonObject, Selected } from '../../../shared/rows.ts';
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
type ServiceRow = Checked<
  Selected<'tenant_services', typeof SERVICE_COLUMNS>,
  {
    service: Service['service'];
    desired_state: Service['desired_state'];
    state: Service['state'];
    external_ids: JsonObject;
  }
>;

/** The tenant's logins not yet shown, by service: whether each is still being set up at
 *  the partner (the reveal would answer 409 credentials_pending). The flag is inside the
 *  sealed credentials, which only the functions can open (migration 20261206140000). */
async function unrevealedLogins(tx: Tx, tenantId: string): Promise<Map<string, { pending: boolean }>> {
  const rows = await tx<{ service: string; credentials_encrypted: string }>`
    select service, credentials_encrypted from private.unrevealed_service_credentials(${tenantId})`;
  return new Map(
    await Promise.all(rows.map(async (r) => {
      // One that does not open (a key changed, a row copied in) is listed as it was before
      // the list opened them, stored and not yet shown; its reveal reports the fault. The
      // list, and disabling a service, stay usable.
      const stored = await decryptJson<Record<string, unknown>>(r.credentials_encrypted, { tenantId, service: r.service })
        .catch((err: Error) => {
          console.error(`[services] ${tenantId}/${r.service}: stored credentials do not open: ${err.message}`);
          return {};
        });
      return [r.service, { pending: passwordUnsettled(stored) }] as const;
    })),
  );
}

/** What the list says of a service's login: one to show now, or one still being set up. */
function loginState(logins: Map<string, { pending: boolean }>, service: string) {
  const login = logins.get(service);
  return { credentials_available: login?.pending === false, credentials_pending: login?.pending === true };
}

/** A partner service is a feature of the plan, by its name (issue 15); a name that is no
 *  service is none (the parameter's validation then answers 422). */
const serviceFeature = (c: { req: { param(name: string): string | undefined } }) => {
  const name = s.ServiceNameSchema.safeParse(c.req.param('service'));
  return name.success ? name.data : null;
};

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
        const [rows, logins] = await Promise.all([
          tx<ServiceRow>`select ${
            tx.columns(SERVICE_COLUMNS)
          } from public.tenant_services where tenant_id = ${tenantId} order by service`,
          unrevealedLogins(tx, tenantId),
        ]);
        return await Promise.all(rows.map(async (r) => ({
          ...r,
          ...loginState(logins, r.service),
          // Where the tenant's Chatwoot account sends its webhooks (provisioning creates the
          // webhook; for versions that do not sign, the token in the URL authenticates).
          ...(r.service === 'chatwoot'
            ? { inbound_webhook_url: await chatwootInboundUrl(tenantId, urlTokenGenerations(r.external_ids).current) }
            : {}),
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
      responses: {
        200: jsonResponse(s.TenantServiceSchema, 'The service'),
        ...commonErrors,
        409: errorResponse('`tenant_not_active`: enabling a service of a suspended or deleted tenant (`details.status`)'),
      },
    }),
    async (c) => {
      const { tenantId, service } = c.req.valid('param');
      const { enabled } = c.req.valid('json');
      const row = await callerDb(c, tenantId, async (tx) => {
        const [r] = await tx<ServiceRow>`
          insert into public.tenant_services (tenant_id, service, desired_state)
          values (${tenantId}, ${service}, ${enabled ? 'active' : 'removed'})
          on conflict (tenant_id, service) do update set desired_state = excluded.desired_state
          returning ${tx.columns(SERVICE_COLUMNS)}`;
        return { ...r, ...loginState(await unrevealedLogins(tx, tenantId), service) };
      });
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
      summary:
        'The owner login of a partner account, shown once to its owner (403 `not_the_owner` / `not_the_invitee` to other admins)',
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
        // An invitation is the invited person's to accept: another admin (or a platform
        // admin) accepting it would own their login, and with it every tenant's space that
        // login owns. A login's password is its owner's: another admin shown it would keep
        // the login after leaving. Refused, and (rolled back) still to be shown to them.
        const holder = secretHolderOf(stored);
        if (holder && holder.email.toLowerCase() !== c.var.caller.user.email.toLowerCase()) {
          throw holder.invitation
            ? forbidden(
              `The invitation is for the partner account's owner (${holder.email}): only they are shown it`,
              'not_the_invitee',
            )
            : forbidden(`The login is its owner's (${holder.email}): only they are shown its password`, 'not_the_owner');
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
      summary:
        "Give the partner account's owner a new password, shown once afterwards, and its inbound webhook URL a new token (admins; Chatwoot)",
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
