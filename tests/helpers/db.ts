// Each test file works in its own database, cloned from the migrated and seeded
// template, so files run in parallel without seeing each other's writes.
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { inject } from 'vitest';
import { createDatabase, withDatabase } from '../../scripts/stack.mjs';

export type Sql = postgres.Sql;

/** Tables in public without an audit trigger, each with why: kb_chunks is cut from
 *  kb_documents.content by a definer trigger (API roles cannot write it), so the
 *  document's audit entry already says what its chunks hold
 *  (20261203080000_audit_derived_and_large_values.sql). */
export const UNAUDITED_TABLES = ['kb_chunks'];

export interface TestDatabase {
  /** As postgres — not a superuser, as on hosted: what the functions and the CLI use. */
  url: string;
  /** As supabase_admin, the superuser: for fixtures that need its powers. */
  adminUrl: string;
  /** Superuser connection (supabase_admin): arranges fixtures and inspects results,
   *  bypassing RLS. */
  sql: Sql;
  close(): Promise<void>;
}

export async function freshDatabase(label = 'test'): Promise<TestDatabase> {
  const name = `${label.replace(/\W/g, '_').slice(0, 30)}_${randomBytes(4).toString('hex')}`;
  const url = await createDatabase(inject('pgUrl'), name, inject('templateDb'));
  const adminUrl = withDatabase(inject('pgAdminUrl'), name);
  const sql = postgres(adminUrl, { max: 4, onnotice: () => {} });
  return { url, adminUrl, sql, close: () => sql.end({ timeout: 1 }) };
}

/** Runs fn in a transaction, then rolls it back: resolves with fn's result, rejects with
 *  its error. */
export async function rolledBack<T>(sql: Sql, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  let out: T | undefined;
  await sql
    .begin(async (tx) => {
      out = await fn(tx);
      throw new Rollback();
    })
    .catch((err) => {
      if (!(err instanceof Rollback)) throw err;
    });
  return out as T;
}

class Rollback extends Error {}

type ApiRole = 'authenticated' | 'anon' | 'service_role';

/** Switches the transaction to `role` with these claims, as PostgREST does for a request. */
async function actAs(tx: postgres.TransactionSql, role: ApiRole, claims: Record<string, unknown>): Promise<void> {
  await tx`select set_config('role', ${role}, true), set_config('request.jwt.claims', ${
    JSON.stringify({ ...claims, role })
  }, true)`;
}

/** Runs fn as PostgREST would for a request with these claims, then rolls back, so
 *  every probe starts from the same data. Resolves with fn's result or the error. */
export function probeAs<T>(
  sql: Sql,
  role: ApiRole,
  claims: Record<string, unknown>,
  fn: (tx: postgres.TransactionSql) => Promise<T>,
): Promise<{ ok: true; value: T } | { ok: false; error: { code?: string; message: string; detail?: string } }> {
  return rolledBack(sql, async (tx) => {
    await actAs(tx, role, claims);
    try {
      return { ok: true as const, value: await fn(tx) };
    } catch (err) {
      const e = err as { code?: string; message: string; detail?: string };
      return { ok: false as const, error: { code: e.code, message: e.message, detail: e.detail } };
    }
  });
}

/** Runs fn as PostgREST would for a request with these claims, in one committed
 *  transaction: what a client's own write through the direct path leaves behind. */
export function committedAs<T>(sql: Sql, role: ApiRole, claims: Record<string, unknown>, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  return sql.begin(async (tx) => {
    await actAs(tx, role, claims);
    return await fn(tx);
  }) as Promise<T>;
}
