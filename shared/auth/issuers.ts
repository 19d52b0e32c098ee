// The identity providers whose tokens the functions accept, read from the environment.
// Each profile says how its tokens are verified and where the active tenant lives.
import { createLocalJWKSet, type JWTPayload, type JWTVerifyGetKey } from 'jose';
import { env, envInt, envList, isLocalStack, LOCAL_DEV_JWT_SECRET } from '../env.ts';
import { remoteKeySet } from './jwks.ts';

export type IssuerKind = 'supabase' | 'clerk' | 'supertokens';

export interface IssuerProfile {
  kind: IssuerKind;
  issuer: string;
  audience?: string[];
  /** HS256 shared secret (Supabase legacy and local). */
  secret?: Uint8Array<ArrayBuffer>;
  /** Asymmetric keys; remote sets cache keys and refetch on an unknown `kid`. */
  jwks?: JWTVerifyGetKey;
  /** Clerk: the origins allowed in `azp`. Clerk tokens are refused while it is empty. */
  authorizedParties: string[];
  /** The tenant the token itself names, if any (id, slug or organisation id). */
  tenantHint(claims: JWTPayload): string | undefined;
}

export const CLOCK_TOLERANCE_S = 5;

/** True when a token says it was issued later than now (beyond the clock skew): jose
 *  checks `iat` only against a maximum age, and a token from the future is either
 *  forged with a key that should not sign, or from an issuer whose clock is wrong. */
export function issuedInFuture(payload: JWTPayload, nowMs = Date.now()): boolean {
  return typeof payload.iat === 'number' && payload.iat > nowMs / 1000 + CLOCK_TOLERANCE_S;
}

const str = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);

/** Keys are cached for 10 minutes (and serve up to a day longer while the issuer fails);
 *  a token with an unknown `kid` triggers a refetch. Every
 *  fetch a token causes — failed ones too — waits out the cooldown (30 s by default), so
 *  neither random kids nor a failing issuer turn tokens into fetches (shared/auth/jwks.ts). */
function remote(url: string | undefined): JWTVerifyGetKey | undefined {
  if (!url) return undefined;
  return remoteKeySet(new URL(url), {
    cooldownMs: envInt('JWKS_COOLDOWN_MS', 30_000, 0, 86_400_000),
    cacheMaxAgeMs: 600_000,
    timeoutMs: envInt('JWKS_TIMEOUT_MS', 5_000, 1, 600_000),
  });
}

/** Tries each key source in turn (inline keys first, then the remote set). */
function anyOf(...sources: (JWTVerifyGetKey | undefined)[]): JWTVerifyGetKey | undefined {
  const list = sources.filter((s): s is JWTVerifyGetKey => !!s);
  if (list.length <= 1) return list[0];
  return async (header, token) => {
    let last: unknown;
    for (const source of list) {
      try {
        return await source(header, token);
      } catch (err) {
        last = err;
      }
    }
    throw last;
  };
}

export function supabaseUrl(): string {
  return (env('SUPABASE_URL') ?? 'http://127.0.0.1:54321').replace(/\/$/, '');
}

/** The HS256 secret of Supabase tokens: SUPABASE_JWT_SECRET, or JWT_SECRET (a name an
 *  operator may set on a hosted project, where SUPABASE_* names are reserved). The
 *  well-known local development secret counts only in the local stack
 *  (PLATFORM_LOCAL_STACK=1): there it is also the default; anywhere else — configured
 *  or not — it is refused, and no secret means HS256 tokens are refused. */
export function jwtSecret(): string | undefined {
  const configured = env('SUPABASE_JWT_SECRET') ?? env('JWT_SECRET');
  if (isLocalStack()) return configured ?? LOCAL_DEV_JWT_SECRET;
  if (configured === LOCAL_DEV_JWT_SECRET) {
    warnOnce('the well-known local development JWT secret is configured outside the local stack: HS256 tokens are refused');
    return undefined;
  }
  return configured;
}

const warned = new Set<string>();
function warnOnce(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  console.error(`[auth] ${message}`);
}

/** SUPABASE_JWKS, as Supabase gives it ({ keys: [...] }, or the bare array of keys).
 *  One that is no key set is said once and left out (the remote set still serves):
 *  thrown while the profiles load, it failed every request with a 500, again each time. */
function inlineKeySet(raw: string | undefined): JWTVerifyGetKey | undefined {
  if (!raw) return undefined;
  try {
    const parsed = JSON.parse(raw);
    return createLocalJWKSet(Array.isArray(parsed) ? { keys: parsed } : parsed);
  } catch {
    warnOnce('SUPABASE_JWKS is not a JSON Web Key Set ({"keys": [...]} or an array of keys): it is ignored');
    return undefined;
  }
}

function loadProfiles(): IssuerProfile[] {
  const profiles: IssuerProfile[] = [];

  const supabaseIssuer = (env('SUPABASE_AUTH_ISSUER') ?? `${supabaseUrl()}/auth/v1`).replace(/\/$/, '');
  const inlineJwks = env('SUPABASE_JWKS');
  const secret = jwtSecret();
  profiles.push({
    kind: 'supabase',
    issuer: supabaseIssuer,
    audience: envList('SUPABASE_AUTH_AUDIENCE').length ? envList('SUPABASE_AUTH_AUDIENCE') : ['authenticated'],
    secret: secret ? new TextEncoder().encode(secret) : undefined,
    jwks: anyOf(
      inlineKeySet(inlineJwks),
      remote(env('SUPABASE_JWKS_URL') ?? `${supabaseIssuer}/.well-known/jwks.json`),
    ),
    authorizedParties: [],
    // Put there by the custom access token hook (top level) or by an admin (app_metadata).
    tenantHint: (c) => str(c.tenant_id) ?? str((c.app_metadata as Record<string, unknown> | undefined)?.tenant_id),
  });

  const clerkIssuer = env('CLERK_ISSUER');
  if (clerkIssuer) {
    profiles.push({
      kind: 'clerk',
      issuer: clerkIssuer.replace(/\/$/, ''),
      audience: envList('CLERK_AUDIENCE').length ? envList('CLERK_AUDIENCE') : undefined,
      jwks: remote(env('CLERK_JWKS_URL') ?? `${clerkIssuer.replace(/\/$/, '')}/.well-known/jwks.json`),
      authorizedParties: envList('CLERK_AUTHORIZED_PARTIES'),
      // Session token v2: o = { id, slg, rol }; v1: org_id / org_role.
      tenantHint: (c) => str((c.o as Record<string, unknown> | undefined)?.id) ?? str(c.org_id),
    });
  }

  const stIssuer = env('SUPERTOKENS_ISSUER');
  if (stIssuer) {
    profiles.push({
      kind: 'supertokens',
      issuer: stIssuer.replace(/\/$/, ''),
      audience: envList('SUPERTOKENS_AUDIENCE').length ? envList('SUPERTOKENS_AUDIENCE') : undefined,
      jwks: remote(env('SUPERTOKENS_JWKS_URL') ?? `${stIssuer.replace(/\/$/, '')}/jwt/jwks.json`),
      authorizedParties: [],
      // SuperTokens' own `tId` is its multi-tenancy id ("public"), not ours: the
      // platform's tenant travels in a custom `tenant_id` claim.
      tenantHint: (c) => str(c.tenant_id),
    });
  }
  return profiles;
}

let cached: IssuerProfile[] | undefined;

export function issuerProfiles(): IssuerProfile[] {
  cached ??= loadProfiles();
  return cached;
}

/** Tests change the environment between cases; production reads it once. */
export function resetIssuerProfiles(): void {
  cached = undefined;
}
