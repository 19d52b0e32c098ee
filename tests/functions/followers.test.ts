// Followers, mentions and notifications (issue 16 §5) through the tickets function
// in-process, with real tokens and a real database: a follower sees the ticket (the one
// select policy), every change by someone else notifies them, mentions in internal notes
// make followers, each person sees and marks only their own notifications, and another
// tenant's ids get nowhere.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
// An acme agent on no team: sees a ticket only by following it (or being assigned).
const outsider = { id: '00000000-0000-4000-8000-0000000000d2', email: 'outsider-agent@acme.test' };

beforeAll(async () => {
  db = await freshDatabase('fn_followers');
  auth = await configureAuth(db.url);
  await db.sql`insert into public.users (id, email) values (${outsider.id}, ${outsider.email})`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${outsider.id}, ${outsider.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${outsider.id}, 'agent')`;
  // Someone listens, so events reach the outbox.
  await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${acme}, 'https://hooks.example.com/f', 'v1:x')`;
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.outsider = await supabaseToken(outsider, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  tok.globexAgent = await supabaseToken(users.globexAgent, { tenantId: globex });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

async function ticket() {
  const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Follow this one' } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${r.body.id}`;
  return r.body as { id: string; number: number };
}
const feed = async (token: string, query = '') => {
  const r = await call(app, 'GET', `/tickets/notifications${query}`, { token });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { items: { id: string; type: string; ticket_id: string; actor_user_id: string | null; read_at: string | null }[]; next: string | null; unread: number };
};
const followersOf = async (id: string) =>
  (await db.sql`select user_id, reason from public.ticket_followers where ticket_id = ${id} order by created_at`).map((r) => `${r.user_id}:${r.reason}`);

describe('following', () => {
  it('staff follow a ticket they see; following twice is a 200 that changes nothing', async () => {
    const t = await ticket();
    const first = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: {} });
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ user_id: users.acmeAgent.id, reason: 'manual', added_by: users.acmeAgent.id });
    const again = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: {} });
    expect(again.status).toBe(200);
    expect(await followersOf(t.id)).toEqual([`${users.acmeAgent.id}:manual`]);
    const list = await call(app, 'GET', `/tickets/${t.id}/followers`, { token: tok.admin });
    expect(list.body.items.map((f: { user_id: string }) => f.user_id)).toEqual([users.acmeAgent.id]);
  });

  it('a follower sees and works the ticket through the one policy, on both paths, and loses it on unfollow', async () => {
    const t = await ticket();
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.outsider })).status).toBe(404);
    // The outsider cannot add themselves to a ticket they cannot see…
    const self = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.outsider, body: {} });
    expect(self.status).toBe(404);
    // …but a colleague who sees it can add them.
    const added = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: { user_id: outsider.id } });
    expect(added.status).toBe(201);
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.outsider })).status).toBe(200);
    const listed = await call(app, 'GET', '/tickets?limit=100', { token: tok.outsider });
    expect(listed.body.items.map((i: { id: string }) => i.id)).toContain(t.id);
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(outsider as never, acme), async (tx) =>
      (await tx`select id from public.tickets where id = ${t.id}`).length);
    expect(direct).toEqual({ ok: true, value: 1 });
    const seen = await db.sql`select private.can_see_ticket(${acme}, ${t.id}) as seen`;
    expect(seen[0].seen).toBe(false); // the superuser's own claims are nobody's
    // A staff follower works the ticket like the team's agents.
    const patch = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.outsider, body: { priority: 'high' } });
    expect(patch.status, JSON.stringify(patch.body)).toBe(200);
    expect((await db.sql`select priority from public.tickets where id = ${t.id}`)[0].priority).toBe('high');
    const gone = await call(app, 'DELETE', `/tickets/${t.id}/followers/${outsider.id}`, { token: tok.outsider });
    expect(gone.status).toBe(204);
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.outsider })).status).toBe(404);
    const after = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.outsider, body: { priority: 'low' } });
    expect(after.status).toBe(404);
    expect((await db.sql`select priority from public.tickets where id = ${t.id}`)[0].priority).toBe('high');
  });

  it('only staff follow: customers neither follow nor see followers; a customer cannot be added', async () => {
    const t = await ticket();
    expect((await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.user, body: {} })).status).toBe(403);
    // Where customers may not follow (the default), a customer sees no followers.
    const seen = await call(app, 'GET', `/tickets/${t.id}/followers`, { token: tok.user });
    expect(seen.status).toBe(200);
    expect(seen.body.items).toEqual([]);
    const customer = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: { user_id: users.acmeUser.id } });
    expect(customer.status).toBe(409);
    expect(errorCode(customer)).toBe('not_staff');
    const stranger = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: { user_id: users.globexAgent.id } });
    expect([409, 422]).toContain(stranger.status);
    for (const body of [{ user_id: 'nope' }, { user_id: outsider.id, extra: 1 }]) {
      expect((await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body })).status).toBe(422);
    }
    expect(await followersOf(t.id)).toEqual([]);
  });

  it('the assignee follows from the moment they get the ticket', async () => {
    const t = await ticket();
    const r = await call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.admin, body: { user_id: users.acmeAgent.id } });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(await followersOf(t.id)).toEqual([`${users.acmeAgent.id}:assigned`]);
    const n = await feed(tok.agent, '?unread=true');
    expect(n.items.filter((i) => i.ticket_id === t.id).map((i) => i.type)).toEqual(['assigned']);
  });

  it("the assignee's own follow, or a mention, outlasts the assignment; the assignment's alone goes with it", async () => {
    for (const how of ['follow', 'mention'] as const) {
      const t = await ticket();
      const assign = (user_id: string) => call(app, 'PUT', `/tickets/${t.id}/assignee`, { token: tok.admin, body: { user_id } });
      expect((await assign(outsider.id)).status).toBe(200);
      expect(await followersOf(t.id)).toEqual([`${outsider.id}:assigned`]);
      if (how === 'follow') {
        const kept = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.outsider, body: {} });
        expect(kept.status, JSON.stringify(kept.body)).toBe(200);
        expect(kept.body).toMatchObject({ user_id: outsider.id, reason: 'manual', added_by: outsider.id });
      } else {
        const note = await call(app, 'POST', `/tickets/${t.id}/messages`, {
          token: tok.agent,
          body: { type: 'note', content: `[@Outsider](mention://user/${outsider.id}/Outsider), keep an eye on it` },
        });
        expect(note.status, JSON.stringify(note.body)).toBe(201);
      }
      // Handed to a colleague: the outsider (on no team) still follows, and still sees it.
      expect((await assign(users.acmeAgent.id)).status).toBe(200);
      const reason = how === 'follow' ? 'manual' : 'mentioned';
      expect(await followersOf(t.id)).toEqual([`${outsider.id}:${reason}`, `${users.acmeAgent.id}:assigned`]);
      expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.outsider })).status).toBe(200);
      // The colleague's follow came with the assignment only: it goes with it.
      expect((await assign(users.acmeAdmin.id)).status).toBe(200);
      expect(await followersOf(t.id)).toEqual([`${outsider.id}:${reason}`, `${users.acmeAdmin.id}:assigned`]);
    }
  });
});

