// The Hono app every function starts from: its base path, CORS for browser clients,
// a bounded request body (shared/limits.ts), the common error shape, zod validation
// failures as 422s naming the fields, and an OpenAPI 3.1 document generated from the
// same schemas at GET /<name>/openapi.json.
import { type Hook, OpenAPIHono } from '@hono/zod-openapi';
import { getPath } from 'hono/utils/url';
import type { Env, MiddlewareHandler } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { envList } from './env.ts';
import { ApiError, errorBody, toApiError, unprocessable } from './errors.ts';
import { installProcessGuards } from './guards.ts';
import { isJsonMediaType, limitBody, type StreamedBody, streamedBodyOf } from './limits.ts';
import { securitySchemes } from './schemas/security.ts';
import { withTenantHeader } from './auth/tenant-header.ts';
import { requestId, requestLog } from './request-log.ts';

type ZodIssueLike = { path: PropertyKey[]; message: string; code?: string; keys?: string[] };

/** Turns a zod failure into a 422 whose details name every offending field — an unknown
 *  key too, by its own name (zod reports those on the object that holds them). */
export function validationError(issues: ZodIssueLike[], target: string): ApiError {
  const fieldOf = (path: PropertyKey[]) => path.map(String).join('.') || target;
  return unprocessable('The request is not valid', {
    target,
    fields: issues.flatMap((i) =>
      i.code === 'unrecognized_keys' && i.keys?.length
        ? i.keys.map((key) => ({ field: fieldOf([...i.path, key]), message: 'is not a known field', code: i.code }))
        : [{ field: fieldOf(i.path), message: i.message, code: i.code }]
    ),
  });
}

// deno-lint-ignore no-explicit-any
const defaultHook: Hook<any, any, any, any> = (result, _c) => {
  if (!result.success) {
    throw validationError(result.error.issues as ZodIssueLike[], result.target);
  }
};

type RouteEntry = { method: string; path: string };
/** One path segment of a route: a literal, or a parameter with its constraint compiled once. */
type SegmentPattern = { literal: string } | { param: RegExp | null };
type RouteTemplate = { segments: SegmentPattern[]; methods: Set<string>; rank: string };

