// The caller of a user endpoint: who they are in the database, where they are a
// member, and the tenant this request acts in. The database is the source of truth
// for membership and role; roles in tokens are ignored.
import type { MiddlewareHandler } from 'hono';
import { asUser, type Claims, type Tx, withClaims } from '../db.ts';
import { badRequest, forbidden, notFound } from '../errors.ts';
import { UUID_PATTERN } from '../schemas/common.ts';
import { type Identity, verifyUserToken } from './verify.ts';

export type TenantRole = 'user' | 'agent' | 'admin';
export type Role = TenantRole | 'super_admin';

export interface Membership {
  tenant_id: string;
  role: TenantRole;
  tenant: { id: string; name: string; slug: string; status: string };
}

export interface Caller {
  identity: Identity;
  user: { id: string; email: string; first_name: string | null; last_name: string | null; status: string };
  memberships: Membership[];
  isPlatformAdmin: boolean;
  /** The tenant the token pins (Clerk's active organisation, the access-token hook's claim). */
  pinnedTenantId?: string;
  /** Set instead of pinnedTenantId when the token names a tenant the caller is only
   *  invited to: such a token may read /me and accept invitations, nothing in a tenant. */
  invitedTenantId?: string;
}

const notJoinedYet = () =>
  forbidden(
    'Your token is bound to a tenant you are invited to but have not joined; accept the invitation first',
    'tenant_not_member',
  );

export type AuthEnv = { Variables: { caller: Caller; tx: Tx } };
/** The context of a signed-in request: its env is AuthEnv or one extending it. */
export type CallerContext = {
  get(key: 'caller'): Caller;
  get(key: 'tx'): Tx;
  req: { header(name: string): string | undefined };
};

const RANK: Record<TenantRole, number> = { user: 1, agent: 2, admin: 3 };

/** Ends the request transaction without committing when the handler failed. */
class RollbackRequest extends Error {}

/** Verifies the token, then opens the request's one transaction (as the user, under
 *  RLS), loads the caller in it with a single round trip, and runs the rest of the
 *  request inside it: every callerDb() of the handler shares it, and it commits only if
 *  the handler succeeded (Hono hands handler errors to onError, so they are read back
 *  from c.error here to roll back). */
export function requireUser(): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const identity = await verifyUserToken(c.req.header('authorization'));
    const hint = identity.tenantHint ?? null;
    try {
      await asUser({ ...identity.claims }, async (tx) => {
        const [row] = await tx`
          with me as (
            select u.id, u.email, u.first_name, u.last_name, u.status
            from public.users u where u.id = (select private.current_user_id())
          )
          select to_jsonb(me) as user,
            (select private.is_platform_admin()) as is_platform_admin,
            coalesce((
              select jsonb_agg(jsonb_build_object(
                'tenant_id', m.tenant_id, 'role', m.role,
                'tenant', jsonb_build_object('id', t.id, 'name', t.name, 'slug', t.slug, 'status', t.status)
              ) order by t.name)
              from public.memberships m join public.tenants t on t.id = m.tenant_id
              where m.user_id = me.id and t.status <> 'deleted'
            ), '[]'::jsonb) as memberships,
            (
              select t.id from public.tenants t
              where ${hint}::text is not null
                and (t.slug = ${hint}::text or t.id::text = lower(${hint}::text)
                  or t.id = (select l.tenant_id from public.tenant_org_links l
                             where l.issuer = ${identity.issuer} and l.org_id = ${hint}::text))
              limit 1
            ) as pinned_tenant_id
          from me
        `;
        if (!row) {
          throw forbidden('No account on this platform belongs to this identity', 'unknown_user');
        }
        let invitedTenantId: string | undefined;
        if (hint && !row.pinned_tenant_id) {
          // A token bound to a tenant the person is invited to but has not joined (the
          // invitee signed in to the tenant's app): enough to see and accept the
          // invitation, nothing else.
          const [invited] = await tx`
            select i.tenant_id from private.my_invitations() i
            where i.tenant_slug = ${hint}::text or i.tenant_id::text = lower(${hint}::text)
            limit 1
          `;
          if (!invited) throw forbidden('The tenant named by the token is not one of yours', 'tenant_not_member');
          invitedTenantId = invited.tenant_id;
        }
        c.set('caller', {
          identity,
          user: row.user,
          memberships: row.memberships,
          isPlatformAdmin: row.is_platform_admin,
          pinnedTenantId: row.pinned_tenant_id ?? undefined,
          invitedTenantId,
        });
        c.set('tx', tx);
        await next();
        if (c.error) throw new RollbackRequest();
      });
    } catch (err) {
      if (!(err instanceof RollbackRequest)) throw err;
    }
  };
}

