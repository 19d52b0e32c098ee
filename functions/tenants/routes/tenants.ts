// Tenants: listing, creation (super-admins, optionally with a first admin and partner
// services), reading and editing (admins), suspension, resumption and soft deletion.
import { createRoute, type z } from '@hono/zod-openapi';
import { caller, type CallerContext, callerDb } from '../../../shared/auth/context.ts';
import { needs, requirePlatformAdmin } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  jsonBody,
  jsonResponse,
  keysetCursor,
  keysetPage,
} from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { security, TENANT_COLUMNS, type TenantRow, type TenantsApp } from './common.ts';

const statusRoute = (path: string, summary: string, method: 'post' | 'delete') =>
  createRoute({
    method,
    path,
    summary,
    security,
    // A tenant the caller cannot see stays a 404; then super-admins only.
    middleware: needs.tenantRole('user', { platformAdmin: true }),
    request: { params: s.TenantIdParam },
    responses: { 200: jsonResponse(s.TenantSchema, 'The tenant'), ...commonErrors },
  });

/** Super-admins move a tenant between active, suspended and (soft) deleted. */
async function setTenantStatus(
  c: CallerContext,
  tenantId: string,
  status: 'active' | 'suspended' | 'deleted',
): Promise<TenantRow> {
  const [t] = await callerDb(c, tenantId, (tx) =>
    tx<TenantRow | undefined>`
      update public.tenants
      set status = ${status}, deleted_at = case when ${status} = 'deleted' then coalesce(deleted_at, now()) end
      where id = ${tenantId}
      returning ${tx.columns(TENANT_COLUMNS)}
    `);
  if (!t) throw notFound('Tenant');
  return t;
}

export function registerTenants(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/',
      summary: 'List tenants: all of them for super-admins, your own otherwise',
      security,
      middleware: needs.user(),
      request: { query: s.ListTenantsQuery },
      responses: { 200: jsonResponse(s.page(s.TenantSchema), 'A page of tenants'), ...commonErrors },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const after = cursorValues(q.cursor, 2, keysetCursor('text'));
      const rows = await callerDb(c, null, (tx) =>
        tx<TenantRow>`
          select ${tx.columns(TENANT_COLUMNS)} from public.tenants
          where (${q.status ?? null}::text is null or status = ${q.status ?? null}::text)
            and (${after?.[0] ?? null}::text is null or (name, id) > (${after?.[0] ?? null}::text, ${after?.[1] ?? null}::uuid))
          order by name, id
          limit ${q.limit + 1}
        `);
      return c.json(keysetPage(rows, q.limit, (t) => [t.name, t.id]), 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/',
      summary: 'Create a tenant (super-admins), optionally with its first admin',
      security,
      middleware: needs.user({ platformAdmin: true }),
      request: { body: jsonBody(s.CreateTenantBody) },
      responses: { 201: jsonResponse(s.TenantSchema, 'The new tenant'), ...commonErrors, ...conflictError },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const tenant = await callerDb(c, null, async (tx) => {
        const [t] = await tx<TenantRow>`
          insert into public.tenants (name, slug, plan, settings)
          values (${body.name}, ${body.slug}, ${body.plan}, ${tx.json(body.settings)})
          returning ${tx.columns(TENANT_COLUMNS)}
        `;
        if (body.admin) {
          const [{ id }] = await tx<{ id: string }>`
            select private.find_or_create_user(${body.admin.email}, ${body.admin.first_name ?? null}, ${
            body.admin.last_name ?? null
          }) as id
          `;
          await tx`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${id}, 'admin')`;
        }
        for (const service of body.services) {
          await tx`insert into public.tenant_services (tenant_id, service) values (${t.id}, ${service})`;
        }
        return t;
      });
      return c.json(tenant, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}',
      summary: 'Read a tenant you belong to',
      security,
      middleware: needs.tenantRole('user'),
      request: { params: s.TenantIdParam },
      responses: {
        200: jsonResponse(s.TenantWithEntitlementsSchema, "The tenant, with its plan's limits and features"),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const [t] = await callerDb(
        c,
        tenantId,
        (tx) =>
          tx<(TenantRow & { entitlements: z.infer<typeof s.EntitlementsSchema> }) | undefined>`
            select ${
            tx.columns(TENANT_COLUMNS)
          }, private.entitlements_of(id) as entitlements from public.tenants where id = ${tenantId}`,
      );
      if (!t) throw notFound('Tenant');
      return c.json(t, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/{tenantId}',
      summary: 'Rename a tenant or change its settings, merged (admins); change its plan (super-admins)',
      security,
      middleware: needs.tenantRole('admin', { write: true }), // the plan: super-admins
      request: { params: s.TenantIdParam, body: jsonBody(s.UpdateTenantBody) },
      responses: { 200: jsonResponse(s.TenantSchema, 'The updated tenant'), ...commonErrors },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const body = c.req.valid('json');
      if (body.plan !== undefined) requirePlatformAdmin(caller(c));
      const [t] = await callerDb(c, tenantId, (tx) =>
        tx<TenantRow | undefined>`
          update public.tenants set
            name = coalesce(${body.name ?? null}::text, name),
            -- Merged (JSON Merge Patch, top level): keys not named stay, null removes one;
            -- over the row as locked, so two admins setting different keys keep both.
            settings = case when ${body.settings !== undefined}
              then (settings || ${tx.json(body.settings ?? {})}::jsonb)
                   - array(select e.key from jsonb_each(${tx.json(body.settings ?? {})}::jsonb) e where e.value = 'null'::jsonb)
              else settings end,
            plan = coalesce(${body.plan ?? null}::text, plan)
          where id = ${tenantId}
          returning ${tx.columns(TENANT_COLUMNS)}
        `);
      if (!t) throw notFound('Tenant');
      return c.json(t, 200);
    },
  );

  app.openapi(
    statusRoute('/{tenantId}/suspend', 'Suspend a tenant: read-only for its members (super-admins)', 'post'),
    async (c) => c.json(await setTenantStatus(c, c.req.valid('param').tenantId, 'suspended'), 200),
  );
  app.openapi(
    statusRoute('/{tenantId}/resume', 'Resume or restore a tenant (super-admins)', 'post'),
    async (c) => c.json(await setTenantStatus(c, c.req.valid('param').tenantId, 'active'), 200),
  );
  app.openapi(
    statusRoute('/{tenantId}', 'Soft-delete a tenant (super-admins)', 'delete'),
    async (c) => c.json(await setTenantStatus(c, c.req.valid('param').tenantId, 'deleted'), 200),
  );
}
