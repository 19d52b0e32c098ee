// SLA policies per priority and optionally per team (issue 16 §2): a team's policy for a
// priority wins over the tenant-wide one for that team's tickets, wherever a ticket's
// policy is read (due dates, the pause, the next-response clock, the sweep's warnings —
// all through private.sla_policy_for); a ticket changing team gets its due dates again,
// keeping the time it waited, and its next-response clock follows its policy too
// (20261206132000); another tenant's team is refused and changes nothing.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { root } from '../../scripts/stack.mjs';
import { asService, closeDb } from '../../shared/db.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const SECOND_TEAM = '2a000000-0000-4000-8000-00000000a002';
const MIN = 60_000;

beforeAll(async () => {
  db = await freshDatabase('fn_sla_team_policies');
  auth = await configureAuth(db.url);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  await db.sql`insert into public.teams (tenant_id, id, name, department) values (${acme}, ${SECOND_TEAM}, 'Second line', 'technical')`;
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${acme}, 'https://hooks.example.com/sla-teams', 'v1:x')`;
  // Tenant-wide: medium 240 / 2880, no next-response target, no warnings.
  await put('medium', null, { first_response_minutes: 240, resolution_minutes: 2880 });
  // The first team's medium: 60 / 480, next response 30, warned 20 minutes ahead.
  await put('medium', teams.acme, {
    first_response_minutes: 60,
    resolution_minutes: 480,
    next_response_minutes: 30,
    warning_minutes: 20,
  });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

async function put(priority: string, teamId: string | null, body: Record<string, unknown>) {
  const r = await call(app, 'PUT', `/tickets/sla-policies/${priority}${teamId ? `?team_id=${teamId}` : ''}`, {
    token: tok.admin,
    body,
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}
/** A customer's ticket, then (as an admin would route it) moved to a team. */
async function ticket(teamId: string | null) {
  const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Whose clock?', priority: 'medium' } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  if (teamId) await patch(r.body.id, { team_id: teamId });
  return await row(r.body.id);
}
async function patch(id: string, body: Record<string, unknown>) {
  const r = await call(app, 'PATCH', `/tickets/${id}`, { token: tok.admin, body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body;
}
type Dates = {
  id: string;
  created_at: Date;
  due_date: Date;
  first_response_due_at: Date;
  next_response_due_at: Date | null;
  sla_next_response_breached_at: Date | null;
  sla_paused_minutes: number;
};
const row = async (id: string) => (await db.sql`select * from public.tickets where id = ${id}`)[0] as unknown as Dates;
/** The reply staff owe an answer to, kept beside the ticket (20261206132000). */
const owedOf = async (id: string) =>
  (await db.sql`select since, paused_minutes from private.ticket_replies_owed where ticket_id = ${id}`).map((r) => ({ ...r }))[0] as
    | { since: Date; paused_minutes: number }
    | undefined ?? null;
const after = (t: { created_at: Date }, at: Date) => (at.getTime() - t.created_at.getTime()) / MIN;
const policies = async () =>
  (await db.sql`select team_id, priority, first_response_minutes, resolution_minutes from public.sla_policies
                where tenant_id = ${acme} order by team_id nulls first, priority`).map((r) => ({ ...r }));

describe('the policy of a ticket', () => {
  it("a team's policy for the priority beats the tenant-wide one; other teams get the tenant's", async () => {
    const onTeam = await ticket(teams.acme);
    expect(after(onTeam, onTeam.first_response_due_at)).toBe(60);
    expect(after(onTeam, onTeam.due_date)).toBe(480);
    const noTeam = await ticket(null);
    expect(after(noTeam, noTeam.first_response_due_at)).toBe(240);
    expect(after(noTeam, noTeam.due_date)).toBe(2880);
    const otherTeam = await ticket(SECOND_TEAM);
    expect(after(otherTeam, otherTeam.due_date)).toBe(2880);
  });

  it('a ticket created straight on the team (staff) starts with the team\'s targets', async () => {
    const r = await call(app, 'POST', '/tickets', {
      token: tok.agent,
      body: { title: 'Filed on the team', priority: 'medium', team_id: teams.acme },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const t = await row(r.body.id);
    expect(after(t, t.due_date)).toBe(480);
  });

  it('changing team computes the due dates again, both ways, as a priority change does', async () => {
    const t = await ticket(null);
    await patch(t.id, { team_id: teams.acme });
    let now = await row(t.id);
    expect(after(t, now.first_response_due_at)).toBe(60);
    expect(after(t, now.due_date)).toBe(480);
    await patch(t.id, { team_id: SECOND_TEAM });
    now = await row(t.id);
    expect(after(t, now.due_date)).toBe(2880);
    await patch(t.id, { team_id: teams.acme });
    await patch(t.id, { team_id: null });
    now = await row(t.id);
    expect(after(t, now.due_date)).toBe(2880);
    // The timeline says the team changed; the due dates came with it.
    const [{ n }] = await db.sql`select count(*)::int as n from public.ticket_events where ticket_id = ${t.id} and type = 'team_changed'`;
    expect(n).toBe(4);
  });

  it('an update that sets the due date itself keeps it, as with a priority change', async () => {
    const t = await ticket(null);
    const due = new Date(t.created_at.getTime() + 7 * 24 * 60 * MIN).toISOString();
    await patch(t.id, { team_id: teams.acme, due_date: due });
    expect((await row(t.id)).due_date.toISOString()).toBe(due);
    // ... while the first response follows the policy the ticket moved to (the team's 60
    // minutes, not the tenant's 240), as on insert.
    expect(after(t, (await row(t.id)).first_response_due_at)).toBe(60);
    // Moved off it with another due date set, to no policy at all: that due date stays,
    // the old policy's first response goes.
    await put('urgent', teams.acme, { first_response_minutes: 15, resolution_minutes: 120 });
    await patch(t.id, { priority: 'urgent', due_date: new Date(t.created_at.getTime() + 3 * 24 * 60 * MIN).toISOString() });
    expect(after(t, (await row(t.id)).first_response_due_at)).toBe(15);
    const later = new Date(t.created_at.getTime() + 5 * 24 * 60 * MIN).toISOString();
    await patch(t.id, { team_id: SECOND_TEAM, due_date: later });
    const moved = await row(t.id);
    expect([moved.due_date.toISOString(), moved.first_response_due_at]).toEqual([later, null]);
    await call(app, 'DELETE', `/tickets/sla-policies/urgent?team_id=${teams.acme}`, { token: tok.admin });
  });

  it("a settled ticket's due dates are its history: its team deleted, or its priority changed, leaves them as they were", async () => {
    const GONE_TEAM = '2a000000-0000-4000-8000-00000000a0ff';
    await db.sql`insert into public.teams (tenant_id, id, name, department) values (${acme}, ${GONE_TEAM}, 'Short-lived', 'technical')`;
    await put('medium', GONE_TEAM, { first_response_minutes: 30, resolution_minutes: 90 });
    const resolved = await ticket(GONE_TEAM);
    const closed = await ticket(GONE_TEAM);
    for (const [id, status] of [[resolved.id, 'resolved'], [closed.id, 'resolved'], [closed.id, 'closed']]) {
      const r = await call(app, 'POST', `/tickets/${id}/status`, { token: tok.admin, body: { status } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    const dates = async (id: string) => {
      const r = await row(id);
      return [r.due_date?.toISOString(), r.first_response_due_at?.toISOString(), r.next_response_due_at];
    };
    const [resolvedBefore, closedBefore] = [await dates(resolved.id), await dates(closed.id)];
    expect(after(resolved, (await row(resolved.id)).due_date)).toBe(90);
    // The team goes (its settled tickets have no team now): their 90 minutes stay.
    await db.sql`delete from public.teams where tenant_id = ${acme} and id = ${GONE_TEAM}`;
    expect((await db.sql`select count(*)::int as n from public.tickets where team_id is null and id in (${resolved.id}, ${closed.id})`)[0].n).toBe(2);
    expect([await dates(resolved.id), await dates(closed.id)]).toEqual([resolvedBefore, closedBefore]);
    // So does a priority change after the fact.
    await patch(resolved.id, { priority: 'low' });
    expect(await dates(resolved.id)).toEqual(resolvedBefore);
  });

  it('a team or priority changed while settled is applied at the reopening: the same targets, whichever came first', async () => {
    const st = async (id: string, status: string) => {
      const r = await call(app, 'POST', `/tickets/${id}/status`, { token: tok.admin, body: { status } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };
    const [a, b] = [await ticket(teams.acme), await ticket(teams.acme)];
    expect(after(a, (await row(a.id)).due_date)).toBe(480);
    for (const t of [a, b]) await st(t.id, 'resolved');
    await db.sql`update public.tickets set resolved_at = resolved_at - interval '60 minutes' where id in (${a.id}, ${b.id})`;
    // a: moved to the second line (the tenant-wide medium, 240 / 2880) while resolved,
    // which leaves its dates as they were; then reopened.
    await patch(a.id, { team_id: SECOND_TEAM });
    expect(after(a, (await row(a.id)).due_date)).toBe(480);
    await st(a.id, 'open');
    // b: reopened, then moved.
    await st(b.id, 'open');
    await patch(b.id, { team_id: SECOND_TEAM });
    for (const t of [a, b]) {
      const r = await row(t.id);
      expect([r.sla_paused_minutes, after(t, r.due_date), after(t, r.first_response_due_at)], t === a ? 'a' : 'b')
        .toEqual([60, 2880 + 60, 240 + 60]);
    }
    // A due date set by hand while settled is kept at the reopening.
    const c = await ticket(teams.acme);
    await st(c.id, 'resolved');
    await patch(c.id, { team_id: SECOND_TEAM });
    await patch(c.id, { due_date: new Date(c.created_at.getTime() + 1000 * MIN).toISOString() });
    await st(c.id, 'open');
    expect(after(c, (await row(c.id)).due_date)).toBe(1000);
    expect(await db.sql`select * from private.tickets_sla_stale where ticket_id in (${a.id}, ${b.id}, ${c.id})`).toHaveLength(0);
  });

  it('a team policy removed: the tenant-wide one governs the team\'s tickets again at their next change', async () => {
    await put('high', teams.acme, { first_response_minutes: 10, resolution_minutes: 100 });
    await put('high', null, { first_response_minutes: 50, resolution_minutes: 500 });
    const t = await ticket(teams.acme);
    await patch(t.id, { priority: 'high' });
    expect(after(t, (await row(t.id)).due_date)).toBe(100);
    const del = await call(app, 'DELETE', `/tickets/sla-policies/high?team_id=${teams.acme}`, { token: tok.admin });
    expect(del.status).toBe(204);
    await patch(t.id, { priority: 'low' });
    await patch(t.id, { priority: 'high' });
    expect(after(t, (await row(t.id)).due_date)).toBe(500);
  });
});

describe('the pause and the other clocks read the same policy', () => {
  it('a pause is kept when the team (and so the policy) changes afterwards', async () => {
    const t = await ticket(teams.acme);
    const st = async (status: string) => {
      // An admin: off the team, the team's agent no longer sees the ticket.
      const r = await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.admin, body: { status } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    };
    await st('pending');
    await db.sql`update public.tickets set sla_paused_at = sla_paused_at - interval '90 minutes' where id = ${t.id}`;
    await st('open');
    let now = await row(t.id);
    expect(now.sla_paused_minutes).toBe(90);
    expect(after(t, now.due_date)).toBe(480 + 90);
    expect(after(t, now.first_response_due_at)).toBe(60 + 90);
    // Off the team: the tenant's targets, plus the 90 minutes already waited.
    await patch(t.id, { team_id: null });
    now = await row(t.id);
    expect(after(t, now.due_date)).toBe(2880 + 90);
    expect(after(t, now.first_response_due_at)).toBe(240 + 90);
    // Changing team while waiting: the running pause is added when the wait ends.
    await st('pending');
    await patch(t.id, { team_id: teams.acme });
    expect(after(t, (await row(t.id)).due_date)).toBe(480 + 90);
    await db.sql`update public.tickets set sla_paused_at = sla_paused_at - interval '30 minutes' where id = ${t.id}`;
    await st('open');
    now = await row(t.id);
    expect(now.sla_paused_minutes).toBe(120);
    expect(after(t, now.due_date)).toBe(480 + 120);
  });

  it("a customer's reply starts the next-response clock of the team's policy (the tenant has none)", async () => {
    const onTeam = await ticket(teams.acme);
    const noTeam = await ticket(null);
    for (const id of [onTeam.id, noTeam.id]) {
      const r = await call(app, 'POST', `/tickets/${id}/messages`, { token: tok.user, body: { content: 'Any news?' } });
      expect(r.status).toBe(201);
    }
    const [m] = await db.sql`select created_at from public.ticket_messages where ticket_id = ${onTeam.id} and type = 'message' order by created_at desc limit 1`;
    const due = (await row(onTeam.id)).next_response_due_at as Date;
    expect(due).not.toBeNull();
    // Started from the reply's transaction time: 30 minutes on.
    expect((due.getTime() - (m.created_at as Date).getTime()) / MIN).toBe(30);
    expect((await row(noTeam.id)).next_response_due_at).toBeNull();
  });

  it("a customer's reply waits by the policy governing the ticket now: on the team its clock runs from the reply; off it, it stops", async () => {
    const t = await ticket(null);
    const r = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Still broken' } });
    expect(r.status).toBe(201);
    const [reply] = await db.sql`select created_at from public.ticket_messages where id = ${r.body.id}`;
    const since = (reply.created_at as Date).getTime();
    let now = await row(t.id);
    expect(now.next_response_due_at).toBeNull(); // the tenant-wide policy has no such target
    expect((await owedOf(t.id))?.since.getTime()).toBe(since); // but the answer is owed
    // Kept beside the ticket: the reply changed nothing of the ticket's row but its activity.
    const [{ n: updates }] = await db.sql`select count(*)::int as n from public.audit_logs
      where table_name = 'tickets' and record_key ->> 'id' = ${t.id} and action = 'UPDATE'`;
    expect(updates).toBe(0);
    await patch(t.id, { team_id: teams.acme });
    expect(((await row(t.id)).next_response_due_at!.getTime() - since) / MIN).toBe(30);
    // Breached on the team, then moved off: the clock stops, and the breach of the reply
    // still owed stays (20261207215000); moved back, the clock runs from that reply again,
    // already breached: one missed reply, one breach.
    await asService(null, (tx) => tx`select private.run_sla_sweep(${new Date(since + 31 * MIN)}::timestamptz)`);
    const breachedAt = (await row(t.id)).sla_next_response_breached_at;
    expect(breachedAt).not.toBeNull();
    await patch(t.id, { team_id: null });
    now = await row(t.id);
    expect(now).toMatchObject({ next_response_due_at: null, sla_next_response_breached_at: breachedAt });
    await patch(t.id, { team_id: teams.acme });
    now = await row(t.id);
    expect((now.next_response_due_at!.getTime() - since) / MIN).toBe(30);
    expect(now.sla_next_response_breached_at).toEqual(breachedAt);
    await asService(null, (tx) => tx`select private.run_sla_sweep(${new Date(since + 40 * MIN)}::timestamptz)`);
    expect((await row(t.id)).sla_next_response_breached_at).toEqual(breachedAt);
  });

  it('an answer stays an answer: a change of policy after it starts no clock, even once its author is no longer staff', async () => {
    const t = await ticket(teams.acme);
    expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Help' } })).status).toBe(201);
    expect((await row(t.id)).next_response_due_at).not.toBeNull();
    const answer = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'On it' } });
    expect(answer.status, JSON.stringify(answer.body)).toBe(201);
    expect((await row(t.id)).next_response_due_at).toBeNull();
    expect(await owedOf(t.id)).toBeNull();
    // The agent who answered becomes a customer of the tenant: the answer was still staff's.
    await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${users.acmeAgent.id}`;
    try {
      await patch(t.id, { team_id: null });
      await patch(t.id, { team_id: teams.acme });
      expect((await row(t.id)).next_response_due_at).toBeNull();
    } finally {
      await db.sql`update public.memberships set role = 'agent' where tenant_id = ${acme} and user_id = ${users.acmeAgent.id}`;
    }
  });

  it('a priority change gives the running clock the new target, keeping the time the ticket waited on the customer', async () => {
    await put('urgent', teams.acme, { first_response_minutes: 15, resolution_minutes: 120, next_response_minutes: 5 });
    try {
      const t = await ticket(teams.acme);
      const r = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Any news?' } });
      expect(r.status).toBe(201);
      // The reply an hour ago (its clock with it), so the waits below come after it.
      await db.sql`update private.ticket_replies_owed set since = since - interval '1 hour' where ticket_id = ${t.id}`;
      await db.sql`update public.tickets set next_response_due_at = next_response_due_at - interval '1 hour' where id = ${t.id}`;
      const since = (await owedOf(t.id))!.since.getTime();
      const fromReply = async () => ((await row(t.id)).next_response_due_at!.getTime() - since) / MIN;
      expect(await fromReply()).toBe(30);
      // Twenty minutes waiting on the customer push the clock by as much.
      const st = async (status: string) =>
        expect((await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.admin, body: { status } })).status).toBe(200);
      await st('pending');
      await db.sql`update public.tickets set sla_paused_at = sla_paused_at - interval '20 minutes' where id = ${t.id}`;
      await st('open');
      expect(await fromReply()).toBe(50);
      expect((await owedOf(t.id))!.paused_minutes).toBe(20);
      // The team's medium target edited since (to 45): the running clock is left as it
      // was, and the wait is still the 20 minutes waited, not read back from the old time.
      await put('medium', teams.acme, { first_response_minutes: 60, resolution_minutes: 480, next_response_minutes: 45, warning_minutes: 20 });
      expect(await fromReply()).toBe(50);
      // Raised to urgent: 5 minutes from the reply, plus the 20 waited.
      await patch(t.id, { priority: 'urgent' });
      expect(await fromReply()).toBe(5 + 20);
      await patch(t.id, { priority: 'medium' });
      expect(await fromReply()).toBe(45 + 20);
      // A wait ended by the same update as the change counts too, once: 40 more minutes
      // make the new clock (5 + 20 + 40) the old one's time (45 + 20), which the pause's
      // own push must not move again.
      await st('pending');
      await db.sql`update public.tickets set sla_paused_at = sla_paused_at - interval '40 minutes' where id = ${t.id}`;
      await db.sql`update public.tickets set status = 'open', priority = 'urgent' where id = ${t.id}`;
      expect(await fromReply()).toBe(5 + 20 + 40);
      expect((await owedOf(t.id))!.paused_minutes).toBe(60);
    } finally {
      // The other tests count this team's policies and read its medium one.
      await db.sql`delete from public.sla_policies where tenant_id = ${acme} and team_id = ${teams.acme} and priority = 'urgent'`;
      await put('medium', teams.acme, { first_response_minutes: 60, resolution_minutes: 480, next_response_minutes: 30, warning_minutes: 20 });
    }
  });

  it("a follower's reply ends the ticket's wait, as the requester's does: the clock runs from the reply, the wait kept in the due dates", async () => {
    // Filed by an admin for themselves: the tenant's customer who writes is a follower, on
    // the customer's side of the ticket (20261207146000: before, the ticket kept waiting
    // on the customer who had just answered).
    const [t] = await db.sql`insert into public.tickets (tenant_id, title, created_by, team_id, priority)
      values (${acme}, 'Waiting', ${users.acmeAdmin.id}, ${teams.acme}, 'medium') returning id`;
    await db.sql`update public.tickets set status = 'pending' where id = ${t.id}`;
    await db.sql`update public.tickets set sla_paused_at = sla_paused_at - interval '60 minutes' where id = ${t.id}`;
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content)
      values (${acme}, ${t.id}, ${users.acmeUser.id}, 'message', 'Me too')`;
    const reopened = await row(t.id) as unknown as { status: string; sla_paused_at: Date | null; sla_paused_minutes: number };
    expect(reopened).toMatchObject({ status: 'open', sla_paused_at: null, sla_paused_minutes: 60 });
    const owed = (await owedOf(t.id))!;
    expect(owed.paused_minutes).toBe(0);
    expect(((await row(t.id)).next_response_due_at!.getTime() - owed.since.getTime()) / MIN).toBe(30);
  });

  it("the sweep warns by the team's lead time, and not tickets whose policy has none", async () => {
    const onTeam = await ticket(teams.acme);
    const noTeam = await ticket(null);
    // 45 minutes on: the team ticket's first response (due at 60) is inside its 20-minute lead time.
    await asService(null, (tx) => tx`select private.run_sla_sweep(${new Date(onTeam.created_at.getTime() + 45 * MIN)}::timestamptz)`);
    const warned = async (id: string) =>
      (await db.sql`select data ->> 'kind' as kind from public.ticket_events where ticket_id = ${id} and type = 'sla_warning'`)
        .map((r) => r.kind);
    expect(await warned(onTeam.id)).toEqual(['first_response']);
    // Even at 235 minutes (inside any lead time of the tenant's 240), no warning: the tenant-wide policy has none.
    await asService(null, (tx) => tx`select private.run_sla_sweep(${new Date(noTeam.created_at.getTime() + 235 * MIN)}::timestamptz)`);
    expect(await warned(noTeam.id)).toEqual([]);
  });
});

describe("existing tickets' next-response clocks (20261206132000)", () => {
  it('are given the reply owed and the wait by the migration, read from their clocks and messages', async () => {
    // Tickets as they stood before the migration: clocks without the reply they run from.
    const owed = await ticket(teams.acme);
    const answered = await ticket(teams.acme);
    const raised = await ticket(teams.acme);
    const untargeted = await ticket(null); // the tenant-wide medium policy: no next-response target
    const goneAuthor = await ticket(null);
    const reply = new Date(Date.now() - 2 * 60 * MIN);
    for (const t of [owed, answered, raised, untargeted, goneAuthor]) {
      await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
        values (${acme}, ${t.id}, ${users.acmeUser.id}, 'message', 'Any news?', ${reply})`;
    }
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
      values (${acme}, ${answered.id}, ${users.acmeAgent.id}, 'message', 'Done', ${new Date(reply.getTime() + MIN)})`;
    // An answer whose author's account is gone since (the key set to null): not owed.
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content, created_at)
      values (${acme}, ${goneAuthor.id}, null, 'message', 'Done', ${new Date(reply.getTime() + MIN)})`;
    const ids = [owed.id, answered.id, raised.id, untargeted.id, goneAuthor.id];
    await db.sql`delete from private.ticket_replies_owed where ticket_id in ${db.sql(ids)}`;
    // owed: the team's medium (30 minutes), pushed 20 by a wait the ticket had.
    await db.sql`update public.tickets set next_response_due_at = ${new Date(reply.getTime() + 50 * MIN)}, sla_paused_minutes = 20
      where id = ${owed.id}`;
    // raised: still on low's time (240) after a change to medium before the migration, no wait.
    await db.sql`update public.tickets set next_response_due_at = ${new Date(reply.getTime() + 240 * MIN)}, sla_paused_minutes = 0
      where id = ${raised.id}`;
    await db.sql`update public.tickets set next_response_due_at = null where id = ${answered.id}`;

    // The migration's own backfill, as written in it.
    const migration = readFileSync(path.join(root, 'supabase/migrations/20261206132000_next_response_follows_the_policy.sql'), 'utf8');
    const from = migration.indexOf('-- backfill:begin');
    const to = migration.indexOf('-- backfill:end');
    expect(from).toBeGreaterThan(0);
    expect(to).toBeGreaterThan(from);
    await db.sql.unsafe(migration.slice(from, to));

    expect(await owedOf(owed.id)).toEqual({ since: reply, paused_minutes: 20 });
    expect(await owedOf(raised.id)).toEqual({ since: reply, paused_minutes: 0 }); // not 210: that was low's time
    expect(await owedOf(untargeted.id)).toEqual({ since: reply, paused_minutes: 0 });
    expect(await owedOf(answered.id)).toBeNull();
    expect(await owedOf(goneAuthor.id)).toBeNull();
    // And a priority change now gives each clock the new target from that reply and wait.
    for (const t of [owed, raised, goneAuthor]) {
      await patch(t.id, { priority: 'high' });
      await patch(t.id, { priority: 'medium' });
    }
    expect(((await row(owed.id)).next_response_due_at!.getTime() - reply.getTime()) / MIN).toBe(30 + 20);
    expect(((await row(raised.id)).next_response_due_at!.getTime() - reply.getTime()) / MIN).toBe(30);
    expect((await row(goneAuthor.id)).next_response_due_at).toBeNull();
  });
});

