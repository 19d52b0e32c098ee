// A platform user who joined by invitation, made an API key, filed tickets and wrote
// messages can be deleted (`delete from public.users`, as Supabase Auth's user deletion
// and Clerk's user.deleted reach it), and the deletion sends nothing of theirs out again
// (20261206038000). Before, the delete failed for such a person (the accepted
// invitation's check, the key's guard), and where it went through, every message of
// theirs went to the tenant's webhook receivers once more as `message.updated`.
// Their invitations go with them, the accepted and the pending, in every tenant
// (20261207141000): their address stays in none.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { closeDb } from '../../shared/db.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
const acme = tenants.acme.id;

beforeAll(async () => {
  db = await freshDatabase('fn_user_deletion');
  auth = await configureAuth(db.url);
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

describe('deleting a platform user', () => {
  it('goes through for someone who joined by invitation and made a key, revokes the key, and sends nothing of theirs again', async () => {
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
    // A receiver of every event in the tenant (the outbox writes; nothing is delivered here).
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${acme}, 'https://hooks.example.com/all', 'v1:x', '{}')`;

    // Invited as an admin, signs up, accepts.
    const invite = await call(tenantsApp, 'POST', `/tenants/${acme}/invitations`, { token: admin, body: { email: 'leaver@acme.test', role: 'admin' } });
    expect(invite.status, JSON.stringify(invite.body)).toBe(201);
    const [leaver] = await db.sql`insert into public.users (email) values ('leaver@acme.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${leaver.id}, ${leaver.id})`;
    const token = await supabaseToken({ id: leaver.id, email: 'leaver@acme.test' });
    expect((await call(tenantsApp, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token })).status).toBe(200);
    const inTenant = await supabaseToken({ id: leaver.id, email: 'leaver@acme.test' }, { tenantId: acme });

    // Makes a key, files a ticket, writes a reply and a note.
    const key = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: inTenant, body: { name: 'sync', scopes: ['tickets:read'] } });
    expect(key.status, JSON.stringify(key.body)).toBe(201);
    const ticket = await call(ticketsApp, 'POST', '/tickets', { token: inTenant, body: { title: 'Written by the leaver' } });
    expect(ticket.status, JSON.stringify(ticket.body)).toBe(201);
    for (const body of [{ content: 'A reply of theirs, not to be sent again' }, { content: 'A note of theirs', type: 'note' }]) {
      expect((await call(ticketsApp, 'POST', `/tickets/${ticket.body.id}/messages`, { token: inTenant, body })).status).toBe(201);
    }
    expect((await call(ticketsApp, 'GET', `/tickets/${ticket.body.id}`, { token: key.body.key })).status).toBe(200);
    // And is assigned a ticket of someone else's.
    const assigned = await call(ticketsApp, 'POST', '/tickets', { token: admin, body: { title: 'Theirs to solve', assigned_to: leaver.id } });
    expect(assigned.status, JSON.stringify(assigned.body)).toBe(201);

    const keysUsed = async () =>
      Number((await db.sql`select coalesce(sum(used), 0) as n from private.usage_counters where tenant_id = ${acme} and metric = 'api_keys'`)[0].n);
    // Another tenant has invited them too, and waits.
    const globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: tenants.globex.id });
    const elsewhere = await call(tenantsApp, 'POST', `/tenants/${tenants.globex.id}/invitations`, {
      token: globexAdmin,
      body: { email: 'Leaver@acme.test', role: 'user' },
    });
    expect(elsewhere.status, JSON.stringify(elsewhere.body)).toBe(201);
    const keysBefore = await keysUsed();
    const [{ mark }] = await db.sql`select coalesce(max(id), 0) as mark from private.webhook_events`;
    await db.sql`delete from public.users where id = ${leaver.id}`;

    // Gone, their records kept without them.
    expect(await db.sql`select 1 from public.users where id = ${leaver.id}`).toEqual([]);
    // Their address goes from every tenant's invitations: the one they accepted, the one waiting.
    expect(await db.sql`select id from public.invitations where id in (${invite.body.id}, ${elsewhere.body.id})`).toEqual([]);
    expect(await db.sql`select id from public.invitations where lower(email) = 'leaver@acme.test'`).toEqual([]);
    const [k] = await db.sql`select created_by, revoked_at is not null as revoked from public.api_keys where id = ${key.body.id}`;
    expect(k).toEqual({ created_by: null, revoked: true });
    // Its place in the plan's api_keys limit is given back.
    expect(await keysUsed()).toBe(keysBefore - 1);
    const refused = await call(ticketsApp, 'GET', `/tickets/${ticket.body.id}`, { token: key.body.key });
    expect([refused.status, errorCode(refused)]).toEqual([401, 'api_key_revoked']);
    const [t] = await db.sql`select created_by, title from public.tickets where id = ${ticket.body.id}`;
    expect(t).toEqual({ created_by: null, title: 'Written by the leaver' });

    // What receivers hear: that the membership ended and the ticket they had is unassigned;
    // not their ticket and messages again.
    const events = await db.sql`select type, payload -> 'data' ->> 'id' as id from private.webhook_events where id > ${mark} order by id`;
    expect(events.map((e) => `${e.type}${e.type === 'ticket.assigned' ? `:${e.id}` : ''}`).sort()).toEqual(
      ['membership.deleted', `ticket.assigned:${assigned.body.id}`].sort(),
    );
  });

  it('retired with their last login (Clerk user.deleted, Supabase Auth deletion), their invitations go too, in every tenant; with a login left, none does', async () => {
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
    const globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: tenants.globex.id });
    const accepted = await call(tenantsApp, 'POST', `/tenants/${acme}/invitations`, { token: admin, body: { email: 'retiree@acme.test', role: 'agent' } });
    expect(accepted.status, JSON.stringify(accepted.body)).toBe(201);
    const [p] = await db.sql`insert into public.users (email) values ('retiree@acme.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id)
      values ('https://clerk.example.test', 'user_retiree', ${p.id}), ('http://127.0.0.1:54321/auth/v1', ${p.id}, ${p.id})`;
    const token = await supabaseToken({ id: p.id, email: 'retiree@acme.test' });
    expect((await call(tenantsApp, 'POST', `/tenants/invitations/${accepted.body.id}/accept`, { token })).status).toBe(200);
    const waiting = await call(tenantsApp, 'POST', `/tenants/${tenants.globex.id}/invitations`, {
      token: globexAdmin,
      body: { email: 'Retiree@acme.test', role: 'user' },
    });
    expect(waiting.status, JSON.stringify(waiting.body)).toBe(201);
    const theirs = () => db.sql`select id from public.invitations where id in (${accepted.body.id}, ${waiting.body.id}) order by id`;
    // One login of two goes: the person stays, and so do their invitations.
    await db.sql`select private.retire_identity('https://clerk.example.test', 'user_retiree')`;
    expect(await theirs()).toHaveLength(2);
    // The last: retired (the row kept for the records naming them), the address with no tenant.
    await db.sql`select private.retire_identity('http://127.0.0.1:54321/auth/v1', ${p.id})`;
    expect((await db.sql`select status from public.users where id = ${p.id}`)[0].status).toBe('deleted');
    expect(await theirs()).toEqual([]);
    expect(await db.sql`select id from public.invitations where lower(email) = 'retiree@acme.test'`).toEqual([]);
  });

  it('two of a person\'s logins deleted at once retire them (the person\'s row orders the two)', async () => {
    const [p] = await db.sql`insert into public.users (email) values ('two-logins@acme.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id)
      values ('https://clerk.example.test', 'user_two', ${p.id}), ('http://127.0.0.1:54321/auth/v1', ${p.id}, ${p.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${p.id}, 'user')`;
    const first = await db.sql.reserve();
    const second = await db.sql.reserve();
    try {
      await first`begin`;
      await first`select private.retire_identity('https://clerk.example.test', 'user_two')`;
      const [{ pid }] = await first`select pg_backend_pid() as pid`;
      await second`begin`;
      const other = second`select private.retire_identity('http://127.0.0.1:54321/auth/v1', ${p.id})`.then(() => second`commit`);
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await first`commit`;
      await other;
    } finally {
      first.release();
      second.release();
    }
    const [u] = await db.sql`select status from public.users where id = ${p.id}`;
    expect(u.status).toBe('deleted');
    expect((await db.sql`select count(*)::int as n from public.memberships where user_id = ${p.id}`)[0].n).toBe(0);
  });
});