function segmentPattern(pattern: string): SegmentPattern {
  if (!pattern.startsWith(':')) return { literal: pattern };
  const constraint = pattern.match(/^:[^{]+\{(.+)\}$/);
  return { param: constraint ? new RegExp(`^(?:${constraint[1]})$`) : null };
}

/** A path segment of a route (`teams`, `:teamId`, `:id{[0-9]+}`) against one of a request. */
function segmentMatches(pattern: SegmentPattern, segment: string): boolean {
  if ('literal' in pattern) return pattern.literal === segment;
  if (segment === '') return false;
  return !pattern.param || pattern.param.test(segment);
}

/** The methods of the route that would serve this path if the method were right: of
 *  every route whose path matches, the most specific (literal segments win over
 *  parameters, from the left, as `/me` wins over `/{tenantId}`). Undefined when no
 *  route has this path (a 404). */
function allowedMethods(templates: RouteTemplate[], path: string): Set<string> | undefined {
  const segments = path.split('/');
  let best: RouteTemplate | undefined;
  for (const t of templates) {
    if (t.segments.length !== segments.length || !t.segments.every((p, i) => segmentMatches(p, segments[i]))) continue;
    if (!best || t.rank > best.rank) best = t;
  }
  return best?.methods;
}

function routeTemplates(routes: RouteEntry[]): RouteTemplate[] {
  const byPath = new Map<string, Set<string>>();
  for (const r of routes) {
    // Middleware (ALL) and wildcard paths are not endpoints.
    if (r.method === 'ALL' || r.path.includes('*') || r.path.includes('?')) continue;
    const methods = byPath.get(r.path) ?? new Set<string>();
    methods.add(r.method.toUpperCase());
    byPath.set(r.path, methods);
  }
  return [...byPath].map(([path, methods]) => {
    const parts = path.split('/');
    return {
      segments: parts.map(segmentPattern),
      methods,
      rank: parts.map((p) => (p.startsWith(':') ? '0' : '1')).join(''),
    };
  });
}

/** Every body the functions take is JSON (but a declared streamed body). A request carries one when it says so
 *  (Content-Length above 0, Transfer-Encoding), or names a media type and has a body stream. */
function carriesBody(req: Request): boolean {
  const length = req.headers.get('content-length');
  if (length !== null) return Number(length) > 0;
  if (req.headers.has('transfer-encoding')) return true;
  return req.headers.has('content-type') && req.body !== null;
}

/** The JSON content types @hono/zod-openapi's request validation takes (its own media
 *  type test; it refuses `application/json ; charset=utf-8`). */
const HONO_JSON = /^application\/([a-z-.]+\+)?json(;\s*[a-zA-Z0-9-]+=([^;]+))*$/i;

/** 405 with `Allow` for a method the path does not take, and 415 for a body that is
 *  not JSON (or the media type of a streamed route), decided from the app's registered
 *  routes before any route's own middleware (authentication, validation) runs. */

function methodAndMediaType(
  routes: () => RouteEntry[],
  basePath: string,
  streamed: readonly StreamedBody[],
): MiddlewareHandler {
  let templates: RouteTemplate[] | undefined;
  return async (c, next) => {
    const method = c.req.method;
    if (method !== 'OPTIONS') {
      // Built on first use: every route is registered by then.
      templates ??= routeTemplates(routes());
      const allowed = allowedMethods(templates, c.req.path);
      if (allowed && !allowed.has(method === 'HEAD' ? 'GET' : method)) {
        const allow = [...allowed, ...(allowed.has('GET') ? ['HEAD'] : []), 'OPTIONS'];
        throw new ApiError(
          405,
          'method_not_allowed',
          `${method} is not allowed on ${c.req.path}; allowed: ${allow.join(', ')}`,
          { allowed: allow },
          { Allow: allow.join(', ') },
        );
      }
      const contentType = c.req.header('content-type');
      // A JSON media type in a form Hono's validator does not parse (`application/json ;
      // charset=utf-8`, legal per RFC 9110) is passed on as plain application/json (JSON
      // is UTF-8 whatever the parameters say).
      if (contentType && isJsonMediaType(contentType) && !HONO_JSON.test(contentType) && c.req.raw.body) {
        const headers = new Headers(c.req.raw.headers);
        headers.set('content-type', 'application/json');
        c.req.raw = new Request(c.req.raw, { headers, duplex: 'half' } as RequestInit);
      }
      if (
        carriesBody(c.req.raw) && !isJsonMediaType(contentType) &&
        !(streamed.length && streamedBodyOf(streamed, basePath, c.req.raw, c.req.path))
      ) {
        throw new ApiError(
          415,
          'unsupported_media_type',
          'Send the request body as JSON, with the header Content-Type: application/json',
          { content_type: contentType ?? null, expected: 'application/json' },
        );
      }
    }
    await next();
  };
}

const GATEWAY_PREFIX = '/functions/v1';
function withoutGatewayPrefix(req: Request): string {
  const path = getPath(req);
  return path.startsWith(`${GATEWAY_PREFIX}/`) ? path.slice(GATEWAY_PREFIX.length) : path;
}

/** A router for one concern of a function (its route modules), mounted on the
 *  function's app with app.route(); it validates like the app does. */
export function createRouter<E extends Env>() {
  return declaringTenantHeader(new OpenAPIHono<E>({ defaultHook }));
}

/** Registers each route with X-Tenant-Id among its documented parameters when its
 *  middleware reads the header (shared/auth/tenant-header.ts). */
function declaringTenantHeader<A extends { openapi: (...args: never[]) => unknown }>(app: A): A {
  const register = app.openapi as unknown as (route: Parameters<typeof withTenantHeader>[0], ...rest: unknown[]) => unknown;
  app.openapi =
    ((route: Parameters<typeof withTenantHeader>[0], ...rest: unknown[]) =>
      register(withTenantHeader(route), ...rest)) as unknown as A['openapi'];
  return app;
}

export function createApp<E extends Env>(
  name: string,
  info: { title: string; description: string },
  opts: { streamedBodies?: readonly StreamedBody[] } = {},
) {
  installProcessGuards();
  // The platform's gateway hands a function `/<name>/…`; a server in front that serves
  // the gateway's layout (`/functions/v1/<name>/…`, scripts/serve.ts) may hand the request
  // over as it came, and the prefix is not part of the route. Saves that server copying
  // every request (URL, headers, signal) just to change its path.
  const app = declaringTenantHeader(new OpenAPIHono<E>({ defaultHook, getPath: withoutGatewayPrefix }).basePath(`/${name}`));

  // First: every response, errors and preflights included, gets its request id and
  // its log line.
  app.use('*', requestLog(name));
  const origins = envList('ALLOWED_ORIGINS');
  app.use(
    '*',
    cors({
      origin: origins.length ? origins : '*',
      allowHeaders: [
        'authorization',
        'x-client-info',
        'apikey',
        'content-type',
        'x-tenant-id',
        'idempotency-key',
        'x-request-id',
      ],
      // What a browser client needs to read besides the safelisted headers: the request's
      // id, when to retry (every 503 and 429 says it here, not in the body), the rate
      // limits, the methods a path takes (405), and that an answer replays an earlier
      // request's (Idempotency-Key).
      exposeHeaders: [
        'X-Request-Id',
        'Retry-After',
        'RateLimit-Limit',
        'RateLimit-Remaining',
        'RateLimit-Reset',
        'Allow',
        'Idempotent-Replayed',
      ],
      allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      maxAge: 600,
    }),
  );
  // Before every route's own middleware (authentication, signatures, validation): a body
  // above the limit is refused unread, and what the handlers read is bounded.
  const streamed = opts.streamedBodies ?? [];
  app.use('*', limitBody(`/${name}`, streamed));
  // Then the method and the body's media type, against the routes the app registered.
  app.use('*', methodAndMediaType(() => app.routes, `/${name}`, streamed));

  app.onError((err, c) => {
    let apiError: ApiError;
    if (err instanceof HTTPException && err.status === 400) {
      apiError = new ApiError(400, 'invalid_json', 'The request body is not valid JSON');
    } else if (err instanceof HTTPException && err.status === 415) {
      apiError = new ApiError(
        415,
        'unsupported_media_type',
        'Send the request body as JSON, with the header Content-Type: application/json',
      );
    } else if (err instanceof HTTPException) {
      apiError = new ApiError(err.status as ApiError['status'], 'http_error', err.message);
    } else {
      apiError = toApiError(err);
    }
    if (apiError.status >= 500) {
      const e = err as { code?: string; message?: string };
      console.error(
        `[${name}] ${c.req.method} ${c.req.path} failed (request ${requestId(c)}):`,
        e.code ?? '',
        e.message ?? String(err),
      );
    }
    return c.json(errorBody(apiError.code, apiError.message, apiError.details), apiError.status, apiError.headers);
  });

  app.notFound((c) => c.json(errorBody('not_found', `No route for ${c.req.method} ${c.req.path}`), 404));

  // Generated on first request (every route is registered by then) and kept: the
  // document only changes with a deploy.
  let document: unknown;
  app.get('/openapi.json', (c) => {
    document ??= withBodyLimit(withSecuritySchemes(withOperationNames(
      name,
      app.getOpenAPI31Document({
        openapi: '3.1.0',
        info: { title: info.title, version: '1.0.0', description: info.description },
        servers: [{ url: '/functions/v1' }],
      }),
    )));
    return c.json(document as Record<string, unknown>);
  });
  return app;
}

type OpenApiDocument = ReturnType<OpenAPIHono['getOpenAPI31Document']>;
const HTTP_METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'] as const;

/** Every operation gets an operationId and a tag (what client generators name methods
 *  and group them by), derived from its method and path where the route names none:
 *  `POST /tickets/{id}/messages` → `postTicketsByIdMessages`, tagged `messages`, the
 *  first literal segment after the function's own (else the function's name). */
export function withOperationNames(fn: string, doc: OpenApiDocument): OpenApiDocument {
  const pascal = (word: string) =>
    word.split(/[^A-Za-z0-9]+/).filter(Boolean).map((w) => w[0].toUpperCase() + w.slice(1)).join('');
  for (const [path, item] of Object.entries(doc.paths ?? {})) {
    const segments = path.split('/').filter(Boolean);
    const tag = segments.slice(1).find((seg) => !seg.startsWith('{')) ?? fn;
    const words = segments.map((seg) => seg.startsWith('{') ? `By${pascal(seg.slice(1, -1))}` : pascal(seg)).join('');
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (!operation) continue;
      operation.operationId ??= `${method}${words}`;
      if (!operation.tags?.length) operation.tags = [tag];
    }
  }
  return doc;
}

