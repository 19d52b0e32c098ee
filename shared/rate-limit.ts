// Rate limits (issue 15): a write counts against the tenant's and the caller's
// one-minute windows, counted in Postgres (private.rate_limit_hit, migration
// 20261202072000_rate_limits.sql) so the limits hold across every function instance.
// The count is one autocommit statement on the pool, sent before the request's
// transaction opens: its row lock lasts that statement, not the request. Every limited
// response carries RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset; a refusal is
// 429 rate_limited with Retry-After. RATE_LIMITS=off turns the count off (benches that
// measure something else, tests that need it).
import { type Claims, db } from './db.ts';
import { env } from './env.ts';
import { ApiError } from './errors.ts';

export interface RateLimitVerdict {
  allowed: boolean;
  scope: 'tenant' | 'caller';
  limit: number;
  remaining: number;
  /** Seconds until the window ends. */
  reset: number;
}

export function rateLimitsEnabled(): boolean {
  return env('RATE_LIMITS')?.toLowerCase() !== 'off';
}

/** The RateLimit-* headers of a verdict (draft-ietf-httpapi-ratelimit-headers). */
export function rateLimitHeaders(v: RateLimitVerdict): Record<string, string> {
  return { 'RateLimit-Limit': String(v.limit), 'RateLimit-Remaining': String(v.remaining), 'RateLimit-Reset': String(v.reset) };
}

/** Counts one write of the caller with these claims in the tenant the path names, or
 *  else the request's (X-Tenant-Id, the token's, their only one). Sets the RateLimit-*
 *  headers on the response; throws 429 rate_limited when a window is spent. */
export async function countWrite(
  c: { header(name: string, value: string): void; req: { header(name: string): string | undefined } },
  claims: Claims,
  tenantId: string | undefined,
): Promise<void> {
  if (!rateLimitsEnabled()) return;
  const [{ verdict }] = await db()<{ verdict: RateLimitVerdict | null }>`
    select private.rate_limit_hit(${JSON.stringify(claims)}::jsonb, ${tenantId ?? null}::uuid, ${
    c.req.header('x-tenant-id') ?? null
  }::text) as verdict`;
  if (!verdict) return;
  const headers = rateLimitHeaders(verdict);
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  if (!verdict.allowed) {
    throw new ApiError(
      429,
      'rate_limited',
      verdict.scope === 'tenant'
        ? "Too many writes in this tenant this minute; the plan's limit is reached"
        : 'Too many writes from you in this tenant this minute',
      { scope: verdict.scope, limit: verdict.limit, retry_after: verdict.reset },
      { ...headers, 'Retry-After': String(verdict.reset) },
    );
  }
}
