// Automation rules (issue 16 §1) through the tickets function in-process and the real job
// runner, with a real database: who keeps rules, conditions and actions checked on both
// paths, evaluation deferred through the queue and applied as the rule (audit actor),
// ordering, loops, a failing action recorded and rolled back, time-based rules from the
// sweep, and 100 tickets changed at once under 20 rules — each applied exactly once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;

beforeAll(async () => {
  db = await freshDatabase('fn_automation');
  // The customer here files more tickets in a run than a customer's daily allowance
  // (tests/functions/customer-ticket-cap.test.ts is about that).
  await db.sql`update public.tenants set settings = settings || '{"customer_tickets_per_day": 10000}'`;
  auth = await configureAuth(db.url);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

type Body = Record<string, unknown>;
const createRule = (body: Body, token = tok.admin) => call(app, 'POST', '/tickets/automation-rules', { token, body });
async function rule(body: Body): Promise<string> {
  const r = await createRule({ conditions: {}, ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}
/** Switches every rule off, so each test sees only its own. */
const quiet = () => db.sql`update public.automation_rules set active = false`;
async function ticket(title = 'Automation target', token = tok.user): Promise<string> {
  const r = await call(app, 'POST', '/tickets', { token, body: { title } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id as string;
}
/** Runs automation jobs until none is left (a loop would never end: bounded). */
async function drain(workers = 1): Promise<number> {
  let claimed = 0;
  for (let round = 0; round < 40; round++) {
    const reports = await Promise.all(
      Array.from({ length: workers }, (_, i) => runJobs({ tasks: ['automation'], budgetMs: 30_000, workerId: `w${i}` })),
    );
    const n = reports.reduce((sum, r) => sum + r.claimed, 0);
    claimed += n;
    const [{ left }] = await db.sql`select count(*)::int as left from private.jobs where task = 'automation' and dead_at is null`;
    if (n === 0 && left === 0) return claimed;
  }
  throw new Error('the automation queue did not drain');
}
const state = async (id: string) => {
  const [t] = await db.sql<{ status: string; priority: string; tags: string[]; team_id: string | null }[]>`
    select status, priority, tags, team_id from public.tickets where id = ${id}`;
  const messages = await db.sql`select type, content from public.ticket_messages where ticket_id = ${id} order by created_at, id`;
  return { ...t, messages: messages.map((m) => `${m.type}:${m.content}`) };
};
const runsOf = (ruleId: string) =>
  db.sql<{ ticket_id: string; outcome: string; event: string; failed_action: number | null; error: string | null }[]>`
    select ticket_id, outcome, event, failed_action, error from public.automation_runs where rule_id = ${ruleId} order by id`;

describe('keeping rules', () => {
  it('are listed in pages by event, then position, every rule once, with next until the last', async () => {
    await db.sql`delete from public.automation_rules where tenant_id = ${globex}`;
    const made: string[] = [];
    for (const [i, event] of ['ticket.updated', 'ticket.created', 'ticket.updated', 'message.created', 'ticket.created'].entries()) {
      const r = await createRule({ name: `Paged ${i}`, event, conditions: {}, actions: [{ type: 'add_tags', tags: [`p${i}`] }] }, tok.globexAdmin);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      made.push(r.body.id);
    }
    const whole = await call(app, 'GET', '/tickets/automation-rules', { token: tok.globexAdmin });
    expect([whole.body.items.length, whole.body.next]).toEqual([5, null]);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 5; page++) {
      const r: { status: number; body: { items: { id: string }[]; next: string | null } } = await call(
        app, 'GET', `/tickets/automation-rules?limit=2${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.globexAdmin });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      seen.push(...r.body.items.map((x) => x.id));
      cursor = r.body.next;
      if (!cursor) break;
    }
    expect(seen).toEqual(whole.body.items.map((x: { id: string }) => x.id));
    expect([...seen].sort()).toEqual([...made].sort());
    expect(whole.body.items.map((x: { event: string }) => x.event)).toEqual(
      ['message.created', 'ticket.created', 'ticket.created', 'ticket.updated', 'ticket.updated'],
    );
    // A forged cursor is a 422 naming it.
    const forged = btoa(JSON.stringify(['ticket.created', 'x', '2026-01-01 00:00:00+00', made[0]])).replace(/=+$/, '');
    const bad = await call(app, 'GET', `/tickets/automation-rules?cursor=${forged}`, { token: tok.globexAdmin });
    expect([bad.status, bad.body.error.details.fields[0].field]).toEqual([422, 'cursor']);
    await db.sql`delete from public.automation_rules where tenant_id = ${globex}`;
  });

  it('admins keep them; agents, customers and other tenants neither see nor change them', async () => {
    const id = await rule({ name: 'Kept', event: 'ticket.created', actions: [{ type: 'set_priority', priority: 'high' }] });
    const before = (await db.sql`select count(*)::int as n from public.automation_rules`)[0].n;
    const body = { name: 'Nope', event: 'ticket.created', actions: [{ type: 'set_priority', priority: 'low' }] };
    expect((await createRule(body, tok.agent)).status).toBe(403);
    expect((await createRule(body, tok.user)).status).toBe(403);
    expect((await call(app, 'GET', '/tickets/automation-rules', { token: tok.agent })).status).toBe(403);
    // Another tenant's admin, with this tenant's rule id, on every route.
    for (
      const [method, path, b] of [
        ['GET', `/tickets/automation-rules/${id}`],
        ['PATCH', `/tickets/automation-rules/${id}`, { active: false }],
        ['DELETE', `/tickets/automation-rules/${id}`],
        ['GET', `/tickets/automation-rules/${id}/runs`],
      ] as const
    ) {
      const r = await call(app, method, path, { token: tok.globexAdmin, body: b });
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    const theirs = await call(app, 'GET', '/tickets/automation-rules', { token: tok.globexAdmin });
    expect(theirs.body.items).toEqual([]);
    expect((await db.sql`select count(*)::int as n from public.automation_rules`)[0].n).toBe(before);
    expect((await db.sql`select active from public.automation_rules where id = ${id}`)[0].active).toBe(true);
    // A name is the tenant's once.
    const again = await createRule({ name: 'Kept', event: 'ticket.created', actions: [{ type: 'set_priority', priority: 'low' }] });
    expect(again.status).toBe(409);
    await quiet();
  });

  it('bad events, conditions, actions and timings are 422s on both paths and change nothing', async () => {
    const before = (await db.sql`select count(*)::int as n from public.automation_rules`)[0].n;
    const ok = { name: 'Bad', event: 'ticket.created', actions: [{ type: 'set_priority', priority: 'high' }] };
    const bad: Body[] = [
      { ...ok, event: 'ticket.exploded' },
      { ...ok, actions: [] },
      { ...ok, actions: [{ type: 'drop_table' }] },
      { ...ok, actions: [{ type: 'emit_webhook' }] },
      { ...ok, conditions: { all: [{ field: 'password', op: 'eq', value: 'x' }] } },
      { ...ok, conditions: { all: [{ field: 'status', op: 'like', value: 'x' }] } },
      { ...ok, conditions: { all: [{ field: 'status', op: 'in', value: [] }] } },
      { ...ok, conditions: { all: [{ field: 'status', op: 'is_empty', value: 'x' }] } },
      { ...ok, conditions: { none: [] } },
      { ...ok, event: 'ticket.pending_for' }, // a time-based rule needs after_minutes
      { ...ok, after_minutes: 60 }, // and only it
      { ...ok, event: 'ticket.pending_for', after_minutes: 0 },
    ];
    for (const b of bad) {
      const r = await createRule(b);
      expect(r.status, JSON.stringify(b)).toBe(422);
      expect(errorCode(r)).toBe('validation_failed');
    }
    // Straight through PostgREST, past zod: the table's checks refuse the same.
    const claims = supabaseClaims(users.acmeAdmin, acme);
    for (
      const [conditions, actions, event, after] of [
        [{}, [{ type: 'drop_table' }], 'ticket.created', null],
        [{ all: [{ field: 'password', op: 'eq', value: 'x' }] }, [{ type: 'set_priority', priority: 'high' }], 'ticket.created', null],
        [{}, [{ type: 'set_priority', priority: 'high' }], 'ticket.pending_for', null],
        [{}, [{ type: 'set_priority', priority: 'high' }], 'ticket.created', 5],
      ] as const
    ) {
      const r = await probeAs(db.sql, 'authenticated', claims, (tx) =>
        tx`insert into public.automation_rules (tenant_id, name, event, after_minutes, conditions, actions)
           values (${acme}, 'Direct', ${event}, ${after}, ${tx.json(conditions)}, ${tx.json(actions as never)})`);
      expect(r.ok, JSON.stringify(actions)).toBe(false);
      if (!r.ok) expect(r.error.code).toBe('23514');
    }
    // Admins cannot write runs by hand.
    const forged = await probeAs(db.sql, 'authenticated', claims, (tx) =>
      tx`insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome)
         select ${acme}, r.id, t.id, 'ticket.created', gen_random_uuid(), 'applied'
         from public.automation_rules r, public.tickets t where r.tenant_id = ${acme} and t.tenant_id = ${acme} limit 1`);
    expect(forged.ok).toBe(false);
    expect((await db.sql`select count(*)::int as n from public.automation_rules`)[0].n).toBe(before);
  });
});

describe('applying rules', () => {
  it('defers evaluation to the queue, applies matching rules as the rule, and records the run', async () => {
    await quiet();
    const id = await rule({
      name: 'Refunds to billing',
      event: 'ticket.created',
      conditions: { all: [{ field: 'title', op: 'contains', value: 'REFUND' }] },
      actions: [
        { type: 'set_priority', priority: 'high' },
        { type: 'add_tags', tags: ['billing'] },
        { type: 'add_note', content: 'Routed by a rule' },
      ],
    });
    const refund = await ticket('I want a refund now');
    const other = await ticket('Hello there, a question');
    // Nothing happens in the request: the job does it.
    expect((await state(refund)).priority).toBe('medium');
    await drain();
    expect(await state(refund)).toMatchObject({ priority: 'high', tags: ['billing'], messages: ['note:Routed by a rule'] });
    expect(await state(other)).toMatchObject({ priority: 'medium', tags: [], messages: [] });
    expect((await runsOf(id)).map((r) => [r.ticket_id, r.outcome])).toEqual([[refund, 'applied']]);
    // The audit trail names the rule as the actor of each change it made.
    const trail = await db.sql`
      select table_name, actor_issuer, actor_subject, actor_role from public.audit_logs
      where tenant_id = ${acme} and actor_subject = ${'rule:' + id} order by id`;
    expect(trail.map((a) => a.table_name)).toEqual(expect.arrayContaining(['tickets', 'ticket_messages']));
    expect(trail.every((a) => a.actor_issuer === 'automation' && a.actor_role === 'service_role')).toBe(true);
    const runs = await call(app, 'GET', `/tickets/automation-rules/${id}/runs`, { token: tok.admin });
    expect(runs.status).toBe(200);
    expect(runs.body.items).toHaveLength(1);
    expect(runs.body.items[0]).toMatchObject({ ticket_id: refund, outcome: 'applied', actions_applied: 3 });
  });

  it('runs rules by position, each seeing what the earlier ones did', async () => {
    await quiet();
    await rule({
      name: 'Second: tag urgent ones',
      event: 'ticket.created',
      position: 2,
      conditions: { all: [{ field: 'priority', op: 'eq', value: 'urgent' }] },
      actions: [{ type: 'add_tags', tags: ['paged'] }],
    });
    await rule({
      name: 'First: outages are urgent',
      event: 'ticket.created',
      position: 1,
      conditions: { any: [{ field: 'title', op: 'contains', value: 'outage' }, { field: 'title', op: 'contains', value: 'down' }] },
      actions: [{ type: 'set_priority', priority: 'urgent' }],
    });
    const t = await ticket('Total outage in region');
    await drain();
    expect(await state(t)).toMatchObject({ priority: 'urgent', tags: ['paged'] });
    // In the other order the tagging rule looks before the priority changes.
    await db.sql`update public.automation_rules set position = 3 where name = 'First: outages are urgent'`;
    const u = await ticket('Site is down again');
    await drain();
    expect(await state(u)).toMatchObject({ priority: 'urgent', tags: [] });
  });

  it('conditions read the message and the change that raised the event', async () => {
    await quiet();
    const onMessage = await rule({
      name: 'Customer says urgent',
      event: 'message.created',
      conditions: {
        all: [{ field: 'message.author', op: 'eq', value: 'requester' }, { field: 'message.content', op: 'contains', value: 'urgent' }],
      },
      actions: [{ type: 'set_priority', priority: 'urgent' }],
    });
    const onChange = await rule({
      name: 'Resolved gets a tag',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'changed', op: 'contains', value: 'status' }, { field: 'status', op: 'eq', value: 'resolved' }] },
      actions: [{ type: 'add_tags', tags: ['done'] }],
    });
    const t = await ticket('A message-driven ticket');
    expect((await call(app, 'POST', `/tickets/${t}/messages`, { token: tok.user, body: { content: 'Not urgent at all?' } })).status).toBe(201);
    expect((await call(app, 'POST', `/tickets/${t}/messages`, { token: tok.admin, body: { content: 'urgent for me' } })).status).toBe(201);
    await drain();
    // Both messages contain "urgent"; only the requester's counts. The priority change
    // is an update that did not change the status: the other rule stays out.
    expect(await state(t)).toMatchObject({ priority: 'urgent', tags: [] });
    expect((await runsOf(onMessage)).map((r) => r.outcome)).toEqual(['applied']);
    expect((await call(app, 'POST', `/tickets/${t}/status`, { token: tok.admin, body: { status: 'resolved' } })).status).toBe(200);
    await drain();
    expect((await state(t)).tags).toEqual(['done']);
    expect((await runsOf(onChange)).length).toBe(1);
  });

  it('never triggers itself: its own changes do not raise it again', async () => {
    await quiet();
    const self = await rule({ name: 'Tag every change', event: 'ticket.updated', actions: [{ type: 'add_tags', tags: ['seen'] }] });
    const t = await ticket('Self-loop ticket');
    expect((await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { priority: 'high' } })).status).toBe(200);
    await drain();
    // Its tag change is an update too, raised by the rule itself: not evaluated by it.
    expect((await runsOf(self)).map((r) => r.outcome)).toEqual(['applied']);
    expect((await state(t)).tags).toEqual(['seen']);
  });

  it('two rules that undo each other stop: a rule never runs twice in one chain of events', async () => {
    await quiet();
    const down = await rule({
      name: 'High goes low',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'priority', op: 'eq', value: 'high' }] },
      actions: [{ type: 'set_priority', priority: 'low' }],
    });
    const up = await rule({
      name: 'Low goes high',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'priority', op: 'eq', value: 'low' }] },
      actions: [{ type: 'set_priority', priority: 'high' }],
    });
    const t = await ticket('Ping pong ticket');
    expect((await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { priority: 'high' } })).status).toBe(200);
    await drain();
    // The agent's change: both rules apply in turn (high → low → high), each raising an
    // event. The one "High goes low" raised is answered by neither ("Low goes high"
    // sees high); the one "Low goes high" raised is answered by "High goes low" (→ low);
    // that one's event has both rules in its chain. Without the guard: forever.
    expect((await runsOf(down)).map((r) => r.outcome)).toEqual(['applied', 'applied']);
    expect((await runsOf(up)).map((r) => r.outcome)).toEqual(['applied']);
    expect((await state(t)).priority).toBe('low');
    const [{ dead }] = await db.sql`select count(*)::int as dead from private.jobs where task = 'automation' and dead_at is not null`;
    expect(dead).toBe(0);
  });

  it('two rules handing a ticket between teams stop, across the auto-assignment job', async () => {
    await quiet();
    // Two round-robin teams of one agent each.
    const [t1, t2] = await db.sql<{ id: string }[]>`insert into public.teams (tenant_id, name, department, auto_assign)
      values (${acme}, 'Ping team', 'support', 'round_robin'), (${acme}, 'Pong team', 'support', 'round_robin') returning id`;
    await db.sql`insert into public.team_members (tenant_id, team_id, user_id) values
      (${acme}, ${t1.id}, ${users.acmeAgent.id}), (${acme}, ${t2.id}, ${users.acmeAgent.id})`;
    // Whenever the ticket is assigned on one team, hand it to the other, unassigned: the
    // other team's auto-assignment (a job) assigns it again, and so on.
    const ping = await rule({
      name: 'Ping to pong',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'changed', op: 'contains', value: 'assigned_to' }, { field: 'assigned_to', op: 'is_not_empty' }, { field: 'team_id', op: 'eq', value: t1.id }] },
      actions: [{ type: 'assign', user_id: null }, { type: 'set_team', team_id: t2.id }],
    });
    const pong = await rule({
      name: 'Pong to ping',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'changed', op: 'contains', value: 'assigned_to' }, { field: 'assigned_to', op: 'is_not_empty' }, { field: 'team_id', op: 'eq', value: t2.id }] },
      actions: [{ type: 'assign', user_id: null }, { type: 'set_team', team_id: t1.id }],
    });
    const t = await ticket('Hot potato');
    await db.sql`update public.tickets set team_id = ${t1.id}, assigned_to = ${users.acmeAgent.id} where id = ${t}`;
    for (let round = 0; round < 10; round++) {
      const r = await runJobs({ tasks: ['automation', 'assign-ticket'], budgetMs: 30_000 });
      if (r.claimed === 0) break;
    }
    // The setup's assignment: ping hands it to pong's team; its assignment (the job,
    // chain [ping]) makes pong hand it back (chain [ping, pong]); that assignment's event
    // has both in its chain. Without the chain in the job: for ever.
    expect((await runsOf(ping)).map((r) => r.outcome)).toEqual(['applied']);
    expect((await runsOf(pong)).map((r) => r.outcome)).toEqual(['applied']);
    const [left] = await db.sql`select count(*)::int as n from private.jobs where task in ('automation', 'assign-ticket') and dead_at is null`;
    expect(left.n).toBe(0);
    const [now] = await db.sql`select team_id, assigned_to from public.tickets where id = ${t}`;
    expect(now).toEqual({ team_id: t1.id, assigned_to: users.acmeAgent.id });
  });

  it('a refused action rolls its rule back and is recorded on it; the other rules still apply', async () => {
    await quiet();
    const broken = await rule({
      name: 'Closes too early',
      event: 'ticket.created',
      position: 1,
      actions: [{ type: 'add_tags', tags: ['half-done'] }, { type: 'set_status', status: 'closed' }],
    });
    const fine = await rule({ name: 'Still runs', event: 'ticket.created', position: 2, actions: [{ type: 'set_priority', priority: 'low' }] });
    const t = await ticket('An open ticket cannot close');
    await drain();
    // open → closed is not a transition: the tag of the same rule is undone too.
    expect(await state(t)).toMatchObject({ status: 'open', tags: [], priority: 'low' });
    const [run] = await runsOf(broken);
    expect(run).toMatchObject({ ticket_id: t, outcome: 'failed', failed_action: 1 });
    expect(run.error).toMatch(/transition|closed/i);
    expect((await runsOf(fine)).map((r) => r.outcome)).toEqual(['applied']);
    const shown = await call(app, 'GET', `/tickets/automation-rules/${broken}`, { token: tok.admin });
    expect(shown.body.last_failure).toMatchObject({ ticket_id: t, outcome: 'failed', failed_action: 1 });
    const failedOnly = await call(app, 'GET', `/tickets/automation-rules/${fine}/runs?outcome=failed`, { token: tok.admin });
    expect(failedOnly.body.items).toEqual([]);
    // The job completed: a refused action is the rule's outcome, not a job failure.
    expect((await db.sql`select count(*)::int as n from private.jobs where task = 'automation'`)[0].n).toBe(0);
  });

  it('replies with canned responses and emits automation.triggered to subscribed endpoints', async () => {
    await quiet();
    const [canned] = await db.sql`insert into public.canned_responses (tenant_id, scope, short_code, title, body)
      values (${acme}, 'tenant', 'ack', 'Ack', 'We got ticket #{{ticket.number}}: {{ticket.title}}') returning id`;
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${acme}, 'https://hooks.example.com/auto', 'v1:x', '{automation.triggered}')`;
    const id = await rule({
      name: 'Acknowledge',
      event: 'ticket.created',
      actions: [{ type: 'send_canned', canned_response_id: canned.id }, { type: 'emit_webhook', label: 'acknowledged' }],
    });
    const t = await ticket('Please acknowledge me');
    await drain();
    const [{ number }] = await db.sql`select number from public.tickets where id = ${t}`;
    expect((await state(t)).messages).toEqual([`message:We got ticket #${number}: Please acknowledge me`]);
    const events = await db.sql`select payload from private.webhook_events where tenant_id = ${acme} and type = 'automation.triggered'`;
    expect(events.map((e) => e.payload.data)).toEqual([
      { rule_id: id, rule_name: 'Acknowledge', label: 'acknowledged', ticket_id: t, event: 'ticket.created' },
    ]);
  });
});

describe('what rules may not do', () => {
  it("names only templates and people it can use, on both paths: a personal, missing or foreign template, a customer or outsider to assign, a bad or repeated tag are 422s naming the action", async () => {
    await quiet();
    const [mine] = await db.sql`insert into public.canned_responses (tenant_id, scope, owner_id, short_code, title, body)
      values (${acme}, 'personal', ${users.acmeAgent.id}, 'mine', 'Mine', 'My own words') returning id`;
    const [foreign] = await db.sql`insert into public.canned_responses (tenant_id, scope, short_code, title, body)
      values (${globex}, 'tenant', 'theirs', 'Theirs', 'Their words') returning id`;
    const before = (await db.sql`select count(*)::int as n from public.automation_rules`)[0].n;
    const cases: [Body[], string, RegExp][] = [
      [[{ type: 'send_canned', canned_response_id: mine.id }], 'actions.0.canned_response_id', /personal/],
      [[{ type: 'send_canned', canned_response_id: foreign.id }], 'actions.0.canned_response_id', /not a canned response/],
      [[{ type: 'send_canned', canned_response_id: '00000000-0000-4000-8000-000000000000' }], 'actions.0.canned_response_id', /not a canned response/],
      [[{ type: 'set_priority', priority: 'low' }, { type: 'assign', user_id: users.acmeUser.id }], 'actions.1.user_id', /agent or admin/],
      [[{ type: 'assign', user_id: users.globexAgent.id }], 'actions.0.user_id', /agent or admin/],
    ];
    for (const [actions, field, message] of cases) {
      const r = await createRule({ name: 'Bad target', event: 'ticket.created', conditions: {}, actions });
      expect([r.status, errorCode(r)], JSON.stringify(actions)).toEqual([422, 'validation_failed']);
      expect(r.body.error.details.fields).toEqual([{ field, message: expect.stringMatching(message) }]);
    }
    // Straight through PostgREST, past zod: the same, and a tag zod would have refused or
    // folded (a comma; one named twice, which a rule put on a ticket twice).
    const claims = supabaseClaims(users.acmeAdmin, acme);
    for (
      const [actions, field] of [
        ...cases.map(([a, f]) => [a, f] as const),
        [[{ type: 'add_tags', tags: ['vip', 'vip'] }], 'actions.0.tags'],
        [[{ type: 'remove_tags', tags: ['a,b'] }], 'actions.0.tags'],
      ] as const
    ) {
      const r = await probeAs(db.sql, 'authenticated', claims, (tx) =>
        tx`insert into public.automation_rules (tenant_id, name, event, conditions, actions)
           values (${acme}, 'Direct', 'ticket.created', '{}', ${tx.json(actions as never)})`);
      expect(r.ok, JSON.stringify(actions)).toBe(false);
      if (!r.ok) expect([r.error.code, JSON.parse(r.error.detail!).details.fields[0].field]).toEqual(['PT422', field]);
    }
    expect((await db.sql`select count(*)::int as n from public.automation_rules`)[0].n).toBe(before);
    // Through the API a tag named twice is taken once, and a rule adding it puts it on once.
    const id = await rule({ name: 'Tag twice', event: 'ticket.created', actions: [{ type: 'add_tags', tags: ['vip', 'vip', 'gold'] }] });
    const [stored] = await db.sql`select actions from public.automation_rules where id = ${id}`;
    expect(stored.actions).toEqual([{ type: 'add_tags', tags: ['vip', 'gold'] }]);
    const t = await ticket('Tagged once');
    await drain();
    expect((await state(t)).tags).toEqual(['vip', 'gold']);
  });

  it('an action gone stale (its assignee no longer staff) does not freeze its rule or macro: switched off, renamed; actions written anew are checked', async () => {
    await quiet();
    const [leaver] = await db.sql`insert into public.users (email) values ('stale-assignee@acme.test') returning id`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${leaver.id}, 'agent')`;
    const actions = [{ type: 'assign', user_id: leaver.id }];
    const id = await rule({ name: 'Give it to them', event: 'ticket.created', actions });
    const [macro] = await db.sql`insert into public.macros (tenant_id, scope, name, actions) values (${acme}, 'tenant', 'Give it to them', ${db.sql.json(actions)}) returning id`;
    await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${leaver.id}`;
    const off = await call(app, 'PATCH', `/tickets/automation-rules/${id}`, { token: tok.admin, body: { active: false, name: 'Stopped' } });
    expect([off.status, off.body.active, off.body.name], JSON.stringify(off.body)).toEqual([200, false, 'Stopped']);
    const renamed = await call(app, 'PATCH', `/tickets/macros/${macro.id}`, { token: tok.admin, body: { name: 'Renamed' } });
    expect([renamed.status, renamed.body.name], JSON.stringify(renamed.body)).toEqual([200, 'Renamed']);
    // Actions written anew are checked, the stale one with them.
    const rewritten = await call(app, 'PATCH', `/tickets/automation-rules/${id}`, {
      token: tok.admin,
      body: { actions: [{ type: 'set_priority', priority: 'low' }, ...actions] },
    });
    expect([rewritten.status, rewritten.body.error?.details?.fields]).toEqual([422, [{ field: 'actions.1.user_id', message: expect.any(String) }]]);
    await db.sql`delete from public.macros where id = ${macro.id}`;
  });

  it('an assignee disabled on the platform is refused when the action is written (tickets refuse them: it failed every use)', async () => {
    await quiet();
    const [disabled] = await db.sql`insert into public.users (email) values ('disabled-assignee@acme.test') returning id`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${disabled.id}, 'agent')`;
    await db.sql`update public.users set status = 'disabled' where id = ${disabled.id}`;
    const actions = [{ type: 'assign', user_id: disabled.id }];
    const r = await createRule({ name: 'To the disabled', event: 'ticket.created', conditions: {}, actions });
    expect([r.status, r.body.error?.details?.fields]).toEqual([422, [{ field: 'actions.0.user_id', message: 'is disabled on the platform' }]]);
    const m = await call(app, 'POST', '/tickets/macros', { token: tok.admin, body: { scope: 'tenant', name: 'To the disabled', actions } });
    expect([m.status, m.body.error?.details?.fields?.[0]?.field]).toEqual([422, 'actions.0.user_id']);
    // Enabled again, they are an assignee like any agent.
    await db.sql`update public.users set status = 'active' where id = ${disabled.id}`;
    const ok = await createRule({ name: 'To the enabled', event: 'ticket.created', conditions: {}, actions });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    await db.sql`delete from public.automation_rules where id = ${ok.body.id}`;
  });

  it('a template a rule or macro sends is not deleted under it (409 canned_response_in_use), nor with its team', async () => {
    await quiet();
    const [team] = await db.sql`insert into public.teams (tenant_id, name, department) values (${acme}, 'Templates team', 'support') returning id`;
    const [canned] = await db.sql`insert into public.canned_responses (tenant_id, scope, team_id, short_code, title, body)
      values (${acme}, 'team', ${team.id}, 'team-ack', 'Ack', 'Thanks, we are on it') returning id`;
    const id = await rule({ name: 'Team ack', event: 'ticket.created', actions: [{ type: 'send_canned', canned_response_id: canned.id }] });
    const sends = db.sql.json([{ type: 'send_canned', canned_response_id: canned.id }]);
    const [shared] = await db.sql`insert into public.macros (tenant_id, scope, name, actions) values (${acme}, 'tenant', 'Shared ack', ${sends}) returning id`;
    // An agent's personal macro holds nothing: admins can neither see nor change it.
    await db.sql`insert into public.macros (tenant_id, scope, owner_id, name, actions) values (${acme}, 'personal', ${users.acmeAgent.id}, 'My ack', ${sends})`;
    const gone = await call(app, 'DELETE', `/tickets/canned-responses/${canned.id}`, { token: tok.admin });
    expect([gone.status, errorCode(gone), gone.body.error.details]).toEqual([409, 'canned_response_in_use', {
      canned_response_id: canned.id,
      macros: [shared.id],
      automation_rules: [id],
    }]);
    const teamGone = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
      tx`delete from public.teams where tenant_id = ${acme} and id = ${team.id}`);
    expect(teamGone.ok || teamGone.error.detail).toMatch(/canned_response_in_use/);
    expect((await db.sql`select count(*)::int as n from public.canned_responses where id = ${canned.id}`)[0].n).toBe(1);
    // The rule changed, the template goes (and the team with it).
    expect((await call(app, 'DELETE', `/tickets/automation-rules/${id}`, { token: tok.admin })).status).toBe(204);
    await db.sql`delete from public.macros where id = ${shared.id}`;
    expect((await call(app, 'DELETE', `/tickets/canned-responses/${canned.id}`, { token: tok.admin })).status).toBe(204);
    await db.sql`delete from public.teams where id = ${team.id}`;
    await db.sql`delete from public.macros where name = 'My ack'`;
  });

  it('a suspended tenant is read-only: its events are evaluated to nothing', async () => {
    await quiet();
    const id = await rule({ name: 'While suspended', event: 'ticket.created', actions: [{ type: 'set_priority', priority: 'low' }] });
    const t = await ticket('Filed before the suspension');
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    try {
      await drain();
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
    expect(await runsOf(id)).toEqual([]);
    expect((await state(t)).priority).toBe('medium');
  });
});

describe('rules racing a suspension', () => {
  it("a suspension waits for a rule's job that checked its tenant and waits for the ticket: no rule writes into a read-only tenant", async () => {
    await quiet();
    const id = await rule({ name: 'Racing a suspension', event: 'ticket.created', actions: [{ type: 'set_priority', priority: 'low' }] });
    const t = await ticket('Filed as a suspension begins');
    const holder = await db.sql.reserve();
    const suspender = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.tickets where id = ${t} for no key update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const job = drain();
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true); // the job, past its tenant's check
      // The suspension cannot commit before the job does (here it gives up after a second).
      await suspender`begin`;
      await suspender`set local lock_timeout = '1s'`;
      await expect(suspender`update public.tenants set status = 'suspended' where id = ${acme}`).rejects.toMatchObject({ code: '55P03' });
      await suspender`rollback`;
      await holder`commit`;
      await job;
    } finally {
      await holder`rollback`.catch(() => undefined);
      await suspender`rollback`.catch(() => undefined);
      holder.release();
      suspender.release();
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
    // The job ran while the tenant was active, before any suspension.
    expect((await runsOf(id)).map((r) => r.outcome)).toEqual(['applied']);
    expect((await state(t)).priority).toBe('low');
  });
});

describe('rules and custom fields', () => {
  it('conditions read visible and hidden values; set_custom_field writes through the fields\' own checks', async () => {
    await quiet();
    await db.sql`insert into public.custom_field_definitions (tenant_id, key, label, type, options, visible_to_customers) values
      (${acme}, 'plan', 'Plan', 'select', '{gold,silver}', true),
      (${acme}, 'risk', 'Risk', 'number', '{}', false)`;
    const fieldRule = await rule({
      name: 'Gold and risky',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'custom_fields.plan', op: 'eq', value: 'gold' }, { field: 'custom_fields.risk', op: 'in', value: [3, 4, 5] }] },
      actions: [{ type: 'set_priority', priority: 'urgent' }, { type: 'set_custom_field', key: 'risk', value: 5 }],
    });
    const bad = await rule({
      name: 'Refused value',
      event: 'ticket.created',
      actions: [{ type: 'set_custom_field', key: 'plan', value: 'platinum' }],
    });
    const t = await ticket('Custom fields meet rules');
    await drain();
    // platinum is not an option of plan: the rule failed, recorded, nothing written.
    expect((await runsOf(bad))[0]).toMatchObject({ outcome: 'failed', failed_action: 0 });
    expect((await db.sql`select custom_fields from public.tickets where id = ${t}`)[0].custom_fields).toEqual({});
    expect((await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { custom_fields: { plan: 'gold', risk: 3 } } })).status).toBe(200);
    await drain();
    expect((await runsOf(fieldRule)).map((r) => r.outcome)).toEqual(['applied']);
    expect((await state(t)).priority).toBe('urgent');
    // The hidden value stays hidden where the rule wrote it.
    expect((await db.sql`select custom_fields from public.tickets where id = ${t}`)[0].custom_fields).toEqual({ plan: 'gold' });
    expect((await db.sql`select custom_fields from public.ticket_internal_fields where ticket_id = ${t}`)[0].custom_fields).toEqual({ risk: 5 });
    // A malformed action is refused on write.
    const r = await createRule({ name: 'Malformed', event: 'ticket.created', actions: [{ type: 'set_custom_field', key: 'Bad Key', value: 1 }] });
    expect(r.status).toBe(422);
  });

  it('set_custom_field names a field of the tenant, not deleted under it (409 custom_field_in_use); a value already there writes nothing', async () => {
    await quiet();
    await db.sql`insert into public.custom_field_definitions (tenant_id, key, label, type, options, visible_to_customers)
      values (${acme}, 'tier', 'Tier', 'select', '{gold,silver}', true), (${globex}, 'globex_only', 'G', 'text', '{}', true)`;
    const before = (await db.sql`select count(*)::int as n from public.automation_rules`)[0].n;
    // A mistyped key, and another tenant's, were written (201) and failed every run after.
    for (const key of ['tierr', 'globex_only']) {
      const r = await createRule({
        name: 'Mistyped', event: 'ticket.created', conditions: {},
        actions: [{ type: 'set_priority', priority: 'high' }, { type: 'set_custom_field', key, value: 'gold' }],
      });
      expect([r.status, r.body.error?.details?.fields], key).toEqual([422, [{ field: 'actions.1.key', message: 'is not a custom field of the tenant' }]]);
    }
    expect((await db.sql`select count(*)::int as n from public.automation_rules`)[0].n).toBe(before);
    const id = await rule({ name: 'Gold tier', event: 'ticket.updated', actions: [{ type: 'set_custom_field', key: 'tier', value: 'gold' }] });
    const [field] = await db.sql`select id from public.custom_field_definitions where tenant_id = ${acme} and key = 'tier'`;
    const gone = await call(app, 'DELETE', `/tickets/custom-fields/${field.id}`, { token: tok.admin });
    expect([gone.status, errorCode(gone), gone.body.error.details]).toEqual([409, 'custom_field_in_use', {
      custom_field_id: field.id,
      key: 'tier',
      automation_rules: [id],
    }]);
    // A ticket given the value by a person: the rule's run finds it there and writes nothing.
    const t = await ticket('Already gold');
    await drain();
    const set = await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { custom_fields: { tier: 'gold' } } });
    expect(set.status).toBe(200);
    const [{ updated_at: after }] = await db.sql`select updated_at from public.tickets where id = ${t}`;
    await drain();
    expect((await runsOf(id)).map((r) => r.outcome)).toContain('applied');
    expect((await db.sql`select updated_at from public.tickets where id = ${t}`)[0].updated_at).toEqual(after);
    // The rule gone, the field goes.
    expect((await call(app, 'DELETE', `/tickets/automation-rules/${id}`, { token: tok.admin })).status).toBe(204);
    expect((await call(app, 'DELETE', `/tickets/custom-fields/${field.id}`, { token: tok.admin })).status).toBe(204);
    await db.sql`delete from public.custom_field_definitions where tenant_id = ${globex} and key = 'globex_only'`;
  });

  it("a field changing visibility moves its values, changing none: rules on changed custom_fields do not run", async () => {
    await quiet();
    const [field] = await db.sql`insert into public.custom_field_definitions (tenant_id, key, label, type, options, visible_to_customers)
      values (${acme}, 'contract', 'Contract', 'select', '{gold,silver}', true) returning id`;
    const id = await rule({
      name: 'Gold welcome',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'changed', op: 'contains', value: 'custom_fields' }, { field: 'custom_fields.contract', op: 'eq', value: 'gold' }] },
      actions: [{ type: 'reply', content: 'Welcome to Gold!' }],
    });
    const t = await ticket('Gold customer');
    expect((await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { custom_fields: { contract: 'gold' } } })).status).toBe(200);
    await drain();
    expect((await runsOf(id)).map((r) => r.outcome)).toEqual(['applied']);
    for (const visible_to_customers of [false, true]) {
      const flip = await call(app, 'PATCH', `/tickets/custom-fields/${field.id}`, { token: tok.admin, body: { visible_to_customers } });
      expect(flip.status, JSON.stringify(flip.body)).toBe(200);
      await drain();
    }
    // The value moved out of the row and back; the rule ran once, for the real change.
    expect((await db.sql`select custom_fields from public.tickets where id = ${t}`)[0].custom_fields).toEqual({ contract: 'gold' });
    expect((await runsOf(id)).map((r) => r.outcome)).toEqual(['applied']);
    expect((await state(t)).messages.filter((m) => m.includes('Welcome to Gold'))).toHaveLength(1);
    // A real change after the move is told again (the mark does not outlive the move).
    for (const contract of ['silver', 'gold']) {
      expect((await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { custom_fields: { contract } } })).status).toBe(200);
      await drain();
    }
    expect((await runsOf(id)).filter((r) => r.outcome === 'applied')).toHaveLength(2);
    expect((await state(t)).messages.filter((m) => m.includes('Welcome to Gold'))).toHaveLength(2);
    await db.sql`delete from public.automation_rules where id = ${id}`;
  });

  it('a change of staff-only values alone is an update: rules on them run, and receivers of ticket.updated hear of it', async () => {
    await quiet();
    await db.sql`insert into public.custom_field_definitions (tenant_id, key, label, type, options, visible_to_customers)
      values (${acme}, 'risk', 'Risk', 'number', '{}', false) on conflict do nothing`;
    const risky = await rule({
      name: 'Risky',
      event: 'ticket.updated',
      conditions: { all: [{ field: 'changed', op: 'contains', value: 'custom_fields' }, { field: 'custom_fields.risk', op: 'in', value: [4, 5] }] },
      actions: [{ type: 'set_priority', priority: 'urgent' }],
    });
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${acme}, 'https://hooks.example.com/updates', 'v1:x', '{ticket.updated}') returning id`;
    try {
      const t = await ticket('Only staff see this value');
      await drain();
      const [{ mark }] = await db.sql`select coalesce(max(id), 0) as mark from private.webhook_events`;
      const r = await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { custom_fields: { risk: 5 } } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      await drain();
      expect((await runsOf(risky)).filter((x) => x.ticket_id === t).map((x) => x.outcome)).toEqual(['applied']);
      expect((await state(t)).priority).toBe('urgent');
      const told = await db.sql`select type, payload -> 'data' -> 'custom_fields' as fields from private.webhook_events
        where id > ${mark} and payload -> 'data' ->> 'id' = ${t} order by id`;
      // The update of the value, then the rule's priority; the hidden value in neither.
      expect(told.map((e) => e.type)).toEqual(['ticket.updated', 'ticket.updated']);
      expect(JSON.stringify(told)).not.toContain('risk');
      // The value changed with another field in one update: custom_fields is among what changed.
      await db.sql`update public.tickets set priority = 'low' where id = ${t}`;
      await drain();
      const mixed = await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { title: 'Renamed too', custom_fields: { risk: 4 } } });
      expect(mixed.status, JSON.stringify(mixed.body)).toBe(200);
      await drain();
      expect((await runsOf(risky)).filter((x) => x.ticket_id === t).map((x) => x.outcome)).toEqual(['applied', 'applied']);
      expect((await state(t)).priority).toBe('urgent');
      // The same value again changes nothing and tells nobody.
      const [{ again }] = await db.sql`select coalesce(max(id), 0) as again from private.webhook_events`;
      expect((await call(app, 'PATCH', `/tickets/${t}`, { token: tok.admin, body: { custom_fields: { risk: 4 } } })).status).toBe(200);
      expect(await db.sql`select 1 from private.webhook_events where id > ${again} and payload -> 'data' ->> 'id' = ${t}`).toHaveLength(0);
    } finally {
      await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
    }
  });
});

describe('time-based rules', () => {
  it('fire once per wait: pending for N minutes, and no customer reply for N minutes', async () => {
    await quiet();
    const pending = await rule({
      name: 'Pending too long',
      event: 'ticket.pending_for',
      after_minutes: 60,
      actions: [{ type: 'reply', content: 'Closing for lack of reply' }, { type: 'set_status', status: 'resolved' }],
    });
    const silent = await rule({
      name: 'Nudge',
      event: 'ticket.no_customer_reply',
      after_minutes: 120,
      conditions: { all: [{ field: 'priority', op: 'neq', value: 'low' }] },
      actions: [{ type: 'add_tags', tags: ['nudged'] }],
    });
    const waiting = await ticket('Waiting on the customer');
    expect((await call(app, 'POST', `/tickets/${waiting}/status`, { token: tok.admin, body: { status: 'pending' } })).status).toBe(200);
    const fresh = await ticket('Just went pending');
    expect((await call(app, 'POST', `/tickets/${fresh}/status`, { token: tok.admin, body: { status: 'pending' } })).status).toBe(200);
    // The first has waited two hours (no business hours: wall clock); the second not.
    await db.sql`update public.tickets set sla_paused_at = now() - interval '2 hours' where id = ${waiting}`;
    const unanswered = await ticket('Agent asked a question');
    const lowOne = await ticket('Low priority question');
    await db.sql`update public.tickets set priority = 'low' where id = ${lowOne}`;
    for (const t of [unanswered, lowOne]) {
      await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
        values (${acme}, ${t}, ${users.acmeAgent.id}, 'message', 'Which version?', now() - interval '3 hours')`;
    }
    await drain(); // events of the setup (no event rules are active)
    const sweep = async () => (await db.sql`select private.run_automation_sweep() as n`)[0].n as number;
    // Due: `waiting` (pending 2 h ≥ 60 min), and `unanswered` and `lowOne` (the agent's
    // question is 3 h old); `fresh` has just gone pending and has no message.
    expect(await sweep()).toBe(3);
    await drain();
    expect(await state(waiting)).toMatchObject({ status: 'resolved', messages: ['message:Closing for lack of reply'] });
    expect((await state(fresh)).status).toBe('pending');
    expect((await state(unanswered)).tags).toEqual(['nudged']);
    expect((await state(lowOne)).tags).toEqual([]);
    expect((await runsOf(silent)).map((r) => [r.ticket_id, r.outcome]).sort()).toEqual(
      [[unanswered, 'applied'], [lowOne, 'not_matched']].sort(),
    );
    // Each wait is looked at once: nothing is due again until a new one begins, whatever
    // the time zone and date style of the session that sweeps.
    expect(await sweep()).toBe(0);
    const elsewhere = await db.sql.begin(async (tx) => {
      await tx`set local timezone = 'Pacific/Chatham'`;
      await tx`set local datestyle = 'German, DMY'`;
      return (await tx`select private.run_automation_sweep() as n`)[0].n as number;
    });
    expect(elsewhere).toBe(0);
    expect((await runsOf(pending)).length).toBe(1);
    // The customer answers, the agent asks again, three hours pass: a new wait.
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
      values (${acme}, ${unanswered}, ${users.acmeUser.id}, 'message', 'Version 2', now() - interval '2 hours 30 minutes'),
             (${acme}, ${unanswered}, ${users.acmeAgent.id}, 'message', 'And the OS?', now() - interval '2 hours 10 minutes')`;
    await drain();
    expect(await sweep()).toBe(1);
    await drain();
    expect((await runsOf(silent)).filter((r) => r.ticket_id === unanswered).map((r) => r.outcome)).toEqual(['applied', 'applied']);
    // A reminder written by a rule (no author) is not staff's word: no new wait begins.
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, type, content, created_at)
      values (${acme}, ${unanswered}, 'message', 'Friendly reminder', now() - interval '3 hours')`;
    await drain();
    expect(await sweep()).toBe(0);
  });
});

describe("a rule's own reminder and the wait it reminds about", () => {
  it('remind after an hour, close after three: the reminder does not end the wait, and the close comes', async () => {
    await quiet();
    const remind = await rule({
      name: 'Remind when silent',
      event: 'ticket.no_customer_reply',
      after_minutes: 60,
      actions: [{ type: 'reply', content: 'Just checking in: any news?' }],
    });
    const close = await rule({
      name: 'Close when still silent',
      event: 'ticket.no_customer_reply',
      after_minutes: 180,
      actions: [{ type: 'add_tags', tags: ['closed-for-silence'] }],
    });
    const t = await ticket('Asked, then silence');
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
      values (${acme}, ${t}, ${users.acmeAgent.id}, 'message', 'Which version?', now() - interval '2 hours')`;
    await drain();
    const sweepAt = async (hoursAhead: number) =>
      (await db.sql`select private.run_automation_sweep(now() + make_interval(hours => ${hoursAhead})) as n`)[0].n as number;
    const onTicket = async (ruleId: string) =>
      (await runsOf(ruleId)).filter((r) => r.ticket_id === t).map((r) => r.outcome);
    // Two hours on: the reminder is due, not the close. (Other tests' tickets may be due
    // for these rules too; only this ticket is looked at.)
    await sweepAt(0);
    await drain();
    expect((await state(t)).messages).toContain('message:Just checking in: any news?');
    expect(await onTicket(remind)).toEqual(['applied']);
    expect(await onTicket(close)).toEqual([]);
    // Two hours later, still no reply: the close is due (the reminder did not end the wait).
    await sweepAt(2);
    await drain();
    expect((await state(t)).tags).toContain('closed-for-silence');
    expect(await onTicket(close)).toEqual(['applied']);
    expect(await onTicket(remind)).toEqual(['applied']); // once per wait
  });
});

describe('time-based rules whose wait ends before their job runs', () => {
  it('match nothing: a customer who answered in between is not closed for lack of reply, nor nudged', async () => {
    await quiet();
    const close = await rule({
      name: 'Close when silent',
      event: 'ticket.pending_for',
      after_minutes: 60,
      actions: [{ type: 'reply', content: 'Closing for lack of reply' }, { type: 'set_status', status: 'resolved' }],
    });
    const nudge = await rule({
      name: 'Nudge when silent',
      event: 'ticket.no_customer_reply',
      after_minutes: 60,
      actions: [{ type: 'add_tags', tags: ['nudged'] }],
    });
    const waiting = await ticket('Pending, then answered');
    expect((await call(app, 'POST', `/tickets/${waiting}/status`, { token: tok.admin, body: { status: 'pending' } })).status).toBe(200);
    await db.sql`update public.tickets set sla_paused_at = now() - interval '2 hours' where id = ${waiting}`;
    const asked = await ticket('Asked, then answered');
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
      values (${acme}, ${asked}, ${users.acmeAgent.id}, 'message', 'Which version?', now() - interval '2 hours')`;
    await drain();
    await db.sql`select private.run_automation_sweep()`;
    const queued = await db.sql`
      select payload ->> 'ticket_id' as ticket, payload ->> 'rule_id' as rule from private.jobs
      where task = 'automation' and payload ->> 'ticket_id' in (${waiting}, ${asked}) order by 1`;
    expect(queued.map((j) => [j.ticket, j.rule]).sort()).toEqual([[waiting, close], [asked, nudge]].sort());
    // Both customers answer before the queued jobs run.
    for (const t of [waiting, asked]) {
      const reply = await call(app, 'POST', `/tickets/${t}/messages`, { token: tok.user, body: { content: 'Here is my answer' } });
      expect(reply.status, JSON.stringify(reply.body)).toBe(201);
    }
    expect((await state(waiting)).status).toBe('open');
    await drain();
    expect(await state(waiting)).toMatchObject({ status: 'open', messages: ['message:Here is my answer'] });
    expect((await state(asked)).tags).toEqual([]);
    const mine = (runs: { ticket_id: string; outcome: string }[]) =>
      runs.filter((r) => [waiting, asked].includes(r.ticket_id)).map((r) => [r.ticket_id, r.outcome]);
    expect(mine(await runsOf(close))).toEqual([[waiting, 'not_matched']]);
    expect(mine(await runsOf(nudge))).toEqual([[asked, 'not_matched']]);
  });
});

describe('concurrency', () => {
  it('100 tickets changed at once under 20 active rules: every rule applied exactly once per event', async () => {
    await quiet();
    const ids: string[] = [];
    for (let i = 0; i < 100; i++) ids.push(await ticket(`Concurrent ticket ${i}`));
    await drain();
    const rules: string[] = [];
    for (let i = 0; i < 20; i++) {
      rules.push(
        await rule({
          name: `Priority watcher ${i}`,
          event: 'ticket.updated',
          position: i,
          conditions: { all: [{ field: 'changed', op: 'contains', value: 'priority' }] },
          actions: [{ type: 'add_tags', tags: [`r${i}`] }],
        }),
      );
    }
    const results = await Promise.all(
      ids.map((id) => call(app, 'PATCH', `/tickets/${id}`, { token: tok.admin, body: { priority: 'high' } })),
    );
    expect(results.map((r) => r.status)).toEqual(ids.map(() => 200));
    await drain(3); // three workers claim concurrently
    const runs = await db.sql<{ rule_id: string; ticket_id: string; n: number }[]>`
      select rule_id, ticket_id, count(*)::int as n from public.automation_runs
      where rule_id = any (${rules}::uuid[]) and outcome = 'applied' group by 1, 2`;
    expect(runs.length).toBe(100 * 20);
    expect(runs.every((r) => r.n === 1)).toBe(true);
    const tags = await db.sql<{ tags: string[] }[]>`select tags from public.tickets where id = any (${ids}::uuid[])`;
    const want = rules.map((_, i) => `r${i}`).sort();
    expect(tags.every((t) => [...t.tags].sort().join() === want.join())).toBe(true);
    const [{ dead }] = await db.sql`select count(*)::int as dead from private.jobs where task = 'automation' and dead_at is not null`;
    expect(dead).toBe(0);
  }, 300_000); // 2,000 rule applications and their 2,000 follow-up events on a shared 2-core machine
});

describe("Chatwoot's messages and the rules", () => {
  /** A message as the Chatwoot handler writes it: no author, its side named (20261207103000). */
  const chatwootMessage = (ticketId: string, side: 'staff' | 'customer', content: string, createdAt = 'now()') =>
    db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'service_role', true), set_config('private.message_side', ${side}, true)`;
      await tx`insert into public.ticket_messages (tenant_id, ticket_id, type, content, created_at)
        values (${acme}, ${ticketId}, 'message', ${content}, ${tx.unsafe(createdAt)})`;
    });

  it("an agent's reply in Chatwoot is staff's word: its wait comes due, and message.author says staff or requester", async () => {
    await quiet();
    const nudge = await rule({
      name: 'Nudge the Chatwoot contact',
      event: 'ticket.no_customer_reply',
      after_minutes: 60,
      actions: [{ type: 'add_tags', tags: ['nudged-chatwoot'] }],
    });
    const byStaff = await rule({
      name: 'Tag staff replies',
      event: 'message.created',
      conditions: { all: [{ field: 'message.author', op: 'eq', value: 'staff' }] },
      actions: [{ type: 'add_tags', tags: ['staff-said'] }],
    });
    const byRequester = await rule({
      name: 'Tag requester messages',
      event: 'message.created',
      conditions: { all: [{ field: 'message.author', op: 'eq', value: 'requester' }] },
      actions: [{ type: 'add_tags', tags: ['requester-said'] }],
    });
    const t = await ticket('From a Chatwoot conversation');
    await drain();
    await chatwootMessage(t, 'customer', 'Where is my order?', "now() - interval '3 hours'");
    await drain();
    expect((await state(t)).tags).toEqual(['requester-said']);
    await chatwootMessage(t, 'staff', 'It ships tomorrow', "now() - interval '2 hours'");
    await drain();
    expect((await state(t)).tags.sort()).toEqual(['requester-said', 'staff-said']);
    // Two hours of silence after the agent's reply: the nudge is due.
    expect((await db.sql`select private.run_automation_sweep() as n`)[0].n).toBeGreaterThanOrEqual(1);
    await drain();
    expect((await state(t)).tags).toContain('nudged-chatwoot');
    expect((await runsOf(nudge)).filter((r) => r.ticket_id === t).map((r) => r.outcome)).toEqual(['applied']);
    expect((await runsOf(byStaff)).filter((r) => r.ticket_id === t).map((r) => r.outcome)).toContain('applied');
    expect((await runsOf(byRequester)).filter((r) => r.ticket_id === t).map((r) => r.outcome)).toContain('applied');
  });
});

describe('the sweep shares a run between tenants', () => {
  it("one tenant's backlog of waits takes a fifth of a run before the others had theirs: another tenant's wait is queued in the same run", async () => {
    await quiet();
    const pendingRule = (token: string) =>
      createRule({
        name: 'Close stale pending',
        event: 'ticket.pending_for',
        after_minutes: 60,
        conditions: {},
        actions: [{ type: 'add_tags', tags: ['stale'] }],
      }, token);
    const acmeRule = await pendingRule(tok.admin);
    const globexRule = await pendingRule(tok.globexAdmin);
    expect([acmeRule.status, globexRule.status]).toEqual([201, 201]);
    // Acme: twelve tickets pending for two hours; globex: one.
    const pending = async (tenant: string, creator: string, n: number) => {
      const made = await db.sql`insert into public.tickets (tenant_id, title, created_by)
        select ${tenant}, 'Stale pending ' || i, ${creator} from generate_series(1, ${n}) i returning id`;
      const ids = made.map((t) => t.id as string);
      await db.sql`update public.tickets set status = 'pending' where id = any (${ids})`;
      await db.sql`update public.tickets set sla_paused_at = now() - interval '2 hours' where id = any (${ids})`;
      return made;
    };
    await pending(acme, users.acmeUser.id, 12);
    const [g] = await pending(globex, users.globexUser.id, 1);
    await db.sql`delete from private.jobs where task = 'automation'`;
    // A run of five: a share of one per tenant first, whichever comes first, then the
    // rest to whoever still has waits.
    expect((await db.sql`select private.run_automation_sweep(now(), 5) as n`)[0].n).toBe(5);
    const queued = await db.sql`select payload ->> 'tenant_id' as tenant, payload ->> 'ticket_id' as ticket
      from private.jobs where task = 'automation' order by 1`;
    expect(queued.filter((j) => j.tenant === acme)).toHaveLength(4);
    expect(queued.find((j) => j.tenant === globex)?.ticket).toBe(g.id);
    await db.sql`delete from private.jobs where task = 'automation'`;
    await db.sql`update public.tickets set status = 'open' where title like 'Stale pending %'`;
  });
});

describe('time-based rules lengthened after their job was queued', () => {
  it('wait as the rule now says: an hour made two days closes nothing after an hour, and the wait comes back when due', async () => {
    await quiet();
    const close = await rule({
      name: 'Close when pending long',
      event: 'ticket.pending_for',
      after_minutes: 60,
      actions: [{ type: 'set_status', status: 'resolved' }],
    });
    const nudge = await rule({
      name: 'Nudge when silent long',
      event: 'ticket.no_customer_reply',
      after_minutes: 60,
      actions: [{ type: 'add_tags', tags: ['nudged-late'] }],
    });
    const waiting = await ticket('Pending, rule lengthened');
    expect((await call(app, 'POST', `/tickets/${waiting}/status`, { token: tok.admin, body: { status: 'pending' } })).status).toBe(200);
    await db.sql`update public.tickets set sla_paused_at = now() - interval '2 hours' where id = ${waiting}`;
    const asked = await ticket('Asked, rule lengthened');
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
      values (${acme}, ${asked}, ${users.acmeAgent.id}, 'message', 'Which version?', now() - interval '2 hours')`;
    await drain();
    await db.sql`select private.run_automation_sweep()`;
    const queued = await db.sql`select payload ->> 'rule_id' as rule from private.jobs
      where task = 'automation' and payload ->> 'ticket_id' in (${waiting}, ${asked})`;
    expect(queued.map((j) => j.rule).sort()).toEqual([close, nudge].sort());
    // The admin makes both waits two days before the jobs run.
    for (const id of [close, nudge]) {
      const changed = await call(app, 'PATCH', `/tickets/automation-rules/${id}`, { token: tok.admin, body: { after_minutes: 2880 } });
      expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    }
    await drain();
    expect((await state(waiting)).status).toBe('pending');
    expect((await state(asked)).tags).toEqual([]);
    // Nothing recorded, nothing due yet: the waits are not over, only not long enough.
    expect([(await runsOf(close)).length, (await runsOf(nudge)).length]).toEqual([0, 0]);
    expect((await db.sql`select private.run_automation_sweep() as n`)[0].n).toBe(0);
    // Two days on, the same waits are due and the rules apply.
    await db.sql`update public.tickets set sla_paused_at = sla_paused_at - interval '2 days' where id = ${waiting}`;
    await db.sql`update public.ticket_messages set created_at = created_at - interval '2 days' where ticket_id = ${asked}`;
    expect((await db.sql`select private.run_automation_sweep() as n`)[0].n).toBe(2);
    await drain();
    expect((await state(waiting)).status).toBe('resolved');
    expect((await state(asked)).tags).toEqual(['nudged-late']);
  });
});
