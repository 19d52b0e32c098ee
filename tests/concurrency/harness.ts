// Shared machinery of the concurrency suite: a test database whose deadlock detector
// runs quickly, the functions' own pool sized for many concurrent requests, 200 writers
// released at once through the in-process Hono apps, and the database's own deadlock
// counter (pg_stat_database.deadlocks) read before and after.
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type Sql, type TestDatabase } from '../helpers/db.ts';
import type { CallResult } from '../helpers/http.ts';
import { type AuthFixture, configureAuth } from '../helpers/tokens.ts';

/** Concurrent writers per hot row. */
export const WRITERS = 200;
/** Connections of the functions' pool: the writers queue for them, as under load. */
export const POOL = 20;

export interface ConcurrencyDb extends TestDatabase {
  auth: AuthFixture;
  name: string;
}

/** A fresh database for one test file, with the functions configured to use it. The
 *  deadlock detector is set to look after 50 ms instead of 1 s: cycles are found the
 *  same, only sooner, so a broken lock order fails fast instead of timing out. */
export async function concurrencyDatabase(label: string, env: Record<string, string> = {}): Promise<ConcurrencyDb> {
  const db = await freshDatabase(label);
  const [{ name }] = await db.sql`select current_database() as name`;
  await db.sql.unsafe(`alter database "${name}" set deadlock_timeout = '50ms'`);
  // Customers among the writers file hundreds of tickets at once: above a customer's daily
  // allowance (private.customer_tickets_per_day), which these suites are not about.
  await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 10000}'`;
  // 200 writers queue for 20 connections; on a loaded 2-core machine the last of them may
  // wait longer than the default 10 s for one, which the functions rightly answer with
  // 503 database_unavailable. This suite is about lock order, not pool waits, so the
  // wait for a connection is allowed to be long.
  const auth = await configureAuth(db.url, { DB_POOL_MAX: String(POOL), DB_CONNECT_TIMEOUT_MS: '120000', ...env });
  return { ...db, auth, name };
}

export async function closeConcurrencyDb(db: ConcurrencyDb): Promise<void> {
  await closeDb();
  await db.auth.close();
  await db.close();
}

/** The deadlocks Postgres has detected in this database so far. The functions' pool is
 *  closed first: a backend reports its counters when it exits, so none is left unread. */
export async function deadlocks(sql: Sql, name: string): Promise<number> {
  await closeDb();
  for (let i = 0; i < 200; i++) {
    const [{ n }] = await sql`
      select count(*)::int as n from pg_stat_activity
      where datname = ${name} and application_name = 'edge-functions'`;
    if (n === 0) break;
    await new Promise((r) => setTimeout(r, 25));
  }
  await sql`select pg_stat_clear_snapshot()`;
  const [row] = await sql`select coalesce(deadlocks, 0)::int as n from pg_stat_database where datname = ${name}`;
  return row?.n ?? 0;
}

export interface Writer<K extends string = string> {
  kind: K;
  /** What the writer asked for, kept with its outcome. */
  wants?: unknown;
  run: () => Promise<CallResult>;
}

export interface Outcome<K extends string = string> {
  kind: K;
  wants?: unknown;
  result: CallResult;
}

