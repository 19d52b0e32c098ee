// Webhooks in and out. Clerk events signed by the real svix library (valid, tampered,
// wrong secret, old timestamp, several signatures, missing headers); replays, also
// concurrent, applied once; Supabase Auth's trigger and token hook; Chatwoot
// conversations becoming tickets; and outbound events reaching a receiver that fails,
// times out and recovers — all of them, in order per ticket, each verified with the
// standardwebhooks library.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { parse as parseToml } from 'smol-toml';
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { Webhook as SvixWebhook } from 'svix';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { app as tenantsApp } from '../functions/tenants/app.ts';
import { app as ticketsApp } from '../functions/tickets/app.ts';
import { app as jobsApp } from '../functions/jobs/app.ts';
import { app as webhooksApp } from '../functions/webhooks/app.ts';
import { encryptJson } from '../shared/crypto.ts';
import { closeDb } from '../shared/db.ts';
import { chatwootUrlToken } from '../shared/webhooks/chatwoot.ts';
import { runJobs } from '../shared/jobs/runner.ts';
import { resolvedTargetProblem, webhookTargetProblem } from '../shared/webhooks/ssrf.ts';
import { apiKey } from '../scripts/tokens.mjs';
import { settled, someoneWaitsFor, whileHeld } from './helpers/advisory-locks.ts';
import { freshDatabase, probeAs, type TestDatabase } from './helpers/db.ts';
import { call, errorCode } from './helpers/http.ts';
import { LOCAL_CLERK_ISSUER, supabaseClaims, tenants, users } from './helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from './helpers/tokens.ts';

const CLERK_SECRET = `whsec_${randomBytes(24).toString('base64')}`;
let db: TestDatabase;
let auth: AuthFixture;
let adminToken: string;

beforeAll(async () => {
  db = await freshDatabase('webhooks');
  auth = await configureAuth(db.url, {
    CLERK_WEBHOOK_SECRET: CLERK_SECRET,
    PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
  });
  adminToken = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

// ---------------------------------------------------------------- Clerk

function clerkRequest(event: unknown, opts: { secret?: string; id?: string; at?: Date; extraSignature?: string; body?: string } = {}) {
  const body = opts.body ?? JSON.stringify(event);
  const id = opts.id ?? `msg_${randomBytes(8).toString('hex')}`;
  const at = opts.at ?? new Date();
  const signature = new SvixWebhook(opts.secret ?? CLERK_SECRET).sign(id, at, body);
  return {
    body,
    headers: {
      'svix-id': id,
      'svix-timestamp': String(Math.floor(at.getTime() / 1000)),
      'svix-signature': opts.extraSignature ? `${opts.extraSignature} ${signature}` : signature,
    },
  };
}

async function sendClerk(req: { body: string; headers: Record<string, string> }) {
  return await call(webhooksApp, 'POST', '/webhooks/clerk', { rawBody: req.body, headers: req.headers });
}

const clerkUser = (id: string, email: string, first = 'Cleo', verified = true) => ({
  type: 'user.created',
  object: 'event',
  data: {
    id, first_name: first, last_name: 'Clerk', primary_email_address_id: 'idn_1',
    email_addresses: [{ id: 'idn_1', email_address: email, verification: { status: verified ? 'verified' : 'unverified' } }],
  },
});

describe('Clerk (Svix signatures)', () => {
  it('verifies a valid event and creates the user with its identity mapping', async () => {
    const r = await sendClerk(clerkRequest(clerkUser('user_new1', 'New.One@Example.test')));
    expect(r.body).toEqual({ received: true, outcome: 'applied' });
    const [u] = await db.sql`
      select u.email, u.first_name from public.users u join public.user_identities i on i.user_id = u.id
      where i.issuer = ${LOCAL_CLERK_ISSUER} and i.subject = 'user_new1'`;
    expect(u).toEqual({ email: 'new.one@example.test', first_name: 'Cleo' });
    // A Clerk session token of that person now maps to the platform user.
    const token = await auth.clerk.sign('user_new1', { azp: 'http://localhost:3000' });
    const me = await call(tenantsApp, 'GET', '/tenants/me', { token });
    expect(me.body).toMatchObject({ user: { email: 'new.one@example.test' }, memberships: [] });
  });

  it('refuses a tampered body, a wrong secret, an old timestamp, and missing headers — writing nothing', async () => {
    const before = (await db.sql`select count(*)::int as n from private.webhook_inbox`)[0].n;
    const good = clerkRequest(clerkUser('user_bad', 'bad@example.test'));
    const tampered = { ...good, body: good.body.replace('bad@example.test', 'evil@example.test') };
    expect([(await sendClerk(tampered)).status, errorCode(await sendClerk(tampered))]).toEqual([401, 'invalid_signature']);
    const wrong = clerkRequest(clerkUser('user_bad', 'bad@example.test'), { secret: `whsec_${randomBytes(24).toString('base64')}` });
    expect((await sendClerk(wrong)).status).toBe(401);
    const old = clerkRequest(clerkUser('user_bad', 'bad@example.test'), { at: new Date(Date.now() - 10 * 60_000) });
    expect((await sendClerk(old)).status).toBe(401);
    const missing = await call(webhooksApp, 'POST', '/webhooks/clerk', { rawBody: good.body, headers: { 'svix-id': 'x' } });
    expect([missing.status, errorCode(missing)]).toEqual([400, 'missing_signature']);
    expect((await db.sql`select count(*)::int as n from public.users where email in ('bad@example.test', 'evil@example.test')`)[0].n).toBe(0);
    expect((await db.sql`select count(*)::int as n from private.webhook_inbox`)[0].n).toBe(before);
  });

  it('never links an unverified e-mail to an existing person, nor any e-mail to a platform admin', async () => {
    const unverified = await sendClerk(clerkRequest(clerkUser('user_thief', users.globexAdmin.email, 'Thief', false)));
    expect(unverified.body.outcome).toBe('ignored');
    const admin = await sendClerk(clerkRequest(clerkUser('user_fake_super', users.super.email)));
    expect(admin.body.outcome).toBe('ignored');
    const mapped = await db.sql`select subject from public.user_identities where subject in ('user_thief', 'user_fake_super')`;
    expect(mapped).toEqual([]);
  });

  it('accepts a header with several signatures when one matches (secret rotation)', async () => {
    const r = await sendClerk(clerkRequest(clerkUser('user_rot', 'rot@example.test'), { extraSignature: 'v1,bm90LXRoZS1yaWdodC1vbmU=' }));
    expect(r.body.outcome).toBe('applied');
  });

  it('documents each inbound route\'s body as required JSON, the event fields it reads named (a client generator saw no body)', async () => {
    const doc = await (await webhooksApp.request('/webhooks/openapi.json')).json();
    const body = (path: string) => doc.paths[path].post.requestBody;
    expect(body('/webhooks/clerk')).toMatchObject({
      required: true,
      content: { 'application/json': { schema: { type: 'object', required: ['type', 'data'] } } },
    });
    expect(body('/webhooks/chatwoot/{tenantId}')).toMatchObject({
      required: true,
      content: { 'application/json': { schema: { type: 'object', required: ['event'] } } },
    });
    // Declared, not checked before the signature: a stranger's body without the fields is
    // the 401 any wrong signature gets, telling nothing about the body.
    const stranger = `whsec_${randomBytes(24).toString('base64')}`;
    for (const body of ['{}', '{"type": 1}', '[']) {
      const forged = await sendClerk(clerkRequest(null, { body, secret: stranger }));
      expect([forged.status, errorCode(forged)], body).toEqual([401, 'invalid_signature']);
    }
    const spaced = JSON.stringify(clerkUser('user_spaced', 'spaced@example.test'), null, 3);
    const r = await sendClerk(clerkRequest(null, { body: spaced }));
    expect([r.status, r.body.outcome]).toEqual([200, 'applied']);
  });

  it('answers malformed JSON with 400 and unknown event types with 200, applying nothing', async () => {
    const people = async () => (await db.sql`
      select (select count(*)::int from public.users) as users, (select count(*)::int from public.user_identities) as identities,
             (select count(*)::int from public.tenants) as tenants, (select count(*)::int from public.memberships) as memberships,
             (select count(*)::int from public.audit_logs) as audit`)[0];
    const inbox = async () => (await db.sql`select count(*)::int as n from private.webhook_inbox`)[0].n;
    const [peopleBefore, inboxBefore] = [await people(), await inbox()];
    const bad = await sendClerk(clerkRequest(null, { body: '{"type": "user.created", ' }));
    expect([bad.status, errorCode(bad)]).toEqual([400, 'invalid_payload']);
    expect([await people(), await inbox()]).toEqual([peopleBefore, inboxBefore]);
    const unknown = await sendClerk(clerkRequest({ type: 'email.created', data: { id: 'x' } }));
    expect([unknown.status, unknown.body.outcome]).toEqual([200, 'ignored']);
    // Remembered, so a replay is a duplicate; nothing else.
    expect([await people(), await inbox()]).toEqual([peopleBefore, inboxBefore + 1]);
  });

  it('applies a replayed event once, also when the replays arrive at the same time', async () => {
    const req = clerkRequest(clerkUser('user_replay', 'replay@example.test'));
    const first = await sendClerk(req);
    expect(first.body.outcome).toBe('applied');
    for (let i = 0; i < 5; i++) expect((await sendClerk(req)).body.outcome).toBe('duplicate');
    const concurrent = clerkRequest(clerkUser('user_burst', 'burst@example.test'));
    const results = await Promise.all(Array.from({ length: 8 }, () => sendClerk(concurrent)));
    expect(results.map((r) => r.body.outcome).sort()).toEqual(['applied', ...Array(7).fill('duplicate')]);
    expect((await db.sql`select count(*)::int as n from public.users where email = 'burst@example.test'`)[0].n).toBe(1);
    const audit = await db.sql`select count(*)::int as n from public.audit_logs where table_name = 'users' and new_data ->> 'email' = 'burst@example.test' and action = 'INSERT'`;
    expect(audit[0].n).toBe(1);
  });

  it('maps organisations to tenants and memberships with their roles; deleting a user keeps their tickets', async () => {
    expect((await sendClerk(clerkRequest({ type: 'organization.created', data: { id: 'org_wayne', name: 'Wayne Enterprises', slug: 'wayne' } }))).body.outcome).toBe('applied');
    const [t] = await db.sql`select t.id, t.slug from public.tenants t join public.tenant_org_links l on l.tenant_id = t.id where l.org_id = 'org_wayne'`;
    expect(t.slug).toBe('wayne');
    const membership = (userId: string, email: string, role: string, type = 'organizationMembership.created') => ({
      type,
      data: { id: `orgmem_${userId}`, role, organization: { id: 'org_wayne' }, public_user_data: { user_id: userId, identifier: email, first_name: 'Bruce' } },
    });
    // Clerk announces the people first (user.created, verified e-mails); a membership
    // of someone it never announced is ignored.
    expect((await sendClerk(clerkRequest(membership('user_stranger', 'stranger@wayne.test', 'org:admin')))).body.outcome).toBe('ignored');
    await sendClerk(clerkRequest(clerkUser('user_bruce', 'bruce@wayne.test', 'Bruce')));
    await sendClerk(clerkRequest(clerkUser('user_alfred', 'alfred@wayne.test', 'Alfred')));
    await sendClerk(clerkRequest(membership('user_bruce', 'bruce@wayne.test', 'org:admin')));
    await sendClerk(clerkRequest(membership('user_alfred', 'alfred@wayne.test', 'org:member')));
    const roles = async () => Object.fromEntries((await db.sql`
      select u.email, m.role from public.memberships m join public.users u on u.id = m.user_id where m.tenant_id = ${t.id}`).map((r) => [r.email, r.role]));
    expect(await roles()).toEqual({ 'bruce@wayne.test': 'admin', 'alfred@wayne.test': 'user' });
    await sendClerk(clerkRequest(membership('user_alfred', 'alfred@wayne.test', 'org:admin', 'organizationMembership.updated')));
    expect((await roles())['alfred@wayne.test']).toBe('admin');

    // Bruce files a ticket, then leaves Clerk: memberships go, the ticket and its history stay.
    const [bruce] = await db.sql`select id from public.users where email = 'bruce@wayne.test'`;
    await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${t.id}, 'Batmobile needs service', ${bruce.id})`;
    await sendClerk(clerkRequest({ type: 'user.deleted', data: { id: 'user_bruce', deleted: true } }));
    expect(await roles()).toEqual({ 'alfred@wayne.test': 'admin' });
    const [ticket] = await db.sql`select created_by from public.tickets where tenant_id = ${t.id}`;
    expect(ticket.created_by).toBe(bruce.id);
    expect((await db.sql`select status from public.users where id = ${bruce.id}`)[0].status).toBe('deleted');
    expect((await db.sql`select count(*)::int as n from public.audit_logs where actor_user_id is null and table_name = 'memberships' and action = 'DELETE' and tenant_id = ${t.id}`)[0].n).toBe(1);

    await sendClerk(clerkRequest({ type: 'organizationMembership.deleted', data: membership('user_alfred', 'alfred@wayne.test', 'org:admin').data }));
    expect(await roles()).toEqual({});
    await sendClerk(clerkRequest({ type: 'organization.deleted', data: { id: 'org_wayne', deleted: true } }));
    expect((await db.sql`select status from public.tenants where id = ${t.id}`)[0].status).toBe('deleted');
  });
});

describe('Clerk events out of order', () => {
  const base = Date.now() - 60_000;
  const at = (step: number) => base + step * 1000;
  const member = (type: string, timestamp: number, role = 'org:admin') => ({
    type,
    timestamp,
    data: { id: 'orgmem_late', role, organization: { id: 'org_late' }, public_user_data: { user_id: 'user_late', identifier: 'late@late.test' } },
  });

  it("a membership event racing its user's deletion does not bring them back", async () => {
    await sendClerk(clerkRequest({ type: 'organization.created', data: { id: 'org_race', name: 'Race Ltd', slug: 'race-ltd' } }));
    await sendClerk(clerkRequest(clerkUser('user_race', 'race@race.test', 'Rhea')));
    const [person] = await db.sql`select id from public.users where email = 'race@race.test'`;
    // user.deleted is being applied (the person retired, not committed yet) when a retried
    // membership event of theirs arrives.
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select set_config('request.jwt.claims', '{"role":"service_role"}', true)`;
      await holder`select private.retire_identity(${LOCAL_CLERK_ISSUER}, 'user_race')`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const late = sendClerk(clerkRequest({
        type: 'organizationMembership.created',
        timestamp: Date.now(),
        data: { id: 'orgmem_race', role: 'org:member', organization: { id: 'org_race' }, public_user_data: { user_id: 'user_race', identifier: 'race@race.test' } },
      }));
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await holder`commit`;
      const answer = await late;
      expect([answer.status, answer.body.outcome]).toEqual([200, 'ignored']);
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }
    const [after] = await db.sql`select u.status,
        (select count(*)::int from public.memberships m where m.user_id = u.id) as memberships,
        (select count(*)::int from public.user_identities i where i.user_id = u.id) as logins
      from public.users u where u.id = ${person.id}`;
    expect(after).toEqual({ status: 'deleted', memberships: 0, logins: 0 });
  });

  it("two new Clerk users verifying one person's address at once: the second waits for the first's link and is refused", async () => {
    const [person] = await db.sql`insert into public.users (email) values ('shared@race.test') returning id`;
    // User B's event is linking the person (its login added, not committed yet) when user
    // C's creation, with the same verified address, arrives.
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`update public.users set first_name = 'Bea' where id = ${person.id}`;
      await holder`insert into public.user_identities (issuer, subject, user_id) values (${LOCAL_CLERK_ISSUER}, 'user_race_b', ${person.id})`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const second = sendClerk(clerkRequest({ ...clerkUser('user_race_c', 'shared@race.test', 'Cid'), timestamp: Date.now() }));
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await holder`commit`;
      const answer = await second;
      expect([answer.status, errorCode(answer)]).toEqual([409, 'related_event_pending']);
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }
    const logins = await db.sql`select subject from public.user_identities where user_id = ${person.id} order by subject`;
    expect(logins.map((l) => l.subject)).toEqual(['user_race_b']);
  });

  it('an organisation whose tenant was purged, or that Clerk deleted, makes no tenant again and takes no members', async () => {
    const now = Date.now();
    await sendClerk(clerkRequest({ type: 'organization.created', timestamp: now - 5000, data: { id: 'org_purged', name: 'Purged Ltd', slug: 'purged-ltd' } }));
    const [link] = await db.sql`select tenant_id from public.tenant_org_links where org_id = 'org_purged'`;
    // A platform admin purges the tenant (no partner service made anything).
    await db.sql`delete from public.tenant_services where tenant_id = ${link.tenant_id}`;
    await db.sql`delete from public.tenants where id = ${link.tenant_id}`;
    const tenantsNamed = async () => (await db.sql`select count(*)::int as n from public.tenants where name like 'Purged%'`)[0].n;
    // Renamed at Clerk afterwards: no new tenant.
    const renamed = await sendClerk(clerkRequest({ type: 'organization.updated', timestamp: now - 1000, data: { id: 'org_purged', name: 'Purged Again', slug: 'purged-ltd' } }));
    expect([renamed.status, renamed.body.outcome]).toEqual([200, 'ignored']);
    expect(await tenantsNamed()).toBe(0);
    // A member added at Clerk: acknowledged at once, not waited for as an unseen organisation.
    await sendClerk(clerkRequest({ ...clerkUser('user_purged_member', 'member@purged.test'), timestamp: now - 4000 }));
    const joined = await sendClerk(clerkRequest({
      type: 'organizationMembership.created', timestamp: now,
      data: { id: 'orgmem_purged', role: 'org:member', organization: { id: 'org_purged' }, public_user_data: { user_id: 'user_purged_member' } },
    }));
    expect([joined.status, joined.body.outcome]).toEqual([200, 'ignored']);
    // Deleted at Clerk before its creation arrived: its members are not waited for, and its
    // late creation makes no tenant.
    await sendClerk(clerkRequest({ type: 'organization.deleted', timestamp: now - 2000, data: { id: 'org_gone_first', deleted: true } }));
    const member = await sendClerk(clerkRequest({
      type: 'organizationMembership.created', timestamp: now - 1000,
      data: { id: 'orgmem_gone', role: 'org:member', organization: { id: 'org_gone_first' }, public_user_data: { user_id: 'user_purged_member' } },
    }));
    expect([member.status, member.body.outcome]).toEqual([200, 'ignored']);
    const late = await sendClerk(clerkRequest({ type: 'organization.created', timestamp: now - 3000, data: { id: 'org_gone_first', name: 'Gone First', slug: 'gone-first' } }));
    expect([late.status, late.body.outcome]).toEqual([200, 'ignored']);
    expect(await db.sql`select 1 from public.tenant_org_links where org_id in ('org_purged', 'org_gone_first')`).toHaveLength(0);
  });

  it("a membership removal delivered after its user's deletion still removes a person who keeps another login", async () => {
    const now = Date.now();
    await sendClerk(clerkRequest({ type: 'organization.created', timestamp: now - 5000, data: { id: 'org_after', name: 'After Ltd', slug: 'after-ltd' } }));
    await sendClerk(clerkRequest({ ...clerkUser('user_after', 'after@after.test', 'Ada'), timestamp: now - 4000 }));
    const [person] = await db.sql`select id from public.users where email = 'after@after.test'`;
    // Ada also signs in with Supabase Auth (the same confirmed address).
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${person.id}, ${person.id})`;
    await sendClerk(clerkRequest({
      type: 'organizationMembership.created', timestamp: now - 3000,
      data: { id: 'orgmem_after', role: 'org:admin', organization: { id: 'org_after' }, public_user_data: { user_id: 'user_after' } },
    }));
    const memberships = async () => (await db.sql`select count(*)::int as n from public.memberships where user_id = ${person.id}`)[0].n;
    expect(await memberships()).toBe(1);
    // Removed from the organisation, then deleted at Clerk; Svix delivers the deletion first.
    const deleted = await sendClerk(clerkRequest({ type: 'user.deleted', timestamp: now - 1000, data: { id: 'user_after', deleted: true } }));
    expect(deleted.status).toBe(200);
    expect(await memberships()).toBe(1); // her Supabase login keeps the person
    const removed = await sendClerk(clerkRequest({
      type: 'organizationMembership.deleted', timestamp: now - 2000,
      data: { id: 'orgmem_after', role: 'org:admin', organization: { id: 'org_after' }, public_user_data: { user_id: 'user_after' } },
    }));
    expect([removed.status, removed.body.outcome]).toEqual([200, 'applied']);
    expect(await memberships()).toBe(0);
    expect((await db.sql`select status from public.users where id = ${person.id}`)[0].status).toBe('active');
    // Invited back since (through her Supabase login): a retry of that removal leaves the new membership.
    const [{ tenant_id: tenant }] = await db.sql`select tenant_id from public.tenant_org_links where org_id = 'org_after'`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenant}, ${person.id}, 'agent')`;
    const retried = await sendClerk(clerkRequest({
      type: 'organizationMembership.deleted', timestamp: now - 2000,
      data: { id: 'orgmem_after', role: 'org:admin', organization: { id: 'org_after' }, public_user_data: { user_id: 'user_after' } },
    }));
    expect(retried.status).toBe(200);
    expect(await memberships()).toBe(1);
  });

  it('a removal Svix retries after the tenant invited the person back (an invitation accepted since) leaves the new membership', async () => {
    const now = Date.now();
    await sendClerk(clerkRequest({ type: 'organization.created', timestamp: now - 60_000, data: { id: 'org_back', name: 'Back Ltd', slug: 'back-ltd' } }));
    await sendClerk(clerkRequest({ ...clerkUser('user_back', 'back@back.test', 'Bob'), timestamp: now - 59_000 }));
    const membership = { id: 'orgmem_back', role: 'org:member', organization: { id: 'org_back' }, public_user_data: { user_id: 'user_back' } };
    await sendClerk(clerkRequest({ type: 'organizationMembership.created', timestamp: now - 58_000, data: membership }));
    const [person] = await db.sql`select id from public.users where email = 'back@back.test'`;
    const [{ tenant_id: tenant }] = await db.sql`select tenant_id from public.tenant_org_links where org_id = 'org_back'`;
    const memberships = async () => (await db.sql`select role from public.memberships where tenant_id = ${tenant} and user_id = ${person.id}`).map((m) => m.role);
    expect(await memberships()).toEqual(['user']);
    // Removed at Clerk a minute ago; the delivery fails. Meanwhile the tenant's admin
    // removes and invites them back as an agent, and they accept.
    await db.sql`delete from public.memberships where tenant_id = ${tenant} and user_id = ${person.id}`;
    await db.sql`insert into public.invitations (tenant_id, email, role, accepted_at, accepted_by)
      values (${tenant}, 'back@back.test', 'agent', now(), ${person.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenant}, ${person.id}, 'agent')`;
    const late = await sendClerk(clerkRequest({ type: 'organizationMembership.deleted', timestamp: now - 50_000, data: membership }));
    expect(late.status).toBe(200);
    expect(await memberships()).toEqual(['agent']);
    // A removal made after that acceptance takes it.
    const later = await sendClerk(clerkRequest({ type: 'organizationMembership.deleted', timestamp: Date.now() + 1000, data: membership }));
    expect([later.status, later.body.outcome]).toEqual([200, 'applied']);
    expect(await memberships()).toEqual([]);
  });

  it("a late removal still takes a membership an old invitation's acceptance found rather than made", async () => {
    const now = Date.now();
    await sendClerk(clerkRequest({ type: 'organization.created', timestamp: now - 60_000, data: { id: 'org_stay', name: 'Stay Ltd', slug: 'stay-ltd' } }));
    await sendClerk(clerkRequest({ ...clerkUser('user_stay', 'stay@stay.test', 'Sam'), timestamp: now - 59_000 }));
    const [person] = await db.sql`select id from public.users where email = 'stay@stay.test'`;
    const [{ tenant_id: tenant }] = await db.sql`select tenant_id from public.tenant_org_links where org_id = 'org_stay'`;
    // Invited on the platform before they joined the organisation.
    const [inv] = await db.sql`insert into public.invitations (tenant_id, email, role) values (${tenant}, 'stay@stay.test', 'user') returning id`;
    const membership = { id: 'orgmem_stay', role: 'org:admin', organization: { id: 'org_stay' }, public_user_data: { user_id: 'user_stay' } };
    await sendClerk(clerkRequest({ type: 'organizationMembership.created', timestamp: now - 58_000, data: membership }));
    const memberships = async () => (await db.sql`select role from public.memberships where tenant_id = ${tenant} and user_id = ${person.id}`).map((m) => m.role);
    expect(await memberships()).toEqual(['admin']);
    // Removed at Clerk; while the delivery is retried they accept that old invitation: it
    // changes no membership (they are one), only the invitation.
    await db.sql`update public.invitations set accepted_at = now(), accepted_by = ${person.id} where id = ${inv.id}`;
    expect(await memberships()).toEqual(['admin']);
    const late = await sendClerk(clerkRequest({ type: 'organizationMembership.deleted', timestamp: now - 50_000, data: membership }));
    expect([late.status, late.body.outcome]).toEqual([200, 'applied']);
    expect(await memberships()).toEqual([]);
  });

  it('an event older than one already applied to the same object changes nothing', async () => {
    await sendClerk(clerkRequest({ type: 'organization.created', timestamp: at(0), data: { id: 'org_late', name: 'Late Ltd', slug: 'late-ltd' } }));
    await sendClerk(clerkRequest({ ...clerkUser('user_late', 'late@late.test', 'Lara'), timestamp: at(1) }));
    const [t] = await db.sql`select l.tenant_id as id from public.tenant_org_links l where l.org_id = 'org_late'`;
    const [u] = await db.sql`select id from public.users where email = 'late@late.test'`;
    const role = async () => (await db.sql`select role from public.memberships where tenant_id = ${t.id} and user_id = ${u.id}`)[0]?.role ?? null;

    // The membership's creation failed its first attempts; Clerk's removal of it arrived
    // first. The created event, retried later, is older than the removal: ignored.
    expect((await sendClerk(clerkRequest(member('organizationMembership.deleted', at(4))))).status).toBe(200);
    const late = await sendClerk(clerkRequest(member('organizationMembership.created', at(2))));
    expect([late.status, late.body.outcome]).toEqual([200, 'ignored']);
    expect(await role()).toBeNull();

    // A newer one applies; an older role change after it does not.
    expect((await sendClerk(clerkRequest(member('organizationMembership.created', at(5), 'org:member')))).body.outcome).toBe('applied');
    expect(await role()).toBe('user');
    expect((await sendClerk(clerkRequest(member('organizationMembership.updated', at(3))))).body.outcome).toBe('ignored');
    expect(await role()).toBe('user');

    // A user deleted in Clerk is not brought back by an update sent before the deletion.
    expect((await sendClerk(clerkRequest({ type: 'user.deleted', timestamp: at(7), data: { id: 'user_late', deleted: true } }))).body.outcome).toBe('applied');
    const stale = await sendClerk(clerkRequest({ ...clerkUser('user_late', 'late@late.test', 'Lara'), type: 'user.updated', timestamp: at(6) }));
    expect(stale.body.outcome).toBe('ignored');
    expect((await db.sql`select status from public.users where id = ${u.id}`)[0].status).toBe('deleted');
    expect(await role()).toBeNull();

    // Events of different objects do not hold each other back.
    const other = await sendClerk(clerkRequest({ ...clerkUser('user_other_late', 'other@late.test'), timestamp: at(0) }));
    expect(other.body.outcome).toBe('applied');

    // A membership event after its organisation's deletion adds no one to the deleted tenant.
    await sendClerk(clerkRequest({ type: 'organization.deleted', timestamp: at(8), data: { id: 'org_late', deleted: true } }));
    const [other2] = await db.sql`select id from public.users where email = 'other@late.test'`;
    const afterDeletion = await sendClerk(clerkRequest({
      type: 'organizationMembership.created',
      timestamp: at(9),
      data: { id: 'orgmem_other', role: 'org:admin', organization: { id: 'org_late' }, public_user_data: { user_id: 'user_other_late' } },
    }));
    expect(afterDeletion.body.outcome).toBe('ignored');
    expect(await db.sql`select 1 from public.memberships where tenant_id = ${t.id} and user_id = ${other2.id}`).toHaveLength(0);
    // Events naming no object are not ordered under one shared key: both apply as they come.
    const [bare1, bare2] = [at(20), at(10)].map((timestamp) => ({ type: 'organizationMembership.deleted', timestamp, data: {} }));
    expect((await sendClerk(clerkRequest(bare1))).status).toBe(200);
    expect(await db.sql`select 1 from private.clerk_object_versions where object like 'membership:undefined%'`).toHaveLength(0);
    expect((await sendClerk(clerkRequest(bare2))).status).toBe(200);
    for (const type of ['user.created', 'user.deleted', 'organization.created', 'organizationMembership.created']) {
      const bare = await sendClerk(clerkRequest({ type, timestamp: at(30), data: {} }));
      expect([bare.status, bare.body.outcome], type).toEqual([200, 'ignored']);
    }
  });
});

