// /me: who the caller is, where they are a member, their pending invitations; and
// their own profile, which they edit (e-mail and status belong to the identity provider).
import { createRoute, type z } from '@hono/zod-openapi';
import { caller, callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import { commonErrors, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Checked, Column, JsonObject, Selected } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import { security, type TenantRole, type TenantsApp } from './common.ts';

/** What private.my_invitations() returns (its columns, as the function declares them). */
type PendingInvitation = {
  id: string;
  tenant_id: string;
  tenant_name: string;
  tenant_slug: string;
  role: TenantRole;
  expires_at: string;
};

const PROFILE_COLUMNS = [
  'id',
  'email',
  'first_name',
  'last_name',
  'display_name',
  'avatar_url',
  'profile',
  'updated_at',
] as const satisfies readonly Column<'users'>[];
type Profile = Checked<Selected<'users', typeof PROFILE_COLUMNS>, { profile: JsonObject }>;

export function registerMe(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/me',
      summary: 'The caller: user, memberships, active tenant and role',
      security,
      middleware: needs.user({ activeTenant: true }),
      responses: { 200: jsonResponse(s.MeSchema, 'The caller'), ...commonErrors },
    }),
    async (c) => {
      const who = caller(c);
      // The active tenant as the database resolves it (the token's, X-Tenant-Id, the only
      // one; a header differing from the token's tenant is its 400 tenant_mismatch).
      const named = c.req.header('x-tenant-id') ?? null;
      const [invitations, [{ active_id: activeId, token_id: tokenId, entitlements }]] = await callerDb(
        c,
        null,
        (tx) =>
          Promise.all([
            tx<PendingInvitation>`select id, tenant_id, tenant_name, tenant_slug, role, expires_at from private.my_invitations()`,
            // The active tenant's plan, where the caller is a member of it (issue 15).
            tx<{ active_id: string | null; token_id: string | null; entitlements: z.infer<typeof s.EntitlementsSchema> | null }>`
            select a.id as active_id, private.active_tenant_id() as token_id,
              case when a.id = any (private.tenant_ids('user')) then private.entitlements_of(a.id) end as entitlements
            from (select private.request_tenant_id(${named}::text) as id) a`,
          ]),
      );
      const active = who.memberships.find((m) => m.tenant_id === activeId);
      // X-Tenant-Id naming a tenant not the caller's is 404, as on every route that reads
      // it (a platform admin acts in any tenant, as super_admin). An invitee's token bound
      // to the inviting tenant still reads /me before they join.
      if (named && activeId && activeId !== tokenId && !active && !who.isPlatformAdmin) throw notFound('Tenant');
      return c.json({
        user: who.user,
        identity: { issuer: who.identity.issuer, subject: who.identity.subject, kind: who.identity.kind },
        is_platform_admin: who.isPlatformAdmin,
        memberships: who.memberships,
        invitations,
        active_tenant: active ? { id: active.tenant.id, slug: active.tenant.slug, name: active.tenant.name } : null,
        role: active ? active.role : who.isPlatformAdmin ? 'super_admin' as const : null,
        entitlements: active ? entitlements : null,
      }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/me',
      summary: 'Edit your own profile: names, avatar, profile data',
      security,
      middleware: needs.user(),
      request: { body: jsonBody(s.UpdateProfileBody) },
      responses: { 200: jsonResponse(s.ProfileSchema, 'Your profile'), ...commonErrors },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const me = caller(c).user.id;
      const set = (field: keyof typeof body) => field in body;
      const [profile] = await callerDb(c, null, (tx) =>
        tx<Profile>`
          update public.users set
            first_name = case when ${set('first_name')} then ${body.first_name ?? null}::text else first_name end,
            last_name = case when ${set('last_name')} then ${body.last_name ?? null}::text else last_name end,
            display_name = case when ${set('display_name')} then ${body.display_name ?? null}::text else display_name end,
            avatar_url = case when ${set('avatar_url')} then ${body.avatar_url ?? null}::text else avatar_url end,
            profile = coalesce(${body.profile ? tx.json(body.profile) : null}::jsonb, profile)
          where id = ${me}
          returning ${tx.columns(PROFILE_COLUMNS)}
        `);
      return c.json(profile, 200);
    },
  );
}