describe('notifications', () => {
  it('every change by someone else notifies each follower, never the actor', async () => {
    const t = await ticket();
    await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: {} });
    await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: { user_id: users.acmeAdmin.id } });
    await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Any news?' } });
    await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'pending' } });
    const agentTypes = (await feed(tok.agent)).items.filter((i) => i.ticket_id === t.id).map((i) => i.type);
    expect(agentTypes).toEqual(['message.created']); // their own status change is not news to them
    const adminTypes = (await feed(tok.admin)).items.filter((i) => i.ticket_id === t.id).map((i) => i.type);
    expect(adminTypes).toEqual(['status_changed', 'message.created', 'follower_added']);
  });

  it("a deleted ticket's followers are told of the deletion, though the ticket is out of their sight", async () => {
    const t = await ticket();
    await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: {} });
    await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.user, body: { content: 'Before it goes' } });
    const deleted = await call(app, 'DELETE', `/tickets/${t.id}`, { token: tok.admin });
    expect([deleted.status, deleted.body.deleted_at]).toEqual([200, expect.any(String)]);
    // Only the notice stays readable: what they were told of a ticket they cannot see goes.
    const types = (await feed(tok.agent)).items.filter((i) => i.ticket_id === t.id).map((i) => i.type);
    expect(types).toEqual(['deleted']);
  });

  it('a mention in an internal note makes the mentioned agent a follower, notified and announced', async () => {
    const t = await ticket();
    const note = await call(app, 'POST', `/tickets/${t.id}/messages`, {
      token: tok.agent,
      body: { type: 'note', content: `[@Outsider](mention://user/${outsider.id}/Outsider) and [@Customer](mention://user/${users.acmeUser.id}/C) look` },
    });
    expect(note.status, JSON.stringify(note.body)).toBe(201);
    expect(await followersOf(t.id)).toEqual([`${outsider.id}:mentioned`]); // the customer is not staff: text only
    const n = await feed(tok.outsider);
    expect(n.items.filter((i) => i.ticket_id === t.id).map((i) => i.type)).toEqual(['mentioned']);
    expect((await call(app, 'GET', `/tickets/${t.id}`, { token: tok.outsider })).status).toBe(200);
    const events = await db.sql`select type, payload -> 'data' as data from private.webhook_events
      where payload -> 'data' ->> 'ticket_id' = ${t.id} and type in ('ticket.mentioned', 'ticket.follower_added') order by id`;
    expect(events.map((e) => e.type)).toEqual(['ticket.follower_added', 'ticket.mentioned']);
    expect(events[1].data).toMatchObject({ user_id: outsider.id, by: users.acmeAgent.id, number: t.number });
    // A mention in a public reply is just text.
    const reply = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: `mention://user/${users.acmeAdmin.id}` } });
    expect(reply.status).toBe(201);
    expect(await followersOf(t.id)).toEqual([`${outsider.id}:mentioned`]);
  });

  it('a mention added by editing a note is told as a new note\'s; mentions it had already are not told again', async () => {
    const t = await ticket();
    const first = `[@Outsider](mention://user/${outsider.id}/Outsider) please look`;
    const note = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { type: 'note', content: first } });
    expect(note.status).toBe(201);
    const told = async () =>
      (await db.sql`select user_id, count(*)::int as n from public.notifications
        where ticket_id = ${t.id} and type = 'mentioned' group by user_id order by user_id`).map((r) => `${r.user_id}:${r.n}`);
    expect(await told()).toEqual([`${outsider.id}:1`]);
    const edit = (content: string) =>
      call(app, 'PATCH', `/tickets/${t.id}/messages/${note.body.id}`, { token: tok.agent, body: { content } });
    const added = await edit(`${first}, and [@Admin](mention://user/${users.acmeAdmin.id}/Admin) too`);
    expect(added.status, JSON.stringify(added.body)).toBe(200);
    expect(await told()).toEqual([`${outsider.id}:1`, `${users.acmeAdmin.id}:1`].sort());
    expect((await followersOf(t.id)).sort()).toEqual([`${outsider.id}:mentioned`, `${users.acmeAdmin.id}:mentioned`].sort());
    const events = await db.sql`select payload -> 'data' ->> 'user_id' as user_id from private.webhook_events
      where payload -> 'data' ->> 'ticket_id' = ${t.id} and type = 'ticket.mentioned' order by id`;
    expect(events.map((e) => e.user_id)).toEqual([outsider.id, users.acmeAdmin.id]);
    // A typo fixed elsewhere tells no one again.
    expect((await edit(`${first.replace('please', 'Please')}, and [@Admin](mention://user/${users.acmeAdmin.id}/Admin) too`)).status).toBe(200);
    expect(await told()).toEqual([`${outsider.id}:1`, `${users.acmeAdmin.id}:1`].sort());
  });

  it('each person sees and marks only their own, with a stable cursor', async () => {
    const mine = await feed(tok.outsider);
    expect(mine.unread).toBeGreaterThan(0);
    const adminRows = (await db.sql`select id from public.notifications where user_id = ${users.acmeAdmin.id}`).map((r) => r.id);
    // Marking someone else's ids changes nothing.
    const foreign = await call(app, 'POST', '/tickets/notifications/read', { token: tok.outsider, body: { ids: adminRows } });
    expect(foreign.body.updated).toBe(0);
    expect((await db.sql`select count(*)::int as n from public.notifications where user_id = ${users.acmeAdmin.id} and read_at is not null`)[0].n).toBe(0);
    const one = await call(app, 'POST', '/tickets/notifications/read', { token: tok.outsider, body: { ids: [mine.items[0].id] } });
    expect(one.body.updated).toBe(1);
    expect((await feed(tok.outsider)).unread).toBe(mine.unread - 1);
    const all = await call(app, 'POST', '/tickets/notifications/read', { token: tok.outsider, body: {} });
    expect(all.body.updated).toBe(mine.unread - 1);
    expect((await feed(tok.outsider, '?unread=true')).items).toEqual([]);
    // Pages.
    const page1 = await feed(tok.admin, '?limit=1');
    expect(page1.items).toHaveLength(1);
    const page2 = await feed(tok.admin, `?limit=1&cursor=${page1.next}`);
    expect(page2.items[0].id).not.toBe(page1.items[0].id);
    expect((await call(app, 'GET', '/tickets/notifications?cursor=garbage', { token: tok.admin })).status).toBe(422);
    expect((await call(app, 'POST', '/tickets/notifications/read', { token: tok.admin, body: { ids: [] } })).status).toBe(422);
    // Direct table path: nobody else's rows, not even an admin's view of their agents'.
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), async (tx) =>
      (await tx`select distinct user_id from public.notifications`).map((r) => r.user_id));
    expect(direct).toEqual({ ok: true, value: [users.acmeAdmin.id] });
  });

  it('globex gets nowhere with acme ids', async () => {
    const t = await ticket();
    await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.agent, body: {} });
    const before = await followersOf(t.id);
    for (const token of [tok.globexAdmin, tok.globexAgent]) {
      expect((await call(app, 'GET', `/tickets/${t.id}/followers`, { token })).status).toBe(404);
      expect((await call(app, 'POST', `/tickets/${t.id}/followers`, { token, body: {} })).status).toBe(404);
      expect((await call(app, 'DELETE', `/tickets/${t.id}/followers/${users.acmeAgent.id}`, { token })).status).toBe(404);
    }
    expect(await followersOf(t.id)).toEqual(before);
    const ids = (await db.sql`select id from public.notifications where tenant_id = ${acme}`).map((r) => r.id);
    const r = await call(app, 'POST', '/tickets/notifications/read', { token: tok.globexAdmin, body: { ids } });
    expect(r.body.updated).toBe(0);
    expect((await feed(tok.globexAdmin)).items.every((i) => !ids.includes(i.id))).toBe(true);
  });
});
