// The statistics rows: every ticket change moves a count from one (status, priority)
// cell to another, so 200 concurrent status changes (in both directions between the
// same two cells), re-prioritisations and creates all write the same few counter rows. No deadlock, no
// 5xx; the counters equal a recount, and each ticket's audit rows chain to its final
// state.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { call } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
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
let db: ConcurrencyDb;
const tok: Record<string, string> = {};

beforeAll(async () => {
  db = await concurrencyDatabase('conc_stats');
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
});
afterAll(async () => await closeConcurrencyDb(db));

type Kind = 'status' | 'priority' | 'create';
const PRIORITIES = ['low', 'medium', 'high', 'urgent'];

it(`${WRITERS} concurrent writers moving counts between the statistics rows: no deadlock, counters equal a recount`, async () => {
  // 180 tickets on the agent's team: 80 open and 80 pending (medium), 20 to re-prioritise.
  const ids: string[] = [];
  for (let i = 0; i < 180; i++) {
    const [t] = await db.sql`
      insert into public.tickets (tenant_id, title, created_by, team_id, priority)
      values (${acme}, ${`Statistics ticket ${i}`}, ${users.acmeUser.id}, ${teams.acme}, 'medium') returning id`;
    if (i < 160 && i % 2) await db.sql`update public.tickets set status = 'pending' where id = ${t.id}`;
    ids.push(t.id);
  }
  const [{ mark }] = await db.sql`select coalesce(max(id), 0)::bigint as mark from public.audit_logs`;
  const initial = new Map((await db.sql`select id, status, priority from public.tickets where id = any(${ids})`).map((t) => [t.id, t]));
  const deadlocksBefore = await deadlocks(db.sql, db.name);

  const staff = [tok.agent, tok.admin];
  // Opposite moves at once: open → pending on half the tickets while pending → open on
  // the other half (each moves a count between the same two rows, in opposite
  // directions), re-prioritisations, and new tickets counting in as open.
  const writers: Writer<Kind>[] = [
    ...Array.from({ length: 160 }, (_, i): Writer<Kind> => ({
      kind: 'status',
      run: () => call(app, 'POST', `/tickets/${ids[i]}/status`, { token: staff[i % 2], body: { status: i % 2 ? 'open' : 'pending' } }),
    })),
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'priority',
      run: () => call(app, 'PATCH', `/tickets/${ids[160 + i]}`, { token: staff[i % 2], body: { priority: PRIORITIES[i % 4] } }),
    })),
    ...Array.from({ length: 20 }, (_, i): Writer<Kind> => ({
      kind: 'create',
      run: () => call(app, 'POST', '/tickets', { token: i % 2 ? tok.user : tok.admin, body: { title: `New ticket ${i}` } }),
    })),
  ];
  expect(writers).toHaveLength(WRITERS);
  const outcomes = await runAll(shuffle(writers), db.sql);
  // They contended: the pool's connections at work at once, and writers queued on locks.
  expect(outcomes.overlap.busy).toBeGreaterThan(1);
  expect(outcomes.overlap.lockWaiters).toBeGreaterThan(1);
  const deadlocksAfter = await deadlocks(db.sql, db.name);
  const counts = tally(outcomes);
  console.info(`[concurrency] statistics rows: ${JSON.stringify(counts)}, deadlocks ${deadlocksAfter - deadlocksBefore}`);

  expect({ deadlocks: deadlocksAfter - deadlocksBefore, ...failures(outcomes) }).toEqual({ deadlocks: 0, serverErrors: 0, retry: 0 });
  expect(counts).toEqual({ status: { 200: 160 }, priority: { 200: 20 }, create: { 201: 20 } });

  // The maintained statistics are exactly a recount of the tickets.
  const stats = await statisticsAgainstRecount(db.sql, acme);
  expect(stats.maintained).toEqual(stats.recount);
  expect(stats.maintained.counts.reduce((n, c) => n + c.n, 0)).toBe(200);

  // Each ticket's audited changes chain from its initial state to its final one, and
  // each accepted status change that moved the ticket left one timeline event.
  const audit = await db.sql`
    select record_key ->> 'id' as ticket_id, old_data, new_data, changed_fields from public.audit_logs
    where id > ${mark} and table_name = 'tickets' and action = 'UPDATE' and record_key ->> 'id' = any(${ids}) order by audit_logs.id`;
  const finals = await db.sql`select id, status, priority from public.tickets where id = any(${ids})`;
  for (const t of finals) {
    let state = { status: initial.get(t.id)!.status, priority: initial.get(t.id)!.priority };
    for (const row of audit.filter((a) => a.ticket_id === t.id)) {
      expect({ status: row.old_data.status, priority: row.old_data.priority }).toEqual(state);
      state = { status: row.new_data.status, priority: row.new_data.priority };
    }
    expect(state).toEqual({ status: t.status, priority: t.priority });
  }
  const [{ n: statusEvents }] = await db.sql`
    select count(*)::int as n from public.ticket_events where ticket_id = any(${ids}) and type = 'status_changed'`;
  const statusAudits = audit.filter((a) => a.changed_fields.includes('status')).length;
  expect(statusAudits).toBe(160);
  expect(statusEvents).toBe(160 + 80); // + the 80 set pending while arranging
}, 60_000);
