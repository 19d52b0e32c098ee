// The rest of a complete SLA (issue 16 §2): holidays in a calendar, the next-response
// target every customer reply restarts, warnings before a breach, and the outbound
// events `ticket.sla_warning` and `ticket.sla_breached` — each sent once per due time.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { asService, closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const PARIS = { timezone: 'Europe/Paris', days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' };

beforeAll(async () => {
  db = await freshDatabase('fn_sla_targets');
  auth = await configureAuth(db.url);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  // Someone listens, so events reach the outbox.
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${acme}, 'https://hooks.example.com/sla', 'v1:x')`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const policy = async (priority: string, body: Record<string, unknown>) => {
  const r = await call(app, 'PUT', `/tickets/sla-policies/${priority}`, { token: tok.admin, body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
};
async function ticket(priority: string) {
  const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Clock is ticking', priority } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${r.body.id}`;
  return r.body as { id: string; number: number; created_at: string; first_response_due_at: string };
}
const reply = async (id: string, token: string) => {
  const r = await call(app, 'POST', `/tickets/${id}/messages`, { token, body: { content: 'A reply' } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
};
const row = async (id: string) => (await db.sql`select * from public.tickets where id = ${id}`)[0];
const sweep = (minutes: number) => asService(null, async (tx) =>
  (await tx`select private.run_sla_sweep(now() + make_interval(mins => ${minutes})) as n`)[0].n as number);
const events = async (type: string, ticketId: string) =>
  (await db.sql`select payload from private.webhook_events where type = ${type} and payload -> 'data' ->> 'ticket_id' = ${ticketId} order by id`)
    .map((r) => r.payload.data);

describe('holidays', () => {
  it('no business time passes on a holiday, in either direction of the arithmetic', async () => {
    const xmas = { ...PARIS, holidays: ['2026-12-25'] };
    // Thursday 24 Dec 16:00 Paris + 120 business minutes: 60 on Thursday, Friday is a
    // holiday, 60 on Monday 28th → 10:00 Paris (09:00Z).
    const [a] = await db.sql`select private.add_business_minutes('2026-12-24T15:00:00Z', 120, ${db.sql.json(xmas)}) as at`;
    expect(a.at.toISOString()).toBe('2026-12-28T09:00:00.000Z');
    const [b] = await db.sql`select private.business_minutes_between('2026-12-24T15:00:00Z', '2026-12-28T09:00:00Z', ${db.sql.json(xmas)}) as m`;
    expect(b.m).toBe(120);
    const [c] = await db.sql`select private.business_minutes_between('2026-12-24T15:00:00Z', '2026-12-28T09:00:00Z', ${db.sql.json(PARIS)}) as m`;
    expect(c.m).toBe(120 + 8 * 60);
  });

  it('a policy keeps its holidays; bad dates are 422s that change nothing', async () => {
    const saved = await policy('low', { first_response_minutes: 60, resolution_minutes: 600, business_hours: { ...PARIS, holidays: ['2026-12-25', '2027-01-01'] } });
    expect(saved.business_hours.holidays).toEqual(['2026-12-25', '2027-01-01']);
    for (const holidays of [['2026-13-01'], ['25/12/2026'], ['0000-12-25'], ['2026-12-25', '2026-12-25'], Array.from({ length: 401 }, (_, i) => `2027-01-${String(i % 28 + 1).padStart(2, '0')}`)]) {
      const r = await call(app, 'PUT', '/tickets/sla-policies/low', { token: tok.admin, body: { first_response_minutes: 1, resolution_minutes: 1, business_hours: { ...PARIS, holidays } } });
      expect(r.status, JSON.stringify(holidays).slice(0, 60)).toBe(422);
      expect(errorCode(r)).toBe('validation_failed');
    }
    const [p] = await db.sql`select first_response_minutes from public.sla_policies where tenant_id = ${acme} and priority = 'low'`;
    expect(p.first_response_minutes).toBe(60);
    // The direct-table path: the check constraint runs the same arithmetic.
    await expect(db.sql`update public.sla_policies set business_hours = ${db.sql.json({ ...PARIS, holidays: ['not-a-date'] })}
      where tenant_id = ${acme} and priority = 'low'`).rejects.toMatchObject({ code: '22007', message: expect.stringContaining('not-a-date') });
  });
});

describe('the next-response target', () => {
  it('each customer reply starts it, a staff reply stops it', async () => {
    await policy('medium', { first_response_minutes: 240, resolution_minutes: 2880, next_response_minutes: 30 });
    const t = await ticket('medium');
    expect((await row(t.id)).next_response_due_at).toBeNull();
    await reply(t.id, tok.agent); // first response: nothing to answer yet
    expect((await row(t.id)).next_response_due_at).toBeNull();
    await reply(t.id, tok.user);
    const started = await row(t.id);
    const [now] = await db.sql`select now() as at`;
    const lead = started.next_response_due_at.getTime() - now.at.getTime();
    expect(lead).toBeGreaterThan(25 * 60_000);
    expect(lead).toBeLessThanOrEqual(30 * 60_000);
    await reply(t.id, tok.agent);
    expect((await row(t.id)).next_response_due_at).toBeNull();
    // Internal notes do not answer the customer.
    await reply(t.id, tok.user);
    const n = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'hmm', type: 'note' } });
    expect(n.status).toBe(201);
    expect((await row(t.id)).next_response_due_at).not.toBeNull();
    const api = await call(app, 'GET', `/tickets/${t.id}`, { token: tok.agent });
    expect(api.body.next_response_due_at).toMatch(/Z$/);
  });

  it('a missed next response is breached once, escalates, and is announced', async () => {
    const t = await ticket('medium');
    await reply(t.id, tok.agent);
    await reply(t.id, tok.user);
    await sweep(20);
    expect((await row(t.id)).sla_next_response_breached_at).toBeNull();
    await sweep(31);
    const breached = await row(t.id);
    expect(breached.sla_next_response_breached_at).not.toBeNull();
    expect(breached.status).toBe('escalated');
    // The list's breach filter counts it.
    const listed = async (flag: boolean) =>
      (await call(app, 'GET', `/tickets?sla_breached=${flag}&limit=100`, { token: tok.agent })).body.items.map((x: { id: string }) => x.id);
    expect(await listed(true)).toContain(t.id);
    expect(await listed(false)).not.toContain(t.id);
    await sweep(40);
    expect(await events('ticket.sla_breached', t.id)).toEqual([{ ticket_id: t.id, number: t.number, kind: 'next_response' }]);
    const timeline = await db.sql`select data ->> 'kind' as kind from public.ticket_events where ticket_id = ${t.id} and type = 'sla_breached'`;
    expect(timeline.map((e) => e.kind)).toEqual(['next_response']);
    // The customer writes again: a new clock, the breach mark cleared for it.
    await reply(t.id, tok.user);
    const restarted = await row(t.id);
    expect(restarted.sla_next_response_breached_at).toBeNull();
    expect(restarted.next_response_due_at).not.toBeNull();
  });

  it('a breach stays one breach when a change of priority stops the clock and another starts it again for the same reply', async () => {
    await db.sql`delete from public.sla_policies where tenant_id = ${acme} and priority = 'urgent'`; // urgent: no policy
    const t = await ticket('medium');
    await reply(t.id, tok.agent);
    await reply(t.id, tok.user);
    await sweep(31);
    expect((await row(t.id)).sla_next_response_breached_at).not.toBeNull();
    for (const priority of ['urgent', 'medium']) {
      const r = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    // Medium again: the clock runs from the same reply, past due; it was breached already.
    expect((await row(t.id)).next_response_due_at).not.toBeNull();
    await sweep(45);
    expect(await events('ticket.sla_breached', t.id)).toEqual([{ ticket_id: t.id, number: t.number, kind: 'next_response' }]);
    const messages = await db.sql`select count(*)::int as n from public.ticket_messages where ticket_id = ${t.id} and type = 'system' and content like 'SLA breached%'`;
    expect(messages[0].n).toBe(1);
    // A new reply of the customer's is a new clock, which may breach in its turn.
    await reply(t.id, tok.user);
    expect((await row(t.id)).sla_next_response_breached_at).toBeNull();
    // Breached again, its clock stopped (urgent has no target), then answered: nothing is
    // owed, and the mark goes with the answer.
    await sweep(31);
    expect((await row(t.id)).sla_next_response_breached_at).not.toBeNull();
    expect((await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'urgent' } })).status).toBe(200);
    expect((await row(t.id)).sla_next_response_breached_at).not.toBeNull();
    await reply(t.id, tok.agent);
    expect((await row(t.id)).sla_next_response_breached_at).toBeNull();
  });

  it("a deleted policy's targets leave with a change to a priority no policy governs, as a live policy's do", async () => {
    await policy('urgent', { first_response_minutes: 30, resolution_minutes: 120 });
    await db.sql`delete from public.sla_policies where tenant_id = ${acme} and priority = 'low'`;
    const t = await ticket('urgent');
    expect((await row(t.id)).first_response_due_at).not.toBeNull();
    const del = await call(app, 'DELETE', '/tickets/sla-policies/urgent', { token: tok.admin });
    expect(del.status, JSON.stringify(del.body)).toBe(204);
    const r = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'low' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await row(t.id)).toMatchObject({ first_response_due_at: null, due_date: null, next_response_due_at: null });
    await sweep(600);
    expect(await row(t.id)).toMatchObject({ status: 'open', sla_first_response_breached_at: null, sla_resolution_breached_at: null });
    expect(await events('ticket.sla_breached', t.id)).toEqual([]);
  });

  it('resolving answers the reply owed; a customer reply on the settled ticket is owed an answer from its reopening, not from when it came', async () => {
    const t = await ticket('medium');
    await reply(t.id, tok.agent);
    await reply(t.id, tok.user);
    const status = async (s: string) =>
      expect((await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: s } })).status).toBe(200);
    await status('resolved');
    expect((await row(t.id)).next_response_due_at).toBeNull();
    // Reopened with nothing owed: no clock.
    await status('open');
    expect((await row(t.id)).next_response_due_at).toBeNull();
    await status('resolved');
    // "Thanks!", two hours before the ticket is reopened.
    await reply(t.id, tok.user);
    await db.sql`update private.ticket_replies_owed set since = since - interval '2 hours' where ticket_id = ${t.id}`;
    await db.sql`update public.tickets set next_response_due_at = next_response_due_at - interval '2 hours' where id = ${t.id}`;
    await status('open');
    const reopened = await row(t.id);
    const [now] = await db.sql`select now() as at`;
    const lead = reopened.next_response_due_at.getTime() - now.at.getTime();
    expect(lead).toBeGreaterThan(25 * 60_000);
    expect(lead).toBeLessThanOrEqual(30 * 60_000);
    await sweep(20);
    expect(await row(t.id)).toMatchObject({ status: 'open', sla_next_response_breached_at: null });
    await sweep(31);
    expect((await row(t.id)).sla_next_response_breached_at).not.toBeNull();
  });

  it("a merge carries the source's unanswered customer reply to the target, whose clock runs from it", async () => {
    const source = await ticket('medium');
    const target = await ticket('medium');
    await reply(source.id, tok.agent);
    await reply(source.id, tok.user);
    const [owed] = await db.sql`select since from private.ticket_replies_owed where ticket_id = ${source.id}`;
    expect((await row(target.id)).next_response_due_at).toBeNull();
    const m = await call(app, 'POST', `/tickets/${source.id}/merge`, { token: tok.agent, body: { into: target.id } });
    expect(m.status, JSON.stringify(m.body)).toBe(200);
    const merged = await row(target.id);
    expect(merged.next_response_due_at.getTime()).toBe(owed.since.getTime() + 30 * 60_000);
    await sweep(31);
    expect((await row(target.id)).sla_next_response_breached_at).not.toBeNull();
    // The source, closed, owes nothing.
    expect(await db.sql`select 1 from private.ticket_replies_owed where ticket_id = ${source.id}`).toHaveLength(0);

    // A settled source's reply owed (a "thanks" two hours ago) is owed from the merge.
    const settled = await ticket('medium');
    const open = await ticket('medium');
    await reply(settled.id, tok.agent);
    expect((await call(app, 'POST', `/tickets/${settled.id}/status`, { token: tok.agent, body: { status: 'resolved' } })).status).toBe(200);
    await reply(settled.id, tok.user);
    await db.sql`update private.ticket_replies_owed set since = since - interval '2 hours' where ticket_id = ${settled.id}`;
    const into = await call(app, 'POST', `/tickets/${settled.id}/merge`, { token: tok.agent, body: { into: open.id } });
    expect(into.status, JSON.stringify(into.body)).toBe(200);
    const [now] = await db.sql`select now() as at`;
    const lead = (await row(open.id)).next_response_due_at.getTime() - now.at.getTime();
    expect(lead).toBeGreaterThan(25 * 60_000);
    expect(lead).toBeLessThanOrEqual(30 * 60_000);

    // Into a target that owes a reply already, breached: the settled source's "thanks"
    // neither pushes that reply back nor clears its breach.
    const late = await ticket('medium');
    const thanked = await ticket('medium');
    await reply(late.id, tok.agent);
    await reply(late.id, tok.user);
    await sweep(31);
    const breached = await row(late.id);
    expect(breached.sla_next_response_breached_at).not.toBeNull();
    await reply(thanked.id, tok.agent);
    expect((await call(app, 'POST', `/tickets/${thanked.id}/status`, { token: tok.agent, body: { status: 'resolved' } })).status).toBe(200);
    await reply(thanked.id, tok.user);
    expect((await call(app, 'POST', `/tickets/${thanked.id}/merge`, { token: tok.agent, body: { into: late.id } })).status).toBe(200);
    const kept = await row(late.id);
    expect(kept.next_response_due_at.getTime()).toBe(breached.next_response_due_at.getTime());
    expect(kept.sla_next_response_breached_at).not.toBeNull();
  });

  it("a merge moves the customer's reply as if written on the target: a pending target opens, a pending source's wait counts", async () => {
    // A customer answers in a new ticket while their first one waits on them (pending).
    const waiting = await ticket('medium');
    const fresh = await ticket('medium');
    await reply(waiting.id, tok.agent);
    expect((await call(app, 'POST', `/tickets/${waiting.id}/status`, { token: tok.agent, body: { status: 'pending' } })).status).toBe(200);
    await reply(fresh.id, tok.agent);
    await reply(fresh.id, tok.user);
    const [owed] = await db.sql`select since from private.ticket_replies_owed where ticket_id = ${fresh.id}`;
    expect((await call(app, 'POST', `/tickets/${fresh.id}/merge`, { token: tok.agent, body: { into: waiting.id } })).status).toBe(200);
    const opened = await row(waiting.id);
    expect(opened.status).toBe('open');
    expect(opened.next_response_due_at.getTime()).toBe(owed.since.getTime() + 30 * 60_000);
    await sweep(31);
    expect((await row(waiting.id)).sla_next_response_breached_at).not.toBeNull();

    // A reply left unanswered on a source set pending two hours: those two hours do not
    // count against the target's clock (it was breached at once).
    const parked = await ticket('medium');
    const into = await ticket('medium');
    await reply(parked.id, tok.agent);
    await reply(parked.id, tok.user);
    expect((await call(app, 'POST', `/tickets/${parked.id}/status`, { token: tok.agent, body: { status: 'pending' } })).status).toBe(200);
    await db.sql`update private.ticket_replies_owed set since = since - interval '125 minutes' where ticket_id = ${parked.id}`;
    await db.sql`update public.tickets set sla_paused_at = sla_paused_at - interval '120 minutes' where id = ${parked.id}`;
    const [{ since }] = await db.sql`select since from private.ticket_replies_owed where ticket_id = ${parked.id}`;
    expect((await call(app, 'POST', `/tickets/${parked.id}/merge`, { token: tok.agent, body: { into: into.id } })).status).toBe(200);
    const carried = await row(into.id);
    // 5 minutes of the 30 ran before the wait; about 25 are left.
    expect(carried.next_response_due_at.getTime() - since.getTime()).toBeGreaterThanOrEqual((30 + 119) * 60_000);
    expect(carried.next_response_due_at.getTime() - since.getTime()).toBeLessThanOrEqual((30 + 121) * 60_000);
    expect(carried.sla_next_response_breached_at).toBeNull();
  });

  it('a pending ticket does not breach it', async () => {
    const t = await ticket('medium');
    await reply(t.id, tok.agent);
    await reply(t.id, tok.user);
    const r = await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'pending' } });
    expect(r.status).toBe(200);
    await sweep(60);
    expect((await row(t.id)).sla_next_response_breached_at).toBeNull();
  });
});

