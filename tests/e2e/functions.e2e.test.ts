// End to end: the Deno functions server, as `npm start` runs it, driven by the real
// supabase-js client (functions.invoke) for the main flows and every auth failure.
import { createClient, FunctionsHttpError } from '@supabase/supabase-js';
import { SignJWT } from 'jose';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKey } from '../../scripts/tokens.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let server: FunctionsServer;
let anonKey: string;
let serviceKey: string;

beforeAll(async () => {
  db = await freshDatabase('e2e');
  auth = await configureAuth(db.url);
  anonKey = await apiKey('anon', TEST_JWT_SECRET);
  serviceKey = await apiKey('service_role', TEST_JWT_SECRET);
  server = await startFunctionsServer({ SUPABASE_ANON_KEY: anonKey, SUPABASE_SERVICE_ROLE_KEY: serviceKey });
}, 120_000);
afterAll(async () => {
  await server?.stop();
  await auth?.close();
  await db?.close();
});

/** A supabase-js client for an app whose signed-in user holds this token. */
function client(token?: string) {
  return createClient(server.url, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    // Node 20 has no global WebSocket; supabase-js's realtime client wants one at construction.
    realtime: { transport: WebSocket as never },
    global: token ? { headers: { Authorization: `Bearer ${token}` } } : {},
  });
}

async function failure(p: Promise<{ data: unknown; error: unknown }>): Promise<{ status: number; code: string }> {
  const { data, error } = await p;
  expect(data).toBeNull();
  expect(error).toBeInstanceOf(FunctionsHttpError);
  const res = (error as FunctionsHttpError).context as Response;
  const body = await res.json();
  return { status: res.status, code: body.error.code };
}

describe('main flows through functions.invoke', () => {
  it('a user reads who they are', async () => {
    const { data, error } = await client(await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id })).functions.invoke('tenants/me', { method: 'GET' });
    expect(error).toBeNull();
    expect(data).toMatchObject({ user: { email: users.acmeUser.email }, role: 'user', active_tenant: { slug: 'acme' } });
  });

  it('a super-admin creates a tenant with an admin; the admin builds a team', async () => {
    const sup = client(await supabaseToken(users.super));
    const created = await sup.functions.invoke('tenants', { body: { name: 'Hooli', slug: 'hooli', admin: { email: 'gavin@hooli.test' } } });
    expect(created.error).toBeNull();
    expect(created.data).toMatchObject({ slug: 'hooli', status: 'active' });
    const [gavin] = await db.sql`select id from public.users where email = 'gavin@hooli.test'`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${gavin.id}, ${gavin.id})`;

    const admin = client(await supabaseToken({ id: gavin.id, email: 'gavin@hooli.test' }));
    const team = await admin.functions.invoke(`tenants/${created.data.id}/teams`, { body: { name: 'Moonshots', department: 'technical' } });
    expect(team.error).toBeNull();
    const invite = await admin.functions.invoke(`tenants/${created.data.id}/invitations`, { body: { email: 'richard@hooli.test', role: 'agent' } });
    expect(invite.data).toMatchObject({ role: 'agent', email: 'richard@hooli.test' });
    const [richard] = await db.sql`insert into public.users (email) values ('richard@hooli.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${richard.id}, ${richard.id})`;
    const accepted = await client(await supabaseToken({ id: richard.id, email: 'richard@hooli.test' }))
      .functions.invoke(`tenants/invitations/${invite.data.id}/accept`, { method: 'POST' });
    expect(accepted.data).toEqual({ tenant_id: created.data.id, role: 'agent' });
    const member = { data: { user_id: richard.id } };
    const added = await admin.functions.invoke(`tenants/${created.data.id}/teams/${team.data.id}/members`, { body: { user_id: member.data.user_id } });
    expect(added.error).toBeNull();
    const read = await admin.functions.invoke(`tenants/${created.data.id}/teams/${team.data.id}`, { method: 'GET' });
    expect(read.data.members.map((m: { email: string }) => m.email)).toEqual(['richard@hooli.test']);
    const audit = await admin.functions.invoke(`tenants/${created.data.id}/audit`, { method: 'GET' });
    expect(audit.data.items.map((a: { table_name: string }) => a.table_name)).toEqual(expect.arrayContaining(['teams', 'invitations', 'memberships', 'team_members']));
  });

  it('a Clerk session token works end to end, keys fetched from the JWKS', async () => {
    const t = await auth.clerk.sign('user_agent_acme', { azp: 'http://localhost:3000', v: 2, o: { id: 'org_acme', rol: 'member' } });
    const { data } = await client(t).functions.invoke('tenants/me', { method: 'GET' });
    expect(data).toMatchObject({ user: { id: users.acmeAgent.id }, role: 'agent', identity: { kind: 'clerk' } });
  });

  it("another tenant's data is a 404 in the common error shape", async () => {
    const c = client(await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id }));
    expect(await failure(c.functions.invoke(`tenants/${tenants.globex.id}/members`, { method: 'GET' }))).toEqual({ status: 404, code: 'not_found' });
  });

  it('bad input is a 422 naming the field, and changes nothing', async () => {
    const c = client(await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id }));
    const teams = async () => (await db.sql`select count(*)::int as n from public.teams where tenant_id = ${tenants.acme.id}`)[0].n;
    const before = await teams();
    const { error } = await c.functions.invoke(`tenants/${tenants.acme.id}/teams`, { body: { name: 'X', department: 'legal' } });
    const response = (error as FunctionsHttpError).context as Response;
    expect(response.status).toBe(422);
    const body = await response.json();
    expect(body.error).toMatchObject({ code: 'validation_failed', details: { fields: [{ field: 'department' }] } });
    expect(await teams()).toBe(before);
  });
});

