// Customers following tickets (issue 16 §5: "agents and, where the tenant allows,
// requester's colleagues"), tried as an attacker would. With the tenant's
// settings.customer_followers on, a ticket's requester adds another customer of the
// tenant; that colleague sees the ticket and its public messages — never internal notes —
// on the API and the direct-table path (the one select policy), hears of public changes
// only, gains no write a requester lacks, and loses it all when removed or when the
// setting goes off. Customers of another tenant, people of another tenant, staff named by
// a customer, and the setting off all get nowhere and change nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/tickets/app.ts';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
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
// Another customer of acme: the requester's colleague.
const colleague = { id: '00000000-0000-4000-8000-0000000000c7', email: 'colleague@acme.test' };
const colleagueClaims = { ...supabaseClaims(users.acmeUser, acme), sub: colleague.id };

beforeAll(async () => {
  db = await freshDatabase('fn_customer_followers');
  auth = await configureAuth(db.url);
  await db.sql`insert into public.users (id, email) values (${colleague.id}, ${colleague.email})`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${colleague.id}, ${colleague.id})`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${colleague.id}, 'user')`;
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.colleague = await supabaseToken(colleague, { tenantId: acme });
  tok.globexUser = await supabaseToken(users.globexUser, { tenantId: globex });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

/** The admin sets the tenant's setting through the tenant settings route. */
async function allowCustomerFollowers(on: boolean) {
  const r = await call(tenantsApp, 'PATCH', `/tenants/${acme}`, { token: tok.admin, body: { settings: { customer_followers: on } } });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.settings.customer_followers).toBe(on);
}
async function ticket() {
  const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Our printer is on fire' } });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${r.body.id}`;
  return r.body as { id: string; number: number };
}
const addColleague = (id: string, token = tok.user, userId = colleague.id) =>
  call(app, 'POST', `/tickets/${id}/followers`, { token, body: { user_id: userId } });
const followersOf = async (id: string) =>
  (await db.sql`select user_id::text from public.ticket_followers where ticket_id = ${id} order by created_at`).map((r) => r.user_id);
/** What the colleague sees of the ticket on both paths: the API's status and the rows a
 *  direct PostgREST select returns (tickets, and the types of its messages). */
async function colleagueSees(id: string) {
  const api = await call(app, 'GET', `/tickets/${id}`, { token: tok.colleague });
  const direct = await probeAs(db.sql, 'authenticated', colleagueClaims, async (tx) => ({
    tickets: (await tx`select id from public.tickets where id = ${id}`).length,
    messages: (await tx`select type from public.ticket_messages where ticket_id = ${id} order by created_at`).map((r) => r.type),
  }));
  if (!direct.ok) throw new Error(direct.error.message);
  return { status: api.status, api: api.body, ...direct.value };
}
const colleagueFeed = async (ticketId: string) =>
  (await db.sql`select type from public.notifications where user_id = ${colleague.id} and ticket_id = ${ticketId} order by created_at, id`)
    .map((r) => r.type);
/** The colleague's notifications about a ticket as they read them: on the API (their feed)
 *  and directly (the select policy, which realtime applies too). */
async function colleagueReads(ticketId: string) {
  const api = await call(app, 'GET', '/tickets/notifications?limit=100', { token: tok.colleague });
  const direct = await probeAs(db.sql, 'authenticated', colleagueClaims, async (tx) =>
    (await tx`select type from public.notifications where ticket_id = ${ticketId} order by created_at, id`).map((r) => r.type));
  if (!direct.ok) throw new Error(direct.error.message);
  return {
    api: api.body.items.filter((n: { ticket_id: string }) => n.ticket_id === ticketId).map((n: { type: string }) => n.type),
    direct: direct.value,
  };
}

