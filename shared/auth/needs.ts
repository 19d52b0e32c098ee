// What a route needs, declared on the route itself:
//   createRoute({ ..., middleware: needs.tenantRole('admin', { write: true }) })
// Each declaration is one middleware that authenticates the caller and then checks
// their standing, before the request is validated and the handler runs; the handler
// reads the result from the context (c.var.caller, c.var.access). It is given alone,
// not in an array, so zod-openapi infers the handler's env from it: a handler reading
// c.var.access does not compile on a route that declares no tenant role. Nothing is
// guarded app-wide (tests/functions/route-needs.test.ts). Checks that depend on
// what a request names (a ticket the caller may not see is a 404 before a 403, a body
// field only super-admins may set) stay in the handler.
import type { MiddlewareHandler } from 'hono';
import { forbidden } from '../errors.ts';
import { validationError } from '../http.ts';
import { Uuid } from '../schemas/common.ts';
import { bearsApiKey, type Scope } from './api-keys.ts';
import { type AuthEnv, caller, requireUser, type TenantEnv, type TenantRole } from './context.ts';
import { requireMachine, requireTelephony } from './service.ts';
import { readsTenantHeader } from './tenant-header.ts';

export type { TenantEnv } from './context.ts';

export interface RoleOptions {
  /** A write: refused while the tenant is suspended. */
  write?: boolean;
  /** With `write`: a write that takes access away, allowed while the tenant is suspended. */
  whileSuspended?: boolean;
  /** With `write`: a write that takes access away, never spending the tenant's rate limit. */
  revokes?: boolean;
  /** Only platform super-admins, once the tenant is known to be visible (a 404 first). */
  platformAdmin?: boolean;
  /** A feature the tenant's plan must include (private.require_feature: 403
   *  feature_not_in_plan), by name or read from the request (a path parameter). */
  feature?: string | ((c: { req: { param(name: string): string | undefined } }) => string | null);
  /** The scope an API key needs here (403 insufficient_scope without it); a route
   *  without one refuses API keys. */
  scope?: Scope;
}

export function requirePlatformAdmin(who: { isPlatformAdmin: boolean }): void {
  if (!who.isPlatformAdmin) throw forbidden('Only platform super-admins may do this');
}

export const needs = {
  /** A machine: the service credential or the scheduler's secret. */
  machine: (): MiddlewareHandler => requireMachine(),

  /** The telephony provider: the service credential or VOICE_TELEPHONY_SECRET; or a
   *  tenant API key with `scope`, confined to its tenant. */
  telephony: (scope?: 'voice:route' | 'calls:write'): MiddlewareHandler => requireTelephony(scope),

  /** Anyone signed in (runs the request in the caller's transaction). `activeTenant`: the
   *  handler reads the request's active tenant itself, so its operation declares
   *  X-Tenant-Id. */
  user: (opts: { platformAdmin?: boolean; activeTenant?: boolean } = {}): MiddlewareHandler<AuthEnv> => {
    const signedIn = requireUser();
    const middleware: MiddlewareHandler<AuthEnv> = (c, next) =>
      signedIn(c, async () => {
        if (opts.platformAdmin) requirePlatformAdmin(caller(c));
        await next();
      });
    return opts.activeTenant ? readsTenantHeader(middleware) : middleware;
  },

  /** At least `minRole` in the tenant of the path (`{tenantId}`), as the database answers
   *  it with the caller (private.tenant_access). A malformed id is the 422 its path
   *  parameter's validation gives, once the caller is known. */
  tenantRole: (minRole: TenantRole, opts: RoleOptions = {}): MiddlewareHandler<TenantEnv> => {
    const unchecked: MiddlewareHandler = requireUser();
    // An API key, on a route keys may use: checked for the route's scope in its own tenant
    // (where a key acts), so a malformed id is the 422 a person hears too, not 403
    // insufficient_scope (keys are refused where no need is declared) for a scope it holds.
    const uncheckedKey: MiddlewareHandler | undefined = opts.scope ? requireUser({ minRole, scope: opts.scope }) : undefined;
    return (c, next) => {
      const id = Uuid.safeParse(c.req.param('tenantId'));
      const signedIn: MiddlewareHandler = id.success
        ? requireUser({
          tenantId: id.data,
          minRole,
          write: opts.write,
          whileSuspended: opts.whileSuspended,
          revokes: opts.revokes,
          scope: opts.scope,
        })
        : uncheckedKey && bearsApiKey(c.req.header('authorization'))
        ? uncheckedKey
        : unchecked;
      return signedIn(c, async () => {
        if (!id.success) {
          throw validationError(id.error.issues.map((i) => ({ ...i, path: ['tenantId', ...i.path] })), 'param');
        }
        if (opts.platformAdmin) requirePlatformAdmin(caller(c));
        // A feature named by the path (a service) that is no such thing: the route's own
        // validation answers (422 naming the parameter), not a plan check of it.
        const feature = typeof opts.feature === 'function' ? opts.feature(c) : opts.feature;
        if (feature) await c.get('tx')`select private.require_feature(${id.data}::uuid, ${feature})`;
        await next();
      });
    };
  },

  /** At least `minRole` in the request's active tenant (the token's, X-Tenant-Id, or
   *  the caller's only one), resolved and checked by the database with the caller
   *  (private.request_tenant_id, private.tenant_access), and the feature its plan must
   *  include, in the same statement (private.require_feature). */
  activeTenantRole: (
    minRole: TenantRole,
    opts: { write?: boolean; scope?: Scope; feature?: string; bodyFirst?: boolean } = {},
  ): MiddlewareHandler<TenantEnv> =>
    readsTenantHeader(
      requireUser({ minRole, write: opts.write, scope: opts.scope, feature: opts.feature, bodyFirst: opts.bodyFirst }),
    ),
};
