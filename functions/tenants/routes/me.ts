// /me: who the caller is, where they are a member, their pending invitations; and
// their own profile, which they edit (e-mail and status belong to the identity provider).
import { createRoute } from '@hono/zod-openapi';
import { caller, callerDb, resolveActiveTenantId } from '../../../shared/auth/context.ts';
import { commonErrors, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
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
        (tx) => tx`select id, tenant_id, tenant_name, tenant_slug, role, expires_at from private.my_invitations()`,
      );
      const activeId = resolveActiveTenantId(who, c.req.header('x-tenant-id'));
      const active = who.memberships.find((m) => m.tenant_id === activeId);
      return c.json({
        user: who.user,
        identity: { issuer: who.identity.issuer, subject: who.identity.subject, kind: who.identity.kind },
        is_platform_admin: who.isPlatformAdmin,
        memberships: who.memberships,
        invitations,
        active_tenant: active ? { id: active.tenant.id, slug: active.tenant.slug, name: active.tenant.name } : null,
        role: active ? active.role : who.isPlatformAdmin ? 'super_admin' as const : null,
      } as never, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/me',
      summary: 'Edit your own profile: names, avatar, profile data',
      security,
      request: { body: jsonBody(s.UpdateProfileBody) },
      responses: { 200: jsonResponse(s.ProfileSchema, 'Your profile'), ...commonErrors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const me = caller(c).user.id;
      const set = (field: keyof typeof body) => field in body;
      const [profile] = await callerDb(c, null, (tx) =>
        tx`
          update public.users set
            first_name = case when ${set('first_name')} then ${body.first_name ?? null}::text else first_name end,
            last_name = case when ${set('last_name')} then ${body.last_name ?? null}::text else last_name end,
            display_name = case when ${set('display_name')} then ${body.display_name ?? null}::text else display_name end,
            avatar_url = case when ${set('avatar_url')} then ${body.avatar_url ?? null}::text else avatar_url end,
            profile = coalesce(${body.profile ? tx.json(body.profile as never) : null}::jsonb, profile)
          where id = ${me}
          returning id, email, first_name, last_name, display_name, avatar_url, profile, updated_at
        `);
      return c.json(profile as never, 200);
    },
  );
}
