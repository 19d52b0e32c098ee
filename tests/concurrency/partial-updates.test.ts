// PATCH writes only the fields its body names, over the row as it is once locked: two
// admins changing different fields of one macro, canned response or automation rule at
// the same time both keep their change. Each route used to read the row, then write
// every column back from that read, so the second writer restored what the first had
// just changed (a lost update). The row is held by another transaction while both
// requests read it and queue for it, which is the interleaving that lost one.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let admin: string;

beforeAll(async () => {
  db = await freshDatabase('partial_updates');
  auth = await configureAuth(db.url);
  admin = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

/** Waits (up to five seconds) until `n` backends wait for a lock, the first behind the
 *  backend `pid` (the next ones queue behind the first, for the row's tuple lock). */
async function waiters(pid: number, n: number): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    const [w] = await db.sql`select count(*)::int as n from pg_catalog.pg_stat_activity a
      where a.datname = pg_catalog.current_database() and a.wait_event_type = 'Lock'
        and cardinality(pg_catalog.pg_blocking_pids(a.pid)) > 0
        and exists (select 1 from pg_catalog.pg_stat_activity b
                    where ${pid}::int = any (pg_catalog.pg_blocking_pids(b.pid)))`;
    if (w.n >= n) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

const resources = [
  {
    table: 'macros',
    path: '/tickets/macros',
    create: { scope: 'tenant', name: 'Close politely', actions: [{ type: 'set_priority', priority: 'low' }] },
    first: { name: 'Close kindly' },
    second: { description: 'For resolved questions' },
  },
  {
    table: 'canned_responses',
    path: '/tickets/canned-responses',
    create: { scope: 'tenant', short_code: 'hello', title: 'Hello', body: 'Hello there' },
    first: { title: 'Greeting' },
    second: { body: 'Good morning' },
  },
  {
    table: 'automation_rules',
    path: '/tickets/automation-rules',
    create: { name: 'Urgent words', event: 'ticket.created', conditions: {}, actions: [{ type: 'set_priority', priority: 'high' }] },
    first: { position: 7 },
    second: { active: false },
  },
] as const;

describe('two PATCHes of different fields at once keep both', () => {
  for (const r of resources) {
    it(r.table, async () => {
      const created = await call(app, 'POST', r.path, { token: admin, body: r.create });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const id = created.body.id as string;
      const holder = await db.sql.reserve();
      try {
        await holder`begin`;
        await holder`select 1 from ${db.sql(`public.${r.table}`)} where id = ${id} for update`;
        const [{ pid }] = await holder`select pg_backend_pid() as pid`;
        const patches = [r.first, r.second].map((body) => call(app, 'PATCH', `${r.path}/${id}`, { token: admin, body }));
        expect(await waiters(pid, 2)).toBe(true);
        await holder`commit`;
        const answers = await Promise.all(patches);
        expect(answers.map((a) => a.status)).toEqual([200, 200]);
      } finally {
        await holder`rollback`.catch(() => undefined);
        holder.release();
      }
      const after = await call(app, 'GET', `${r.path}/${id}`, { token: admin });
      expect(after.body).toMatchObject({ ...r.first, ...r.second });
    });
  }
});
