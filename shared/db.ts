// Direct SQL over the database URL Supabase gives every function (SUPABASE_DB_URL).
// The pooler runs in transaction mode, so nothing here relies on session state:
// settings are transaction-local and statements are never named/prepared.
//
// The driver is node-postgres (`pg`), behind a small tagged-template API (tx`…`,
// tx.columns, tx.json, tx.unsafe) that builds $n parameters. postgres.js was dropped because a
// connection lost inside `sql.begin` makes it write its ROLLBACK (or the handler's next
// statement) to a socket it has already discarded, from a setImmediate callback: an
// uncaught TypeError that ends the process (porsager/postgres#1066, #1154, #1208, open
// in 3.4.9, the latest release). Here a transaction owns one client; once that client
// reports a connection failure nothing more is sent on it, and it is destroyed, not
// returned to the pool. Every connection-level failure (refused, timed out, closed,
// backend terminated, server shutting down or starting) surfaces as
// DatabaseUnavailableError, which the API answers with 503 and Retry-After.
// pg ships no types: locally they come from node_modules/@types/pg, on the platform (no
// node_modules) from this directive.
// @ts-types="npm:@types/pg@^8.23.1"
import pg from 'pg';
import { envInt, requireEnv } from './env.ts';

export type Row = Record<string, unknown>;
export type Claims = Record<string, unknown>;
/** A query's rows, with postgres.js's `count` (rows affected) and `command`. */
export type Rows<T = Row> = T[] & { count: number; command: string };

/** Thrown for any failure that means "the database cannot be reached right now". */
export class DatabaseUnavailableError extends Error {
  override readonly name = 'DatabaseUnavailableError';
  constructor(readonly reason: string, options?: { cause?: unknown }) {
    super(`The database is unavailable (${reason})`, options);
  }
}

/** SQLSTATEs of a lost or refused connection: class 08 (connection exception),
 *  57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now, 57P05
 *  idle_session_timeout, 53300 too_many_connections. */
function isConnectionSqlState(code: string | undefined): boolean {
  return !!code && (code.startsWith('08') || ['57P01', '57P02', '57P03', '57P05', '53300'].includes(code));
}

/** Socket errors (node:net) and the messages pg and pg-pool use for a connection that
 *  failed, timed out or ended. Anything else coming from the driver is a bug, not an
 *  outage. */
const SOCKET_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ERR_SOCKET_CLOSED',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  // postgres.js's names for the same events, should one reach here.
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
]);
const LOST_CONNECTION =
  /connection terminated|connection timeout|timeout exceeded when trying to connect|not queryable|connection error|client was closed|cannot use a pool after calling end|the server closed the connection|socket/i;

/** Supavisor's refusals that say it is full or lost the database — an outage to retry.
 *  Its other errors under XX000 ((ENOTFOUND) tenant or user, (EADDRNOTALLOWED),
 *  (ESSLREQUIRED)…) are configuration a retry does not fix: they stay 500s. */
const POOLER_REFUSAL =
  /^\((EMAXCONN|EMAXCONNSESSION|ECHECKOUTTIMEOUT|EDBHANDLEREXITED|ECIRCUITBREAKER)\)|MaxClientsInSession|max client connections reached|unable to check out connection/i;

/** Why `err` means the database is unreachable, or undefined when it does not. */
export function connectionFailure(err: unknown): string | undefined {
  if (err instanceof DatabaseUnavailableError) return err.reason;
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (code && /^[0-9A-Z]{5}$/.test(code) && !SOCKET_CODES.has(code)) {
    // Supabase's pooler (Supavisor) refuses a connection as XX000 in its own words:
    // `(EMAXCONN) max client connections reached`, `(ECHECKOUTTIMEOUT) …` (its reason in
    // parentheses), older `Max client connections reached`, `MaxClientsInSessionMode: …`.
    const pooler = code === 'XX000' && typeof e.message === 'string' ? POOLER_REFUSAL.exec(e.message) : null;
    if (pooler) return pooler[1] ?? 'pooler_refused';
    // A SQLSTATE from the server.
    return isConnectionSqlState(code) ? code : undefined;
  }
  if (code && SOCKET_CODES.has(code)) return code;
  // Happy Eyeballs: an AggregateError of refused attempts.
  if (Array.isArray(e.errors) && e.errors.length && e.errors.every((x) => connectionFailure(x))) {
    return connectionFailure(e.errors[0]);
  }
  if (!code && typeof e.message === 'string' && LOST_CONNECTION.test(e.message)) return 'connection_lost';
  return undefined;
}

