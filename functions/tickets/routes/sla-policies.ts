// The tenant's SLA targets per priority, tenant-wide or for one team (a team's policy for
// a priority wins over the tenant-wide one for its tickets; private.sla_policy_for picks):
// everyone reads them, admins set them. `?team_id=` names the team on every route.
import { createRoute, z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import { createRouter } from '../../../shared/http.ts';
import type { Checked, Column, JsonObject, Selected } from '../../../shared/rows.ts';
import { commonErrors, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { security, type TicketsHandler } from './common.ts';

const SLA_COLUMNS = [
  'priority',
  'team_id',
  'first_response_minutes',
  'resolution_minutes',
  'business_hours',
  'next_response_minutes',
  'warning_minutes',
  'updated_at',
] as const satisfies readonly Column<'sla_policies'>[];
type SlaPolicyRow = Checked<
  Selected<'sla_policies', typeof SLA_COLUMNS>,
  { priority: z.infer<typeof s.PrioritySchema>; business_hours: JsonObject | null }
>;

const routes = {
  list: createRoute({
    method: 'get',
    path: '/sla-policies',
    summary: "The tenant's SLA targets per priority, tenant-wide or of one team (team_id)",
    ...apiKeyScope('tickets:read'),
    middleware: needs.activeTenantRole('user', { scope: 'tickets:read' }),
    request: { query: s.SlaPolicyTeamQuery },
    responses: {
      200: jsonResponse(z.object({ items: z.array(s.SlaPolicySchema) }), 'SLA policies'),
      ...commonErrors,
    },
  }),
  put: createRoute({
    method: 'put',
    path: '/sla-policies/{priority}',
    summary:
      'Set the SLA targets of a priority, tenant-wide or for one team (team_id) (admins); applies to tickets created, re-prioritised or moved to another team from now on',
    security,
    middleware: needs.activeTenantRole('admin', { write: true }),
    request: { params: s.PriorityParam, query: s.SlaPolicyTeamQuery, body: jsonBody(s.SlaPolicyBody) },
    responses: { 200: jsonResponse(s.SlaPolicySchema, 'The policy'), ...commonErrors },
  }),
  remove: createRoute({
    method: 'delete',
    path: '/sla-policies/{priority}',
    summary: "Remove the SLA targets of a priority, tenant-wide or a team's (team_id) (admins)",
    security,
    middleware: needs.activeTenantRole('admin', { write: true }),
    request: { params: s.PriorityParam, query: s.SlaPolicyTeamQuery },
    responses: { 204: { description: 'Removed' }, ...commonErrors },
  }),
};

const list: TicketsHandler<typeof routes.list> = async (c) => {
  const teamId = c.req.valid('query').team_id ?? null;
  const access = c.var.access;
  const items = await callerDb(
    c,
    access.tenantId,
    (tx) =>
      tx<SlaPolicyRow>`select ${tx.columns(SLA_COLUMNS)} from public.sla_policies
       where tenant_id = ${access.tenantId} and team_id is not distinct from ${teamId}::uuid
       order by case priority when 'urgent' then 1 when 'high' then 2 when 'medium' then 3 else 4 end`,
  );
  return c.json({ items }, 200);
};

const put: TicketsHandler<typeof routes.put> = async (c) => {
  const { priority } = c.req.valid('param');
  const teamId = c.req.valid('query').team_id ?? null;
  const body = c.req.valid('json');
  const access = c.var.access;
  // Another tenant's team (or none) fails the composite foreign key: 422 on team_id.
  const [policy] = await callerDb(c, access.tenantId, async (tx) => {
    // The policy there is changed in place first: an insert's feature check (its BEFORE
    // INSERT trigger fires before ON CONFLICT turns it into an update) refused business
    // hours the tenant's plan no longer includes even when they were the ones stored,
    // so after a downgrade no other field could be changed without erasing them.
    const updated = await tx<SlaPolicyRow>`
      update public.sla_policies set
        first_response_minutes = ${body.first_response_minutes},
        resolution_minutes = ${body.resolution_minutes},
        business_hours = ${body.business_hours ? tx.json(body.business_hours) : null},
        next_response_minutes = ${body.next_response_minutes},
        warning_minutes = ${body.warning_minutes}
      where tenant_id = ${access.tenantId} and team_id is not distinct from ${teamId}::uuid and priority = ${priority}
      returning ${tx.columns(SLA_COLUMNS)}
    `;
    if (updated.length) return updated;
    return await tx<SlaPolicyRow>`
      insert into public.sla_policies (tenant_id, team_id, priority, first_response_minutes, resolution_minutes,
                                       business_hours, next_response_minutes, warning_minutes)
      values (${access.tenantId}, ${teamId}, ${priority}, ${body.first_response_minutes}, ${body.resolution_minutes},
              ${body.business_hours ? tx.json(body.business_hours) : null}, ${body.next_response_minutes},
              ${body.warning_minutes})
      on conflict on constraint sla_policies_tenant_id_team_id_priority_key do update set
        first_response_minutes = excluded.first_response_minutes,
        resolution_minutes = excluded.resolution_minutes,
        business_hours = excluded.business_hours,
        next_response_minutes = excluded.next_response_minutes,
        warning_minutes = excluded.warning_minutes
      returning ${tx.columns(SLA_COLUMNS)}
    `;
  });
  return c.json(policy, 200);
};

const remove: TicketsHandler<typeof routes.remove> = async (c) => {
  const { priority } = c.req.valid('param');
  const teamId = c.req.valid('query').team_id ?? null;
  const access = c.var.access;
  const deleted = await callerDb(
    c,
    access.tenantId,
    (tx) =>
      tx`delete from public.sla_policies
         where tenant_id = ${access.tenantId} and team_id is not distinct from ${teamId}::uuid and priority = ${priority}
         returning id`,
  );
  if (!deleted.length) throw notFound('SLA policy');
  return c.body(null, 204);
};

export const slaPolicies = createRouter()
  .openapi(routes.list, list)
  .openapi(routes.put, put)
  .openapi(routes.remove, remove);
