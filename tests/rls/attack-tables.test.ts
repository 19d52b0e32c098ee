// Issue 9, §3: every table and view in the exposed schemas × select/insert/update/delete ×
// every role × every token shape, generated from the catalog (see attack-kit.ts). The
// attackers each belong to two tenants with different roles, own rows whose ids collide
// with the victim's, and try to read and change the victim tenant's rows directly, as a
// client app would through PostgREST. Nothing of the victim may be read or changed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import {
  actors,
  attackers,
  catalogTables,
  createAttackers,
  exposedSchemas,
  fallbackRow,
  fingerprint,
  installKit,
  type Json,
  plantColliders,
  populateTenant,
  problems,
  type Probe,
  reachedDecision,
  runProbes,
  shapes,
  snapshot,
  statementsFor,
  summarise,
  type Table,
  tenantRows,
  type Tried,
  VICTIM,
  VICTIM_PEOPLE,
  VICTIM_TEAM,
} from './attack-kit.ts';

let db: TestDatabase;
let schemas: string[];
let tablesFor: Record<'anon' | 'authenticated', Table[]>;
/** The tables whose rows belong to a tenant or to its people (the kit's scope: the tenant
 *  tables, and tenants, users and their identities), not shared ones. */
let owned: Set<string>;
const isOwned = (t: Table) => owned.has(t.rel);
let victimRows: Map<string, Json[]>;
let baseline: string;
let colliders = 0;
let tried: Tried[] = [];
const rowsOfA = new Map<string, Map<string, Json[]>>();
let pairs: { attacker: Tried; twin: Tried }[] = [];

// Own-tenant probes compare the attacker with its twin: the same role in A, no colliding
// rows in its other tenant. Whatever of A the attacker reaches beyond its twin, it
// reaches through a collision (a bare id trusted across tenants).
const OWN_SHAPES = /^(supabase tenant_id=A|supabase tenant_id=B|clerk v2 o\.id=A|supabase no tenant|clerk no organisation|supertokens no tenant)$/;
function ownTenantProbes(): { attacker: Probe; twin: Probe }[] {
  const out: { attacker: Probe; twin: Probe }[] = [];
  for (const at of attackers) {
    const mine = shapes(at).filter((x) => OWN_SHAPES.test(x.label));
    const twins = shapes(at.twin).filter((x) => OWN_SHAPES.test(x.label));
    for (const t of tablesFor.authenticated) {
      const rows = rowsOfA.get(at.a.id)!.get(t.rel) ?? [];
      for (const st of statementsFor(t, rows, fallbackRow(t, at.a.id, at.bystanders.user.id)).filter((x) => x.variant !== 'every row it reaches')) {
        mine.forEach((shape, i) => {
          const base = { sql: st.sql, kind: st.kind, rel: t.rel, tenant: at.a.id, fp: st.kind === 'write', fp_always: t.statementTriggers };
          const meta = { table: t.rel, action: st.action, variant: st.variant, actor: at.label, shape: shape.label };
          out.push({
            attacker: { ...base, role: 'authenticated', claims: { ...shape.claims, role: 'authenticated' }, meta },
            twin: { ...base, role: 'authenticated', claims: { ...twins[i].claims, role: 'authenticated' }, meta: { ...meta, actor: at.twin.label } },
          });
        });
      }
    }
  }
  return out;
}

/** What the attacker reached in A beyond its twin. */
function beyondTwin(p: { attacker: Tried; twin: Tried }): string | null {
  const a = p.attacker.outcome;
  const b = p.twin.outcome;
  const where = Object.values(p.attacker.probe.meta).join(' | ');
  if ((a.leak_count ?? 0) > (b.leak_count ?? 0)) return `READ beyond its role in its own tenant: ${where}`;
  if (a.changed && !b.changed) {
    const twin = b.code ? ` (the twin was refused: ${b.code} ${b.msg})` : '';
    return `CHANGED beyond its role in its own tenant: ${where}: ${(a.changed_tables ?? []).join(', ')}${twin}`;
  }
  return null;
}

/** Every probe for the given actors and tables, from the victim's rows of each table
 *  (`rowSets`: the rows each set of statements is built from; by default all of them, so
 *  inserts copy the first). */