describe('the routes', () => {
  it('list the tenant-wide policies by default, a team\'s own with team_id', async () => {
    const wide = await call(app, 'GET', '/tickets/sla-policies', { token: tok.user });
    expect(wide.status).toBe(200);
    expect(wide.body.items.every((p: { team_id: string | null }) => p.team_id === null)).toBe(true);
    expect(wide.body.items.find((p: { priority: string }) => p.priority === 'medium')).toMatchObject({ first_response_minutes: 240 });
    const team = await call(app, 'GET', `/tickets/sla-policies?team_id=${teams.acme}`, { token: tok.user });
    expect(team.status).toBe(200);
    expect(team.body.items).toEqual([expect.objectContaining({ priority: 'medium', team_id: teams.acme, first_response_minutes: 60 })]);
  });

  it('a PUT for a team updates that team\'s policy in place, not the tenant-wide one', async () => {
    const before = await policies();
    const r = await put('medium', teams.acme, { first_response_minutes: 60, resolution_minutes: 480, next_response_minutes: 30, warning_minutes: 20 });
    expect(r).toMatchObject({ team_id: teams.acme, priority: 'medium' });
    expect(await policies()).toEqual(before);
  });

  it("another tenant's team is refused: 422 on team_id for a PUT, 404 for a DELETE, nothing for a GET — nothing changes", async () => {
    const before = await policies();
    const r = await call(app, 'PUT', `/tickets/sla-policies/medium?team_id=${teams.globex}`, {
      token: tok.admin,
      body: { first_response_minutes: 1, resolution_minutes: 2 },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(422);
    expect(r.body.error.details.fields).toEqual([expect.objectContaining({ field: 'team_id' })]);
    const gone = await call(app, 'PUT', `/tickets/sla-policies/medium?team_id=2f000000-0000-4000-8000-000000000404`, {
      token: tok.admin,
      body: { first_response_minutes: 1, resolution_minutes: 2 },
    });
    expect(gone.status).toBe(422);
    const del = await call(app, 'DELETE', `/tickets/sla-policies/high?team_id=${teams.globex}`, { token: tok.admin });
    expect(del.status).toBe(404);
    expect(errorCode(del)).toBe('not_found');
    const list = await call(app, 'GET', `/tickets/sla-policies?team_id=${teams.globex}`, { token: tok.admin });
    expect(list.body.items).toEqual([]);
    expect(await policies()).toEqual(before);
    // Globex's own policies are untouched too.
    const [{ n }] = await db.sql`select count(*)::int as n from public.sla_policies where tenant_id = ${tenants.globex.id}`;
    expect(n).toBe(0);
  });

  it('the direct-table path refuses another tenant\'s team by the composite key', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
      tx`insert into public.sla_policies (tenant_id, team_id, priority, first_response_minutes, resolution_minutes)
         values (${acme}, ${teams.globex}, 'low', 5, 50)`);
    expect(r).toMatchObject({ ok: false, error: { code: '23503' } });
  });

  it('bad input is refused with the common error shape and only admins set team policies', async () => {
    const bad = await call(app, 'PUT', '/tickets/sla-policies/medium?team_id=not-a-uuid', {
      token: tok.admin,
      body: { first_response_minutes: 1, resolution_minutes: 2 },
    });
    expect(bad.status).toBe(422);
    expect(errorCode(bad)).toBe('validation_failed');
    expect(await policies()).toHaveLength(3);
    const agent = await call(app, 'PUT', `/tickets/sla-policies/medium?team_id=${teams.acme}`, {
      token: tok.agent,
      body: { first_response_minutes: 1, resolution_minutes: 2 },
    });
    expect(agent.status).toBe(403);
  });

  it('the lookup is not for API roles', async () => {
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
      tx`select private.sla_policy_for(${acme}, null, 'medium')`);
    expect(r).toMatchObject({ ok: false, error: { code: '42501' } }); // refused for privilege, not failing otherwise
  });
});