describe('Clerk events after a deletion, and older copies of a name', () => {
  it("a membership event retried after its user's deletion committed is ignored at once, not held for a day", async () => {
    await sendClerk(clerkRequest({ type: 'organization.created', data: { id: 'org_after', name: 'After Ltd', slug: 'after-ltd' } }));
    await sendClerk(clerkRequest(clerkUser('user_after', 'after@after.test', 'Ada')));
    expect((await sendClerk(clerkRequest({ type: 'user.deleted', timestamp: Date.now(), data: { id: 'user_after', deleted: true } }))).body.outcome)
      .toBe('applied');
    const late = await sendClerk(clerkRequest({
      type: 'organizationMembership.created',
      timestamp: Date.now() - 1000,
      data: { id: 'orgmem_after', role: 'org:admin', organization: { id: 'org_after' }, public_user_data: { user_id: 'user_after' } },
    }));
    expect([late.status, late.body.outcome]).toEqual([200, 'ignored']);
    // One of a user not received yet is still waited for.
    const early = await sendClerk(clerkRequest({
      type: 'organizationMembership.created',
      timestamp: Date.now(),
      data: { id: 'orgmem_unseen', role: 'org:admin', organization: { id: 'org_after' }, public_user_data: { user_id: 'user_not_yet' } },
    }));
    expect([early.status, errorCode(early)]).toEqual([409, 'related_event_pending']);
  });

  it("a membership event does not set back the person's name their own newer event changed", async () => {
    await sendClerk(clerkRequest({ type: 'organization.created', data: { id: 'org_names', name: 'Names Ltd', slug: 'names-ltd' } }));
    const t0 = Date.now() - 10_000;
    await sendClerk(clerkRequest({ ...clerkUser('user_names', 'bob@names.test', 'Bob'), timestamp: t0 }));
    await sendClerk(clerkRequest({ ...clerkUser('user_names', 'bob@names.test', 'Robert'), type: 'user.updated', timestamp: t0 + 2000 }));
    // Sent between the two, retried after the rename: it still carries "Bob".
    const member = await sendClerk(clerkRequest({
      type: 'organizationMembership.created',
      timestamp: t0 + 1000,
      data: {
        id: 'orgmem_names', role: 'org:member', organization: { id: 'org_names' },
        public_user_data: { user_id: 'user_names', first_name: 'Bob', last_name: 'Old' },
      },
    }));
    expect(member.body.outcome).toBe('applied');
    expect((await db.sql`select first_name, last_name from public.users where email = 'bob@names.test'`)[0])
      .toEqual({ first_name: 'Robert', last_name: 'Clerk' });
  });

  it('a CLERK_WEBHOOK_SECRET that is no signing secret is the deployment\'s fault (503), not the sender\'s JSON (400)', async () => {
    const kept = process.env.CLERK_WEBHOOK_SECRET;
    process.env.CLERK_WEBHOOK_SECRET = 'whsec_abc\n';
    try {
      const r = await sendClerk(clerkRequest(clerkUser('user_bad_secret', 'bad@secret.test')));
      expect([r.status, errorCode(r)]).toEqual([503, 'not_configured']);
    } finally {
      process.env.CLERK_WEBHOOK_SECRET = kept;
    }
  });
});

describe('an address moving from one Clerk user to another', () => {
  it("the new owner's user.created arriving before the old owner's change does not make them the old owner's person", async () => {
    const now = Date.now();
    await sendClerk(clerkRequest({ type: 'organization.created', timestamp: now - 5000, data: { id: 'org_moved', name: 'Moved Ltd', slug: 'moved-ltd' } }));
    await sendClerk(clerkRequest({ ...clerkUser('user_old_owner', 'moved@moved.test', 'Olga'), timestamp: now - 4000 }));
    await sendClerk(clerkRequest({
      type: 'organizationMembership.created', timestamp: now - 3000,
      data: { id: 'orgmem_olga', role: 'org:admin', organization: { id: 'org_moved' }, public_user_data: { user_id: 'user_old_owner' } },
    }));
    const [olga] = await db.sql`select id from public.users where email = 'moved@moved.test'`;
    const identities = async () =>
      (await db.sql`select subject, user_id from public.user_identities where subject in ('user_old_owner', 'user_new_owner') order by subject`)
        .map((i) => [i.subject, i.user_id]);

    // Olga gave up the address in Clerk and Nick took it; Nick's creation came first.
    const nick = clerkRequest({ ...clerkUser('user_new_owner', 'moved@moved.test', 'Nick'), timestamp: now - 1000 });
    const early = await sendClerk(nick);
    expect([early.status, errorCode(early)]).toEqual([409, 'related_event_pending']);
    expect(await identities()).toEqual([['user_old_owner', olga.id]]);

    await sendClerk(clerkRequest({ ...clerkUser('user_old_owner', 'olga@moved.test', 'Olga'), type: 'user.updated', timestamp: now - 2000 }));
    expect((await db.sql`select email from public.users where id = ${olga.id}`)[0].email).toBe('olga@moved.test');
    // Svix sends Nick's again: a person of his own, with none of Olga's memberships.
    const retried = await sendClerk(nick);
    expect([retried.status, retried.body.outcome]).toEqual([200, 'applied']);
    const [nickUser] = await db.sql`select id from public.users where email = 'moved@moved.test'`;
    expect(nickUser.id).not.toBe(olga.id);
    expect(await identities()).toEqual([['user_new_owner', nickUser.id], ['user_old_owner', olga.id]]);
    expect(await db.sql`select 1 from public.memberships where user_id = ${nickUser.id}`).toHaveLength(0);
    // Unresolved for a day, the event is acknowledged and links no one.
    const stale = await sendClerk(clerkRequest({ ...clerkUser('user_third', 'olga@moved.test'), timestamp: now - 25 * 3600_000 }));
    expect([stale.status, stale.body.outcome]).toEqual([200, 'ignored']);
    expect(await db.sql`select 1 from public.user_identities where subject = 'user_third'`).toHaveLength(0);
  });
});

describe('Clerk events before the objects they name', () => {
  const membership = (org: string, user: string, timestamp?: number) => ({
    type: 'organizationMembership.created',
    ...(timestamp === undefined ? {} : { timestamp }),
    data: { id: `orgmem_${user}`, role: 'org:admin', organization: { id: org }, public_user_data: { user_id: user } },
  });
  const recorded = async (svixId: string) => ({
    inbox: (await db.sql`select count(*)::int as n from private.webhook_inbox where provider = 'clerk' and event_id = ${svixId}`)[0].n,
    versions: (await db.sql`select count(*)::int as n from private.clerk_object_versions where object like 'membership:org_early%'`)[0].n,
  });
  const roleIn = async (org: string, email: string) =>
    (await db.sql`
      select m.role from public.memberships m join public.tenant_org_links l on l.tenant_id = m.tenant_id
      join public.users u on u.id = m.user_id where l.org_id = ${org} and u.email = ${email}`)[0]?.role ?? null;

  it("a creator's membership sent before its organisation and its user is refused until both arrive, then applied", async () => {
    // Svix sends events concurrently, in no set order: the membership came first.
    const early = clerkRequest(membership('org_early', 'user_early', Date.now()));
    const beforeOrg = await sendClerk(early);
    expect([beforeOrg.status, errorCode(beforeOrg)]).toEqual([409, 'related_event_pending']);
    // Nothing is remembered, so Svix's next attempt is not a duplicate.
    expect(await recorded(early.headers['svix-id'])).toEqual({ inbox: 0, versions: 0 });

    await sendClerk(clerkRequest({ type: 'organization.created', timestamp: Date.now(), data: { id: 'org_early', name: 'Early Ltd', slug: 'early-ltd' } }));
    const beforeUser = await sendClerk(early);
    expect([beforeUser.status, errorCode(beforeUser)]).toEqual([409, 'related_event_pending']);
    expect(await recorded(early.headers['svix-id'])).toEqual({ inbox: 0, versions: 0 });

    await sendClerk(clerkRequest({ ...clerkUser('user_early', 'early@early.test'), timestamp: Date.now() }));
    const retried = await sendClerk(early);
    expect([retried.status, retried.body.outcome]).toEqual([200, 'applied']);
    expect(await roleIn('org_early', 'early@early.test')).toBe('admin');
    expect((await sendClerk(early)).body.outcome).toBe('duplicate');
  });

  it('a membership of someone never announced is ignored once it is a day old, or has no time', async () => {
    await sendClerk(clerkRequest({ type: 'organization.created', data: { id: 'org_quiet', name: 'Quiet Ltd', slug: 'quiet-ltd' } }));
    const dayOld = await sendClerk(clerkRequest(membership('org_quiet', 'user_never', Date.now() - 25 * 3600_000)));
    expect([dayOld.status, dayOld.body.outcome]).toEqual([200, 'ignored']);
    const timeless = await sendClerk(clerkRequest(membership('org_quiet', 'user_never')));
    expect([timeless.status, timeless.body.outcome]).toEqual([200, 'ignored']);
    // An organisation never announced, the same.
    const noOrg = await sendClerk(clerkRequest(membership('org_never', 'user_never', Date.now() - 25 * 3600_000)));
    expect([noOrg.status, noOrg.body.outcome]).toEqual([200, 'ignored']);
    expect(await db.sql`select 1 from public.memberships m join public.tenant_org_links l on l.tenant_id = m.tenant_id where l.org_id = 'org_quiet'`)
      .toHaveLength(0);
  });
});

