// Issue 9, §3: a suspended tenant is read-only on the direct path. Every table in the
// exposed schemas where API roles hold a write privilege × every write (insert a copy of
// the tenant's row, update and delete its rows by key, by bare id and all it reaches) ×
// the tenant's own admin, agent and user × token shapes: nothing of the tenant changes,
// while every read still returns what it returned before the suspension.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { LOCAL_CLERK_ISSUER, LOCAL_SUPABASE_ISSUER, users } from '../helpers/seed.ts';
import {
  catalogTables,
  exposedSchemas,
  fallbackRow,
  installKit,
  type Json,
  type Outcome,
  populateTenant,
  type Probe,
  brokenProbe,
  reachedDecision,
  runProbes,
  snapshot,
  statementsFor,
  summarise,
  type Table,
  tenantRows,
  VICTIM,
  VICTIM_PEOPLE,
  VICTIM_TEAM,
} from './attack-kit.ts';

const S = VICTIM; // the tenant that gets suspended, with a row in every table
const people = [
  { role: 'admin', user: users.globexAdmin },
  { role: 'agent', user: users.globexAgent },
  { role: 'user', user: users.globexUser },
];
function shapesOf(u: { id: string; email: string; handle: string }): { label: string; claims: Json }[] {
  const sb = { iss: LOCAL_SUPABASE_ISSUER, sub: u.id, aud: 'authenticated', email: u.email, role: 'authenticated' };
  const clerk = { iss: LOCAL_CLERK_ISSUER, sub: `user_${u.handle}`, role: 'authenticated' };
  return [
    { label: 'supabase tenant_id', claims: { ...sb, tenant_id: S.id } },
    { label: 'supabase app_metadata.tenant_id', claims: { ...sb, app_metadata: { tenant_id: S.id } } },
    { label: 'clerk v2 o.id', claims: { ...clerk, o: { id: S.org } } },
    { label: 'supabase no tenant', claims: sb },
  ];
}

let db: TestDatabase;
let tables: Table[];
let writable: Table[];
let personal: Set<string>;
/** The tenant's own tables (the kit's scope 'tenant': those with its id, and tenants itself). */
let ofTenant: (t: Table) => boolean;
let readsBefore: Outcome[];
let readsAfter: Outcome[];
let writes: { probe: Probe; outcome: Outcome }[] = [];
let readProbes: Probe[];

function writeProbes(list: Table[], rows: Map<string, Json[]>): Probe[] {
  const out: Probe[] = [];
  for (const { role, user } of people) {
    for (const shape of shapesOf(user)) {
      for (const t of list) {
        for (const st of statementsFor(t, rows.get(t.rel) ?? [], fallbackRow(t, S.id, user.id)).filter((x) => x.kind === 'write')) {
          out.push({
            role: 'authenticated', claims: shape.claims, sql: st.sql, kind: 'write', rel: t.rel, tenant: S.id, fp: true, fp_always: t.statementTriggers,
            meta: { table: t.rel, action: st.action, variant: st.variant, actor: role, shape: shape.label },
          });
        }
      }
    }
  }
  return out;
}

/** The tenant's rows a write changed, leaving out its people's own profiles (users and
 *  their identities belong to the person, who may edit them whatever their tenants' state). */
function tenantChanges(o: Outcome): string[] {
  return (o.changed_tables ?? []).filter((rel) => !personal.has(rel));
}