/** The error the rest of the code sees: server errors keep postgres.js's shape (name
 *  PostgresError, constraint_name, column_name…) that shared/errors.ts reads; lost
 *  connections become DatabaseUnavailableError. */
function normalise(err: unknown): unknown {
  const reason = connectionFailure(err);
  if (reason) return err instanceof DatabaseUnavailableError ? err : new DatabaseUnavailableError(reason, { cause: err });
  if (err instanceof pg.DatabaseError) return new PostgresError(err);
  return err;
}

export class PostgresError extends Error {
  override readonly name = 'PostgresError';
  readonly code?: string;
  readonly severity?: string;
  readonly detail?: string;
  readonly hint?: string;
  readonly schema_name?: string;
  readonly table_name?: string;
  readonly column_name?: string;
  readonly constraint_name?: string;
  readonly where?: string;
  constructor(e: pg.DatabaseError) {
    super(e.message);
    this.code = e.code;
    this.severity = e.severity;
    this.detail = e.detail;
    this.hint = e.hint;
    this.schema_name = e.schema;
    this.table_name = e.table;
    this.column_name = e.column;
    this.constraint_name = e.constraint;
    this.where = e.where;
  }
}

// ---------------------------------------------------------------- the tagged-template API

class Unsafe {
  constructor(readonly text: string) {}
}
class Json {
  constructor(readonly value: unknown) {}
}
/** Names quoted as identifiers ("a", "b"): column lists as typed names, not SQL text. */
class Identifiers {
  constructor(readonly names: readonly string[]) {}
  get text(): string {
    if (!this.names.length) throw new TypeError('An empty identifier list');
    return this.names.map((n) => `"${n.replaceAll('"', '""')}"`).join(', ');
  }
}

type Runner = (text: string, values: unknown[]) => Promise<pg.QueryResult>;

/** A statement built from a template. Like postgres.js's queries it is lazy: it runs
 *  when first awaited (or on execute()), and a query placed inside another template
 *  is inlined there as a fragment instead. */
export class Query<T = Row> implements Promise<Rows<T>> {
  readonly [Symbol.toStringTag] = 'Query';
  #promise?: Promise<Rows<T>>;
  constructor(
    readonly strings: readonly string[],
    readonly args: readonly unknown[],
    private readonly run: Runner,
  ) {}

  /** The statement text with $n placeholders, and its parameters. */
  build(values: unknown[] = []): { text: string; values: unknown[] } {
    let text = this.strings[0];
    for (let i = 0; i < this.args.length; i++) {
      const arg = this.args[i];
      if (arg instanceof Query) text += arg.build(values).text;
      else if (arg instanceof Unsafe || arg instanceof Identifiers) text += arg.text;
      else if (arg === undefined) throw new TypeError(`Undefined value in SQL parameter ${i + 1}`);
      else {
        values.push(arg instanceof Json ? JSON.stringify(arg.value) : arg);
        text += `$${values.length}`;
      }
      text += this.strings[i + 1];
    }
    return { text, values };
  }

  execute(): this {
    this.#start();
    return this;
  }