describe('with the setting off (the default)', () => {
  it('the requester cannot add a colleague; the colleague sees nothing; nothing changes', async () => {
    const t = await ticket();
    const r = await addColleague(t.id);
    expect(r.status).toBe(403);
    expect(errorCode(r)).toBe('forbidden');
    // Following it themselves: refused the same way.
    expect((await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.user, body: {} })).status).toBe(403);
    expect(await followersOf(t.id)).toEqual([]);
    expect(await colleagueSees(t.id)).toMatchObject({ status: 404, tickets: 0, messages: [] });
    // Nor can a customer list followers.
    const list = await call(app, 'GET', `/tickets/${t.id}/followers`, { token: tok.user });
    expect(list.body.items).toEqual([]);
  });

  it('a direct insert by the requester is refused too', async () => {
    const t = await ticket();
    const r = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser, acme), (tx) =>
      tx`insert into public.ticket_followers (tenant_id, ticket_id, user_id) values (${acme}, ${t.id}, ${colleague.id})`);
    expect(r).toMatchObject({ ok: false, error: { code: '42501' } }); // refused for privilege, not failing otherwise
    expect(await followersOf(t.id)).toEqual([]);
  });
});

describe('with the setting on', () => {
  beforeAll(() => allowCustomerFollowers(true));

  it('the requester adds a colleague, who then sees the ticket and its public messages on both paths, never notes', async () => {
    const t = await ticket();
    expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { type: 'note', content: 'internal: customer is difficult' } })).status).toBe(201);
    expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'We are looking into it' } })).status).toBe(201);
    const r = await addColleague(t.id);
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body).toMatchObject({ user_id: colleague.id, reason: 'manual', added_by: users.acmeUser.id });
    const seen = await colleagueSees(t.id);
    expect(seen.status).toBe(200);
    expect(seen.tickets).toBe(1);
    expect(seen.messages).toEqual(['message']);
    expect(seen.api.messages.map((m: { type: string }) => m.type)).toEqual(['message']);
    expect(JSON.stringify(seen.api)).not.toContain('internal: customer is difficult');
    // In their ticket list too (the policy, not a separate rule).
    const list = await call(app, 'GET', '/tickets', { token: tok.colleague });
    expect(list.body.items.map((i: { id: string }) => i.id)).toContain(t.id);
    // The helpers that read the policy agree with it.
    const helper = await probeAs(db.sql, 'authenticated', colleagueClaims, (tx) =>
      tx`select private.can_see_ticket(${acme}, ${t.id}) as seen`);
    expect(helper).toMatchObject({ ok: true, value: [{ seen: true }] });
    // The requester sees the colleague among the followers; the colleague sees their own follow.
    const byRequester = await call(app, 'GET', `/tickets/${t.id}/followers`, { token: tok.user });
    expect(byRequester.body.items.map((f: { user_id: string }) => f.user_id)).toEqual([colleague.id]);
  });

  it('the colleague hears of public changes only, not of internal notes', async () => {
    const t = await ticket();
    expect((await addColleague(t.id)).status).toBe(201);
    expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { type: 'note', content: 'internal again' } })).status).toBe(201);
    expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'Public answer' } })).status).toBe(201);
    const feed = await colleagueFeed(t.id);
    expect(feed).toContain('follower_added');
    expect(feed).toContain('message.created');
    expect(feed).not.toContain('note.created');
    // Staff followers still hear of notes.
    await call(app, 'POST', `/tickets/${t.id}/followers`, { token: tok.admin, body: {} });
    await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { type: 'note', content: 'for staff' } });
    const [{ n }] = await db.sql`select count(*)::int as n from public.notifications where user_id = ${users.acmeAdmin.id} and ticket_id = ${t.id} and type = 'note.created'`;
    expect(n).toBe(1);
  });

  it('following gives the colleague no write a requester lacks', async () => {
    const t = await ticket();
    expect((await addColleague(t.id)).status).toBe(201);
    const before = (await db.sql`select title, status, priority, team_id, assigned_to from public.tickets where id = ${t.id}`)[0];
    const patch = await call(app, 'PATCH', `/tickets/${t.id}`, { token: tok.colleague, body: { title: 'Hijacked' } });
    expect([403, 404]).toContain(patch.status);
    const status = await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.colleague, body: { status: 'resolved' } });
    expect([403, 404]).toContain(status.status);
    const direct = await probeAs(db.sql, 'authenticated', colleagueClaims, (tx) =>
      tx`update public.tickets set title = 'Hijacked', priority = 'urgent' where id = ${t.id} returning id`);
    expect(direct.ok ? direct.value.length : 0).toBe(0);
    // Nor adds followers of their own, nor removes others'.
    const other = { id: users.acmeUser.id };
    expect((await addColleague(t.id, tok.colleague, other.id)).status).toBe(403);
    expect((await call(app, 'DELETE', `/tickets/${t.id}/followers/${users.acmeAdmin.id}`, { token: tok.colleague })).status).toBe(404);
    expect((await db.sql`select title, status, priority, team_id, assigned_to from public.tickets where id = ${t.id}`)[0]).toEqual(before);
  });

  it('the requester adds customers only: not staff, not someone of another tenant', async () => {
    const t = await ticket();
    const staff = await addColleague(t.id, tok.user, users.acmeAgent.id);
    expect(staff.status).toBe(409);
    expect(errorCode(staff)).toBe('not_customer');
    for (const stranger of [users.globexUser.id, users.globexAdmin.id, '00000000-0000-4000-8000-00000000dead']) {
      const r = await addColleague(t.id, tok.user, stranger);
      expect(r.status, `${stranger} ${JSON.stringify(r.body)}`).toBe(422);
      expect(r.body.error.details.fields).toEqual([expect.objectContaining({ field: 'user_id' })]);
    }
    expect(await followersOf(t.id)).toEqual([]);
  });

  it("another tenant's customer gets nowhere with acme's ticket, on either path", async () => {
    const t = await ticket();
    expect((await addColleague(t.id)).status).toBe(201);
    const before = await followersOf(t.id);
    for (const token of [tok.globexUser, tok.globexAdmin]) {
      expect((await call(app, 'GET', `/tickets/${t.id}/followers`, { token })).status).toBe(404);
      expect((await call(app, 'POST', `/tickets/${t.id}/followers`, { token, body: {} })).status).toBe(404);
      expect((await call(app, 'DELETE', `/tickets/${t.id}/followers/${colleague.id}`, { token })).status).toBe(404);
    }
    for (const who of [users.globexUser, users.globexAdmin]) {
      const r = await probeAs(db.sql, 'authenticated', supabaseClaims(who, globex), async (tx) => {
        const seen = (await tx`select id from public.tickets where id = ${t.id}`).length;
        const follows = (await tx`select id from public.ticket_followers where ticket_id = ${t.id}`).length;
        // Refused by the policy (42501), not by a broken statement or a constraint.
        const inserted = await tx
          .savepoint((sp) => sp`insert into public.ticket_followers (tenant_id, ticket_id, user_id) values (${acme}, ${t.id}, ${who.id})`)
          .then(() => 'inserted', (e: { code?: string }) => e.code ?? 'failed');
        return { seen, follows, inserted };
      });
      expect(r).toEqual({ ok: true, value: { seen: 0, follows: 0, inserted: '42501' } });
    }
    // Even with acme's setting on, a globex customer whose token names acme is no member there.
    const wrongTenant = await supabaseToken(users.globexUser, { tenantId: acme });
    const stranger = await call(app, 'GET', `/tickets/${t.id}`, { token: wrongTenant });
    expect([stranger.status, errorCode(stranger)]).toEqual([403, 'tenant_not_member']);
    expect(await followersOf(t.id)).toEqual(before);
  });

  it('removed by the requester, or leaving by themselves, the colleague loses sight of the ticket', async () => {
    const t = await ticket();
    const told = async () => {
      expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'We are on it' } })).status).toBe(201);
      const read = await colleagueReads(t.id);
      expect(read.api).toContain('message.created');
      expect(read.direct).toContain('message.created');
    };
    expect((await addColleague(t.id)).status).toBe(201);
    await told();
    expect((await call(app, 'DELETE', `/tickets/${t.id}/followers/${colleague.id}`, { token: tok.user })).status).toBe(204);
    expect(await colleagueSees(t.id)).toMatchObject({ status: 404, tickets: 0, messages: [] });
    // What they were told of it goes with their sight of it.
    expect(await colleagueReads(t.id)).toEqual({ api: [], direct: [] });
    expect((await addColleague(t.id)).status).toBe(201);
    await told();
    expect((await call(app, 'DELETE', `/tickets/${t.id}/followers/${colleague.id}`, { token: tok.colleague })).status).toBe(204);
    expect(await colleagueSees(t.id)).toMatchObject({ status: 404, tickets: 0 });
    expect(await colleagueReads(t.id)).toEqual({ api: [], direct: [] });
  });

  it("an assignment made by the customer's own filing is staff's follow: not theirs to see or remove", async () => {
    // The department's team picks an assignee inside the customer's insert, so the follow
    // the assignment makes records the customer's statement as having added it.
    await db.sql`update public.teams set receives_department_tickets = true, auto_assign = 'round_robin' where id = ${teams.acme}`;
    try {
      const r = await call(app, 'POST', '/tickets', { token: tok.user, body: { title: 'Routed and assigned at once' } });
      expect([r.status, r.body.assigned_to]).toEqual([201, users.acmeAgent.id]);
      const [made] = await db.sql`select reason, added_by from public.ticket_followers where ticket_id = ${r.body.id} and user_id = ${users.acmeAgent.id}`;
      // Added by nobody: the customer's statement made it, the customer did not choose it.
      expect(made).toEqual({ reason: 'assigned', added_by: null });
      const listed = await call(app, 'GET', `/tickets/${r.body.id}/followers`, { token: tok.user });
      expect(listed.body.items.map((x: { user_id: string }) => x.user_id)).not.toContain(users.acmeAgent.id);
      const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser, acme), async (tx) => ({
        seen: (await tx`select user_id from public.ticket_followers where ticket_id = ${r.body.id} and user_id = ${users.acmeAgent.id}`).length,
        deleted: (await tx`delete from public.ticket_followers where ticket_id = ${r.body.id} and user_id = ${users.acmeAgent.id} returning id`).length,
      }));
      expect(direct).toEqual({ ok: true, value: { seen: 0, deleted: 0 } });
      const removed = await call(app, 'DELETE', `/tickets/${r.body.id}/followers/${users.acmeAgent.id}`, { token: tok.user });
      expect([removed.status, errorCode(removed)]).toEqual([404, 'not_found']);
      expect(await followersOf(r.body.id)).toContain(users.acmeAgent.id);
    } finally {
      await db.sql`update public.teams set receives_department_tickets = false, auto_assign = 'none' where id = ${teams.acme}`;
    }
  });

  it('turned off, the setting takes sight and notifications away at once; the follows stay unused', async () => {
    const t = await ticket();
    expect((await addColleague(t.id)).status).toBe(201);
    expect((await colleagueSees(t.id)).status).toBe(200);
    await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'Before the switch' } });
    expect((await colleagueReads(t.id)).api).toContain('message.created');
    await allowCustomerFollowers(false);
    try {
      expect(await colleagueSees(t.id)).toMatchObject({ status: 404, tickets: 0, messages: [] });
      // What they were told goes out of sight too.
      expect(await colleagueReads(t.id)).toEqual({ api: [], direct: [] });
      const heard = (await colleagueFeed(t.id)).length;
      await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'Anyone there?' } });
      expect((await colleagueFeed(t.id)).length).toBe(heard);
      // The requester can no longer add anyone, and sees no followers.
      const again = await addColleague(t.id);
      expect(again.status).toBe(403);
      expect((await call(app, 'GET', `/tickets/${t.id}/followers`, { token: tok.user })).body.items).toEqual([]);
      expect(await followersOf(t.id)).toEqual([colleague.id]);
    } finally {
      await allowCustomerFollowers(true);
    }
    expect((await colleagueSees(t.id)).status).toBe(200);
  });
});

