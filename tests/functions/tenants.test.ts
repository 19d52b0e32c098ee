// The tenants function, called in-process through its Hono app with real tokens and a
// real database: the main flows, every validation rule, and tenant isolation tried as
// an attacker would — every endpoint, every role, with another tenant's ids.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { app } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { AUDIT_PAGE_BYTES } from '../../functions/tenants/routes/audit.ts';
import { root } from '../../scripts/stack.mjs';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { call, errorCode } from '../helpers/http.ts';
import { LOCAL_SUPABASE_ISSUER, type SeedUser, supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';
import { SignJWT } from 'jose';

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};

beforeAll(async () => {
  db = await freshDatabase('fn_tenants');
  auth = await configureAuth(db.url);
  const acme = tenants.acme.id;
  tok.super = await supabaseToken(users.super);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.adminUnpinned = await supabaseToken(users.acmeAdmin);
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: tenants.globex.id });
  await db.sql`insert into public.invitations (tenant_id, id, email) values
    (${tenants.acme.id}, '40000000-0000-4000-8000-000000000001', 'pending@acme.test'),
    (${tenants.globex.id}, '40000000-0000-4000-8000-000000000002', 'pending@globex.test')`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

/** Everything a tenant owns, as one comparable value: attacks must leave it unchanged. */
async function tenantFingerprint(tenantId: string): Promise<string> {
  const [row] = await db.sql`
    select md5(concat_ws('|',
      (select string_agg(t::text, ',' order by t.id) from public.tenants t where t.id = ${tenantId}),
      (select string_agg(m::text, ',' order by m.id) from public.memberships m where m.tenant_id = ${tenantId}),
      (select string_agg(x::text, ',' order by x.id) from public.teams x where x.tenant_id = ${tenantId}),
      (select string_agg(x::text, ',' order by x.id) from public.team_members x where x.tenant_id = ${tenantId}),
      (select string_agg(x::text, ',' order by x.id) from public.invitations x where x.tenant_id = ${tenantId}),
      (select count(*)::text from public.audit_logs a where a.tenant_id = ${tenantId}),
      (select count(*)::text from public.users)
    )) as fp`;
  return row.fp;
}