function buildProbes(
  tableFilter: (t: Table) => boolean,
  actorList = actors(),
  rowSets = (t: Table): Json[][] => [victimRows.get(t.rel) ?? []],
): Probe[] {
  const probes: Probe[] = [];
  for (const actor of actorList) {
    for (const t of tablesFor[actor.role].filter(tableFilter)) {
      const statements = rowSets(t).flatMap((rows) => statementsFor(t, rows, fallbackRow(t, VICTIM.id, VICTIM_PEOPLE.user.id)));
      for (const shape of actor.shapes) {
        for (const s of statements) {
          probes.push({
            role: actor.role,
            claims: shape.claims,
            sql: s.sql,
            kind: s.kind,
            rel: t.rel,
            tenant: VICTIM.id,
            // A write that reached no row can still act through a statement-level trigger.
            fp: s.kind === 'write',
            fp_always: t.statementTriggers,
            meta: { table: t.rel, action: s.action, variant: s.variant, actor: actor.label, shape: shape.label },
          });
        }
      }
    }
  }
  return probes;
}

beforeAll(async () => {
  db = await freshDatabase('attack_tables');
  await installKit(db.sql);
  await populateTenant(db.sql, VICTIM, VICTIM_PEOPLE, VICTIM_TEAM);
  await createAttackers(db.sql);
  for (const at of attackers) await populateTenant(db.sql, at.a, at.bystanders, at.teamA, at.ticketsA);
  await snapshot(db.sql, VICTIM.id);
  // In each attacker's tenant B: rows with the victim's ids and with the ids of A's rows
  // (A being the attacker's other tenant, where its role limits what it may reach).
  colliders = await plantColliders(db.sql, VICTIM.id, attackers.map((at) => ({ tenant: at.b.id, person: at.id })));
  for (const at of attackers) colliders += await plantColliders(db.sql, at.a.id, [{ tenant: at.b.id, person: at.id }]);
  baseline = await snapshot(db.sql, VICTIM.id);
  for (const at of attackers) await snapshot(db.sql, at.a.id);
  schemas = await exposedSchemas(db.sql);
  tablesFor = { anon: await catalogTables(db.sql, schemas, 'anon'), authenticated: await catalogTables(db.sql, schemas, 'authenticated') };
  owned = new Set((await db.sql`select rel::text as rel from attack_probe.scope where kind <> 'global'`).map((r) => r.rel as string));
  victimRows = await tenantRows(db.sql, VICTIM.id);
  for (const at of attackers) rowsOfA.set(at.a.id, await tenantRows(db.sql, at.a.id));

  const probes = buildProbes(() => true);
  const outcomes = await runProbes(db.sql, probes);
  tried = probes.map((probe, i) => ({ probe, outcome: outcomes[i] }));
  const own = ownTenantProbes();
  const ownOutcomes = await runProbes(db.sql, own.flatMap((x) => [x.attacker, x.twin]));
  pairs = own.map((x, i) => ({ attacker: { probe: x.attacker, outcome: ownOutcomes[2 * i] }, twin: { probe: x.twin, outcome: ownOutcomes[2 * i + 1] } }));

  const as = actors();
  const combos = new Set(tried.map(({ probe: p }) => `${p.meta.table}|${p.meta.action}|${p.meta.actor}|${p.meta.shape}`));
  const reached = tried.filter((t) => reachedDecision(t.outcome)).length;
  console.log(
    `direct-path attack: ${tablesFor.authenticated.length} tables × 4 actions × ${as.length} roles × ${as[1].shapes.length} token shapes = ` +
      `${combos.size} combinations, ${tried.length} statements (${reached} reached the database's decision, ` +
      `${tried.length - reached} stopped earlier by a constraint), ${colliders} colliding rows planted; schemas: ${schemas.join(', ')}; ` +
      `own tenant vs twin: ${pairs.length} statement pairs; ` +
      `${[...outcomes, ...ownOutcomes].filter((o) => o.retries).length} probes ran again after a deadlock with another batch`,
  );
}, 120_000);
afterAll(() => db?.close());

