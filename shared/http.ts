// The Hono app every function starts from: its base path, CORS for browser clients,
// a bounded request body (shared/limits.ts), the common error shape, zod validation
// failures as 422s naming the fields, and an OpenAPI 3.1 document generated from the
// same schemas at GET /<name>/openapi.json.
import { type Hook, OpenAPIHono } from '@hono/zod-openapi';
import type { Env } from 'hono';
import { cors } from 'hono/cors';
import { HTTPException } from 'hono/http-exception';
import { envList } from './env.ts';
import { ApiError, errorBody, toApiError, unprocessable } from './errors.ts';
import { installProcessGuards } from './guards.ts';
import { limitBody } from './limits.ts';

type ZodIssueLike = { path: PropertyKey[]; message: string; code?: string };

/** Turns a zod failure into a 422 whose details name every offending field. */
export function validationError(issues: ZodIssueLike[], target: string): ApiError {
  return unprocessable('The request is not valid', {
    target,
    fields: issues.map((i) => ({
      field: i.path.map(String).join('.') || target,
      message: i.message,
      code: i.code,
    })),
  });
}

// deno-lint-ignore no-explicit-any
const defaultHook: Hook<any, any, any, any> = (result, _c) => {
  if (!result.success) {
    throw validationError(result.error.issues as ZodIssueLike[], result.target);
  }
};

/** A router for one concern of a function (its route modules), mounted on the
 *  function's app with app.route(); it validates like the app does. */
export function createRouter<E extends Env>() {
  return new OpenAPIHono<E>({ defaultHook });
}

export function createApp<E extends Env>(name: string, info: { title: string; description: string }) {
  installProcessGuards();
  const app = new OpenAPIHono<E>({ defaultHook }).basePath(`/${name}`);

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
      ],
      allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'],
      maxAge: 600,
    }),
  );
  // Before every route's own middleware (authentication, signatures, validation): a body
  // above the limit is refused unread, and what the handlers read is bounded.
  app.use('*', limitBody());

  app.onError((err, c) => {
    let apiError: ApiError;
    if (err instanceof HTTPException && err.status === 400) {
      apiError = new ApiError(400, 'invalid_json', 'The request body is not valid JSON');
    } else if (err instanceof HTTPException) {
      apiError = new ApiError(err.status as ApiError['status'], 'http_error', err.message);
    } else {
      apiError = toApiError(err);
    }
    if (apiError.status >= 500) {
      const e = err as { code?: string; message?: string };
      console.error(
        `[${name}] ${c.req.method} ${c.req.path} failed:`,
        e.code ?? '',
        e.message ?? String(err),
      );
    }
    return c.json(errorBody(apiError.code, apiError.message, apiError.details), apiError.status, apiError.headers);
  });

  app.notFound((c) => c.json(errorBody('not_found', `No route for ${c.req.method} ${c.req.path}`), 404));

  app.openAPIRegistry.registerComponent('securitySchemes', 'bearerAuth', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'An access token from Supabase Auth, Clerk or SuperTokens',
  });
  // Generated on first request (every route is registered by then) and kept: the
  // document only changes with a deploy.
  let document: unknown;
  app.get('/openapi.json', (c) => {
    document ??= app.getOpenAPI31Document({
      openapi: '3.1.0',
      info: { title: info.title, version: '1.0.0', description: info.description },
      servers: [{ url: '/functions/v1' }],
    });
    return c.json(document as Record<string, unknown>);
  });
  return app;
}