  #start(): Promise<Rows<T>> {
    this.#promise ??= (async () => {
      const { text, values } = this.build();
      const res = await this.run(text, values);
      const last = Array.isArray(res) ? res.at(-1) as pg.QueryResult : res;
      return Object.assign(last.rows as T[], { count: last.rowCount ?? 0, command: last.command });
    })();
    return this.#promise;
  }

  then<A = Rows<T>, B = never>(
    onfulfilled?: ((value: Rows<T>) => A | PromiseLike<A>) | null,
    onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null,
  ): Promise<A | B> {
    return this.#start().then(onfulfilled, onrejected);
  }

  catch<B = never>(onrejected?: ((reason: unknown) => B | PromiseLike<B>) | null): Promise<Rows<T> | B> {
    return this.#start().catch(onrejected);
  }

  finally(onfinally?: (() => void) | null): Promise<Rows<T>> {
    return this.#start().finally(onfinally);
  }
}

export interface Sql {
  // deno-lint-ignore no-explicit-any
  <T = any>(strings: TemplateStringsArray, ...args: unknown[]): Query<T>;
  /** Raw SQL text: inlined as is inside a template, or run on its own. */
  // deno-lint-ignore no-explicit-any
  unsafe<T = any>(text: string): Query<T>;
  /** A value sent as JSON text (for json/jsonb parameters). */
  json(value: unknown): Json;
  /** Column names as a comma-separated list of quoted identifiers, for select lists
   *  and RETURNING. Type the list by the table's generated Row (see `Columns`), so a
   *  name the table lacks fails to compile. */
  columns(names: readonly string[]): Identifiers;
}
export type Tx = Sql;

function makeSql(run: Runner): Sql {
  const sql = ((strings: TemplateStringsArray, ...args: unknown[]) => new Query(strings, args, run)) as Sql;
  sql.unsafe = (text: string) => new Query([text], [], run);
  sql.json = (value: unknown) => new Json(value);
  sql.columns = (names: readonly string[]) => new Identifiers(names);
  return sql;
}

// ---------------------------------------------------------------- the pool

// int8 (counts, ticket numbers, identity ids) as JSON-friendly numbers: exact up to 2^53,
// far beyond any count or sequence here. Dates, intervals and the rest as postgres.js
// returned them, so responses keep their shape.
const INT8 = 20, INT8_ARRAY = 1016, DATE = 1082, INTERVAL = 1186;
// deno-lint-ignore no-explicit-any
const builtinParser = pg.types.getTypeParser as (oid: number, format?: 'text' | 'binary') => any;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8) return (s: string) => Number(s);
    if (oid === INT8_ARRAY) {
      const parseArray = builtinParser(1009, 'text') as (s: string) => (string | null)[];
      return (s: string) => parseArray(s).map((x) => (x === null ? null : Number(x)));
    }
    if (oid === DATE) return (s: string) => new Date(s);
    if (oid === INTERVAL) return (s: string) => s;
    return builtinParser(oid, format);
  },
} as pg.CustomTypesConfig;

/** Two pools: people's requests, scripts and jobs (`main`), and the telephony provider's
 *  call path (`call_path`: routing, call events, knowledge search during a call), so a
 *  caller waiting for an answer never queues behind people's slow work — an import of
 *  50,000 customers holds a connection for seconds, a document of a million characters
 *  is chunked in its insert. Each has its own size (DB_POOL_MAX, DB_POOL_MAX_CALL_PATH). */
type PoolName = 'main' | 'call_path';
const pools = new Map<PoolName, pg.Pool>();
const poolSqls = new Map<PoolName, Sql>();

function getPool(name: PoolName = 'main'): pg.Pool {
  const existing = pools.get(name);
  if (existing) return existing;
  const p = new pg.Pool({
    connectionString: requireEnv('SUPABASE_DB_URL'),
    max: name === 'main' ? envInt('DB_POOL_MAX', 4, 1, 200) : envInt('DB_POOL_MAX_CALL_PATH', 4, 1, 200),
    idleTimeoutMillis: 20_000,
    connectionTimeoutMillis: envInt('DB_CONNECT_TIMEOUT_MS', 10_000, 1, 600_000),
    // The same name for both: operators and tests find the functions' connections by it.
    application_name: 'edge-functions',
    keepAlive: true,
    types,
  });
  // An idle pooled connection that dies (restart, pg_terminate_backend) is dropped by
  // the pool; without a listener the event would end the process.
  p.on('error', (err) => {
    console.error('[db] idle connection lost:', (err as { code?: string }).code ?? err.message);
  });
  // Server notices reach a test's observer (auto_explain's plans, in the plan test).
  p.on('connect', (client) => client.on('notice', (n) => noticeObserver?.(n.message ?? '')));
  pools.set(name, p);
  return p;
}

