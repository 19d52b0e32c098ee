// The per-tenant ticket counter and a round-robin team: 200 concurrent creates each.
// Numbers stay gap-free (a refused create gives its number back), idempotent retries
// create once, and round robin deals tickets out exactly in turn, in number (= commit)
// order; no deadlock, no 5xx, one audit row per ticket, in number order.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { call } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { supabaseToken } from '../helpers/tokens.ts';
import {
  closeConcurrencyDb,
  type ConcurrencyDb,
  concurrencyDatabase,
  deadlocks,
  failures,
  runAll,
  shuffle,
  statisticsAgainstRecount,
  tally,
  type Writer,
  WRITERS,
} from './harness.ts';

const acme = tenants.acme.id;
const globex = tenants.globex.id;
let db: ConcurrencyDb;
const tok: Record<string, string> = {};

beforeAll(async () => {
  db = await concurrencyDatabase('conc_numbers');
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
});
afterAll(async () => await closeConcurrencyDb(db));

/** Ticket INSERT audit rows of a tenant since `mark`, in audit order, with their numbers. */
async function auditedNumbers(tenantId: string, mark: number) {
  return (await db.sql`
    select (new_data ->> 'number')::int as number from public.audit_logs
    where id > ${mark} and tenant_id = ${tenantId} and table_name = 'tickets' and action = 'INSERT' order by id`)
    .map((r) => r.number as number);
}

it(`the ticket counter: ${WRITERS} concurrent creates give gap-free numbers 1..N`, async () => {
  const [{ mark }] = await db.sql`select coalesce(max(id), 0)::int as mark from public.audit_logs`;
  const deadlocksBefore = await deadlocks(db.sql, db.name);
  type Kind = 'create' | 'refused' | 'idempotent' | 'other_tenant';
  const writers: Writer<Kind>[] = [
    ...Array.from({ length: 150 }, (_, i): Writer<Kind> => ({
      kind: 'create',
      run: () => call(app, 'POST', '/tickets', { token: [tok.user, tok.agent, tok.admin][i % 3], body: { title: `Counter ticket ${i}` } }),
    })),
    // Refused inside the insert, after the number was drawn: the number goes back.
    ...Array.from({ length: 10 }, (_, i): Writer<Kind> => ({
      kind: 'refused',
      run: () => call(app, 'POST', '/tickets', { token: tok.agent, body: { title: `Doomed ticket ${i}`, assigned_to: users.acmeUser.id } }),
    })),
    // Ten keys sent twice each at the same time: ten tickets.
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'idempotent',
      wants: `key-${i % 10}`,
      run: () =>
        call(app, 'POST', '/tickets', {
          token: tok.user,
          body: { title: `Idempotent ticket ${i % 10}` },
          headers: { 'idempotency-key': `key-${i % 10}` },
        }),
    })),
    // Another tenant counts on its own, at the same time.
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'other_tenant',
      run: () => call(app, 'POST', '/tickets', { token: tok.globexAdmin, body: { title: `Globex ticket ${i}` } }),
    })),
  ];
  expect(writers).toHaveLength(WRITERS);
  const outcomes = await runAll(shuffle(writers), db.sql);
  // They contended: the pool's connections at work at once, and writers queued on locks.
  expect(outcomes.overlap.busy).toBeGreaterThan(1);
  expect(outcomes.overlap.lockWaiters).toBeGreaterThan(1);
  const deadlocksAfter = await deadlocks(db.sql, db.name);
  const counts = tally(outcomes);
  console.info(`[concurrency] ticket counter: ${JSON.stringify(counts)}, deadlocks ${deadlocksAfter - deadlocksBefore}`);

  expect({ deadlocks: deadlocksAfter - deadlocksBefore, ...failures(outcomes) }).toEqual({ deadlocks: 0, serverErrors: 0, retry: 0 });
  expect(counts).toEqual({ create: { 201: 150 }, refused: { 422: 10 }, idempotent: { 201: 20 }, other_tenant: { 201: 20 } });
  // Both requests of a key answered the same ticket.
  for (let k = 0; k < 10; k++) {
    const same = outcomes.filter((o) => o.wants === `key-${k}`).map((o) => o.result.body.id);
    expect(new Set(same).size).toBe(1);
  }

  const numbers = async (tenantId: string) =>
    (await db.sql`select number::int from public.tickets where tenant_id = ${tenantId} order by number`).map((r) => r.number);
  const range = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
  expect(await numbers(acme)).toEqual(range(160));
  expect(await numbers(globex)).toEqual(range(20));
  const [counter] = await db.sql`select last_number::int from private.ticket_counters where tenant_id = ${acme}`;
  expect(counter.last_number).toBe(160);
  // One audit row per ticket, written in number order: creates took turns on the counter
  // from drawing the number to commit.
  expect(await auditedNumbers(acme, mark)).toEqual(range(160));
  expect(await auditedNumbers(globex, mark)).toEqual(range(20));
  const stats = await statisticsAgainstRecount(db.sql, acme);
  expect(stats.maintained).toEqual(stats.recount);
}, 60_000);

