// The caller of a user endpoint: who they are in the database, where they are a
// member, and the tenant this request acts in. The database is the source of truth
// for membership and role; roles in tokens are ignored.
import type { MiddlewareHandler } from 'hono';
import { asUser, type Claims, type Tx, withClaims } from '../db.ts';
import { forbidden } from '../errors.ts';
import { chunksOf, streamOf } from '../limits.ts';
import { countKeyRead, countKeyWrite, countVerifiedKeyRead, countWrite, giveBackWrite, type TenantHit } from '../rate-limit.ts';
import { markPrincipal } from '../request-log.ts';
import { apiKeyIdentity, presentedApiKey, type Scope } from './api-keys.ts';
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
  /** Set when the request authenticated with an API key: the key acts as its creator
   *  (`user`), only in its tenant and only on routes declaring one of its scopes. */
  apiKey?: { id: string; tenant_id: string; scopes: Scope[] };
}

export type AuthEnv = { Variables: { caller: Caller; tx: Tx } };
/** The context of a signed-in request: its env is AuthEnv or one extending it. */
export type CallerContext = {
  get(key: 'caller'): Caller;
  get(key: 'tx'): Tx;
  req: { header(name: string): string | undefined };
};

/** The caller's standing in the tenant a request acts in, as the database states it
 *  (private.tenant_access): their role, and whether it ranks as staff (agent or above)
 *  and as an admin. Roles are never compared here. */
export interface TenantAccess {
  tenantId: string;
  role: Role;
  staff: boolean;
  admin: boolean;
}

/** A route acting in one tenant: the caller and their standing there. */
export type TenantEnv = { Variables: AuthEnv['Variables'] & { access: TenantAccess } };

/** What a route needs in a tenant: at least `minRole` in the path's tenant (`tenantId`)
 *  or, without one, in the request's active tenant (the token's, X-Tenant-Id, or the
 *  caller's only one); `write` for a write (refused while the tenant is suspended). */
export interface TenantNeed {
  tenantId?: string;
  minRole: TenantRole;
  write?: boolean;
  /** A write allowed while the tenant is suspended: one that takes access away or stops
   *  what the tenant sends (revoking an API key; turning off, re-keying or deleting a
   *  webhook endpoint, whose table allows a suspended tenant nothing else). */
  whileSuspended?: boolean;
  /** A write that takes access away (revoking a key, deleting or re-keying an endpoint):
   *  counted against the caller's own window only, never the tenant's, so an admin can
   *  always make it. */
  revokes?: boolean;
  /** The API-key scope the route needs; a route without one refuses API keys. */
  scope?: Scope;
  /** A feature the plan of the tenant the request acts in must include (403
   *  feature_not_in_plan, private.require_feature), asked in the same round trip. */
  feature?: string;
  /** Read the whole request body (bounded by shared/limits.ts) once the caller's
   *  standing is checked and before the request's transaction opens: a streamed upload (the CSV
   *  import) must not hold a database connection, and locks, while its bytes arrive
   *  over a slow link. */
  bodyFirst?: boolean;
}

/** Ends the request transaction without committing when the handler failed. */
class RollbackRequest extends Error {}

type CallerRow = {
  user: Caller['user'];
  is_platform_admin: boolean;
  memberships: Membership[];
  access: { tenant_id: string; role: Role; staff: boolean; admin: boolean } | null;
  api_key: Caller['apiKey'] | null;
};

/** Verifies the token, then opens the request's one transaction (as the user, under
 *  RLS), loads the caller in it with a single round trip, and runs the rest of the
 *  request inside it: every callerDb() of the handler shares it, and it commits only if
 *  the handler succeeded (Hono hands handler errors to onError, so they are read back
 *  from c.error here to roll back).
 *
 *  The same round trip asks the database about the tenant: given a need, the caller's
 *  standing in the tenant the request acts in (private.tenant_access), set as
 *  c.var.access; else whether the token's tenant may be used at all
 *  (private.token_tenant_id: one that is neither the caller's nor inviting them refuses
 *  the token; tenant_access asks it too). Their refusals are the
 *  database's (400 tenant_required/tenant_mismatch, 403 tenant_not_member/forbidden/
 *  tenant_suspended, 404), mapped by shared/errors.ts. */
