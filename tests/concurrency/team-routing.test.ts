// Routing under load (issue 11 §4): 200 writers at once on two hot tickets and two
// round-robin teams — tickets moved between the teams through the API (with and without
// other fields), unassigned again, new tickets created on the teams (each picks under the
// team's lock), tickets moved straight through PostgREST (adding assign-ticket jobs), the
// job runner draining those, and an admin editing the teams. Picking an assignee locks the
// team, so every path must take the team before the ticket: no deadlock, no 5xx; then,
// with agents available again, moved tickets are assigned on both paths.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { db as pool } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import type { CallResult } from '../helpers/http.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { call } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { supabaseToken } from '../helpers/tokens.ts';
import {
  closeConcurrencyDb,
  type ConcurrencyDb,
  concurrencyDatabase,
  deadlocks,
  failures,
  runAll,
  shuffle,
  tally,
  type Writer,
  WRITERS,
} from './harness.ts';

const acme = tenants.acme.id;
const agent2 = { id: '00000000-0000-4000-8000-0000000000c2', email: 'agent2@acme.test' };
let db: ConcurrencyDb;
const tok: Record<string, string> = {};

beforeAll(async () => {
  db = await concurrencyDatabase('conc_routing');
  await db.sql`insert into public.users (id, email) values (${agent2.id}, ${agent2.email})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${agent2.id}, 'agent')`;
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
});
afterAll(async () => {
  await closeConcurrencyDb(db);
});

type Kind = 'route' | 'route_with_fields' | 'unassign' | 'create' | 'direct' | 'jobs' | 'team_edit';

/** As PostgREST would run it for the agent's token: an UPDATE of team_id, committed. */
async function directRoute(ticketId: string, teamId: string): Promise<CallResult> {
  try {
    const { asUser } = await import('../../shared/db.ts');
    await asUser({ ...supabaseClaims(users.acmeAgent, acme), role: 'authenticated' }, (tx) =>
      tx`update public.tickets set team_id = ${teamId} where tenant_id = ${acme} and id = ${ticketId}`);
    return { status: 200, body: {}, headers: new Headers() } as CallResult;
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { status: e.code === '40P01' ? 503 : 500, body: { error: { code: e.code, message: e.message } }, headers: new Headers() } as CallResult;
  }
}