it(`a round-robin team: ${WRITERS} concurrent creates are dealt out exactly in turn`, async () => {
  // Four agents on a round-robin team.
  const agents = Array.from({ length: 4 }, (_, i) => ({
    id: `00000000-0000-4000-8000-0000000001${String(i).padStart(2, '0')}`,
    email: `rr${i}@acme.test`,
  }));
  const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign)
    values (${acme}, 'Round robin', 'support', 'round_robin') returning id`;
  for (const a of agents) {
    await db.sql`insert into public.users (id, email) values (${a.id}, ${a.email})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${a.id}, 'agent')`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values (${acme}, ${team.id}, ${a.id})`;
  }
  const [{ before }] = await db.sql`select coalesce(max(number), 0)::int as before from public.tickets where tenant_id = ${acme}`;
  const [{ mark }] = await db.sql`select coalesce(max(id), 0)::int as mark from public.audit_logs`;
  const deadlocksBefore = await deadlocks(db.sql, db.name);

  const writers: Writer<'create'>[] = Array.from({ length: WRITERS }, (_, i) => ({
    kind: 'create',
    run: () => call(app, 'POST', '/tickets', { token: i % 2 ? tok.agent : tok.admin, body: { title: `Dealt ticket ${i}`, team_id: team.id } }),
  }));
  const outcomes = await runAll(writers, db.sql);
  const deadlocksAfter = await deadlocks(db.sql, db.name);
  const counts = tally(outcomes);
  // They contended for the team's pointer (one after another, every assertion below holds).
  expect(outcomes.overlap.busy).toBeGreaterThan(1);
  expect(outcomes.overlap.lockWaiters).toBeGreaterThan(1);
  console.info(`[concurrency] round-robin team: ${JSON.stringify(counts)}, deadlocks ${deadlocksAfter - deadlocksBefore}`);

  expect({ deadlocks: deadlocksAfter - deadlocksBefore, ...failures(outcomes) }).toEqual({ deadlocks: 0, serverErrors: 0, retry: 0 });
  expect(counts).toEqual({ create: { 201: WRITERS } });

  // In number order the assignees cycle through the agents in their stable order.
  const dealt = await db.sql`select number::int, assigned_to from public.tickets where tenant_id = ${acme} and team_id = ${team.id} order by number`;
  const order = agents.map((a) => a.id).sort();
  expect(dealt.map((t) => t.number)).toEqual(Array.from({ length: WRITERS }, (_, i) => before + 1 + i));
  expect(dealt.map((t) => t.assigned_to)).toEqual(dealt.map((_, i) => order[i % 4]));
  const perAgent = new Map<string, number>();
  for (const t of dealt) perAgent.set(t.assigned_to, (perAgent.get(t.assigned_to) ?? 0) + 1);
  expect([...perAgent.values()]).toEqual([50, 50, 50, 50]);
  const [{ last_assigned_user_id }] = await db.sql`select last_assigned_user_id from public.teams where id = ${team.id}`;
  expect(last_assigned_user_id).toBe(dealt.at(-1)!.assigned_to);
  // One audit row per created ticket, in number order, and one per turn of the team's
  // pointer.
  expect(await auditedNumbers(acme, mark)).toEqual(dealt.map((t) => t.number));
  const pointer = await db.sql`
    select new_data ->> 'last_assigned_user_id' as picked from public.audit_logs
    where id > ${mark} and table_name = 'teams' and record_key ->> 'id' = ${team.id} and action = 'UPDATE' order by id`;
  const turns = dealt.map((t) => t.assigned_to).filter((a, i, all) => i === 0 || a !== all[i - 1]);
  expect(pointer.map((p) => p.picked)).toEqual(turns);
}, 60_000);