describe('GET /me', () => {
  it('describes the caller for each role and issuer', async () => {
    const me = await call(app, 'GET', '/tenants/me', { token: tok.agent });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({
      user: { id: users.acmeAgent.id, email: users.acmeAgent.email },
      identity: { kind: 'supabase', subject: users.acmeAgent.id },
      is_platform_admin: false,
      active_tenant: { id: tenants.acme.id, slug: 'acme' },
      role: 'agent',
    });
    const sup = await call(app, 'GET', '/tenants/me', { token: tok.super });
    expect(sup.body).toMatchObject({ is_platform_admin: true, role: 'super_admin', memberships: [] });

    const clerk = await auth.clerk.sign('user_admin_acme', {
      azp: 'http://localhost:3000',
      v: 2,
      o: { id: 'org_acme', rol: 'admin' },
    });
    const viaClerk = await call(app, 'GET', '/tenants/me', { token: clerk });
    expect(viaClerk.body).toMatchObject({
      user: { id: users.acmeAdmin.id },
      identity: { kind: 'clerk' },
      role: 'admin',
      active_tenant: { slug: 'acme' },
    });

    const st = await auth.supertokens.sign('st-user_globex', { tenant_id: 'globex', sessionHandle: 'st-session-1' });
    const viaSt = await call(app, 'GET', '/tenants/me', { token: st });
    expect(viaSt.body).toMatchObject({ user: { id: users.globexUser.id }, role: 'user', active_tenant: { slug: 'globex' } });
  });

  it('a token whose issuer ends in a slash is the same issuer end to end, not an unknown person', async () => {
    // The verifier takes `iss` with or without it; the database matched it as written.
    const slashed = await new SignJWT({ aud: 'authenticated', role: 'authenticated', email: users.acmeAgent.email })
      .setProtectedHeader({ alg: 'HS256' }).setIssuer(`${LOCAL_SUPABASE_ISSUER}/`).setSubject(users.acmeAgent.id)
      .setIssuedAt().setExpirationTime('10m').sign(new TextEncoder().encode(TEST_JWT_SECRET));
    const me = await call(app, 'GET', '/tenants/me', { token: slashed });
    expect([me.status, me.body.role, me.body.active_tenant?.slug]).toEqual([200, 'agent', 'acme']);
    const filed = await call(ticketsApp, 'POST', '/tickets', { token: slashed, body: { title: 'Filed with a slashed issuer' } });
    expect([filed.status, filed.body.created_by]).toEqual([201, users.acmeAgent.id]);
  });

  it('a platform admin naming a tenant that does not exist is told 404 on every tenant route, as anyone is', async () => {
    const unknown = '00000000-0000-4000-8000-00000000dead';
    const before = await db.sql`select count(*)::int as n from public.teams`;
    for (const [method, path, body] of [
      ['GET', `/tenants/${unknown}/api-keys`],
      ['GET', `/tenants/${unknown}/audit`],
      ['GET', `/tenants/${unknown}/members`],
      ['POST', `/tenants/${unknown}/teams`, { name: 'Nowhere team', department: 'support' }],
    ] as const) {
      const r = await call(app, method, path, { token: tok.super, ...(body ? { body } : {}) });
      expect([r.status, errorCode(r)], `${method} ${path}`).toEqual([404, 'not_found']);
    }
    expect(await db.sql`select count(*)::int as n from public.teams`).toEqual(before);
    // A tenant that exists is theirs as before.
    expect((await call(app, 'GET', `/tenants/${tenants.globex.id}/members`, { token: tok.super })).status).toBe(200);
    // A purged one too, on every route (its trail, which keeps its own deletion — who purged
    // it, when — is read through the table, as a platform admin's).
    const purged = '30000000-0000-4000-8000-0000000000c7';
    await db.sql`insert into public.tenants (id, name, slug) values (${purged}, 'Gone Co', 'gone-co-404')`;
    await db.sql`delete from public.tenants where id = ${purged}`;
    for (const path of [`/tenants/${purged}/audit`, `/tenants/${purged}/members`]) {
      const r = await call(app, 'GET', path, { token: tok.super });
      expect([r.status, errorCode(r)], path).toEqual([404, 'not_found']);
    }
    const trail = await probeAs(db.sql, 'authenticated', supabaseClaims(users.super), (tx) =>
      tx`select action from public.audit_logs where tenant_id = ${purged} and table_name = 'tenants' order by id`);
    expect(trail.ok && trail.value.map((e) => e.action)).toEqual(['INSERT', 'DELETE']);
  });

  it('lets the caller edit their own profile, nothing else', async () => {
    const r = await call(app, 'PATCH', '/tenants/me', {
      token: tok.user,
      body: { display_name: 'Uma U.', profile: { locale: 'de' }, last_name: null },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: users.acmeUser.id, display_name: 'Uma U.', last_name: null, profile: { locale: 'de' } });
    const email = await call(app, 'PATCH', '/tenants/me', { token: tok.user, body: { email: 'new@example.test' } });
    expect(email.status).toBe(422);
    const bad = await call(app, 'PATCH', '/tenants/me', { token: tok.user, body: { avatar_url: 'not a url' } });
    expect([bad.status, bad.body.error.details.fields[0].field]).toEqual([422, 'avatar_url']);
    const [u] = await db.sql`select email, display_name from public.users where id = ${users.acmeUser.id}`;
    expect(u).toEqual({ email: users.acmeUser.email, display_name: 'Uma U.' });
  });

  it('picks the active tenant from X-Tenant-Id (id or slug) when the token names none', async () => {
    await db
      .sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.globex.id}, ${users.acmeAgent.id}, 'user')`;
    try {
      const agent = await supabaseToken(users.acmeAgent);
      const none = await call(app, 'GET', '/tenants/me', { token: agent });
      expect(none.body).toMatchObject({ active_tenant: null, role: null });
      expect(none.body.memberships).toHaveLength(2);
      const bySlug = await call(app, 'GET', '/tenants/me', { token: agent, headers: { 'x-tenant-id': 'globex' } });
      expect(bySlug.body).toMatchObject({ active_tenant: { id: tenants.globex.id }, role: 'user' });
      const byId = await call(app, 'GET', '/tenants/me', { token: agent, headers: { 'x-tenant-id': tenants.acme.id } });
      expect(byId.body).toMatchObject({ active_tenant: { slug: 'acme' }, role: 'agent' });
    } finally {
      await db.sql`delete from public.memberships where tenant_id = ${tenants.globex.id} and user_id = ${users.acmeAgent.id}`;
    }
  });

  it("answers 404 when X-Tenant-Id names a tenant that is not the caller's, by id, slug or neither", async () => {
    const admin = await supabaseToken(users.acmeAdmin);
    for (const name of [tenants.globex.id, 'globex', 'no-such-tenant']) {
      const r = await call(app, 'GET', '/tenants/me', { token: admin, headers: { 'x-tenant-id': name } });
      expect([r.status, errorCode(r)], name).toEqual([404, 'not_found']);
    }
  });

  it('refuses a token whose tenant claim names a tenant the caller is not in', async () => {
    const forged = await supabaseToken(users.acmeAdmin, { tenantId: tenants.globex.id });
    const r = await call(app, 'GET', '/tenants/me', { token: forged });
    expect([r.status, errorCode(r)]).toEqual([403, 'tenant_not_member']);
    const clerk = await auth.clerk.sign('user_admin_acme', { azp: 'http://localhost:3000', o: { id: 'org_globex' } });
    const r2 = await call(app, 'GET', '/tenants/me', { token: clerk });
    expect([r2.status, errorCode(r2)]).toEqual([403, 'tenant_not_member']);
  });

  it('refuses a valid token of an identity nobody mapped, and a disabled user', async () => {
    const stranger = await supabaseToken({ id: '99999999-9999-4999-8999-999999999999', email: 'x@y.test' });
    const r = await call(app, 'GET', '/tenants/me', { token: stranger });
    expect([r.status, errorCode(r)]).toEqual([403, 'unknown_user']);
    await db.sql`update public.users set status = 'disabled' where id = ${users.acmeUser.id}`;
    try {
      const d = await call(app, 'GET', '/tenants/me', { token: tok.user });
      expect(d.status).toBe(403);
    } finally {
      await db.sql`update public.users set status = 'active' where id = ${users.acmeUser.id}`;
    }
  });
});

describe('tenant lifecycle', () => {
  it('super-admin creates a tenant with its first admin, who then runs it', async () => {
    const created = await call(app, 'POST', '/tenants', {
      token: tok.super,
      body: { name: 'Initech', slug: 'initech', plan: 'pro', admin: { email: 'Boss@Initech.test', first_name: 'Bill' } },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ name: 'Initech', slug: 'initech', plan: 'pro', status: 'active', settings: {} });
    const [u] = await db.sql`select id, email from public.users where email = 'boss@initech.test'`;
    expect(u).toBeTruthy();
    await db
      .sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${u.id}, ${u.id})`;
    const boss = await supabaseToken({ id: u.id, email: u.email });
    const me = await call(app, 'GET', '/tenants/me', { token: boss });
    expect(me.body).toMatchObject({ role: 'admin', active_tenant: { slug: 'initech' } });

    const dup = await call(app, 'POST', '/tenants', { token: tok.super, body: { name: 'Again', slug: 'initech' } });
    expect([dup.status, errorCode(dup)]).toEqual([409, 'already_exists']);
    expect(dup.body.error).toMatchObject({
      message: 'slug is already taken',
      details: { constraint: 'tenants_slug_key', fields: [{ field: 'slug', message: 'is already taken' }] },
    });
  });

  it("a slug shaped like a tenant id is refused (X-Tenant-Id takes either, and it could name another tenant)", async () => {
    const idShaped = tenants.globex.id;
    const r = await call(app, 'POST', '/tenants', { token: tok.super, body: { name: 'Lookalike', slug: idShaped } });
    expect([r.status, errorCode(r)]).toEqual([422, 'validation_failed']);
    expect(JSON.stringify(r.body.error.details)).toContain('slug');
    // Nor by a direct write: the database refuses it too.
    await expect(db.sql`insert into public.tenants (name, slug) values ('Lookalike', ${idShaped})`).rejects
      .toMatchObject({ code: '23514', constraint_name: 'tenants_slug_not_an_id' });
    await expect(db.sql`update public.tenants set slug = ${idShaped} where id = ${tenants.acme.id}`).rejects
      .toMatchObject({ code: '23514' });
    expect(await db.sql`select 1 from public.tenants where slug = ${idShaped}`).toHaveLength(0);
  });

  it('a person who cannot sign in (disabled, or locked out) is no first admin: 409, and no tenant is made', async () => {
    for (const [email, status] of [['disabled.boss@example.test', 'disabled'], ['locked.boss@example.test', 'deleted']] as const) {
      const [u] = await db.sql`insert into public.users (email, status) values (${email}, ${status}) returning id`;
      // Locked out by a platform admin: marked deleted, their login kept.
      await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${u.id}, ${u.id})`;
      const slug = `no-admin-${status}`;
      const r = await call(app, 'POST', '/tenants', { token: tok.super, body: { name: 'Headless', slug, admin: { email } } });
      expect([r.status, errorCode(r), r.body.error.details], status).toEqual([409, 'admin_cannot_sign_in', { field: 'admin.email' }]);
      expect(await db.sql`select 1 from public.tenants where slug = ${slug}`).toHaveLength(0);
    }
    // Retired with their last login (deleted, no login left): they come back by signing up.
    await db.sql`insert into public.users (email, status) values ('retired.boss@example.test', 'deleted')`;
    const retired = await call(app, 'POST', '/tenants', {
      token: tok.super, body: { name: 'Returning', slug: 'returning-boss', admin: { email: 'retired.boss@example.test' } },
    });
    expect(retired.status, JSON.stringify(retired.body)).toBe(201);
  });

  it('only super-admins create tenants', async () => {
    for (const role of ['admin', 'agent', 'user']) {
      const r = await call(app, 'POST', '/tenants', { token: tok[role], body: { name: 'Nope', slug: `nope-${role}` } });
      expect([r.status, errorCode(r)], role).toEqual([403, 'forbidden']);
    }
    const [{ n }] = await db.sql`select count(*)::int as n from public.tenants where slug like 'nope-%'`;
    expect(n).toBe(0);
  });

  it('lists all tenants for super-admins (paged) and only their own for others', async () => {
    const mine = await call(app, 'GET', '/tenants', { token: tok.user });
    expect(mine.body.items.map((t: { slug: string }) => t.slug)).toEqual(['acme']);
    const page1 = await call(app, 'GET', '/tenants?limit=1', { token: tok.super });
    expect(page1.body.items).toHaveLength(1);
    expect(page1.body.next).toEqual(expect.any(String));
    const page2 = await call(app, 'GET', `/tenants?limit=1&cursor=${page1.body.next}`, { token: tok.super });
    expect(page2.body.items[0].id).not.toBe(page1.body.items[0].id);
    const bad = await call(app, 'GET', '/tenants?cursor=%%%', { token: tok.super });
    expect(bad.status).toBe(422);
  });

  it('admins rename their tenant and change settings but not the plan', async () => {
    const r = await call(app, 'PATCH', `/tenants/${tenants.acme.id}`, {
      token: tok.admin,
      body: { name: 'Acme Corp', settings: { locale: 'fr' } },
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'Acme Corp', settings: { locale: 'fr' } });
    const plan = await call(app, 'PATCH', `/tenants/${tenants.acme.id}`, { token: tok.admin, body: { plan: 'enterprise' } });
    expect(plan.status).toBe(403);
    for (const role of ['agent', 'user']) {
      const denied = await call(app, 'PATCH', `/tenants/${tenants.acme.id}`, { token: tok[role], body: { name: 'Mine now' } });
      expect(denied.status, role).toBe(403);
    }
    const [t] = await db.sql`select name, plan from public.tenants where id = ${tenants.acme.id}`;
    expect(t).toEqual({ name: 'Acme Corp', plan: 'pro' });
  });

  it('settings are merged: keys not named stay, null removes one, and two admins setting different keys keep both', async () => {
    const path = `/tenants/${tenants.globex.id}`;
    const patch = (settings: Record<string, unknown>) => call(app, 'PATCH', path, { token: tok.globexAdmin, body: { settings } });
    expect((await patch({ locale: 'de', reopen_window_days: 3 })).status).toBe(200);
    const r = await patch({ customer_followers: true });
    expect(r.body.settings).toEqual({ locale: 'de', reopen_window_days: 3, customer_followers: true });
    // A switch is true or false: "true" or 1 was stored, echoed, and read as off.
    for (const value of ['true', 1]) {
      const bad = await patch({ customer_followers: value });
      expect([bad.status, bad.body.error?.details?.fields?.[0]?.field], String(value)).toEqual([422, 'settings.customer_followers']);
    }
    const removed = await patch({ reopen_window_days: null, locale: 'en' });
    expect(removed.body.settings).toEqual({ locale: 'en', customer_followers: true });
    // Renaming leaves them as they are.
    const renamed = await call(app, 'PATCH', path, { token: tok.globexAdmin, body: { name: 'Globex Corporation' } });
    expect(renamed.body.settings).toEqual({ locale: 'en', customer_followers: true });
    const both = await Promise.all([patch({ a: 1 }), patch({ b: 2 })]);
    expect(both.map((x) => x.status)).toEqual([200, 200]);
    const [t] = await db.sql`select settings from public.tenants where id = ${tenants.globex.id}`;
    expect(t.settings).toEqual({ locale: 'en', customer_followers: true, a: 1, b: 2 });
    await db.sql`update public.tenants set settings = '{}' where id = ${tenants.globex.id}`;
  });

  it("the removal grace period (settings.removal_grace_days) is the platform admins' to set, not the tenant's admins'", async () => {
    const path = `/tenants/${tenants.globex.id}`;
    const grace = async () => (await db.sql`select settings -> 'removal_grace_days' as g from public.tenants where id = ${tenants.globex.id}`)[0].g;
    for (const value of [9999, 0]) {
      const r = await call(app, 'PATCH', path, { token: tok.globexAdmin, body: { settings: { removal_grace_days: value, locale: 'nl' } } });
      expect([r.status, errorCode(r)]).toEqual([403, 'forbidden']);
    }
    // Through the table too, and nothing else of the update is kept.
    const direct = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'authenticated', true),
        set_config('request.jwt.claims', ${JSON.stringify({ sub: users.globexAdmin.id, role: 'authenticated', iss: 'http://127.0.0.1:54321/auth/v1' })}, true)`;
      await tx`update public.tenants set settings = settings || '{"removal_grace_days": 9999}' where id = ${tenants.globex.id}`;
    }).catch((e) => e.code);
    expect(direct).toBe('PT403');
    expect(await grace()).toBeNull();
    // The platform admin's own value is checked: the database reads anything but a whole
    // number of days up to 9999 as 7, and would remove the partner spaces that much sooner.
    for (const [key, bad] of [['removal_grace_days', 10_000], ['removal_grace_days', 14.5], ['removal_grace_days', -1], ['removal_grace_days', '30 days'], ['reopen_window_days', 10_000], ['reopen_window_days', '3']] as const) {
      const r = await call(app, 'PATCH', path, { token: tok.super, body: { settings: { [key]: bad } } });
      expect([key, bad, r.status, r.body.error?.details?.fields?.[0]?.field]).toEqual([key, bad, 422, `settings.${key}`]);
    }
    expect(await grace()).toBeNull();
    // Through the table too (a platform admin's grace, a tenant admin's window): refused in
    // any form the database would not read as days; its digits as text it reads, and takes.
    const throughTable = (who: { id: string }, settings: Record<string, unknown>) =>
      db.sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true),
          set_config('request.jwt.claims', ${JSON.stringify({ sub: who.id, role: 'authenticated', iss: 'http://127.0.0.1:54321/auth/v1' })}, true)`;
        const updated = await tx`update public.tenants set settings = settings || ${tx.json(settings as never)} where id = ${tenants.globex.id} returning id`;
        throw Object.assign(new Error('rolled back'), { code: `rolled back: ${updated.length}` });
      }).catch((e) => e.code);
    for (const [who, settings] of [[users.super, { removal_grace_days: 14.5 }], [users.super, { removal_grace_days: '30 days' }], [users.globexAdmin, { reopen_window_days: 'a week' }], [users.globexAdmin, { reopen_window_days: -1 }]] as const) {
      expect([settings, await throughTable(who, settings)]).toEqual([settings, '23514']);
    }
    expect(await throughTable(users.super, { removal_grace_days: '30' })).toBe('rolled back: 1');
    expect(await throughTable(users.globexAdmin, { reopen_window_days: 2.5 })).toBe('rolled back: 1');
    const set = await call(app, 'PATCH', path, { token: tok.super, body: { settings: { removal_grace_days: 30 } } });
    expect(set.status).toBe(200);
    expect(await grace()).toBe(30);
    // Their other settings stay theirs, the grace period named or not (unchanged is no change).
    expect((await call(app, 'PATCH', path, { token: tok.globexAdmin, body: { settings: { locale: 'nl', removal_grace_days: 30 } } })).status).toBe(200);
    expect((await call(app, 'PATCH', path, { token: tok.globexAdmin, body: { settings: { locale: 'fr' } } })).status).toBe(200);
    expect(await grace()).toBe(30);
    await db.sql`update public.tenants set settings = '{}' where id = ${tenants.globex.id}`;
  });

  it("a tenant's or team's name is at most 100 characters as stored, through PostgREST too; ones stored longer are trimmed", async () => {
    const globex = tenants.globex.id;
    const padded = 'Globex' + ' '.repeat(300);
    const throughTable = (sql: string) =>
      probeAs(db.sql, 'authenticated', supabaseClaims(users.globexAdmin, globex), (tx) => tx.unsafe(sql, [padded, globex]));
    for (const table of ['tenants', 'teams']) {
      const key = table === 'tenants' ? 'id = $2' : `tenant_id = $2 and id = '${teams.globex}'`;
      const r = await throughTable(`update public.${table} set name = $1 where ${key} returning name`);
      expect([table, r]).toMatchObject([table, { ok: false, error: { code: '23514' } }]);
    }
    expect((await db.sql`select name from public.tenants where id = ${globex}`)[0].name.length).toBeLessThanOrEqual(100);
    // A database that stored such names before: trimmed, the bound validated.
    const migration = readFileSync(path.join(root, 'supabase', 'migrations', '20261207229000_tenant_and_team_names_bounded.sql'), 'utf8');
    await db.sql.begin(async (tx) => {
      await tx`alter table public.tenants drop constraint tenants_name_length`;
      await tx`alter table public.teams drop constraint teams_name_length`;
      await tx`update public.tenants set name = ${padded} where id = ${globex}`;
      await tx`update public.teams set name = ${'  Night shift' + ' '.repeat(200)} where id = ${teams.globex}`;
      await tx.unsafe(migration);
      const [t] = await tx`select name from public.tenants where id = ${globex}`;
      expect(t.name).toBe('Globex');
      const [team] = await tx`select name from public.teams where id = ${teams.globex}`;
      expect(team.name).toBe('Night shift');
      const checks = await tx`select conname, convalidated from pg_constraint where conname in ('tenants_name_length', 'teams_name_length') order by conname`;
      expect(checks.map((c) => [c.conname, c.convalidated])).toEqual([['teams_name_length', true], ['tenants_name_length', true]]);
      throw Object.assign(new Error('rolled back'), { rolledBack: true });
    }).catch((e) => {
      if (!e.rolledBack) throw e;
    });
  });

  it('a grace stored before the table checked it is cleared (it read as 7 days), so the row takes other changes, and every row is checked', async () => {
    const migration = (name: string) => readFileSync(path.join(root, 'supabase', 'migrations', name), 'utf8');
    const globex = tenants.globex.id;
    await db.sql.begin(async (tx) => {
      // As a database that stored them before 20261207219000 was.
      await tx`alter table public.tenants drop constraint tenants_settings_days_readable`;
      await tx`update public.tenants set settings = settings || '{"removal_grace_days": "30 days", "reopen_window_days": "3"}' where id = ${globex}`;
      await tx.unsafe(migration('20261207219000_tenant_settings_days_as_read.sql'));
      const renamed = await tx.savepoint((sp) => sp`update public.tenants set name = name || '.' where id = ${globex}`).catch((e) => e.code);
      expect(renamed).toBe('23514'); // what 20261207219000 alone left: the row frozen
      await tx.unsafe(migration('20261207222000_tenant_settings_days_cleared_and_checked.sql'));
      const [t] = await tx`select settings from public.tenants where id = ${globex}`;
      expect([t.settings.removal_grace_days, t.settings.reopen_window_days]).toEqual([undefined, '3']);
      const [c] = await tx`select convalidated from pg_constraint where conname = 'tenants_settings_days_readable'`;
      expect(c.convalidated).toBe(true);
      expect(await tx`update public.tenants set name = name where id = ${globex} returning id`).toHaveLength(1);
      throw Object.assign(new Error('rolled back'), { rolledBack: true });
    }).catch((e) => {
      if (!e.rolledBack) throw e;
    });
  });

  it('suspend makes a tenant read-only, resume restores it, delete hides it', async () => {
    const path = `/tenants/${tenants.globex.id}`;
    expect((await call(app, 'POST', `${path}/suspend`, { token: tok.globexAdmin })).status).toBe(403);
    const s = await call(app, 'POST', `${path}/suspend`, { token: tok.super });
    expect(s.body.status).toBe('suspended');
    expect((await call(app, 'GET', `${path}/teams`, { token: tok.globexAdmin })).status).toBe(200);
    const w = await call(app, 'POST', `${path}/teams`, {
      token: tok.globexAdmin,
      body: { name: 'Blocked', department: 'sales' },
    });
    expect([w.status, errorCode(w)]).toEqual([403, 'tenant_suspended']);
    expect((await call(app, 'POST', `${path}/resume`, { token: tok.super })).body.status).toBe('active');
    expect(
      (await call(app, 'POST', `${path}/teams`, { token: tok.globexAdmin, body: { name: 'Allowed', department: 'sales' } }))
        .status,
    ).toBe(201);

    const d = await call(app, 'DELETE', path, { token: tok.super });
    expect(d.body).toMatchObject({ status: 'deleted', deleted_at: expect.any(String) });
    // Gone for its members: a token pinned to it no longer names a tenant of theirs,
    // and without a pin the tenant is simply not found.
    const pinned = await call(app, 'GET', path, { token: tok.globexAdmin });
    expect([pinned.status, errorCode(pinned)]).toEqual([403, 'tenant_not_member']);
    const unpinned = await call(app, 'GET', path, { token: await supabaseToken(users.globexAdmin) });
    expect([unpinned.status, errorCode(unpinned)]).toEqual([404, 'not_found']);
    expect((await call(app, 'GET', path, { token: tok.super })).body.status).toBe('deleted');
    expect((await call(app, 'POST', `${path}/resume`, { token: tok.super })).body).toMatchObject({
      status: 'active',
      deleted_at: null,
    });
  });

  it("resume and restore give back what the suspension or deletion took: not a service its admins turned off, nor one the plan dropped", async () => {
    const [t] = await db.sql`insert into public.tenants (name, slug, plan) values ('Resumed', 'resumed', 'starter') returning id`;
    await db.sql`insert into public.tenant_services (tenant_id, service) select ${t.id}, s from unnest(array['chatwoot', 'botpress', 'n8n', 'odoo']) s`;
    // Its admins turned n8n off (a removal of theirs has no remove_after).
    await db.sql`update public.tenant_services set desired_state = 'removed' where tenant_id = ${t.id} and service = 'n8n'`;
    const desired = async () =>
      Object.fromEntries(
        (await db.sql`select service, desired_state, remove_after is not null as timed from public.tenant_services where tenant_id = ${t.id}`)
          .map((r) => [r.service, r.timed ? `${r.desired_state} later` : r.desired_state]),
      );
    const path = `/tenants/${t.id}`;
    expect((await call(app, 'POST', `${path}/suspend`, { token: tok.super })).status).toBe(200);
    expect(await desired()).toEqual({ chatwoot: 'suspended', botpress: 'suspended', n8n: 'removed', odoo: 'suspended' });
    // While suspended, an override takes Odoo out of its plan: the resume still succeeds.
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, features) values (${t.id}, '{"odoo": false}')`;
    const resumed = await call(app, 'POST', `${path}/resume`, { token: tok.super });
    expect([resumed.status, resumed.body.status]).toEqual([200, 'active']);
    expect(await desired()).toEqual({ chatwoot: 'active', botpress: 'active', n8n: 'removed', odoo: 'suspended' });

    expect((await call(app, 'DELETE', path, { token: tok.super })).status).toBe(200);
    expect(await desired()).toEqual({ chatwoot: 'removed later', botpress: 'removed later', n8n: 'removed', odoo: 'removed later' });
    await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${t.id}`;
    const restored = await call(app, 'POST', `${path}/resume`, { token: tok.super });
    expect([restored.status, restored.body.status]).toEqual([200, 'active']);
    expect(await desired()).toEqual({ chatwoot: 'active', botpress: 'active', n8n: 'removed', odoo: 'active' });

    // Odoo, out of the plan through a deletion and a restore: paused again, as the plan
    // had it — not removed at the partner when the deletion's grace ends — and back with
    // the feature. Then an admin turns it off: the next restore leaves it off.
    expect((await call(app, 'DELETE', path, { token: tok.super })).status).toBe(200);
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, features) values (${t.id}, '{"odoo": false}')`;
    expect((await call(app, 'POST', `${path}/resume`, { token: tok.super })).status).toBe(200);
    expect((await desired()).odoo).toBe('suspended');
    await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${t.id}`;
    expect((await desired()).odoo).toBe('active');
    for (const enabled of [true, false]) {
      const r = await call(app, 'PUT', `${path}/services/odoo`, { token: tok.super, body: { enabled } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    expect((await desired()).odoo).toBe('removed');
    expect((await call(app, 'DELETE', path, { token: tok.super })).status).toBe(200);
    expect((await call(app, 'POST', `${path}/resume`, { token: tok.super })).status).toBe(200);
    expect((await desired()).odoo).toBe('removed');

    // A deleted tenant suspended (brought back read-only): no longer deleted, so its
    // partner spaces are kept, paused — not removed when the deletion's grace ends.
    expect((await call(app, 'DELETE', path, { token: tok.super })).status).toBe(200);
    expect(await desired()).toEqual({ chatwoot: 'removed later', botpress: 'removed later', n8n: 'removed', odoo: 'removed' });
    const suspended = await call(app, 'POST', `${path}/suspend`, { token: tok.super });
    expect([suspended.status, suspended.body.status]).toEqual([200, 'suspended']);
    expect(await desired()).toEqual({ chatwoot: 'suspended', botpress: 'suspended', n8n: 'removed', odoo: 'removed' });
    expect((await call(app, 'POST', `${path}/resume`, { token: tok.super })).status).toBe(200);
    expect(await desired()).toEqual({ chatwoot: 'active', botpress: 'active', n8n: 'removed', odoo: 'removed' });
  });
});

describe('members', () => {
  const base = `/tenants/${tenants.acme.id}/members`;

  it('admins invite by e-mail; the invitee accepts and joins; admins change roles and remove', async () => {
    const invite = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: tok.admin,
      body: { email: 'New.Hire@acme.test', role: 'agent' },
    });
    expect(invite.status).toBe(201);
    expect(invite.body).toMatchObject({
      email: 'new.hire@acme.test',
      role: 'agent',
      invited_by: users.acmeAdmin.id,
      accepted_at: null,
    });
    const dup = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: tok.admin,
      body: { email: 'new.hire@acme.test' },
    });
    expect([dup.status, errorCode(dup)]).toEqual([409, 'already_exists']);
    // A partial unique index on lower(email) still names the column the caller sent.
    expect(dup.body.error.details.fields).toEqual([{ field: 'email', message: 'is already taken' }]);
    const member = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: tok.admin,
      body: { email: users.acmeAgent.email },
    });
    expect([member.status, errorCode(member)]).toEqual([409, 'already_member']);
    const pending = await call(app, 'GET', `/tenants/${tenants.acme.id}/invitations`, { token: tok.admin });
    expect(pending.body.items.map((i: { email: string }) => i.email).sort()).toEqual(['new.hire@acme.test', 'pending@acme.test']);

    // The invitee signs up (their identity arrives through a trusted path), sees the
    // invitation in /me, accepts it, and is a member.
    const [hire] = await db.sql`insert into public.users (email, first_name) values ('new.hire@acme.test', 'Nia') returning id`;
    await db
      .sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${hire.id}, ${hire.id})`;
    const hireToken = await supabaseToken({ id: hire.id, email: 'new.hire@acme.test' });
    const me = await call(app, 'GET', '/tenants/me', { token: hireToken });
    expect(me.body).toMatchObject({ memberships: [], invitations: [{ id: invite.body.id, tenant_slug: 'acme', role: 'agent' }] });
    const stolen = await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token: tok.user });
    expect(stolen.status).toBe(404);
    const accepted = await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token: hireToken });
    expect(accepted.body).toEqual({ tenant_id: tenants.acme.id, role: 'agent' });
    // Accepting again says so; for anyone else the accepted invitation stays unknown.
    const again = await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token: hireToken });
    expect([again.status, errorCode(again)]).toEqual([409, 'already_accepted']);
    const stolenLater = await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token: tok.user });
    expect([stolenLater.status, errorCode(stolenLater)]).toEqual([404, 'not_found']);

    const changed = await call(app, 'PATCH', `${base}/${hire.id}`, { token: tok.admin, body: { role: 'admin' } });
    expect(changed.body).toMatchObject({ role: 'admin', email: 'new.hire@acme.test' });
    const list = await call(app, 'GET', base, { token: tok.agent });
    expect(list.body.items.map((m: { email: string }) => m.email)).toContain('new.hire@acme.test');
    expect((await call(app, 'GET', base, { token: tok.user })).status).toBe(403);

    expect((await call(app, 'DELETE', `${base}/${hire.id}`, { token: tok.admin })).status).toBe(204);
    expect((await call(app, 'DELETE', `${base}/${hire.id}`, { token: tok.admin })).status).toBe(404);
  });

  it("a partner service is enabled only in an active tenant, and a suspension waits for an enable under way", async () => {
    const [t] = await db.sql`insert into public.tenants (name, slug, plan) values ('Paused Co', 'paused-co', 'enterprise') returning id`;
    const path = `/tenants/${t.id}`;
    expect((await call(app, 'POST', `${path}/suspend`, { token: tok.super })).status).toBe(200);
    const enable = await call(app, 'PUT', `${path}/services/botpress`, { token: tok.super, body: { enabled: true } });
    expect([enable.status, errorCode(enable), enable.body.error?.details]).toEqual([409, 'tenant_not_active', { status: 'suspended' }]);
    expect(await db.sql`select 1 from public.tenant_services where tenant_id = ${t.id} and service = 'botpress'`).toHaveLength(0);
    expect((await call(app, 'POST', `${path}/resume`, { token: tok.super })).status).toBe(200);
    // An enable not yet committed when the tenant is suspended: the suspension waits, then pauses it too.
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`insert into public.tenant_services (tenant_id, service, desired_state) values (${t.id}, 'botpress', 'active')`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const suspension = call(app, 'POST', `${path}/suspend`, { token: tok.super });
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await holder`commit`;
      expect((await suspension).status).toBe(200);
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }
    expect((await db.sql`select desired_state from public.tenant_services where tenant_id = ${t.id} and service = 'botpress'`)[0].desired_state)
      .toBe('suspended');
    // Enabled through the table while the tenant is held (a resume or plan change under
    // way, which waits for this row): not a wait against the lock order, a 503 to retry.
    expect((await call(app, 'POST', `${path}/resume`, { token: tok.super })).status).toBe(200);
    await db.sql`update public.tenant_services set desired_state = 'suspended' where tenant_id = ${t.id} and service = 'botpress'`;
    const tenantHolder = await db.sql.reserve();
    try {
      await tenantHolder`begin`;
      await tenantHolder`select 1 from public.tenants where id = ${t.id} for no key update`;
      const busy = await db.sql.begin(async (tx) => {
        await tx`set local lock_timeout = '2s'`;
        await tx`update public.tenant_services set desired_state = 'active' where tenant_id = ${t.id} and service = 'botpress'`;
      }).catch((e: { code?: string }) => e.code);
      expect(busy).toBe('PT503');
    } finally {
      await tenantHolder`rollback`;
      tenantHolder.release();
    }
    await db.sql`delete from public.tenant_services where tenant_id = ${t.id}`;
    await db.sql`delete from public.tenants where id = ${t.id}`;
  });

  it('an invitation that cannot be accepted says why to its addressee: expired 410, its tenant not active 409; anyone else 404', async () => {
    const [late] = await db.sql`insert into public.users (email) values ('late@acme.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${late.id}, ${late.id})`;
    const lateToken = await supabaseToken({ id: late.id, email: 'late@acme.test' });
    const [expired] = await db.sql`insert into public.invitations (tenant_id, email, expires_at)
      values (${tenants.acme.id}, 'late@acme.test', now() - interval '1 minute') returning id`;
    const [paused] = await db.sql`insert into public.invitations (tenant_id, email)
      values (${tenants.globex.id}, 'late@acme.test') returning id`;
    const accept = (id: string, token: string) => call(app, 'POST', `/tenants/invitations/${id}/accept`, { token });
    const gone = await accept(expired.id, lateToken);
    expect([gone.status, errorCode(gone)]).toEqual([410, 'invitation_expired']);
    await db.sql`update public.tenants set status = 'suspended' where id = ${tenants.globex.id}`;
    try {
      const fp = [await tenantFingerprint(tenants.acme.id), await tenantFingerprint(tenants.globex.id)];
      const held = await accept(paused.id, lateToken);
      expect([held.status, errorCode(held)]).toEqual([409, 'tenant_not_active']);
      // To anyone else they stay unknown, as an id that exists nowhere.
      for (const id of [expired.id, paused.id, '40000000-0000-4000-8000-0000000000ff']) {
        const other = await accept(id, tok.user);
        expect([other.status, errorCode(other)]).toEqual([404, 'not_found']);
      }
      expect([await tenantFingerprint(tenants.acme.id), await tenantFingerprint(tenants.globex.id)]).toEqual(fp);
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${tenants.globex.id}`;
    }
    // Resumed, it is accepted.
    expect((await accept(paused.id, lateToken)).body).toEqual({ tenant_id: tenants.globex.id, role: 'user' });
    await db.sql`delete from public.memberships where user_id = ${late.id}`;
    await db.sql`delete from public.invitations where email = 'late@acme.test'`;
    await db.sql`delete from public.user_identities where user_id = ${late.id}`;
    await db.sql`delete from public.users where id = ${late.id}`;
  });

  it('lists members in pages by e-mail: every member once, the cursor checked', async () => {
    const [t] = await db.sql`insert into public.tenants (name, slug) values ('Crowd', 'crowd') returning id`;
    // One address of 299 characters, of letters past ASCII and emoji (two UTF-16 units each,
    // 459 in all): its cursor must still be taken — an address is bound in characters.
    const people = await db.sql`insert into public.users (email)
      select 'crowd' || lpad(i::text, 3, '0') || '@Crowd.test' from generate_series(1, 24) i
      union all select 'crowd009' || repeat('😀', 160) || repeat('é', 120) || '@Crowd.test' returning id`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role)
      select ${t.id}, id, 'user' from unnest(${people.map((p) => p.id)}::uuid[]) id`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${users.super.id}, 'admin')`;
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r = await call(app, 'GET', `/tenants/${t.id}/members?limit=10${cursor ? `&cursor=${cursor}` : ''}`, { token: tok.super });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.items.length).toBeLessThanOrEqual(10);
      expect(Object.keys(r.body.items[0]).sort()).toEqual(['available', 'created_at', 'email', 'first_name', 'last_name', 'role', 'user_id']);
      seen.push(...r.body.items.map((m: { email: string }) => m.email));
      cursor = r.body.next;
      pages++;
    } while (cursor);
    expect(pages).toBe(3);
    expect(seen).toHaveLength(26);
    expect(new Set(seen).size).toBe(26);
    expect(seen.slice(0, 2)).toEqual(['crowd001@Crowd.test', 'crowd002@Crowd.test']);
    // The first page ended on the long address (its cursor, past 200 characters, was taken).
    expect(seen[9]).toMatch(/^crowd009(😀){160}é{120}@/u);
    // Without a limit, a tenant under 1,000 comes whole, as before pages; a forged cursor is a 422.
    expect((await call(app, 'GET', `/tenants/${t.id}/members`, { token: tok.super })).body).toMatchObject({ next: null });
    const forged = await call(app, 'GET', `/tenants/${t.id}/members?cursor=bm9wZQ`, { token: tok.super });
    expect([forged.status, errorCode(forged)]).toEqual([422, 'validation_failed']);
  });

  it('a member removed while an invitation to them is being accepted: a 503 to retry, no deadlock, and no way back in', async () => {
    const [p] = await db.sql`insert into public.users (email) values ('racing@acme.test') returning id`;
    const invite = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, { token: tok.admin, body: { email: 'racing@acme.test', role: 'agent' } });
    expect(invite.status).toBe(201);
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.acme.id}, ${p.id}, 'user')`;
    // The accept holds the invitation (as accept_invitation's `for update` does).
    const holder = await db.sql.reserve();
    try {
      await holder`begin`;
      await holder`select 1 from public.invitations where id = ${invite.body.id} for update`;
      const removal = await call(app, 'DELETE', `/tenants/${tenants.acme.id}/members/${p.id}`, { token: tok.admin });
      expect([removal.status, errorCode(removal)]).toEqual([503, 'retry']);
    } finally {
      await holder`rollback`;
      holder.release();
    }
    expect(await db.sql`select 1 from public.memberships where user_id = ${p.id}`).toHaveLength(1);
    // Retried once the accept is over: removed, the invitation with them.
    expect((await call(app, 'DELETE', `/tenants/${tenants.acme.id}/members/${p.id}`, { token: tok.admin })).status).toBe(204);
    expect(await db.sql`select 1 from public.invitations where id = ${invite.body.id}`).toHaveLength(0);
  });

  it('no pending invitation is addressed to a member on any path, and a removed member finds none to come back with', async () => {
    // Through PostgREST, as acme's admin: the rule is the database's.
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, tenants.acme.id), (tx) =>
      tx`insert into public.invitations (tenant_id, email, role) values (${tenants.acme.id}, ${users.acmeAgent.email}, 'admin') returning id`);
    expect(direct.ok).toBe(false);
    expect(direct.ok || [direct.error.code, direct.error.message]).toEqual(['PT409', 'This person is already a member of the tenant']);

    // One made before its addressee joined another way (a Clerk membership, a platform
    // admin's insert): the person is a member, then removed; the invitation goes with them.
    const [p] = await db.sql`insert into public.users (email) values ('fired@acme.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${p.id}, ${p.id})`;
    const invite = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, { token: tok.admin, body: { email: 'fired@acme.test', role: 'admin' } });
    expect(invite.status).toBe(201);
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.acme.id}, ${p.id}, 'user')`;
    expect((await call(app, 'DELETE', `/tenants/${tenants.acme.id}/members/${p.id}`, { token: tok.admin })).status).toBe(204);
    const back = await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, {
      token: await supabaseToken({ id: p.id, email: 'fired@acme.test' } as never),
    });
    expect([back.status, errorCode(back)]).toEqual([404, 'not_found']);
    expect(await db.sql`select 1 from public.memberships where user_id = ${p.id}`).toHaveLength(0);
    expect(await db.sql`select 1 from public.invitations where id = ${invite.body.id}`).toHaveLength(0);
    // Others' invitations stay.
    const others = await call(app, 'GET', `/tenants/${tenants.acme.id}/invitations`, { token: tok.admin });
    expect(others.body.items.map((i: { email: string }) => i.email)).toContain('pending@acme.test');
  });

  it("an invitee's token bound to the invitation's tenant reads /me and accepts; nothing else before that", async () => {
    const invite = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: tok.admin,
      body: { email: 'bound@acme.test', role: 'user' },
    });
    expect(invite.status).toBe(201);
    const [person] = await db.sql`insert into public.users (email) values ('bound@acme.test') returning id`;
    await db
      .sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${person.id}, ${person.id})`;
    const bound = await supabaseToken({ id: person.id, email: 'bound@acme.test' }, { tenantId: tenants.acme.id });

    const me = await call(app, 'GET', '/tenants/me', { token: bound });
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ memberships: [], active_tenant: null, role: null, invitations: [{ id: invite.body.id }] });
    // Not a member yet: the tenant's routes refuse the token, as before.
    for (
      const path of [`/tenants/${tenants.acme.id}`, `/tenants/${tenants.acme.id}/teams`, `/tenants/${tenants.acme.id}/members`]
    ) {
      const r = await call(app, 'GET', path, { token: bound });
      expect([r.status, errorCode(r)], path).toEqual([403, 'tenant_not_member']);
    }
    // A token bound to a tenant that has not invited them is refused outright.
    const elsewhere = await supabaseToken({ id: person.id, email: 'bound@acme.test' }, { tenantId: tenants.globex.id });
    const refused = await call(app, 'GET', '/tenants/me', { token: elsewhere });
    expect([refused.status, errorCode(refused)]).toEqual([403, 'tenant_not_member']);
    expect((await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token: elsewhere })).status).toBe(403);

    const accepted = await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token: bound });
    expect([accepted.status, accepted.body]).toEqual([200, { tenant_id: tenants.acme.id, role: 'user' }]);
    const after = await call(app, 'GET', '/tenants/me', { token: bound });
    expect(after.body).toMatchObject({ active_tenant: { slug: 'acme' }, role: 'user', invitations: [] });
    expect((await call(app, 'GET', `/tenants/${tenants.acme.id}/teams`, { token: bound })).status).toBe(200);
    const again = await call(app, 'POST', `/tenants/invitations/${invite.body.id}/accept`, { token: bound });
    expect([again.status, errorCode(again)]).toEqual([409, 'already_accepted']);
  });

  it("an agent removed or demoted: their live tickets on no team go to their department's receiving team, not out of every agent's sight", async () => {
    const acme = tenants.acme.id;
    const [{ department }] = await db.sql`select department from public.teams where tenant_id = ${acme} and id = ${teams.acme}`;
    const agentWith = async (email: string) => {
      const [u] = await db.sql`insert into public.users (email) values (${email}) returning id`;
      await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${u.id}, 'agent')`;
      // Filed while the department had no receiving team: on no team, assigned directly.
      const ticket = async () =>
        (await db.sql`insert into public.tickets (tenant_id, title, department, created_by, assigned_to)
          values (${acme}, ${`Direct to ${email}`}, ${department}, ${users.acmeUser.id}, ${u.id}) returning id`)[0].id as string;
      const live = await ticket();
      const settled = await ticket();
      await db.sql`update public.tickets set status = 'resolved' where id = ${settled}`;
      return { id: u.id as string, live, settled };
    };
    const row = async (id: string) => (await db.sql`select team_id, assigned_to from public.tickets where id = ${id}`)[0];
    const removed = await agentWith('leaving-agent@acme.test');
    const demoted = await agentWith('demoted-agent@acme.test');
    expect(await row(removed.live)).toEqual({ team_id: null, assigned_to: removed.id });
    await db.sql`update public.teams set receives_department_tickets = (id = ${teams.acme}) where tenant_id = ${acme} and department = ${department}`;
    try {
      expect((await call(app, 'DELETE', `/tenants/${acme}/members/${removed.id}`, { token: tok.admin })).status).toBe(204);
      expect(await row(removed.live)).toEqual({ team_id: teams.acme, assigned_to: null });
      expect(await row(removed.settled)).toEqual({ team_id: null, assigned_to: null }); // settled: left as it was
      const r = await call(app, 'PATCH', `/tenants/${acme}/members/${demoted.id}`, { token: tok.admin, body: { role: 'user' } });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect((await row(demoted.live)).team_id).toBe(teams.acme);
      expect((await row(demoted.settled)).team_id).toBeNull();
      // The team's automatic assignment runs for each.
      const queued = await db.sql`select payload ->> 'ticket_id' as t from private.jobs
        where task = 'assign-ticket' and payload ->> 'ticket_id' in (${removed.live}, ${demoted.live}) order by 1`;
      expect(queued.map((q) => q.t)).toEqual([removed.live, demoted.live].sort());
      // The team's agent sees it now.
      const seen = await call(ticketsApp, 'GET', `/tickets/${removed.live}`, { token: tok.agent });
      expect(seen.status).toBe(200);
    } finally {
      await db.sql`update public.teams set receives_department_tickets = false where tenant_id = ${acme}`;
    }
  });

  it("a suspended tenant's admins still remove members and revoke invitations (taking access away); roles stay as they are", async () => {
    const acme = tenants.acme.id;
    const [p] = await db.sql`insert into public.users (email) values ('fired-while-suspended@acme.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${p.id}, ${p.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${p.id}, 'agent')`;
    const fired = await supabaseToken({ id: p.id, email: 'fired-while-suspended@acme.test' }, { tenantId: acme });
    const inv = await call(app, 'POST', `/tenants/${acme}/invitations`, { token: tok.admin, body: { email: 'not-now@acme.test' } });
    expect(inv.status).toBe(201);
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    try {
      // Suspended, the agent still reads.
      expect((await call(app, 'GET', `/tenants/${acme}/members`, { token: fired })).status).toBe(200);
      const demote = await call(app, 'PATCH', `/tenants/${acme}/members/${p.id}`, { token: tok.admin, body: { role: 'user' } });
      expect([demote.status, errorCode(demote)]).toEqual([403, 'tenant_suspended']);
      expect((await call(app, 'DELETE', `/tenants/${acme}/members/${p.id}`, { token: tok.admin })).status).toBe(204);
      const gone = await call(app, 'GET', `/tenants/${acme}/members`, { token: fired });
      expect([gone.status, errorCode(gone)]).toEqual([403, 'tenant_not_member']);
      expect((await call(app, 'DELETE', `/tenants/${acme}/invitations/${inv.body.id}`, { token: tok.admin })).status).toBe(204);
      expect(await db.sql`select 1 from public.invitations where id = ${inv.body.id}`).toHaveLength(0);
      // Through the table too; an agent still removes no one.
      const [q] = await db.sql`insert into public.users (email) values ('fired-too-while-suspended@acme.test') returning id`;
      await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${q.id}, 'user')`;
      const byAgent = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAgent, acme), (tx) =>
        tx`delete from public.memberships where tenant_id = ${acme} and user_id = ${q.id} returning user_id`);
      expect(byAgent).toEqual({ ok: true, value: [] });
      const byAdmin = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
        tx`delete from public.memberships where tenant_id = ${acme} and user_id = ${q.id} returning user_id`);
      expect(byAdmin).toMatchObject({ ok: true, value: [{ user_id: q.id }] });
      // An admin leaving on their own waits for the resume, as any member.
      const leaving = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
        tx`delete from public.memberships where tenant_id = ${acme} and user_id = ${users.acmeAdmin.id} returning user_id`);
      expect(leaving).toEqual({ ok: true, value: [] });
      // Through the route: said so (a 404 named a member that exists).
      const leaves = await call(app, 'DELETE', `/tenants/${acme}/members/${users.acmeAdmin.id}`, { token: tok.admin });
      expect([leaves.status, errorCode(leaves)]).toEqual([403, 'tenant_suspended']);
      expect(await db.sql`select 1 from public.memberships where tenant_id = ${acme} and user_id = ${users.acmeAdmin.id}`).toHaveLength(1);
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
    }
  });

  it('admins revoke pending invitations; others cannot invite', async () => {
    const inv = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: tok.admin,
      body: { email: 'maybe@acme.test', expires_in_days: 2 },
    });
    expect(inv.status).toBe(201);
    const [{ valid_for }] = await db.sql`select (expires_at - created_at)::text as valid_for from public.invitations where id = ${inv.body.id}`;
    expect(valid_for).toBe('2 days');
    for (const role of ['agent', 'user']) {
      expect(
        (await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, { token: tok[role], body: { email: 'x@acme.test' } }))
          .status,
      ).toBe(403);
      expect((await call(app, 'DELETE', `/tenants/${tenants.acme.id}/invitations/${inv.body.id}`, { token: tok[role] })).status)
        .toBe(403);
    }
    expect((await call(app, 'DELETE', `/tenants/${tenants.acme.id}/invitations/${inv.body.id}`, { token: tok.admin })).status)
      .toBe(204);
    expect((await call(app, 'DELETE', `/tenants/${tenants.acme.id}/invitations/${inv.body.id}`, { token: tok.admin })).status)
      .toBe(404);
  });

  /** A second admin of acme, with a token, for tests that take the role away again. */
  async function extraAdmin(email: string): Promise<{ id: string; token: string }> {
    const [u] = await db.sql`insert into public.users (email) values (${email}) returning id`;
    await db
      .sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${u.id}, ${u.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.acme.id}, ${u.id}, 'admin')`;
    return { id: u.id, token: await supabaseToken({ id: u.id, email }, { tenantId: tenants.acme.id }) };
  }
  async function pendingEmails(): Promise<string[]> {
    const r = await call(app, 'GET', `/tenants/${tenants.acme.id}/invitations`, { token: tok.admin });
    expect(r.status).toBe(200);
    return r.body.items.map((i: { email: string }) => i.email).sort();
  }

  it("an admin's pending invitations end when they are demoted, removed or deleted; others' stay", async () => {
    const cases = [
      { who: 'demoted', end: (id: string) => call(app, 'PATCH', `${base}/${id}`, { token: tok.admin, body: { role: 'agent' } }) },
      { who: 'removed', end: (id: string) => call(app, 'DELETE', `${base}/${id}`, { token: tok.admin }) },
      { who: 'leaving', end: (id: string, token: string) => call(app, 'DELETE', `${base}/${id}`, { token }) },
      { who: 'deleted', end: (id: string) => db.sql`delete from public.users where id = ${id}`.then(() => ({ status: 204 })) },
      // Disabled by a platform admin: still a member, but no longer able to sign in.
      { who: 'disabled', end: (id: string) => db.sql`update public.users set status = 'disabled' where id = ${id}`.then(() => ({ status: 204 })) },
    ];
    for (const { who, end } of cases) {
      const admin = await extraAdmin(`${who}.admin@acme.test`);
      const alias = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
        token: admin.token,
        body: { email: `${who}.alias@elsewhere.test`, role: 'admin' },
      });
      expect(alias.status, who).toBe(201);
      const colleague = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
        token: tok.admin,
        body: { email: `${who}.colleague@acme.test` },
      });
      expect(colleague.status, who).toBe(201);
      expect(await pendingEmails(), who).toContain(`${who}.alias@elsewhere.test`);

      const ended = await end(admin.id, admin.token);
      expect([200, 204], who).toContain(ended.status);
      expect(await pendingEmails(), who).not.toContain(`${who}.alias@elsewhere.test`);
      expect(await pendingEmails(), who).toContain(`${who}.colleague@acme.test`);

      // The alias, once signed up, finds nothing to accept.
      const [alias2] = await db.sql`insert into public.users (email) values (${`${who}.alias@elsewhere.test`}) returning id`;
      await db
        .sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${alias2.id}, ${alias2.id})`;
      const aliasToken = await supabaseToken({ id: alias2.id, email: `${who}.alias@elsewhere.test` });
      const accept = await call(app, 'POST', `/tenants/invitations/${alias.body.id}/accept`, { token: aliasToken });
      expect([accept.status, errorCode(accept)], who).toEqual([404, 'not_found']);
      const [m] = await db.sql`select count(*)::int as n from public.memberships where user_id = ${alias2.id}`;
      expect(m.n, who).toBe(0);
    }
    // Accepted invitations are history: a demoted admin's accepted ones stay.
    const admin = await extraAdmin('history.admin@acme.test');
    const sent = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: admin.token,
      body: { email: 'history.hire@acme.test' },
    });
    await db.sql`update public.invitations set accepted_at = now(), accepted_by = ${admin.id}
      where tenant_id = ${tenants.acme.id} and id = ${sent.body.id}`;
    expect((await call(app, 'PATCH', `${base}/${admin.id}`, { token: tok.admin, body: { role: 'user' } })).status).toBe(200);
    const [kept] = await db.sql`select count(*)::int as n from public.invitations where id = ${sent.body.id}`;
    expect(kept.n).toBe(1);
  });

  it('an invitation sent while its sender is being demoted waits for the change and is refused', async () => {
    const admin = await extraAdmin('racing.admin@acme.test');
    const holder = await db.sql.reserve();
    try {
      // The demotion, under way in another transaction.
      await holder`begin`;
      await holder`update public.memberships set role = 'agent' where tenant_id = ${tenants.acme.id} and user_id = ${admin.id}`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const sent = call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
        token: admin.token,
        body: { email: 'racing.alias@elsewhere.test', role: 'admin' },
      });
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await holder`commit`;
      const r = await sent;
      expect(r.status).toBe(403);
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }
    const [n] = await db.sql`select count(*)::int as n from public.invitations where email = 'racing.alias@elsewhere.test'`;
    expect(n.n).toBe(0);
  });

  it('an invitation sent while its sender is being disabled, or losing the platform admin role, waits for the change and is refused', async () => {
    const admin = await extraAdmin('disabling.admin@acme.test');
    const [op] = await db.sql`insert into public.users (email) values ('leaving.operator@platform.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${op.id}, ${op.id})`;
    await db.sql`insert into public.platform_admins (user_id) values (${op.id})`;
    const opToken = await supabaseToken({ id: op.id, email: 'leaving.operator@platform.test' });
    const cases = [
      { who: 'disabled', token: admin.token, change: (h: typeof db.sql) => h`update public.users set status = 'disabled' where id = ${admin.id}` },
      { who: 'former operator', token: opToken, change: (h: typeof db.sql) => h`delete from public.platform_admins where user_id = ${op.id}` },
    ];
    for (const { who, token, change } of cases) {
      const holder = await db.sql.reserve();
      const alias = `${who.replace(' ', '.')}.alias@elsewhere.test`;
      try {
        await holder`begin`;
        await change(holder);
        const [{ pid }] = await holder`select pg_backend_pid() as pid`;
        const sent = call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, { token, body: { email: alias, role: 'admin' } });
        expect(await someoneWaitsFor(db.sql, pid), who).toBe(true);
        await holder`commit`;
        const r = await sent;
        expect(r.status, who).toBe(403);
      } finally {
        await holder`rollback`.catch(() => undefined);
        holder.release();
      }
      const [n] = await db.sql`select count(*)::int as n from public.invitations where email = ${alias}`;
      expect(n.n, who).toBe(0);
    }
    await db.sql`delete from public.users where id in (${admin.id}, ${op.id})`;
  });

  it('an invitation sent while its sender is being retired waits and is refused: no deadlock with the retirement', async () => {
    const admin = await extraAdmin('retiring.admin@acme.test');
    const holder = await db.sql.reserve();
    try {
      // As private.retire_identity does: the person's row first, then their memberships.
      await holder`begin`;
      await holder`select 1 from public.users where id = ${admin.id} for no key update`;
      const [{ pid }] = await holder`select pg_backend_pid() as pid`;
      const sent = call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
        token: admin.token,
        body: { email: 'retiring.alias@elsewhere.test', role: 'admin' },
      });
      expect(await someoneWaitsFor(db.sql, pid)).toBe(true);
      await holder`set local lock_timeout = '3s'`;
      await holder`delete from public.memberships where user_id = ${admin.id}`;
      await holder`update public.users set status = 'deleted', deleted_at = now() where id = ${admin.id}`;
      await holder`commit`;
      const r = await sent;
      expect(r.status, JSON.stringify(r.body)).toBe(403);
    } finally {
      await holder`rollback`.catch(() => undefined);
      holder.release();
    }
    const [n] = await db.sql`select count(*)::int as n from public.invitations where email = 'retiring.alias@elsewhere.test'`;
    expect(n.n).toBe(0);
  });

  it('an expired invitation is not pending: not listed, not accepted, and inviting the address again replaces it', async () => {
    const [old] = await db.sql`
      insert into public.invitations (tenant_id, email, role, expires_at)
      values (${tenants.acme.id}, 'late@acme.test', 'admin', now() - interval '1 day') returning id`;
    expect(await pendingEmails()).not.toContain('late@acme.test');
    const again = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: tok.admin,
      body: { email: 'Late@acme.test', role: 'user' },
    });
    expect(again.status).toBe(201);
    expect(again.body).toMatchObject({ email: 'late@acme.test', role: 'user', accepted_at: null });
    expect(await pendingEmails()).toContain('late@acme.test');
    const rows = await db.sql`select id from public.invitations where tenant_id = ${tenants.acme.id} and email = 'late@acme.test'`;
    expect(rows.map((r) => r.id)).toEqual([again.body.id]);
    expect(again.body.id).not.toBe(old.id);
    // One that has not expired still refuses a second one (409), as before.
    const dup = await call(app, 'POST', `/tenants/${tenants.acme.id}/invitations`, {
      token: tok.admin,
      body: { email: 'late@acme.test' },
    });
    expect([dup.status, errorCode(dup)]).toEqual([409, 'already_exists']);
    // Another tenant's admin inviting the same address replaces nothing of acme's.
    const [gone] = await db.sql`
      insert into public.invitations (tenant_id, email, expires_at)
      values (${tenants.acme.id}, 'gone@acme.test', now() - interval '1 day') returning id`;
    const globex = await call(app, 'POST', `/tenants/${tenants.globex.id}/invitations`, {
      token: tok.globexAdmin,
      body: { email: 'gone@acme.test' },
    });
    expect(globex.status).toBe(201);
    const [kept] = await db.sql`select count(*)::int as n from public.invitations where id = ${gone.id}`;
    expect(kept.n).toBe(1);
  });

  it("a platform admin's invitations into tenants they are not an admin of end when they stop being a platform admin", async () => {
    const [op] = await db.sql`insert into public.users (email) values ('former.operator@platform.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${op.id}, ${op.id})`;
    await db.sql`insert into public.platform_admins (user_id) values (${op.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.globex.id}, ${op.id}, 'admin')`;
    const opToken = await supabaseToken({ id: op.id, email: 'former.operator@platform.test' });
    const into = async (tenantId: string, email: string) => {
      const r = await call(app, 'POST', `/tenants/${tenantId}/invitations`, { token: opToken, body: { email, role: 'admin' } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return r.body.id as string;
    };
    const inAcme = await into(tenants.acme.id, 'operator.alias@elsewhere.test');
    const inGlobex = await into(tenants.globex.id, 'operator.hire@globex.test');
    await db.sql`delete from public.platform_admins where user_id = ${op.id}`;
    const left = await db.sql`select id from public.invitations where id in (${inAcme}, ${inGlobex})`;
    // Gone where only the platform role backed it; kept where they are an admin themselves.
    expect(left.map((r) => r.id)).toEqual([inGlobex]);
    await db.sql`delete from public.users where id = ${op.id}`;
  });

  it('never removes or demotes the last admin', async () => {
    // An admin who cannot sign in (disabled) does not count.
    const disabled = await extraAdmin('offline.admin@acme.test');
    await db.sql`update public.users set status = 'disabled' where id = ${disabled.id}`;
    onTestFinished(() => db.sql`delete from public.users where id = ${disabled.id}`.then(() => {}));
    const demote = await call(app, 'PATCH', `${base}/${users.acmeAdmin.id}`, { token: tok.admin, body: { role: 'agent' } });
    expect([demote.status, errorCode(demote)]).toEqual([409, 'last_admin']);
    const remove = await call(app, 'DELETE', `${base}/${users.acmeAdmin.id}`, { token: tok.admin });
    expect([remove.status, errorCode(remove)]).toEqual([409, 'last_admin']);
    const [m] = await db
      .sql`select role from public.memberships where user_id = ${users.acmeAdmin.id} and tenant_id = ${tenants.acme.id}`;
    expect(m.role).toBe('admin');
  });

  it('agents and users cannot manage members', async () => {
    for (const role of ['agent', 'user']) {
      expect(
        (await call(app, 'PATCH', `${base}/${users.acmeUser.id}`, { token: tok[role], body: { role: 'admin' } })).status,
        role,
      ).toBe(403);
      expect((await call(app, 'DELETE', `${base}/${users.acmeUser.id}`, { token: tok[role] })).status, role).toBe(403);
    }
  });
});

