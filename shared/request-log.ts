// One request id and one log line per request (issue 15, observability).
//
// Every response carries X-Request-Id: the caller's own when it sent a well-formed one
// (so a trace that started at a gateway or a client keeps its id), else a new UUID.
// Every request writes one JSON line to stdout, which the Supabase dashboard's function
// logs and any log shipper read as structured fields:
//   {"level":"info","msg":"request","fn":"tickets","method":"GET","route":"/tickets/{id}",
//    "status":200,"duration_ms":4.1,"tenant_id":"…","principal":"user","request_id":"…"}
// The route is the template, never the path the client sent (a path or query may carry
// e-mail addresses or search words); no header, token, body or user id is written.
import type { Context, MiddlewareHandler } from 'hono';
import { env } from './env.ts';

const WELL_FORMED_ID = /^[A-Za-z0-9._:@/+=-]{8,128}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export type Principal = 'user' | 'api_key' | 'machine' | 'webhook' | 'anonymous';

/** The request id of this request (set by requestLog, first thing in every app). */
export function requestId(c: Context): string {
  return (c.get('requestId' as never) as string | undefined) ?? '';
}

/** Marks who the request acted as, for its log line (the user principal is known from
 *  the caller the authentication middleware sets). */
export function markPrincipal(c: Context, principal: Principal): void {
  c.set('principal' as never, principal as never);
}

/** The template of the route that answered ('/tickets/{id}'), or null when none did. */
function routeTemplate(c: Context): string | null {
  // The route that ran last: several may match (/tenants/me and /tenants/:tenantId);
  // the first registered answers and the chain stops there. A middleware (method ALL)
  // last means no route answered.
  const handler = c.req.matchedRoutes[c.req.routeIndex];
  return handler && handler.method !== 'ALL' ? handler.path.replace(/:(\w+)(\{[^}]*\})?/g, '{$1}') : null;
}

function tenantOf(c: Context): string | null {
  const access = c.get('access' as never) as { tenantId?: string } | undefined;
  if (access?.tenantId) return access.tenantId;
  const fromPath = c.req.param('tenantId' as never) as string | undefined;
  return fromPath && UUID.test(fromPath) ? fromPath : null;
}

type Line = Record<string, string | number | null>;
let sink: ((line: Line) => void) | null = null;
/** Test hook: receives every line instead of stdout. */
export function captureRequestLog(fn: ((line: Line) => void) | null): void {
  sink = fn;
}

export function requestLog(fn: string): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const incoming = c.req.header('x-request-id');
    const id = incoming && WELL_FORMED_ID.test(incoming) ? incoming : crypto.randomUUID();
    c.set('requestId' as never, id as never);
    try {
      await next();
    } finally {
      // A response made by onError or notFound passes here too, with its status.
      try {
        c.res.headers.set('X-Request-Id', id);
      } catch {
        // Immutable headers (a response passed through as fetched): copy it.
        c.res = new Response(c.res.body, c.res);
        c.res.headers.set('X-Request-Id', id);
      }
      // The line is built only when it goes somewhere (REQUEST_LOG=off: the call path's
      // benches).
      if (sink || env('REQUEST_LOG') !== 'off') {
        const line: Line = {
          level: c.res.status >= 500 ? 'error' : 'info',
          msg: 'request',
          fn,
          method: c.req.method,
          route: routeTemplate(c),
          status: c.res.status,
          duration_ms: Math.round((performance.now() - started) * 10) / 10,
          tenant_id: tenantOf(c),
          principal: c.get('principal' as never) === 'api_key'
            ? 'api_key'
            : c.get('caller' as never)
            ? 'user'
            : (c.get('principal' as never) as Principal | undefined) ?? 'anonymous',
          request_id: id,
        };
        if (sink) sink(line);
        else console.log(JSON.stringify(line));
      }
    }
  };
}
