// Rate limits (issue 15): a write counts against the tenant's and the caller's
// one-minute windows, counted in Postgres (private.rate_limit_hit, migration
// 20261202072000_rate_limits.sql) so the limits hold across every function instance;
// a read with an API key against the key's own window (private.rate_limit_key_read,
// 20261202100200_rate_limit_key_reads.sql). A person's reads are not limited.
// The count is one autocommit statement on the pool, sent before the request's
// transaction opens: its row lock lasts that statement, not the request. Every limited
// response carries RateLimit-Limit / RateLimit-Remaining / RateLimit-Reset; a refusal is
// 429 rate_limited with Retry-After. RATE_LIMITS=off turns the count off (benches that
// measure something else, tests that need it).
import { callPathDb, type Claims, db } from './db.ts';
import { env } from './env.ts';
import type { PresentedKey } from './auth/api-keys.ts';
import { ApiError } from './errors.ts';

export interface RateLimitVerdict {
  allowed: boolean;
  scope: 'tenant' | 'caller' | 'key';
  limit: number;
  remaining: number;
  /** Seconds until the window ends. */
  reset: number;
  /** A write counted in its tenant's window: which one (given back if the request fails). */
  tenant_id?: string;
  tenant_window?: string;
}

/** The hit a write spent of its tenant's window, to give back if the request fails. */
export type TenantHit = { tenantId: string; window: string } | null;
const tenantHit = (v: RateLimitVerdict | null): TenantHit =>
  v?.tenant_id && v.tenant_window ? { tenantId: v.tenant_id, window: v.tenant_window } : null;

export function rateLimitsEnabled(): boolean {
  return env('RATE_LIMITS')?.toLowerCase() !== 'off';
}

/** The RateLimit-* headers of a verdict (draft-ietf-httpapi-ratelimit-headers). */
export function rateLimitHeaders(v: RateLimitVerdict): Record<string, string> {
  return { 'RateLimit-Limit': String(v.limit), 'RateLimit-Remaining': String(v.remaining), 'RateLimit-Reset': String(v.reset) };
}

type Limited = { header(name: string, value: string): void; req: { header(name: string): string | undefined } };

/** Sets the verdict's RateLimit-* headers; throws 429 rate_limited when it refuses. */
function apply(c: Limited, verdict: RateLimitVerdict | null, message: string): void {
  if (!verdict) return;
  const headers = rateLimitHeaders(verdict);
  for (const [name, value] of Object.entries(headers)) c.header(name, value);
  if (!verdict.allowed) {
    throw new ApiError(
      429,
      'rate_limited',
      message,
      { scope: verdict.scope, limit: verdict.limit, retry_after: verdict.reset },
      { ...headers, 'Retry-After': String(verdict.reset) },
    );
  }
}

const writeRefused = (v: RateLimitVerdict | null) =>
  v?.scope === 'tenant'
    ? "Too many writes in this tenant this minute; the plan's limit is reached"
    : 'Too many writes from you in this tenant this minute';
const KEY_READ_REFUSED = "Too many reads with this API key this minute; the plan's limit is reached";

/** What the route a write is sent to needs (shared/auth/context.ts's TenantNeed): the
 *  tenant's window is spent only by a caller the route will let write (their role ranks
 *  at least `minRole` in a writable tenant), and never by a write taking access away
 *  (`revokes`: revoking a key); everyone else spends only their own window, so refused
 *  writes cannot use up their colleagues' budget. */
export interface WriteNeed {
  tenantId?: string;
  minRole: string;
  revokes?: boolean;
}

/** The count of one write, as an expression: `tenant` a value, or a fragment naming it. */
const writeHit = (c: Limited, claims: Claims, tenant: unknown, need: WriteNeed) =>
  db()`private.rate_limit_hit(${JSON.stringify(claims)}::jsonb, ${tenant}::uuid, ${
    c.req.header('x-tenant-id') ?? null
  }::text, ${need.minRole}::text, ${!!need.revokes})`;
/** The count of one read with this API key, as an expression. */
const keyRead = (key: PresentedKey) => db()`private.rate_limit_key_read(${key.id}::uuid, ${key.secretSha256})`;

/** Counts one write of the caller with these claims to a route with this need, in the
 *  tenant the path names, or else the request's (X-Tenant-Id, the token's, their only
 *  one). Sets the RateLimit-* headers on the response; throws 429 rate_limited when a
 *  window is spent. */