describe('Clerk values the schema is stricter about', () => {
  const org = (id: string, data: Record<string, unknown>) => clerkRequest({ type: 'organization.created', timestamp: Date.now(), data: { id, ...data } });
  const tenantOf = async (orgId: string) =>
    (await db.sql`select t.name, t.slug from public.tenants t join public.tenant_org_links l on l.tenant_id = t.id where l.org_id = ${orgId}`)[0];

  it('an organisation whose slug or name makes no valid slug still becomes a tenant', async () => {
    // Cut at 50 characters, the slug would end in a hyphen.
    const long = await sendClerk(org('org_2LongSlug', { name: 'Long', slug: `${'a'.repeat(49)}-b` }));
    expect([long.status, long.body.outcome]).toEqual([200, 'applied']);
    expect((await tenantOf('org_2LongSlug')).slug).toBe('a'.repeat(49));
    // No slug (Clerk can turn them off) and a name with no Latin letters.
    const kanji = await sendClerk(org('org_2Kanji', { name: '株式会社', slug: null }));
    expect([kanji.status, kanji.body.outcome]).toEqual([200, 'applied']);
    expect(await tenantOf('org_2Kanji')).toEqual({ name: '株式会社', slug: 'org-2kanji' });
    // A slug shaped like a tenant id (which X-Tenant-Id would read as one): prefixed.
    const lookalike = await sendClerk(org('org_2Lookalike', { name: 'Lookalike', slug: '6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f' }));
    expect([lookalike.status, lookalike.body.outcome]).toEqual([200, 'applied']);
    expect((await tenantOf('org_2Lookalike')).slug).toBe('org-6f1c2d3e-4a5b-4c6d-8e9f-0a1b2c3d4e5f');
    // A blank name: the tenant is named by its slug. The same slug again gets the id's.
    const blank = await sendClerk(org('org_2Blank', { name: '   ', slug: 'blank-co' }));
    expect([blank.status, blank.body.outcome]).toEqual([200, 'applied']);
    expect(await tenantOf('org_2Blank')).toEqual({ name: 'blank-co', slug: 'blank-co' });
    expect((await sendClerk(org('org_AA2Blank2', { name: 'Blank 2', slug: 'blank-co' }))).body.outcome).toBe('applied');
    expect((await tenantOf('org_AA2Blank2')).slug).toBe('blank-co-a2blank2');
    // Ids alike in their last eight letters: a random part.
    expect((await sendClerk(org('org_BA2Blank2', { name: 'Blank 3', slug: 'blank-co' }))).body.outcome).toBe('applied');
    expect((await tenantOf('org_BA2Blank2')).slug).toMatch(/^blank-co-a2blank2-[0-9a-f]{8}$/);
    // A slug of 49 characters taken twice: cut at 50, the hyphen before the id's letters
    // would make a double one, which the tenants' check refuses.
    const long49 = `${'c'.repeat(48)}x`;
    // (The last two ids alike in their last eight letters: the second gets a random part.)
    for (const id of ['org_49first', 'org_A1ba49long', 'org_A2ba49long']) {
      const r = await sendClerk(org(id, { name: 'Forty-nine', slug: long49 }));
      expect([r.status, r.body.outcome], id).toEqual([200, 'applied']);
    }
    expect((await tenantOf('org_A1ba49long')).slug).toBe(`${long49}-ba49long`);
    expect((await tenantOf('org_A2ba49long')).slug).toMatch(new RegExp(`^${long49}-[0-9a-f]{8}$`));
    // A blank name on update keeps the tenant's name.
    await sendClerk(clerkRequest({ type: 'organization.updated', timestamp: Date.now() + 1, data: { id: 'org_AA2Blank2', name: '' } }));
    expect((await tenantOf('org_AA2Blank2')).name).toBe('Blank 2');
  });

  it("a person's over-long names are cut to the schema's, and an address someone else has leaves theirs", async () => {
    const long = await sendClerk(clerkRequest({ ...clerkUser('user_longname', 'long.name@example.test', 'F'.repeat(150)), timestamp: Date.now() }));
    expect([long.status, long.body.outcome]).toEqual([200, 'applied']);
    const [u] = await db.sql`select id, first_name from public.users where email = 'long.name@example.test'`;
    expect(u.first_name).toBe('F'.repeat(100));

    // They make another person's verified address their primary one in Clerk.
    await sendClerk(clerkRequest({ ...clerkUser('user_other_owner', 'taken@example.test'), timestamp: Date.now() }));
    const moved = await sendClerk(clerkRequest({ ...clerkUser('user_longname', 'taken@example.test', 'Lena'), type: 'user.updated', timestamp: Date.now() + 1 }));
    expect([moved.status, moved.body.outcome]).toEqual([200, 'applied']);
    expect((await db.sql`select email, first_name from public.users where id = ${u.id}`)[0]).toEqual({ email: 'long.name@example.test', first_name: 'Lena' });
  });
});

// ---------------------------------------------------------------- Supabase Auth