export function caller(c: CallerContext): Caller {
  return c.get('caller');
}

export interface TenantAccess {
  tenantId: string;
  role: Role;
}

/** The caller's standing in a tenant. A tenant the caller cannot see is a 404 (its
 *  existence is not confirmed); one they see with too low a role is a 403. */
export function tenantAccess(
  who: Caller,
  tenantId: string,
  minRole: TenantRole,
  opts: { write?: boolean } = {},
): TenantAccess {
  if (who.invitedTenantId) throw notJoinedYet();
  if (!UUID_PATTERN.test(tenantId)) throw notFound('Tenant');
  if (who.isPlatformAdmin) return { tenantId, role: 'super_admin' };
  const m = who.memberships.find((x) => x.tenant_id === tenantId);
  if (!m) throw notFound('Tenant');
  if (who.pinnedTenantId && who.pinnedTenantId !== tenantId) {
    throw forbidden(
      'Your token is bound to another tenant; switch the active organisation first',
      'tenant_not_active',
    );
  }
  if (RANK[m.role] < RANK[minRole]) throw forbidden(`This needs the ${minRole} role in the tenant`);
  // Writes need an active tenant (RLS enforces it too); super-admins may still repair one.
  if (opts.write && m.tenant.status !== 'active') {
    throw forbidden('The tenant is suspended; it is read-only until resumed', 'tenant_suspended');
  }
  return { tenantId, role: m.role };
}

/** The active tenant when the route has no tenant in its path: the token's, else
 *  the X-Tenant-Id header (id or slug), else the caller's only tenant. */
/** The tenant a request without one in its path acts in: the token's, else the
 *  X-Tenant-Id header (id or slug; a super-admin may name any tenant by id), else the
 *  caller's only tenant. Undefined when nothing names one. */
export function resolveActiveTenantId(who: Caller, header: string | undefined): string | undefined {
  if (who.invitedTenantId) return undefined;
  if (who.pinnedTenantId) {
    const sameTenant = !header || header === who.pinnedTenantId ||
      who.memberships.some((m) => m.tenant.slug === header && m.tenant_id === who.pinnedTenantId);
    if (!sameTenant) throw badRequest('tenant_mismatch', 'X-Tenant-Id differs from the tenant your token is bound to');
    return who.pinnedTenantId;
  }
  if (header) {
    return who.memberships.find((x) => x.tenant_id === header.toLowerCase() || x.tenant.slug === header)?.tenant_id ?? header;
  }
  return who.memberships.length === 1 ? who.memberships[0].tenant_id : undefined;
}

export function activeTenant(c: CallerContext, minRole: TenantRole, opts: { write?: boolean } = {}): TenantAccess {
  const who = caller(c);
  if (who.invitedTenantId) throw notJoinedYet();
  const tenantId = resolveActiveTenantId(who, c.req.header('x-tenant-id'));
  if (!tenantId) throw badRequest('tenant_required', 'Name the tenant with the X-Tenant-Id header');
  return tenantAccess(who, tenantId, minRole, opts);
}

/** Runs fn as the caller, acting in the given tenant (or in none), in the request's
 *  transaction. */
export function callerDb<T>(
  c: CallerContext,
  tenantId: string | null,
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  const claims: Claims = { ...caller(c).identity.claims, role: 'authenticated' };
  if (tenantId) claims.tenant_id = tenantId;
  return withClaims(c.get('tx'), 'authenticated', claims, fn);
}
