// GET /me: who the caller is, where they are a member, their pending invitations.
import { createRoute } from '@hono/zod-openapi';
import { caller, callerDb } from '../../../shared/auth/context.ts';
import { commonErrors, jsonResponse } from '../../../shared/schemas/common.ts';
import * as s from '../schemas.ts';
import { security, type TenantsApp } from './common.ts';

export function registerMe(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/me',
      summary: 'The caller: user, memberships, active tenant and role',
      security,
      responses: { 200: jsonResponse(s.MeSchema, 'The caller'), ...commonErrors },
    }),
    async (c) => {
      const who = caller(c);
      const invitations = await callerDb(
        c,
        null,
        (tx) =>
          tx`select id, tenant_id, tenant_name, tenant_slug, role, expires_at from private.my_invitations()`,
      );
      const header = c.req.header('x-tenant-id');
      const activeId = who.pinnedTenantId ??
        who.memberships.find((m) => m.tenant_id === header?.toLowerCase() || m.tenant.slug === header)
          ?.tenant_id ??
        (who.memberships.length === 1 ? who.memberships[0].tenant_id : undefined);
      const active = who.memberships.find((m) => m.tenant_id === activeId);
      return c.json({
        user: who.user,
        identity: { issuer: who.identity.issuer, subject: who.identity.subject, kind: who.identity.kind },
        is_platform_admin: who.isPlatformAdmin,
        memberships: who.memberships,
        invitations,
        active_tenant: active
          ? { id: active.tenant.id, slug: active.tenant.slug, name: active.tenant.name }
          : null,
        role: active ? active.role : who.isPlatformAdmin ? 'super_admin' as const : null,
      } as never, 200);
    },
  );
}