export async function countWrite(c: Limited, claims: Claims, need: WriteNeed): Promise<TenantHit> {
  if (!rateLimitsEnabled()) return null;
  const [{ verdict }] = await db()<{ verdict: RateLimitVerdict | null }>`
    select ${writeHit(c, claims, need.tenantId ?? null, need)} as verdict`;
  apply(c, verdict, writeRefused(verdict));
  return tenantHit(verdict);
}

/** Gives back the hit a write spent of its tenant's window when the request failed (an
 *  error answer: nothing was written). Routes that let every member in refuse in the
 *  handler, and every route refuses bad input and unknown ids after the count: those
 *  refusals spent the tenant's window, so a few customers, each inside their own limit,
 *  kept every colleague's write at 429. The caller's own window keeps the hit. */
export async function giveBackWrite(hit: TenantHit): Promise<void> {
  if (!hit) return;
  await db()`select private.rate_limit_refund(${hit.tenantId}::uuid, ${hit.window}::timestamptz)`;
}

/** Counts one read made with this API key (a key that does not verify counts nothing:
 *  the request's own check refuses it). Headers and 429 as for writes. */
export async function countKeyRead(c: Limited, key: PresentedKey): Promise<void> {
  if (!rateLimitsEnabled()) return;
  const [{ verdict }] = await db()<{ verdict: RateLimitVerdict | null }>`select ${keyRead(key)} as verdict`;
  apply(c, verdict, KEY_READ_REFUSED);
}

/** Counts one read made with this API key in a statement that verifies the key first
 *  (its refusals are the database's), whether or not requests are counted: for a read
 *  whose request carries a body (a search sent as POST), so a forged key is refused before
 *  the body is read. Headers and 429 as above. */
export async function countVerifiedKeyRead(c: Limited, key: PresentedKey, scope: string): Promise<void> {
  await verifiedAndCounted(db(), c, key, scope);
}

/** Counts one write made with an API key, in a statement that verifies the key first
 *  (secret, revocation, expiry, the route's scope): someone who knows a key's id (admins
 *  list them, the audit trail names them, the key carries it in clear) but not its
 *  secret spends nothing of the tenant's or the key's windows, and learns nothing of
 *  them from the RateLimit-* headers of its 401. The request's own statement verifies
 *  the key again, in its transaction. Headers and 429 as above. */
export async function countKeyWrite(
  c: Limited,
  key: PresentedKey,
  scope: string,
  claims: Claims,
  need: WriteNeed,
): Promise<TenantHit> {
  // Verified even when nothing is counted: before the body is read (requireUser).
  return (await verifiedAndCounted(db(), c, key, scope, { claims, need })).spent;
}

/** An API key verified for `scope` (private.verify_api_key: secret, revocation, expiry,
 *  scope; its refusals are the database's) and its request counted, in one autocommit
 *  statement where a request makes no transaction of its own (the telephony call path):
 *  a read against the key's window, or with `writeClaims` a write against the key's
 *  tenant's window (read from the verified key) and the key's own. One statement is one
 *  transaction: a key that does not verify raises, and takes any count back with it.
 *  Returns the verified key (its tenant_id among it); headers and 429 as above. */
export function verifyKeyAndCount(
  c: Limited,
  key: PresentedKey,
  scope: string,
  writeClaims?: Claims,
): Promise<{ tenant_id: string }> {
  // The call path's own pool (shared/db.ts), like the rest of the provider's statements.
  // A call event is any member's write (a key acts as its admin); in a suspended tenant,
  // where only calls under way are told on, it spends the key's window alone.
  const write = writeClaims && { claims: writeClaims, need: { minRole: 'user' } };
  return verifiedAndCounted(callPathDb(), c, key, scope, write).then((r) => r.key);
}

async function verifiedAndCounted(
  sql: ReturnType<typeof db>,
  c: Limited,
  key: PresentedKey,
  scope: string,
  write?: { claims: Claims; need: WriteNeed },
): Promise<{ key: { tenant_id: string }; spent: TenantHit }> {
  const count = !rateLimitsEnabled()
    ? sql`null::jsonb`
    : write
    ? writeHit(c, write.claims, sql`(v.key ->> 'tenant_id')`, write.need)
    : keyRead(key);
  const [row] = await sql<{ key: { tenant_id: string }; verdict: RateLimitVerdict | null }>`
    select v.key, ${count} as verdict
    from (select private.verify_api_key(${key.id}::uuid, ${key.secretSha256}, ${scope}::text) as key offset 0) v`;
  apply(c, row.verdict, write ? writeRefused(row.verdict) : KEY_READ_REFUSED);
  return { key: row.key, spent: tenantHit(row.verdict) };
}