describe('teams', () => {
  const base = `/tenants/${tenants.acme.id}/teams`;

  it('a duplicate team name (in any case) is a 409 naming `name`, and changes nothing', async () => {
    const before = await tenantFingerprint(tenants.acme.id);
    const dup = await call(app, 'POST', base, { token: tok.admin, body: { name: 'support tier 1', department: 'sales' } });
    expect([dup.status, errorCode(dup)]).toEqual([409, 'already_exists']);
    expect(dup.body.error).toEqual({
      code: 'already_exists',
      message: 'name is already taken',
      details: { constraint: 'teams_tenant_name_key', fields: [{ field: 'name', message: 'is already taken' }] },
    });
    expect(await tenantFingerprint(tenants.acme.id)).toBe(before);

    // Renaming another team to the taken name is the same 409, and leaves it as it was.
    const other = await call(app, 'POST', base, { token: tok.admin, body: { name: 'Escalations', department: 'support' } });
    expect(other.status).toBe(201);
    const beforeRename = await tenantFingerprint(tenants.acme.id);
    const rename = await call(app, 'PATCH', `${base}/${other.body.id}`, { token: tok.admin, body: { name: 'SUPPORT TIER 1' } });
    expect([rename.status, rename.body.error.details.fields]).toEqual([409, [{ field: 'name', message: 'is already taken' }]]);
    expect(await tenantFingerprint(tenants.acme.id)).toBe(beforeRename);
    expect((await call(app, 'DELETE', `${base}/${other.body.id}`, { token: tok.admin })).status).toBe(204);
  });

  it("a team with open tickets is not deleted (409 naming how many), on either path; settled ones do not hold it", async () => {
    const team = await call(app, 'POST', base, { token: tok.admin, body: { name: 'Short-lived', department: 'support' } });
    expect(team.status).toBe(201);
    const [open] = await db.sql`insert into public.tickets (tenant_id, title, team_id, created_by)
      values (${tenants.acme.id}, 'Waiting on the team', ${team.body.id}, ${users.acmeUser.id}) returning id`;
    await db.sql`insert into public.tickets (tenant_id, title, team_id, created_by, status)
      values (${tenants.acme.id}, 'Done already', ${team.body.id}, ${users.acmeUser.id}, 'open')`;
    await db.sql`update public.tickets set status = 'resolved' where title = 'Done already' and team_id = ${team.body.id}`;
    const refused = await call(app, 'DELETE', `${base}/${team.body.id}`, { token: tok.admin });
    expect([refused.status, errorCode(refused), refused.body.error.details]).toEqual([409, 'team_has_open_tickets', { open_tickets: 1 }]);
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, tenants.acme.id), (tx) =>
      tx`delete from public.teams where id = ${team.body.id} returning id`);
    expect(direct.ok || direct.error.code).toBe('PT409');
    expect((await db.sql`select team_id from public.tickets where id = ${open.id}`)[0].team_id).toBe(team.body.id);
    // Moved to another team, the ticket no longer holds it.
    await db.sql`update public.tickets set team_id = ${teams.acme} where id = ${open.id}`;
    expect((await call(app, 'DELETE', `${base}/${team.body.id}`, { token: tok.admin })).status).toBe(204);
  });

  it("a settled ticket of a deleted team, live again (reopened or restored), goes to its department's receiving team", async () => {
    const receiver = await call(app, 'POST', base, { token: tok.admin, body: { name: 'Marketing desk', department: 'marketing', receives_department_tickets: true } });
    expect(receiver.status, JSON.stringify(receiver.body)).toBe(201);
    const gone = await call(app, 'POST', base, { token: tok.admin, body: { name: 'Campaign squad', department: 'marketing' } });
    const [reopened, restored, moved] = await db.sql`insert into public.tickets (tenant_id, title, team_id, created_by, department) values
      (${tenants.acme.id}, 'Reopened later', ${gone.body.id}, ${users.acmeUser.id}, 'marketing'),
      (${tenants.acme.id}, 'Restored later', ${gone.body.id}, ${users.acmeUser.id}, 'marketing'),
      (${tenants.acme.id}, 'Moved off on purpose', ${gone.body.id}, ${users.acmeUser.id}, 'marketing') returning id`;
    await db.sql`update public.tickets set status = 'resolved' where id = ${reopened.id}`;
    await db.sql`update public.tickets set deleted_at = now() where id = ${restored.id}`; // open, deleted: holds no team
    await db.sql`update public.tickets set team_id = null where id = ${moved.id}`;
    expect((await call(app, 'DELETE', `${base}/${gone.body.id}`, { token: tok.admin })).status).toBe(204);
    const teamOf = async (id: string) => (await db.sql`select team_id from public.tickets where id = ${id}`)[0].team_id;
    expect(await teamOf(reopened.id)).toBeNull();
    // The customer writes again: reopened, and routed as a new ticket of its department is.
    await db.sql`update public.tickets set status = 'open' where id = ${reopened.id}`;
    expect(await teamOf(reopened.id)).toBe(receiver.body.id);
    const [{ n }] = await db.sql`select count(*)::int as n from public.ticket_events where ticket_id = ${reopened.id} and type = 'team_changed'`;
    expect(n).toBeGreaterThan(0);
    // Restored from deletion, open: the same.
    await db.sql`update public.tickets set deleted_at = null where id = ${restored.id}`;
    expect(await teamOf(restored.id)).toBe(receiver.body.id);
    // A live ticket taken off its team on purpose stays so at its next change.
    await db.sql`update public.tickets set status = 'pending' where id = ${moved.id}`;
    expect(await teamOf(moved.id)).toBeNull();
    await db.sql`delete from public.tickets where id in (${reopened.id}, ${restored.id}, ${moved.id})`;
    expect((await call(app, 'DELETE', `${base}/${receiver.body.id}`, { token: tok.admin })).status).toBe(204);
  });

  it('teams are staff: a customer is refused (409 not_staff) as member or lead, and an agent demoted to customer leaves every team and lead', async () => {
    const team = await call(app, 'POST', base, { token: tok.admin, body: { name: 'Staff only', department: 'support' } });
    const before = await tenantFingerprint(tenants.acme.id);
    const customer = await call(app, 'POST', `${base}/${team.body.id}/members`, { token: tok.admin, body: { user_id: users.acmeUser.id } });
    expect([customer.status, errorCode(customer), customer.body.error.details]).toEqual([409, 'not_staff', { user_id: users.acmeUser.id }]);
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, tenants.acme.id), (tx) =>
      tx`insert into public.team_members (tenant_id, team_id, user_id) values (${tenants.acme.id}, ${team.body.id}, ${users.acmeUser.id})`);
    expect(direct.ok || direct.error.code).toBe('PT409');
    expect(await tenantFingerprint(tenants.acme.id)).toBe(before);
    // An agent on two teams, demoted: off both (promoted again, on none).
    const [agent] = await db.sql`insert into public.users (email) values ('demoted@acme.test') returning id`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${tenants.acme.id}, ${agent.id}, 'agent')`;
    for (const id of [team.body.id, teams.acme]) {
      expect((await call(app, 'POST', `${base}/${id}/members`, { token: tok.admin, body: { user_id: agent.id } })).status).toBe(201);
    }
    const onTeams = async () => (await db.sql`select count(*)::int as n from public.team_members where user_id = ${agent.id}`)[0].n;
    expect(await onTeams()).toBe(2);
    // ... and leads one; a customer is no lead (20261207198000).
    const lead = await call(app, 'PATCH', `${base}/${team.body.id}`, { token: tok.admin, body: { lead_user_id: agent.id } });
    expect(lead.status, JSON.stringify(lead.body)).toBe(200);
    const customerLead = await call(app, 'PATCH', `${base}/${team.body.id}`, { token: tok.admin, body: { lead_user_id: users.acmeUser.id } });
    expect([customerLead.status, errorCode(customerLead)]).toEqual([409, 'not_staff']);
    expect((await call(app, 'PATCH', `/tenants/${tenants.acme.id}/members/${agent.id}`, { token: tok.admin, body: { role: 'user' } })).status).toBe(200);
    expect(await onTeams()).toBe(0);
    expect((await db.sql`select lead_user_id from public.teams where id = ${team.body.id}`)[0].lead_user_id).toBeNull();
    // Promoted again, they are staff but on no team until an admin adds them.
    expect((await call(app, 'PATCH', `/tenants/${tenants.acme.id}/members/${agent.id}`, { token: tok.admin, body: { role: 'agent' } })).status)
      .toBe(200);
    expect(await onTeams()).toBe(0);
    await db.sql`delete from public.memberships where user_id = ${agent.id}`;
    await db.sql`delete from public.users where id = ${agent.id}`;
    expect((await call(app, 'DELETE', `${base}/${team.body.id}`, { token: tok.admin })).status).toBe(204);
  });

  it('admins create, read, update and delete teams and their members', async () => {
    const t = await call(app, 'POST', base, {
      token: tok.admin,
      body: { name: 'Billing', department: 'support', lead_user_id: users.acmeAgent.id },
    });
    expect(t.status).toBe(201);
    expect(t.body).toMatchObject({
      name: 'Billing',
      department: 'support',
      lead_user_id: users.acmeAgent.id,
      tenant_id: tenants.acme.id,
    });
    const dup = await call(app, 'POST', base, { token: tok.admin, body: { name: 'BILLING', department: 'sales' } });
    expect([dup.status, errorCode(dup)]).toEqual([409, 'already_exists']);

    const add = await call(app, 'POST', `${base}/${t.body.id}/members`, {
      token: tok.admin,
      body: { user_id: users.acmeAgent.id },
    });
    expect(add.status).toBe(201);
    const dupMember = await call(app, 'POST', `${base}/${t.body.id}/members`, {
      token: tok.admin,
      body: { user_id: users.acmeAgent.id },
    });
    expect([dupMember.status, errorCode(dupMember)]).toEqual([409, 'already_exists']);
    expect(dupMember.body.error).toMatchObject({
      message: 'The combination of team_id and user_id is already taken',
      details: {
        fields: [
          { field: 'team_id', message: 'is already taken together with user_id' },
          { field: 'user_id', message: 'is already taken together with team_id' },
        ],
      },
    });
    const read = await call(app, 'GET', `${base}/${t.body.id}`, { token: tok.user });
    expect(read.body.members.map((m: { user_id: string }) => m.user_id)).toEqual([users.acmeAgent.id]);

    const upd = await call(app, 'PATCH', `${base}/${t.body.id}`, {
      token: tok.admin,
      body: { description: 'Invoices', lead_user_id: null },
    });
    expect(upd.body).toMatchObject({ description: 'Invoices', lead_user_id: null, name: 'Billing' });

    expect((await call(app, 'DELETE', `${base}/${t.body.id}/members/${users.acmeAgent.id}`, { token: tok.admin })).status).toBe(
      204,
    );
    expect((await call(app, 'DELETE', `${base}/${t.body.id}`, { token: tok.admin })).status).toBe(204);
    expect((await call(app, 'GET', `${base}/${t.body.id}`, { token: tok.admin })).status).toBe(404);
  });

  it('admins configure automatic assignment and agents’ availability', async () => {
    const t = await call(app, 'POST', base, {
      token: tok.admin,
      body: { name: 'Auto', department: 'support', auto_assign: 'round_robin' },
    });
    expect(t.body.auto_assign).toBe('round_robin');
    const u = await call(app, 'PATCH', `${base}/${t.body.id}`, { token: tok.admin, body: { auto_assign: 'least_open' } });
    expect(u.body.auto_assign).toBe('least_open');
    const bad = await call(app, 'PATCH', `${base}/${t.body.id}`, { token: tok.admin, body: { auto_assign: 'random' } });
    expect(bad.status).toBe(422);
    const members = `/tenants/${tenants.acme.id}/members/${users.acmeAgent.id}`;
    const away = await call(app, 'PATCH', members, { token: tok.admin, body: { available: false } });
    expect(away.body).toMatchObject({ role: 'agent', available: false });
    expect((await call(app, 'PATCH', members, { token: tok.agent, body: { available: true } })).status).toBe(403);
    expect((await call(app, 'PATCH', members, { token: tok.admin, body: { available: true } })).body.available).toBe(true);
  });

  it('refuses a lead or member who is not in this tenant (composite keys)', async () => {
    const lead = await call(app, 'POST', base, {
      token: tok.admin,
      body: { name: 'Foreign lead', department: 'sales', lead_user_id: users.globexAgent.id },
    });
    expect([lead.status, errorCode(lead)]).toEqual([422, 'validation_failed']);
    expect(lead.body.error.details.fields).toEqual([{ field: 'lead_user_id', message: 'does not exist in this tenant' }]);
    const member = await call(app, 'POST', `${base}/${teams.acme}/members`, {
      token: tok.admin,
      body: { user_id: users.globexUser.id },
    });
    expect(member.status).toBe(422);
  });

  it('agents and users read teams but cannot change them', async () => {
    for (const role of ['agent', 'user']) {
      expect((await call(app, 'GET', base, { token: tok[role] })).status).toBe(200);
      expect((await call(app, 'POST', base, { token: tok[role], body: { name: 'X', department: 'sales' } })).status).toBe(403);
      expect((await call(app, 'DELETE', `${base}/${teams.acme}`, { token: tok[role] })).status).toBe(403);
    }
  });
});

describe('audit trail', () => {
  it('admins page through their tenant’s changes; others may not', async () => {
    // Three changes at least: a second page there must be.
    for (const audited of [1, 2, 3]) {
      await call(app, 'PATCH', `/tenants/${tenants.acme.id}`, { token: tok.admin, body: { settings: { audited } } });
    }
    const r = await call(app, 'GET', `/tenants/${tenants.acme.id}/audit?limit=2&table_name=tenants`, { token: tok.admin });
    expect(r.status).toBe(200);
    expect(r.body.items[0]).toMatchObject({
      table_name: 'tenants',
      action: 'UPDATE',
      actor_user_id: users.acmeAdmin.id,
      changed_fields: ['settings'],
    });
    expect(typeof r.body.next).toBe('string');
    const next = await call(app, 'GET', `/tenants/${tenants.acme.id}/audit?limit=2&table_name=tenants&cursor=${r.body.next}`, {
      token: tok.admin,
    });
    expect(Number(next.body.items[0].id)).toBeLessThan(Number(r.body.items.at(-1).id));
    for (const role of ['agent', 'user']) {
      expect((await call(app, 'GET', `/tenants/${tenants.acme.id}/audit`, { token: tok[role] })).status).toBe(403);
    }
  });

  it("shows admins no one else's personal macros, canned responses or notifications", async () => {
    const acme = tenants.acme.id;
    const [theirs] = await db.sql`insert into public.macros (tenant_id, scope, owner_id, name, actions)
      values (${acme}, 'personal', ${users.acmeAgent.id}, 'My private macro', '[{"type": "set_priority", "priority": "low"}]') returning id`;
    const [mine] = await db.sql`insert into public.macros (tenant_id, scope, owner_id, name, actions)
      values (${acme}, 'personal', ${users.acmeAdmin.id}, 'Admin own macro', '[{"type": "set_priority", "priority": "low"}]') returning id`;
    const [shared] = await db.sql`insert into public.macros (tenant_id, scope, name, actions)
      values (${acme}, 'tenant', 'Shared macro', '[{"type": "set_priority", "priority": "low"}]') returning id`;
    const [cannedTheirs] = await db.sql`insert into public.canned_responses (tenant_id, scope, owner_id, short_code, title, body)
      values (${acme}, 'personal', ${users.acmeAgent.id}, 'mine', 'Mine', 'Private words') returning id`;
    const [note] = await db.sql`insert into public.notifications (tenant_id, user_id, type)
      values (${acme}, ${users.acmeAgent.id}, 'mentioned') returning id`;
    await db.sql`update public.macros set name = 'My private macro, renamed' where id = ${theirs.id}`;
    const keys = async (table: string) => {
      const r = await call(app, 'GET', `/tenants/${acme}/audit?limit=100&table_name=${table}`, { token: tok.admin });
      expect(r.status).toBe(200);
      return r.body.items.map((e: { record_key: { id: string } }) => e.record_key.id);
    };
    const macros = await keys('macros');
    expect(macros).toEqual(expect.arrayContaining([mine.id, shared.id]));
    expect(macros).not.toContain(theirs.id);
    expect(await keys('canned_responses')).not.toContain(cannedTheirs.id);
    expect(await keys('notifications')).not.toContain(note.id);
    // The trail keeps them: the owner's own reads are not this route's, a platform admin sees all.
    const all = await call(app, 'GET', `/tenants/${acme}/audit?limit=100&table_name=macros`, { token: tok.super });
    expect(all.body.items.map((e: { record_key: { id: string } }) => e.record_key.id)).toContain(theirs.id);
    await db.sql`delete from public.macros where id in ${db.sql([theirs.id, mine.id, shared.id])}`;
    await db.sql`delete from public.canned_responses where id = ${cannedTheirs.id}`;
    await db.sql`delete from public.notifications where id = ${note.id}`;
  });

  it('pages newest first by the numeric id, across pages', async () => {
    const ids: number[] = [];
    let cursor: string | null = null;
    do {
      const r: { body: { items: { id: string }[]; next: string | null } } = await call(
        app,
        'GET',
        `/tenants/${tenants.acme.id}/audit?limit=7${cursor ? `&cursor=${cursor}` : ''}`,
        { token: tok.admin },
      );
      ids.push(...r.body.items.map((x) => Number(x.id)));
      cursor = r.body.next;
    } while (cursor);
    expect(ids.length).toBeGreaterThan(20); // spans one- and two-digit ids
    expect(ids).toEqual([...ids].sort((a, b) => b - a));
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('cuts a page short once its row images pass the size bound, and the cursor loses nothing', async () => {
    // Five entries of ~0.9 MB each (random base64 that compression cannot shrink): the
    // first page holds the three that start below 2 MB, not all five.
    const big = Array.from({ length: 5 }, () => randomBytes(675_000).toString('base64'));
    const inserted = await db.sql`
      insert into public.audit_logs (tenant_id, table_name, record_key, action, actor_role, new_data)
      select ${tenants.acme.id}, 'size_probe', jsonb_build_object('n', n), 'INSERT', 'postgres', jsonb_build_object('blob', b)
      from unnest(${big}::text[]) with ordinality u(b, n)
      returning id::text`;
    const [{ stored }] = await db.sql`
      select min(pg_column_size(new_data))::int as stored from public.audit_logs where table_name = 'size_probe'`;
    expect(stored).toBeGreaterThan(AUDIT_PAGE_BYTES / 3);

    const pages: { items: { id: string; new_data: { blob: string } }[]; next: string | null }[] = [];
    let cursor: string | null = null;
    do {
      const r = await call(
        app,
        'GET',
        `/tenants/${tenants.acme.id}/audit?limit=10&table_name=size_probe${cursor ? `&cursor=${cursor}` : ''}`,
        { token: tok.admin },
      );
      expect(r.status).toBe(200);
      pages.push(r.body);
      cursor = r.body.next;
    } while (cursor);
    expect(pages.map((p) => p.items.length)).toEqual([3, 2]);
    const ids = pages.flatMap((p) => p.items.map((x) => x.id));
    expect(ids).toEqual(inserted.map((r) => r.id).reverse());
    expect(pages.flatMap((p) => p.items.map((x) => x.new_data.blob))).toEqual([...big].reverse());
  });

  // Six 1 MB documents are chunked and indexed for search as they are written (~17 s alone
  // on two cores): a longer timeout than the suite's, so a busy machine does not fail it.
  it('bounds a page by the images as sent, not as compressed: edits of a repetitive 1 MB document', { timeout: 120_000 }, async () => {
    // The same paragraph over and over compresses ~85x when stored; the page must count it
    // as the ~2 MB (old and new content) each entry sends.
    const [kb] = await db
      .sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${tenants.acme.id}, 'Size KB') returning id`;
    const text = (n: number) => `Version ${n}. ` + 'Opening hours are nine to five on weekdays. '.repeat(22_000);
    const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${tenants.acme.id}, ${kb.id}, 'Hours', ${text(0)}) returning id`;
    for (let n = 1; n <= 5; n++) await db.sql`update public.kb_documents set content = ${text(n)} where id = ${doc.id}`;
    const [{ stored, written }] = await db.sql`
      select max(pg_column_size(old_data) + pg_column_size(new_data))::int as stored, min(image_bytes) as written
      from public.audit_logs where table_name = 'kb_documents' and action = 'UPDATE' and record_key ->> 'id' = ${doc.id}`;
    expect(stored).toBeLessThan(200_000);
    expect(written).toBeGreaterThan(1_900_000);
    const r = await call(app, 'GET', `/tenants/${tenants.acme.id}/audit?limit=100&table_name=kb_documents`, { token: tok.admin });
    expect(r.status).toBe(200);
    // Each entry is ~1.9 MB as sent: the second starts below 2 MB, the third past it.
    expect(r.body.items.map((x: { action: string }) => x.action)).toEqual(['UPDATE', 'UPDATE']);
    expect(r.body.next).not.toBeNull();
    expect(JSON.stringify(r.body).length).toBeLessThan(3 * AUDIT_PAGE_BYTES);
  });
});

describe('validation: 422 naming the field, or 400 for broken JSON, and nothing written', () => {
  const acme = tenants.acme.id;
  const cases: [string, string, string, unknown, string][] = [
    ['POST', '/tenants', 'super', { name: 'X', slug: 'A' }, 'slug'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'ab' }, 'slug'],
    ['POST', '/tenants', 'super', { name: 'X', slug: '-abc' }, 'slug'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'a--b' }, 'slug'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'a'.repeat(64) }, 'slug'],
    ['POST', '/tenants', 'super', { name: '', slug: 'fine-slug' }, 'name'],
    ['POST', '/tenants', 'super', { name: 'X'.repeat(101), slug: 'fine-slug' }, 'name'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'fine-slug', plan: 'gold' }, 'plan'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'fine-slug', settings: [] }, 'settings'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'fine-slug', admin: { email: 'nope' } }, 'admin.email'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'fine-slug', extra: 1 }, ''],
    ['PATCH', `/tenants/${acme}`, 'admin', {}, ''],
    ['PATCH', `/tenants/${acme}`, 'admin', { name: 42 }, 'name'],
    ['POST', `/tenants/${acme}/invitations`, 'admin', { email: 'not-an-email' }, 'email'],
    ['POST', `/tenants/${acme}/invitations`, 'admin', { email: 'a@b.test', role: 'owner' }, 'role'],
    ['POST', `/tenants/${acme}/invitations`, 'admin', { email: 'a@b.test', expires_in_days: 365 }, 'expires_in_days'],
    ['POST', `/tenants/invitations/not-a-uuid/accept`, 'user', undefined, 'invitationId'],
    ['POST', '/tenants', 'super', { name: 'Nul\u0000Corp', slug: 'fine-slug' }, 'name'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'fine-slug', settings: { k: 'a\u0000b' } }, 'settings'],
    ['POST', '/tenants', 'super', { name: 'X', slug: 'fine-slug', settings: { big: 'x'.repeat(17_000) } }, 'settings'],
    ['PATCH', `/tenants/${acme}/teams/${teams.acme}`, 'admin', { description: 'a\u0000' }, 'description'],
    [
      'GET',
      `/tenants/${acme}/audit?cursor=${Buffer.from('["99999999999999999999"]').toString('base64url')}`,
      'admin',
      undefined,
      'cursor',
    ],
    ['GET', `/tenants?cursor=${Buffer.from('["a\u0000", "x"]').toString('base64url')}`, 'super', undefined, 'cursor'],
    ['GET', `/tenants?cursor=${Buffer.from('["a", "not-a-uuid"]').toString('base64url')}`, 'super', undefined, 'cursor'],
    ['PATCH', `/tenants/${acme}/members/${users.acmeUser.id}`, 'admin', { role: 'super_admin' }, 'role'],
    ['POST', `/tenants/${acme}/teams`, 'admin', { name: 'T' }, 'department'],
    ['POST', `/tenants/${acme}/teams`, 'admin', { name: 'T', department: 'legal' }, 'department'],
    ['POST', `/tenants/${acme}/teams`, 'admin', { name: 'T', department: 'sales', lead_user_id: 'nope' }, 'lead_user_id'],
    ['POST', `/tenants/${acme}/teams`, 'admin', { name: 'T', department: 'sales', description: 'x'.repeat(1001) }, 'description'],
    ['PATCH', `/tenants/${acme}/teams/${teams.acme}`, 'admin', { department: 'legal' }, 'department'],
    ['POST', `/tenants/${acme}/teams/${teams.acme}/members`, 'admin', { user_id: 'x' }, 'user_id'],
    ['GET', `/tenants?limit=0`, 'super', undefined, 'limit'],
    ['GET', `/tenants?limit=1000`, 'super', undefined, 'limit'],
    ['GET', `/tenants?status=gone`, 'super', undefined, 'status'],
    ['GET', `/tenants/not-a-uuid`, 'super', undefined, 'tenantId'],
    ['GET', `/tenants/${acme}/audit?action=HACK`, 'admin', undefined, 'action'],
  ];

  it.each(cases)('%s %s as %s with %j → 422 on "%s"', async (method, path, role, body, field) => {
    const before = await tenantFingerprint(acme);
    const r = await call(app, method, path, { token: tok[role], body });
    expect(r.status).toBe(422);
    expect(errorCode(r)).toBe('validation_failed');
    const fields = r.body.error.details.fields.map((f: { field: string }) => f.field);
    if (field) expect(fields).toContain(field);
    expect(await tenantFingerprint(acme)).toBe(before);
    const [{ n }] = await db.sql`select count(*)::int as n from public.tenants where slug = 'fine-slug'`;
    expect(n).toBe(0);
  });

  it('broken JSON is a 400 and writes nothing', async () => {
    const before = await tenantFingerprint(acme);
    const r = await call(app, 'POST', `/tenants/${acme}/teams`, { token: tok.admin, rawBody: '{"name": ' });
    expect([r.status, errorCode(r)]).toEqual([400, 'invalid_json']);
    expect(await tenantFingerprint(acme)).toBe(before);
    // Not UTF-8 (a Windows-1252 "é"): refused, not stored with U+FFFD in its place.
    const latin1 = new Uint8Array([...Buffer.from('{"name": "Ren'), 0xe9, ...Buffer.from('e team", "department": "sales"}')]);
    const bytes = await call(app, 'POST', `/tenants/${acme}/teams`, { token: tok.admin, rawBody: latin1 });
    expect([bytes.status, errorCode(bytes)]).toEqual([400, 'invalid_json']);
    expect(await tenantFingerprint(acme)).toBe(before);
  });
});

// ---------------------------------------------------------------- isolation

type Ids = { tenant: string; team: string; user: string; invitation: string };
const invitations = { acme: '40000000-0000-4000-8000-000000000001', globex: '40000000-0000-4000-8000-000000000002' };
const acmeIds: Ids = { tenant: tenants.acme.id, team: teams.acme, user: users.acmeUser.id, invitation: invitations.acme };
const globexIds: Ids = {
  tenant: tenants.globex.id,
  team: teams.globex,
  user: users.globexUser.id,
  invitation: invitations.globex,
};

/** Every tenant-scoped route of the function, with a body that would be valid. */
const endpoints: { method: string; path: (i: Ids) => string; body?: (i: Ids) => unknown }[] = [
  { method: 'GET', path: (i) => `/tenants/${i.tenant}` },
  { method: 'PATCH', path: (i) => `/tenants/${i.tenant}`, body: () => ({ name: 'Pwned' }) },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/suspend` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/resume` },
  { method: 'DELETE', path: (i) => `/tenants/${i.tenant}` },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/members` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/invitations`, body: () => ({ email: 'mole@evil.test', role: 'admin' }) },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/invitations` },
  { method: 'DELETE', path: (i) => `/tenants/${i.tenant}/invitations/${i.invitation}` },
  { method: 'PATCH', path: (i) => `/tenants/${i.tenant}/members/${i.user}`, body: () => ({ role: 'admin' }) },
  { method: 'DELETE', path: (i) => `/tenants/${i.tenant}/members/${i.user}` },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/teams` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/teams`, body: () => ({ name: 'Moles', department: 'sales' }) },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/teams/${i.team}` },
  { method: 'PATCH', path: (i) => `/tenants/${i.tenant}/teams/${i.team}`, body: () => ({ name: 'Pwned' }) },
  { method: 'DELETE', path: (i) => `/tenants/${i.tenant}/teams/${i.team}` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/teams/${i.team}/members`, body: (i) => ({ user_id: i.user }) },
  { method: 'DELETE', path: (i) => `/tenants/${i.tenant}/teams/${i.team}/members/${i.user}` },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/audit` },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/services` },
  { method: 'PUT', path: (i) => `/tenants/${i.tenant}/services/chatwoot`, body: () => ({ enabled: true }) },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/services/chatwoot/retry` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/services/chatwoot/credentials` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/services/chatwoot/rotate-credentials` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/webhooks`, body: () => ({ url: 'http://127.0.0.1:9/mole' }) },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/webhooks` },
  { method: 'PATCH', path: (i) => `/tenants/${i.tenant}/webhooks/${i.invitation}`, body: () => ({ enabled: false }) },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/webhooks/${i.invitation}/rotate-secret` },
  { method: 'DELETE', path: (i) => `/tenants/${i.tenant}/webhooks/${i.invitation}` },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/webhooks/${i.invitation}/deliveries` },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/webhooks/${i.invitation}/deliveries/retry`, body: () => ({ delivery_id: 1 }) },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/usage` },
  { method: 'PATCH', path: (i) => `/tenants/${i.tenant}/entitlements`, body: () => ({ limits: { members: 1_000_000 } }) },
  { method: 'POST', path: (i) => `/tenants/${i.tenant}/api-keys`, body: () => ({ name: 'mole', scopes: ['tickets:read'] }) },
  { method: 'GET', path: (i) => `/tenants/${i.tenant}/api-keys` },
  { method: 'DELETE', path: (i) => `/tenants/${i.tenant}/api-keys/${i.invitation}` },
];

describe('isolation', () => {
  it('covers every tenant-scoped route of the OpenAPI document', async () => {
    const doc = await call(app, 'GET', '/tenants/openapi.json');
    const documented = Object.entries(doc.body.paths as Record<string, Record<string, unknown>>)
      .flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`))
      .filter((r) => r.includes('{tenantId}'))
      .sort();
    const tested = endpoints
      .map((e) =>
        `${e.method} ${e.path({ tenant: '{tenantId}', team: '{teamId}', user: '{userId}', invitation: '{invitationId}' })}`
          .replace('/services/chatwoot', '/services/{service}').replace('/webhooks/{invitationId}', '/webhooks/{endpointId}')
          .replace('/api-keys/{invitationId}', '/api-keys/{keyId}')
      )
      .sort();
    expect(tested).toEqual(documented);
  });

  for (const role of ['admin', 'agent', 'user', 'adminUnpinned'] as const) {
    it(`${role} of acme gets 404 for every route with globex ids, and globex is untouched`, async () => {
      const before = await tenantFingerprint(tenants.globex.id);
      for (const e of endpoints) {
        const r = await call(app, e.method, e.path(globexIds), { token: tok[role], body: e.body?.(globexIds) });
        expect([r.status, errorCode(r)], `${e.method} ${e.path(globexIds)}`).toEqual([404, 'not_found']);
        expect(JSON.stringify(r.body)).not.toContain('Globex');
      }
      expect(await tenantFingerprint(tenants.globex.id)).toBe(before);
    });
  }

  it("acme's admin gets 404 for globex's teams and members through acme's own path", async () => {
    const before = await tenantFingerprint(tenants.globex.id);
    const mixed: Ids = {
      tenant: tenants.acme.id,
      team: teams.globex,
      user: users.globexAdmin.id,
      invitation: invitations.globex,
    };
    for (const e of endpoints.filter((x) => /members\/|teams\/|invitations\/|webhooks\//.test(x.path(acmeIds)))) {
      const r = await call(app, e.method, e.path(mixed), { token: tok.admin, body: e.body?.(mixed) });
      expect(r.status, `${e.method} ${e.path(mixed)}`).toBe(404);
    }
    expect(await tenantFingerprint(tenants.globex.id)).toBe(before);
  });

  it('every route refuses a missing, forged or expired token with 401', async () => {
    const expired = await supabaseToken(users.acmeAdmin, { exp: Math.floor(Date.now() / 1000) - 120 });
    const forged = await supabaseToken(users.super, { secret: 'attacker-guessed-secret-of-32-characters!' });
    const routes = [{ method: 'GET', path: () => '/tenants/me' }, { method: 'GET', path: () => '/tenants' }, ...endpoints];
    for (const e of routes) {
      for (const token of [undefined, expired, forged]) {
        const r = await call(app, e.method, e.path(acmeIds), { token, body: e.body?.(acmeIds) });
        expect(r.status, `${e.method} ${e.path(acmeIds)}`).toBe(401);
        errorCode(r);
      }
    }
  });
});

describe('OpenAPI', () => {
  it('serves a 3.1 document generated from the request schemas', async () => {
    const doc = await call(app, 'GET', '/tenants/openapi.json');
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe('3.1.0');
    expect(doc.body.paths['/tenants/me']).toBeDefined();
    const create = doc.body.paths['/tenants'].post;
    expect(create.requestBody.content['application/json'].schema).toBeDefined();
    expect(doc.body.components.schemas.CreateTenant.properties.slug).toMatchObject({ minLength: 3, maxLength: 63 });
  });

  it('answers unknown routes in the common error shape', async () => {
    const r = await call(app, 'GET', '/tenants/nowhere/else/at/all', { token: tok.admin });
    expect([r.status, errorCode(r)]).toEqual([404, 'not_found']);
  });
});
