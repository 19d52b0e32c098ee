// API keys for server-to-server clients (issue 15): the key text, its scopes, and the
// identity a key acts with. A key is `tpk_live_<32 hex: the key id>_<43 base64url: 32
// random bytes>`, a prefix secret scanners can match; only the SHA-256 of the secret part
// is stored (private.api_key_secrets). Verification is the database's, in the statement
// that loads the caller (private.verify_api_key, shared/auth/context.ts): hash, revocation,
// expiry and the route's scope in one round trip, so a revoked key is refused on the
// very next request.
import { unauthorized } from '../errors.ts';
import { security } from '../schemas/security.ts';
import type { Identity } from './verify.ts';

/** The scopes a key may hold (the database's allow-list: public.api_keys' check). */
export const API_KEY_SCOPES = [
  'tickets:read',
  'tickets:write',
  'customers:read',
  'customers:write',
  'calls:read',
  'calls:write',
  'voice:route',
  'webhooks:manage',
  'teams:read',
  'members:read',
  'audit:read',
  'agents:read',
  'agents:write',
  'knowledge:read',
  'knowledge:write',
  'workflow:manage',
] as const;
export type Scope = typeof API_KEY_SCOPES[number];

/** The issuer of a key's claims (private.caller_context reads a key from them). No
 *  identity provider's: no JWT naming it is accepted (shared/auth/issuers.ts). */
export const API_KEY_ISSUER = 'tenant-platform:api-key';

export const API_KEY_PREFIX = 'tpk_live_';
const KEY_TEXT = /^tpk_live_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$/;

export interface PresentedKey {
  id: string;
  /** SHA-256 of the secret part, hex. The secret itself is not kept. */
  secretSha256: string;
}

function base64url(bytes: Uint8Array): string {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function sha256Hex(text: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(text)));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

const uuidOf = (hex: string) =>
  `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;

/** An Authorization header bearing an API key (by its prefix), well-formed or not. */
const KEY_BEARER = /^Bearer\s+(tpk_\S*)\s*$/i;
/** Whether an Authorization header bears an API key (presentedApiKey reads it). */
export const bearsApiKey = (authorization: string | undefined | null): boolean => KEY_BEARER.test(authorization ?? '');

/** The bearer token of an Authorization header when it is an API key (by its prefix),
 *  else undefined; a malformed key is a 401 (never passed on as a JWT). */
export async function presentedApiKey(authorization: string | undefined | null): Promise<PresentedKey | undefined> {
  const m = authorization?.match(KEY_BEARER);
  if (!m) return undefined;
  const key = m[1].match(KEY_TEXT);
  if (!key) throw unauthorized('invalid_api_key', 'The API key is not valid');
  return { id: uuidOf(key[1]), secretSha256: await sha256Hex(key[2]) };
}

/** A new key's secret and its hash; the key text needs the id the database gives it. */
export async function newApiKeySecret(): Promise<{ secret: string; secretSha256: string }> {
  const secret = base64url(crypto.getRandomValues(new Uint8Array(32)));
  return { secret, secretSha256: await sha256Hex(secret) };
}

export function apiKeyText(id: string, secret: string): string {
  return `${API_KEY_PREFIX}${id.replace(/-/g, '')}_${secret}`;
}

/** The identity a key acts with: the claims the database reads the key from. */
export function apiKeyIdentity(key: PresentedKey): Identity {
  return Object.freeze({
    kind: 'api_key' as const,
    issuer: API_KEY_ISSUER,
    subject: key.id,
    claims: Object.freeze({ iss: API_KEY_ISSUER, sub: key.id }),
  });
}

/** What an operation taking API keys documents: either credential, and the scope a key
 *  needs (`x-api-key-scope`; the route's needs declaration checks the same one, and
 *  tests/functions/api-keys.test.ts holds the two together). Spread into createRoute. */
export const apiKeyScope = (scope: Scope) => ({ security: security.userOrApiKey, 'x-api-key-scope': scope });
