// Plans (issue 15): the catalogue of tiers, a tenant's usage beside its limits, and the
// super-admins' per-tenant overrides and feature flags. The rules live in SQL
// (supabase/migrations/20261202070000_plans.sql, …_usage_quotas.sql); these routes
// only call them.
import { createRoute, type z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { withClaims } from '../../../shared/db.ts';
import { commonErrors, errorResponse, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { security, type TenantsApp } from './common.ts';

type Entitlements = z.infer<typeof s.EntitlementsSchema>;

/** GET /plans, before /{tenantId} claims the segment. */
export function registerPlanCatalogue(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/plans',
      summary: 'The plan tiers: their limits and features',
      security,
      middleware: needs.user(),
      responses: { 200: jsonResponse(s.PlanTierSchema.array(), 'Every tier, cheapest first'), ...commonErrors },
    }),
    async (c) => {
      // The same for every caller, and no tenant's data: read as the service role.
      const [{ plans }] = await withClaims(
        c.get('tx'),
        'service_role',
        { role: 'service_role' },
        (tx) => tx<{ plans: z.infer<typeof s.PlanTierSchema>[] }>`select private.plan_catalogue() as plans`,
      );
      return c.json(plans, 200);
    },
  );
}

export function registerPlans(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/usage',
      summary: "The tenant's usage beside its limits (admins)",
      security,
      middleware: needs.tenantRole('admin'),
      request: { params: s.TenantIdParam },
      responses: { 200: jsonResponse(s.UsageSchema, 'Usage, counted as it changes'), ...commonErrors },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const [{ usage }] = await callerDb(
        c,
        tenantId,
        (tx) => tx<{ usage: z.infer<typeof s.UsageSchema> }>`select private.tenant_usage(${tenantId}::uuid) as usage`,
      );
      return c.json(usage, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/{tenantId}/entitlements',
      summary: "Override the plan's limits or features for one tenant, or set its feature flags (super-admins)",
      security,
      // A tenant the caller cannot see stays a 404; then super-admins only.
      middleware: needs.tenantRole('user', { platformAdmin: true }),
      request: { params: s.TenantIdParam, body: jsonBody(s.UpdateEntitlementsBody) },
      responses: {
        200: jsonResponse(s.EntitlementsSchema, "The tenant's entitlements now"),
        ...commonErrors,
        400: errorResponse(
          'Malformed request (invalid JSON), or `invalid_entitlement`: a limit or feature no plan has, or a value of the ' +
            'wrong type (each named in details.fields)',
        ),
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const body = c.req.valid('json');
      const [{ entitlements }] = await callerDb(c, tenantId, (tx) =>
        tx<{ entitlements: Entitlements }>`
          select private.set_tenant_entitlements(${tenantId}::uuid, ${body.limits ? tx.json(body.limits) : null}::jsonb,
            ${body.features ? tx.json(body.features) : null}::jsonb, ${
          body.flags ? tx.json(body.flags) : null
        }::jsonb) as entitlements
        `);
      return c.json(entitlements, 200);
    },
  );
}