describe('Supabase Auth', () => {
  const authUser = '7a1c1d52-2a51-4d2f-9a3e-5f6e7a8b9c0d';

  it('a trigger on auth.users creates, updates and retires the platform user', async () => {
    await db.sql`insert into auth.users (id, email, raw_user_meta_data) values (${authUser}, 'Sb.User@Example.test', '{"full_name":"Sam Base"}')`;
    // Nothing until the address is confirmed.
    expect((await db.sql`select count(*)::int as n from public.user_identities where subject = ${authUser}`)[0].n).toBe(0);
    await db.sql`update auth.users set email_confirmed_at = now() where id = ${authUser}`;
    const find = () => db.sql`
      select u.email, u.display_name, u.status from public.users u join public.user_identities i on i.user_id = u.id
      where i.issuer = 'http://127.0.0.1:54321/auth/v1' and i.subject = ${authUser}`;
    expect(await find()).toEqual([{ email: 'sb.user@example.test', display_name: 'Sam Base', status: 'active' }]);
    await db.sql`update auth.users set email = 'renamed@example.test' where id = ${authUser}`;
    expect((await find())[0].email).toBe('renamed@example.test');
    // An existing platform user with that e-mail is linked, not duplicated.
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values ('8b2d2e63-3b62-4e3f-8b4f-6a7f8b9c0d1e', ${users.acmeUser.email}, now())`;
    const [linked] = await db.sql`select user_id from public.user_identities where subject = '8b2d2e63-3b62-4e3f-8b4f-6a7f8b9c0d1e'`;
    expect(linked.user_id).toBe(users.acmeUser.id);
    // Deleting the auth user retires the person: memberships and this identity go.
    const [sam] = await db.sql`select user_id from public.user_identities where subject = ${authUser}`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.globex.id}, ${sam.user_id}, 'user')`;
    await db.sql`delete from auth.users where id = ${authUser}`;
    expect(await find()).toEqual([]);
    expect((await db.sql`select status from public.users where id = ${sam.user_id}`)[0].status).toBe('deleted');
    expect((await db.sql`select count(*)::int as n from public.memberships where user_id = ${sam.user_id}`)[0].n).toBe(0);
    // Signing up again with the same confirmed address: the same person, active again.
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values ('6a1c1d52-2a51-4d2e-8a3e-5f6e7a8b9c0d', 'renamed@example.test', now())`;
    expect((await db.sql`select u.id, u.status from public.users u join public.user_identities i on i.user_id = u.id
      where i.subject = '6a1c1d52-2a51-4d2e-8a3e-5f6e7a8b9c0d'`)[0]).toEqual({ id: sam.user_id, status: 'active' });
    // Someone a platform admin disabled stays disabled through their login's deletion and
    // a new sign-up.
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values ('5b0b0c41-1a40-4c1d-9a2d-4e5d6f7a8b9c', 'barred@example.test', now())`;
    const [barred] = await db.sql`select user_id from public.user_identities where subject = '5b0b0c41-1a40-4c1d-9a2d-4e5d6f7a8b9c'`;
    await db.sql`update public.users set status = 'disabled' where id = ${barred.user_id}`;
    await db.sql`delete from auth.users where id = '5b0b0c41-1a40-4c1d-9a2d-4e5d6f7a8b9c'`;
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values ('4a9a9b30-0939-4b0c-8a1c-3d4e5f6a7b8c', 'barred@example.test', now())`;
    // Disabled, not retired: no deleted_at (which would hide them from co-members once re-enabled).
    expect((await db.sql`select status, deleted_at from public.users where id = ${barred.user_id}`)[0]).toEqual({ status: 'disabled', deleted_at: null });
    // A person with a second login (the linked acme customer above): deleting one login
    // keeps them, their memberships and the other login.
    const membershipsOf = async (id: string) => (await db.sql`select count(*)::int as n from public.memberships where user_id = ${id}`)[0].n;
    const before = await membershipsOf(users.acmeUser.id);
    expect(before).toBeGreaterThan(0);
    await db.sql`delete from auth.users where id = '8b2d2e63-3b62-4e3f-8b4f-6a7f8b9c0d1e'`;
    expect((await db.sql`select status from public.users where id = ${users.acmeUser.id}`)[0].status).toBe('active');
    expect(await membershipsOf(users.acmeUser.id)).toBe(before);
    expect((await db.sql`select count(*)::int as n from public.user_identities where user_id = ${users.acmeUser.id}`)[0].n).toBeGreaterThan(0);
    // A platform admin's address is never linked automatically.
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values ('9c3e3f74-4c73-4f4a-9c5a-7b8a9cad1e2f', ${users.super.email}, now())`;
    expect((await db.sql`select count(*)::int as n from public.user_identities where subject = '9c3e3f74-4c73-4f4a-9c5a-7b8a9cad1e2f'`)[0].n).toBe(0);
  });

  it("a platform admin's lockout (marked deleted) outlasts the person's profile edits, in Supabase Auth and in Clerk", async () => {
    const sbId = '3f8e2c10-5b7a-4c9d-8e1f-2a3b4c5d6e7f';
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values (${sbId}, 'locked.out@example.test', now())`;
    const [{ user_id: person }] = await db.sql`select user_id from public.user_identities where subject = ${sbId}`;
    expect((await sendClerk(clerkRequest(clerkUser('user_locked_out', 'locked.out@example.test')))).body.outcome).toBe('applied');
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.globex.id}, ${person}, 'agent')`;
    // Locked out by a platform admin: marked deleted, logins and membership kept.
    await db.sql`update public.users set status = 'deleted', deleted_at = now() where id = ${person}`;
    const state = async () => (await db.sql`select status, deleted_at is not null as deleted from public.users where id = ${person}`)[0];
    // Their own edits, through either login, bring nothing back.
    await db.sql`update auth.users set raw_user_meta_data = '{"first_name":"Back"}' where id = ${sbId}`;
    expect(await state()).toEqual({ status: 'deleted', deleted: true });
    const edited = await sendClerk(clerkRequest({ ...clerkUser('user_locked_out', 'locked.out@example.test', 'Again'), type: 'user.updated' }));
    expect(edited.body.outcome).toBe('applied');
    expect(await state()).toEqual({ status: 'deleted', deleted: true });
    const token = await auth.clerk.sign('user_locked_out', { azp: 'http://localhost:3000' });
    expect(errorCode(await call(tenantsApp, 'GET', '/tenants/me', { token }))).toBe('unknown_user');
    // Retired (every login deleted), they may sign up again, and are back.
    await sendClerk(clerkRequest({ type: 'user.deleted', data: { id: 'user_locked_out', deleted: true } }));
    await db.sql`delete from auth.users where id = ${sbId}`;
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values ('2e7d1b09-4a69-4b8c-9d0e-1f2a3b4c5d6e', 'locked.out@example.test', now())`;
    expect(await state()).toEqual({ status: 'active', deleted: false });
  });

  it('the project asks Auth to confirm addresses, which the trigger trusts to link a sign-up to a person', () => {
    const config = parseToml(readFileSync(new URL('../supabase/config.toml', import.meta.url), 'utf8')) as {
      auth?: { email?: { enable_confirmations?: boolean } };
    };
    expect(config.auth?.email?.enable_confirmations).toBe(true);
  });

  it('a confirmed change of address to one another person holds keeps the person their own address (no Auth error)', async () => {
    const sbId = '1d6c0a98-3958-4a7b-8c9d-0e1f2a3b4c5d';
    await db.sql`insert into auth.users (id, email, email_confirmed_at) values (${sbId}, 'mover@example.test', now())`;
    await db.sql`update auth.users set email = ${users.acmeAgent.email} where id = ${sbId}`;
    const [{ email }] = await db.sql`select u.email from public.users u join public.user_identities i on i.user_id = u.id where i.subject = ${sbId}`;
    expect(email).toBe('mover@example.test');
  });

  it('the custom access token hook puts the active tenant and role into Supabase tokens', async () => {
    const hook = async (userId: string, claims: Record<string, unknown>) =>
      (await db.sql`select private.custom_access_token_hook(${db.sql.json({ user_id: userId, claims } as never)}) as r`)[0].r.claims;
    const claims = await hook(users.acmeAgent.id, { sub: users.acmeAgent.id, role: 'authenticated', aud: 'authenticated' });
    expect(claims).toMatchObject({ sub: users.acmeAgent.id, tenant_id: tenants.acme.id, tenant_role: 'agent' });
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.globex.id}, ${users.acmeAgent.id}, 'user')`;
    const chosen = await hook(users.acmeAgent.id, { sub: users.acmeAgent.id, app_metadata: { tenant_id: tenants.globex.id } });
    expect(chosen).toMatchObject({ tenant_id: tenants.globex.id, tenant_role: 'user' });
    // A choice by slug, as requests read it, is a choice too.
    const bySlug = await hook(users.acmeAgent.id, { sub: users.acmeAgent.id, app_metadata: { tenant_id: 'globex' } });
    expect(bySlug).toMatchObject({ tenant_id: tenants.globex.id, tenant_role: 'user', app_metadata: { tenant_id: 'globex' } });
    // Slugs and ids are named in any case (slugs are stored in lower case).
    for (const named of ['GlobeX', tenants.globex.id.toUpperCase()]) {
      const anyCase = await hook(users.acmeAgent.id, { sub: users.acmeAgent.id, app_metadata: { tenant_id: named } });
      expect(anyCase, named).toMatchObject({ tenant_id: tenants.globex.id, tenant_role: 'user' });
    }
    // In two tenants and no choice made: no tenant named, so each request names its own
    // (X-Tenant-Id); a stale claim the token came with is dropped, a choice elsewhere too.
    const unchosen = await hook(users.acmeAgent.id, { sub: users.acmeAgent.id, tenant_id: tenants.acme.id, tenant_role: 'agent' });
    expect([unchosen.tenant_id, unchosen.tenant_role, unchosen.sub]).toEqual([undefined, undefined, users.acmeAgent.id]);
    // A choice of a tenant they are not (or no longer) in: dropped, so the token works
    // unbound rather than as a non-member's of that tenant everywhere.
    const elsewhere = await hook(users.acmeAgent.id, {
      sub: users.acmeAgent.id, role: 'authenticated', app_metadata: { provider: 'email', tenant_id: '00000000-0000-4000-8000-0000000000ff' },
    });
    expect([elsewhere.tenant_id, elsewhere.app_metadata]).toEqual([undefined, { provider: 'email' }]);
    const active = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${JSON.stringify({ ...elsewhere, iss: 'http://127.0.0.1:54321/auth/v1' })}, true)`;
      return (await tx`select private.active_tenant_id() as id, private.request_tenant_id(${tenants.globex.id}) as named`)[0];
    });
    expect(active).toEqual({ id: null, named: tenants.globex.id });
    await db.sql`delete from public.memberships where tenant_id = ${tenants.globex.id} and user_id = ${users.acmeAgent.id}`;
    const nobody = await hook('00000000-0000-4000-8000-00000000dead', { sub: 'x', tenant_id: tenants.acme.id });
    expect(nobody.tenant_id).toBeUndefined();
  });
});

// ---------------------------------------------------------------- Chatwoot

describe('Chatwoot conversations', () => {
  const acme = tenants.acme.id;
  const CW_SECRET = 'chatwoot-webhook-secret';
  beforeAll(async () => {
    await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted)
      values (${acme}, 'chatwoot', 'active', ${await encryptJson({ webhook_secret: CW_SECRET }, { tenantId: acme, service: 'chatwoot' })})`;
  });

  const conversation = (id: number, extra: Record<string, unknown> = {}) => ({
    event: 'conversation_created', id, inbox_id: 3, status: 'open',
    meta: { sender: { name: 'Carla Customer', email: 'carla@example.test' } }, messages: [{ content: 'My order never arrived' }], ...extra,
  });
  const message = (id: number, conv: number, content: string, extra: Record<string, unknown> = {}) => ({
    event: 'message_created', id, content, message_type: 'incoming', private: false, conversation: { id: conv, display_id: conv }, ...extra,
  });

  async function sendSigned(event: unknown, opts: { at?: number; secret?: string; tenant?: string } = {}) {
    const body = JSON.stringify(event);
    const ts = opts.at ?? Math.floor(Date.now() / 1000);
    const { createHmac } = await import('node:crypto');
    const sig = createHmac('sha256', opts.secret ?? CW_SECRET).update(`${ts}.${body}`).digest('hex');
    return await call(webhooksApp, 'POST', `/webhooks/chatwoot/${opts.tenant ?? acme}`, {
      rawBody: body,
      headers: { 'x-chatwoot-signature': `sha256=${sig}`, 'x-chatwoot-timestamp': String(ts), 'x-chatwoot-delivery': randomBytes(8).toString('hex') },
    });
  }

  it('cuts a long message at 10,000 characters, never inside an emoji (which would be stored as U+FFFD)', async () => {
    expect((await sendSigned(conversation(151))).body.outcome).toBe('applied');
    expect((await sendSigned(message(9151, 151, 'a'.repeat(9_999) + '😀' + 'tail'))).body.outcome).toBe('applied');
    const [m] = await db.sql`select char_length(m.content) as n, right(m.content, 1) as last from public.ticket_messages m
      join public.tickets t on t.tenant_id = m.tenant_id and t.id = m.ticket_id
      where t.tenant_id = ${acme} and t.chatwoot_conversation_id = '151' and m.type = 'message'`;
    expect(m).toEqual({ n: 10_000, last: '😀' });
  });

  it("an agent's reply in Chatwoot answers the ticket (first response, the reply owed); a contact's message owes one; a note neither", async () => {
    await sendSigned(conversation(161));
    const [t] = await db.sql`select id from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '161'`;
    const state = async () => (await db.sql`
      select t.first_response_at is not null as answered, t.status,
             exists (select 1 from private.ticket_replies_owed o where o.tenant_id = t.tenant_id and o.ticket_id = t.id) as owed
      from public.tickets t where t.id = ${t.id}`)[0];
    await sendSigned(message(9161, 161, 'Still waiting for my parcel'));
    expect(await state()).toEqual({ answered: false, status: 'open', owed: true });
    await sendSigned(message(9162, 161, 'Asking the carrier', { message_type: 'outgoing', private: true }));
    expect(await state()).toEqual({ answered: false, status: 'open', owed: true });
    // A bot's auto-reply answers no one.
    await sendSigned(message(9165, 161, 'We got your message!', { message_type: 'outgoing', sender: { id: 7, type: 'agent_bot' } }));
    expect(await state()).toEqual({ answered: false, status: 'open', owed: true });
    await sendSigned(message(9163, 161, 'It arrives tomorrow', { message_type: 'outgoing', sender: { id: 4242, type: 'user' } }));
    expect(await state()).toEqual({ answered: true, status: 'open', owed: false });
    // A contact writing again on a pending ticket hands it back to the agents, and owes a reply.
    await db.sql`update public.tickets set status = 'pending' where id = ${t.id}`;
    await sendSigned(message(9164, 161, 'It did not arrive'));
    expect(await state()).toEqual({ answered: true, status: 'open', owed: true });
  });

  it('turns a conversation, its messages and status changes into a ticket', async () => {
    expect((await sendSigned(conversation(101))).body.outcome).toBe('applied');
    await sendSigned(message(9001, 101, 'Order #55, placed Monday'));
    await sendSigned(message(9002, 101, 'Checking with the warehouse', { message_type: 'outgoing', private: true }));
    await sendSigned({ event: 'conversation_status_changed', id: 101, status: 'resolved', timestamp: 1 });
    const [t] = await db.sql`select id, title, status, metadata from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '101'`;
    expect(t).toMatchObject({ title: 'Chat #101 from Carla Customer', status: 'resolved', metadata: { contact: { email: 'carla@example.test' } } });
    const msgs = await db.sql`select type, content from public.ticket_messages where ticket_id = ${t.id} order by created_at`;
    expect(msgs).toEqual([{ type: 'message', content: 'Order #55, placed Monday' }, { type: 'note', content: 'Checking with the warehouse' }]);
  });

  it('applies status changes in the order Chatwoot made them, not the order they arrive', async () => {
    await sendSigned(conversation(111));
    const status = (s: string, extra: Record<string, unknown>) => sendSigned({ event: 'conversation_status_changed', id: 111, status: s, ...extra });
    const ticketStatus = async () =>
      (await db.sql`select status from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '111'`)[0].status;
    // Resolved, then reopened by the customer: the reopening arrives first, the resolve late.
    expect((await status('open', { updated_at: 1_800_000_200.5, timestamp: 1_800_000_150 })).body.outcome).toBe('ignored');
    expect((await status('resolved', { updated_at: 1_800_000_100.25, timestamp: 1_800_000_100 })).body.outcome).toBe('ignored');
    expect(await ticketStatus()).toBe('open');
    // Resolved, reopened and resolved again with no message between (the same
    // `timestamp`): each change applies, the second resolve no repeat of the first.
    expect((await status('resolved', { updated_at: 1_800_000_300.1, timestamp: 1_800_000_150 })).body.outcome).toBe('applied');
    expect((await status('open', { updated_at: 1_800_000_300.2, timestamp: 1_800_000_150 })).body.outcome).toBe('applied');
    expect((await status('resolved', { updated_at: 1_800_000_300.3, timestamp: 1_800_000_150 })).body.outcome).toBe('applied');
    expect(await ticketStatus()).toBe('resolved');
    // An older payload with only `timestamp` (ISO updated_at not given): older is ignored too.
    expect((await status('open', { timestamp: 1_800_000_120 })).body.outcome).toBe('ignored');
    expect(await ticketStatus()).toBe('resolved');
    expect((await status('open', { updated_at: '2027-01-16T08:00:00.000Z' })).body.outcome).toBe('applied');
    expect(await ticketStatus()).toBe('open');
  });

  it("two conversations' tickets with no requester are not merged: nobody knows they are one person's", async () => {
    await sendSigned(conversation(141, { meta: { sender: { name: 'Alice' } } }));
    await sendSigned(conversation(142, { meta: { sender: { name: 'Bob' } } }));
    const [alice] = await db.sql`select id from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '141'`;
    const [bob] = await db.sql`select id from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '142'`;
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
    const merged = await call(ticketsApp, 'POST', `/tickets/${alice.id}/merge`, { token: admin, body: { into: bob.id } });
    expect([merged.status, errorCode(merged), merged.body.error.message]).toEqual([409, expect.any(String), expect.stringContaining('no requester')]);
    expect((await db.sql`select merged_into_id from public.tickets where id = ${alice.id}`)[0].merged_into_id).toBeNull();
    // Alice's next message stays on her ticket.
    await sendSigned(message(9141, 141, 'Alice again'));
    expect((await db.sql`select 1 from public.ticket_messages where ticket_id = ${bob.id} and content = 'Alice again'`)).toHaveLength(0);
  });

  it("a merged ticket's conversation: new messages go to the ticket it was merged into, its status changes to neither", async () => {
    await sendSigned(conversation(121));
    await sendSigned(message(9121, 121, 'First report'));
    const [a] = await db.sql`select id from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '121'`;
    // Staff know who wrote (a conversation's ticket has no requester until they say).
    await db.sql`update public.tickets set created_by = ${users.acmeUser.id} where id = ${a.id}`;
    const [b] = await db.sql`insert into public.tickets (tenant_id, title, created_by)
      select tenant_id, 'Older report', created_by from public.tickets where id = ${a.id} returning id`;
    await db.sql.begin(async (tx) => { // an admin merges them
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify({ ...supabaseClaims(users.acmeAdmin, acme), role: 'authenticated' })}, true)`;
      await tx`select private.merge_tickets(${acme}, ${a.id}, ${b.id})`;
    });
    const later = await sendSigned(message(9122, 121, 'Any news on my order?'));
    expect([later.status, later.body.outcome]).toEqual([200, 'applied']);
    const contents = async (id: string) =>
      (await db.sql`select content from public.ticket_messages where ticket_id = ${id} and type = 'message' order by created_at`).map((m) => m.content);
    expect(await contents(b.id)).toEqual(['First report', 'Any news on my order?']);
    expect(await contents(a.id)).toEqual([]);
    const reopened = await sendSigned({ event: 'conversation_status_changed', id: 121, status: 'open', updated_at: 1_900_000_000 });
    expect([reopened.status, reopened.body.outcome]).toEqual([200, 'ignored']);
    expect((await db.sql`select status from public.tickets where id = ${a.id}`)[0].status).toBe('closed');

    // A message arriving while a merge of the conversation's ticket is being committed
    // waits for it and goes to the ticket it was merged into (not a 409 that loses it).
    await sendSigned(conversation(122));
    const [c] = await db.sql`select id from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '122'`;
    await db.sql`update public.tickets set created_by = ${users.acmeUser.id} where id = ${c.id}`;
    const [d] = await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${acme}, 'Merge target', ${users.acmeUser.id}) returning id`;
    const merger = await db.sql.reserve();
    try {
      await merger`begin`;
      await merger`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify({ ...supabaseClaims(users.acmeAdmin, acme), role: 'authenticated' })}, true)`;
      await merger`select private.merge_tickets(${acme}, ${c.id}, ${d.id})`;
      const [{ pid }] = await merger`select pg_backend_pid() as pid`;
      const during = sendSigned(message(9123, 122, 'Sent during the merge'));
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await merger`commit`;
      const r = await during;
      expect([r.status, r.body.outcome]).toEqual([200, 'applied']);
    } finally {
      await merger`rollback`.catch(() => undefined);
      merger.release();
    }
    expect(await contents(d.id)).toContain('Sent during the merge');
  });

  it("a tenant whose plan no longer includes Chatwoot takes no events: 403 feature_not_in_plan, nothing written", async () => {
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, features) values (${acme}, '{"chatwoot": false}')
      on conflict (tenant_id) do update set features = excluded.features`;
    try {
      const before = (await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme}`)[0].n;
      const r = await sendSigned(conversation(131));
      expect([r.status, r.body.error?.code]).toEqual([403, 'feature_not_in_plan']);
      expect((await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme}`)[0].n).toBe(before);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
    }
    expect((await sendSigned(conversation(131))).body.outcome).toBe('applied');
  });

  it('authenticates by the per-tenant URL token where Chatwoot does not sign, and only there', async () => {
    const token = await chatwootUrlToken(acme);
    // With a signing secret configured the token alone opens nothing.
    const refused = await call(webhooksApp, 'POST', `/webhooks/chatwoot/${acme}?token=${token}`, { rawBody: JSON.stringify(conversation(105)) });
    expect(refused.status).toBe(401);
    await db.sql`update public.tenant_services set credentials_encrypted = ${await encryptJson({}, { tenantId: acme, service: 'chatwoot' })} where tenant_id = ${acme} and service = 'chatwoot'`;
    onTestFinished(async () => {
      await db.sql`update public.tenant_services set credentials_encrypted = ${await encryptJson({ webhook_secret: CW_SECRET }, { tenantId: acme, service: 'chatwoot' })} where tenant_id = ${acme} and service = 'chatwoot'`;
    });
    const ok = await call(webhooksApp, 'POST', `/webhooks/chatwoot/${acme}?token=${token}`, { rawBody: JSON.stringify(conversation(102)) });
    expect(ok.body.outcome).toBe('applied');
    const bad = await call(webhooksApp, 'POST', `/webhooks/chatwoot/${acme}?token=${token.replace(/.$/, (c) => (c === '0' ? '1' : '0'))}`, { rawBody: JSON.stringify(conversation(103)) });
    expect(bad.status).toBe(401);
    // Another tenant's token opens nothing here.
    const foreign = await chatwootUrlToken(tenants.globex.id);
    expect((await call(webhooksApp, 'POST', `/webhooks/chatwoot/${acme}?token=${foreign}`, { rawBody: JSON.stringify(conversation(104)) })).status).toBe(401);
  });

  it("keeps two tenants' Chatwoot apart: one's signature opens nothing at the other's URL, and one conversation id in both goes to the URL's tenant", async () => {
    const globex = tenants.globex.id;
    const GLOBEX_SECRET = 'globex-chatwoot-secret';
    await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted)
      values (${globex}, 'chatwoot', 'active', ${await encryptJson({ webhook_secret: GLOBEX_SECRET }, { tenantId: globex, service: 'chatwoot' })})`;
    onTestFinished(async () => {
      await db.sql`delete from public.tickets where tenant_id = ${globex} and chatwoot_conversation_id = '301'`;
      await db.sql`delete from public.tenant_services where tenant_id = ${globex} and service = 'chatwoot'`;
    });
    const tickets = async (tenant: string) =>
      (await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${tenant}`)[0].n as number;
    const globexBefore = await tickets(globex);
    // Acme's secret, globex's URL.
    const crossed = await sendSigned(conversation(301), { tenant: globex });
    expect([crossed.status, errorCode(crossed)]).toEqual([401, 'invalid_signature']);
    expect(await tickets(globex)).toBe(globexBefore);
    // Conversation 301 in each tenant's Chatwoot: a ticket in each.
    expect((await sendSigned(conversation(301), { tenant: globex, secret: GLOBEX_SECRET })).body.outcome).toBe('applied');
    expect((await sendSigned(conversation(301))).body.outcome).toBe('applied');
    const thread = async (tenant: string) =>
      (await db.sql`select m.content from public.ticket_messages m join public.tickets t on t.tenant_id = m.tenant_id and t.id = m.ticket_id
        where t.tenant_id = ${tenant} and t.chatwoot_conversation_id = '301' order by m.created_at, m.id`).map((r) => r.content as string);
    // Each tenant's message in its conversation 301 reaches its own ticket alone.
    expect((await sendSigned(message(9301, 301, 'Only for globex'), { tenant: globex, secret: GLOBEX_SECRET })).body.outcome).toBe('applied');
    expect((await sendSigned(message(9302, 301, 'Only for acme'))).body.outcome).toBe('applied');
    expect([await thread(globex), await thread(acme)]).toEqual([['Only for globex'], ['Only for acme']]);
  });

  it('refuses a bad signature, a stale timestamp and a tenant without Chatwoot, writing nothing', async () => {
    const before = (await db.sql`select count(*)::int as n from public.tickets`)[0].n;
    expect((await sendSigned(conversation(201), { secret: 'wrong' })).status).toBe(401);
    const stale = await sendSigned(conversation(202), { at: Math.floor(Date.now() / 1000) - 3600 });
    expect([stale.status, errorCode(stale)]).toEqual([401, 'stale_timestamp']);
    // Globex has no Chatwoot: even its genuine URL token opens nothing.
    const token = await chatwootUrlToken(tenants.globex.id);
    const noService = await call(webhooksApp, 'POST', `/webhooks/chatwoot/${tenants.globex.id}?token=${token}`, { rawBody: '{}' });
    expect([noService.status, errorCode(noService)]).toEqual([401, 'invalid_signature']);
    expect((await db.sql`select count(*)::int as n from public.tickets`)[0].n).toBe(before);
  });

  it('tells a stranger nothing about a tenant: every unsigned or missigned request gets the answer a tenant without Chatwoot gets', async () => {
    const body = JSON.stringify(conversation(203));
    const now = Math.floor(Date.now() / 1000);
    const attempts: Record<string, Record<string, string>> = {
      'no headers': {},
      'no timestamp': { 'x-chatwoot-signature': 'sha256=00' },
      'a stale timestamp, not signed': { 'x-chatwoot-signature': 'sha256=00', 'x-chatwoot-timestamp': '1' },
      'a fresh timestamp, not signed': { 'x-chatwoot-signature': 'sha256=00', 'x-chatwoot-timestamp': String(now) },
    };
    const answer = async (tenant: string, headers: Record<string, string>) => {
      const r = await call(webhooksApp, 'POST', `/webhooks/chatwoot/${tenant}`, { rawBody: body, headers });
      return { status: r.status, body: r.body };
    };
    for (const [what, headers] of Object.entries(attempts)) {
      const nobody = await answer('10000000-0000-4000-8000-00000000abcd', headers);
      expect(nobody.status, what).toBe(401);
      // Acme signs its events (a secret), globex has no Chatwoot: both answer as nobody.
      expect(await answer(acme, headers), what).toEqual(nobody);
      expect(await answer(tenants.globex.id, headers), what).toEqual(nobody);
    }
  });

  it("a contact's message written before a status change applied already hands nothing back: Chatwoot sent it late", async () => {
    await sendSigned(conversation(173));
    const [t] = await db.sql`select id from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '173'`;
    const state = async () => (await db.sql`
      select t.status, exists (select 1 from private.ticket_replies_owed o where o.tenant_id = t.tenant_id and o.ticket_id = t.id) as owed,
             (select count(*)::int from public.ticket_messages m where m.ticket_id = t.id) as messages
      from public.tickets t where t.id = ${t.id}`)[0];
    const now = Math.floor(Date.now() / 1000);
    // The agent set it pending at now + 0.5; the contact had written a minute before.
    expect((await sendSigned({ event: 'conversation_status_changed', id: 173, status: 'pending', updated_at: now + 0.5 })).body.outcome)
      .toBe('applied');
    const late = await sendSigned(message(9173, 173, 'Where is my parcel?', { created_at: now - 60 }));
    expect([late.status, late.body.outcome]).toEqual([200, 'applied']);
    expect(await state()).toEqual({ status: 'pending', owed: false, messages: 1 });
    // One of the same (whole) second may be newer: it hands the ticket back, and owes a reply.
    await sendSigned(message(9174, 173, 'Hello?', { created_at: new Date(now * 1000).toISOString() }));
    expect(await state()).toEqual({ status: 'open', owed: true, messages: 2 });
    // Resolved, then reopened by the contact's message (Chatwoot reopens a second later):
    // the reopening applied first, the message that caused it still owes its reply.
    expect((await sendSigned({ event: 'conversation_status_changed', id: 173, status: 'resolved', updated_at: now + 1.5 })).body.outcome)
      .toBe('applied');
    await db.sql`delete from private.ticket_replies_owed where ticket_id = ${t.id}`;
    expect((await sendSigned({ event: 'conversation_status_changed', id: 173, status: 'open', updated_at: now + 3.01 })).body.outcome)
      .toBe('applied');
    await sendSigned(message(9175, 173, 'It broke again', { created_at: now + 2.98 }));
    expect(await state()).toEqual({ status: 'open', owed: true, messages: 3 });
  });

  it("refuses an event whose ids are not Chatwoot's as a 400, writing nothing: no message id, or one too long to keep", async () => {
    const before = (await db.sql`select count(*)::int as n from public.ticket_messages where tenant_id = ${acme}`)[0].n;
    const inbox = (await db.sql`select count(*)::int as n from private.webhook_inbox where provider = 'chatwoot'`)[0].n;
    await sendSigned(conversation(174));
    const cases = [
      { ...message(0, 174, 'No id'), id: undefined },
      { ...message(0, 174, 'Words for an id'), id: 'abc' },
      { ...message(0, 174, 'A long id'), id: '9'.repeat(3000) },
      { ...message(0, 174, 'Past bigint'), id: '9'.repeat(19) },
      { ...conversation(174), event: 'conversation_updated', id: 'x'.repeat(3000) },
    ];
    for (const event of cases) {
      const r = await sendSigned(event);
      expect([r.status, errorCode(r)], String(event.id).slice(0, 10)).toEqual([400, 'invalid_payload']);
    }
    expect((await db.sql`select count(*)::int as n from public.ticket_messages where tenant_id = ${acme}`)[0].n).toBe(before);
    // Only the conversation's own creation was recorded.
    expect((await db.sql`select count(*)::int as n from private.webhook_inbox where provider = 'chatwoot'`)[0].n).toBe(inbox + 1);
  });

  it('applies a redelivered message once, whatever delivery id the (unsigned) header claims', async () => {
    const event = message(9100, 101, 'Sent twice by Chatwoot');
    const results = await Promise.all([1, 2, 3].map(() => sendSigned(event))); // a fresh x-chatwoot-delivery each
    expect(results.map((r) => r.body.outcome).sort()).toEqual(['applied', 'duplicate', 'duplicate']);
    expect((await db.sql`select count(*)::int as n from public.ticket_messages where content = 'Sent twice by Chatwoot'`)[0].n).toBe(1);
  });

  it("a message naming another Chatwoot account than the tenant's (a former one winding down) is ignored: that account's conversation numbers are not this one's", async () => {
    const [{ external_ids: before }] = await db.sql`select external_ids from public.tenant_services where tenant_id = ${acme} and service = 'chatwoot'`;
    await db.sql`update public.tenant_services set external_ids = external_ids || '{"account_id": 41}' where tenant_id = ${acme} and service = 'chatwoot'`;
    try {
      // The old account's conversation #181 first: the account's own #181 is not its repeat.
      // A conversation event names no account of its own, only its last message's
      // (`messages[0].account_id`), as Chatwoot sends it.
      const foreign = await sendSigned(conversation(181, { messages: [{ content: 'Old account', account_id: 40 }] }));
      expect([foreign.status, foreign.body.outcome]).toEqual([200, 'ignored']);
      expect((await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '181'`)[0].n).toBe(0);
      expect((await sendSigned(conversation(181))).body.outcome).toBe('applied');
      const other = await sendSigned(message(9181, 181, 'From the old account', { account: { id: 40, name: 'Acme (old)' } }));
      expect([other.status, other.body.outcome]).toEqual([200, 'ignored']);
      const mine = await sendSigned(message(9182, 181, 'From this account', { account: { id: 41, name: 'Acme' } }));
      expect(mine.body.outcome).toBe('applied');
      const unnamed = await sendSigned(message(9183, 181, 'Naming no account'));
      expect(unnamed.body.outcome).toBe('applied');
      // The old account's #181 resolved: not this account's ticket.
      const resolved = await sendSigned({
        event: 'conversation_status_changed', id: 181, status: 'resolved', updated_at: '2026-12-07T10:00:00Z',
        messages: [{ content: 'Old account', account_id: 40 }],
      });
      expect([resolved.status, resolved.body.outcome]).toEqual([200, 'ignored']);
      const [{ status }] = await db.sql`select status from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = '181'`;
      expect(status).not.toBe('resolved');
      const contents = (await db.sql`select m.content from public.ticket_messages m join public.tickets t on t.tenant_id = m.tenant_id and t.id = m.ticket_id
        where t.tenant_id = ${acme} and t.chatwoot_conversation_id = '181' and m.type = 'message' order by m.created_at`).map((m) => m.content);
      expect(contents).not.toContain('From the old account');
      expect(contents).toEqual(expect.arrayContaining(['From this account', 'Naming no account']));
    } finally {
      await db.sql`update public.tenant_services set external_ids = ${db.sql.json(before)} where tenant_id = ${acme} and service = 'chatwoot'`;
    }
  });

  it("a new Chatwoot account's conversation #1 is not the old account's: its own ticket, and replies go to neither the wrong customer nor the wrong account", async () => {
    const service = (account: number) => db.sql`update public.tenant_services
      set external_ids = external_ids || ${db.sql.json({ account_id: account })} where tenant_id = ${acme} and service = 'chatwoot'`;
    const ticketOf = async (conv: string) =>
      (await db.sql`select id from public.tickets where tenant_id = ${acme} and chatwoot_conversation_id = ${conv}`)[0]?.id as string | undefined;
    const reply = (ticket: string, content: string) => db.sql`insert into public.ticket_messages (tenant_id, ticket_id, type, content, author_id)
      values (${acme}, ${ticket}, 'message', ${content}, ${users.acmeAgent.id})`;
    const replies = async () =>
      (await db.sql`select r.content, r.status, r.account_id from private.chatwoot_replies r
        where r.tenant_id = ${acme} and r.conversation_id = '171' order by r.id`).map((r) => [r.content, r.status, r.account_id]);
    try {
      await service(501);
      expect((await sendSigned(conversation(171))).body.outcome).toBe('applied');
      await sendSigned(message(9171, 171, 'Carla: where is my parcel?'));
      const first = (await ticketOf('171'))!;
      await reply(first, 'Carla, it ships today');
      expect(await replies()).toEqual([['Carla, it ships today', 'pending', '501']]);

      // Chatwoot is set up again for the tenant: a new account, whose numbers start over.
      await service(502);
      expect(await replies()).toEqual([['Carla, it ships today', 'failed', '501']]);
      expect((await sendSigned(conversation(171, { meta: { sender: { name: 'Dan Other' } } }))).body.outcome).toBe('applied');
      expect((await sendSigned(message(9172, 171, 'Dan: my invoice is wrong'))).body.outcome).toBe('applied');
      const second = (await ticketOf('171'))!;
      expect(second).not.toBe(first);
      const thread = async (ticket: string) =>
        (await db.sql`select content from public.ticket_messages where ticket_id = ${ticket} and author_id is null order by created_at, id`)
          .map((m) => m.content);
      expect(await thread(first)).toEqual(['Carla: where is my parcel?']);
      expect(await thread(second)).toEqual(['Dan: my invoice is wrong']);
      // Carla's ticket no longer names a conversation: a reply there goes nowhere; Dan's goes to his.
      await reply(first, 'Carla, any news?');
      await reply(second, 'Dan, we are fixing it');
      expect(await replies()).toEqual([['Carla, it ships today', 'failed', '501'], ['Dan, we are fixing it', 'pending', '502']]);

      // A reply queued for the old account while it changed is not posted into the new one.
      await db.sql`insert into private.chatwoot_replies (tenant_id, message_id, conversation_id, content, account_id)
        values (${acme}, gen_random_uuid(), '171', 'Queued for the old account', 501)`;
      const [{ id: stale }] = await db.sql`select id from private.chatwoot_replies where content = 'Queued for the old account'`;
      await db.sql`update public.tenant_services set credentials_encrypted = ${await encryptJson(
        { webhook_secret: CW_SECRET, access_token: 'owner-token' }, { tenantId: acme, service: 'chatwoot' })}
        where tenant_id = ${acme} and service = 'chatwoot'`;
      await db.sql`delete from private.jobs where task = 'chatwoot-reply'`;
      await db.sql`select private.add_job('chatwoot-reply', ${db.sql.json({ tenant_id: acme, reply_id: Number(stale) })}::jsonb)`;
      // Nothing listens there: a post would fail as retryable, the refusal is final.
      const report = await runJobs({ tasks: ['chatwoot-reply'], deps: { chatwootUrl: 'http://127.0.0.1:9' } });
      expect(report.tasks['chatwoot-reply']).toMatchObject({ dead: 1 });
      expect((await db.sql`select status, last_error from private.chatwoot_replies where id = ${stale}`)[0])
        .toEqual({ status: 'failed', last_error: expect.stringContaining('account was replaced') });
    } finally {
      await db.sql`delete from private.jobs where task = 'chatwoot-reply'`;
      await db.sql`update public.tenant_services set external_ids = external_ids - 'account_id',
        credentials_encrypted = ${await encryptJson({ webhook_secret: CW_SECRET }, { tenantId: acme, service: 'chatwoot' })}
        where tenant_id = ${acme} and service = 'chatwoot'`;
      await db.sql`delete from private.chatwoot_accounts where tenant_id = ${acme}`;
    }
  });

  it('takes the tenant id in capitals as the same tenant (its secrets are bound to the id as stored)', async () => {
    // An id with letters (the seed's are all digits).
    const lettered = 'abcdef00-0000-4000-8000-00000000cafe';
    await db.sql`insert into public.tenants (id, name, slug, plan) values (${lettered}, 'Cafe Co', 'cafe-co', 'pro')`;
    await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted)
      values (${lettered}, 'chatwoot', 'active', ${await encryptJson({ webhook_secret: CW_SECRET }, { tenantId: lettered, service: 'chatwoot' })})`;
    const res = await sendSigned(conversation(181), { tenant: lettered.toUpperCase() });
    expect([res.status, res.body.outcome]).toEqual([200, 'applied']);
    expect(await db.sql`select 1 from public.tickets where tenant_id = ${lettered} and chatwoot_conversation_id = '181'`).toHaveLength(1);
  });
});

// ---------------------------------------------------------------- outbound

interface Received { id: string; type: string; ticket: string; verified: boolean }

async function receiver(secretRef: { secret?: string }) {
  const received: Received[] = [];
  // failNext answers 503 (with failRetryAfter as its Retry-After, when set); rateLimitNext
  // answers 429 with retryAfter.
  const behaviour = { failNext: 0, hangNext: 0, failRetryAfter: '', rateLimitNext: 0, retryAfter: '120' };
  const server = http.createServer(async (req, res) => {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = Buffer.concat(chunks).toString('utf8');
    if (behaviour.hangNext > 0) {
      behaviour.hangNext--;
      return; // never answers: the sender times out
    }
    if (behaviour.failNext > 0) {
      behaviour.failNext--;
      res.writeHead(503, behaviour.failRetryAfter ? { 'retry-after': behaviour.failRetryAfter } : {}).end('busy');
      return;
    }
    if (behaviour.rateLimitNext > 0) {
      behaviour.rateLimitNext--;
      res.writeHead(429, { 'retry-after': behaviour.retryAfter }).end('slow down');
      return;
    }
    let verified = false;
    let event: Record<string, any> = {};
    try {
      event = new StandardWebhook(secretRef.secret!).verify(body, req.headers as Record<string, string>) as Record<string, any>;
      verified = true;
    } catch {
      // recorded as unverified
    }
    received.push({ id: String(req.headers['webhook-id']), type: event.type, ticket: event.data?.ticket_id ?? event.data?.id, verified });
    res.writeHead(204).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    behaviour,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

/** A receiver and an endpoint of acme's at it for `eventTypes`, whose signing secret the
 *  receiver verifies with. The caller closes the receiver. */
async function receiverFor(eventTypes: string[]) {
  const secretRef: { secret?: string } = {};
  const rx = await receiver(secretRef);
  const reg = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks`, {
    token: adminToken,
    body: { url: rx.url, event_types: eventTypes },
  });
  if (reg.status !== 201) {
    await rx.close();
    throw new Error(`the endpoint was not registered: ${reg.status} ${JSON.stringify(reg.body)}`);
  }
  secretRef.secret = reg.body.secret;
  return { rx, reg };
}