describe('targets met late', () => {
  it('a first response or a resolution after its due time is a breach, marked as of that time, though no sweep saw it; on time it is none', async () => {
    // A rule on breaches, for tickets still waiting: not run for a target met late.
    const [rule] = await db.sql`insert into public.automation_rules (tenant_id, name, event, conditions, actions)
      values (${acme}, 'Escalate breaches', 'ticket.sla_breached', '{}', '[{"type": "set_priority", "priority": "urgent"}]') returning id`;
    try {
      const late = await ticket('medium');
      const onTime = await ticket('medium');
      const due = new Date(Date.now() - 60_000);
      await db.sql`update public.tickets set first_response_due_at = ${due}, due_date = ${due} where id = ${late.id}`;
      await reply(late.id, tok.agent);
      await reply(onTime.id, tok.agent);
      expect((await row(late.id)).sla_first_response_breached_at).toEqual(due);
      expect((await row(onTime.id)).sla_first_response_breached_at).toBeNull();
      const [{ mark }] = await db.sql`select coalesce(max(id), 0) as mark from private.webhook_events`;
      const resolved = await call(app, 'POST', `/tickets/${late.id}/status`, { token: tok.agent, body: { status: 'resolved' } });
      expect(resolved.status, JSON.stringify(resolved.body)).toBe(200);
      expect((await row(late.id)).sla_resolution_breached_at).toEqual(due);
      // Told after the change that resolved it, as the sweep tells a breach after its escalation.
      const told = await db.sql`select type from private.webhook_events where id > ${mark} and ordering_key = ${`ticket:${late.id}`} order by id`;
      expect(told.length).toBeGreaterThan(1);
      expect(told.at(-1)!.type).toBe('ticket.sla_breached');
      // Announced once each, as the sweep would, which now finds nothing more to do.
      await sweep(1);
      const at = due.toISOString();
      expect(await events('ticket.sla_breached', late.id)).toEqual([
        { ticket_id: late.id, number: late.number, kind: 'first_response', met_late: true, at },
        { ticket_id: late.id, number: late.number, kind: 'resolution', met_late: true, at },
      ]);
      const timeline = await db.sql`select data ->> 'kind' as kind from public.ticket_events where ticket_id = ${late.id} and type = 'sla_breached' order by id`;
      expect(timeline.map((e) => e.kind)).toEqual(['first_response', 'resolution']);
      // Answered late, it is not escalated nor told a breach in its conversation, nor given
      // to the rules on breaches.
      const system = await db.sql`select count(*)::int as n from public.ticket_messages where ticket_id = ${late.id} and type = 'system'`;
      expect(system[0].n).toBe(0);
      const ruled = await db.sql`select count(*)::int as n from private.jobs
        where task = 'automation' and payload ->> 'event' = 'ticket.sla_breached' and payload ->> 'ticket_id' = ${late.id}`;
      expect(ruled[0].n).toBe(0);
      expect(await events('ticket.sla_breached', onTime.id)).toEqual([]);
    } finally {
      await db.sql`delete from public.automation_rules where id = ${rule.id}`;
      await db.sql`delete from private.jobs where task = 'automation'`;
    }
  });

  it("a reply owed answered after its due time is told as a breach met late; on time, or breached by the sweep already, it is not told again", async () => {
    await policy('medium', { first_response_minutes: 240, resolution_minutes: 2880, next_response_minutes: 30 });
    const owed = async () => {
      const t = await ticket('medium');
      await reply(t.id, tok.agent); // the first response
      await reply(t.id, tok.user); // a reply owed from now
      expect((await row(t.id)).next_response_due_at).not.toBeNull();
      return t;
    };
    const late = await owed();
    const onTime = await owed();
    const swept = await owed();
    const due = new Date(Date.now() - 60_000);
    await db.sql`update public.tickets set next_response_due_at = ${due} where id = ${swept.id}`;
    await sweep(0); // it comes round for `swept`; `late` falls due after it and is answered first
    expect((await row(swept.id)).sla_next_response_breached_at).not.toBeNull();
    await db.sql`update public.tickets set next_response_due_at = ${due} where id = ${late.id}`;
    const [{ mark }] = await db.sql`select coalesce(max(id), 0) as mark from private.webhook_events`;
    for (const t of [late, onTime, swept]) await reply(t.id, tok.agent);
    const at = due.toISOString();
    const told = await db.sql`select payload -> 'data' as data from private.webhook_events
      where id > ${mark} and type = 'ticket.sla_breached' order by id`;
    expect(told.map((e) => e.data)).toEqual([{ ticket_id: late.id, number: late.number, kind: 'next_response', met_late: true, at }]);
    const timeline = await db.sql`select data from public.ticket_events where ticket_id = ${late.id} and type = 'sla_breached'`;
    expect(timeline.map((e) => e.data)).toEqual([{ kind: 'next_response', at: expect.any(String), met_late: true }]);
    expect(new Date(timeline[0].data.at).getTime()).toBe(due.getTime());
    // Nothing owed any more, no mark kept: the answer ended the reply owed.
    expect(await row(late.id)).toMatchObject({ next_response_due_at: null, sla_next_response_breached_at: null });
  });

  it('an answer written while the ticket waits on the customer is late when its due time passed before the wait began', async () => {
    const t = await ticket('medium');
    const due = new Date(Date.now() - 60_000);
    await db.sql`update public.tickets set first_response_due_at = ${due} where id = ${t.id}`;
    const waiting = await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'pending' } });
    expect(waiting.status, JSON.stringify(waiting.body)).toBe(200);
    await reply(t.id, tok.agent);
    expect(await row(t.id)).toMatchObject({ status: 'pending', sla_first_response_breached_at: due });
    // Due after the wait began: the clock stood still, the answer is in time.
    const inTime = await ticket('medium');
    expect((await call(app, 'POST', `/tickets/${inTime.id}/status`, { token: tok.agent, body: { status: 'pending' } })).status).toBe(200);
    // The wait began 10 s ago; its due time came 5 s ago, during it.
    await db.sql`update public.tickets set sla_paused_at = now() - interval '10 seconds', first_response_due_at = now() - interval '5 seconds'
                 where id = ${inTime.id}`;
    await reply(inTime.id, tok.agent);
    expect((await row(inTime.id)).sla_first_response_breached_at).toBeNull();
  });
});

