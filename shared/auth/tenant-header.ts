// X-Tenant-Id in the OpenAPI documents. A route whose needs resolve the request's active
// tenant (needs.activeTenantRole, GET /tenants/me) reads the header, so its operation
// declares it and generated clients can send it. The middleware is marked where it is
// made (shared/auth/needs.ts); the routers (shared/http.ts) add the parameter to every
// route whose middleware carries the mark, so no route lists it by hand.
import type { MiddlewareHandler } from 'hono';

export const TENANT_HEADER_PARAMETER = {
  name: 'X-Tenant-Id',
  in: 'header',
  required: false,
  description:
    'The tenant to act in, by id or slug (in any case), for a caller whose token names none (with one tenant, it is that ' +
    'one). A token or API key bound to a tenant acts only there: naming another is 400 `tenant_mismatch`. Neither, ' +
    'for a member of several tenants: 400 `tenant_required`; a tenant not theirs: 404 `not_found`.',
  schema: { type: 'string', maxLength: 200, examples: ['10000000-0000-4000-8000-000000000001', 'acme'] },
} as const;

const marked = new WeakSet<MiddlewareHandler>();

/** Marks a route middleware that reads X-Tenant-Id (through private.request_tenant_id). */
export function readsTenantHeader<M extends MiddlewareHandler>(middleware: M): M {
  marked.add(middleware);
  return middleware;
}

/** The route's config, with X-Tenant-Id among its parameters when its middleware reads it. */
export function withTenantHeader<R extends { middleware?: unknown; parameters?: unknown[] }>(route: R): R {
  const list = Array.isArray(route.middleware) ? route.middleware : [route.middleware];
  if (!list.some((m) => typeof m === 'function' && marked.has(m as MiddlewareHandler))) return route;
  return { ...route, parameters: [...(route.parameters ?? []), TENANT_HEADER_PARAMETER] };
}