describe('demotion', () => {
  it('an agent demoted to customer keeps no follows, so sees nothing a customer would not', async () => {
    await allowCustomerFollowers(true);
    const t = await ticket();
    await db.sql`update public.memberships set role = 'agent' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    try {
      // The admin adds the (now) agent as a follower: a staff follow.
      const follow = await addColleague(t.id, tok.admin);
      expect(follow.status, JSON.stringify(follow.body)).toBeLessThan(300);
      expect(await followersOf(t.id)).toEqual([colleague.id]);
    } finally {
      await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    }
    // Back to customer: the staff follow is gone, and with it the ticket.
    expect(await followersOf(t.id)).toEqual([]);
    expect(await colleagueSees(t.id)).toMatchObject({ status: 404, tickets: 0, messages: [] });
  });

  it("a member demoted to customer keeps no staff notifications, only those about their own tickets", async () => {
    await allowCustomerFollowers(true);
    const t = await ticket();
    await db.sql`update public.memberships set role = 'admin' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    const asStaff = await supabaseToken(colleague, { tenantId: acme });
    let own: string;
    try {
      // Staff for a while: they follow the customer's ticket and hear of its note and reply.
      expect((await call(app, 'POST', `/tickets/${t.id}/followers`, { token: asStaff, body: {} })).status).toBe(201);
      for (const body of [{ content: 'Internal: refund approved', type: 'note' }, { content: 'Your refund is on its way' }]) {
        expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body })).status).toBe(201);
      }
      // And a ticket of their own, with news about it.
      const mine = await call(app, 'POST', '/tickets', { token: asStaff, body: { title: 'My own request' } });
      expect(mine.status, JSON.stringify(mine.body)).toBe(201);
      own = mine.body.id;
      await db.sql`insert into public.notifications (tenant_id, user_id, ticket_id, type) values (${acme}, ${colleague.id}, ${own}, 'status_changed')`;
      const types = (await db.sql`select type from public.notifications where user_id = ${colleague.id} and ticket_id = ${t.id}`).map((r) => r.type).sort();
      expect(types).toEqual(['message.created', 'note.created']);
    } finally {
      await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    }
    const left = await probeAs(db.sql, 'authenticated', colleagueClaims, async (tx) =>
      (await tx`select ticket_id, type from public.notifications`).map((r) => `${r.ticket_id === own ? 'own' : r.ticket_id}:${r.type}`));
    expect(left).toEqual({ ok: true, value: ['own:status_changed'] });
  });

  it('what a person added while staff is not theirs to see or remove once a customer, nor a customer they added once promoted', async () => {
    await allowCustomerFollowers(true);
    const t = await ticket();
    const asColleague = () =>
      probeAs(db.sql, 'authenticated', colleagueClaims, async (tx) => ({
        seen: (await tx`select user_id from public.ticket_followers where ticket_id = ${t.id} and user_id = ${users.acmeAgent.id}`).length,
        deleted: (await tx`delete from public.ticket_followers where ticket_id = ${t.id} and user_id = ${users.acmeAgent.id} returning id`).length,
      }));
    // The colleague, an admin for a while, adds the agent by hand.
    await db.sql`update public.memberships set role = 'admin' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    const colleagueAsStaff = await supabaseToken(colleague, { tenantId: acme });
    try {
      const added = await call(app, 'POST', `/tickets/${t.id}/followers`, { token: colleagueAsStaff, body: { user_id: users.acmeAgent.id } });
      expect(added.status, JSON.stringify(added.body)).toBe(201);
    } finally {
      await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    }
    const [row] = await db.sql`select reason, added_by from public.ticket_followers where ticket_id = ${t.id} and user_id = ${users.acmeAgent.id}`;
    expect(row).toEqual({ reason: 'manual', added_by: colleague.id });
    // A customer again: the agent's follow they added is staff's.
    expect(await asColleague()).toEqual({ ok: true, value: { seen: 0, deleted: 0 } });
    expect(await followersOf(t.id)).toContain(users.acmeAgent.id);

    // The requester adds the colleague (a customer); the colleague is promoted: the
    // requester no longer sees or removes that follow.
    expect((await addColleague(t.id)).status).toBe(201);
    const requesterSees = () =>
      probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeUser, acme), async (tx) => ({
        seen: (await tx`select user_id from public.ticket_followers where ticket_id = ${t.id} and user_id = ${colleague.id}`).length,
        deleted: (await tx`delete from public.ticket_followers where ticket_id = ${t.id} and user_id = ${colleague.id} returning id`).length,
      }));
    expect(await requesterSees()).toEqual({ ok: true, value: { seen: 1, deleted: 1 } });
    await db.sql`update public.memberships set role = 'agent' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    try {
      expect(await requesterSees()).toEqual({ ok: true, value: { seen: 0, deleted: 0 } });
    } finally {
      await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${colleague.id}`;
    }
  });
});

describe('merging', () => {
  it("a merged ticket's followers follow the ticket it went into: a colleague reads their own messages there", async () => {
    await allowCustomerFollowers(true);
    try {
      const [from, into] = [await ticket(), await ticket()];
      expect((await addColleague(from.id)).status).toBe(201);
      expect((await call(app, 'POST', `/tickets/${from.id}/followers`, { token: tok.agent, body: {} })).status).toBe(201);
      const wrote = await call(app, 'POST', `/tickets/${from.id}/messages`, { token: tok.colleague, body: { content: 'Mine too' } });
      expect(wrote.status, JSON.stringify(wrote.body)).toBe(201);
      const merged = await call(app, 'POST', `/tickets/${from.id}/merge`, { token: tok.admin, body: { into: into.id } });
      expect(merged.status, JSON.stringify(merged.body)).toBe(200);
      expect((await followersOf(into.id)).sort()).toEqual([colleague.id, users.acmeAgent.id].sort());
      // The agent is told the merger added them; the colleague's follow stays the requester's.
      const told = await db.sql`select user_id::text, actor_user_id::text from public.notifications
        where ticket_id = ${into.id} and type = 'follower_added' order by user_id`;
      expect(told).toEqual(expect.arrayContaining([{ user_id: users.acmeAgent.id, actor_user_id: users.acmeAdmin.id }]));
      const [kept] = await db.sql`select added_by::text from public.ticket_followers where ticket_id = ${into.id} and user_id = ${colleague.id}`;
      expect(kept.added_by).toBe(users.acmeUser.id);
      const seen = await colleagueSees(into.id);
      expect(seen.status).toBe(200);
      expect(seen.api.messages.map((m: { content: string }) => m.content)).toContain('Mine too');
      // With the setting turned off since, a customer's follow does not move (nor fail the merge).
      const [from2, into2] = [await ticket(), await ticket()];
      expect((await addColleague(from2.id)).status).toBe(201);
      await allowCustomerFollowers(false);
      const merged2 = await call(app, 'POST', `/tickets/${from2.id}/merge`, { token: tok.admin, body: { into: into2.id } });
      expect(merged2.status, JSON.stringify(merged2.body)).toBe(200);
      expect(await followersOf(into2.id)).toEqual([]);
    } finally {
      await allowCustomerFollowers(false);
    }
  });
});

describe("a colleague's reply", () => {
  it('is the customer side answering: a pending ticket opens again; on a Chatwoot conversation it is not posted to the contact as the business', async () => {
    await allowCustomerFollowers(true);
    try {
      const t = await ticket();
      expect((await addColleague(t.id)).status).toBe(201);
      expect((await call(app, 'POST', `/tickets/${t.id}/status`, { token: tok.agent, body: { status: 'pending' } })).status).toBe(200);
      const wrote = await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.colleague, body: { content: 'Here is the model number' } });
      expect(wrote.status, JSON.stringify(wrote.body)).toBe(201);
      const [row] = await db.sql`select status, sla_paused_at from public.tickets where id = ${t.id}`;
      expect(row).toEqual({ status: 'open', sla_paused_at: null });
      // A ticket of a Chatwoot conversation: staff's replies go to the contact, the colleague's do not.
      await db.sql`update public.tickets set chatwoot_conversation_id = '7301' where id = ${t.id}`;
      const replies = async () =>
        (await db.sql`select r.content from private.chatwoot_replies r join public.ticket_messages m on m.id = r.message_id
          where m.ticket_id = ${t.id} order by r.id`).map((r) => r.content);
      expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.colleague, body: { content: 'Customer words' } })).status)
        .toBe(201);
      expect((await call(app, 'POST', `/tickets/${t.id}/messages`, { token: tok.agent, body: { content: 'Staff words' } })).status).toBe(201);
      expect(await replies()).toEqual(['Staff words']);
    } finally {
      await allowCustomerFollowers(false);
    }
  });
});