/** One run of the job runner over webhook deliveries (what the old delivery job did). */
const deliverWebhooks = (opts: { timeoutMs: number; budgetMs: number }) =>
  runJobs({ tasks: ['deliver-webhook'], deps: { webhookTimeoutMs: opts.timeoutMs }, budgetMs: opts.budgetMs });

async function deliverAll(rounds = 30) {
  for (let i = 0; i < rounds; i++) {
    await db.sql`update private.jobs set run_at = now() where task = 'deliver-webhook' and dead_at is null and run_at > now()`;
    // Long enough that only the receiver's deliberate hang times out on a loaded machine.
    const r = await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 10_000 });
    if (r.claimed === 0) return;
  }
}

describe('outbound webhooks', () => {
  it('refuses private, plain-http and credentialed targets on a hosted project', () => {
    for (const url of ['http://example.com/h', 'https://10.0.0.5/h', 'https://169.254.169.254/latest', 'https://127.0.0.1/h',
      'https://[::1]/h', 'https://user:pw@example.com/h', 'https://metadata.internal/h', 'https://intranet/h',
      'https://localhost./h', 'https://metadata.google.internal./h', 'https://foo.local./h', 'https://[fd00::1]/h']) {
      expect(webhookTargetProblem(url, false), url).not.toBeNull();
    }
    expect(webhookTargetProblem('https://hooks.example.com/in', false)).toBeNull();
    expect(webhookTargetProblem('http://127.0.0.1:8080/h', true)).toBeNull(); // local stack only
  });

  it('also refuses names that do not resolve to a public address', async () => {
    expect(await resolvedTargetProblem('https://no-such-host.invalid/h', false)).toBe('the host name must resolve, and only to public addresses');
    expect(await resolvedTargetProblem('https://10.1.2.3/h', false)).not.toBeNull();
  });

  it('delivers every event, signed, in order per ticket, through failures, a timeout and recovery', async () => {
    const { rx, reg } = await receiverFor(['ticket.created', 'ticket.status_changed', 'message.created']);
    try {
      expect(reg.status).toBe(201);
      expect(reg.body.secret).toMatch(/^whsec_/);
      const listed = await call(tenantsApp, 'GET', `/tenants/${tenants.acme.id}/webhooks`, { token: adminToken });
      expect(JSON.stringify(listed.body)).not.toContain(reg.body.secret);

      // Two tickets' lives, interleaved.
      const userTok = await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id });
      const agentTok = await supabaseToken(users.acmeAgent, { tenantId: tenants.acme.id });
      const a = (await call(ticketsApp, 'POST', '/tickets', { token: userTok, body: { title: 'First outbound ticket' } })).body;
      const b = (await call(ticketsApp, 'POST', '/tickets', { token: userTok, body: { title: 'Second outbound ticket' } })).body;
      // One timestamp format: the payload and the audit trail render the ticket's times as
      // the API does (UTC, Z, milliseconds), so the strings compare equal.
      const [event] = await db.sql`select payload from private.webhook_events
        where type = 'ticket.created' and payload -> 'data' ->> 'id' = ${a.id}`;
      expect(event.payload.data).toMatchObject({ created_at: a.created_at, updated_at: a.updated_at, first_response_due_at: a.first_response_due_at });
      expect(event.payload.occurred_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const [audit] = await db.sql`select new_data from public.audit_logs
        where table_name = 'tickets' and action = 'INSERT' and record_key ->> 'id' = ${a.id}`;
      expect(audit.new_data).toMatchObject({ created_at: a.created_at, updated_at: a.updated_at });
      await db.sql`update public.tickets set team_id = '20000000-0000-4000-8000-000000000001' where id in (${a.id}, ${b.id})`;
      await call(ticketsApp, 'POST', `/tickets/${a.id}/messages`, { token: userTok, body: { content: 'a1' } });
      await call(ticketsApp, 'POST', `/tickets/${b.id}/messages`, { token: userTok, body: { content: 'b1' } });
      await call(ticketsApp, 'POST', `/tickets/${a.id}/status`, { token: agentTok, body: { status: 'pending' } });
      await call(ticketsApp, 'POST', `/tickets/${b.id}/status`, { token: agentTok, body: { status: 'resolved' } });
      await call(ticketsApp, 'POST', `/tickets/${a.id}/messages`, { token: agentTok, body: { type: 'note', content: 'not subscribed' } });

      rx.behaviour.failNext = 3;
      rx.behaviour.hangNext = 1;
      await deliverAll();

      expect(rx.received.every((r) => r.verified)).toBe(true);
      const unique = [...new Map(rx.received.map((r) => [r.id, r])).values()];
      const forTicket = (id: string) => unique.filter((r) => r.ticket === id).map((r) => r.type);
      expect(forTicket(a.id)).toEqual(['ticket.created', 'message.created', 'ticket.status_changed']);
      expect(forTicket(b.id)).toEqual(['ticket.created', 'message.created', 'ticket.status_changed']);
      expect(unique).toHaveLength(6);

      const deliveries = await call(tenantsApp, 'GET', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}/deliveries`, { token: adminToken });
      expect(deliveries.body.items.every((d: { status: string }) => d.status === 'delivered')).toBe(true);
      const attempts = (await db.sql`select count(*)::int as n, count(*) filter (where error = 'timed out')::int as timeouts from private.webhook_attempts`)[0];
      expect(attempts.n).toBeGreaterThanOrEqual(6 + 4);
      expect(attempts.timeouts).toBe(1);
    } finally {
      await rx.close();
    }
  });

  it('a delivery removed while it is being sent ends its job, not leaving it locked until its lease runs out', async () => {
    let deliveryId = 0;
    // The receiver answers once the delivery is gone (its ticket's events deleted meanwhile).
    const server = http.createServer(async (req, res) => {
      for await (const _ of req) { /* read the body */ }
      await db.sql`delete from private.webhook_deliveries where id = ${deliveryId}`;
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
      const reg = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks`, { token: adminToken, body: { url, event_types: ['ticket.created'] } });
      const userTok = await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id });
      await call(ticketsApp, 'POST', '/tickets', { token: userTok, body: { title: 'Gone in flight' } });
      const [d] = await db.sql`select id from private.webhook_deliveries where endpoint_id = ${reg.body.id}`;
      deliveryId = Number(d.id);
      const report = await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 10_000 });
      // (Other tests' deliveries may ride along in this run.)
      expect(report.tasks['deliver-webhook']).toMatchObject({ completed: expect.any(Number), lost: 0 });
      expect(report.tasks['deliver-webhook'].completed).toBeGreaterThanOrEqual(1);
      expect(await db.sql`select id from private.jobs where job_key = ${'delivery:' + deliveryId}`).toEqual([]);
      await call(tenantsApp, 'DELETE', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, { token: adminToken });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it("sends a failed delivery again on an admin's request, with its webhook-id; only a failed one of its own endpoint, not while its job finishes nor for a type no longer taken", async () => {
    const { rx, reg } = await receiverFor(['ticket.created']);
    try {
      const userTok = await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id });
      const ticket = (await call(ticketsApp, 'POST', '/tickets', { token: userTok, body: { title: 'Refused until fixed' } })).body;
      const [d] = await db.sql`select d.id, ev.message_id from private.webhook_deliveries d join private.webhook_events ev on ev.id = d.event_id
        where d.endpoint_id = ${reg.body.id} and ev.payload -> 'data' ->> 'id' = ${ticket.id}`;
      // Where its attempts left it: failed, its job ended.
      await db.sql`update private.webhook_deliveries set status = 'failed', last_error = 'HTTP 400' where id = ${d.id}`;
      await db.sql`delete from private.jobs where job_key = ${'delivery:' + d.id}`;
      const retry = (deliveryId: number, endpoint = reg.body.id as string, token = adminToken) =>
        call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks/${endpoint}/deliveries/retry`, { token, body: { delivery_id: deliveryId } });

      const r = await retry(Number(d.id));
      expect([r.status, r.body]).toEqual([202, { id: Number(d.id), status: 'pending', queued: true }]);
      // The trail says who sent it again (the payload stays out of it).
      const [entry] = await db.sql`select actor_user_id, action, changed_fields, old_data ->> 'status' as was, new_data ->> 'status' as now
        from public.audit_logs where table_name = 'webhook_deliveries' and record_key = ${db.sql.json({ id: Number(d.id) })}`;
      expect(entry).toEqual({ actor_user_id: users.acmeAdmin.id, action: 'UPDATE', changed_fields: ['last_error', 'status'], was: 'failed', now: 'pending' });
      await deliverAll();
      expect(rx.received.filter((x) => x.ticket === ticket.id).map((x) => [x.id, x.verified])).toEqual([[d.message_id, true]]);
      const [after] = await db.sql`select status, last_error from private.webhook_deliveries where id = ${d.id}`;
      expect(after).toEqual({ status: 'delivered', last_error: null });
      // Delivered now: not sent again.
      const again = await retry(Number(d.id));
      expect([again.status, errorCode(again), again.body.error.details]).toEqual([409, 'not_failed', { status: 'delivered' }]);
      // On a disabled endpoint it waits, pending, for re-enabling, which queues it.
      await db.sql`update private.webhook_deliveries set status = 'failed' where id = ${d.id}`;
      await db.sql`update public.webhook_endpoints set enabled = false where id = ${reg.body.id}`;
      expect((await retry(Number(d.id))).body).toEqual({ id: Number(d.id), status: 'pending', queued: false });
      const jobs = async () => (await db.sql`select count(*)::int as n from private.jobs where job_key = ${'delivery:' + d.id} and dead_at is null`)[0].n;
      expect(await jobs()).toBe(0);
      await db.sql`update public.webhook_endpoints set enabled = true where id = ${reg.body.id}`;
      expect(await jobs()).toBe(1);
      // While its last job still finishes (locked: its failure hook may yet run): 409.
      await db.sql`update private.webhook_deliveries set status = 'failed' where id = ${d.id}`;
      await db.sql`update private.jobs set locked_by = 'another-worker', locked_until = now() + interval '1 minute'
        where job_key = ${'delivery:' + d.id}`;
      const busy = await retry(Number(d.id));
      expect([busy.status, errorCode(busy)]).toEqual([409, 'delivery_busy']);
      await db.sql`delete from private.jobs where job_key = ${'delivery:' + d.id}`;
      // A type the endpoint no longer takes: 409, not queued to be withheld.
      await db.sql`update public.webhook_endpoints set event_types = '{ticket.deleted}' where id = ${reg.body.id}`;
      const unsubscribed = await retry(Number(d.id));
      expect([unsubscribed.status, errorCode(unsubscribed), unsubscribed.body.error.details]).toEqual([409, 'not_subscribed', { type: 'ticket.created' }]);
      await db.sql`update public.webhook_endpoints set event_types = '{ticket.created}' where id = ${reg.body.id}`;
      // Nobody's delivery, or one of another endpoint: not found, alike.
      const other = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks`, {
        token: adminToken, body: { url: rx.url, event_types: ['ticket.deleted'] },
      });
      for (const [id, endpoint] of [[999_999_999, reg.body.id], [Number(d.id), other.body.id]] as const) {
        const miss = await retry(id, endpoint);
        expect([miss.status, errorCode(miss)], `${id} at ${endpoint}`).toEqual([404, 'not_found']);
      }
      // Staff who are not admins: refused.
      const agentTok = await supabaseToken(users.acmeAgent, { tenantId: tenants.acme.id });
      expect((await retry(Number(d.id), reg.body.id, agentTok)).status).toBe(403);
      // A bad body: 422, nothing changed.
      const bad = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}/deliveries/retry`, {
        token: adminToken, body: { delivery_id: 'one' },
      });
      expect([bad.status, errorCode(bad)]).toEqual([422, 'validation_failed']);
      for (const endpoint of [other.body.id, reg.body.id]) {
        await call(tenantsApp, 'DELETE', `/tenants/${tenants.acme.id}/webhooks/${endpoint}`, { token: adminToken });
      }
    } finally {
      await rx.close();
    }
  });

  it("an endpoint pointed at a new URL keeps no failure record of the old one: its count, since and breaker start afresh", async () => {
    const reg = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks`, {
      token: adminToken,
      body: { url: 'http://127.0.0.1:9/old-receiver', event_types: ['membership.updated'] },
    });
    expect(reg.status).toBe(201);
    try {
      await db.sql`update public.webhook_endpoints set consecutive_failures = 40, failing_since = now() - interval '23 hours'
        where id = ${reg.body.id}`;
      await db.sql`insert into private.webhook_endpoint_breakers (tenant_id, endpoint_id, probe_after)
        values (${tenants.acme.id}, ${reg.body.id}, now() + interval '5 minutes')`;
      const moved = await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, {
        token: adminToken,
        body: { url: 'http://127.0.0.1:9/fixed-receiver' },
      });
      expect(moved.status, JSON.stringify(moved.body)).toBe(200);
      const [e] = await db.sql`select enabled, consecutive_failures, failing_since from public.webhook_endpoints where id = ${reg.body.id}`;
      expect(e).toEqual({ enabled: true, consecutive_failures: 0, failing_since: null });
      expect(await db.sql`select 1 from private.webhook_endpoint_breakers where endpoint_id = ${reg.body.id}`).toHaveLength(0);
      // A description changes no record.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 3 where id = ${reg.body.id}`;
      await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, { token: adminToken, body: { description: 'new' } });
      expect((await db.sql`select consecutive_failures from public.webhook_endpoints where id = ${reg.body.id}`)[0].consecutive_failures).toBe(3);
    } finally {
      await db.sql`delete from public.webhook_endpoints where id = ${reg.body.id}`;
    }
  });

  it('disables an endpoint that keeps failing for a day, not for a burst of failed attempts; an admin sees why and re-enables it', async () => {
    const rx = await receiver({ secret: 'whsec_x' });
    try {
      const reg = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks`, { token: adminToken, body: { url: rx.url, event_types: ['membership.updated'] } });
      rx.behaviour.failNext = 1000;
      for (let i = 0; i < 3; i++) {
        await db.sql`update public.memberships set role = ${i % 2 ? 'agent' : 'user'} where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeUser.id}`;
      }
      const failFor = async (rounds: number) => {
        for (let i = 0; i < rounds; i++) {
          // Time passes: the jobs' backoff and the breaker's interval are over.
          await db.sql`update private.jobs set run_at = now() where task = 'deliver-webhook' and dead_at is null`;
          await db.sql`delete from private.webhook_endpoint_breakers where endpoint_id = ${reg.body.id}`;
          if ((await deliverWebhooks({ timeoutMs: 300, budgetMs: 5_000 })).claimed === 0) break;
        }
      };
      const endpoint = async () =>
        (await call(tenantsApp, 'GET', `/tenants/${tenants.acme.id}/webhooks`, { token: adminToken })).body.items
          .find((e: { id: string }) => e.id === reg.body.id);
      // 30 attempts and more within minutes (a receiver down while tickets change): still
      // enabled, failing since the first.
      await failFor(40);
      const burst = await endpoint();
      expect(burst).toMatchObject({ enabled: true, disabled_reason: null, failing_since: expect.any(String) });
      expect(burst.consecutive_failures).toBeGreaterThanOrEqual(30);
      // A day of it: the next failure disables the endpoint, and says since when.
      await db.sql`update public.webhook_endpoints set failing_since = now() - interval '25 hours' where id = ${reg.body.id}`;
      await failFor(1);
      const off = await endpoint();
      expect(off).toMatchObject({ enabled: false, disabled_reason: expect.stringMatching(/since \d{4}-.*; last: 503$/) });
      const back = await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, { token: adminToken, body: { enabled: true } });
      expect(back.body).toMatchObject({ enabled: true, disabled_reason: null, consecutive_failures: 0, failing_since: null });
    } finally {
      await rx.close();
    }
  });

  it("an endpoint whose API key expired is disabled at its next delivery: nothing is sent, and it all goes once an admin enables it", async () => {
    const { rx, reg } = await receiverFor(['ticket.created']);
    try {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      const key = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/api-keys`, {
        token: adminToken,
        body: { name: 'expiring integration', scopes: ['webhooks:manage', 'tickets:read'], expires_at: '2999-01-01T00:00:00Z' },
      });
      expect(key.status, JSON.stringify(key.body)).toBe(201);
      // The key points the endpoint at the receiver (it set it up), then expires.
      const moved = await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, {
        token: key.body.key,
        body: { url: `${rx.url}?via=key` },
      });
      expect(moved.status, JSON.stringify(moved.body)).toBe(200);
      // Its time passes (an expiry is fixed once made, so the test moves it with the rules off).
      await db.sql.begin(async (tx) => {
        await tx`set local session_replication_role = replica`;
        await tx`update public.api_keys set expires_at = now() - interval '1 second' where id = ${key.body.id}`;
      });
      const [ticket] = await db.sql`insert into public.tickets (tenant_id, title, created_by)
        values (${tenants.acme.id}, 'After the key expired', ${users.acmeUser.id}) returning id`;
      await db.sql`update private.jobs j set dead_at = now() from private.webhook_deliveries d
        where j.job_key = 'delivery:' || d.id and d.endpoint_id <> ${reg.body.id} and j.dead_at is null`;
      await deliverAll();
      expect(rx.received.filter((x) => x.ticket === ticket.id)).toEqual([]);
      const [endpoint] = await db.sql`select enabled, disabled_reason from public.webhook_endpoints where id = ${reg.body.id}`;
      expect(endpoint).toEqual({ enabled: false, disabled_reason: expect.stringContaining('has expired') });
      const [pending] = await db.sql`select d.status from private.webhook_deliveries d
        join private.webhook_events e on e.id = d.event_id
        where d.endpoint_id = ${reg.body.id} and e.payload -> 'data' ->> 'id' = ${ticket.id}`;
      expect(pending.status).toBe('pending');
      // An admin enables it again (vouching for it): the delivery goes.
      const back = await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, {
        token: adminToken,
        body: { enabled: true },
      });
      expect(back.status).toBe(200);
      await deliverAll();
      expect(rx.received.filter((x) => x.ticket === ticket.id)).toHaveLength(1);
    } finally {
      await rx.close();
    }
  });

  it('an endpoint failing without pause gets one delivery per interval as a probe: the others wait untried, in their queues, and go out once a probe gets through', async () => {
    const { rx, reg } = await receiverFor(['ticket.created']);
    try {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      // Six tickets: six named queues (one per ticket), so nothing orders them but the breaker.
      for (let i = 0; i < 6; i++) {
        await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${tenants.acme.id}, ${`Breaker ${i}`}, ${users.acmeUser.id})`;
      }
      // Only this endpoint's deliveries run (other tests' endpoints hear of tickets too).
      await db.sql`update private.jobs j set dead_at = now() from private.webhook_deliveries d
        where j.job_key = 'delivery:' || d.id and d.endpoint_id <> ${reg.body.id} and j.dead_at is null`;
      // Failed five times in a row already: the breaker trips.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 5, failing_since = now() - interval '10 minutes' where id = ${reg.body.id}`;
      const attempts = async () =>
        (await db.sql`select count(*)::int as n from private.webhook_attempts a
          join private.webhook_deliveries d on d.id = a.delivery_id where d.endpoint_id = ${reg.body.id}`)[0].n;
      const due = () => db.sql`update private.jobs set run_at = now() where task = 'deliver-webhook' and dead_at is null`;
      rx.behaviour.hangNext = 100; // the receiver hangs

      const first = await deliverWebhooks({ timeoutMs: 300, budgetMs: 5_000 });
      expect(first.tasks['deliver-webhook']).toMatchObject({ claimed: 6, deferred: 5, retried: 1 });
      expect(await attempts()).toBe(1); // the probe, timed out
      // The deferred ones spent no attempt and wait for the probe's interval (10 s).
      const waiting = await db.sql`select j.attempts, extract(epoch from j.run_at - now()) as wait
        from private.webhook_deliveries d join private.jobs j on j.job_key = 'delivery:' || d.id
        where d.endpoint_id = ${reg.body.id} and d.attempts = 0`;
      expect(waiting).toHaveLength(5);
      for (const w of waiting) {
        expect(w.attempts).toBe(0);
        expect(Number(w.wait)).toBeGreaterThan(5);
        expect(Number(w.wait)).toBeLessThanOrEqual(11);
      }
      // Claimed again within the interval (the backoffs over): all deferred, none sent.
      await due();
      const again = await deliverWebhooks({ timeoutMs: 300, budgetMs: 5_000 });
      expect(again.tasks['deliver-webhook']).toMatchObject({ claimed: 6, deferred: 6 });
      expect(await attempts()).toBe(1);

      // The interval over and the receiver back: one probe gets through and resets the
      // endpoint; the others, deferred meanwhile, are woken by its success and go out
      // without waiting for their deferral (20261206152000: no `due()` from here on).
      rx.behaviour.hangNext = 0;
      await db.sql`update private.webhook_endpoint_breakers set probe_after = now() where endpoint_id = ${reg.body.id}`;
      await due();
      const probe = (await deliverWebhooks({ timeoutMs: 10_000, budgetMs: 15_000 })).tasks['deliver-webhook'];
      expect(probe.retried).toBe(0);
      expect(probe.completed).toBeGreaterThanOrEqual(1);
      const [e] = await db.sql`select consecutive_failures, failing_since from public.webhook_endpoints where id = ${reg.body.id}`;
      expect(e).toEqual({ consecutive_failures: 0, failing_since: null });
      expect(await db.sql`select 1 from private.webhook_endpoint_breakers where endpoint_id = ${reg.body.id}`).toHaveLength(0);
      const sent = async () => (await db.sql`select count(*)::int as n from private.webhook_deliveries
        where endpoint_id = ${reg.body.id} and status = 'delivered'`)[0].n;
      // Runs, spaced, for up to one interval and a half: on a loaded machine a woken job
      // may not be due at the first, and a deferral the reset found held at that instant
      // (20261206152000) waits out its interval — 20 s here, the breaker's second (the
      // first probe failed: six failures in a row). The wake itself, step by step, is the
      // test 'a probe that gets through wakes the deliveries…' below. A receiver slowed by
      // the load is given the time to answer (a timeout would be an attempt more).
      const until = Date.now() + 35_000;
      while (Date.now() < until && await sent() < 6) {
        await deliverWebhooks({ timeoutMs: 10_000, budgetMs: 15_000 });
        if (await sent() < 6) await new Promise((r) => setTimeout(r, 500));
      }
      const delivered = await db.sql`select status from private.webhook_deliveries where endpoint_id = ${reg.body.id}`;
      // What held a delivery back, should one be left (its job and the breaker's record of it).
      const held = await db.sql`select d.id, d.status, j.run_at - now() as due_in, j.locked_by, j.attempts, w.woken_at
        from private.webhook_deliveries d left join private.jobs j on j.job_key = 'delivery:' || d.id
        left join private.webhook_breaker_deferrals w on w.job_id = j.id
        where d.endpoint_id = ${reg.body.id} and d.status <> 'delivered'`;
      expect(delivered.map((d) => d.status), JSON.stringify(held)).toEqual(Array(6).fill('delivered'));
      expect(rx.received.filter((r) => r.verified && r.type === 'ticket.created')).toHaveLength(6);
      expect(await attempts()).toBe(7);
    } finally {
      await rx.close();
    }
  }, 90_000);

  it('one probe per interval however many deliveries ask the breaker at once', async () => {
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, consecutive_failures, failing_since)
      values (${tenants.acme.id}, 'https://hooks.example.com/breaker', 'v1:x', 7, now()) returning id`;
    try {
      const answers = await Promise.all(
        Array.from({ length: 30 }, () => db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id}) as wait`),
      );
      const waits = answers.map(([a]) => a.wait);
      expect(waits.filter((w) => w === null)).toHaveLength(1);
      // Failing seven times in a row: the third interval, 40 s.
      for (const w of waits.filter((w) => w !== null)) expect(Number(w)).toBeGreaterThanOrEqual(39);
      // Below five failures in a row the breaker stays shut: everyone sends.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 4 where id = ${endpoint.id}`;
      const healthy = await Promise.all(
        Array.from({ length: 5 }, () => db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id}) as wait`),
      );
      expect(healthy.map(([a]) => a.wait)).toEqual(Array(5).fill(null));
      // Recovered inside an interval (a delivery got through: failures back to 0), then
      // failing again: the breaker starts afresh, with a probe at once rather than the
      // rest of the interval left from before.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 7 where id = ${endpoint.id}`;
      expect((await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id}) as wait`)[0].wait).not.toBeNull();
      await db.sql`update public.webhook_endpoints set consecutive_failures = 0, failing_since = null where id = ${endpoint.id}`;
      await db.sql`update public.webhook_endpoints set consecutive_failures = 5, failing_since = now() where id = ${endpoint.id}`;
      expect((await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id}) as wait`)[0].wait).toBeNull();
      // A delivery asking while a success is being recorded waits for it: it writes no
      // breaker behind the reset's back (one would hold up the next run of failures).
      await db.sql`delete from private.webhook_endpoint_breakers where endpoint_id = ${endpoint.id}`;
      await db.sql`update public.webhook_endpoints set consecutive_failures = 7 where id = ${endpoint.id}`;
      let asked: Promise<unknown> | undefined;
      await db.sql.begin(async (tx) => {
        await tx`update public.webhook_endpoints set consecutive_failures = 0 where id = ${endpoint.id}`;
        asked = db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id}) as wait`;
        asked.then(() => {}, () => {});
        await new Promise((r) => setTimeout(r, 300)); // the gate reaches the endpoint's row
      });
      expect(((await asked) as { wait: unknown }[])[0].wait).toBeNull();
      expect(await db.sql`select 1 from private.webhook_endpoint_breakers where endpoint_id = ${endpoint.id}`).toHaveLength(0);
      // Likewise when an admin enables it again (the PATCH names only `enabled`; the
      // failures are zeroed by a BEFORE trigger): its breaker goes too.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 7, enabled = false where id = ${endpoint.id}`;
      expect((await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id}) as wait`)[0].wait).toBeNull(); // the probe
      expect((await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id}) as wait`)[0].wait).not.toBeNull();
      const back = await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${endpoint.id}`, { token: adminToken, body: { enabled: true } });
      expect(back.status, JSON.stringify(back.body)).toBe(200);
      expect(await db.sql`select 1 from private.webhook_endpoint_breakers where endpoint_id = ${endpoint.id}`).toHaveLength(0);
    } finally {
      await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
    }
  });

  it('a probe that gets through wakes the deliveries the breaker deferred; a job waiting out its own time keeps it', async () => {
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, consecutive_failures, failing_since)
      values (${tenants.acme.id}, 'https://hooks.example.com/wake', 'v1:x', 6, now()) returning id`;
    try {
      // Three jobs claimed by a worker: the breaker lets the first through as its probe and
      // defers the other two, which the runner then puts back for the interval (defer_job).
      const jobs = await db.sql`select id from private.add_job('wake-probe') union all select id from private.add_job('wake-probe')
        union all select id from private.add_job('wake-probe')`;
      const ids = jobs.map((j) => j.id as string);
      await db.sql`update private.jobs set locked_by = 'w', locked_until = now() + interval '1 minute' where id in ${db.sql(ids)}`;
      const waits = [];
      for (const id of ids) {
        const [{ wait }] = await db.sql`select private.webhook_endpoint_gate_job(${tenants.acme.id}, ${endpoint.id}, ${id}) as wait`;
        waits.push(wait);
        if (wait !== null) await db.sql`select private.defer_job('w', ${id}, ${Math.ceil(Number(wait))})`;
      }
      expect(waits[0]).toBeNull();
      expect(waits.slice(1).every((w) => Number(w) >= 10)).toBe(true); // the interval (20 s) less what passed
      // A job of the endpoint waiting out a receiver's Retry-After (not the breaker's doing).
      const [other] = await db.sql`select id from private.add_job('wake-probe', '{}', null, now() + interval '2 minutes')`;
      const dueNow = async () =>
        (await db.sql`select id from private.jobs where task = 'wake-probe' and run_at <= now() order by id`).map((j) => j.id);
      expect(await dueNow()).toEqual([ids[0]]);
      // The probe gets through (as private.record_webhook_attempt records it).
      await db.sql`update public.webhook_endpoints set consecutive_failures = 0, failing_since = null where id = ${endpoint.id}`;
      expect(await dueNow()).toEqual(ids);
      expect((await db.sql`select run_at > now() as later from private.jobs where id = ${other.id}`)[0].later).toBe(true);
      expect(await db.sql`select 1 from private.webhook_breaker_deferrals where endpoint_id = ${endpoint.id}`).toHaveLength(0);

      // Failing again; a job the breaker defers is still in the worker's hand (defer_job
      // not yet run) when a probe gets through: its deferral then puts it back due at once.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 6, failing_since = now() where id = ${endpoint.id}`;
      const [late] = await db.sql`select id from private.add_job('wake-probe')`;
      await db.sql`update private.jobs set locked_by = 'w', locked_until = now() + interval '1 minute' where id = ${late.id}`;
      await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id})`; // another job's probe
      const [{ wait }] = await db.sql`select private.webhook_endpoint_gate_job(${tenants.acme.id}, ${endpoint.id}, ${late.id}) as wait`;
      expect(wait).not.toBeNull();
      await db.sql`update public.webhook_endpoints set consecutive_failures = 0, failing_since = null where id = ${endpoint.id}`;
      expect((await db.sql`select private.defer_job('w', ${late.id}, ${Math.ceil(Number(wait))}) as ok`)[0].ok).toBe(true);
      expect((await db.sql`select run_at <= now() as due, locked_by from private.jobs where id = ${late.id}`)[0]).toEqual({ due: true, locked_by: null });
      expect(await db.sql`select 1 from private.webhook_breaker_deferrals where endpoint_id = ${endpoint.id}`).toHaveLength(0);
      // A job once deferred, later sent as the probe and answered with a Retry-After: a
      // later reset leaves that wait alone (the breaker no longer holds it).
      await db.sql`update public.webhook_endpoints set consecutive_failures = 6, failing_since = now() where id = ${endpoint.id}`;
      await db.sql`update private.jobs set locked_by = 'w', locked_until = now() + interval '1 minute' where id = ${late.id}`;
      await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id})`; // another's probe
      await db.sql`select private.webhook_endpoint_gate_job(${tenants.acme.id}, ${endpoint.id}, ${late.id})`; // deferred
      await db.sql`select private.defer_job('w', ${late.id}, 60)`;
      await db.sql`update private.webhook_endpoint_breakers set probe_after = now() where endpoint_id = ${endpoint.id}`;
      await db.sql`update private.jobs set locked_by = 'w', locked_until = now() + interval '1 minute' where id = ${late.id}`;
      expect((await db.sql`select private.webhook_endpoint_gate_job(${tenants.acme.id}, ${endpoint.id}, ${late.id}) as wait`)[0].wait).toBeNull();
      await db.sql`update private.jobs set locked_by = null, locked_until = null, run_at = now() + interval '1 hour' where id = ${late.id}`;
      await db.sql`update public.webhook_endpoints set consecutive_failures = 0, failing_since = null where id = ${endpoint.id}`;
      expect((await db.sql`select run_at > now() + interval '50 minutes' as later from private.jobs where id = ${late.id}`)[0].later).toBe(true);
      expect(await db.sql`select 1 from private.webhook_breaker_deferrals where endpoint_id = ${endpoint.id}`).toHaveLength(0);

      // Without a reset, a deferral waits as long as it was asked to.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 6, failing_since = now() where id = ${endpoint.id}`;
      await db.sql`update private.jobs set locked_by = 'w', locked_until = now() + interval '1 minute' where id = ${late.id}`;
      await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id})`;
      await db.sql`select private.webhook_endpoint_gate_job(${tenants.acme.id}, ${endpoint.id}, ${late.id})`;
      await db.sql`select private.defer_job('w', ${late.id}, 60)`;
      expect((await db.sql`select run_at > now() + interval '50 seconds' as later from private.jobs where id = ${late.id}`)[0].later).toBe(true);
    } finally {
      await db.sql`delete from private.jobs where task = 'wake-probe'`;
      await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
    }
  });

  it('a probe getting through while a deferred job is being put back wakes it: defer_job waits for the reset', async () => {
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, consecutive_failures, failing_since)
      values (${tenants.acme.id}, 'https://hooks.example.com/wake-race', 'v1:x', 6, now()) returning id`;
    const holder = await db.sql.reserve();
    try {
      const [job] = await db.sql`select id from private.add_job('wake-race')`;
      await db.sql`update private.jobs set locked_by = 'w', locked_until = now() + interval '1 minute' where id = ${job.id}`;
      await db.sql`select private.webhook_endpoint_gate(${tenants.acme.id}, ${endpoint.id})`; // another job's probe
      const [{ wait }] = await db.sql`select private.webhook_endpoint_gate_job(${tenants.acme.id}, ${endpoint.id}, ${job.id}) as wait`;
      expect(wait).not.toBeNull();
      // The worker puts the deferred job back while its row is held for a moment (a lease
      // renewal of the worker's batch holds it so)...
      await holder`begin`;
      await holder`select 1 from private.jobs where id = ${job.id} for no key update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const deferred = db.sql`select private.defer_job('w', ${job.id}, ${Math.ceil(Number(wait))}) as ok`.execute();
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      // ...when the probe gets through (as private.record_webhook_attempt records it). The
      // reset either runs now or waits for defer_job: whichever it does, the job is woken.
      const reset = db.sql`update public.webhook_endpoints set consecutive_failures = 0, failing_since = null where id = ${endpoint.id}`.execute();
      for (let i = 0; i < 200 && !(await settled(reset)); i++) {
        // The reset waits, and not for the holder: for defer_job (which waits for the holder).
        const [{ n }] = await db.sql`select count(*)::int as n from pg_catalog.pg_stat_activity a
          where a.datname = pg_catalog.current_database() and a.wait_event_type = 'Lock'
            and not (${pid}::int = any (pg_catalog.pg_blocking_pids(a.pid)))`;
        if (n >= 1) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      await holder`commit`;
      expect((await deferred)[0].ok).toBe(true);
      await reset;
      expect((await db.sql`select run_at <= now() as due, locked_by from private.jobs where id = ${job.id}`)[0]).toEqual({ due: true, locked_by: null });
      expect(await db.sql`select 1 from private.webhook_breaker_deferrals where endpoint_id = ${endpoint.id}`).toHaveLength(0);
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
      await db.sql`delete from private.jobs where task = 'wake-race'`;
      await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
    }
  });

  it('a delivery out of retries while its endpoint fails is held, not dropped: the endpoint is disabled and re-enabling sends it', async () => {
    const { rx, reg } = await receiverFor(['membership.updated']);
    try {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await db.sql`update public.memberships set role = 'user' where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeUser.id}`;
      // Failing for 15 hours, not yet a day; this delivery's next attempt is its last.
      await db.sql`update public.webhook_endpoints set consecutive_failures = 40, failing_since = now() - interval '15 hours' where id = ${reg.body.id}`;
      await db.sql`update private.jobs j set attempts = j.max_attempts - 1 from private.webhook_deliveries d
        where j.job_key = 'delivery:' || d.id and d.endpoint_id = ${reg.body.id}`;
      rx.behaviour.failNext = 1;
      const run = await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
      expect(run.claimed).toBeGreaterThanOrEqual(1);
      const [d] = await db.sql`select status, attempts from private.webhook_deliveries where endpoint_id = ${reg.body.id}`;
      expect(d).toEqual({ status: 'pending', attempts: 1 });
      const [e] = await db.sql`select enabled, disabled_reason from public.webhook_endpoints where id = ${reg.body.id}`;
      expect(e.enabled).toBe(false);
      expect(e.disabled_reason).toMatch(/^disabled after 41 failed deliveries/);
      // Re-enabled: the held delivery goes out.
      expect((await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, { token: adminToken, body: { enabled: true } })).status).toBe(200);
      await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
      const [sent] = await db.sql`select status from private.webhook_deliveries where endpoint_id = ${reg.body.id}`;
      expect(sent.status).toBe('delivered');
      expect(rx.received.filter((r) => r.verified)).toHaveLength(1);
    } finally {
      await rx.close();
    }
  });

  it("a suspended tenant's admins can still turn an endpoint off, rotate its secret or delete it, and change nothing else", async () => {
    const { rx, reg } = await receiverFor(['membership.updated']);
    const acme = tenants.acme.id;
    const url = `/tenants/${acme}/webhooks/${reg.body.id}`;
    const endpoint = async () =>
      (await db.sql`select url, description, event_types, enabled from public.webhook_endpoints where id = ${reg.body.id}`)[0];
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    try {
      const before = await endpoint();
      for (const body of [{ url: `${rx.url}/elsewhere` }, { event_types: ['ticket.created'] }, { description: 'renamed' }]) {
        const r = await call(tenantsApp, 'PATCH', url, { token: adminToken, body });
        expect([r.status, errorCode(r)], JSON.stringify(body)).toEqual([403, 'tenant_suspended']);
      }
      const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
        tx`update public.webhook_endpoints set url = 'https://hooks.example.com/direct' where id = ${reg.body.id} returning id`);
      expect(direct).toMatchObject({ ok: false, error: { code: 'PT403' } });
      expect(await endpoint()).toEqual(before);
      // Agents are no admins, suspended or not.
      const agent = await call(tenantsApp, 'PATCH', url, { token: await supabaseToken(users.acmeAgent, { tenantId: acme }), body: { enabled: false } });
      expect(agent.status).toBe(403);
      // What stops deliveries or a leaked secret goes through.
      const rotated = await call(tenantsApp, 'POST', `${url}/rotate-secret`, { token: adminToken, body: { previous_secret_hours: 0 } });
      expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
      expect(rotated.body.secret).not.toBe(reg.body.secret);
      const off = await call(tenantsApp, 'PATCH', url, { token: adminToken, body: { enabled: false } });
      expect([off.status, off.body.enabled], JSON.stringify(off.body)).toEqual([200, false]);
      const on = await call(tenantsApp, 'PATCH', url, { token: adminToken, body: { enabled: true } });
      expect([on.status, errorCode(on)]).toEqual([403, 'tenant_suspended']);
      expect((await endpoint()).enabled).toBe(false);
      const gone = await call(tenantsApp, 'DELETE', url, { token: adminToken });
      expect(gone.status, JSON.stringify(gone.body)).toBe(204);
      expect(await endpoint()).toBeUndefined();
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
      await rx.close();
    }
  });

  it('a delivery whose endpoint is enabled again while its last attempt is being sent is sent by the new job, not failed', async () => {
    const { rx, reg } = await receiverFor(['membership.updated']);
    try {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await db.sql`update public.memberships set role = 'agent' where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeUser.id}`;
      const [{ id: deliveryId }] = await db.sql`select id from private.webhook_deliveries where endpoint_id = ${reg.body.id}`;
      await db.sql`update private.jobs set attempts = max_attempts - 1 where job_key = ${`delivery:${deliveryId}`}`;
      // The last attempt hangs; meanwhile an admin turns the endpoint off and on again.
      rx.behaviour.hangNext = 1;
      const run = deliverWebhooks({ timeoutMs: 3_000, budgetMs: 6_000 });
      for (let i = 0; i < 100; i++) {
        const [j] = await db.sql`select locked_by from private.jobs where job_key = ${`delivery:${deliveryId}`}`;
        if (j?.locked_by) break;
        await new Promise((r) => setTimeout(r, 20));
      }
      const url = `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`;
      expect((await call(tenantsApp, 'PATCH', url, { token: adminToken, body: { enabled: false } })).status).toBe(200);
      expect((await call(tenantsApp, 'PATCH', url, { token: adminToken, body: { enabled: true } })).status).toBe(200);
      await run;
      // The superseded job's timeout was no last word: the new job sends it (in the same
      // run, or a later one).
      for (let i = 0; i < 5 && rx.received.length === 0; i++) await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
      const [sent] = await db.sql`select status, attempts from private.webhook_deliveries where id = ${deliveryId}`;
      expect(sent).toEqual({ status: 'delivered', attempts: 2 });
      const tried = await db.sql`select status_code, error from private.webhook_attempts where delivery_id = ${deliveryId} order by id`;
      expect(tried.map((t) => t.error ?? t.status_code)).toEqual(['timed out', 204]);
      expect(rx.received.filter((r) => r.verified)).toHaveLength(1);
    } finally {
      await rx.close();
    }
  });

  it("re-enabling keeps one person's or ticket's events in order: the held delivery goes before those queued behind it", async () => {
    const { rx, reg } = await receiverFor(['membership.updated']);
    try {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      for (const role of ['agent', 'user']) {
        await db.sql`update public.memberships set role = ${role} where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeUser.id}`;
      }
      const deliveries = await db.sql`select d.id, e.message_id, d.ordering_key from private.webhook_deliveries d
        join private.webhook_events e on e.id = d.event_id where d.endpoint_id = ${reg.body.id} order by d.id`;
      expect(deliveries).toHaveLength(2);
      expect(deliveries[0].ordering_key).toBe(deliveries[1].ordering_key); // one queue
      // The first ran out of retries while the endpoint failed: held (its job ended) and the
      // endpoint disabled, the second still queued behind it.
      await db.sql`delete from private.jobs where job_key = ${`delivery:${deliveries[0].id}`}`;
      await db.sql`update public.webhook_endpoints set enabled = false, disabled_reason = 'failing' where id = ${reg.body.id}`;
      expect((await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${reg.body.id}`, { token: adminToken, body: { enabled: true } })).status).toBe(200);
      const queued = await db.sql`select d.id from private.jobs j join private.webhook_deliveries d on j.job_key = 'delivery:' || d.id
        where d.endpoint_id = ${reg.body.id} order by j.id`;
      expect(queued.map((q) => q.id)).toEqual(deliveries.map((d) => d.id));
      // One run may end before the second's turn (a slow machine): runs until both are sent.
      for (let run = 0; run < 5 && rx.received.length < deliveries.length; run++) await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
      expect(rx.received.filter((r) => r.verified).map((r) => r.id)).toEqual(deliveries.map((d) => d.message_id));
    } finally {
      await rx.close();
    }
  });

  it("a receiver's 429 is no failure of the endpoint, and its Retry-After is waited out; a 503's too", async () => {
    const { rx, reg } = await receiverFor(['membership.updated']);
    try {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await db.sql`update public.memberships set role = 'agent' where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeUser.id}`;
      const delivery = async () => {
        const [d] = await db.sql`select d.status, d.attempts, d.last_status_code,
            extract(epoch from j.run_at - now())::int as wait
          from private.webhook_deliveries d join private.jobs j on j.job_key = 'delivery:' || d.id
          where d.endpoint_id = ${reg.body.id}`;
        const [e] = await db.sql`select consecutive_failures, failing_since from public.webhook_endpoints where id = ${reg.body.id}`;
        return { ...d, ...e };
      };
      rx.behaviour.rateLimitNext = 1;
      rx.behaviour.retryAfter = '120';
      await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
      const limited = await delivery();
      expect(limited).toMatchObject({ status: 'pending', attempts: 1, last_status_code: 429, consecutive_failures: 0, failing_since: null });
      expect(limited.wait).toBeGreaterThanOrEqual(115); // not the 2 s of the first backoff
      // Not claimed before then.
      expect((await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 2_000 })).claimed).toBe(0);
      // A 503 with a date to come back at: a failure of the endpoint, retried after that date.
      rx.behaviour.failNext = 1;
      rx.behaviour.failRetryAfter = new Date(Date.now() + 600_000).toUTCString();
      // The two minutes pass (the job's, and the endpoint's hold).
      await db.sql`update private.jobs set run_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await db.sql`delete from private.webhook_endpoint_holds where endpoint_id = ${reg.body.id}`;
      await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
      const down = await delivery();
      expect(down).toMatchObject({ status: 'pending', attempts: 2, last_status_code: 503, consecutive_failures: 1 });
      expect(down.failing_since).not.toBeNull();
      expect(down.wait).toBeGreaterThanOrEqual(580);
      // Delivered: the failing period ends.
      await db.sql`update private.jobs set run_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await db.sql`delete from private.webhook_endpoint_holds where endpoint_id = ${reg.body.id}`;
      await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
      const [done] = await db.sql`select d.status, e.consecutive_failures, e.failing_since
        from private.webhook_deliveries d join public.webhook_endpoints e on e.id = d.endpoint_id where e.id = ${reg.body.id}`;
      expect(done).toEqual({ status: 'delivered', consecutive_failures: 0, failing_since: null });
      expect(rx.received.filter((r) => r.verified)).toHaveLength(1);

      // A Retry-After past any reason (seconds beyond an int, a date in the year 9999) is a
      // day: the run records it and goes on, as for any other receiver.
      for (const wait of ['1e12', 'Fri, 31 Dec 9999 23:59:59 GMT']) {
        await db.sql`update public.memberships set role = ${wait === '1e12' ? 'user' : 'agent'} where tenant_id = ${tenants.acme.id} and user_id = ${users.acmeUser.id}`;
        rx.behaviour.rateLimitNext = 1;
        rx.behaviour.retryAfter = wait;
        const run = await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
        expect(run.claimed, wait).toBeGreaterThan(0);
        const [held] = await db.sql`select extract(epoch from j.run_at - now())::int as wait
          from private.webhook_deliveries d join private.jobs j on j.job_key = 'delivery:' || d.id
          where d.endpoint_id = ${reg.body.id} and d.status = 'pending'`;
        expect(held.wait, wait).toBeGreaterThan(86_000);
        expect(held.wait, wait).toBeLessThanOrEqual(86_400);
        await db.sql`update private.webhook_deliveries set status = 'failed' where endpoint_id = ${reg.body.id} and status = 'pending'`;
        await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
        await db.sql`delete from private.webhook_endpoint_holds where endpoint_id = ${reg.body.id}`;
      }
    } finally {
      await rx.close();
    }
  });

  it("a receiver's Retry-After holds all of its endpoint's deliveries: one request, the others deferred untried", async () => {
    const { rx, reg } = await receiverFor(['ticket.created']);
    try {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      rx.behaviour.rateLimitNext = 100;
      rx.behaviour.retryAfter = '120';
      // Three tickets: three queues, all due at once.
      for (const title of ['Held one', 'Held two', 'Held three']) {
        await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${tenants.acme.id}, ${title}, ${users.acmeUser.id})`;
      }
      // Only this endpoint's deliveries run (earlier tests' endpoints take these events too).
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null
        and (payload ->> 'delivery_id')::bigint not in (select id from private.webhook_deliveries where endpoint_id = ${reg.body.id})`;
      // One slot, so the deliveries are sent one after another (in parallel, those already
      // on their way when the first answer comes go out too).
      const run = await runJobs({ tasks: ['deliver-webhook'], batch: 1, deps: { webhookTimeoutMs: 2_000 }, budgetMs: 5_000 });
      expect(100 - rx.behaviour.rateLimitNext).toBe(1); // one request reached the receiver
      expect(run.tasks['deliver-webhook']).toMatchObject({ claimed: 3, retried: 1, deferred: 2 });
      const deliveries = await db.sql`select d.attempts, extract(epoch from j.run_at - now())::int as wait
        from private.webhook_deliveries d join private.jobs j on j.job_key = 'delivery:' || d.id
        where d.endpoint_id = ${reg.body.id} order by d.id`;
      // Only the one asked spent an attempt; all wait the two minutes.
      expect(deliveries.map((d) => d.attempts).sort()).toEqual([0, 0, 1]);
      for (const d of deliveries) expect(d.wait).toBeGreaterThanOrEqual(110);
      const [e] = await db.sql`select consecutive_failures from public.webhook_endpoints where id = ${reg.body.id}`;
      expect(e.consecutive_failures).toBe(0);
      // Pointed elsewhere, or enabled again, by an admin: the old receiver's word ends.
      const holds = async () => (await db.sql`select 1 from private.webhook_endpoint_holds where endpoint_id = ${reg.body.id}`).length;
      expect(await holds()).toBe(1);
      await db.sql`update public.webhook_endpoints set url = ${rx.url + '?moved=1'} where id = ${reg.body.id}`;
      expect(await holds()).toBe(0);
      await db.sql`select private.webhook_endpoint_hold(${tenants.acme.id}, ${reg.body.id}, 120)`;
      await db.sql`update public.webhook_endpoints set enabled = false where id = ${reg.body.id}`;
      expect(await holds()).toBe(1);
      await db.sql`update public.webhook_endpoints set enabled = true where id = ${reg.body.id}`;
      expect(await holds()).toBe(0);
    } finally {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await rx.close();
    }
  });

  it('one update that reopens a ticket and assigns it is told as both events, so a receiver of assignments hears it', async () => {
    // A receiver of assignments only (the outbox writes; nothing is delivered here).
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types)
      values (${tenants.acme.id}, 'https://hooks.example.com/assignments', 'v1:x', '{ticket.assigned}') returning id`;
    try {
      const [t] = await db.sql`insert into public.tickets (tenant_id, title, created_by, status)
        values (${tenants.acme.id}, 'Reopened and taken', ${users.acmeUser.id}, 'open') returning id`;
      await db.sql`update public.tickets set status = 'resolved' where id = ${t.id}`;
      const [{ mark }] = await db.sql`select coalesce(max(id), 0) as mark from private.webhook_events`;
      // PostgREST's one PATCH (the API makes these two updates).
      await db.sql`update public.tickets set status = 'open', assigned_to = ${users.acmeAgent.id} where id = ${t.id}`;
      const told = await db.sql`select type from private.webhook_events
        where id > ${mark} and payload -> 'data' ->> 'id' = ${t.id} order by id`;
      expect(told.map((e) => e.type)).toContain('ticket.assigned');
      const [d] = await db.sql`select count(*)::int as n from private.webhook_deliveries d join private.webhook_events e on e.id = d.event_id
        where d.endpoint_id = ${endpoint.id} and e.payload -> 'data' ->> 'id' = ${t.id}`;
      expect(d.n).toBe(1);
    } finally {
      await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
    }
  });

  it("an endpoint's secret is rotated with both signing for a while (or at once, for a leak); only its admins rotate it", async () => {
    const seen: { body: string; headers: Record<string, string> }[] = [];
    const server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      seen.push({ body: Buffer.concat(chunks).toString('utf8'), headers: req.headers as Record<string, string> });
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/rotating`;
    const verifies = (secret: string, i: number) => {
      try {
        new StandardWebhook(secret).verify(seen[i].body, seen[i].headers);
        return true;
      } catch {
        return false;
      }
    };
    const acme = tenants.acme.id;
    const nudge = async (role: string) => {
      await db.sql`update private.jobs set dead_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await db.sql`update public.memberships set role = ${role} where tenant_id = ${acme} and user_id = ${users.acmeUser.id}`;
      await deliverWebhooks({ timeoutMs: 2_000, budgetMs: 5_000 });
    };
    try {
      const reg = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, { token: adminToken, body: { url, event_types: ['membership.updated'] } });
      expect(reg.status, JSON.stringify(reg.body)).toBe(201);
      const path = `/tenants/${acme}/webhooks/${reg.body.id}/rotate-secret`;
      const first = reg.body.secret as string;

      // Only its tenant's admins: an agent, another tenant's admin, bad input change nothing.
      const agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
      const sealed = async () => (await db.sql`select secret_encrypted from public.webhook_endpoints where id = ${reg.body.id}`)[0].secret_encrypted;
      const before = await sealed();
      expect((await call(tenantsApp, 'POST', path, { token: agent })).status).toBe(403);
      // (Another tenant's endpoints: the generated attack suites, tests/rls/attack-routes.test.ts.)
      expect((await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks/${randomUUID()}/rotate-secret`, { token: adminToken })).status)
        .toBe(404);
      const bad = await call(tenantsApp, 'POST', path, { token: adminToken, body: { previous_secret_hours: 500 } });
      expect([bad.status, errorCode(bad), bad.body.error.details.fields[0].field]).toEqual([422, 'validation_failed', 'previous_secret_hours']);
      expect(await sealed()).toBe(before);

      // Rotated with the default overlap: both secrets verify what is sent meanwhile.
      const rotated = await call(tenantsApp, 'POST', path, { token: adminToken });
      expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
      const second = rotated.body.secret as string;
      expect(second).toMatch(/^whsec_/);
      expect(second).not.toBe(first);
      const overlap = new Date(rotated.body.previous_secret_expires_at).getTime() - new Date(rotated.body.secret_rotated_at).getTime();
      expect(overlap).toBe(24 * 3600_000);
      await nudge('agent');
      expect(seen).toHaveLength(1);
      expect(seen[0].headers['webhook-signature'].split(' ')).toHaveLength(2);
      expect([verifies(first, 0), verifies(second, 0)]).toEqual([true, true]);

      // A leaked secret: rotated with no overlap, the old one verifies nothing more.
      const leaked = await call(tenantsApp, 'POST', path, { token: adminToken, body: { previous_secret_hours: 0 } });
      expect([leaked.status, leaked.body.previous_secret_expires_at]).toEqual([200, null]);
      await nudge('user');
      expect(seen).toHaveLength(2);
      expect([verifies(second, 1), verifies(leaked.body.secret, 1)]).toEqual([false, true]);
      // On the direct path an admin ends an overlap (null) or shortens it, never lengthens it.
      const rotatedAgain = await call(tenantsApp, 'POST', path, { token: adminToken, body: { previous_secret_hours: 2 } });
      const given = new Date(rotatedAgain.body.previous_secret_expires_at).getTime();
      const asAdmin = (f: (tx: any) => Promise<unknown>) => probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), f);
      const longer = await asAdmin((tx) => tx`update public.webhook_endpoints set previous_secret_expires_at = '9999-01-01'
        where id = ${reg.body.id} returning previous_secret_expires_at`);
      expect(longer.ok && new Date((longer.value as any)[0].previous_secret_expires_at).getTime()).toBe(given);
      const ended = await asAdmin((tx) => tx`update public.webhook_endpoints set previous_secret_expires_at = null
        where id = ${reg.body.id} returning previous_secret_expires_at`);
      expect(ended).toMatchObject({ ok: true, value: [{ previous_secret_expires_at: null }] });
      // Nothing of a secret in the audit trail.
      const trail = await db.sql`select * from public.audit_logs where table_name = 'webhook_endpoints' and record_key ->> 'id' = ${reg.body.id}`;
      expect(trail.length).toBeGreaterThanOrEqual(4); // the registration and the rotations
      expect(JSON.stringify(trail)).toMatch(/secret_rotated_at/);
      // (changed_fields names a sealed column that changed; its values are left out.)
      const values = JSON.stringify(trail.map((r) => [r.old_data, r.new_data]));
      expect(values).not.toMatch(/_encrypted|v2:/);
      await call(tenantsApp, 'DELETE', `/tenants/${acme}/webhooks/${reg.body.id}`, { token: adminToken });
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('only admins manage endpoints; bad targets are 422', async () => {
    const agent = await supabaseToken(users.acmeAgent, { tenantId: tenants.acme.id });
    const count = async () => (await db.sql`select count(*)::int as n from public.webhook_endpoints`)[0].n;
    const endpointsBefore = await count();
    const byAgent = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks`, { token: agent, body: { url: 'https://hooks.example.com/x' } });
    expect([byAgent.status, errorCode(byAgent)]).toEqual([403, 'forbidden']);
    delete process.env.PLATFORM_LOCAL_STACK; // a hosted project: loopback is no receiver
    try {
      const r = await call(tenantsApp, 'POST', `/tenants/${tenants.acme.id}/webhooks`, { token: adminToken, body: { url: 'http://127.0.0.1:9/x' } });
      expect([r.status, r.body.error.details.fields[0].field]).toEqual([422, 'url']);
      expect(await count()).toBe(endpointsBefore);
      // Moving an endpoint to a private address is refused the same way, and keeps it.
      const endpoints = async () =>
        await db.sql`select id, url, enabled from public.webhook_endpoints where tenant_id = ${tenants.acme.id} order by id`;
      const before = await endpoints();
      expect(before.length).toBeGreaterThan(0);
      // https, so it is the address that is refused, not the scheme.
      for (const url of ['https://169.254.169.254/latest/meta-data', 'https://10.0.0.7/hook', 'https://[::1]:8080/x', 'https://[::ffff:169.254.169.254]/x']) {
        const moved = await call(tenantsApp, 'PATCH', `/tenants/${tenants.acme.id}/webhooks/${before[0].id}`, { token: adminToken, body: { url } });
        expect([url, moved.status, moved.body.error.details.fields[0].field]).toEqual([url, 422, 'url']);
        expect(moved.body.error.details.fields[0].message, url).toMatch(/private|loopback/);
      }
      expect(await endpoints()).toEqual(before);
    } finally {
      process.env.PLATFORM_LOCAL_STACK = '1';
    }
  });

  it('keeps webhook history for 30 days, pending deliveries whatever their age', async () => {
    await db.sql`insert into private.webhook_inbox (provider, event_id, event_type, received_at) values ('clerk', 'ancient', 'user.created', now() - interval '40 days')`;
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, enabled)
      values (${tenants.globex.id}, 'https://hooks.example.com/old', 'v1:x', false) returning id`;
    const [old] = await db.sql`insert into private.webhook_events (tenant_id, type, ordering_key, payload, created_at)
      values (${tenants.globex.id}, 'ticket.created', 'ticket:x', '{}', now() - interval '40 days') returning id`;
    const [stuck] = await db.sql`insert into private.webhook_events (tenant_id, type, ordering_key, payload, created_at)
      values (${tenants.globex.id}, 'ticket.created', 'ticket:y', '{}', now() - interval '40 days') returning id`;
    await db.sql`insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key, status) values
      (${tenants.globex.id}, ${endpoint.id}, ${old.id}, 'ticket:x', 'delivered'), (${tenants.globex.id}, ${endpoint.id}, ${stuck.id}, 'ticket:y', 'pending')`;
    // Pruning is a recurring job (daily): due now, run by the jobs function.
    await db.sql`update private.job_schedules set next_run_at = now() where name = 'prune'`;
    const pruned = await call(jobsApp, 'POST', '/jobs/run', { token: await apiKey('service_role', TEST_JWT_SECRET) });
    expect(pruned.body.tasks.prune.pruned).toBeGreaterThanOrEqual(2);
    expect(await db.sql`select 1 from private.webhook_inbox where event_id = 'ancient'`).toHaveLength(0);
    expect((await db.sql`select id from private.webhook_events where id in (${old.id}, ${stuck.id})`).map((r) => r.id)).toEqual([stuck.id]);
  });

  it("a failed delivery sent again while the prune runs stays: the prune neither waits for the retry nor deletes it behind it", async () => {
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, enabled)
      values (${tenants.globex.id}, 'https://hooks.example.com/again', 'v1:x', false) returning id`;
    const [event] = await db.sql`insert into private.webhook_events (tenant_id, type, ordering_key, payload, created_at)
      values (${tenants.globex.id}, 'ticket.created', 'ticket:again', '{}', now() - interval '40 days') returning id`;
    const [delivery] = await db.sql`insert into private.webhook_deliveries (tenant_id, endpoint_id, event_id, ordering_key, status)
      values (${tenants.globex.id}, ${endpoint.id}, ${event.id}, 'ticket:again', 'failed') returning id`;
    // The retry's write (private.retry_webhook_delivery: the row locked, back to pending),
    // not committed yet while the prune runs; the prune answers without waiting for it.
    await whileHeld(
      db.sql,
      (tx) => tx`update private.webhook_deliveries set status = 'pending', last_error = null where id = ${delivery.id}`,
      () => db.sql`select private.prune_webhook_history()`.execute(),
      { waits: false },
    );
    expect(await db.sql`select status from private.webhook_deliveries where id = ${delivery.id}`).toEqual([{ status: 'pending' }]);
    expect(await db.sql`select id from private.webhook_events where id = ${event.id}`).toHaveLength(1);
    // Once it is finished again, the next prune takes the delivery and then its event.
    await db.sql`update private.webhook_deliveries set status = 'delivered' where id = ${delivery.id}`;
    await db.sql`select private.prune_webhook_history()`;
    expect(await db.sql`select id from private.webhook_events where id = ${event.id}`).toHaveLength(0);
    await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
  });

  it('prunes a backlog in batches, a transaction each, and hands what one run could not finish to the next', async () => {
    const backlog = (n: number) => db.sql`insert into private.webhook_inbox (provider, event_id, event_type, received_at)
      select 'clerk', 'backlog-' || g, 'user.created', now() - interval '40 days' from generate_series(1, ${n}) g`;
    const left = async () => (await db.sql`select count(*)::int as n from private.webhook_inbox where event_id like 'backlog-%'`)[0].n;
    // More than a batch (5,000 rows a table): one run deletes it all.
    await backlog(5_003);
    await db.sql`select private.add_job('prune')`;
    const all = await runJobs({ tasks: ['prune'], schedule: false });
    expect(all.tasks.prune).toMatchObject({ completed: 1 });
    expect(all.tasks.prune.pruned).toBeGreaterThanOrEqual(5_003);
    expect(await left()).toBe(0);
    // A run out of time after its first batch: the job comes back a second later, its
    // attempt uncounted, and the next run finishes.
    await backlog(5_003);
    const [{ id }] = await db.sql`select id from private.add_job('prune')`;
    const cut = await runJobs({ tasks: ['prune'], schedule: false, deps: { pruneBudgetMs: 0 } });
    expect(cut.tasks.prune).toMatchObject({ deferred: 1, completed: 0 });
    expect(await left()).toBe(3);
    const [job] = await db.sql`select attempts, locked_by, run_at <= now() + interval '2 seconds' as soon from private.jobs where id = ${id}`;
    expect(job).toEqual({ attempts: 0, locked_by: null, soon: true });
    await db.sql`update private.jobs set run_at = now() where id = ${id}`;
    expect((await runJobs({ tasks: ['prune'], schedule: false })).tasks.prune).toMatchObject({ completed: 1 });
    expect(await left()).toBe(0);
  });

  it('the delivery job takes only the service credential', async () => {
    expect((await call(jobsApp, 'POST', '/jobs/run', { token: adminToken })).status).toBe(401);
    const ok = await call(jobsApp, 'POST', '/jobs/run', { token: await apiKey('service_role', TEST_JWT_SECRET) });
    expect(ok.status).toBe(200);
    // A body it cannot read is the caller's mistake, not a run with the defaults.
    const service = await apiKey('service_role', TEST_JWT_SECRET);
    for (const rawBody of ['{"batch": ', new Uint8Array([0x7b, 0x22, 0xe9, 0x22, 0x7d])]) {
      const bad = await call(jobsApp, 'POST', '/jobs/run', { token: service, rawBody });
      expect([bad.status, errorCode(bad)]).toEqual([400, 'invalid_json']);
    }
    expect((await call(jobsApp, 'POST', '/jobs/run', { token: service, rawBody: '{"batch": 1}' })).status).toBe(200);
  });
});

describe('replies back to Chatwoot', () => {
  it("a reply of a tenant deleted since, whose Chatwoot account is removed, fails for good rather than waiting for ever", async () => {
    const [t] = await db.sql`insert into public.tenants (name, slug) values ('Gone Soon', 'gone-soon') returning id`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${users.acmeAgent.id}, 'agent')`;
    await db.sql`insert into public.tenant_services (tenant_id, service, state) values (${t.id}, 'chatwoot', 'active')`;
    const [ticket] = await db.sql`insert into public.tickets (tenant_id, title, chatwoot_conversation_id)
      values (${t.id}, 'Chat #5', '5') returning id`;
    await db.sql`insert into public.ticket_messages (tenant_id, ticket_id, type, content, author_id)
      values (${t.id}, ${ticket.id}, 'message', 'We will call you back', ${users.acmeAgent.id})`;
    const reply = async () => (await db.sql`select status, last_error from private.chatwoot_replies where tenant_id = ${t.id}`)[0];
    expect(await reply()).toMatchObject({ status: 'pending' });
    // Deleted; the grace period over, its account removed.
    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${t.id}`;
    await db.sql`update public.tenant_services set state = 'removed' where tenant_id = ${t.id}`;
    await db.sql`update private.jobs set run_at = now() where task = 'chatwoot-reply' and payload ->> 'tenant_id' = ${t.id}`;
    const report = (await runJobs({ tasks: ['chatwoot-reply'], budgetMs: 5_000 })).tasks['chatwoot-reply'];
    expect(report).toMatchObject({ dead: 1 });
    expect(report?.deferred ?? 0).toBe(0);
    expect(await reply()).toEqual({ status: 'failed', last_error: expect.stringContaining('deleted') });
  });

  it('a staff reply on a Chatwoot ticket is posted to the conversation once; its echo is not a new message', async () => {
    const { ChatwootStandIn } = await import('./partners/chatwoot.ts');
    const { chatwootConnector } = await import('../shared/connectors/chatwoot.ts');
    // The old entry points, on the one queue: provisioning runs, and reply runs reported
    // as { sent, retried, failed }.
    const runProvisioningWorker = (opts: { connectors: Record<string, unknown>; budgetMs: number }) =>
      runJobs({ tasks: ['provision'], deps: { connectors: opts.connectors }, budgetMs: opts.budgetMs });
    const deliverChatwootReplies = async (opts: { chatwootUrl: string }) => {
      const t = (await runJobs({ tasks: ['chatwoot-reply'], deps: { chatwootUrl: opts.chatwootUrl } })).tasks['chatwoot-reply'];
      return { sent: t?.sent ?? 0, retried: t?.retried ?? 0, failed: t?.dead ?? 0 };
    };
    const cw = await ChatwootStandIn.start();
    try {
      // Globex gets a Chatwoot account through the provisioning queue.
      const globex = tenants.globex.id;
      await db.sql`insert into public.tenant_services (tenant_id, service) values (${globex}, 'chatwoot')`;
      for (let i = 0; i < 5; i++) {
        const r = await runProvisioningWorker({ connectors: { chatwoot: chatwootConnector({ url: cw.url, platformToken: cw.token }) }, budgetMs: 5_000 });
        if (!r.claimed) break;
      }
      const [svc] = await db.sql`select state, external_ids from public.tenant_services where tenant_id = ${globex} and service = 'chatwoot'`;
      expect(svc.state).toBe('active');

      const token = await chatwootUrlToken(globex);
      const inbound = (event: unknown, delivery: string) => call(webhooksApp, 'POST', `/webhooks/chatwoot/${globex}?token=${token}`,
        { rawBody: JSON.stringify(event), headers: { 'x-chatwoot-delivery': delivery } });
      await inbound({ event: 'conversation_created', id: 77, meta: { sender: { name: 'Gina' } }, messages: [] }, 'd-77');
      await inbound({ event: 'message_created', id: 5001, content: 'Hello from the widget', message_type: 'incoming', conversation: { display_id: 77 } }, 'd-5001');
      const [ticket] = await db.sql`select id from public.tickets where tenant_id = ${globex} and chatwoot_conversation_id = '77'`;
      await db.sql`update public.tickets set team_id = '20000000-0000-4000-8000-000000000002' where id = ${ticket.id}`;

      const agent = await supabaseToken(users.globexAgent, { tenantId: globex });
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Hi Gina, we are on it' } });
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { type: 'note', content: 'internal only' } });
      const report = await deliverChatwootReplies({ chatwootUrl: cw.url });
      expect(report).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(cw.messages.map((m) => [m.account_id, m.conversation_id, m.content])).toEqual([[svc.external_ids.account_id, '77', 'Hi Gina, we are on it']]);
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 0, failed: 0 });

      // Chatwoot tells us about the message we just posted: recognised, not duplicated.
      const echo = await inbound({ event: 'message_created', id: cw.messages[0].id, content: 'Hi Gina, we are on it', message_type: 'outgoing', conversation: { display_id: 77 } }, 'd-echo');
      expect(echo.body.outcome).toBe('ignored');
      const contents = (await db.sql`select content from public.ticket_messages where ticket_id = ${ticket.id} order by created_at`).map((m) => m.content);
      expect(contents).toEqual(['Hello from the widget', 'Hi Gina, we are on it', 'internal only']);

      // A POST Chatwoot saved but whose answer never arrived: the retry finds the message
      // in the conversation instead of posting it a second time.
      const retryNow = () => db.sql`update private.jobs set run_at = now() where task = 'chatwoot-reply' and dead_at is null and run_at > now()`;
      const posted = (content: string) => cw.messages.filter((m) => m.content === content).length;
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Checking the logs now' } });
      cw.server.faults = { ...cw.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/conversations\/77\/messages$/, dropAfterWork: 1 };
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 1, failed: 0 });
      expect(posted('Checking the logs now')).toBe(1);
      await retryNow();
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(posted('Checking the logs now')).toBe(1);
      const [found] = await db.sql`select status, chatwoot_message_id from private.chatwoot_replies where content = 'Checking the logs now'`;
      expect(found).toEqual({ status: 'sent', chatwoot_message_id: String(cw.messages.at(-1)!.id) });

      // Likewise when the conversation went on meanwhile (a retry may come an hour later):
      // the reply is found pages back, not posted again.
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Escalated to billing' } });
      cw.server.faults = { ...cw.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/conversations\/77\/messages$/, dropAfterWork: 1 };
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 1, failed: 0 });
      const escalated = cw.messages.at(-1)!;
      for (let i = 0; i < 45; i++) cw.contactMessage(svc.external_ids.account_id, '77', `Still waiting (${i})`);
      await retryNow();
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(posted('Escalated to billing')).toBe(1);
      const [paged] = await db.sql`select status, chatwoot_message_id from private.chatwoot_replies where content = 'Escalated to billing'`;
      expect(paged).toEqual({ status: 'sent', chatwoot_message_id: String(escalated.id) });

      // An operator's retry_job (its attempts back to 0) after a POST Chatwoot saved: the
      // reply remembers its POST began, and is looked for, not posted a second time. The
      // lost answer's retry waits half a minute for the message to land.
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Refund issued' } });
      cw.server.faults = { ...cw.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/conversations\/77\/messages$/, dropAfterWork: 1 };
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 1, failed: 0 });
      const [waitingJob] = await db.sql`select id, extract(epoch from run_at - now())::int as wait from private.jobs
        where task = 'chatwoot-reply' and dead_at is null and payload ->> 'reply_id' = (select id::text from private.chatwoot_replies where content = 'Refund issued')`;
      expect(waitingJob.wait).toBeGreaterThanOrEqual(20);
      await db.sql`select private.retry_job(${waitingJob.id})`;
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(posted('Refund issued')).toBe(1);
      // A reply no longer pending (its echo claimed it meanwhile), or gone, is not marked
      // begun: the job posts nothing.
      const [{ id: sentReply }] = await db.sql`select id from private.chatwoot_replies where content = 'Refund issued'`;
      expect((await db.sql`select private.chatwoot_reply_post_begins(${sentReply}) as b, private.chatwoot_reply_post_begins(-1) as gone`)[0])
        .toEqual({ b: null, gone: null });
      // A gateway's 504 after Chatwoot saved the message: looked for after half a minute too.
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Credit note sent' } });
      cw.server.faults = { ...cw.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/conversations\/77\/messages$/, gatewayTimeoutAfterWork: 1 };
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 1, failed: 0 });
      const [gateway] = await db.sql`select extract(epoch from run_at - now())::int as wait from private.jobs
        where task = 'chatwoot-reply' and dead_at is null and payload ->> 'reply_id' = (select id::text from private.chatwoot_replies where content = 'Credit note sent')`;
      expect(gateway.wait).toBeGreaterThanOrEqual(20);
      await retryNow();
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(posted('Credit note sent')).toBe(1);

      // Its echo arriving before the job has read Chatwoot's answer: recognised by the
      // owner's login and the text, the reply marked sent, the job posts nothing more.
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Fixed, please try again' } });
      cw.server.faults = { ...cw.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/conversations\/77\/messages$/, dropAfterWork: 1 };
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 1, failed: 0 });
      const saved = cw.messages.at(-1)!;
      const owner = svc.external_ids.user_id;
      // Current Chatwoot names the conversation by `id` (its display id) where older
      // versions sent `display_id`: both are recognised.
      // Someone else writing the same text in Chatwoot is their message, not our echo.
      const other = await inbound({ event: 'message_created', id: 9001, content: 'Fixed, please try again', message_type: 'outgoing', private: false, sender: { id: owner + 1000, type: 'user' }, conversation: { id: 77 } }, 'd-other');
      expect(other.body.outcome).toBe('applied');
      const early = await inbound({ event: 'message_created', id: saved.id, content: 'Fixed, please try again', message_type: 'outgoing', private: false, sender: { id: owner, type: 'user' }, conversation: { id: 77, inbox_id: 1 } }, 'd-early');
      expect(early.body.outcome).toBe('ignored');
      await retryNow();
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 0, failed: 0 });
      expect(posted('Fixed, please try again')).toBe(1);
      const after = (await db.sql`select content from public.ticket_messages where ticket_id = ${ticket.id} order by created_at`).map((m) => m.content);
      expect(after.filter((c) => c === 'Fixed, please try again')).toHaveLength(2); // ours, and the colleague's in Chatwoot

      // The same text twice in a row: the first's echo (its id recorded) claims nothing,
      // and the second is posted too.
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Thanks' } });
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      const first = cw.messages.at(-1)!;
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Thanks' } });
      const echoFirst = await inbound({ event: 'message_created', id: first.id, content: 'Thanks', message_type: 'outgoing', private: false, sender: { id: owner, type: 'user' }, conversation: { display_id: 77 } }, 'd-thanks-1');
      expect(echoFirst.body.outcome).toBe('ignored');
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(posted('Thanks')).toBe(2);

      // Someone signed in to Chatwoot as the owner login posts the text of a reply still
      // queued here: their message, not the reply's echo (its job has not begun).
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'On it' } });
      const human = await inbound({ event: 'message_created', id: 9100, content: 'On it', message_type: 'outgoing', private: false, sender: { id: owner, type: 'user' }, conversation: { id: 77 } }, 'd-human');
      expect(human.body.outcome).toBe('applied');
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(posted('On it')).toBe(1);

      // The plan no longer includes Chatwoot: a reply queued is not posted; it fails, saying why.
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'After the downgrade' } });
      await db.sql`insert into private.tenant_plan_overrides (tenant_id, features) values (${globex}, '{"chatwoot": false}')
        on conflict (tenant_id) do update set features = excluded.features`;
      try {
        expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 0, failed: 1 });
        expect(posted('After the downgrade')).toBe(0);
        const [failed] = await db.sql`select status, last_error from private.chatwoot_replies where content = 'After the downgrade'`;
        expect(failed).toMatchObject({ status: 'failed', last_error: expect.stringContaining('plan') });
      } finally {
        await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${globex}`;
      }

      // A reply written just before the tenant is suspended (its Chatwoot account with it)
      // is neither posted nor failed: it waits, attempts untouched, and goes out once the
      // tenant is active again, a first try that finds the account still suspended (401)
      // tried again rather than final.
      const provisionAll = async () => {
        for (let i = 0; i < 5; i++) {
          const r = await runProvisioningWorker({ connectors: { chatwoot: chatwootConnector({ url: cw.url, platformToken: cw.token }) }, budgetMs: 5_000 });
          if (!r.claimed) break;
        }
      };
      await call(ticketsApp, 'POST', `/tickets/${ticket.id}/messages`, { token: agent, body: { content: 'Before the suspension' } });
      await db.sql`update public.tenants set status = 'suspended' where id = ${globex}`;
      await provisionAll();
      expect(cw.accounts.get(svc.external_ids.account_id)?.status).toBe('suspended');
      const waiting = (await runJobs({ tasks: ['chatwoot-reply'], deps: { chatwootUrl: cw.url } })).tasks['chatwoot-reply'];
      expect(waiting).toMatchObject({ deferred: 1 });
      const pendingReply = async () =>
        (await db.sql`select r.status, j.attempts from private.chatwoot_replies r
          left join private.jobs j on j.task = 'chatwoot-reply' and j.dead_at is null and (j.payload ->> 'reply_id')::bigint = r.id
          where r.content = 'Before the suspension'`)[0];
      expect(await pendingReply()).toEqual({ status: 'pending', attempts: 0 });
      // Active again, its account not yet resumed (the provisioning run is still to come):
      // still waiting, attempts untouched.
      await db.sql`update public.tenants set status = 'active' where id = ${globex}`;
      await db.sql`update private.jobs set run_at = now() where task = 'chatwoot-reply' and dead_at is null`;
      const resuming = (await runJobs({ tasks: ['chatwoot-reply'], deps: { chatwootUrl: cw.url } })).tasks['chatwoot-reply'];
      expect(resuming).toMatchObject({ deferred: 1 });
      expect(await pendingReply()).toEqual({ status: 'pending', attempts: 0 });
      await provisionAll();
      expect(cw.accounts.get(svc.external_ids.account_id)?.status).toBe('active');
      // Chatwoot still answering 401 (an account suspended there by hand, an owner token
      // being replaced): tried again, not failed for good.
      cw.accounts.get(svc.external_ids.account_id)!.status = 'suspended';
      await db.sql`update private.jobs set run_at = now() where task = 'chatwoot-reply' and dead_at is null`;
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 0, retried: 1, failed: 0 });
      expect(posted('Before the suspension')).toBe(0);
      cw.accounts.get(svc.external_ids.account_id)!.status = 'active';
      await retryNow();
      expect(await deliverChatwootReplies({ chatwootUrl: cw.url })).toEqual({ sent: 1, retried: 0, failed: 0 });
      expect(posted('Before the suspension')).toBe(1);
    } finally {
      await cw.server.close();
    }
  });
});