function autocommit(name: PoolName): Sql {
  let sql = poolSqls.get(name);
  if (!sql) {
    sql = makeSql(async (text, values) => {
      observer?.(text, values, undefined);
      try {
        return await getPool(name).query({ text, values, types });
      } catch (err) {
        throw normalise(err);
      }
    });
    poolSqls.set(name, sql);
  }
  return sql;
}

/** Autocommit statements on the main pool (no request transaction): scripts and tests. */
export function db(): Sql {
  return autocommit('main');
}

/** Autocommit statements on the call path's own pool: the telephony provider's routes. */
export function callPathDb(): Sql {
  return autocommit('call_path');
}

export async function closeDb(): Promise<void> {
  const open = [...pools.values()];
  pools.clear();
  poolSqls.clear();
  await Promise.all(open.map((p) => p.end()));
}

/** Runs fn in a transaction on one client of the pool. The client is watched for a
 *  lost connection from checkout to release: after one, nothing more is sent on it (no
 *  ROLLBACK: the server has already ended the transaction) and it is destroyed. */
async function transaction<T>(fn: (tx: Tx) => Promise<T>, scope?: Scope, pool: PoolName = 'main'): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await getPool(pool).connect();
  } catch (err) {
    throw normalise(err);
  }
  let lost: unknown;
  let finished = false;
  const onError = (err: unknown) => {
    lost ??= err;
  };
  client.on('error', onError);
  const run: Runner = async (text, values) => {
    if (finished) throw new Error('This transaction has already ended');
    if (lost) throw normalise(lost);
    observer?.(text, values, scopes.get(tx));
    try {
      return await client.query({ text, values, types });
    } catch (err) {
      if (connectionFailure(err)) lost ??= err;
      throw normalise(err);
    }
  };
  const tx = makeSql(run);
  try {
    if (scope) {
      // BEGIN and the request's role and claims in one round trip: a simple-protocol
      // query may hold several statements (no parameters there, so the values go in as
      // literals, quoted by the driver).
      await run(
        `begin; set local lock_timeout = ${lockTimeoutMs()}; ${scopeStatement(scope, (v) => client.escapeLiteral(v))}`,
        [],
      );
      scopes.set(tx, scopeKey(scope));
    } else {
      await tx`begin`;
    }
    const out = await fn(tx);
    await tx`commit`;
    return out;
  } catch (err) {
    if (!lost && !finished) {
      await client.query('rollback').catch((e) => {
        lost ??= e;
      });
    }
    throw normalise(err);
  } finally {
    finished = true;
    client.removeListener('error', onError);
    // release(err) destroys the client instead of pooling it.
    client.release(lost ? (lost instanceof Error ? lost : new Error('connection lost')) : undefined);
  }
}

/** Inside a transaction, does what PostgREST does for a request: switch to `role` and
 *  publish the claims to SQL (auth.jwt(), the RLS helpers); then runs fn. The set-up is
 *  queued ahead of fn's first statement on the same connection; a set-up failure is
 *  reported in preference to the error it causes downstream. Both settings are
 *  transaction-local, so calling it again in the same transaction re-scopes it. */