beforeAll(async () => {
  db = await freshDatabase('attack_suspended');
  await installKit(db.sql);
  await populateTenant(db.sql, S, VICTIM_PEOPLE, VICTIM_TEAM);
  tables = await catalogTables(db.sql, await exposedSchemas(db.sql), 'authenticated');
  writable = tables.filter((t) => t.canDelete || t.columns.some((c) => c.insert || c.update));
  const tenantScoped = new Set((await db.sql`select rel::text as rel from attack_probe.scope where kind = 'tenant'`).map((r) => r.rel as string));
  ofTenant = (t) => tenantScoped.has(t.rel);
  personal = new Set(
    (await db.sql`select rel::text as rel from attack_probe.scope where kind = 'people' or cond like '%tenant_users%'`).map((r) => r.rel as string),
  );
  readProbes = people.flatMap(({ role, user }) =>
    shapesOf(user).flatMap((shape) =>
      tables.filter((t) => t.columns.some((c) => c.select)).map((t): Probe => ({
        role: 'authenticated', claims: shape.claims, kind: 'read', rel: t.rel, tenant: S.id, fp: false,
        sql: `select ${t.columns.filter((c) => c.select).map((c) => `"${c.name}"`).join(', ')} from ${t.rel}`,
        meta: { table: t.rel, actor: role, shape: shape.label },
      }))
    )
  );
  await db.sql`update public.tenants set status = 'suspended' where id = ${S.id}`;
  await snapshot(db.sql, S.id);
  readsAfter = await runProbes(db.sql, readProbes);
  // The same reads with the tenant active again and nothing else different (triggers off,
  // so the status change writes no audit row), in a transaction that is rolled back.
  await db.sql
    .begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update public.tenants set status = 'active' where id = ${S.id}`;
      await tx`set local session_replication_role = origin`;
      readsBefore = await runProbes(tx as never, readProbes);
      throw new Error('rollback');
    })
    .catch((e) => {
      if ((e as Error).message !== 'rollback') throw e;
    });
  const probes = writeProbes(writable, await tenantRows(db.sql, S.id));
  const outcomes = await runProbes(db.sql, probes);
  writes = probes.map((probe, i) => ({ probe, outcome: outcomes[i] }));
  console.log(
    `suspended tenant: ${writable.length} writable tables × ${people.length} roles × ${shapesOf(users.globexAdmin).length} token shapes, ` +
      `${writes.length} write statements, ${readProbes.length} reads compared`,
  );
}, 120_000);
afterAll(() => db?.close());

/** The writes a suspended tenant keeps, on both paths, all taking access away: its admins
 *  stop what it sends by deleting a webhook endpoint (20261207202000; turning one off or
 *  rotating its secret are updates the table's trigger allows alone, which these probes
 *  do not make), remove members and revoke invitations (20261207207000). */
const stopsWhatItSends = (w: { probe: Probe }) =>
  w.probe.meta.action === 'delete' && w.probe.meta.actor === 'admin' &&
  ['webhook_endpoints', 'invitations', 'memberships'].includes(String(w.probe.meta.table));

describe('a suspended tenant on the direct path', () => {
  it('refuses every write by its own people (0 rows or an error), but those taking access away', () => {
    const changed = writes.filter((w) => !stopsWhatItSends(w) && tenantChanges(w.outcome).length > 0)
      .map((w) => `${w.probe.meta.actor} ${w.probe.meta.action} ${w.probe.meta.table} (${w.probe.meta.variant}) changed ${tenantChanges(w.outcome).join(', ')}`);
    expect(summarise(changed)).toEqual([]);
    // The exception is that exact write: the admin's deletes went through.
    expect(writes.filter(stopsWhatItSends).some((w) => tenantChanges(w.outcome).includes('webhook_endpoints'))).toBe(true);
  });

  it("covers every writable tenant table: each write on it reached the database's decision at least once", () => {
    // A write stopped by a constraint (22xxx, 23xxx) before any policy ran proves nothing
    // about the suspension; each table and action needs one that got as far as the rule.
    const missing: string[] = [];
    const combos = new Set(writes.map((w) => `${w.probe.meta.table}|${w.probe.meta.action}`));
    for (const t of writable.filter(ofTenant)) {
      for (const action of ['insert', 'update', 'delete']) {
        const mine = writes.filter((w) => w.probe.meta.table === t.rel && w.probe.meta.action === action);
        if (mine.length > 0 && !mine.some((w) => reachedDecision(w.outcome))) missing.push(`${t.rel} ${action} (${mine.length} probes, none decided)`);
      }
      if (![...combos].some((c) => c.startsWith(`${t.rel}|`))) missing.push(`${t.rel}: no write generated`);
    }
    expect(missing).toEqual([]);
    expect(writable.filter(ofTenant).length).toBeGreaterThanOrEqual(25);
    expect(writable.filter(ofTenant).map((t) => t.rel)).toContain('tenants');
    expect(writes.length).toBeGreaterThan(writable.length * people.length);
  });

  it('every generated write is well-formed', () => {
    expect(writes.filter((w) => brokenProbe(w.outcome)).map((w) => `${w.probe.meta.table} ${w.probe.meta.action}: ${w.outcome.msg}`)).toEqual([]);
  });

  it('still answers every read as before the suspension', () => {
    const differ = readProbes
      .map((p, i) => ({ p, before: readsBefore[i], after: readsAfter[i] }))
      .filter(({ before, after }) => before.code !== after.code || before.n !== after.n)
      .map(({ p, before, after }) => `${p.meta.actor} (${p.meta.shape}) ${p.meta.table}: ${before.code ?? before.n} then ${after.code ?? after.n}`);
    expect(differ).toEqual([]);
    const seen = new Set(readProbes.filter((_, i) => (readsAfter[i].n ?? 0) > 0).map((p) => p.meta.table));
    expect(tables.filter((t) => ofTenant(t) && !seen.has(t.rel)).map((t) => t.rel), "tenant tables none of the tenant's people can read").toEqual([]);
  });
});

describe('canary: the checker catches a planted hole', () => {
  it('an update policy without the writable-tenant condition is reported', async () => {
    let changed: string[] = [];
    await db.sql
      .begin(async (tx) => {
        const target = writable.find((t) => t.name === 'teams')!;
        await tx.unsafe(`create policy attack_canary on ${target.rel} for update to authenticated using (true) with check (true)`);
        const probes = writeProbes([target], await tenantRows(db.sql, S.id)).filter((p) => p.meta.action === 'update');
        const outcomes = await runProbes(tx as never, probes);
        changed = outcomes.flatMap(tenantChanges);
        throw new Error('rollback');
      })
      .catch((e) => {
        if ((e as Error).message !== 'rollback') throw e;
      });
    expect(changed).toContain('teams');
  });
});
