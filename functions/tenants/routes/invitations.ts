// Invitations: admins invite by e-mail; the person joins by accepting one addressed to
// them, so nobody is added to a tenant without consent.
import { createRoute, z } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { notFound } from '../../../shared/errors.ts';
import { commonErrors, conflictError, errorResponse, jsonBody, jsonResponse } from '../../../shared/schemas/common.ts';
import type { Checked, Column, Selected } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import { security, type TenantRole, type TenantsApp } from './common.ts';

const INVITATION_COLUMNS = [
  'id',
  'tenant_id',
  'email',
  'role',
  'invited_by',
  'created_at',
  'expires_at',
  'accepted_at',
] as const satisfies readonly Column<'invitations'>[];
type InvitationRow = Checked<Selected<'invitations', typeof INVITATION_COLUMNS>, { role: TenantRole }>;

export function registerInvitations(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/{tenantId}/invitations',
      summary: 'Invite a person by e-mail (admins); they join when they accept',
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.TenantIdParam, body: jsonBody(s.InviteBody) },
      responses: {
        201: jsonResponse(s.InvitationSchema, 'The invitation'),
        ...commonErrors,
        ...conflictError,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const body = c.req.valid('json');
      // An invitation to a member is the database's 409 already_member (its rule holds
      // for every path: 20261207125000).
      const invitation = await callerDb(c, tenantId, async (tx) => {
        const [inv] = await tx<InvitationRow>`
          insert into public.invitations (tenant_id, email, role, expires_at)
          values (${tenantId}, ${body.email}, ${body.role}, now() + make_interval(days => ${body.expires_in_days}))
          returning ${tx.columns(INVITATION_COLUMNS)}
        `;
        return inv;
      });
      return c.json(invitation, 201);
    },
  );

  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/invitations',
      summary: "List a tenant's pending invitations, expired ones left out (admins)",
      security,
      middleware: needs.tenantRole('admin'),
      request: { params: s.TenantIdParam },
      responses: {
        200: jsonResponse(z.object({ items: z.array(s.InvitationSchema) }), 'Pending invitations'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const items = await callerDb(c, tenantId, (tx) =>
        tx<InvitationRow>`
          select ${tx.columns(INVITATION_COLUMNS)} from public.invitations
          where tenant_id = ${tenantId} and accepted_at is null and expires_at > now()
          order by created_at desc
        `);
      return c.json({ items }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/{tenantId}/invitations/{invitationId}',
      summary: 'Revoke a pending invitation (admins)',
      security,
      middleware: needs.tenantRole('admin', { write: true, whileSuspended: true, revokes: true }),
      request: { params: s.InvitationParam },
      responses: { 204: { description: 'Revoked' }, ...commonErrors },
    }),
    async (c) => {
      const { tenantId, invitationId } = c.req.valid('param');
      const deleted = await callerDb(c, tenantId, (tx) =>
        tx`
          delete from public.invitations
          where tenant_id = ${tenantId} and id = ${invitationId} and accepted_at is null
          returning id
        `);
      if (!deleted.length) throw notFound('Invitation');
      return c.body(null, 204);
    },
  );

  app.openapi(
    createRoute({
      method: 'post',
      path: '/invitations/{invitationId}/accept',
      summary: 'Accept an invitation addressed to your e-mail and join its tenant',
      security,
      middleware: needs.user(),
      request: { params: s.AcceptParam },
      responses: {
        200: jsonResponse(
          z.object({ tenant_id: s.TenantIdParam.shape.tenantId, role: s.TenantRoleSchema }),
          'The membership',
        ),
        ...commonErrors,
        409: errorResponse(
          '`already_accepted`: you accepted it before; `tenant_not_active`: its tenant is suspended or deleted ' +
            '(it can be accepted once the tenant is resumed, until it expires)',
        ),
        410: errorResponse('`invitation_expired`: ask an admin of the tenant for a new one'),
      },
    }),
    async (c) => {
      const { invitationId } = c.req.valid('param');
      // Refusals to the addressee are the database's: 409 already_accepted or
      // tenant_not_active, 410 invitation_expired; to anyone else 404.
      const [membership] = await callerDb(
        c,
        null,
        (tx) =>
          tx<{ tenant_id: string; role: TenantRole }>`select tenant_id, role from private.accept_invitation(${invitationId})`,
      );
      return c.json(membership, 200);
    },
  );
}