describe('direct-table attacks on the victim tenant', () => {
  it('has a victim row in every tenant-owned table and colliding rows in the attackers\' tenants', () => {
    // Platform admins belong to no tenant (the kit leaves them out of a tenant's people).
    const empty = tablesFor.authenticated.filter((t) => isOwned(t) && t.rel !== 'platform_admins' && !(victimRows.get(t.rel)?.length))
      .map((t) => t.rel);
    expect(empty, 'tenant tables without a victim row: give the victim one in populateTenant()').toEqual([]);
    expect(colliders).toBeGreaterThan(0);
  });

  it('every generated statement is well-formed', () => {
    expect(summarise(problems(tried).filter((p) => p.startsWith('BROKEN')))).toEqual([]);
  });

  it('reads no victim row', () => {
    expect(summarise(problems(tried).filter((p) => p.startsWith('READ')).map((p) => p.replace(/\| [^|]*: e\.g\..*$/, '')))).toEqual([]);
  });

  it('changes no victim row, not even inside the transaction', () => {
    expect(summarise(problems(tried).filter((p) => p.startsWith('CHANGED')).map((p) => p.replace(/ \(\d+ rows\)$/, '')))).toEqual([]);
  });

  it('covers every tenant-owned table: each action on it reached the database\'s decision at least once', () => {
    const missing: string[] = [];
    for (const t of tablesFor.authenticated.filter(isOwned)) {
      for (const action of ['select', 'insert', 'update', 'delete']) {
        const mine = tried.filter(({ probe }) => probe.meta.table === t.rel && probe.meta.action === action && probe.role === 'authenticated');
        if (!mine.some((x) => reachedDecision(x.outcome))) missing.push(`${t.rel} ${action} (${mine.length} probes, none decided)`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("reaches nothing of its own tenant beyond what its role there allows (ids colliding from its other tenant)", () => {
    // The pairs exist: every attacker and its twin in each of the six token shapes (a
    // renamed shape would leave OWN_SHAPES matching nothing), on every tenant table.
    for (const at of attackers) {
      expect([at.label, shapes(at).filter((x) => OWN_SHAPES.test(x.label)).length]).toEqual([at.label, 6]);
      expect([at.twin.label, shapes(at.twin).filter((x) => OWN_SHAPES.test(x.label)).length]).toEqual([at.twin.label, 6]);
    }
    const paired = new Set(pairs.map((p) => p.attacker.probe.meta.table));
    expect(tablesFor.authenticated.filter((t) => isOwned(t) && !paired.has(t.rel)).map((t) => t.rel)).toEqual([]);
    expect(pairs.length).toBeGreaterThan(attackers.length * 6 * paired.size);
    expect(summarise(pairs.map(beyondTwin).filter((x): x is string => x !== null))).toEqual([]);
    expect(summarise(problems(pairs.flatMap((p) => [p.attacker, p.twin])).filter((p) => p.startsWith('BROKEN')))).toEqual([]);
  });

  // A check of the harness, not of the policies (those are the tests above, each probe's
  // changes seen inside its own transaction): every probe is rolled back, so the suite
  // itself leaves the victim tenant as it found it for the tests that follow.
  it('the probes leave the victim tenant as they found it (each is rolled back)', async () => {
    expect(await fingerprint(db.sql, VICTIM.id)).toBe(baseline);
  });

  const NOBODY = '10000000-0000-4000-8000-0000000000ee';
  /** Each insert under the victim's id, tried again under an id nobody has and, with every
   *  feature of the victim's plan off and every limit at 0, under the victim's id again:
   *  the answers that differ (code and message, the two ids written alike). */
  async function answeredDifferently(inserts: Tried[]): Promise<string[]> {
    const nobody = await runProbes(db.sql, inserts.map(({ probe }) => ({ ...probe, sql: probe.sql.replaceAll(VICTIM.id, NOBODY) })));
    const [{ features, limits }] = await db.sql`
      select (select jsonb_object_agg(k, false) from (select distinct jsonb_object_keys(features) k from private.plans) f) as features,
             (select jsonb_object_agg(k, 0) from (select distinct jsonb_object_keys(limits) k from private.plans) l) as limits`;
    const before = await db.sql`select limits, features from private.tenant_plan_overrides where tenant_id = ${VICTIM.id}`;
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, features, limits)
      values (${VICTIM.id}, ${db.sql.json(features)}, ${db.sql.json(limits)})
      on conflict (tenant_id) do update set features = excluded.features, limits = excluded.limits`;
    let featuresOff: Awaited<ReturnType<typeof runProbes>>;
    try {
      featuresOff = await runProbes(db.sql, inserts.map(({ probe }) => probe));
    } finally {
      if (before.length) {
        await db.sql`update private.tenant_plan_overrides set features = ${db.sql.json(before[0].features)}, limits = ${
          db.sql.json(before[0].limits)
        } where tenant_id = ${VICTIM.id}`;
      } else await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${VICTIM.id}`;
    }
    const answer = (o: { code?: string; msg?: string }) => `${o.code ?? 'ok'} ${(o.msg ?? '').replaceAll(VICTIM.id, 'T').replaceAll(NOBODY, 'T')}`;
    const told: string[] = [];
    inserts.forEach(({ probe, outcome }, i) => {
      const where = Object.values(probe.meta).join(' | ');
      const answers = [answer(outcome), answer(featuresOff[i]), answer(nobody[i])];
      if (new Set(answers).size > 1) told.push(`${where}: victim ${answers[0]}, its features off ${answers[1]}, nobody's ${answers[2]}`);
    });
    return summarise(told.map((l) => l.replace(/ \| [^|]*: victim/, ': victim')));
  }

  it("answers a write under the victim's id as one under an id nobody has, whatever the victim's plan and usage", async () => {
    // Before-row triggers run before a policy's WITH CHECK: one that answers from the
    // victim's data (its plan, its features, its usage, its rows) tells an outsider what
    // the policy would not. (After the fingerprint: turning the victim's features off
    // and on again is a change of its own.)
    const inserts = tried.filter(({ probe }) => probe.meta.action === 'insert' && probe.role === 'authenticated' && probe.sql.includes(VICTIM.id));
    expect(inserts.length).toBeGreaterThan(100);
    expect(await answeredDifferently(inserts)).toEqual([]);
  });

  it("answers alike from every one of the victim's rows, in the states its triggers read", async () => {
    // Triggers read the rows a new one refers to: a call's state decides what its
    // transcript takes. The victim gets an ended call of the provider's with a segment,
    // and inserts are built from each of its rows, not only the first of each table.
    const [agent] = await db.sql`select id from public.voice_agents where tenant_id = ${VICTIM.id} limit 1`;
    const [c] = await db.sql`insert into public.voice_calls (tenant_id, agent_id, provider_call_id, status)
      values (${VICTIM.id}, ${agent.id}, 'attack-ended', 'in_progress') returning id`;
    await db.sql`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
      values (${VICTIM.id}, ${c.id}, 0, 'customer', 'hello')`;
    await db.sql`update public.voice_calls set status = 'completed' where tenant_id = ${VICTIM.id} and id = ${c.id}`;
    await snapshot(db.sql, VICTIM.id); // the victim's rows as they are now
    const rows = await tenantRows(db.sql, VICTIM.id);
    // Inserts built from each row, by the attackers with two shapes: the token naming
    // their own tenant, and the victim's.
    const probes = buildProbes((t) => t.hasTenantId, actors(), (t) => (rows.get(t.rel) ?? []).map((r) => [r]))
      .filter((p) => p.role === 'authenticated' && p.meta.action === 'insert' && /^supabase tenant_id=(B|victim)$/.test(String(p.meta.shape)));
    expect(probes.filter((p) => p.rel === 'voice_call_segments').length).toBeGreaterThan(6);
    const outcomes = await runProbes(db.sql, probes);
    expect(await answeredDifferently(probes.map((probe, i) => ({ probe, outcome: outcomes[i] })))).toEqual([]);
  });
});

describe('canary: the checker catches a planted hole', () => {
  it('a permissive policy on one tenant table is reported as read and changed', async () => {
    // Any tenant table the attackers may update and delete (privileges), so RLS alone stands in the way.
    // (macros: no trigger of its own refuses a delete, unlike memberships' last-admin rule
    // or teams' open tickets).
    const target = tablesFor.authenticated.find((t) => t.name === 'macros' && t.canDelete && t.columns.some((c) => c.update))!;
    let found: string[] = [];
    await db.sql
      .begin(async (tx) => {
        await tx.unsafe(`create policy attack_canary on ${target.rel} for all to authenticated using (true) with check (true)`);
        const probes = buildProbes((t) => t.rel === target.rel, actors().slice(1, 2)).filter((p) => p.meta.shape === 'supabase no tenant');
        const outcomes = await runProbes(tx as never, probes);
        found = problems(probes.map((probe, i) => ({ probe, outcome: outcomes[i] })));
        throw new Error('rollback');
      })
      .catch((e) => {
        if ((e as Error).message !== 'rollback') throw e;
      });
    expect(found.some((p) => p.startsWith('READ victim rows'))).toBe(true);
    expect(found.some((p) => p.startsWith('CHANGED victim rows') && p.includes('update'))).toBe(true);
    expect(found.some((p) => p.startsWith('CHANGED victim rows') && p.includes('delete'))).toBe(true);
  });
});