describe('warnings before a breach', () => {
  it('one ticket.sla_warning per target and due time, inside the lead time only', async () => {
    await policy('high', { first_response_minutes: 60, resolution_minutes: 480, warning_minutes: 10 });
    const t = await ticket('high');
    expect(await sweep(45)).toBe(0);
    expect(await events('ticket.sla_warning', t.id)).toEqual([]);
    await sweep(52);
    await sweep(53);
    const warned = await events('ticket.sla_warning', t.id);
    expect(warned).toEqual([{ ticket_id: t.id, number: t.number, kind: 'first_response', due_at: t.first_response_due_at }]);
    const timeline = await db.sql`select data ->> 'kind' as kind from public.ticket_events where ticket_id = ${t.id} and type = 'sla_warning'`;
    expect(timeline.map((e) => e.kind)).toEqual(['first_response']);
    // Then the breach itself, announced separately.
    await sweep(61);
    expect((await events('ticket.sla_breached', t.id)).map((e) => e.kind)).toEqual(['first_response']);
    // Near the resolution due date, its own warning.
    await sweep(475);
    expect((await events('ticket.sla_warning', t.id)).map((e) => e.kind)).toEqual(['first_response', 'resolution']);
  });

  it('no warning for a ticket waiting for the customer, nor without a lead time', async () => {
    const waiting = await ticket('high');
    const r = await call(app, 'POST', `/tickets/${waiting.id}/status`, { token: tok.agent, body: { status: 'pending' } });
    expect(r.status).toBe(200);
    const plain = await ticket('medium'); // medium has no warning_minutes
    await sweep(55);
    await sweep(239);
    expect(await events('ticket.sla_warning', waiting.id)).toEqual([]);
    expect(await events('ticket.sla_warning', plain.id)).toEqual([]);
  });

  it('the lead time is at most a week, and a policy without it sends none', async () => {
    for (const warning_minutes of [0, 10_081, 1.5, 'ten']) {
      const r = await call(app, 'PUT', '/tickets/sla-policies/urgent', { token: tok.admin, body: { first_response_minutes: 10, resolution_minutes: 20, warning_minutes } });
      expect(r.status, String(warning_minutes)).toBe(422);
    }
    expect(await db.sql`select 1 from public.sla_policies where tenant_id = ${acme} and priority = 'urgent'`).toEqual([]);
  });
});
