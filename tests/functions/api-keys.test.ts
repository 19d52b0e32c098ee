// API keys for server-to-server clients (issue 15): created by admins with scopes and an
// optional expiry, the secret shown once and never again (not in lists, audit rows or
// request logs), revoked or expired keys refused on the very next request, a key acting
// only in its tenant and only on routes that declare one of its scopes — the scope
// matrix generated from the OpenAPI documents of the tenants, tickets and voice functions.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { app as voiceApp } from '../../functions/voice/app.ts';
import { API_KEY_ISSUER, API_KEY_SCOPES, presentedApiKey, type Scope } from '../../shared/auth/api-keys.ts';
import { closeDb, observeStatements } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { captureRequestLog } from '../../shared/request-log.ts';
import { someoneWaitsFor } from '../helpers/advisory-locks.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { stalledBody } from '../helpers/slow-body.ts';
import { earlyInMinute } from '../helpers/minute.ts';
import { supabaseClaims, teams, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
const apps: Record<string, App> = { tenants: tenantsApp, tickets: ticketsApp, voice: voiceApp };
const acme = tenants.acme.id;
const globex = tenants.globex.id;

let db: TestDatabase;
let auth: AuthFixture;
const tok: Record<string, string> = {};
/** Every key text this file was given: none may appear in a log line or audit row. */
const issued: string[] = [];
const logLines: string[] = [];
let acmeTicket: string;
let globexTicket: string;

async function createKey(
  tenantId: string,
  token: string,
  body: { name?: string; scopes: string[]; expires_at?: string },
): Promise<{ id: string; key: string }> {
  const res = await call(tenantsApp, 'POST', `/tenants/${tenantId}/api-keys`, { token, body: { name: 'integration', ...body } });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  issued.push(res.body.key);
  return { id: res.body.id, key: res.body.key };
}

beforeAll(async () => {
  db = await freshDatabase('fn_api_keys');
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') }); // endpoint secrets
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  captureRequestLog((line) => logLines.push(JSON.stringify(line)));
  [{ id: acmeTicket }] = await db.sql`insert into public.tickets (tenant_id, title, team_id, created_by)
    values (${acme}, 'Acme ticket', ${teams.acme}, ${users.acmeUser.id}) returning id`;
  [{ id: globexTicket }] = await db.sql`insert into public.tickets (tenant_id, title, team_id, created_by)
    values (${globex}, 'Globex ticket', ${teams.globex}, ${users.globexUser.id}) returning id`;
});
afterAll(async () => {
  captureRequestLog(null);
  await closeDb();
  await auth.close();
  await db.close();
});

describe('creating, listing and revoking keys', () => {
  it('shows the key once, with its recognisable prefix, and stores only a hash', async () => {
    const res = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: tok.admin,
      body: { name: 'CRM sync', scopes: ['tickets:read', 'tickets:write', 'tickets:read'] },
    });
    expect(res.status).toBe(201);
    issued.push(res.body.key);
    expect(res.body.key).toMatch(/^tpk_live_[0-9a-f]{32}_[A-Za-z0-9_-]{43}$/);
    expect(res.body.key.slice(9, 41)).toBe(res.body.id.replace(/-/g, ''));
    expect(res.body).toMatchObject({
      name: 'CRM sync',
      scopes: ['tickets:read', 'tickets:write'],
      prefix: res.body.key.slice(0, 17),
      expires_at: null,
      revoked_at: null,
      last_used_at: null,
      created_by: users.acmeAdmin.id,
    });
    const secret = res.body.key.slice(42);
    const stored = await db
      .sql`select encode(secret_sha256, 'hex') as h from private.api_key_secrets where key_id = ${res.body.id}`;
    expect(stored).toHaveLength(1);
    expect(stored[0].h).toMatch(/^[0-9a-f]{64}$/);
    expect(stored[0].h).not.toContain(secret);

    const list = await call(tenantsApp, 'GET', `/tenants/${acme}/api-keys`, { token: tok.admin });
    expect(list.status).toBe(200);
    const listed = list.body.items.find((k: { id: string }) => k.id === res.body.id);
    expect(listed).toMatchObject({ name: 'CRM sync', prefix: res.body.prefix });
    expect(listed).not.toHaveProperty('key');
    expect(JSON.stringify(list.body)).not.toContain(secret);
  });

  it('refuses bad input, unknown scopes, a past expiry, and callers who are not admins', async () => {
    const bad = [
      { name: '', scopes: ['tickets:read'] },
      { name: 'x', scopes: [] },
      { name: 'x', scopes: ['tickets:admin'] },
      { name: 'x', scopes: ['tickets:read'], extra: 1 },
      { name: 'x', scopes: ['tickets:read'], expires_at: 'tomorrow' },
      // An offset ISO allows and Postgres does not.
      { name: 'x', scopes: ['tickets:read'], expires_at: '2099-01-01T00:00:00+16:00' },
    ];
    for (const body of bad) {
      const res = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: tok.admin, body });
      expect([res.status, errorCode(res)], JSON.stringify(body)).toEqual([422, 'validation_failed']);
    }
    const keys = async () => (await db.sql`select count(*)::int as n from public.api_keys where tenant_id = ${acme}`)[0].n;
    const before = await keys();
    const past = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: tok.admin,
      body: { name: 'x', scopes: ['tickets:read'], expires_at: '2020-01-01T00:00:00Z' },
    });
    expect([past.status, errorCode(past), past.body.error.details.fields]).toEqual([422, 'validation_failed', [
      expect.objectContaining({ field: 'expires_at', message: 'must be in the future' }),
    ]]);
    expect(await keys()).toBe(before);
    for (const who of ['agent', 'user']) {
      const res = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
        token: tok[who],
        body: { name: 'x', scopes: ['tickets:read'] },
      });
      expect([res.status, errorCode(res)], who).toEqual([403, 'forbidden']);
      const list = await call(tenantsApp, 'GET', `/tenants/${acme}/api-keys`, { token: tok[who] });
      expect(list.status, who).toBe(403);
    }
    // Another tenant's admin: the tenant is not theirs.
    const foreign = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: tok.globexAdmin,
      body: { name: 'x', scopes: ['tickets:read'] },
    });
    expect(foreign.status).toBe(404);
  });

  it('marks its use without making its other requests wait for the request that marks it', async () => {
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['tickets:read'] });
    const presented = (await presentedApiKey(`Bearer ${key}`))!;
    await db.sql`update private.api_key_secrets set last_used_at = now() - interval '2 minutes' where key_id = ${id}`;
    const marker = await db.sql.reserve();
    try {
      // A request of the key that marks it used and is still running (its transaction open).
      await marker`begin`;
      await marker`select private.verify_api_key(${id}::uuid, ${presented.secretSha256}, 'tickets:read')`;
      const [{ pid }] = await marker`select pg_backend_pid() as pid`;
      const [{ marked }] = await marker`select last_used_at > now() - interval '1 minute' as marked
        from private.api_key_secrets where key_id = ${id}`;
      expect(marked).toBe(true);
      // Another request of the same key meanwhile: answered while the first still runs.
      const other = call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key });
      const first = await Promise.race([
        other.then(() => 'answered'),
        someoneWaitsFor(db.sql, pid as number).then((waited) => (waited ? 'waited' : 'neither')),
      ]);
      await marker`commit`;
      expect((await other).status).toBe(200);
      expect(first).toBe('answered');
    } finally {
      marker.release();
    }
    const [row] = await db.sql`select last_used_at > now() - interval '1 minute' as recent from private.api_key_secrets where key_id = ${id}`;
    expect(row.recent).toBe(true);
  });

  it('acts with its scopes, marks its last use at most once a minute, and is refused on the next request once revoked', async () => {
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['tickets:read'] });
    const read = await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key });
    expect(read.status, JSON.stringify(read.body)).toBe(200);
    expect(read.body.id).toBe(acmeTicket);
    const list = await call(ticketsApp, 'GET', '/tickets', { token: key });
    expect(list.status).toBe(200);
    expect(list.body.items.map((t: { id: string }) => t.id)).toContain(acmeTicket);

    const [first] = await db.sql`select last_used_at from private.api_key_secrets where key_id = ${id}`;
    expect(first.last_used_at).not.toBeNull();
    await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key });
    const [second] = await db.sql`select last_used_at from private.api_key_secrets where key_id = ${id}`;
    expect(second.last_used_at).toEqual(first.last_used_at); // within the minute: not rewritten
    const listed = await call(tenantsApp, 'GET', `/tenants/${acme}/api-keys`, { token: tok.admin });
    expect(listed.body.items.find((k: { id: string }) => k.id === id).last_used_at).not.toBeNull();

    // Not its scope.
    const write = await call(ticketsApp, 'POST', '/tickets', { token: key, body: { title: 'From a key' } });
    expect([write.status, errorCode(write)]).toEqual([403, 'insufficient_scope']);

    const revoke = await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${id}`, { token: tok.admin });
    expect(revoke.status).toBe(204);
    const after = await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key });
    expect([after.status, errorCode(after)]).toEqual([401, 'api_key_revoked']);
    // Revoking again is no change; a key that is not the tenant's is a 404.
    expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${id}`, { token: tok.admin })).status).toBe(204);
    expect((await call(tenantsApp, 'DELETE', `/tenants/${globex}/api-keys/${id}`, { token: tok.globexAdmin })).status).toBe(404);
    // A revoked key stays revoked, even for the table's admins.
    await expect(db.sql`update public.api_keys set revoked_at = null where id = ${id}`).rejects.toMatchObject({ code: 'PT409' });
    const listedAfter = await call(tenantsApp, 'GET', `/tenants/${acme}/api-keys`, { token: tok.admin });
    expect(listedAfter.body.items.find((k: { id: string }) => k.id === id).revoked_at).not.toBeNull();
  });

  it("a suspended tenant's admins can still revoke its keys, and nothing else changes", async () => {
    const { id, key } = await createKey(globex, tok.globexAdmin, { scopes: ['tickets:read'] });
    const globexUser = await supabaseToken(users.globexUser, { tenantId: globex });
    await db.sql`update public.tenants set status = 'suspended' where id = ${globex}`;
    try {
      // Suspended is read-only: the key still reads, and other writes are refused.
      expect((await call(ticketsApp, 'GET', `/tickets/${globexTicket}`, { token: key })).status).toBe(200);
      const create = await call(tenantsApp, 'POST', `/tenants/${globex}/api-keys`, {
        token: tok.globexAdmin,
        body: { name: 'more', scopes: ['tickets:read'] },
      });
      expect([create.status, errorCode(create)]).toEqual([403, 'tenant_suspended']);
      // Only its admins revoke, and only its keys.
      const byUser = await call(tenantsApp, 'DELETE', `/tenants/${globex}/api-keys/${id}`, { token: globexUser });
      expect(byUser.status).toBe(403);
      expect((await call(tenantsApp, 'DELETE', `/tenants/${globex}/api-keys/${id}`, { token: tok.admin })).status).toBe(404);
      expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${id}`, { token: tok.admin })).status).toBe(404);
      const [untouched] = await db.sql`select revoked_at from public.api_keys where id = ${id}`;
      expect(untouched.revoked_at).toBeNull();

      const revoke = await call(tenantsApp, 'DELETE', `/tenants/${globex}/api-keys/${id}`, { token: tok.globexAdmin });
      expect(revoke.status).toBe(204);
      const after = await call(ticketsApp, 'GET', `/tickets/${globexTicket}`, { token: key });
      expect([after.status, errorCode(after)]).toEqual([401, 'api_key_revoked']);
      const [row] = await db.sql`select revoked_at from public.api_keys where id = ${id}`;
      expect(row.revoked_at).not.toBeNull();
      // Renaming is no revocation: still refused while suspended.
      const rename = await probeAs(db.sql, 'authenticated', supabaseClaims(users.globexAdmin, globex), (tx) =>
        tx`update public.api_keys set name = 'renamed' where id = ${id} returning id`);
      expect(rename).toEqual({ ok: true, value: [] });
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${globex}`;
    }
  });

  it("a malformed tenant id in the path is the 422 a person gets, not a refusal of a scope the key holds", async () => {
    const { key } = await createKey(acme, tok.admin, { scopes: ['members:read'] });
    for (const token of [key, tok.admin]) {
      const r = await call(tenantsApp, 'GET', '/tenants/not-a-uuid/members', { token });
      expect([r.status, errorCode(r)]).toEqual([422, 'validation_failed']);
      expect(r.body.error.details.fields.map((f: { field: string }) => f.field)).toEqual(['tenantId']);
    }
    // Without the scope it is still refused as such, and a bad key as a bad key.
    const { key: other } = await createKey(acme, tok.admin, { scopes: ['tickets:read'] });
    const refused = await call(tenantsApp, 'GET', '/tenants/not-a-uuid/members', { token: other });
    expect([refused.status, errorCode(refused)]).toEqual([403, 'insufficient_scope']);
    const forged = await call(tenantsApp, 'GET', '/tenants/not-a-uuid/members', { token: `${key.slice(0, -4)}AAAA` });
    expect([forged.status, errorCode(forged)]).toEqual([401, 'invalid_api_key']);
  });

  it('refuses an expired key on the next request, and a wrong or malformed one alike', async () => {
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['tickets:read'], expires_at: '2099-01-01T00:00:00Z' });
    expect((await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key })).status).toBe(200);
    // Expire it (as if its time had come): the guard keeps expiry fixed for everyone else.
    await db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update public.api_keys set expires_at = now() - interval '1 second' where id = ${id}`;
    });
    const expired = await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key });
    expect([expired.status, errorCode(expired)]).toEqual([401, 'api_key_expired']);

    const wrongSecret = key.slice(0, 42) + (key[42] === 'A' ? 'B' : 'A') + key.slice(43);
    const unknownId = `tpk_live_${'0'.repeat(32)}_${key.slice(42)}`;
    for (const token of [wrongSecret, unknownId, `${key}x`, 'tpk_live_short', 'tpk_test_' + key.slice(9)]) {
      const res = await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token });
      expect([res.status, errorCode(res)], token.slice(0, 20)).toEqual([401, 'invalid_api_key']);
    }
  });

  it('a key cannot create, list or revoke keys, nor reach routes without a scope', async () => {
    const { id, key } = await createKey(acme, tok.admin, { scopes: [...API_KEY_SCOPES] });
    for (
      const [app, method, path] of [
        [tenantsApp, 'POST', `/tenants/${acme}/api-keys`],
        [tenantsApp, 'GET', `/tenants/${acme}/api-keys`],
        [tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${id}`],
        [tenantsApp, 'GET', '/tenants/me'],
        [tenantsApp, 'GET', `/tenants/${acme}`],
      ] as const
    ) {
      const res = await call(app, method, path, {
        token: key,
        body: method === 'POST' ? { name: 'x', scopes: ['tickets:read'] } : undefined,
      });
      expect([res.status, errorCode(res)], `${method} ${path}`).toEqual([403, 'insufficient_scope']);
    }
    // Directly in SQL too: the creation function refuses a key principal, with arguments
    // its creator's own call would be taken with.
    const create = (claims: Record<string, unknown>) =>
      probeAs(db.sql, 'authenticated', claims, (tx) =>
        tx`select private.create_api_key(${acme}, 'from a key', '{tickets:read}', null, ${'a'.repeat(64)}) as made`);
    const asKey = await create({ iss: API_KEY_ISSUER, sub: id });
    expect(asKey.ok ? 'created' : [asKey.error.code, JSON.parse(asKey.error.detail ?? '{}').code]).toEqual(['PT403', 'insufficient_scope']);
    const asCreator = await create(supabaseClaims(users.acmeAdmin, acme));
    expect(asCreator.ok, JSON.stringify(asCreator)).toBe(true);
  });

  it("a key acts only in its tenant: another tenant's ids are not found, its header a mismatch", async () => {
    const { key } = await createKey(globex, tok.globexAdmin, { scopes: [...API_KEY_SCOPES] });
    const attempts: [App, string, string, unknown?, Record<string, string>?][] = [
      [ticketsApp, 'GET', `/tickets/${acmeTicket}`],
      [ticketsApp, 'PATCH', `/tickets/${acmeTicket}`, { title: 'hijacked' }],
      [ticketsApp, 'POST', `/tickets/${acmeTicket}/messages`, { content: 'hijacked' }],
      [tenantsApp, 'GET', `/tenants/${acme}/teams`],
      [tenantsApp, 'GET', `/tenants/${acme}/members`],
      [tenantsApp, 'GET', `/tenants/${acme}/audit`],
      [tenantsApp, 'GET', `/tenants/${acme}/webhooks`],
      [tenantsApp, 'POST', `/tenants/${acme}/webhooks`, { url: 'https://hooks.example.com/x', event_types: ['ticket.created'] }],
    ];
    const before = await db.sql`select count(*)::int as n from public.audit_logs where tenant_id = ${acme}`;
    for (const [app, method, path, body, headers] of attempts) {
      const res = await call(app, method, path, { token: key, body, headers });
      expect(res.status, `${method} ${path}: ${JSON.stringify(res.body)}`).toBe(404);
    }
    const list = await call(ticketsApp, 'GET', '/tickets', { token: key });
    expect(list.status).toBe(200);
    expect(list.body.items.map((t: { id: string }) => t.id)).toEqual([globexTicket]);
    const named = await call(ticketsApp, 'GET', '/tickets', { token: key, headers: { 'x-tenant-id': acme } });
    expect([named.status, errorCode(named)]).toEqual([400, 'tenant_mismatch']);
    expect(await db.sql`select count(*)::int as n from public.audit_logs where tenant_id = ${acme}`).toEqual(before);
  });

  it('a key that manages webhooks sends itself only events its scopes can read', async () => {
    const { key } = await createKey(acme, tok.admin, { scopes: ['webhooks:manage', 'calls:read'] });
    const endpoints = async () =>
      (await db.sql`select id, url, event_types from public.webhook_endpoints where tenant_id = ${acme} order by id`)
        .map((e) => JSON.stringify(e)).join();
    const before = await endpoints();
    const post = (token: string, event_types: string[]) =>
      call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, { token, body: { url: 'http://127.0.0.1:9/key-hook', event_types } });
    // Every event type ([]) carries tickets, members and customers: refused, naming the scopes.
    const all = await post(key, []);
    expect([all.status, errorCode(all)]).toEqual([403, 'insufficient_scope']);
    expect(all.body.error.details.required_scopes.sort()).toEqual(['customers:read', 'members:read', 'tickets:read']);
    const notes = await post(key, ['call.ended', 'note.created']);
    expect([notes.status, errorCode(notes), notes.body.error.details]).toEqual([403, 'insufficient_scope', { required_scopes: ['tickets:read'] }]);
    expect(await endpoints()).toBe(before);
    // What it can read: registered.
    const calls = await post(key, ['call.started', 'call.ended', 'service.state_changed']);
    expect(calls.status, JSON.stringify(calls.body)).toBe(201);

    // Widening it, or pointing an admin's every-event endpoint at itself, is refused too,
    // and changes nothing; an admin is not limited, and a key's change of description is no reading.
    const mine = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, { token: tok.admin, body: { url: 'http://127.0.0.1:9/admin-hook' } });
    expect(mine.status).toBe(201);
    const settled = await endpoints();
    const widen = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${calls.body.id}`, { token: key, body: { event_types: ['ticket.created'] } });
    expect([widen.status, errorCode(widen)]).toEqual([403, 'insufficient_scope']);
    const redirect = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${mine.body.id}`, { token: key, body: { url: 'http://127.0.0.1:9/stolen' } });
    expect([redirect.status, errorCode(redirect)]).toEqual([403, 'insufficient_scope']);
    expect(await endpoints()).toBe(settled);
    const described = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${mine.body.id}`, { token: key, body: { description: 'CRM sync' } });
    expect(described.status).toBe(200);
    const narrowed = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${calls.body.id}`, { token: key, body: { event_types: ['call.ended'] } });
    expect([narrowed.status, narrowed.body.event_types]).toEqual([200, ['call.ended']]);
    // Turning the admin's endpoint back on, or taking its signing secret, is receiving (or
    // signing) its events: refused, and nothing changes; its own endpoint's are the key's.
    await db.sql`update public.webhook_endpoints set enabled = false where id = ${mine.body.id}`;
    const secrets = async () =>
      (await db.sql`select enabled, secret_encrypted from public.webhook_endpoints where id in (${mine.body.id}, ${calls.body.id}) order by id`)
        .map((e) => JSON.stringify(e)).join();
    const held = await secrets();
    const enable = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${mine.body.id}`, { token: key, body: { enabled: true } });
    expect([enable.status, errorCode(enable)]).toEqual([403, 'insufficient_scope']);
    // (Saying `enabled: true` of an endpoint that is on, with a description, turns nothing on.)
    await db.sql`update public.webhook_endpoints set enabled = true where id = ${mine.body.id}`;
    const restated = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${mine.body.id}`, {
      token: key,
      body: { description: 'CRM sync', enabled: true },
    });
    expect(restated.status, JSON.stringify(restated.body)).toBe(200);
    await db.sql`update public.webhook_endpoints set enabled = false where id = ${mine.body.id}`;
    const rotate = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks/${mine.body.id}/rotate-secret`, { token: key, body: {} });
    expect([rotate.status, errorCode(rotate)]).toEqual([403, 'insufficient_scope']);
    expect(await secrets()).toBe(held);
    const ownRotate = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks/${calls.body.id}/rotate-secret`, { token: key, body: {} });
    expect(ownRotate.status, JSON.stringify(ownRotate.body)).toBe(200);
    const ownEnable = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${calls.body.id}`, { token: key, body: { enabled: true } });
    expect(ownEnable.status, JSON.stringify(ownEnable.body)).toBe(200);
    for (const id of [calls.body.id, mine.body.id]) {
      expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/webhooks/${id}`, { token: tok.admin })).status).toBe(204);
    }
  });

  it("a key that rotated an endpoint's secret stops it when it ends, though a person changed the endpoint since", async () => {
    const state = async (id: string) =>
      (await db.sql`select enabled, disabled_reason from public.webhook_endpoints where tenant_id = ${acme} and id = ${id}`)[0];
    const k = await createKey(acme, tok.admin, { scopes: ['webhooks:manage', 'calls:read'] });
    const ep = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, {
      token: tok.admin,
      body: { url: 'http://127.0.0.1:9/rotated-by-key', event_types: ['call.ended'] },
    });
    expect(ep.status, JSON.stringify(ep.body)).toBe(201);
    expect((await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks/${ep.body.id}/rotate-secret`, { token: k.key, body: {} })).status)
      .toBe(200);
    // A person points it elsewhere (which forgets who set it up): the key still knows its secret.
    expect((await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${ep.body.id}`, {
      token: tok.admin,
      body: { url: 'http://127.0.0.1:9/moved-by-admin' },
    })).status).toBe(200);
    expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${k.id}`, { token: tok.admin })).status).toBe(204);
    expect(await state(ep.body.id)).toEqual({ enabled: false, disabled_reason: expect.stringContaining('shown its secret') });
    expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/webhooks/${ep.body.id}`, { token: tok.admin })).status).toBe(204);
    // Its place among the plan's keys, for the tests after (the suite counts them).
    await db.sql`delete from public.api_keys where id = ${k.id}`;
  });

  it('an endpoint a key set up stops receiving once the key is revoked or expired, until an admin enables it again', async () => {
    const state = async (id: string) =>
      (await db.sql`select enabled, disabled_reason from public.webhook_endpoints where tenant_id = ${acme} and id = ${id}`)[0];
    const a = await createKey(acme, tok.admin, { scopes: ['webhooks:manage', 'calls:read'] });
    const made = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, {
      token: a.key,
      body: { url: 'http://127.0.0.1:9/key-made', event_types: ['call.ended'] },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    // An admin's endpoint the key only described stays the admin's.
    const mine = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, {
      token: tok.admin,
      body: { url: 'http://127.0.0.1:9/admin-own', event_types: ['call.ended'] },
    });
    expect((await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${mine.body.id}`, { token: a.key, body: { description: 'synced' } })).status)
      .toBe(200);
    expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${a.id}`, { token: tok.admin })).status).toBe(204);
    expect(await state(made.body.id)).toEqual({ enabled: false, disabled_reason: expect.stringContaining('rotates the secret') });
    expect(await state(mine.body.id)).toEqual({ enabled: true, disabled_reason: null });
    // The key was shown the secret (it registered the endpoint): whoever holds it signs
    // what the receiver believes, so the endpoint is not enabled again with it, on either path.
    const early = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${made.body.id}`, { token: tok.admin, body: { enabled: true } });
    expect([early.status, errorCode(early)]).toEqual([409, 'secret_rotation_required']);
    const direct = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) =>
      tx`update public.webhook_endpoints set enabled = true where tenant_id = ${acme} and id = ${made.body.id}`);
    expect(direct).toMatchObject({ ok: false, error: { code: 'PT409' } });
    // A rotation that keeps the old secret signing (24 hours by default) keeps the key's
    // secret in play: still refused.
    const overlapping = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks/${made.body.id}/rotate-secret`, { token: tok.admin, body: {} });
    expect(overlapping.status).toBe(200);
    const still = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${made.body.id}`, { token: tok.admin, body: { enabled: true } });
    expect([still.status, errorCode(still)]).toEqual([409, 'secret_rotation_required']);
    // An admin rotates it, keeping no previous secret, then enables it, and so vouches for it: no longer the key's.
    const rotated = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks/${made.body.id}/rotate-secret`, {
      token: tok.admin,
      body: { previous_secret_hours: 0 },
    });
    expect(rotated.status, JSON.stringify(rotated.body)).toBe(200);
    const back = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${made.body.id}`, { token: tok.admin, body: { enabled: true } });
    expect(back.status, JSON.stringify(back.body)).toBe(200);
    expect(await state(made.body.id)).toEqual({ enabled: true, disabled_reason: null });
    // Another key points it elsewhere, then expires: its next delivery disables it first.
    const b = await createKey(acme, tok.admin, { scopes: ['webhooks:manage', 'calls:read'], expires_at: '2999-01-01T00:00:00Z' });
    const moved = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${made.body.id}`, {
      token: b.key,
      body: { url: 'http://127.0.0.1:9/key-b' },
    });
    expect(moved.status, JSON.stringify(moved.body)).toBe(200);
    const lapsed = async (id: string) =>
      (await db.sql`select private.webhook_endpoint_key_lapsed(${acme}, ${id}) as lapsed`)[0].lapsed as boolean;
    expect(await lapsed(made.body.id)).toBe(false);
    // Its time passes (an expiry is fixed once made, so the test moves it with the rules off).
    await db.sql.begin(async (tx) => {
      await tx`set local session_replication_role = replica`;
      await tx`update public.api_keys set expires_at = now() - interval '1 second' where id = ${b.id}`;
    });
    expect([await lapsed(made.body.id), await lapsed(mine.body.id)]).toEqual([true, false]);
    expect(await state(made.body.id)).toEqual({ enabled: false, disabled_reason: expect.stringContaining('has expired') });
    expect(await state(mine.body.id)).toEqual({ enabled: true, disabled_reason: null });
    // A third key's admin is demoted: the key is refused (not revoked), and so its endpoint
    // stops at its next delivery, saying why.
    const [second] = await db.sql`insert into public.users (email) values ('key-c-admin@acme.test') returning id`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${second.id}, ${second.id})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${second.id}, 'admin')`;
    const secondTok = await supabaseToken({ id: second.id, email: 'key-c-admin@acme.test' }, { tenantId: acme });
    const c = await createKey(acme, secondTok, { scopes: ['webhooks:manage', 'calls:read'] });
    const back2 = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${made.body.id}`, { token: tok.admin, body: { enabled: true } });
    expect(back2.status).toBe(200);
    const movedAgain = await call(tenantsApp, 'PATCH', `/tenants/${acme}/webhooks/${made.body.id}`, {
      token: c.key,
      body: { url: 'http://127.0.0.1:9/key-c' },
    });
    expect(movedAgain.status, JSON.stringify(movedAgain.body)).toBe(200);
    expect(await lapsed(made.body.id)).toBe(false);
    await db.sql`update public.memberships set role = 'user' where tenant_id = ${acme} and user_id = ${second.id}`;
    expect([await lapsed(made.body.id), await lapsed(mine.body.id)]).toEqual([true, false]);
    expect(await state(made.body.id)).toEqual({ enabled: false, disabled_reason: expect.stringContaining('no longer is one') });
    // (The person goes, and their key with them: its place in the plan's limit is given back.)
    await db.sql`delete from public.users where id = ${second.id}`;
    for (const id of [made.body.id, mine.body.id]) {
      expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/webhooks/${id}`, { token: tok.admin })).status).toBe(204);
    }
  });

  it('a key that manages workflows adds, changes or reads the runs of a rule only if it may read and write tickets', async () => {
    const rule = { name: 'Key rule', event: 'ticket.created', conditions: {}, actions: [{ type: 'add_tags', tags: ['k'] }] };
    const narrow = await createKey(acme, tok.admin, { scopes: ['workflow:manage'] });
    const before = (await db.sql`select count(*)::int as n from public.automation_rules where tenant_id = ${acme}`)[0].n;
    const refused = await call(ticketsApp, 'POST', '/tickets/automation-rules', { token: narrow.key, body: rule });
    expect([refused.status, errorCode(refused)]).toEqual([403, 'insufficient_scope']);
    expect(refused.body.error.details.required_scopes).toEqual(['tickets:read', 'tickets:write']);
    expect((await db.sql`select count(*)::int as n from public.automation_rules where tenant_id = ${acme}`)[0].n).toBe(before);
    const wide = await createKey(acme, tok.admin, { scopes: ['workflow:manage', 'tickets:read', 'tickets:write'] });
    const made = await call(ticketsApp, 'POST', '/tickets/automation-rules', { token: wide.key, body: rule });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    const path = `/tickets/automation-rules/${made.body.id}`;
    for (const [method, suffix, body] of [['PATCH', '', { active: false }], ['GET', '/runs', undefined]] as const) {
      const r = await call(ticketsApp, method, path + suffix, { token: narrow.key, body });
      expect([method, r.status, errorCode(r)]).toEqual([method, 403, 'insufficient_scope']);
      expect([method, (await call(ticketsApp, method, path + suffix, { token: wide.key, body })).status]).toEqual([method, 200]);
    }
    // Listing and reading the rules themselves stay workflow:manage's, without what a run
    // names (a ticket, its event, why it was refused): the latest failure is the wide key's.
    const [ticket] = await db.sql`select id from public.tickets where tenant_id = ${acme} limit 1`;
    await db.sql`insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome, failed_action, error)
      values (${acme}, ${made.body.id}, ${ticket.id}, 'ticket.created', gen_random_uuid(), 'failed', 0, 'a refusal naming the ticket')`;
    const seen = async (key: string) => {
      const one = await call(ticketsApp, 'GET', path, { token: key });
      const all = await call(ticketsApp, 'GET', '/tickets/automation-rules', { token: key });
      expect([one.status, all.status]).toEqual([200, 200]);
      const listed = all.body.items.find((r: { id: string }) => r.id === made.body.id);
      return [one.body.last_failure?.ticket_id ?? null, listed.last_failure?.ticket_id ?? null];
    };
    expect(await seen(narrow.key)).toEqual([null, null]);
    expect(await seen(wide.key)).toEqual([ticket.id, ticket.id]);
    expect((await call(ticketsApp, 'DELETE', path, { token: narrow.key })).status).toBe(204);
  });

  it("a key that manages workflows changes the words of a rule's template only if it may read and write tickets", async () => {
    const [canned] = await db.sql`insert into public.canned_responses (tenant_id, scope, short_code, title, body)
      values (${acme}, 'tenant', 'rule-reply', 'Rule reply', 'Thanks, we are on it') returning id`;
    const [spare] = await db.sql`insert into public.canned_responses (tenant_id, scope, short_code, title, body)
      values (${acme}, 'tenant', 'spare-reply', 'Spare', 'Unused by rules') returning id`;
    await db.sql`insert into public.automation_rules (tenant_id, name, event, actions)
      values (${acme}, 'Replies by template', 'ticket.created', ${db.sql.json([{ type: 'send_canned', canned_response_id: canned.id }])})`;
    const narrow = await createKey(acme, tok.admin, { scopes: ['workflow:manage'] });
    const refused = await call(ticketsApp, 'PATCH', `/tickets/canned-responses/${canned.id}`, {
      token: narrow.key, body: { body: 'Your account is locked: verify at https://evil.example' },
    });
    expect([refused.status, errorCode(refused), refused.body.error?.details?.required_scopes])
      .toEqual([403, 'insufficient_scope', ['tickets:read', 'tickets:write']]);
    expect((await db.sql`select body from public.canned_responses where id = ${canned.id}`)[0].body).toBe('Thanks, we are on it');
    // Its title, and another template's words, stay workflow:manage's.
    expect((await call(ticketsApp, 'PATCH', `/tickets/canned-responses/${canned.id}`, { token: narrow.key, body: { title: 'Renamed' } })).status)
      .toBe(200);
    expect((await call(ticketsApp, 'PATCH', `/tickets/canned-responses/${spare.id}`, { token: narrow.key, body: { body: 'Changed' } })).status)
      .toBe(200);
    const wide = await createKey(acme, tok.admin, { scopes: ['workflow:manage', 'tickets:read', 'tickets:write'] });
    const changed = await call(ticketsApp, 'PATCH', `/tickets/canned-responses/${canned.id}`, { token: wide.key, body: { body: 'Thanks!' } });
    expect([changed.status, changed.body.body]).toEqual([200, 'Thanks!']);
    // People change it as before.
    expect((await call(ticketsApp, 'PATCH', `/tickets/canned-responses/${canned.id}`, { token: tok.admin, body: { body: 'Thank you' } })).status)
      .toBe(200);
    for (const { id } of [narrow, wide]) {
      expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${id}`, { token: tok.admin })).status).toBe(204);
    }
  });

  it('writes as the key: the audit trail names the key, the ticket its creator', async () => {
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['tickets:write'] });
    const made = await call(ticketsApp, 'POST', '/tickets', { token: key, body: { title: 'Filed by the CRM' } });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.created_by).toBe(users.acmeAdmin.id);
    const [row] = await db.sql`select actor_user_id, actor_issuer, actor_subject from public.audit_logs
      where table_name = 'tickets' and record_key ->> 'id' = ${made.body.id} and action = 'INSERT'`;
    expect(row).toEqual({ actor_user_id: users.acmeAdmin.id, actor_issuer: 'tenant-platform:api-key', actor_subject: id });
    // The audit API says so too: the key's writes are told apart from its creator's own.
    const trail = await call(tenantsApp, 'GET', `/tenants/${acme}/audit?table_name=tickets&action=INSERT&limit=20`, { token: tok.admin });
    expect(trail.status).toBe(200);
    const entry = trail.body.items.find((e: { record_key: { id?: string } }) => e.record_key.id === made.body.id);
    expect(entry).toMatchObject({ actor_user_id: users.acmeAdmin.id, actor_issuer: 'tenant-platform:api-key', actor_subject: id });
  });

  it('acts on the voice API through the same policies, only in its tenant, and within its plan', async () => {
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['customers:read', 'customers:write'] });
    const made = await call(voiceApp, 'POST', '/voice/customers', {
      token: key,
      body: { phone: '+14155550777', name: 'Via key' },
    });
    expect(made.status, JSON.stringify(made.body)).toBe(201);
    expect(made.body.tenant_id).toBe(acme);
    const [row] = await db.sql`select actor_user_id, actor_issuer, actor_subject from public.audit_logs
      where table_name = 'voice_customers' and record_key ->> 'id' = ${made.body.id} and action = 'INSERT'`;
    expect(row).toEqual({ actor_user_id: users.acmeAdmin.id, actor_issuer: 'tenant-platform:api-key', actor_subject: id });
    const listed = await call(voiceApp, 'GET', '/voice/customers', { token: key });
    expect(listed.body.items.map((c: { tenant_id: string }) => c.tenant_id)).toEqual([acme]);
    // Another tenant's customer is the same 404 as none; another tenant named in a header is refused.
    // (globex's customer from a time its plan had voice: adding one needs the feature.)
    const other = await db.sql.begin(async (tx) => {
      const [{ plan }] = await tx`select plan from public.tenants where id = ${globex}`;
      await tx`update public.tenants set plan = 'pro' where id = ${globex}`;
      const [c] = await tx`insert into public.voice_customers (tenant_id, phone) values (${globex}, '+14155550778') returning id`;
      await tx`update public.tenants set plan = ${plan} where id = ${globex}`;
      return c;
    });
    expect((await call(voiceApp, 'GET', `/voice/customers/${other.id}`, { token: key })).status).toBe(404);
    const header = await call(voiceApp, 'GET', '/voice/customers', { token: key, headers: { 'x-tenant-id': globex } });
    expect([header.status, errorCode(header)]).toEqual([400, 'tenant_mismatch']);
    // A key of a tenant whose plan lacks voice: the plan answers, as for a person (a new
    // customer is refused; the list, to find what to correct or erase, is not).
    const g = await createKey(globex, tok.globexAdmin, { scopes: ['customers:read', 'customers:write'] });
    const refused = await call(voiceApp, 'POST', '/voice/customers', { token: g.key, body: { phone: '+14155550177' } });
    expect([refused.status, errorCode(refused)]).toEqual([403, 'feature_not_in_plan']);
    expect((await call(voiceApp, 'GET', '/voice/customers', { token: g.key })).status).toBe(200);
  });

  it('files idempotency keys per API key: a key and its creator never share one', async () => {
    const { key } = await createKey(acme, tok.admin, { scopes: ['tickets:write'] });
    const headers = { 'idempotency-key': 'shared-retry-key' };
    const body = { title: 'Same key, same body' };
    const byKey = await call(ticketsApp, 'POST', '/tickets', { token: key, body, headers });
    expect(byKey.status).toBe(201);
    const again = await call(ticketsApp, 'POST', '/tickets', { token: key, body, headers });
    expect([again.status, again.body.id]).toEqual([201, byKey.body.id]);
    const byCreator = await call(ticketsApp, 'POST', '/tickets', { token: tok.admin, body, headers });
    expect(byCreator.status).toBe(201);
    expect(byCreator.body.id).not.toBe(byKey.body.id);
  });

  it("lives on its creator's admin standing: refused once they are demoted; platform admins outside the tenant make none", async () => {
    // A second admin of acme creates the key, then is demoted.
    const [{ id: owner }] = await db.sql`insert into public.users (email) values ('second-admin@acme.test') returning id`;
    await db
      .sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${owner}, ${owner})`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${owner}, 'admin')`;
    const ownerToken = await supabaseToken({ id: owner, email: 'second-admin@acme.test' }, { tenantId: acme });
    const { key } = await createKey(acme, ownerToken, { scopes: ['tickets:read'] });
    expect((await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key })).status).toBe(200);
    await db.sql`update public.memberships set role = 'agent' where tenant_id = ${acme} and user_id = ${owner}`;
    const demoted = await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key });
    expect([demoted.status, errorCode(demoted)]).toEqual([401, 'api_key_owner_inactive']);
    await db.sql`update public.memberships set role = 'admin' where tenant_id = ${acme} and user_id = ${owner}`;
    expect((await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key })).status).toBe(200);
    // Removed from the tenant: the key is revoked, listed so, and stays so when they come back.
    const members = await call(tenantsApp, 'DELETE', `/tenants/${acme}/members/${owner}`, { token: tok.admin });
    expect(members.status, JSON.stringify(members.body)).toBe(204);
    const listed = await call(tenantsApp, 'GET', `/tenants/${acme}/api-keys`, { token: tok.admin });
    expect(listed.body.items.find((k: { created_by: string }) => k.created_by === owner)).toMatchObject({ revoked_at: expect.any(String) });
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${acme}, ${owner}, 'admin')`;
    const back = await call(ticketsApp, 'GET', `/tickets/${acmeTicket}`, { token: key });
    expect([back.status, errorCode(back)]).toEqual([401, 'api_key_revoked']);

    const superToken = await supabaseToken(users.super);
    const bySuper = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: superToken,
      body: { name: 'x', scopes: ['tickets:read'] },
    });
    expect([bySuper.status, errorCode(bySuper)]).toEqual([403, 'api_key_owner_required']);
    // They still see and revoke the tenant's keys.
    expect((await call(tenantsApp, 'GET', `/tenants/${acme}/api-keys`, { token: superToken })).status).toBe(200);
  });

  it("costs no extra statement but its read count: a key request runs as many as a person's (verification rides the caller lookup)", async () => {
    const { key } = await createKey(acme, tok.admin, { scopes: ['teams:read'] });
    const count = async (token: string) => {
      await call(tenantsApp, 'GET', `/tenants/${acme}/teams`, { token }); // warm (and last_used_at marked)
      let n = 0;
      observeStatements(() => n++);
      try {
        const res = await call(tenantsApp, 'GET', `/tenants/${acme}/teams`, { token });
        expect(res.status).toBe(200);
      } finally {
        observeStatements(null);
      }
      return n;
    };
    // A key's read is counted against its window first: one autocommit statement.
    expect(await count(key)).toBe((await count(tok.admin)) + 1);
    process.env.RATE_LIMITS = 'off';
    try {
      expect(await count(key)).toBe(await count(tok.admin));
    } finally {
      delete process.env.RATE_LIMITS;
    }
  });

  it("counts unrevoked keys against the plan's api_keys limit: past it a 403 that creates nothing, a revocation gives the place back", async () => {
    const used = async () =>
      Number(
        (await db.sql`select used from private.usage_counters where tenant_id = ${acme} and metric = 'api_keys'`)[0]?.used ?? 0,
      );
    const live =
      (await db.sql`select count(*)::int as n from public.api_keys where tenant_id = ${acme} and revoked_at is null`)[0].n;
    expect(await used()).toBe(live);
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, ${
      db.sql.json({ api_keys: live + 1 })
    })
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      const { id } = await createKey(acme, tok.admin, { scopes: ['tickets:read'] });
      const rows = async () => (await db.sql`select count(*)::int as n from public.api_keys where tenant_id = ${acme}`)[0].n;
      const before = await rows();
      const over = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
        token: tok.admin,
        body: { name: 'one too many', scopes: ['tickets:read'] },
      });
      expect(over.status).toBe(403);
      expect(over.body.error).toMatchObject({
        code: 'plan_limit_reached',
        details: { limit: 'api_keys', max: live + 1, usage: live + 1 },
      });
      expect(await rows()).toBe(before);
      const usage = await call(tenantsApp, 'GET', `/tenants/${acme}/usage`, { token: tok.admin });
      expect(usage.body.metrics.api_keys).toEqual({ used: live + 1, limit: live + 1 });
      expect((await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${id}`, { token: tok.admin })).status).toBe(204);
      expect(await used()).toBe(live);
      const again = await createKey(acme, tok.admin, { scopes: ['tickets:read'] });
      expect(await used()).toBe(live + 1);
      // A live key deleted outright (an operator, the service role) gives its place back too.
      await db.sql`delete from public.api_keys where id = ${again.id}`;
      expect(await used()).toBe(live);
      await createKey(acme, tok.admin, { scopes: ['tickets:read'] });
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
    }
  });

  it('an expired key gives its place back: retired (revoked as of its expiry) before a key is made, and by the daily prune', async () => {
    const used = async () =>
      Number((await db.sql`select used from private.usage_counters where tenant_id = ${globex} and metric = 'api_keys'`)[0]?.used ?? 0);
    const live = (await db.sql`select count(*)::int as n from public.api_keys where tenant_id = ${globex} and revoked_at is null`)[0].n;
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${globex}, ${db.sql.json({ api_keys: live + 1 })})
      on conflict (tenant_id) do update set limits = excluded.limits`;
    // A key made a while ago that has since expired (its expiry is fixed: set as it lapsed).
    const lapse = async (id: string) =>
      await db.sql.begin(async (tx) => {
        await tx`set local session_replication_role = replica`;
        await tx`update public.api_keys set expires_at = now() - interval '1 hour' where id = ${id}`;
      });
    try {
      const old = await createKey(globex, tok.globexAdmin, { scopes: ['tickets:read'], expires_at: '2099-01-01T00:00:00Z' });
      await lapse(old.id);
      expect(await used()).toBe(live + 1);
      const fresh = await call(tenantsApp, 'POST', `/tenants/${globex}/api-keys`, {
        token: tok.globexAdmin,
        body: { name: 'after the old one expired', scopes: ['tickets:read'] },
      });
      expect(fresh.status, JSON.stringify(fresh.body)).toBe(201);
      expect(await used()).toBe(live + 1);
      const [retired] = await db.sql`select revoked_at = expires_at as at_expiry from public.api_keys where id = ${old.id}`;
      expect(retired.at_expiry).toBe(true);
      // Still told as expired, which it is.
      const refused = await call(ticketsApp, 'GET', '/tickets', { token: old.key });
      expect([refused.status, errorCode(refused)]).toEqual([401, 'api_key_expired']);
      // Still one place: a second is refused.
      const over = await call(tenantsApp, 'POST', `/tenants/${globex}/api-keys`, {
        token: tok.globexAdmin,
        body: { name: 'one too many', scopes: ['tickets:read'] },
      });
      expect([over.status, errorCode(over)]).toEqual([403, 'plan_limit_reached']);
      // The daily prune retires one nobody replaced, and its tenant's usage shows it.
      await lapse(fresh.body.id);
      await db.sql`select private.add_job('prune')`;
      const report = await runJobs({ tasks: ['prune'], schedule: false });
      expect(report.tasks.prune).toMatchObject({ completed: 1 });
      expect(report.tasks.prune.expired_api_keys).toBeGreaterThanOrEqual(1);
      expect(await used()).toBe(live);
      const usage = await call(tenantsApp, 'GET', `/tenants/${globex}/usage`, { token: tok.globexAdmin });
      expect(usage.body.metrics.api_keys).toEqual({ used: live, limit: live + 1 });
      // A revocation an admin writes through the table, dated at or after a future expiry,
      // is a revocation: refused, never verified.
      const dated = await createKey(globex, tok.globexAdmin, { scopes: ['tickets:read'], expires_at: '2099-01-01T00:00:00Z' });
      for (const at of ['2099-01-01T00:00:00Z', '2100-01-01T00:00:00Z']) {
        await db.sql.begin(async (tx) => {
          await tx`set local session_replication_role = replica`;
          await tx`update public.api_keys set revoked_at = ${at} where id = ${dated.id}`;
        });
        const sha = (await presentedApiKey(`Bearer ${dated.key}`))!.secretSha256;
        const r = await db.sql`select private.verify_api_key(${dated.id}::uuid, ${sha}, 'tickets:read')`
          .then(() => 'verified', (e) => e.detail);
        expect(r, at).toContain('api_key_revoked');
      }
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${globex}`;
    }
  });

  it("counts its reads per key against the plan's reads_per_minute_per_key: 429 with Retry-After and RateLimit-* once spent", async () => {
    const a = await createKey(acme, tok.admin, { scopes: ['tickets:read', 'tickets:write'] });
    const b = await createKey(acme, tok.admin, { scopes: ['tickets:read'] });
    // With the response headers (call() keeps only status and body).
    const req = async (token: string, path: string, init: { method?: string; body?: unknown } = {}) => {
      const res = await ticketsApp.request(path, {
        method: init.method ?? 'GET',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: init.body === undefined ? undefined : JSON.stringify(init.body),
      });
      const text = await res.text();
      return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : null };
    };
    const hits = async (id: string) =>
      (await db.sql`select hits from private.rate_limit_counters where scope = 'key_read' and key = ${id}`)[0]?.hits ?? 0;
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, '{"reads_per_minute_per_key": 2}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      await earlyInMinute();
      await db.sql`delete from private.rate_limit_counters where scope = 'key_read'`;
      const remaining: (string | null)[] = [];
      for (let i = 0; i < 2; i++) {
        const res = await req(a.key, '/tickets');
        expect(res.status).toBe(200);
        expect(res.headers.get('ratelimit-limit')).toBe('2');
        remaining.push(res.headers.get('ratelimit-remaining'));
      }
      expect(remaining).toEqual(['1', '0']);
      const refused = await req(a.key, `/tickets/${acmeTicket}`);
      expect(refused.status).toBe(429);
      expect(refused.body.error).toMatchObject({ code: 'rate_limited', details: { scope: 'key', limit: 2 } });
      const retry = Number(refused.headers.get('retry-after'));
      expect(retry).toBeGreaterThanOrEqual(1);
      expect(retry).toBeLessThanOrEqual(60);
      expect(refused.headers.get('ratelimit-reset')).toBe(String(retry));
      // Another key has a window of its own; people's reads are not limited; the key's
      // writes count in the write windows, not this one.
      expect((await req(b.key, '/tickets')).status).toBe(200);
      expect((await req(tok.admin, '/tickets')).headers.get('ratelimit-limit')).toBeNull();
      const before = await hits(a.id);
      expect((await req(a.key, '/tickets', { method: 'POST', body: { title: 'Written while reads are spent' } })).status).toBe(
        201,
      );
      expect(await hits(a.id)).toBe(before);
      // Someone who knows the key's id but not its secret spends nothing of its budget.
      const forged = `tpk_live_${a.id.replace(/-/g, '')}_${'A'.repeat(43)}`;
      const bad = await req(forged, '/tickets');
      expect([bad.status, errorCode(bad)]).toEqual([401, 'invalid_api_key']);
      expect(await hits(a.id)).toBe(before);
      // No limit in the plan: not counted.
      await db
        .sql`update private.tenant_plan_overrides set limits = '{"reads_per_minute_per_key": null}' where tenant_id = ${acme}`;
      const free = await req(a.key, '/tickets');
      expect([free.status, free.headers.get('ratelimit-limit')]).toEqual([200, null]);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
    }
  });

  it("is a caller of its own for rate limits: its writes never spend its creator's window", async () => {
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['tickets:write'] });
    const creatorHits = async () =>
      (await db
        .sql`select hits from private.rate_limit_counters where scope = 'caller' and key = ${`${acme}/${users.acmeAdmin.id}`}`)[0]
        ?.hits ?? 0;
    const before = await creatorHits();
    // No write at all per caller: one request decides, whatever minute it falls in.
    await db
      .sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, '{"requests_per_minute_per_caller": 0}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      const refused = await call(ticketsApp, 'POST', '/tickets', { token: key, body: { title: 'Key write' } });
      expect(refused.status).toBe(429);
      expect(refused.body.error.details).toMatchObject({ scope: 'caller', limit: 0 });
      const [window] = await db
        .sql`select hits from private.rate_limit_counters where scope = 'caller' and key = ${`${acme}/key:${id}`}`;
      expect(window.hits).toBe(1);
      expect(await creatorHits()).toBe(before);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
    }
  });

  it("spends nothing of the tenant's write window for someone who knows its id but not its secret", async () => {
    const { id } = await createKey(acme, tok.admin, { scopes: ['tickets:write'] });
    const forged = `tpk_live_${id.replace(/-/g, '')}_${'A'.repeat(43)}`;
    const windowHits = async () =>
      (await db.sql`select coalesce(sum(hits), 0)::int as n from private.rate_limit_counters
        where key = ${acme} or key like ${`${acme}/%`}`)[0].n as number;
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, '{"requests_per_minute": 3}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      await earlyInMinute();
      await db.sql`delete from private.rate_limit_counters`;
      for (let i = 0; i < 3; i++) {
        const res = await ticketsApp.request('/tickets', {
          method: 'POST',
          headers: { authorization: `Bearer ${forged}`, 'content-type': 'application/json' },
          body: JSON.stringify({ title: 'Forged write' }),
        });
        expect(res.status).toBe(401);
        expect((await res.json()).error.code).toBe('invalid_api_key');
        // Nothing of the tenant's budget is told to a caller that did not verify.
        expect(res.headers.get('ratelimit-remaining')).toBeNull();
      }
      expect(await windowHits()).toBe(0);
      const admin = await call(ticketsApp, 'POST', '/tickets', { token: tok.admin, body: { title: 'Still room to write' } });
      expect(admin.status, JSON.stringify(admin.body)).toBe(201);
      expect(await windowHits()).toBeGreaterThan(0);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
    }
  });

  it("spends nothing of the tenant's write window for writes refused to their caller, nor for a revocation", async () => {
    // Customers sending writes to an admin-only route, or a leaked key writing in a
    // suspended tenant, were refused but spent the tenant's window: every colleague's
    // write was 429 for the minute, and so was the admin's revocation of that very key.
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['tickets:write'] });
    const tenantHits = async () =>
      (await db.sql`select coalesce(sum(hits), 0)::int as n from private.rate_limit_counters
        where scope = 'tenant' and key = ${acme}`)[0].n as number;
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, '{"requests_per_minute": 2}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      await earlyInMinute();
      await db.sql`delete from private.rate_limit_counters`;
      for (let i = 0; i < 3; i++) {
        const res = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: tok.user, body: { name: 'not theirs' } });
        expect([res.status, errorCode(res)]).toEqual([403, 'forbidden']);
      }
      expect(await tenantHits()).toBe(0);
      const staff = await call(ticketsApp, 'POST', '/tickets', { token: tok.agent, body: { title: 'Room left for staff' } });
      expect(staff.status, JSON.stringify(staff.body)).toBe(201);
      expect(await tenantHits()).toBe(1);

      await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
      for (let i = 0; i < 3; i++) {
        const res = await call(ticketsApp, 'POST', '/tickets', { token: key, body: { title: 'Leaked key' } });
        expect([res.status, errorCode(res)]).toEqual([403, 'tenant_suspended']);
      }
      expect(await tenantHits()).toBe(1);
      // However spent the window (here in an active tenant again), the admin revokes the key.
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
      await db.sql`update private.rate_limit_counters set hits = 100 where scope = 'tenant' and key = ${acme}`;
      const revoke = await call(tenantsApp, 'DELETE', `/tenants/${acme}/api-keys/${id}`, { token: tok.admin });
      expect(revoke.status, JSON.stringify(revoke.body)).toBe(204);
      expect(await tenantHits()).toBe(100);
      const [row] = await db.sql`select revoked_at from public.api_keys where id = ${id}`;
      expect(row.revoked_at).not.toBeNull();
    } finally {
      await db.sql`update public.tenants set status = 'active' where id = ${acme}`;
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
      await db.sql`delete from private.rate_limit_counters`;
    }
  });
  it("counts a write once its body is in: a body still arriving holds nothing of the tenant's window", async () => {
    const hits = async () =>
      (await db.sql`select coalesce(sum(hits), 0)::int as n from private.rate_limit_counters where scope = 'tenant' and key = ${acme}`)[0].n as number;
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, '{"requests_per_minute": 100}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      await earlyInMinute();
      await db.sql`delete from private.rate_limit_counters`;
      const [first, rest] = ['{"title": "Sent a byte', ' at a time"}'];
      const slow = stalledBody(first, rest);
      const pending = ticketsApp.request('/tickets', {
        method: 'POST',
        // Declared (a body without a length is read whole before anything else runs).
        headers: {
          authorization: `Bearer ${tok.agent}`,
          'content-type': 'application/json',
          'content-length': String(Buffer.byteLength(first + rest)),
        },
        body: slow.stream,
        duplex: 'half',
      } as RequestInit);
      await slow.firstPartRead();
      expect(await hits()).toBe(0);
      slow.release();
      expect((await pending).status).toBe(201);
      expect(await hits()).toBe(1);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
      await db.sql`delete from private.rate_limit_counters`;
    }
  });

  it('refuses a forged key before reading its body, on a write and on a read sent as POST', async () => {
    const { id } = await createKey(acme, tok.admin, { scopes: ['tickets:write', 'knowledge:read'] });
    await db.sql`update public.api_keys set revoked_at = now() where id = ${id}`; // the plan's key limit
    const forged = `tpk_live_${id.replace(/-/g, '')}_${'A'.repeat(43)}`;
    for (const [app, path] of [[ticketsApp, '/tickets'], [voiceApp, '/voice/knowledge-bases/search']] as const) {
      const [first, rest] = ['{"title": "Never', ' sent"}'];
      const slow = stalledBody(first, rest);
      const pending = app.request(path, {
        method: 'POST',
        headers: { authorization: `Bearer ${forged}`, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(first + rest)) },
        body: slow.stream,
        duplex: 'half',
      } as RequestInit);
      // Answered without the rest of the body (read first, it waited for it until the idle
      // timeout, then answered 408).
      const res = await pending;
      slow.release();
      expect([path, res.status, (await res.json()).error.code]).toEqual([path, 401, 'invalid_api_key']);
    }
  }, 40_000);

  it("gives the tenant's window back for writes that fail: refused in the handler, bad input, unknown ids", async () => {
    // Routes letting every member in refuse customers in the handler (a ticket's status,
    // deletion), and every route refuses bad input and unknown ids after the count: two
    // customers, each inside their own limit, kept every staff write of the tenant at 429.
    const { id, key } = await createKey(acme, tok.admin, { scopes: ['tickets:write'] });
    const hits = async (scope: string, k: string) =>
      (await db.sql`select coalesce(sum(hits), 0)::int as n from private.rate_limit_counters
        where scope = ${scope} and key = ${k}`)[0].n as number;
    const own = await call(ticketsApp, 'POST', '/tickets', { token: tok.user, body: { title: 'Mine, for the refusals' } });
    expect(own.status).toBe(201);
    await db.sql`insert into private.tenant_plan_overrides (tenant_id, limits) values (${acme}, '{"requests_per_minute": 2}')
      on conflict (tenant_id) do update set limits = excluded.limits`;
    try {
      await earlyInMinute();
      await db.sql`delete from private.rate_limit_counters`;
      const failing = [
        () => call(ticketsApp, 'POST', `/tickets/${crypto.randomUUID()}/status`, { token: tok.user, body: { status: 'closed' } }),
        () => call(ticketsApp, 'DELETE', `/tickets/${own.body.id}`, { token: tok.user }),
        () => call(ticketsApp, 'POST', '/tickets', { token: tok.user, body: { title: '' } }),
        () => call(ticketsApp, 'POST', '/tickets', { token: key, body: { priority: 'whenever' } }),
      ];
      for (let round = 0; round < 2; round++) {
        for (const send of failing) {
          const res = await send();
          expect([403, 404, 400, 422], JSON.stringify(res.body)).toContain(res.status);
        }
      }
      expect(await hits('tenant', acme)).toBe(0);
      // The callers' own windows keep theirs.
      expect(await hits('caller', `${acme}/${users.acmeUser.id}`)).toBe(6);
      const staff = await call(ticketsApp, 'POST', '/tickets', { token: tok.agent, body: { title: 'Room left for staff' } });
      expect(staff.status, JSON.stringify(staff.body)).toBe(201);
      const again = await call(ticketsApp, 'POST', '/tickets', { token: tok.agent, body: { title: 'And again' } });
      expect(again.status, JSON.stringify(again.body)).toBe(201);
      expect(await hits('tenant', acme)).toBe(2);
      // A success is kept: the window is spent.
      const third = await call(ticketsApp, 'POST', '/tickets', { token: tok.agent, body: { title: 'One too many' } });
      expect([third.status, third.body.error?.details?.scope]).toEqual([429, 'tenant']);
    } finally {
      await db.sql`delete from private.tenant_plan_overrides where tenant_id = ${acme}`;
      await db.sql`delete from private.rate_limit_counters`;
      // The plan's key limit is the scope matrix's to spend.
      await db.sql`update public.api_keys set revoked_at = now() where id = ${id}`;
    }
  });
});

