// Machine credentials: the service-role key in either Supabase key model. Accepted only
// by machine endpoints (workers, cron), never as a user.
import type { MiddlewareHandler } from 'hono';
import { jwtVerify } from 'jose';
import { unauthorized } from '../errors.ts';
import { env, envList } from '../env.ts';
import { issuedInFuture, jwtSecret } from './issuers.ts';
import { markPrincipal } from '../request-log.ts';

async function sha256(s: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(s)));
}

/** Constant-time comparison of two secrets (compares digests, so lengths don't leak). */
export async function secretEquals(a: string, b: string): Promise<boolean> {
  const [x, y] = await Promise.all([sha256(a), sha256(b)]);
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x[i] ^ y[i];
  return diff === 0;
}

function bearer(authorization: string | undefined): string | undefined {
  const m = authorization?.match(/^Bearer\s+(\S+)$/i);
  return m?.[1];
}

/** True for the legacy service_role JWT, a new `sb_secret_…` key, or an expiring HS256
 *  token with role service_role signed with the project secret. */
export async function isServiceCredential(
  authorization: string | undefined,
  apikey?: string,
): Promise<boolean> {
  const token = bearer(authorization) ?? apikey;
  if (!token) return false;
  const known = [env('SUPABASE_SERVICE_ROLE_KEY'), ...envList('SUPABASE_SECRET_KEYS')].filter(
    (k): k is string => !!k,
  );
  for (const key of known) if (await secretEquals(token, key)) return true;
  const secret = jwtSecret();
  if (!secret || token.split('.').length !== 3) return false;
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ['HS256'],
      requiredClaims: ['exp'],
    });
    return payload.role === 'service_role' && !issuedInFuture(payload);
  } catch {
    return false;
  }
}

/** Public API keys (legacy anon JWT or `sb_publishable_…`): identify the app, not a user. */
export function isPublicApiKey(token: string): boolean {
  if (token.startsWith('sb_publishable_')) return true;
  return [env('SUPABASE_ANON_KEY'), ...envList('SUPABASE_PUBLISHABLE_KEYS')].includes(token);
}

/** Machine endpoints (schedulers, workers): the service credential, or the shared
 *  scheduler secret (PROVISIONER_CRON_SECRET) sent as x-cron-secret. */
export function requireMachine(): MiddlewareHandler {
  return async (c, next) => {
    const cronSecret = env('PROVISIONER_CRON_SECRET');
    const viaCron = cronSecret !== undefined &&
      (await secretEquals(c.req.header('x-cron-secret') ?? '', cronSecret));
    if (!viaCron && !(await isServiceCredential(c.req.header('authorization'), c.req.header('apikey')))) {
      throw unauthorized('service_credential_required', 'This endpoint is for the platform scheduler');
    }
    markPrincipal(c, 'machine');
    await next();
  };
}

/** The telephony provider's routes (functions/voice): the service credential, or the
 *  per-deployment secret VOICE_TELEPHONY_SECRET sent as x-telephony-secret (refused
 *  everywhere while it is not set). */
export function requireTelephony(): MiddlewareHandler {
  return async (c, next) => {
    const secret = env('VOICE_TELEPHONY_SECRET');
    const viaSecret = secret !== undefined && (await secretEquals(c.req.header('x-telephony-secret') ?? '', secret));
    if (!viaSecret && !(await isServiceCredential(c.req.header('authorization'), c.req.header('apikey')))) {
      throw unauthorized('telephony_credential_required', 'This endpoint is for the telephony provider');
    }
    markPrincipal(c, 'machine');
    await next();
  };
}