export async function withClaims<T>(
  tx: Tx,
  role: string,
  claims: Claims,
  fn: (tx: Tx) => Promise<T>,
): Promise<T> {
  // Already in effect (the request's scope, set with its BEGIN): nothing to send.
  const key = scopeKey({ role, claims });
  if (scopes.get(tx) === key) return await fn(tx);
  scopes.set(tx, key);
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

function inRequestTransaction<T>(
  role: string,
  claims: Claims,
  fn: (tx: Tx) => Promise<T>,
  pool: PoolName = 'main',
): Promise<T> {
  return transaction(fn, { role, claims }, pool);
}

/** Sees every statement before it is sent, with the scope (role and claims JSON) it runs
 *  in: for tests that check the plans of what the endpoints run
 *  (tests/schema/endpoint-plans.test.ts). Null (the default) in production. */
export type StatementObserver = (text: string, values: unknown[], scope: string | undefined) => void;
let observer: StatementObserver | null = null;
let noticeObserver: ((message: string) => void) | null = null;
/** Test hook: every notice the server sends on the pool's connections. */
export function observeNotices(fn: ((message: string) => void) | null): void {
  noticeObserver = fn;
}

export function observeStatements(fn: StatementObserver | null): void {
  observer = fn;
}

/** The longest a statement of a request's or job's transaction waits for a lock (a row,
 *  an advisory lock) before giving up (DB_LOCK_TIMEOUT_MS, 30 s; 0: for ever). The
 *  functions connect as one login without PostgREST's per-role timeouts, so a statement
 *  queued behind a lock that is never let go (a stuck transaction elsewhere) held its
 *  pooled connection without end. A wait, not the work: a long statement that holds the
 *  locks it needs (a field's visibility rewriting a tenant's tickets, a call's million
 *  transcript segments deleted) runs to its end. Past it: 55P03, the 503 `timeout`. */
const lockTimeoutMs = () => envInt('DB_LOCK_TIMEOUT_MS', 30_000, 0, 3_600_000);

/** A request's role and claims (what PostgREST sets per request). */
interface Scope {
  role: string;
  claims: Claims;
}
/** The scope in effect in each open transaction, so re-scoping to the same one (the
 *  handler's callerDb after the caller lookup) costs no round trip. */
const scopes = new WeakMap<Tx, string>();
const scopeKey = (s: Scope) => `${s.role}\u0000${JSON.stringify(s.claims)}`;
const scopeStatement = (s: Scope, literal: (v: string) => string) =>
  `select set_config('role', ${literal(s.role)}, true), set_config('request.jwt.claims', ${
    literal(JSON.stringify(s.claims))
  }, true)`;

/** A user's request: RLS applies exactly as it does to PostgREST reads. */
export function asUser<T>(claims: Claims, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inRequestTransaction('authenticated', { ...claims, role: 'authenticated' }, fn);
}

/** A tenant API key's call events on the telephony path: a transaction on the call
 *  path's pool (a call never queues behind people's slow work), as the machine's role
 *  (the private.voice_call_* functions name the tenant and hold every rule), with the
 *  key's claims published so the audit trail names the key (actor_issuer, actor_subject)
 *  and its creator, as for the key's writes elsewhere. */
export function asApiKeyMachine<T>(claims: Claims, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inRequestTransaction('service_role', { ...claims, role: 'service_role' }, fn, 'call_path');
}

/** Where the telephony provider's writes run: under a tenant API key's claims when one
 *  sent them (a transaction: the audit trail names the key), else as one autocommit
 *  statement each on the call path's pool. */
export function telephonyWrites(keyClaims: Claims | undefined): <T>(work: (sql: Sql) => Promise<T>) => Promise<T> {
  return (work) => keyClaims ? asApiKeyMachine(keyClaims, work) : work(callPathDb());
}

/** Trusted machine paths only (verified webhooks, workers): RLS is bypassed, so the
 *  caller names the tenant explicitly and every statement must filter by it. */
export function asService<T>(tenantId: string | null, fn: (tx: Tx) => Promise<T>): Promise<T> {
  return inRequestTransaction('service_role', { role: 'service_role', tenant_id: tenantId }, fn);
}
