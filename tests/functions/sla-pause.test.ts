// The SLA clock stops while a ticket waits for the customer (issue 16 §2): pending notes
// when, leaving pending pushes the open due dates out by the business time it waited,
// priority changes keep the paused time, and the sweep never breaches a waiting ticket.
// The arithmetic is checked across business hours, weekends, time zones and DST.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { asService, closeDb } from '../../shared/db.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const PARIS = { timezone: 'Europe/Paris', days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' };

beforeAll(async () => {
  db = await freshDatabase('fn_sla_pause');
  auth = await configureAuth(db.url);
  await db.sql`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes, business_hours) values
    (${acme}, 'medium', 240, 2880, null), (${acme}, 'high', 60, 480, null), (${acme}, 'urgent', 30, 240, ${db.sql.json(PARIS)})`;
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

async function ticket(priority = 'medium') {
  const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Waiting game', priority } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${r.body.id}`;
  return r.body as { id: string; due_date: string; first_response_due_at: string; created_at: string };
}
const setStatus = async (id: string, status: string) => {
  const r = await call(app, 'POST', `/tickets/${id}/status`, { token: tok.agent, body: { status } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
};
const row = async (id: string) => (await db.sql`select * from public.tickets where id = ${id}`)[0];
/** Moves a running pause into the past, as if the ticket had waited that long. */
const waited = (id: string, minutes: number) =>
  db.sql`update public.tickets set sla_paused_at = sla_paused_at - make_interval(mins => ${minutes}) where id = ${id}`;

describe('business time between two instants', () => {
  const between = async (from: string, to: string, hours: unknown) =>
    (await db.sql`select private.business_minutes_between(${from}::timestamptz, ${to}::timestamptz, ${hours === null ? null : db.sql.json(hours as never)}) as m`)[0].m;

  it('counts the wall clock without business hours, and nothing backwards', async () => {
    expect(await between('2026-03-02T10:00:00Z', '2026-03-02T11:30:00Z', null)).toBe(90);
    expect(await between('2026-03-02T11:30:00Z', '2026-03-02T10:00:00Z', null)).toBe(0);
  });

  it('counts only open hours, in the calendar\'s time zone, across a weekend', async () => {
    // Friday 16:00 Paris (15:00Z in winter) to Monday 10:00 Paris: 60 + 60 minutes.
    expect(await between('2026-01-09T15:00:00Z', '2026-01-12T09:00:00Z', PARIS)).toBe(120);
    // Entirely at night or on a weekend: nothing.
    expect(await between('2026-01-10T08:00:00Z', '2026-01-11T20:00:00Z', PARIS)).toBe(0);
    expect(await between('2026-01-12T18:00:00Z', '2026-01-13T07:00:00Z', PARIS)).toBe(0);
    // A whole working week: 5 × 8 hours.
    expect(await between('2026-01-12T00:00:00Z', '2026-01-19T00:00:00Z', PARIS)).toBe(5 * 8 * 60);
  });

  it('follows the local clock across a DST change', async () => {
    // Paris moves to summer time on Sunday 2026-03-29: Friday 16:00 CET (15:00Z) to Monday
    // 10:00 CEST (08:00Z) is still 60 + 60 business minutes.
    expect(await between('2026-03-27T15:00:00Z', '2026-03-30T08:00:00Z', PARIS)).toBe(120);
    // The calendar's own hours, not UTC's: 07:30Z–08:30Z is 09:30–10:30 in Paris in
    // summer (all open), 08:30–09:30 in winter (half).
    expect(await between('2026-03-30T07:30:00Z', '2026-03-30T08:30:00Z', PARIS)).toBe(60);
    expect(await between('2026-01-12T07:30:00Z', '2026-01-12T08:30:00Z', PARIS)).toBe(30);
  });

  it('counts real minutes through the hour a DST change skips or repeats (a calendar open round the clock)', async () => {
    const always = { timezone: 'Europe/Paris', days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '24:00' };
    const add = async (from: string, minutes: number, hours: unknown) =>
      new Date((await db.sql`select private.add_business_minutes(${from}::timestamptz, ${minutes}, ${db.sql.json(hours as never)}) as at`)[0].at)
        .toISOString();
    // 01:30 CET to 03:30 CEST on 2026-03-29 is one real hour (the local clock says two).
    expect(await between('2026-03-29T00:30:00Z', '2026-03-29T01:30:00Z', always)).toBe(60);
    expect(await add('2026-03-29T00:30:00Z', 120, always)).toBe('2026-03-29T02:30:00.000Z');
    // 02:00 CEST to 02:00 CET on 2026-10-25 is one real hour too (the local clock says none).
    expect(await between('2026-10-25T00:00:00Z', '2026-10-25T01:00:00Z', always)).toBe(60);
    expect(await add('2026-10-25T00:00:00Z', 120, always)).toBe('2026-10-25T02:00:00.000Z');
    // A whole day of each: 23 and 25 real hours; an open-until-midnight day ends at 24:00.
    expect(await between('2026-03-28T23:00:00Z', '2026-03-29T22:00:00Z', always)).toBe(23 * 60);
    expect(await between('2026-10-24T22:00:00Z', '2026-10-25T23:00:00Z', always)).toBe(25 * 60);
    // Office hours across the change: Friday 16:30 CET + 60 business minutes is Monday
    // 09:30 CEST.
    expect(await add('2026-03-27T15:30:00Z', 60, PARIS)).toBe('2026-03-30T07:30:00.000Z');
  });

  it('is the inverse of add_business_minutes inside open hours', async () => {
    const [r] = await db.sql`
      select private.business_minutes_between('2026-01-09T15:00:00Z',
        private.add_business_minutes('2026-01-09T15:00:00Z', 500, ${db.sql.json(PARIS)}), ${db.sql.json(PARIS)}) as m`;
    expect(r.m).toBe(500);
  });

  it('is not for API roles', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAgent, acme), (tx) =>
      tx`select private.business_minutes_between(now(), now(), null)`);
    expect(r).toMatchObject({ ok: false, error: { code: '42501' } }); // refused for privilege, not failing otherwise
  });
});

describe('pausing the clock while pending', () => {
  it('pending stops the clock; leaving it pushes both open due dates out by the wait', async () => {
    const t = await ticket();
    const paused = await setStatus(t.id, 'pending');
    expect(paused.sla_paused_at).not.toBeNull();
    expect(paused.sla_paused_minutes).toBe(0);
    await waited(t.id, 90);
    const resumed = await setStatus(t.id, 'open');
    expect(resumed.sla_paused_at).toBeNull();
    expect(resumed.sla_paused_minutes).toBe(90);
    expect(new Date(resumed.due_date).getTime() - new Date(t.due_date).getTime()).toBe(90 * 60_000);
    expect(new Date(resumed.first_response_due_at).getTime() - new Date(t.first_response_due_at).getTime()).toBe(90 * 60_000);
    // A second wait adds up.
    await setStatus(t.id, 'pending');
    await waited(t.id, 30);
    const again = await setStatus(t.id, 'open');
    expect(again.sla_paused_minutes).toBe(120);
    expect(new Date(again.due_date).getTime() - new Date(t.due_date).getTime()).toBe(120 * 60_000);
  });

  it('a first response already given keeps its met due time; only the open target moves', async () => {
    const t = await ticket();
    const reply = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'On it' } });
    expect(reply.status).toBe(201);
    await setStatus(t.id, 'pending');
    await waited(t.id, 45);
    const resumed = await setStatus(t.id, 'open');
    expect(resumed.first_response_due_at).toBe(t.first_response_due_at);
    expect(new Date(resumed.due_date).getTime() - new Date(t.due_date).getTime()).toBe(45 * 60_000);
  });

  it('a due date the update ending the wait names is kept, not pushed by the wait (a direct client)', async () => {
    const t = await ticket();
    await setStatus(t.id, 'pending');
    await waited(t.id, 120);
    const by = '2026-12-20T17:00:00.000Z';
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAgent, acme), (tx) =>
      tx`update public.tickets set status = 'open', due_date = ${by} where id = ${t.id}
         returning due_date, sla_paused_minutes, first_response_due_at`);
    // The wait still moved the first response, which the update left alone.
    const moved = new Date(new Date(t.first_response_due_at).getTime() + 120 * 60_000).toISOString();
    expect(r.ok && r.value.map((x) => [x.due_date.toISOString(), x.sla_paused_minutes, x.first_response_due_at.toISOString()]))
      .toEqual([[by, 120, moved]]);
  });

  it('under business hours the due dates move by the business time waited', async () => {
    const t = await ticket('urgent');
    await setStatus(t.id, 'pending');
    await waited(t.id, 3 * 24 * 60); // three days, of which only open hours count
    const before = await row(t.id);
    const [expected] = await db.sql.begin(async (tx) => {
      // The same now() as the trigger: one transaction for the expectation and the change.
      const [e] = await tx`select private.business_minutes_between(sla_paused_at, now(), ${tx.json(PARIS)}) as m,
        private.add_business_minutes(due_date, private.business_minutes_between(sla_paused_at, now(), ${tx.json(PARIS)}), ${tx.json(PARIS)}) as due
        from public.tickets where id = ${t.id}`;
      await tx`update public.tickets set status = 'open' where id = ${t.id}`;
      return [e];
    });
    const after = await row(t.id);
    expect(after.sla_paused_minutes).toBe(expected.m);
    expect(expected.m).toBeGreaterThan(0);
    expect(expected.m).toBeLessThanOrEqual(3 * 8 * 60 + 8 * 60);
    expect(after.due_date.getTime()).toBe(expected.due.getTime());
    expect(after.due_date.getTime()).toBeGreaterThan(before.due_date.getTime());
  });

  it('resolved straight from pending and reopened, the resolution clock does not count the wait', async () => {
    const t = await ticket();
    await setStatus(t.id, 'pending');
    await waited(t.id, 90);
    const resolved = await setStatus(t.id, 'resolved');
    expect(resolved.sla_paused_minutes).toBe(90);
    const reopened = await setStatus(t.id, 'open');
    expect(new Date(reopened.due_date).getTime() - new Date(t.due_date).getTime()).toBe(90 * 60_000);
    // The same due date a recomputation gives (a priority change and back).
    for (const priority of ['high', 'medium']) {
      expect((await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority } })).status).toBe(200);
    }
    expect((await row(t.id)).due_date.getTime()).toBe(new Date(reopened.due_date).getTime());
  });

  it('reopened days after it was resolved, the ticket is not breached for the time it sat resolved', async () => {
    const t = await ticket('high'); // 60 minutes to a first response, 480 to resolve
    await setStatus(t.id, 'resolved');
    // Resolved three days ago (no reply was ever written: the first response is still owed).
    await db.sql`update public.tickets set resolved_at = resolved_at - interval '3 days' where id = ${t.id}`;
    const reopened = await setStatus(t.id, 'open');
    const moved = new Date(reopened.due_date).getTime() - new Date(t.due_date).getTime();
    expect(moved).toBeGreaterThanOrEqual(3 * 24 * 60 * 60_000);
    expect(moved).toBeLessThan(3 * 24 * 60 * 60_000 + 5 * 60_000);
    expect(new Date(reopened.first_response_due_at).getTime() - new Date(t.first_response_due_at).getTime()).toBe(moved);
    expect(reopened.sla_paused_minutes).toBe(Math.round(moved / 60_000));
    await asService(null, (tx) => tx`select private.run_sla_sweep(now())`);
    expect(await row(t.id)).toMatchObject({ status: 'open', sla_first_response_breached_at: null, sla_resolution_breached_at: null });
    // The moved targets still count: past them, the sweep breaches (resolved_at was moved
    // back past the creation, so the targets are three days and eight hours out).
    await asService(null, (tx) => tx`select private.run_sla_sweep(now() + interval '3 days 9 hours')`);
    expect((await row(t.id)).sla_resolution_breached_at).not.toBeNull();
  });

  it('reopened with a new priority in the same update, the due date computed again still skips the settled time', async () => {
    const t = await ticket('high');
    await setStatus(t.id, 'resolved');
    await db.sql`update public.tickets set resolved_at = resolved_at - interval '3 days' where id = ${t.id}`;
    // One direct update (PostgREST's PATCH), both columns.
    await db.sql`update public.tickets set status = 'open', priority = 'medium' where id = ${t.id}`;
    const r = await row(t.id);
    const settled = r.sla_paused_minutes as number;
    expect(settled).toBeGreaterThanOrEqual(3 * 24 * 60);
    // medium: 2,880 minutes to resolve, plus the settled time.
    expect(r.due_date.getTime() - new Date(t.created_at).getTime()).toBe((2880 + settled) * 60_000);
    await asService(null, (tx) => tx`select private.run_sla_sweep(now())`);
    expect(await row(t.id)).toMatchObject({ status: 'open', sla_resolution_breached_at: null });
  });

  it('a priority no policy covers takes the due dates away (the sweep breaches nothing); back under one, they return', async () => {
    const t = await ticket('medium');
    await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'Which version?' } });
    await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Version 2' } });
    const low = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'low' } });
    expect(low.status, JSON.stringify(low.body)).toBe(200);
    expect(await row(t.id)).toMatchObject({ first_response_due_at: null, due_date: null, next_response_due_at: null });
    await asService(null, (tx) => tx`select private.run_sla_sweep(now() + interval '5 days')`);
    expect(await row(t.id)).toMatchObject({ status: 'open', sla_first_response_breached_at: null, sla_resolution_breached_at: null });
    const back = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'medium' } });
    expect(back.body.due_date).toBe(t.due_date);
    // A due date set by hand where no policy applies is kept through a change to another
    // place no policy covers (no team, still low).
    const manual = await ticket('low');
    const by = new Date(Date.now() + 86_400_000).toISOString();
    expect((await call(app, 'PATCH', `/tickets/${manual.id}`, { token: tok.agent, body: { due_date: by } })).status).toBe(200);
    await db.sql`update public.tickets set team_id = null where id = ${manual.id}`;
    expect((await row(manual.id)).due_date.toISOString()).toBe(by);
  });

  it('a priority change keeps the time already waited', async () => {
    const t = await ticket();
    await setStatus(t.id, 'pending');
    await waited(t.id, 60);
    await setStatus(t.id, 'open');
    const r = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority: 'high' } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const created = new Date(t.created_at).getTime();
    expect(new Date(r.body.first_response_due_at).getTime() - created).toBe((60 + 60) * 60_000);
    expect(new Date(r.body.due_date).getTime() - created).toBe((480 + 60) * 60_000);
  });

  it('the sweep never breaches a pending ticket; once it resumes, the moved dates count', async () => {
    const t = await ticket('high');
    await setStatus(t.id, 'pending');
    const sweep = (minutes: number) => asService(null, async (tx) =>
      (await tx`select private.run_sla_sweep(now() + make_interval(mins => ${minutes})) as n`)[0].n as number);
    await sweep(10_000);
    const waiting = await row(t.id);
    expect(waiting.status).toBe('pending');
    expect(waiting.sla_first_response_breached_at).toBeNull();
    expect(waiting.sla_resolution_breached_at).toBeNull();
    await waited(t.id, 600);
    await setStatus(t.id, 'open');
    // 60 first-response minutes + 600 waited: not breached 30 minutes after creation + 600.
    await sweep(630);
    expect((await row(t.id)).sla_first_response_breached_at).toBeNull();
    await sweep(700);
    const breached = await row(t.id);
    expect(breached.sla_first_response_breached_at).not.toBeNull();
    expect(breached.status).toBe('escalated');
  });

  it('restored days after it was deleted, the ticket is not breached for the time it spent deleted', async () => {
    const t = await ticket('high'); // 60 minutes to a first response, 480 to resolve
    expect((await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok.admin })).status).toBe(200);
    await db.sql`update public.tickets set deleted_at = deleted_at - interval '3 days' where id = ${t.id}`;
    const restored = await call(app, 'POST', `/tickets/${t.id}/restore`, { token: tok.admin });
    expect(restored.status, JSON.stringify(restored.body)).toBe(200);
    const moved = new Date(restored.body.due_date).getTime() - new Date(t.due_date).getTime();
    expect(moved).toBeGreaterThanOrEqual(3 * 24 * 60 * 60_000);
    expect(moved).toBeLessThan(3 * 24 * 60 * 60_000 + 5 * 60_000);
    expect(new Date(restored.body.first_response_due_at).getTime() - new Date(t.first_response_due_at).getTime()).toBe(moved);
    expect(restored.body.sla_paused_minutes).toBe(Math.round(moved / 60_000));
    await asService(null, (tx) => tx`select private.run_sla_sweep(now())`);
    expect(await row(t.id)).toMatchObject({ status: 'open', sla_first_response_breached_at: null, sla_resolution_breached_at: null });
    // The moved targets still count: an hour past the first response's, the sweep breaches.
    await asService(null, (tx) => tx`select private.run_sla_sweep(now() + interval '3 days 2 hours')`);
    expect((await row(t.id)).sla_first_response_breached_at).not.toBeNull();
  });

  it('restored, the next-response clock skips the deleted time after the reply it waits for', async () => {
    // Low priority has no policy elsewhere in this file: here, one with a next response.
    await db.sql`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes, next_response_minutes)
      values (${acme}, 'low', 600, 4800, 120)`;
    const t = await ticket('low'); // a reply owed within 120 minutes of the customer's message
    const answer = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'Looking' } });
    expect(answer.status).toBe(201);
    const asked = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Any news?' } });
    expect(asked.status).toBe(201);
    // The customer asked two days ago and the ticket was deleted an hour after: 47 hours
    // of the reply's clock were spent deleted.
    await db.sql`update private.ticket_replies_owed set since = since - interval '2 days' where ticket_id = ${t.id}`;
    await db.sql`update public.tickets set next_response_due_at = next_response_due_at - interval '2 days' where id = ${t.id}`;
    const before = await row(t.id);
    expect(before.next_response_due_at).not.toBeNull();
    expect((await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok.admin })).status).toBe(200);
    await db.sql`update public.tickets set deleted_at = deleted_at - interval '47 hours' where id = ${t.id}`;
    expect((await call(app, 'POST', `/tickets/${t.id}/restore`, { token: tok.admin })).status).toBe(200);
    const after = await row(t.id);
    const moved = after.next_response_due_at.getTime() - before.next_response_due_at.getTime();
    expect(moved).toBeGreaterThanOrEqual(47 * 60 * 60_000);
    expect(moved).toBeLessThan(47 * 60 * 60_000 + 5 * 60_000);
    // A recomputation (a priority change and back) gives the same due time: the minutes are kept.
    for (const priority of ['medium', 'low']) {
      expect((await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.agent, body: { priority } })).status).toBe(200);
    }
    expect((await row(t.id)).next_response_due_at.getTime()).toBe(after.next_response_due_at.getTime());
    await asService(null, (tx) => tx`select private.run_sla_sweep(now())`);
    expect((await row(t.id)).sla_next_response_breached_at).toBeNull();
    await asService(null, (tx) => tx`select private.run_sla_sweep(now() + interval '3 hours')`);
    expect((await row(t.id)).sla_next_response_breached_at).not.toBeNull();
    await db.sql`delete from public.sla_policies where tenant_id = ${acme} and priority = 'low'`;
  });

  it('a pending ticket deleted and restored counts its time deleted once, in its wait', async () => {
    const t = await ticket();
    await setStatus(t.id, 'pending');
    expect((await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok.admin })).status).toBe(200);
    await db.sql`update public.tickets set deleted_at = deleted_at - interval '60 minutes' where id = ${t.id}`;
    await waited(t.id, 60);
    const restored = await call(app, 'POST', `/tickets/${t.id}/restore`, { token: tok.admin });
    expect(restored.status).toBe(200);
    expect(restored.body.due_date).toBe(t.due_date);
    const resumed = await setStatus(t.id, 'open');
    expect(resumed.sla_paused_minutes).toBe(60);
    expect(new Date(resumed.due_date).getTime() - new Date(t.due_date).getTime()).toBe(60 * 60_000);
  });

  it('the pause columns are the database\'s: API roles cannot write them', async () => {
    const t = await ticket();
    for (const set of ['sla_paused_minutes = 100000', 'sla_paused_at = null']) {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
        tx.unsafe(`update public.tickets set ${set} where id = '${t.id}'`));
      expect(r.ok, set).toBe(false);
    }
    expect((await row(t.id)).sla_paused_minutes).toBe(0);
  });
});
