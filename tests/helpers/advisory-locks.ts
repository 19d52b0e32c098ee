// What a transaction holds in advisory locks, and who waits for one: the bounded-lock
// tests (the outbox's, the job queue's, the calls' events) count them before commit.
import type { ReservedSql, Sql, TransactionSql } from 'postgres';
import { type SeedUser, supabaseClaims } from './seed.ts';

export interface AdvisoryLockCounts {
  /** Locks whose key is not among those named. */
  others: number;
  /** Named keys held in share mode. */
  share: number;
  /** Named keys held in exclusive mode. */
  exclusive: number;
}

/** Counts the advisory locks this transaction holds, telling apart those (on one 64-bit key)
 *  whose key is one of `namedKeys` (as text: bigint keys, computed by the database). */
export async function countAdvisoryLocks(tx: TransactionSql, namedKeys: readonly string[]): Promise<AdvisoryLockCounts> {
  const [c] = await tx`
    with mine as (
      select l.mode, case when l.objsubid = 1 then ((l.classid::bigint << 32) | l.objid::bigint)::text end as key
      from pg_catalog.pg_locks l
      where l.pid = pg_catalog.pg_backend_pid() and l.locktype = 'advisory'
    )
    -- A lock on two 32-bit keys (objsubid 2) is never a named one.
    select count(*) filter (where not coalesce(m.key = any (${namedKeys as string[]}::text[]), false))::int as others,
           count(*) filter (where m.key = any (${namedKeys as string[]}::text[]) and m.mode = 'ShareLock')::int as share,
           count(*) filter (where m.key = any (${namedKeys as string[]}::text[]) and m.mode = 'ExclusiveLock')::int as exclusive
    from mine m`;
  return c as unknown as AdvisoryLockCounts;
}

/** Runs `statement` as `user` in `tenant` through PostgREST's path (role authenticated,
 *  the user's claims), in one committed transaction; then, back in the test's own role
 *  and before commit, `inspect` sees what the transaction holds. */
export async function asTenantUser<T>(
  sql: Sql,
  user: SeedUser,
  tenant: string,
  statement: (tx: TransactionSql) => Promise<readonly unknown[]>,
  inspect: (tx: TransactionSql) => Promise<T>,
): Promise<{ rows: number; locks: T }> {
  return await sql.begin(async (tx) => {
    await tx`select set_config('role', 'authenticated', true),
                    set_config('request.jwt.claims', ${JSON.stringify(supabaseClaims(user, tenant))}, true)`;
    const rows = await statement(tx);
    await tx`select set_config('role', 'none', true)`;
    return { rows: rows.length, locks: await inspect(tx) };
  }) as { rows: number; locks: T };
}

/** Waits (up to five seconds) until a backend of this database waits for an advisory
 *  lock (held by the backend `blockerPid`, when given). */
export function someoneWaitsForAdvisoryLock(sql: Sql, blockerPid?: number): Promise<boolean> {
  return someoneWaits(sql, blockerPid, true);
}

/** Waits (up to five seconds) until a backend of this database waits for any lock the
 *  backend `blockerPid` holds (a row's, a transaction's, an advisory one). */
export function someoneWaitsFor(sql: Sql, blockerPid: number): Promise<boolean> {
  return someoneWaits(sql, blockerPid, false);
}

async function someoneWaits(sql: Sql, blockerPid: number | undefined, advisoryOnly: boolean): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (await waiters(sql, blockerPid, advisoryOnly) > 0) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** How many backends of this database wait for a lock now (one `blockerPid` holds, when
 *  given; advisory ones only, with `advisoryOnly`). */
async function waiters(sql: Sql, blockerPid: number | undefined, advisoryOnly = false): Promise<number> {
  const [w] = await sql`select count(*)::int as n from pg_catalog.pg_stat_activity a
                        where a.datname = pg_catalog.current_database() and a.wait_event_type = 'Lock'
                          and (not ${advisoryOnly} or a.wait_event = 'advisory')
                          and (${blockerPid ?? null}::int is null or ${blockerPid ?? null}::int = any (pg_catalog.pg_blocking_pids(a.pid)))`;
  return w.n as number;
}

/** Whether `promise` has settled by now (after the microtasks queued before it). */
export async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(() => (done = true), () => (done = true));
  await new Promise((r) => setTimeout(r, 0));
  return done;
}

/** Runs `act` while `hold` has written in another transaction, left open, which is then
 *  committed. `waits` (the default): `act` must wait for that transaction (a backend waits
 *  on its locks), and its result comes after the commit; it must send its work at once (a
 *  postgres.js query: `.execute()`). `waits: false`: `act` must answer while the
 *  transaction is still open. Fails, the transaction rolled back, when either is not so. */
export async function whileHeld<T>(
  sql: Sql,
  hold: (tx: ReservedSql) => Promise<unknown>,
  act: () => Promise<T>,
  opts: { waits?: boolean } = {},
): Promise<T> {
  const holder = await sql.reserve();
  try {
    await holder`begin`;
    await hold(holder);
    const [{ pid }] = await holder`select pg_backend_pid() as pid`;
    const acting = act();
    if (opts.waits === false) {
      // Until it answers, nothing may wait for the holder (a wait that ends in a lock
      // timeout would answer too, later).
      let done = false;
      const result = acting.finally(() => (done = true));
      while (!done) {
        if (await waiters(sql, pid as number) > 0) {
          await holder`rollback`;
          await result.catch(() => undefined);
          throw new Error('the act waited for the held transaction');
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      const answer = await result;
      await holder`commit`;
      return answer;
    }
    if (!(await someoneWaitsFor(sql, pid as number))) {
      await holder`rollback`;
      await acting.catch(() => undefined);
      throw new Error('nothing waited for the held transaction');
    }
    await holder`commit`;
    return await acting;
  } finally {
    await holder`rollback`.catch(() => undefined);
    holder.release();
  }
}