// ---------------------------------------------------------------- the scope matrix

type Operation = {
  security?: Record<string, string[]>[];
  'x-api-key-scope'?: Scope;
  parameters?: { name: string; in: string }[];
};
type Doc = { paths: Record<string, Record<string, Operation>> };

async function operations() {
  const out: { fn: string; method: string; path: string; url: string; scope?: Scope; keyed: boolean; machine: boolean }[] = [];
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json() as Doc;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const url = path.replace(
          /\{(\w+)\}/g,
          (_, name: string) => name === 'tenantId' ? acme : name === 'priority' ? 'high' : '30000000-0000-4000-8000-00000000dead',
        );
        const keyed = (op.security ?? []).some((alt) => 'apiKey' in alt);
        // Machine routes take a machine credential, never a person's token; the telephony
        // provider's also take a tenant's key with their scope (its own numbers and calls).
        const machine = !(op.security ?? []).some((alt) => 'bearerAuth' in alt) && op['x-api-key-scope'] === undefined;
        out.push({ fn, method: method.toUpperCase(), path, url, scope: op['x-api-key-scope'], keyed, machine });
      }
    }
  }
  return out;
}

describe('the scope matrix, over every route of the tenants, tickets and voice functions', () => {
  it('documents apiKey exactly where a scope is named, and covers the scopes the routes use', async () => {
    const ops = await operations();
    expect(ops.length).toBeGreaterThan(80);
    for (const op of ops) expect(op.keyed, `${op.method} ${op.path}`).toBe(op.scope !== undefined);
    const used = new Set(ops.map((o) => o.scope).filter(Boolean));
    // Every scope a key may hold opens some route (voice:route: the call path for the
    // tenant's own telephony integration).
    expect([...used].sort()).toEqual([...API_KEY_SCOPES].sort());
    // People's routes without a scope: the caller's own account, tenant administration,
    // the keys themselves, a person's notifications, a customer's erasure (a key that
    // syncs customers must not erase them) and a call's delete (nor the key that reports
    // calls remove them).
    const unscoped = ops.filter((o) => !o.scope && !o.machine).map((o) => `${o.method} ${o.path}`);
    expect(
      unscoped.filter((o) => o.includes('/voice') || o.includes('macros') || o.includes('canned') || o.includes('followers')),
    )
      .toEqual(['POST /voice/customers/{id}/erasure', 'DELETE /voice/calls/{id}']);
    expect(unscoped).toEqual(expect.arrayContaining(['GET /tickets/notifications', 'POST /tickets/notifications/read']));
  });

  it('a route that can write needs a scope that writes: no read-only key changes anything', async () => {
    // Reads sent as POST for their body (a search with an embedding), by path: each says why.
    const READS_BY_POST: Record<string, string> = {
      'POST /voice/knowledge-bases/search': 'a search, its query embedding too long for a URL',
    };
    const wrong: string[] = [];
    for (const op of await operations()) {
      if (!op.scope || op.method === 'GET' || op.method === 'HEAD') continue;
      if (!op.scope.endsWith(':read')) continue;
      if (!READS_BY_POST[`${op.method} ${op.path}`]) wrong.push(`${op.method} ${op.path} (${op.scope})`);
    }
    expect(wrong).toEqual([]);
    // Every read-by-POST listed is still a route with a read scope.
    const ops = await operations();
    for (const key of Object.keys(READS_BY_POST)) {
      expect(ops.some((o) => `${o.method} ${o.path}` === key && o.scope?.endsWith(':read')), key).toBe(true);
    }
  });

  it("a key without the route's scope is 403 insufficient_scope; with it, it gets past the check; unscoped routes refuse keys", async () => {
    const ops = await operations();
    const keys = new Map<string, string>();
    const keyFor = async (scopes: Scope[]) => {
      const name = scopes.join(',');
      if (!keys.has(name)) keys.set(name, (await createKey(acme, tok.admin, { name: name.slice(0, 100), scopes })).key);
      return keys.get(name)!;
    };
    // Nothing written but the keys themselves.
    const writes = () =>
      db.sql`select count(*)::int as n from public.audit_logs where tenant_id = ${acme} and table_name <> 'api_keys'`;
    const before = await writes();
    let checked = 0;
    for (const op of ops) {
      const body = ['POST', 'PUT', 'PATCH'].includes(op.method) ? { not_a_field: true } : undefined;
      const all = await keyFor([...API_KEY_SCOPES]);
      if (op.machine) {
        // A tenant's key is no telephony credential.
        const res = await call(apps[op.fn], op.method, op.url, { token: all, body });
        expect([res.status, errorCode(res)], `${op.method} ${op.path}`).toEqual([401, 'telephony_credential_required']);
        checked++;
        continue;
      }
      if (!op.scope) {
        const res = await call(apps[op.fn], op.method, `${op.url}?limit=0`, { token: all, body });
        expect([res.status, errorCode(res)], `${op.method} ${op.path}`).toEqual([403, 'insufficient_scope']);
        checked++;
        continue;
      }
      const without = await keyFor(API_KEY_SCOPES.filter((s) => s !== op.scope));
      const refused = await call(apps[op.fn], op.method, `${op.url}?limit=0`, { token: without, body });
      expect([refused.status, errorCode(refused)], `${op.method} ${op.path} without ${op.scope}`).toEqual([
        403,
        'insufficient_scope',
      ]);
      expect(refused.body.error.details).toEqual({ required: op.scope });
      const only = await keyFor([op.scope]);
      // Input that fails validation: past the key and its scope, the route's own 422 (or
      // a 404 for ids that exist nowhere), and nothing written.
      const passed = await call(apps[op.fn], op.method, `${op.url}?limit=0`, { token: only, body });
      expect([401, 403], `${op.method} ${op.path} with ${op.scope}: ${JSON.stringify(passed.body)}`).not.toContain(passed.status);
      // ...and the route's own answer to it, not a fault.
      expect(passed.status, `${op.method} ${op.path} with ${op.scope}: ${JSON.stringify(passed.body)}`).toBeLessThan(500);
      checked++;
    }
    expect(checked).toBe(ops.length);
    expect(await writes()).toEqual(before);
  });
});

describe('secrets stay secret', () => {
  it('no key text or secret appears in audit rows or request logs', async () => {
    expect(issued.length).toBeGreaterThan(5);
    const secrets = issued.flatMap((k) => [k, k.slice(42)]);
    const [{ trail }] = await db.sql`select coalesce(string_agg(a::text, E'\n'), '') as trail from public.audit_logs a`;
    const [{ keys }] = await db.sql`select coalesce(string_agg(k::text, E'\n'), '') as keys from public.api_keys k`;
    expect(logLines.length).toBeGreaterThan(10);
    const logs = logLines.join('\n');
    for (const s of secrets) {
      expect(trail.includes(s), 'audit trail').toBe(false);
      expect(keys.includes(s), 'public.api_keys').toBe(false);
      expect(logs.includes(s), 'request log').toBe(false);
    }
    expect(logLines.some((l) => l.includes('"principal":"api_key"'))).toBe(true);
  });
});