export function requireUser(): MiddlewareHandler<AuthEnv>;
export function requireUser(need: TenantNeed): MiddlewareHandler<TenantEnv>;
export function requireUser(need?: TenantNeed): MiddlewareHandler<AuthEnv> | MiddlewareHandler<TenantEnv> {
  const middleware: MiddlewareHandler<TenantEnv> = async (c, next) => {
    // An API key (by its prefix) is checked by the database in the statement below
    // (private.verify_api_key: secret, revocation, expiry, this route's scope); a route
    // that declares no scope refuses keys outright.
    const key = await presentedApiKey(c.req.header('authorization'));
    if (key && !need?.scope) throw forbidden('API keys cannot be used on this route', 'insufficient_scope');
    const identity = key ? apiKeyIdentity(key) : await verifyUserToken(c.req.header('authorization'));
    if (key) markPrincipal(c, 'api_key');
    // The tenant's hit of a write (below), given back if the request does not commit.
    let spent: TenantHit = null;
    let committed = false;
    try {
      const body = c.req.method !== 'GET' && c.req.method !== 'HEAD' ? c.req.raw.body : null;
      // An API key's write, or its read with a body (a search sent as POST), is counted and
      // the key verified with it (secret, revocation, expiry, scope) before the body is
      // read: a forged key is refused without the function reading a body for it. Its read
      // without one is counted alone (a key that does not verify counts nothing; the
      // request's own statement refuses it).
      if (need?.write && key) spent = await countKeyWrite(c, key, need.scope!, identity.claims, need);
      else if (key && body) await countVerifiedKeyRead(c, key, need!.scope!);
      else if (key) await countKeyRead(c, key);
      /** The caller's row: the key's verification, the caller's context, their standing in
       *  the tenant and the plan's feature, in one statement (it raises what refuses them). */
      const callerRow = async (tx: Tx) => {
        const verifyKey = key
          ? tx`private.verify_api_key(${key.id}::uuid, ${key.secretSha256}, ${need?.scope ?? null}::text)`
          : tx`null::jsonb`;
        const refusedIfSuspended = !!need?.write && !need.whileSuspended;
        const access = !need
          ? tx`null::jsonb`
          : need.tenantId !== undefined
          ? tx`private.tenant_access(${need.tenantId}::uuid, ${need.minRole}, ${refusedIfSuspended})`
          : tx`private.tenant_access(private.request_tenant_id(${
            c.req.header('x-tenant-id') ?? null
          }::text), ${need.minRole}, ${refusedIfSuspended})`;
        // The caller's context (private.caller_context: user, admin flag, memberships with
        // their tenants) is read once per transaction and cached there for the policies
        // and helpers of the rest of the request; this statement reads it, and no row
        // comes back for an identity with no active user.
        const [row] = await tx<CallerRow>`
      with k as materialized (select ${verifyKey} as api_key), -- first: refuses a bad key
      c as materialized (select k.api_key, private.caller_context() as ctx from k) -- one call, not one per use
      select c.ctx -> 'user' as user,
        c.api_key, -- the verified key (private.verify_api_key), with its scopes
        (c.ctx ->> 'platform_admin')::boolean as is_platform_admin,
        coalesce((
          select jsonb_agg(jsonb_build_object(
            'tenant_id', m.key, 'role', m.value ->> 0,
            'tenant', jsonb_build_object('id', m.key, 'name', m.value ->> 2, 'slug', m.value ->> 3, 'status', m.value ->> 1)
          ) order by m.value ->> 2)
          from jsonb_each(c.ctx -> 'memberships') m
        ), '[]'::jsonb) as memberships,
        ${need ? tx`null::uuid` : tx`private.token_tenant_id()`} as token_tenant_id,
        a.access,
        ${
          need?.feature
            ? tx`private.require_feature((a.access ->> 'tenant_id')::uuid, ${need.feature}::text)`
            : tx`null`
        } as feature -- after the standing: a stranger's answer stays the 404/403 it was
      from c
      -- offset 0: evaluated once per caller row, never inlined into the feature check twice
      cross join lateral (select ${access} as access offset 0) a
      where c.ctx ->> 'user_id' is not null
    `;
        return row as CallerRow | undefined;
      };
      if (body) {
        if (need?.bodyFirst) {
          // The caller's standing first, in a short transaction of its own (the request's
          // own checks it again), so no one without it makes the function hold a large body.
          await asUser({ ...identity.claims }, async (tx) => {
            if (!(await callerRow(tx))) throw forbidden('No account on this platform belongs to this identity', 'unknown_user');
          });
        }
        // The body (bounded by limitBody) is read whole now, after the token was checked and
        // before the request's transaction opens: read by the validator inside it, a body
        // sent a byte at a time just inside the idle timeout kept a pooled connection idle
        // in transaction for as long as the client liked. The chunks as they came, streamed
        // again: one joined copy would be read by the handler as one chunk, parsed whole.
        c.req.raw = new Request(c.req.raw, { body: streamOf(await chunksOf(body)), duplex: 'half' } as RequestInit);
      }
      // A person's write counts against their rate limit and, when the route will let them
      // write, the tenant's (429 when spent): once the body is in (their token is verified
      // already), so a body sent a byte at a time holds no hit of the tenant's meanwhile.
      // A write the request does not commit (any error answer: nothing was written) gives
      // the tenant's hit back, a key's too; the caller's window keeps it, so no one sends
      // failing writes unbounded. Routes letting every member in refuse in the handler,
      // and every route refuses bad input and unknown ids after the count: a few
      // customers, each inside their own limit, otherwise kept every colleague's write at
      // 429.
      if (need?.write && !key) spent = await countWrite(c, identity.claims, need);
      try {
        await asUser({ ...identity.claims }, async (tx) => {
          const row = await callerRow(tx);
          if (!row) {
            throw forbidden('No account on this platform belongs to this identity', 'unknown_user');
          }
          c.set('caller', {
            identity,
            user: row.user,
            memberships: row.memberships,
            isPlatformAdmin: row.is_platform_admin,
            ...(row.api_key ? { apiKey: row.api_key } : {}),
          });
          if (row.access) {
            const a = row.access;
            c.set('access', { tenantId: a.tenant_id, role: a.role, staff: a.staff, admin: a.admin });
          }
          c.set('tx', tx);
          await next();
          if (c.error) throw new RollbackRequest();
        });
        committed = c.res.status < 400;
      } catch (err) {
        if (!(err instanceof RollbackRequest)) throw err;
      }
    } finally {
      // A failure to give it back costs one hit until the minute ends: the request's own
      // answer stands.
      if (!committed && spent) await giveBackWrite(spent).catch(() => {});
    }
  };
  return middleware;
}

export function caller(c: CallerContext): Caller {
  return c.get('caller');
}

/** Runs fn as the caller, acting in the given tenant (or in none), in the request's
 *  transaction. */
export function callerDb<T>(
  c: CallerContext,
  tenantId: string | null,
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  const who = caller(c);
  const claims: Claims = { ...who.identity.claims, role: 'authenticated' };
  // An API key acts in its own tenant whatever the claims name (private.active_tenant_id),
  // so its claims stay as the request began: no re-scoping, the caller context stays cached.
  if (tenantId && !who.apiKey) claims.tenant_id = tenantId;
  return withClaims(c.get('tx'), 'authenticated', claims, fn);
}