/** A deterministic shuffle (the writers' kinds interleave the same way every run). */
export function shuffle<T>(items: T[], seed = 9): T[] {
  const out = [...items];
  let s = seed;
  for (let i = out.length - 1; i > 0; i--) {
    s = (s * 1103515245 + 12345) % 2147483648;
    const j = s % (i + 1);
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}

/** How much the writers overlapped in the database, as sampled while they ran: the most
 *  of the functions' backends at work at once, and the most of them waiting for a lock
 *  at once (a row's, a transaction's, an advisory one). */
export interface Overlap {
  busy: number;
  lockWaiters: number;
}

/** Releases every writer at once and waits for all of them, sampling (on `sql`) how many
 *  of the functions' backends work and wait for locks at once: a suite that means to show
 *  writers contending asserts they did (run one after another, every other assertion of
 *  these suites would still hold). */
export async function runAll<K extends string>(
  writers: Writer<K>[],
  sql?: Sql,
): Promise<Outcome<K>[] & { overlap: Overlap }> {
  const overlap: Overlap = { busy: 0, lockWaiters: 0 };
  let done = false;
  const sampling = (async () => {
    while (sql && !done) {
      const [row] = await sql`
        select count(*) filter (where state <> 'idle')::int as busy,
               count(*) filter (where wait_event_type = 'Lock')::int as waiting
        from pg_catalog.pg_stat_activity
        where datname = pg_catalog.current_database() and application_name = 'edge-functions'`;
      overlap.busy = Math.max(overlap.busy, row.busy);
      overlap.lockWaiters = Math.max(overlap.lockWaiters, row.waiting);
      await new Promise((r) => setTimeout(r, 2));
    }
  })();
  try {
    const outcomes = await Promise.all(writers.map(async (w) => ({ kind: w.kind, wants: w.wants, result: await w.run() })));
    return Object.assign(outcomes, { overlap });
  } finally {
    done = true;
    await sampling;
  }
}

/** Status counts per kind of writer, e.g. { reply: { 201: 50 }, status: { 200: 30 } }. */
export function tally<K extends string>(outcomes: Outcome<K>[]): Record<string, Record<number, number>> {
  const out: Record<string, Record<number, number>> = {};
  for (const o of outcomes) {
    out[o.kind] ??= {};
    out[o.kind][o.result.status] = (out[o.kind][o.result.status] ?? 0) + 1;
  }
  return out;
}

/** Writers answered with a 5xx, and how many of those were deadlocks/serialisation
 *  failures (the API's 503 `retry`, mapped from 40P01/40001). */
export function failures<K extends string>(outcomes: Outcome<K>[]) {
  const serverErrors = outcomes.filter((o) => o.result.status >= 500);
  return {
    serverErrors: serverErrors.length,
    retry: serverErrors.filter((o) => o.result.body?.error?.code === 'retry').length,
  };
}

/** True when no transaction's rows are interleaved with another's: every transaction id
 *  occupies one contiguous run of the rows (taken in audit id order). */
export function contiguousTransactions(rows: readonly Record<string, unknown>[]): boolean {
  const done = new Set<string>();
  let current: string | undefined;
  for (const r of rows) {
    const tx = String(r.transaction_id);
    if (tx === current) continue;
    if (done.has(tx)) return false;
    if (current !== undefined) done.add(current);
    current = tx;
  }
  return true;
}

/** The ticket statistics as maintained, and as recomputed from the tickets. */
export async function statisticsAgainstRecount(sql: Sql, tenantId: string) {
  const maintained = await sql`
    select status, priority, n::int from private.ticket_counts where tenant_id = ${tenantId} and n <> 0 order by 1, 2`;
  const recount = await sql`
    select status, priority, count(*)::int as n from public.tickets
    where tenant_id = ${tenantId} and deleted_at is null group by 1, 2 order by 1, 2`;
  const durations = await sql`
    select kind, bucket, n::int from private.ticket_durations where tenant_id = ${tenantId} and n <> 0 order by 1, 2`;
  const durationRecount = await sql`
    select kind, bucket, count(*)::int as n from (
      select 'first_response' as kind, private.duration_bucket(extract(epoch from first_response_at - created_at)) as bucket
      from public.tickets where tenant_id = ${tenantId} and deleted_at is null and first_response_at is not null
      union all
      select 'resolution', private.duration_bucket(extract(epoch from resolved_at - created_at))
      from public.tickets where tenant_id = ${tenantId} and deleted_at is null and resolved_at is not null
    ) d group by 1, 2 order by 1, 2`;
  return {
    maintained: { counts: [...maintained], durations: [...durations] },
    recount: { counts: [...recount], durations: [...durationRecount] },
  };
}
