// A tenant's members: listing (staff), role and availability changes, removal (admins;
// never the last admin).
import { createRoute } from '@hono/zod-openapi';
import { callerDb } from '../../../shared/auth/context.ts';
import { apiKeyScope } from '../../../shared/auth/api-keys.ts';
import { needs } from '../../../shared/auth/needs.ts';
import { forbidden, notFound } from '../../../shared/errors.ts';
import {
  commonErrors,
  conflictError,
  cursorValues,
  jsonBody,
  jsonResponse,
  keysetPage,
  UUID_PATTERN,
} from '../../../shared/schemas/common.ts';
import type { Tx } from '../../../shared/db.ts';
import type { Checked, Tables } from '../../../shared/rows.ts';
import * as s from '../schemas.ts';
import { security, type TenantRole, type TenantsApp } from './common.ts';

type MemberRow =
  & Checked<Pick<Tables<'memberships'>, 'user_id' | 'role' | 'available' | 'created_at'>, { role: TenantRole }>
  & Pick<Tables<'users'>, 'email' | 'first_name' | 'last_name'>;

/** The members of a tenant with their names (a query fragment to add a where clause to);
 *  with `sortKey`, also the list's sort key, the address as the database lowers it. */
const selectMembers = (tx: Tx, sortKey = false) =>
  tx`
    select m.user_id, u.email, u.first_name, u.last_name, m.role, m.available, m.created_at
      ${sortKey ? tx`, lower(u.email) as sort_key` : tx``}
    from public.memberships m join public.users u on u.id = m.user_id`;

export function registerMembers(app: TenantsApp): void {
  app.openapi(
    createRoute({
      method: 'get',
      path: '/{tenantId}/members',
      summary: "List a tenant's members (agents and admins)",
      ...apiKeyScope('members:read'),
      middleware: needs.tenantRole('agent', { scope: 'members:read' }),
      request: { params: s.TenantIdParam, query: s.ListMembersQuery },
      responses: {
        200: jsonResponse(s.page(s.MemberSchema), 'A page of members, by e-mail'),
        ...commonErrors,
      },
    }),
    async (c) => {
      const { tenantId } = c.req.valid('param');
      const q = c.req.valid('query');
      // (lower(email), user_id): an address is up to 320 characters, past keysetCursor's 200.
      const after = cursorValues(
        q.cursor,
        2,
        // In characters, as the addresses' check counts them (length counts UTF-16 units).
        (v, i) => i === 0 ? [...v].length <= 320 && !v.includes('\u0000') : UUID_PATTERN.test(v),
      );
      const rows = await callerDb(
        c,
        tenantId,
        (tx) =>
          tx<MemberRow & { sort_key: string }>`
            ${selectMembers(tx, true)}
            where m.tenant_id = ${tenantId}
              and (${after?.[0] ?? null}::text is null
                   or (lower(u.email), m.user_id) > (${after?.[0] ?? null}::text, ${after?.[1] ?? null}::uuid))
            order by lower(u.email), m.user_id
            limit ${q.limit + 1}`,
      );
      // The sort key as the database lowers it (the cursor is compared there), then left out.
      const page = keysetPage(rows, q.limit, (m) => [m.sort_key, m.user_id]);
      return c.json({ items: page.items.map(({ sort_key: _key, ...member }) => member), next: page.next }, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'patch',
      path: '/{tenantId}/members/{userId}',
      summary: "Change a member's role or availability for automatic assignment (admins; a tenant keeps an admin)",
      security,
      middleware: needs.tenantRole('admin', { write: true }),
      request: { params: s.MemberParam, body: jsonBody(s.UpdateMemberBody) },
      responses: { 200: jsonResponse(s.MemberSchema, 'The member'), ...commonErrors, ...conflictError },
    }),
    async (c) => {
      const { tenantId, userId } = c.req.valid('param');
      const body = c.req.valid('json');
      const member = await callerDb(c, tenantId, async (tx) => {
        const updated = await tx`
          update public.memberships
          set role = coalesce(${body.role ?? null}::text, role), available = coalesce(${
          body.available ?? null
        }::boolean, available)
          where tenant_id = ${tenantId} and user_id = ${userId} returning id
        `;
        if (!updated.length) return undefined;
        const [m] = await tx<MemberRow>`${selectMembers(tx)} where m.tenant_id = ${tenantId} and m.user_id = ${userId}`;
        return m;
      });
      if (!member) throw notFound('Member');
      return c.json(member, 200);
    },
  );

  app.openapi(
    createRoute({
      method: 'delete',
      path: '/{tenantId}/members/{userId}',
      summary: 'Remove a member (admins; never the last admin)',
      security,
      middleware: needs.tenantRole('admin', { write: true, whileSuspended: true, revokes: true }),
      request: { params: s.MemberParam },
      responses: { 204: { description: 'Removed' }, ...commonErrors, ...conflictError },
    }),
    async (c) => {
      const { tenantId, userId } = c.req.valid('param');
      const deleted = await callerDb(c, tenantId, async (tx) => {
        const gone = await tx`delete from public.memberships where tenant_id = ${tenantId} and user_id = ${userId} returning id`;
        // An admin leaving a tenant that is not active: their own row is not theirs to
        // delete until it is resumed (the policy refuses it), though they are a member.
        if (!gone.length && userId === c.var.caller.user.id) {
          const [here] = await tx<{ status: string }>`
            select t.status from public.memberships m join public.tenants t on t.id = m.tenant_id
            where m.tenant_id = ${tenantId} and m.user_id = ${userId}`;
          if (here && here.status !== 'active') {
            throw forbidden('The tenant is suspended: leaving it waits until it is resumed', 'tenant_suspended');
          }
        }
        return gone;
      });
      if (!deleted.length) throw notFound('Member');
      return c.body(null, 204);
    },
  );
}
