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
import { activeTenant, type AuthEnv, caller, requireUser, type TenantAccess, tenantAccess, type TenantRole } from './context.ts';
import { requireMachine } from './service.ts';

/** A route acting in one tenant: the caller and their standing there. */
export type TenantEnv = { Variables: AuthEnv['Variables'] & { access: TenantAccess } };

export interface RoleOptions {
  /** A write: refused while the tenant is suspended. */
  write?: boolean;
  /** Only platform super-admins, once the tenant is known to be visible (a 404 first). */
  platformAdmin?: boolean;
}

export function requirePlatformAdmin(who: { isPlatformAdmin: boolean }): void {
  if (!who.isPlatformAdmin) throw forbidden('Only platform super-admins may do this');
}

export const needs = {
  /** A machine: the service credential or the scheduler's secret. */
  machine: (): MiddlewareHandler => requireMachine(),

  /** Anyone signed in (runs the request in the caller's transaction). */
  user: (opts: { platformAdmin?: boolean } = {}): MiddlewareHandler<AuthEnv> => {
    const signedIn = requireUser();
    return (c, next) =>
      signedIn(c, async () => {
        if (opts.platformAdmin) requirePlatformAdmin(caller(c));
        await next();
      });
  },

  /** At least `minRole` in the tenant of the path (`{tenantId}`). A malformed id is the
   *  422 its path parameter's validation gives. */
  tenantRole: (minRole: TenantRole, opts: RoleOptions = {}): MiddlewareHandler<TenantEnv> => {
    const signedIn: MiddlewareHandler = requireUser(); // sets what AuthEnv holds; access is added here
    return (c, next) =>
      signedIn(c, async () => {
        const raw = c.req.param('tenantId');
        const id = Uuid.safeParse(raw);
        if (!id.success) {
          throw validationError(id.error.issues.map((i) => ({ ...i, path: ['tenantId', ...i.path] })), 'param');
        }
        const who = caller(c);
        const access = tenantAccess(who, id.data, minRole, { write: opts.write });
        if (opts.platformAdmin) requirePlatformAdmin(who);
        c.set('access', access);
        await next();
      });
  },

  /** At least `minRole` in the request's active tenant (the token's, X-Tenant-Id, or
   *  the caller's only one). */
  activeTenantRole: (minRole: TenantRole, opts: { write?: boolean } = {}): MiddlewareHandler<TenantEnv> => {
    const signedIn: MiddlewareHandler = requireUser(); // sets what AuthEnv holds; access is added here
    return (c, next) =>
      signedIn(c, async () => {
        c.set('access', activeTenant(c, minRole, opts));
        await next();
      });
  },
};