/** What every operation that takes a body may be answered before its route looks at it
 *  (shared/limits.ts, the media-type check above), each in the error shape: a route that
 *  did not declare them (most did not) left clients unaware, e.g. of a knowledge document
 *  whose content the schema allows but whose JSON passes 1 MiB. A route's own (the
 *  import's larger 413) is kept. */
const BODY_REFUSALS: Record<string, string> = {
  408: '`request_timeout`: the body stopped arriving for BODY_IDLE_TIMEOUT_MS (10 s by default)',
  413: '`payload_too_large`: the body is larger than MAX_BODY_BYTES (1 MiB by default)',
  415: '`unsupported_media_type`: the body is not sent as its declared content type',
};

/** Every operation that takes a body declares BODY_REFUSALS. */
export function withBodyLimit(doc: OpenApiDocument): OpenApiDocument {
  for (const item of Object.values(doc.paths ?? {})) {
    for (const method of HTTP_METHODS) {
      const operation = item[method];
      if (!operation?.requestBody) continue;
      for (const [status, description] of Object.entries(BODY_REFUSALS)) {
        if (operation.responses?.[status]) continue;
        operation.responses = {
          ...operation.responses,
          [status]: { description, content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } },
        };
      }
    }
  }
  return doc;
}

/** The document's components.securitySchemes: those of shared/schemas/security.ts that
 *  its operations name, so each function's document describes exactly the credentials it
 *  takes. A name the catalogue lacks stays unresolved (tests/functions/route-needs.test.ts
 *  fails on it). */
export function withSecuritySchemes(doc: OpenApiDocument): OpenApiDocument {
  const named = new Set<string>();
  for (const item of Object.values(doc.paths ?? {})) {
    for (const method of HTTP_METHODS) {
      for (const requirement of item[method]?.security ?? []) Object.keys(requirement).forEach((n) => named.add(n));
    }
  }
  const schemes = Object.entries(securitySchemes).filter(([n]) => named.has(n));
  if (schemes.length) doc.components = { ...doc.components, securitySchemes: Object.fromEntries(schemes) };
  return doc;
}
