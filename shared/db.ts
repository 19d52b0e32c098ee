// Direct SQL over the database URL Supabase gives every function (SUPABASE_DB_URL).
// The pooler runs in transaction mode, so nothing here relies on session state:
// settings are transaction-local and statements are never named/prepared.
import postgres from 'postgres';
import { env, requireEnv } from './env.ts';

export type Sql = postgres.Sql;
export type Tx = postgres.TransactionSql;
export type Claims = Record<string, unknown>;

let pool: Sql | undefined;

export function db(): Sql {
  pool ??= postgres(requireEnv('SUPABASE_DB_URL'), {
    prepare: false,
    max: Number(env('DB_POOL_MAX') ?? 4),
    idle_timeout: 20,
    connect_timeout: 10,
    onnotice: () => {},
    connection: { application_name: 'edge-functions' },
    // int8 (counts, ticket numbers, identity ids) as JSON-friendly numbers: exact up to
    // 2^53, far beyond any count or sequence here.
    types: {
      bigint: { to: 20, from: [20], serialize: (n: number) => String(n), parse: (s: string) => Number(s) },
    },
  });
  return pool;
}

export async function closeDb(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.end({ timeout: 1 });
}

/** Inside a transaction, does what PostgREST does for a request: switch to `role` and
 *  publish the claims to SQL (auth.jwt(), the RLS helpers); then runs fn. The set-up is
 *  pipelined with fn's first statement, so it costs no extra round trip; a set-up
 *  failure is reported in preference to the error it causes downstream. Both settings
 *  are transaction-local, so calling it again in the same transaction re-scopes it. */
export async function withClaims<T>(
  tx: Tx,
  role: string,
  claims: Claims,
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  const setup = tx`
    select set_config('role', ${role}, true), set_config('request.jwt.claims', ${JSON.stringify(claims)}, true)
  `.execute();
  setup.catch(() => {});
  try {
    const out = await fn(tx);
    await setup;
    return out;
  } catch (err) {
    await setup;
    throw err;
  }
}

function inRequestTransaction<T>(role: string, claims: Claims, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return db().begin((tx) => withClaims(tx, role, claims, fn)) as Promise<T>;
}

/** A user's request: RLS applies exactly as it does to PostgREST reads. */
export function asUser<T>(claims: Claims, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inRequestTransaction('authenticated', { ...claims, role: 'authenticated' }, fn);
}

/** Trusted machine paths only (verified webhooks, workers): RLS is bypassed, so the
 *  caller names the tenant explicitly and every statement must filter by it. */
export function asService<T>(tenantId: string | null, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inRequestTransaction('service_role', { role: 'service_role', tenant_id: tenantId }, fn);
}
