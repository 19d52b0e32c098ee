// Verifies `Authorization: Bearer` tokens from the configured issuers with jose.
// Every failure is a 401 in the common error shape; nothing about keys leaks.
import { decodeJwt, decodeProtectedHeader, errors as joseErrors, type JWTPayload, jwtVerify } from 'jose';
import { ApiError, issuerUnavailable, unauthorized } from '../errors.ts';
import { CLOCK_TOLERANCE_S, issuedInFuture, type IssuerKind, type IssuerProfile, issuerProfiles } from './issuers.ts';
import { KeysUnavailable } from './jwks.ts';
import { isPublicApiKey, isServiceCredential } from './service.ts';

// The HS256 secret as a CryptoKey, imported once per secret: given the raw bytes, jose
// imports them again on every verification (measured ~60 against ~35 µs a token).
const hmacKeys = new WeakMap<Uint8Array, Promise<CryptoKey>>();
function hmacKey(secret: Uint8Array<ArrayBuffer>): Promise<CryptoKey> {
  let key = hmacKeys.get(secret);
  if (!key) {
    key = crypto.subtle.importKey('raw', secret, { name: 'HMAC', hash: 'SHA-256' }, false, ['verify']);
    hmacKeys.set(secret, key);
  }
  return key;
}

// Tokens verified recently, by their exact text (signature included, so an entry
// answers for that token alone). Clients send the same access token on every request
// until it expires; verifying it again (signature, claims, the issuer's rules) was
// ~12 % of the server's CPU under load. An entry is used only while the token is
// unexpired, for at most VERIFIED_TTL_MS (so a key the issuer retires stops counting
// within a minute), and only under the issuer profile it was verified with (tests and
// a changed environment get a new profile). Failures are never kept.
const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 10_000;
const verified = new Map<string, { identity: Identity; profile: IssuerProfile; until: number }>();

function rememberVerified(token: string, identity: Identity, profile: IssuerProfile): void {
  const exp = Number(identity.claims.exp) * 1000 + CLOCK_TOLERANCE_S * 1000;
  if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value as string);
  verified.set(token, { identity, profile, until: Math.min(exp, Date.now() + VERIFIED_TTL_MS) });
}

function recallVerified(token: string): Identity | undefined {
  const entry = verified.get(token);
  if (!entry) return undefined;
  if (Date.now() >= entry.until || !issuerProfiles().includes(entry.profile)) {
    verified.delete(token);
    return undefined;
  }
  return entry.identity;
}

export interface Identity {
  /** The issuer's kind, or an API key (shared/auth/api-keys.ts). */
  kind: IssuerKind | 'api_key';
  issuer: string;
  subject: string;
  claims: JWTPayload;
  /** The tenant named by the token itself (id, slug or organisation id), if any. */
  tenantHint?: string;
}

const ASYMMETRIC = ['RS256', 'RS384', 'RS512', 'PS256', 'ES256', 'ES384', 'EdDSA'];
export function bearerToken(authorization: string | undefined | null): string {
  if (!authorization) throw unauthorized('missing_token', 'Authorization: Bearer <token> is required');
  const m = authorization.match(/^Bearer\s+(\S+)\s*$/i);
  if (!m) throw unauthorized('invalid_token', 'Authorization header must be "Bearer <token>"');
  return m[1];
}

/** Issuers are compared without a trailing slash, which providers write either way. */
function profileFor(iss: unknown): IssuerProfile {
  const profile = typeof iss === 'string' ? issuerProfiles().find((p) => p.issuer === iss.replace(/\/$/, '')) : undefined;
  if (!profile) throw unauthorized('unknown_issuer', 'Tokens from this issuer are not accepted');
  return profile;
}