it(`two tickets, two teams, ${WRITERS} concurrent routers: no deadlock, everyone assigned`, async () => {
  const teamIds: string[] = [];
  for (const name of ['Router A', 'Router B']) {
    const [t] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign)
      values (${acme}, ${name}, 'support', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id)
      values (${acme}, ${t.id}, ${users.acmeAgent.id}), (${acme}, ${t.id}, ${agent2.id})`;
    teamIds.push(t.id);
  }
  const hot: string[] = [];
  for (const title of ['Hot one', 'Hot two']) {
    const r = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title, team_id: teamIds[0] } });
    hot.push(r.body.id);
  }
  // No agent available: every pick then locks a team and finds nobody, so the tickets stay
  // unassigned and every move to a team picks again — the most team locks the paths take.
  await db.sql`update public.memberships set available = false where tenant_id = ${acme} and user_id in (${users.acmeAgent.id}, ${agent2.id})`;
  const deadlocksBefore = await deadlocks(db.sql, db.name);
  const team = (i: number) => teamIds[i % 2];
  const ticket = (i: number) => hot[i % 4 === 3 ? 1 : 0];
  const writers: Writer<Kind>[] = [
    ...Array.from({ length: 40 }, (_, i): Writer<Kind> => ({
      kind: 'route',
      run: () => call(app, 'PATCH', `/tickets/${ticket(i)}`, { token: tok.agent, body: { team_id: team(i + (i >> 1)) } }),
    })),
    ...Array.from({ length: 30 }, (_, i): Writer<Kind> => ({
      kind: 'route_with_fields',
      run: () => call(app, 'PATCH', `/tickets/${ticket(i)}`, { token: tok.admin, body: { team_id: team(i >> 1), title: `moved ${i}` } }),
    })),
    ...Array.from({ length: 40 }, (_, i): Writer<Kind> => ({
      kind: 'unassign',
      run: () => call(app, 'PUT', `/tickets/${ticket(i)}/assignee`, { token: tok.admin, body: { user_id: null } }),
    })),
    ...Array.from({ length: 40 }, (_, i): Writer<Kind> => ({
      kind: 'create',
      run: () => call(app, 'POST', '/tickets', { token: tok.agent, body: { title: `new ${i}`, team_id: team(i) } }),
    })),
    ...Array.from({ length: 30 }, (_, i): Writer<Kind> => ({ kind: 'direct', run: () => directRoute(ticket(i), team(i >> 1)) })),
    ...Array.from({ length: 10 }, (): Writer<Kind> => ({
      kind: 'jobs',
      run: async () => {
        const r = await runJobs({ tasks: ['assign-ticket'], budgetMs: 20_000 });
        return { status: r.dead ? 500 : 200, body: r, headers: new Headers() } as CallResult;
      },
    })),
    ...Array.from({ length: 10 }, (_, i): Writer<Kind> => ({
      kind: 'team_edit',
      run: () =>
        call(tenantsApp, 'PATCH', `/tenants/${acme}/teams/${team(i)}`, {
          token: tok.admin,
          body: { description: `edit ${i}`, auto_assign: 'round_robin' },
        }),
    })),
  ];
  expect(writers).toHaveLength(WRITERS);
  const outcomes = await runAll(shuffle(writers, 17), db.sql);
  // They contended: the pool's connections at work at once, and writers queued on locks.
  expect(outcomes.overlap.busy).toBeGreaterThan(1);
  expect(outcomes.overlap.lockWaiters).toBeGreaterThan(1);
  const deadlocksAfter = await deadlocks(db.sql, db.name);
  const counts = tally(outcomes);
  console.info(`[concurrency] routing: ${JSON.stringify(counts)}, deadlocks ${deadlocksAfter - deadlocksBefore}`);
  expect({ deadlocks: deadlocksAfter - deadlocksBefore, ...failures(outcomes) }).toEqual({ deadlocks: 0, serverErrors: 0, retry: 0 });
  expect(counts).toEqual({
    route: { 200: 40 },
    route_with_fields: { 200: 30 },
    unassign: { 200: 40 },
    create: { 201: 40 },
    direct: { 200: 30 },
    jobs: { 200: 10 },
    team_edit: { 200: 10 },
  });

  expect((await db.sql`select id from private.jobs where task = 'assign-ticket' and dead_at is not null`).length).toBe(0);

  // Agents back: a hot ticket moved to the other team now gets one of them, through the
  // API at once and through the job after a direct move.
  await db.sql`update public.memberships set available = true where tenant_id = ${acme} and user_id in (${users.acmeAgent.id}, ${agent2.id})`;
  for (const [i, id] of hot.entries()) {
    await call(app, 'PUT', `/tickets/${id}/assignee`, { token: tok.admin, body: { user_id: null } });
    const [{ team_id }] = await db.sql`select team_id from public.tickets where id = ${id}`;
    const other = teamIds.find((t) => t !== team_id)!;
    if (i === 0) await call(app, 'PATCH', `/tickets/${id}`, { token: tok.agent, body: { team_id: other } });
    else await directRoute(id, other);
  }
  await runJobs({ tasks: ['assign-ticket'] });
  const assignees = await pool()`select assigned_to from public.tickets where id = any (${hot})`;
  for (const a of assignees) expect([users.acmeAgent.id, agent2.id]).toContain(a.assigned_to);
});

it('a team change through the API waits for the team before it touches the ticket (the lock order)', async () => {
  const [team] = await db.sql`select id from public.teams where tenant_id = ${acme} and name = 'Router B'`;
  const t = await call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Waits for its team' } });
  expect(t.body.assigned_to).toBeNull();
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: (pid: number) => void;
  const teamLocked = new Promise<number>((r) => (locked = r));
  // Another picker holds the team.
  const holder = db.sql.begin(async (tx) => {
    const [{ pid }] = await tx`select pg_backend_pid() as pid, 1 from public.teams where id = ${team.id} for no key update`;
    locked(pid);
    await held;
  });
  const holderPid = await teamLocked;
  const patch = call(app, 'PATCH', `/tickets/${t.body.id}`, { token: tok.agent, body: { team_id: team.id, title: 'Renamed too' } });
  // The request is blocked on the team (else the probe below would prove nothing).
  expect(await someoneWaitsFor(db.sql, holderPid)).toBe(true);
  // While it waits for the team, the ticket is free: it has not been locked out of order.
  const probe = await db.sql.begin(async (tx) => {
    await tx`set local lock_timeout = '200ms'`;
    await tx`select id from public.tickets where id = ${t.body.id} for no key update`;
    return 'free';
  }).catch((e: { code?: string }) => e.code ?? 'failed'); // 55P03: the request holds it
  release();
  await holder;
  const r = await patch;
  expect(probe).toBe('free');
  expect(r.status).toBe(200);
  expect((await db.sql`select team_id, title from public.tickets where id = ${t.body.id}`)[0]).toEqual({ team_id: team.id, title: 'Renamed too' });
});

it('a pick passes over an agent whose membership is being changed (demoted, removed) rather than waiting to be refused', async () => {
  const [team] = await db.sql`insert into public.teams (tenant_id, name, department, auto_assign)
    values (${acme}, 'Passes over', 'support', 'round_robin') returning id`;
  await db.sql`insert into public.team_members (tenant_id, team_id, user_id)
    values (${acme}, ${team.id}, ${users.acmeAgent.id}), (${acme}, ${team.id}, ${agent2.id})`;
  await db.sql`update public.memberships set available = true where tenant_id = ${acme} and user_id in (${users.acmeAgent.id}, ${agent2.id})`;
  // Round robin: the second agent is next.
  await db.sql`update public.teams set last_assigned_user_id = ${users.acmeAgent.id} where id = ${team.id}`;
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  let locked!: (pid: number) => void;
  const demoting = new Promise<number>((r) => (locked = r));
  // An admin's demotion of that agent, not yet committed.
  const holder = db.sql.begin(async (tx) => {
    const [{ pid }] = await tx`select pg_backend_pid() as pid`;
    await tx`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${agent2.id}`;
    locked(pid);
    await held;
  });
  const holderPid = await demoting;
  let done = false;
  const post = call(app, 'POST', '/tickets', { token: tok.agent, body: { title: 'Picked meanwhile', team_id: team.id } })
    .finally(() => (done = true));
  // Either the request ends while the demotion is open, or it waits for it.
  let outcome = 'assigned';
  while (!done) {
    const [w] = await db.sql`select count(*)::int as n from pg_catalog.pg_stat_activity a
      where a.datname = pg_catalog.current_database() and ${holderPid}::int = any (pg_catalog.pg_blocking_pids(a.pid))`;
    if (w.n > 0) {
      outcome = 'waits';
      break;
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  release();
  await holder;
  const r = await post;
  await db.sql`update public.memberships set role = 'agent' where tenant_id = ${acme} and user_id = ${agent2.id}`;
  expect(outcome).toBe('assigned');
  expect([r.status, r.body.assigned_to]).toEqual([201, users.acmeAgent.id]);
});