describe('every auth failure is a 401', () => {
  const expiredToken = () => supabaseToken(users.acmeAdmin, { exp: Math.floor(Date.now() / 1000) - 60 });
  const wrongKey = () => supabaseToken(users.super, { secret: 'not-the-project-secret-but-32-chars-long' });
  const unknownIssuer = () => new SignJWT({ aud: 'authenticated', role: 'authenticated' }).setProtectedHeader({ alg: 'HS256' })
    .setIssuer('https://evil.example/auth/v1').setSubject(users.super.id).setExpirationTime('1h').sign(new TextEncoder().encode(TEST_JWT_SECRET));
  const algNone = () => {
    const enc = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
    return `${enc({ alg: 'none', typ: 'JWT' })}.${enc({ iss: 'http://127.0.0.1:54321/auth/v1', sub: users.super.id, aud: 'authenticated', exp: 4102444800 })}.`;
  };

  it.each([
    ['no user token (anon key only)', async () => undefined, 'user_token_required'],
    ['the service-role key', async () => serviceKey, 'user_token_required'],
    ['an expired token', expiredToken, 'token_expired'],
    ['a token signed with another secret', wrongKey, 'invalid_token'],
    ['a token from an unknown issuer', unknownIssuer, 'unknown_issuer'],
    ['an unsigned (alg none) token', async () => algNone(), 'invalid_token'],
    ['garbage', async () => 'garbage', 'invalid_token'],
  ])('%s', async (_, token, code) => {
    expect(await failure(client(await token()).functions.invoke('tenants/me', { method: 'GET' }))).toEqual({ status: 401, code });
  });

  it('a pending Clerk session', async () => {
    const t = await auth.clerk.sign('user_agent_acme', { azp: 'http://localhost:3000', sts: 'pending' });
    expect(await failure(client(t).functions.invoke('tenants/me', { method: 'GET' }))).toEqual({ status: 401, code: 'session_pending' });
  });
});

describe('the local gateway', () => {
  it('answers CORS preflights for browser apps', async () => {
    const res = await fetch(`${server.url}/functions/v1/tenants/me`, {
      method: 'OPTIONS',
      headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization,x-client-info,apikey' },
    });
    expect(res.status).toBe(204);
    expect(res.headers.get('access-control-allow-headers')).toContain('authorization');
  });

  it('serves the OpenAPI document without a token and 404s unknown functions', async () => {
    const doc = await fetch(`${server.url}/functions/v1/tenants/openapi.json`);
    expect((await doc.json()).openapi).toBe('3.1.0');
    const none = await fetch(`${server.url}/functions/v1/nope`);
    expect(none.status).toBe(404);
    expect((await none.json()).error.code).toBe('not_found');
  });
});