export async function verifyUserToken(authorization: string | undefined | null): Promise<Identity> {
  const token = bearerToken(authorization);
  const known = recallVerified(token);
  if (known) return known;
  if (isPublicApiKey(token)) {
    throw unauthorized(
      'user_token_required',
      'An API key identifies the app, not a user: send a user access token',
    );
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  let unverified: JWTPayload;
  try {
    header = decodeProtectedHeader(token);
    unverified = decodeJwt(token);
  } catch {
    throw unauthorized('invalid_token', 'The token is not a well-formed JWT');
  }
  if (unverified.role === 'service_role' || unverified.role === 'anon') {
    if (await isServiceCredential(`Bearer ${token}`)) {
      throw unauthorized('user_token_required', 'The service-role key is only accepted by machine endpoints');
    }
    if (unverified.role === 'anon') {
      throw unauthorized(
        'user_token_required',
        'An API key identifies the app, not a user: send a user access token',
      );
    }
  }
  const profile = profileFor(unverified.iss);
  const alg = header.alg ?? 'none';
  let payload: JWTPayload;
  try {
    if (alg === 'HS256' && profile.secret) {
      ({ payload } = await jwtVerify(token, await hmacKey(profile.secret), {
        algorithms: ['HS256'],
        issuer: [profile.issuer, `${profile.issuer}/`],
        audience: profile.audience,
        clockTolerance: CLOCK_TOLERANCE_S,
      }));
    } else if (ASYMMETRIC.includes(alg) && profile.jwks) {
      ({ payload } = await jwtVerify(token, profile.jwks, {
        algorithms: ASYMMETRIC,
        issuer: [profile.issuer, `${profile.issuer}/`],
        audience: profile.audience,
        clockTolerance: CLOCK_TOLERANCE_S,
      }));
    } else {
      throw unauthorized('invalid_token', `Algorithm ${alg} is not accepted for this issuer`);
    }
  } catch (err) {
    if (err instanceof joseErrors.JWTExpired) throw unauthorized('token_expired', 'The token has expired');
    if (err instanceof joseErrors.JWTClaimValidationFailed) {
      throw unauthorized('invalid_token', `The token's "${err.claim}" claim is not acceptable`);
    }
    if (err instanceof KeysUnavailable) {
      // The issuer's key set could not be fetched (logged once per fetch, in jwks.ts):
      // not the caller's fault, and worth a retry.
      throw issuerUnavailable(err.retryAfterMs);
    }
    if (!(err instanceof joseErrors.JOSEError || err instanceof ApiError)) {
      console.error(`[auth] verifying a token of ${profile.issuer} failed:`, (err as Error).message);
      throw issuerUnavailable();
    }
    if (err instanceof joseErrors.JOSEError) {
      throw unauthorized('invalid_token', 'The token signature is not valid');
    }
    throw err;
  }
  if (payload.exp === undefined) throw unauthorized('invalid_token', 'The token has no expiry');
  if (issuedInFuture(payload)) throw unauthorized('invalid_token', 'The token was issued in the future');
  if (typeof payload.sub !== 'string' || payload.sub === '') {
    throw unauthorized('invalid_token', 'The token has no subject');
  }
  if (profile.kind === 'supabase' && payload.role !== undefined && payload.role !== 'authenticated') {
    throw unauthorized('user_token_required', 'The token does not belong to a signed-in user');
  }
  if (profile.kind === 'clerk') {
    if (payload.sts === 'pending') {
      throw unauthorized('session_pending', 'The session still has pending tasks and cannot be used yet');
    }
    // Fail closed: without a list of allowed origins any site's Clerk token would do.
    if (!profile.authorizedParties.includes(String(payload.azp ?? ''))) {
      throw unauthorized('invalid_token', 'The token was issued to an origin that is not allowed');
    }
    // Only a session token names its session (sid, sess_…). A JWT template's token
    // (getToken({ template }), made for another service: Convex, Hasura, a third party)
    // is signed with the same keys and issuer, carries the page's azp and no sts, and may
    // live for years: handed to that service, or logged there, it acted here as the user,
    // and signing out did not end it. One addressed to an audience is another service's
    // unless CLERK_AUDIENCE names it (jose checks it then).
    if (typeof payload.sid !== 'string' || !payload.sid.startsWith('sess_')) {
      throw unauthorized('invalid_token', 'The token is not a Clerk session token (no session id)');
    }
    if (payload.aud !== undefined && !profile.audience) {
      throw unauthorized('invalid_token', 'The token is addressed to another audience');
    }
  }
  // Only a session's access token names its session (sessionHandle): a JWT the backend
  // makes with its JWT recipe (createJWT, any payload, a century's life by default) is
  // signed with the same keys and issuer, and is no signed-in user.
  if (profile.kind === 'supertokens' && (typeof payload.sessionHandle !== 'string' || payload.sessionHandle === '')) {
    throw unauthorized('invalid_token', 'The token is not a SuperTokens session (no sessionHandle)');
  }
  // Frozen: a kept identity serves later requests too, so none may change it.
  const identity: Identity = Object.freeze({
    kind: profile.kind,
    issuer: profile.issuer,
    subject: payload.sub,
    // The issuer as stored (no trailing slash): the database matches `iss` as written.
    claims: Object.freeze({ ...payload, iss: profile.issuer }),
    tenantHint: profile.tenantHint(payload),
  });
  rememberVerified(token, identity, profile);
  return identity;
}
