// Machine credentials: the service-role key in either Supabase key model. Accepted only
// by machine endpoints (workers, cron), never as a user.
import type { Context, MiddlewareHandler } from 'hono';
import type { Claims } from '../db.ts';
import { jwtVerify } from 'jose';
import { unauthorized } from '../errors.ts';
import { env, envList } from '../env.ts';
import { issuedInFuture, jwtSecret } from './issuers.ts';
import { markPrincipal } from '../request-log.ts';
import { verifyKeyAndCount } from '../rate-limit.ts';
import { apiKeyIdentity, presentedApiKey } from './api-keys.ts';

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

// Machine credentials this process has already verified, so the call path (the
// telephony provider's /route, many requests a second with one credential) does not
// hash, import a key and check an HMAC on every request. Only acceptances are kept, by
// the exact credential, never past a token's `exp` nor VERIFIED_TTL_MS, and all are
// forgotten the moment the configuration they were checked against changes (a rotated
// key or secret refuses at once, as user tokens do); anything not remembered is verified
// in full. Bounded: past VERIFIED_MAX entries the oldest goes.
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 256;
const verified = new Map<string, number>();
let verifiedAgainst: string | undefined;

/** The configuration a verification depends on; a change empties the cache. */
function checkConfiguration(): void {
  const config = [
    env('SUPABASE_SERVICE_ROLE_KEY'),
    env('SUPABASE_SECRET_KEYS'),
    jwtSecret(),
    env('VOICE_TELEPHONY_SECRET'),
    env('PROVISIONER_CRON_SECRET'),
  ].join('\u0000');
  if (config !== verifiedAgainst) {
    verified.clear();
    verifiedAgainst = config;
  }
}

function recallVerified(key: string): boolean {
  checkConfiguration();
  const until = verified.get(key);
  if (until === undefined) return false;
  if (until > Date.now()) return true;
  verified.delete(key);
  return false;
}

function rememberVerified(key: string, untilMs = Infinity): void {
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
  verified.set(key, Math.min(untilMs, Date.now() + VERIFIED_TTL_MS));
}

/** Test hook: forget every verified credential (after changing the configuration). */
export function forgetVerifiedCredentials(): void {
  verified.clear();
}

/** True for the legacy service_role JWT, a new `sb_secret_…` key, or an expiring HS256
 *  token with role service_role signed with the project secret. */
export async function isServiceCredential(
  authorization: string | undefined,
  apikey?: string,
): Promise<boolean> {
  const token = bearer(authorization) ?? apikey;
  if (!token) return false;
  const cacheKey = `service\u0000${token}`;
  if (recallVerified(cacheKey)) return true;
  const known = [env('SUPABASE_SERVICE_ROLE_KEY'), ...envList('SUPABASE_SECRET_KEYS')].filter(
    (k): k is string => !!k,
  );
  for (const key of known) {
    if (await secretEquals(token, key)) {
      rememberVerified(cacheKey);
      return true;
    }
  }
  const secret = jwtSecret();
  if (!secret || token.split('.').length !== 3) return false;
  try {
    const { payload } = await jwtVerify(token, new TextEncoder().encode(secret), {
      algorithms: ['HS256'],
      requiredClaims: ['exp'],
    });
    const ok = payload.role === 'service_role' && !issuedInFuture(payload);
    if (ok) rememberVerified(cacheKey, (payload.exp as number) * 1000);
    return ok;
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
 *  everywhere while it is not set), or — for a tenant's own telephony integration — a
 *  tenant API key holding `scope` (voice:route, calls:write). A key's requests are
 *  confined to its tenant (telephonyTenant); it is verified by the database on every
 *  request, so a revoked or expired key is refused at once. A key is rate-limited as on
 *  every other route: its routing lookups are reads (the key's reads_per_minute_per_key),
 *  its call events writes (the tenant's and the key's own write windows), 429 with
 *  Retry-After once spent; events are idempotent, so the provider's retry is safe. The
 *  provider's own credentials are not limited: they carry every tenant's calls. */
export function requireTelephony(scope?: 'voice:route' | 'calls:write'): MiddlewareHandler {
  return async (c, next) => {
    const secret = env('VOICE_TELEPHONY_SECRET');
    const sent = c.req.header('x-telephony-secret');
    const cacheKey = `telephony\u0000${sent}`;
    const viaSecret = secret !== undefined && sent !== undefined &&
      (recallVerified(cacheKey) || ((await secretEquals(sent, secret)) && (rememberVerified(cacheKey), true)));
    if (!viaSecret && scope) {
      const key = await presentedApiKey(c.req.header('authorization'));
      if (key) {
        // Counted once the key verifies, in the same statement: someone holding only its
        // id spends nothing. Routing is the key's read, a call event its write.
        const verified = await verifyKeyAndCount(c, key, scope, scope === 'calls:write' ? apiKeyIdentity(key).claims : undefined);
        c.set('telephonyTenant' as never, verified.tenant_id as never);
        c.set('telephonyKeyClaims' as never, apiKeyIdentity(key).claims as never);
        markPrincipal(c, 'api_key');
        return await next();
      }
    }
    if (!viaSecret && !(await isServiceCredential(c.req.header('authorization'), c.req.header('apikey')))) {
      throw unauthorized('telephony_credential_required', 'This endpoint is for the telephony provider');
    }
    markPrincipal(c, 'machine');
    await next();
  };
}

/** The tenant a telephony request is confined to: its API key's; none for the provider's
 *  own credentials, which route every tenant's numbers. */
export function telephonyTenant(c: Context): string | undefined {
  return c.get('telephonyTenant' as never) as string | undefined;
}

/** Whether a telephony request names a tenant other than the one its API key is confined
 *  to (the provider's own credentials are confined to none). A uuid in any letter case
 *  names one tenant; the key's is lowercase, as Postgres writes it. */
export function outsideTelephonyTenant(c: Context, tenantId: string): boolean {
  const confined = telephonyTenant(c);
  return !!confined && confined !== tenantId.toLowerCase();
}

/** The claims of the tenant API key a telephony request came with (none for the
 *  provider's own credentials): its call events run under them, so the audit trail names
 *  the key as it does for the key's other writes. */
export function telephonyKeyClaims(c: Context): Claims | undefined {
  return c.get('telephonyKeyClaims' as never) as Claims | undefined;
}
