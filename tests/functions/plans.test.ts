// Plans, quotas and feature flags (issue 15), through the in-process apps with real
// tokens and a real database: entitlements in GET /tenants/me and /tenants/{id}, the
// catalogue, usage counted as it changes, limits at the boundary and under 50
// concurrent creates (tickets and voice agents), a feature off → 403 on every route it
// guards (read from the route tables of tenants, tickets and voice) and on the voice
// provider's call path, super-admin-only overrides, and other tenants' attempts.
import { readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app as ticketsApp } from '../../functions/tickets/app.ts';
import { app as voiceApp } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { runJobs } from '../../shared/jobs/runner.ts';
import { deliverWebhook } from '../../shared/jobs/tasks/deliver-webhook.ts';
import { handleLocalStorage } from '../../shared/storage.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { earlyInMinute } from '../helpers/minute.ts';
import { withNestedPlans } from '../helpers/nested-plans.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;

beforeAll(async () => {
  db = await freshDatabase('fn_plans');
  // 50 concurrent creates queue for 20 connections, as under load.
  auth = await configureAuth(db.url, { DB_POOL_MAX: '20', DB_CONNECT_TIMEOUT_MS: '120000' });
  tok.super = await supabaseToken(users.super);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  tok.globexUser = await supabaseToken(users.globexUser, { tenantId: globex });
  service = await apiKey('service_role', TEST_JWT_SECRET);
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const entitle = (tenantId: string, body: unknown, token = tok.super) =>
  call(tenantsApp, 'PATCH', `/tenants/${tenantId}/entitlements`, { token, body });

const usage = async (tenantId: string) =>
  (await call(tenantsApp, 'GET', `/tenants/${tenantId}/usage`, { token: tok.super })).body;

describe('entitlements', () => {
  it('the catalogue lists the three tiers, each with the same limits and features', async () => {
    const r = await call(tenantsApp, 'GET', '/tenants/plans', { token: tok.user });
    expect(r.status).toBe(200);
    expect(r.body.map((p: { id: string }) => p.id)).toEqual(['starter', 'pro', 'enterprise']);
    const keys = (p: { limits: object; features: object }) => [Object.keys(p.limits).sort(), Object.keys(p.features).sort()];
    for (const p of r.body) expect(keys(p)).toEqual(keys(r.body[0]));
    expect(Object.keys(r.body[0].limits)).toEqual(expect.arrayContaining([
      'members',
      'agents',
      'tickets_per_month',
      'storage_bytes',
      'webhook_endpoints',
      'api_keys',
      'voice_agents',
      'knowledge_bases',
      'knowledge_documents',
      'knowledge_bytes',
      'requests_per_minute',
    ]));
    expect(Object.keys(r.body[0].features)).toEqual(expect.arrayContaining([
      'voice',
      'knowledge_base',
      'chatwoot',
      'botpress',
      'n8n',
      'odoo',
      'sla_business_hours',
      'outbound_webhooks',
    ]));
    expect((await call(tenantsApp, 'GET', '/tenants/plans', {})).status).toBe(401);
  });

  it('GET /tenants/me and /tenants/{id} carry the effective limits and features', async () => {
    const me = await call(tenantsApp, 'GET', '/tenants/me', { token: tok.user });
    expect(me.status).toBe(200);
    expect(me.body.entitlements).toMatchObject({ plan: 'pro', features: { voice: true }, limits: { members: 2500 }, flags: {} });
    const g = await call(tenantsApp, 'GET', `/tenants/${globex}`, { token: tok.globexUser });
    expect(g.status).toBe(200);
    expect(g.body).toMatchObject({ id: globex, plan: 'starter', entitlements: { plan: 'starter', features: { voice: false } } });
    // A super-admin with no tenant: no active tenant, no entitlements.
    expect((await call(tenantsApp, 'GET', '/tenants/me', { token: tok.super })).body.entitlements).toBeNull();
    // Another tenant's stays a 404.
    const other = await call(tenantsApp, 'GET', `/tenants/${acme}`, { token: tok.globexUser });
    expect(other.status).toBe(404);
  });

  it('super-admins override limits and features and set flags; a null removes one', async () => {
    const r = await entitle(globex, {
      limits: { members: 3 },
      features: { voice: true },
      flags: { new_inbox: 'variant-b', beta: true },
    });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({
      plan: 'starter',
      limits: { members: 3, agents: 50 },
      features: { voice: true },
      flags: { new_inbox: 'variant-b', beta: true },
      overridden: { limits: ['members'], features: ['voice'] },
    });
    const seen = await call(tenantsApp, 'GET', '/tenants/me', { token: tok.globexUser });
    expect(seen.body.entitlements).toMatchObject({ limits: { members: 3 }, features: { voice: true }, flags: { beta: true } });
    const back = await entitle(globex, { limits: { members: null }, features: { voice: null }, flags: { beta: null } });
    expect(back.body).toMatchObject({
      limits: { members: 250 },
      features: { voice: false },
      flags: { new_inbox: 'variant-b' },
      overridden: { limits: [], features: [] },
    });
    expect(back.body.flags).not.toHaveProperty('beta');
    // Each change is in the tenant's audit trail, with the super-admin as the actor.
    const trail = await db.sql`select table_name, action, actor_user_id from public.audit_logs
      where tenant_id = ${globex} and table_name in ('tenant_plan_overrides', 'tenant_feature_flags') order by id`;
    expect(trail.map((r) => `${r.table_name} ${r.action}`)).toEqual(expect.arrayContaining([
      'tenant_plan_overrides INSERT',
      'tenant_plan_overrides UPDATE',
      'tenant_feature_flags INSERT',
      'tenant_feature_flags DELETE',
    ]));
    expect(new Set(trail.map((r) => r.actor_user_id))).toEqual(new Set([users.super.id]));
    const unknown = await entitle(globex, { limits: { nonsense: 1 } });
    expect([unknown.status, errorCode(unknown)]).toEqual([400, 'invalid_entitlement']);
    expect((await entitle(globex, {})).status).toBe(422);
    expect((await entitle(globex, { flags: { 'Bad Name': true } })).status).toBe(422);
  });

  it('only super-admins change them: admins get 403, other tenants 404, and nothing changes', async () => {
    const before = await db.sql`select * from private.tenant_plan_overrides order by tenant_id`;
    const flagsBefore = await db.sql`select * from private.tenant_feature_flags order by tenant_id, flag`;
    const own = await entitle(acme, { limits: { members: 1_000_000 } }, tok.admin);
    expect([own.status, errorCode(own)]).toEqual([403, 'forbidden']);
    const cross = await entitle(acme, { features: { voice: false } }, tok.globexAdmin);
    expect(cross.status).toBe(404);
    // The SQL path refuses the same, whoever calls it.
    const direct = await call(tenantsApp, 'GET', `/tenants/${acme}/usage`, { token: tok.globexAdmin });
    expect(direct.status).toBe(404);
    const usageByUser = await call(tenantsApp, 'GET', `/tenants/${acme}/usage`, { token: tok.user });
    expect(usageByUser.status).toBe(403);
    expect(await db.sql`select * from private.tenant_plan_overrides order by tenant_id`).toEqual(before);
    expect(await db.sql`select * from private.tenant_feature_flags order by tenant_id, flag`).toEqual(flagsBefore);
  });
});

describe('usage and limits', () => {
  it('counts members and agents as they change, and refuses the one past the limit', async () => {
    const start = (await usage(globex)).metrics;
    expect(start.members).toEqual({ used: 3, limit: 250 });
    expect(start.agents).toEqual({ used: 2, limit: 50 });
    await entitle(globex, { limits: { members: 4 } });
    const [u1, u2] = await db.sql`insert into public.users (email) values ('m1@globex.test'), ('m2@globex.test') returning id`;
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${globex}, ${u1.id}, 'agent')`;
    expect((await usage(globex)).metrics).toMatchObject({ members: { used: 4, limit: 4 }, agents: { used: 3 } });
    const over = await db.sql`insert into public.memberships (tenant_id, user_id) values (${globex}, ${u2.id})`.catch((e) => e);
    expect(over).toMatchObject({ code: 'PT403' });
    expect(JSON.parse(over.detail)).toEqual({
      code: 'plan_limit_reached',
      details: { limit: 'members', max: 4, usage: 4, requested: 1, plan: 'starter' },
    });
    await db.sql`update public.memberships set role = 'user' where tenant_id = ${globex} and user_id = ${u1.id}`;
    expect((await usage(globex)).metrics.agents.used).toBe(2);
    await db.sql`delete from public.memberships where tenant_id = ${globex} and user_id = ${u1.id}`;
    expect((await usage(globex)).metrics.members.used).toBe(3);
    await db.sql`insert into public.memberships (tenant_id, user_id) values (${globex}, ${u2.id})`;
    expect((await usage(globex)).metrics.members.used).toBe(4);
    await entitle(globex, { limits: { members: null } });
  });

  it('answers 403 plan_limit_reached at the ticket limit, with the limit and usage in details', async () => {
    const used = (await usage(globex)).metrics.tickets_per_month.used as number;
    await entitle(globex, { limits: { tickets_per_month: used + 1 } });
    const ok = await call(ticketsApp, 'POST', '/tickets', { token: tok.globexUser, body: { title: 'The last one this month' } });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    const over = await call(ticketsApp, 'POST', '/tickets', { token: tok.globexUser, body: { title: 'One too many' } });
    expect(over.status).toBe(403);
    expect(over.body.error).toMatchObject({
      code: 'plan_limit_reached',
      details: { limit: 'tickets_per_month', max: used + 1, usage: used + 1, requested: 1 },
    });
    expect((await usage(globex)).metrics.tickets_per_month).toEqual({ used: used + 1, limit: used + 1 });
    await entitle(globex, { limits: { tickets_per_month: null } });
  });

  it('50 concurrent creates at the limit never overshoot it', async () => {
    const used = (await usage(acme)).metrics.tickets_per_month.used as number;
    const room = 7;
    await entitle(acme, { limits: { tickets_per_month: used + room } });
    const [{ n: before }] = await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme}`;
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => call(ticketsApp, 'POST', '/tickets', { token: tok.user, body: { title: `Rush ${i}` } }),
      ),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(room);
    expect(statuses.filter((s) => s === 403)).toHaveLength(50 - room);
    for (const r of results.filter((x) => x.status === 403)) expect(errorCode(r)).toBe('plan_limit_reached');
    const [{ n: after }] = await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${acme}`;
    expect(after - before).toBe(room);
    expect((await usage(acme)).metrics.tickets_per_month).toEqual({ used: used + room, limit: used + room });
    await entitle(acme, { limits: { tickets_per_month: null } });
  });

  it('counts storage bytes of attachments and refuses an upload past the limit', async () => {
    const [ticket] = await db
      .sql`insert into public.tickets (tenant_id, title, created_by) values (${globex}, 'Files', ${users.globexUser.id}) returning id`;
    const used = (await usage(globex)).metrics.storage_bytes.used as number;
    await entitle(globex, { limits: { storage_bytes: used + 1000 } });
    await db
      .sql`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes) values (${globex}, ${ticket.id}, 'a.txt', 600)`;
    const over = await db
      .sql`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes) values (${globex}, ${ticket.id}, 'b.txt', 401)`
      .catch((e) => e);
    expect(JSON.parse(over.detail)).toMatchObject({
      code: 'plan_limit_reached',
      details: { limit: 'storage_bytes', usage: used + 600, requested: 401 },
    });
    await db.sql`delete from public.attachments where tenant_id = ${globex} and ticket_id = ${ticket.id}`;
    expect((await usage(globex)).metrics.storage_bytes.used).toBe(used);
    await entitle(globex, { limits: { storage_bytes: null } });
  });

  it("a tenant at its storage limit makes room by deleting attachments (its admins alone): the bytes and the object go", async () => {
    const [ticket] = await db
      .sql`insert into public.tickets (tenant_id, title, created_by) values (${globex}, 'Storage is full', ${users.globexUser.id}) returning id`;
    const used = (await usage(globex)).metrics.storage_bytes.used as number;
    await entitle(globex, { limits: { storage_bytes: used + 1000 } });
    try {
      const [big] = await db.sql`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes)
        values (${globex}, ${ticket.id}, 'big.bin', 900) returning id, path`;
      const register = () =>
        call(ticketsApp, 'POST', `/tickets/${ticket.id}/attachments`, {
          token: tok.globexUser,
          body: { file_name: 'next.txt', content_type: 'text/plain', size_bytes: 200 },
        });
      expect(errorCode(await register())).toBe('plan_limit_reached');
      const path = `/tickets/${ticket.id}/attachments/${big.id}`;
      // Not its customer, nor another tenant's admin (who does not see the ticket).
      const customer = await call(ticketsApp, 'DELETE', path, { token: tok.globexUser });
      expect([customer.status, errorCode(customer)]).toEqual([403, 'forbidden']);
      expect((await call(ticketsApp, 'DELETE', path, { token: tok.admin })).status).toBe(404);
      expect((await usage(globex)).metrics.storage_bytes.used).toBe(used + 900);
      const removed = await call(ticketsApp, 'DELETE', path, { token: tok.globexAdmin });
      expect(removed.status).toBe(204);
      expect((await usage(globex)).metrics.storage_bytes.used).toBe(used);
      const jobs = await db.sql`select payload ->> 'object' as object from private.jobs
        where task = 'storage-delete' and payload ->> 'object' = ${big.path}`;
      expect(jobs).toHaveLength(2);
      expect((await call(ticketsApp, 'DELETE', path, { token: tok.globexAdmin })).status).toBe(404);
      expect((await register()).status).toBe(201);
    } finally {
      await db.sql`delete from public.attachments where tenant_id = ${globex} and ticket_id = ${ticket.id}`;
      await db.sql`delete from private.jobs where task in ('attachment-upload-check', 'storage-delete')`;
      await entitle(globex, { limits: { storage_bytes: null } });
    }
  });

  it('gives back the storage of a file registered but never uploaded once its upload URL expired; one uploaded but never read is kept', async () => {
    const [ticket] = await db
      .sql`insert into public.tickets (tenant_id, title, created_by) values (${globex}, 'Files again', ${users.globexUser.id}) returning id`;
    const used = (await usage(globex)).metrics.storage_bytes.used as number;
    await entitle(globex, { limits: { storage_bytes: used + 1000 } });
    const register = (size: number) =>
      call(ticketsApp, 'POST', `/tickets/${ticket.id}/attachments`, {
        token: tok.globexUser,
        body: { file_name: `f${size}.txt`, content_type: 'text/plain', size_bytes: size },
      });
    try {
      // A customer announces 600 bytes and never sends them; 400 more arrive but nobody reads them.
      const abandoned = await register(600);
      expect(abandoned.status, JSON.stringify(abandoned.body)).toBe(201);
      const sent = await register(400);
      expect(sent.status).toBe(201);
      const put = await handleLocalStorage(new Request(sent.body.upload.url, { method: 'PUT', body: new Uint8Array(400) }));
      expect(put.status).toBe(200);
      // Stored in the test run's own folder, not in the developer's `.local/storage`.
      const storageRoot = process.env.LOCAL_STORAGE_DIR ?? '.local/storage';
      expect(path.relative(os.tmpdir(), storageRoot)).toMatch(/^platform-test-[^/]+\/storage$/);
      expect(readdirSync(storageRoot, { recursive: true }).map(String)).toContainEqual(expect.stringMatching(/f400\.txt$/));
      const full = await register(1);
      expect([full.status, errorCode(full)]).toEqual([403, 'plan_limit_reached']);
      // The upload URLs expire; the checks queued with the registrations run.
      const checks = await db.sql`update private.jobs set run_at = now()
        where task = 'attachment-upload-check'
          and payload ->> 'attachment_id' in (${abandoned.body.attachment.id}, ${sent.body.attachment.id}) returning id`;
      expect(checks).toHaveLength(2);
      const report = await runJobs({ tasks: ['attachment-upload-check'], budgetMs: 10_000 });
      expect(report.tasks['attachment-upload-check']).toMatchObject({ claimed: 2, completed: 2, released: 1, uploaded: 1 });
      expect(await db.sql`select file_name, status from public.attachments where ticket_id = ${ticket.id}`).toEqual([
        { file_name: 'f400.txt', status: 'uploaded' },
      ]);
      expect((await usage(globex)).metrics.storage_bytes.used).toBe(used + 400);
      // One registered before the checks existed (or whose check an operator deleted):
      // the daily prune queues its check.
      const older = await register(600);
      expect(older.status).toBe(201);
      await db.sql`delete from private.jobs
        where task = 'attachment-upload-check' and payload ->> 'attachment_id' = ${older.body.attachment.id}`;
      await db.sql`update public.attachments set created_at = now() - interval '3 hours' where id = ${older.body.attachment.id}`;
      expect((await register(1)).status).toBe(403);
      await db.sql`select private.add_job('prune')`;
      const daily = await runJobs({ tasks: ['prune'], budgetMs: 10_000 });
      expect(daily.tasks.prune).toMatchObject({ completed: 1, attachment_checks: 1 });
      const late = await runJobs({ tasks: ['attachment-upload-check'], budgetMs: 10_000 });
      expect(late.tasks['attachment-upload-check']).toMatchObject({ released: 1 });
      expect((await usage(globex)).metrics.storage_bytes.used).toBe(used + 400);
      // One registered before keys were made Storage-safe (its file name as given, which
      // Storage refuses as a key: it can hold no file) is released too, not retried for ever.
      const legacy = await register(600);
      expect(legacy.status).toBe(201);
      await db.sql`update public.attachments set path = ${`${globex}/${ticket.id}/${legacy.body.attachment.id}/Rechnung März #3.pdf`}
        where id = ${legacy.body.attachment.id}`;
      await db.sql`update private.jobs set run_at = now()
        where task = 'attachment-upload-check' and payload ->> 'attachment_id' = ${legacy.body.attachment.id}`;
      await db.sql`delete from private.jobs where task = 'storage-delete'`;
      // As on a hosted project (Supabase Storage, which refuses the key; here no Storage
      // answers at all): the check asks it nothing, and neither do the release's deletes.
      const backend = { STORAGE_BACKEND: process.env.STORAGE_BACKEND, SUPABASE_URL: process.env.SUPABASE_URL };
      process.env.STORAGE_BACKEND = 'supabase';
      process.env.SUPABASE_URL = 'http://127.0.0.1:9';
      let legacyCheck;
      try {
        legacyCheck = await runJobs({ tasks: ['attachment-upload-check'], budgetMs: 10_000 });
        await db.sql`update private.jobs set run_at = now() where task = 'storage-delete'`;
        legacyCheck.tasks['storage-delete'] = (await runJobs({ tasks: ['storage-delete'], budgetMs: 10_000 })).tasks['storage-delete'];
      } finally {
        for (const [k, v] of Object.entries(backend)) v === undefined ? delete process.env[k] : (process.env[k] = v);
      }
      expect(legacyCheck.tasks['attachment-upload-check']).toMatchObject({ completed: 1, released: 1 });
      expect(legacyCheck.tasks['storage-delete']).toMatchObject({ completed: 2, absent: 2 });
      expect(await db.sql`select 1 from public.attachments where id = ${legacy.body.attachment.id}`).toEqual([]);
      expect((await usage(globex)).metrics.storage_bytes.used).toBe(used + 400);
      expect((await register(600)).status).toBe(201);
    } finally {
      await db.sql`delete from public.attachments where tenant_id = ${globex} and ticket_id = ${ticket.id}`;
      await db.sql`delete from private.jobs where task in ('attachment-upload-check', 'storage-delete')`;
      await entitle(globex, { limits: { storage_bytes: null } });
    }
  });
});

describe('voice agents', () => {
  const LLM = { model: 'gpt-4o-mini', system_prompt: 'Front desk.' };
  let phones = 0;
  const phone = () => `+1415777${String(phones++).padStart(4, '0')}`;
  const createAgent = (body: Record<string, unknown> = {}, token = tok.admin) =>
    call(voiceApp, 'POST', '/voice/agents', {
      token,
      body: { name: 'Desk', phone: phone(), voice_id: 'v', llm_config: LLM, ...body },
    });
  const voiceAgents = async (tenantId: string) => (await usage(tenantId)).metrics.voice_agents;

  it('counts active agents: past the limit a create or an activation is 403 plan_limit_reached; parking one gives its place back', async () => {
    expect(await voiceAgents(acme)).toEqual({ used: 0, limit: 10 });
    await entitle(acme, { limits: { voice_agents: 1 } });
    const first = await createAgent();
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    // An inactive agent routes nothing and costs nothing.
    const parked = await createAgent({ active: false });
    expect(parked.status).toBe(201);
    expect(await voiceAgents(acme)).toEqual({ used: 1, limit: 1 });
    const [{ n: before }] = await db.sql`select count(*)::int as n from public.voice_agents where tenant_id = ${acme}`;
    const over = await createAgent();
    expect(over.status).toBe(403);
    expect(over.body.error).toMatchObject({
      code: 'plan_limit_reached',
      details: { limit: 'voice_agents', max: 1, usage: 1, requested: 1, plan: 'pro' },
    });
    const activate = await call(voiceApp, 'PATCH', `/voice/agents/${parked.body.id}`, {
      token: tok.admin,
      body: { active: true },
    });
    expect([activate.status, errorCode(activate)]).toEqual([403, 'plan_limit_reached']);
    const [{ n: after }] = await db.sql`select count(*)::int as n from public.voice_agents where tenant_id = ${acme} and active`;
    expect(after).toBe(1);
    expect((await db.sql`select count(*)::int as n from public.voice_agents where tenant_id = ${acme}`)[0].n).toBe(before);
    // Editing an active agent is not a new one.
    expect(
      (await call(voiceApp, 'PATCH', `/voice/agents/${first.body.id}`, { token: tok.admin, body: { greeting: 'Hi' } })).status,
    ).toBe(200);
    // Deactivating the first makes room for the parked one; deleting gives the place back too.
    expect(
      (await call(voiceApp, 'PATCH', `/voice/agents/${first.body.id}`, { token: tok.admin, body: { active: false } })).status,
    ).toBe(200);
    expect(
      (await call(voiceApp, 'PATCH', `/voice/agents/${parked.body.id}`, { token: tok.admin, body: { active: true } })).status,
    ).toBe(200);
    expect(await voiceAgents(acme)).toEqual({ used: 1, limit: 1 });
    expect((await call(voiceApp, 'DELETE', `/voice/agents/${parked.body.id}`, { token: tok.admin })).status).toBe(204);
    expect(await voiceAgents(acme)).toEqual({ used: 0, limit: 1 });
    // The direct table path is held to the same limit.
    await db
      .sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config) values (${acme}, 'Direct', ${phone()}, 'v', ${
      db.sql.json(LLM)
    })`;
    const direct = await db
      .sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config) values (${acme}, 'Direct 2', ${phone()}, 'v', ${
      db.sql.json(LLM)
    })`
      .catch((e) => e);
    expect(JSON.parse(direct.detail)).toMatchObject({
      code: 'plan_limit_reached',
      details: { limit: 'voice_agents', max: 1, usage: 1 },
    });
    // The counter equals the active agents.
    const [{ n: active }] = await db.sql`select count(*)::int as n from public.voice_agents where tenant_id = ${acme} and active`;
    expect((await voiceAgents(acme)).used).toBe(active);
    await entitle(acme, { limits: { voice_agents: null } });
  });

  it('50 concurrent creates at the limit never overshoot it', async () => {
    const used = (await voiceAgents(acme)).used as number;
    const room = 4;
    await entitle(acme, { limits: { voice_agents: used + room } });
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => createAgent({ name: `Rush ${i}` })));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(room);
    expect(statuses.filter((s) => s === 403)).toHaveLength(50 - room);
    for (const r of results.filter((x) => x.status === 403)) expect(errorCode(r)).toBe('plan_limit_reached');
    const [{ n }] = await db.sql`select count(*)::int as n from public.voice_agents where tenant_id = ${acme} and active`;
    expect(n).toBe(used + room);
    expect(await voiceAgents(acme)).toEqual({ used: used + room, limit: used + room });
    await entitle(acme, { limits: { voice_agents: null } });
  });

  it('starter (voice off, 0 agents): the voice feature is refused before the limit, on the routes and in SQL', async () => {
    const r = await createAgent({}, tok.globexAdmin);
    expect(r.status).toBe(403);
    expect(r.body.error).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'voice', plan: 'starter' } });
    const direct = await db
      .sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config) values (${globex}, 'No', ${phone()}, 'v', ${
      db.sql.json(LLM)
    })`
      .catch((e) => e);
    expect(JSON.parse(direct.detail)).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'voice' } });
    // With the feature but no room: the limit answers.
    await entitle(globex, { features: { voice: true } });
    const full = await createAgent({}, tok.globexAdmin);
    expect(full.body.error).toMatchObject({ code: 'plan_limit_reached', details: { limit: 'voice_agents', max: 0, usage: 0 } });
    // Parked agents need neither; knowledge bases need knowledge_base.
    expect((await createAgent({ active: false }, tok.globexAdmin)).status).toBe(201);
    const kb = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${globex}, 'No')`.catch((e) => e);
    expect(JSON.parse(kb.detail)).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'knowledge_base' } });
    await entitle(globex, { features: { voice: null } });
    expect((await usage(globex)).metrics.voice_agents).toEqual({ used: 0, limit: 0 });
  });
});

describe('knowledge base', () => {
  type Metric = { used: number; limit: number | null };
  const knowledge = async (tenantId: string): Promise<{ bases: Metric; documents: Metric; bytes: Metric }> => {
    const m = (await usage(tenantId)).metrics;
    return { bases: m.knowledge_bases, documents: m.knowledge_documents, bytes: m.knowledge_bytes };
  };
  /** The tenant's knowledge as stored, and what its writes leave behind (chunks, postings,
   *  audit rows): a refused write changes none of it. */
  const stored = async (tenantId: string) => {
    const [r] = await db.sql`
      select (select count(*) from public.voice_knowledge_bases where tenant_id = ${tenantId})::int as bases,
             (select count(*) from public.kb_documents where tenant_id = ${tenantId})::int as documents,
             (select coalesce(sum(octet_length(content)), 0) from public.kb_documents where tenant_id = ${tenantId})::int as bytes,
             (select count(*) from public.kb_chunks where tenant_id = ${tenantId})::int as chunks,
             (select count(*) from private.kb_postings where tenant_id = ${tenantId})::int as postings,
             (select count(*) from public.audit_logs where tenant_id = ${tenantId})::int as audited`;
    return r as { bases: number; documents: number; bytes: number; chunks: number; postings: number; audited: number };
  };
  /** The usage metrics agree with what is stored. */
  const expectCounted = async (tenantId: string) => {
    const [k, s] = await Promise.all([knowledge(tenantId), stored(tenantId)]);
    expect([k.bases.used, k.documents.used, k.bytes.used]).toEqual([s.bases, s.documents, s.bytes]);
  };
  /** Runs `fn` with these limit overrides on acme, removed after it whatever happens. */
  const withLimits = async (limits: Record<string, number>, fn: () => Promise<void>) => {
    await entitle(acme, { limits });
    try {
      await fn();
    } finally {
      await entitle(acme, { limits: Object.fromEntries(Object.keys(limits).map((k) => [k, null])) });
    }
  };
  const createKb = (name: string, token = tok.admin) => call(voiceApp, 'POST', '/voice/knowledge-bases', { token, body: { name } });
  const upload = (kbId: string, content: string, title = 'Doc', token = tok.admin) =>
    call(voiceApp, 'POST', `/voice/knowledge-bases/${kbId}/documents`, { token, body: { title, content } });

  it('counts knowledge bases: past the limit a create is 403 plan_limit_reached on the route and in SQL; a deletion gives its place back', async () => {
    const before = await stored(acme);
    expect((await knowledge(acme)).bases).toEqual({ used: before.bases, limit: 20 });
    await withLimits({ knowledge_bases: before.bases + 1 }, async () => {
      const first = await createKb('Quota one');
      expect(first.status, JSON.stringify(first.body)).toBe(201);
      const over = await createKb('Quota two');
      expect(over.status).toBe(403);
      expect(over.body.error).toMatchObject({
        code: 'plan_limit_reached',
        details: { limit: 'knowledge_bases', max: before.bases + 1, usage: before.bases + 1, requested: 1, plan: 'pro' },
      });
      // The direct path (PostgREST, an admin under RLS) is held to the same limit.
      const direct = await probeAs(
        db.sql,
        'authenticated',
        supabaseClaims(users.acmeAdmin, acme),
        (tx) => tx`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Quota direct')`,
      );
      expect(direct.ok).toBe(false);
      expect(direct.ok ? null : direct.error.code).toBe('PT403');
      expect((await stored(acme)).bases).toBe(before.bases + 1);
      expect((await call(voiceApp, 'DELETE', `/voice/knowledge-bases/${first.body.id}`, { token: tok.admin })).status).toBe(204);
      expect((await knowledge(acme)).bases.used).toBe(before.bases);
      const again = await createKb('Quota again');
      expect(again.status).toBe(201);
      await expectCounted(acme);
      await call(voiceApp, 'DELETE', `/voice/knowledge-bases/${again.body.id}`, { token: tok.admin });
    });
  });

  it("counts documents and their content's UTF-8 bytes: past either limit an upload or a longer content is 403 and changes nothing; deletions give back", async () => {
    const kb = (await createKb('Bytes')).body.id as string;
    const before = await stored(acme);
    expect(await knowledge(acme)).toMatchObject({
      documents: { used: before.documents, limit: 10000 },
      bytes: { used: before.bytes, limit: 268435456 },
    });
    await withLimits({ knowledge_bytes: before.bytes + 100, knowledge_documents: before.documents + 2 }, async () => {
      // 'é' is two bytes: 30 of them make 60.
      const doc = await upload(kb, 'é'.repeat(30));
      expect(doc.status, JSON.stringify(doc.body)).toBe(201);
      expect((await knowledge(acme)).bytes.used).toBe(before.bytes + 60);
      const after = await stored(acme);
      const over = await upload(kb, 'x'.repeat(41));
      expect(over.status).toBe(403);
      expect(over.body.error).toMatchObject({
        code: 'plan_limit_reached',
        details: { limit: 'knowledge_bytes', max: before.bytes + 100, usage: before.bytes + 60, requested: 41, plan: 'pro' },
      });
      expect(await stored(acme)).toEqual(after);
      // A new content counts its difference: 60 → 100 bytes fits, 60 → 101 does not.
      const patch = (body: Record<string, string>) =>
        call(voiceApp, 'PATCH', `/voice/knowledge-bases/${kb}/documents/${doc.body.id}`, { token: tok.admin, body });
      const tooLong = await patch({ content: 'y'.repeat(101) });
      expect(tooLong.status).toBe(403);
      expect(tooLong.body.error).toMatchObject({
        code: 'plan_limit_reached',
        details: { limit: 'knowledge_bytes', usage: before.bytes + 60, requested: 41 },
      });
      expect(await stored(acme)).toEqual(after);
      const [kept] = await db.sql`select content from public.kb_documents where tenant_id = ${acme} and id = ${doc.body.id}`;
      expect(kept.content).toBe('é'.repeat(30));
      // Its title and source are not content: they count under knowledge_documents.
      expect((await patch({ title: 'A much longer title', source: 's'.repeat(500) })).status).toBe(200);
      expect((await patch({ content: 'y'.repeat(100) })).status).toBe(200);
      expect((await knowledge(acme)).bytes.used).toBe(before.bytes + 100);
      // The direct path: an admin's insert and update under RLS.
      const claims = supabaseClaims(users.acmeAdmin, acme);
      const direct = await probeAs(db.sql, 'authenticated', claims, (tx) =>
        tx`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${acme}, ${kb}, 'D', 'e')`);
      expect(direct.ok ? null : direct.error.code).toBe('PT403');
      const directUpdate = await probeAs(db.sql, 'authenticated', claims, (tx) =>
        tx`update public.kb_documents set content = content || '!' where tenant_id = ${acme} and id = ${doc.body.id}`);
      expect(directUpdate.ok ? null : directUpdate.error.code).toBe('PT403');
      // Shorter is always allowed, also past a lowered limit.
      await entitle(acme, { limits: { knowledge_bytes: before.bytes } });
      expect((await patch({ content: 'short' })).status).toBe(200);
      expect((await knowledge(acme)).bytes.used).toBe(before.bytes + 5);
      // The documents' own limit: room for one more, then none.
      await entitle(acme, { limits: { knowledge_bytes: null } });
      expect((await upload(kb, 'second')).status).toBe(201);
      const third = await upload(kb, 'third');
      expect(third.status).toBe(403);
      expect(third.body.error).toMatchObject({
        code: 'plan_limit_reached',
        details: { limit: 'knowledge_documents', max: before.documents + 2, usage: before.documents + 2, requested: 1 },
      });
      await expectCounted(acme);
      // Deleting the knowledge base gives back its documents and their bytes, and its place.
      expect((await call(voiceApp, 'DELETE', `/voice/knowledge-bases/${kb}`, { token: tok.admin })).status).toBe(204);
      expect(await knowledge(acme)).toMatchObject({
        bases: { used: before.bases - 1 },
        documents: { used: before.documents },
        bytes: { used: before.bytes },
      });
      await expectCounted(acme);
    });
  });

  it('20 concurrent uploads at the byte limit never overshoot it', async () => {
    const kb = (await createKb('Rush')).body.id as string;
    const { bytes: used } = await stored(acme);
    const each = '0000 '.repeat(200).length;
    await withLimits({ knowledge_bytes: used + 3 * each }, async () => {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => upload(kb, `${String(i).padStart(4, '0')} `.repeat(200))));
      expect(results.map((r) => r.status).sort()).toEqual([...Array(3).fill(201), ...Array(17).fill(403)]);
      for (const r of results.filter((x) => x.status === 403)) expect(errorCode(r)).toBe('plan_limit_reached');
      expect((await stored(acme)).bytes).toBe(used + 3 * each);
      expect((await knowledge(acme)).bytes).toEqual({ used: used + 3 * each, limit: used + 3 * each });
    });
    await call(voiceApp, 'DELETE', `/voice/knowledge-bases/${kb}`, { token: tok.admin });
    await expectCounted(acme);
    // Each upload locks the tenant's counter until it commits, so the count is the last
    // of a document's row triggers (they fire in name order): the chunks and their
    // postings are written before it, while other uploads of the tenant go on.
    const triggers = await db.sql`
      select tgname from pg_trigger
      where tgrelid = 'public.kb_documents'::regclass and not tgisinternal
        and tgtype & 1 = 1 and tgtype & 2 = 0 -- for each row, after
      order by tgname collate "C"`;
    expect(triggers.at(-1)?.tgname).toBe('zz_count_usage');
    expect(triggers.map((t) => t.tgname)).toEqual(expect.arrayContaining(['kb_document_chunks', 'kb_document_chunks_changed']));
  });

  it('an upload or a new content past the limit is refused before its chunks are written', async () => {
    const kb = (await createKb('No work')).body.id as string;
    const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${acme}, ${kb}, 'Small', 'small') returning id`;
    const big = Array.from({ length: 50 }, (_, i) => `Paragraph ${i} about parking and refunds. `.repeat(20)).join('\n\n');
    await withLimits({ knowledge_bytes: (await stored(acme)).bytes }, async () => {
      // The statements the refused writes ran, nested ones included (auto_explain).
      const { result, plans } = await withNestedPlans(db.adminUrl, async (probe) => [
        await probe`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
          values (${acme}, ${kb}, 'Big', ${big})`.catch((e) => e),
        await probe`update public.kb_documents set content = ${big} where tenant_id = ${acme} and id = ${doc.id}`.catch((e) => e),
      ]);
      for (const e of result) expect(JSON.parse(e.detail)).toMatchObject({ code: 'plan_limit_reached', details: { limit: 'knowledge_bytes' } });
      // The plans were logged (the look at the counter among them), none writing chunks.
      expect(plans.some((p) => /usage_counters/.test(p['Query Text']))).toBe(true);
      expect(plans.filter((p) => /kb_chunks|kb_postings/.test(p['Query Text']))).toEqual([]);
      // Another tenant's admin writing under acme's id is refused by the policy, and
      // learns nothing of acme's quota: the look runs after the row's checks.
      const theirs = await probeAs(
        db.sql,
        'authenticated',
        supabaseClaims(users.globexAdmin, globex),
        (tx) => tx`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${acme}, ${kb}, 'Probe', 'x')`,
      );
      expect(theirs.ok ? null : theirs.error.code).toBe('42501');
      const ours = await probeAs(
        db.sql,
        'authenticated',
        supabaseClaims(users.acmeAdmin, acme),
        (tx) => tx`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${acme}, ${kb}, 'Probe', 'x')`,
      );
      expect(ours.ok ? null : ours.error.code).toBe('PT403');
      // A content breaking the table's check is that check's error, not the quota's.
      const blank = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
        values (${acme}, ${kb}, 'Blank', '   ')`.catch((e) => e);
      expect(blank.code).toBe('23514');
    });
    await call(voiceApp, 'DELETE', `/voice/knowledge-bases/${kb}`, { token: tok.admin });
    await expectCounted(acme);
  });

  it('a document of a tenant without the feature and without room: the feature answers, on upload and on new content', async () => {
    await entitle(globex, {
      features: { knowledge_base: true },
      limits: { knowledge_bases: 1, knowledge_documents: 1, knowledge_bytes: 10 },
    });
    let kb: string;
    let doc: string;
    try {
      [{ id: kb }] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${globex}, 'Parked') returning id`;
      [{ id: doc }] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
        values (${globex}, ${kb}, 'Parked', 'ten bytes!') returning id`;
    } finally {
      // Back to starter's: no knowledge_base, and 0 of each.
      await entitle(globex, { features: { knowledge_base: null }, limits: { knowledge_bases: null, knowledge_documents: null, knowledge_bytes: null } });
    }
    const as = (method: string, path: string, body?: unknown) => call(voiceApp, method, path, { token: tok.globexAdmin, body });
    const upload = await as('POST', `/voice/knowledge-bases/${kb}/documents`, { title: 'New', content: 'more' });
    expect([upload.status, upload.body.error?.code]).toEqual([403, 'feature_not_in_plan']);
    const longer = await as('PATCH', `/voice/knowledge-bases/${kb}/documents/${doc}`, { content: 'eleven bytes' });
    expect([longer.status, longer.body.error?.code]).toEqual([403, 'feature_not_in_plan']);
    // Tidying up what it has is not new knowledge: a title, a source, the base's name.
    const [before] = await db.sql`select content, updated_at from public.kb_documents where id = ${doc}`;
    const retitled = await as('PATCH', `/voice/knowledge-bases/${kb}/documents/${doc}`, { title: 'Old menu', source: null });
    expect([retitled.status, retitled.body.title], JSON.stringify(retitled.body)).toEqual([200, 'Old menu']);
    const [after] = await db.sql`select content from public.kb_documents where id = ${doc}`;
    expect(after.content).toBe(before.content);
    const renamed = await as('PATCH', `/voice/knowledge-bases/${kb}`, { name: 'Archive' });
    expect([renamed.status, renamed.body.name], JSON.stringify(renamed.body)).toEqual([200, 'Archive']);
    // New content in the same request as a title: refused whole, the title unchanged.
    const both = await as('PATCH', `/voice/knowledge-bases/${kb}/documents/${doc}`, { title: 'Sneaky', content: 'more' });
    expect([both.status, both.body.error?.code]).toEqual([403, 'feature_not_in_plan']);
    expect((await db.sql`select title from public.kb_documents where id = ${doc}`)[0].title).toBe('Old menu');
    expect((await as('DELETE', `/voice/knowledge-bases/${kb}`)).status).toBe(204);
  });

  it('starter: the feature is refused first; with the feature but no room, the limit answers', async () => {
    await entitle(globex, { features: { knowledge_base: true } });
    try {
      const none = await createKb('No room', tok.globexAdmin);
      expect(none.status).toBe(403);
      expect(none.body.error).toMatchObject({ code: 'plan_limit_reached', details: { limit: 'knowledge_bases', max: 0, usage: 0 } });
    } finally {
      await entitle(globex, { features: { knowledge_base: null } });
    }
    const off = await createKb('Off', tok.globexAdmin);
    expect(off.status).toBe(403);
    expect(off.body.error).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'knowledge_base' } });
    expect(await knowledge(globex)).toEqual({
      bases: { used: 0, limit: 0 },
      documents: { used: 0, limit: 0 },
      bytes: { used: 0, limit: 0 },
    });
  });

  it("a TRUNCATE of the documents (the owner's, outside the API) clears their counters", async () => {
    const kb = (await createKb('Truncated')).body.id as string;
    expect((await upload(kb, 'some text')).status).toBe(201);
    expect((await knowledge(acme)).documents.used).toBeGreaterThan(0);
    await db.sql`truncate public.kb_documents cascade`;
    expect(await knowledge(acme)).toMatchObject({ documents: { used: 0 }, bytes: { used: 0 } });
    await expectCounted(acme);
    await call(voiceApp, 'DELETE', `/voice/knowledge-bases/${kb}`, { token: tok.admin });
    await expectCounted(acme);
  });
});

describe('features', () => {
  const FEATURES_OFF = {
    outbound_webhooks: false,
    odoo: false,
    chatwoot: false,
    botpress: false,
    n8n: false,
    voice: false,
    knowledge_base: false,
  };
  const appOf = (path: string) => path.startsWith('/tickets') ? ticketsApp : path.startsWith('/voice') ? voiceApp : tenantsApp;

  /** Every route of the three apps people call, from their route tables, with its
   *  parameters filled in (globex, a partner service, ids that exist nowhere). */
  function everyRoute(): { method: string; path: string }[] {
    const seen = new Set<string>();
    return [...tenantsApp.routes, ...ticketsApp.routes, ...voiceApp.routes]
      .filter((r) => r.method !== 'ALL' && !r.path.includes('*') && !r.path.endsWith('openapi.json'))
      .map((r) => ({
        method: r.method,
        path: r.path.replace(':tenantId', globex).replace(':service', 'odoo').replace(
          /:[A-Za-z]+(\{[^}]*\})?/g,
          '50000000-0000-4000-8000-000000000001',
        ),
      }))
      .filter((r) => !seen.has(`${r.method} ${r.path}`) && seen.add(`${r.method} ${r.path}`) !== undefined);
  }

  it('a feature off answers 403 feature_not_in_plan on every route it guards (read from the route table)', async () => {
    await entitle(globex, { features: FEATURES_OFF });
    const refused: string[] = [];
    for (const r of everyRoute()) {
      const res = await call(appOf(r.path), r.method, r.path, { token: tok.globexAdmin });
      if (res.status === 403 && errorCode(res) === 'feature_not_in_plan') {
        refused.push(`${r.method} ${r.path.replace(globex, '{tenantId}')}: ${res.body.error.details.feature}`);
        expect(res.body.error.details.plan).toBe('starter');
      }
    }
    const id = '50000000-0000-4000-8000-000000000001';
    expect(refused.sort()).toEqual([
      `POST /tenants/{tenantId}/services/odoo/credentials: odoo`,
      `GET /tenants/{tenantId}/webhooks/${id}/deliveries: outbound_webhooks`,
      `POST /tenants/{tenantId}/webhooks/${id}/deliveries/retry: outbound_webhooks`,
      `PATCH /tenants/{tenantId}/webhooks/${id}: outbound_webhooks`,
      `POST /tenants/{tenantId}/webhooks/${id}/rotate-secret: outbound_webhooks`,
      `POST /tenants/{tenantId}/services/odoo/retry: odoo`,
      `POST /tenants/{tenantId}/services/odoo/rotate-credentials: odoo`,
      `POST /tenants/{tenantId}/webhooks: outbound_webhooks`,
      'POST /voice/agents: voice',
      'POST /voice/customers: voice',
      'POST /voice/customers/import: voice',
      'GET /voice/calls: voice',
      'GET /voice/calls/held-events: voice',
      `GET /voice/calls/${id}: voice`,
      `GET /voice/knowledge-bases/${id}/documents/${id}: knowledge_base`,
      `GET /voice/calls/${id}/transcript: voice`,
      `GET /voice/calls/${id}/recording: voice`,
      `POST /voice/calls/${id}/ticket: voice`,
      'POST /voice/knowledge-bases: knowledge_base',
      'GET /voice/knowledge-bases/search: knowledge_base',
      'POST /voice/knowledge-bases/search: knowledge_base',
      `GET /voice/knowledge-bases/${id}/documents/${id}/chunks: knowledge_base`,
      `PUT /voice/knowledge-bases/${id}/documents/${id}/embeddings: knowledge_base`,
      `POST /voice/knowledge-bases/${id}/documents: knowledge_base`,
    ].sort());
    // Every voice route people call is guarded but seventeen: the removals (a call's among
    // them: tests/functions/voice-call-tombstones.test.ts), a customer's erasure
    // (tests/functions/voice-erasure.test.ts), the agents' and customers' edits (the next
    // test), a knowledge base's or document's edits, where the database refuses new
    // content alone (the knowledge test above), and the lists and reads of what these
    // act on, but calls and a document's content (the next test); the provider's are below.
    const people = everyRoute().filter((r) =>
      r.path.startsWith('/voice') && !['/voice/route', '/voice/calls/events', '/voice/calls/recordings', '/voice/knowledge/search'].includes(r.path)
    );
    expect(refused.filter((r) => r.includes(' /voice/'))).toHaveLength(people.length - 17);
    await entitle(globex, { features: Object.fromEntries(Object.keys(FEATURES_OFF).map((k) => [k, null])) });
  });

  it('without the feature a tenant still parks and edits its agents, corrects and erases its customers, removes its knowledge; an active agent may not move to a new number', async () => {
    await entitle(globex, {
      limits: { voice_agents: 1, knowledge_bases: 1, knowledge_documents: 1, knowledge_bytes: 1000 },
      features: { voice: true, knowledge_base: true },
    });
    const LLM = { model: 'm', system_prompt: 'p' };
    const [agent] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${globex}, 'Downgraded desk', '+14155557101', 'v', ${db.sql.json(LLM)}) returning id`;
    const [customer] = await db
      .sql`insert into public.voice_customers (tenant_id, phone, name) values (${globex}, '+14155557102', 'Erase me') returning id`;
    const [kb] = await db
      .sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${globex}, 'Old knowledge') returning id`;
    const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${globex}, ${kb.id}, 'Old', 'old text') returning id`;
    await entitle(globex, {
      limits: { voice_agents: null, knowledge_bases: null, knowledge_documents: null, knowledge_bytes: null },
      features: { voice: false, knowledge_base: false },
    });
    const as = (method: string, path: string, body?: unknown) => call(voiceApp, method, path, { token: tok.globexAdmin, body });
    // Moving the active agent claims a new number on the router: refused, in the API and in SQL.
    const moved = await as('PATCH', `/voice/agents/${agent.id}`, { phone: '+14155557103' });
    expect([moved.status, moved.body.error?.details?.feature]).toEqual([403, 'voice']);
    const direct = await db.sql`update public.voice_agents set phone = '+14155557103' where id = ${agent.id}`.catch((e) => e);
    expect(JSON.parse(direct.detail)).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'voice' } });
    const renamed = await as('PATCH', `/voice/agents/${agent.id}`, { name: 'Parked desk', active: false });
    expect([renamed.status, renamed.body.active, renamed.body.name], JSON.stringify(renamed.body)).toEqual([
      200,
      false,
      'Parked desk',
    ]);
    // Parked, it may not take a number nobody holds either (a parked agent would keep it
    // from its owner), nor come back.
    const taken = await as('PATCH', `/voice/agents/${agent.id}`, { phone: '+14155557103' });
    expect([taken.status, taken.body.error?.details?.feature]).toEqual([403, 'voice']);
    const parkedDirect = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
      values (${globex}, 'Squatter', '+14155557104', 'v', ${db.sql.json(LLM)}, false)`.catch((e) => e);
    expect(JSON.parse(parkedDirect.detail)).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'voice' } });
    // Nor store new callers through the table (the API already refused).
    const newCustomer = await db.sql`insert into public.voice_customers (tenant_id, phone) values (${globex}, '+14155557105')`
      .catch((e) => e);
    expect(JSON.parse(newCustomer.detail)).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'voice' } });
    // A number it holds stays its own: a second parked agent on it is fine.
    const [twin] = await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, active)
      values (${globex}, 'Parked twin', '+14155557101', 'v', ${db.sql.json(LLM)}, false) returning id`;
    await db.sql`delete from public.voice_agents where id = ${twin.id}`;
    expect((await as('PATCH', `/voice/agents/${agent.id}`, { active: true })).body.error).toMatchObject({
      code: 'feature_not_in_plan',
    });
    // It finds what it tidies up: the lists and reads answer without the feature.
    const ids = async (path: string) => ((await as('GET', path)).body.items ?? []).map((x: { id: string }) => x.id);
    expect(await ids('/voice/agents')).toContain(agent.id);
    expect(await ids('/voice/customers')).toContain(customer.id);
    expect(await ids('/voice/knowledge-bases')).toContain(kb.id);
    expect(await ids(`/voice/knowledge-bases/${kb.id}/documents`)).toContain(doc.id);
    for (const path of [`/voice/agents/${agent.id}`, `/voice/customers/${customer.id}`, `/voice/knowledge-bases/${kb.id}`]) {
      expect([path, (await as('GET', path)).status]).toEqual([path, 200]);
    }
    // Not what only the feature offers: searching the knowledge, a document's content.
    expect((await as('GET', `/voice/knowledge-bases/search?q=old`)).status).toBe(403);
    expect((await as('GET', `/voice/knowledge-bases/${kb.id}/documents/${doc.id}`)).status).toBe(403);
    const fixed = await as('PATCH', `/voice/customers/${customer.id}`, { name: 'Corrected' });
    expect([fixed.status, fixed.body.name]).toEqual([200, 'Corrected']);
    expect((await as('DELETE', `/voice/customers/${customer.id}`)).status).toBe(204);
    expect((await as('DELETE', `/voice/knowledge-bases/${kb.id}/documents/${doc.id}`)).status).toBe(204);
    expect((await as('DELETE', `/voice/knowledge-bases/${kb.id}`)).status).toBe(204);
    expect((await as('DELETE', `/voice/agents/${agent.id}`)).status).toBe(204);
    const left = await db.sql`select (select count(*) from public.voice_customers where id = ${customer.id})
      + (select count(*) from public.voice_knowledge_bases where id = ${kb.id}) + (select count(*) from public.voice_agents where id = ${agent.id}) as n`;
    expect(Number(left[0].n)).toBe(0);
    await entitle(globex, { features: { voice: null, knowledge_base: null } });
  });

  it("and on the provider's call path: routing, a call's start and knowledge search; a call under way finishes", async () => {
    const provider = (method: string, path: string, body?: unknown) =>
      call(voiceApp, method, path, { body, headers: { authorization: `Bearer ${service}` } });
    await entitle(globex, { limits: { voice_agents: 1 }, features: { voice: true, knowledge_base: true } });
    const number = '+14155557001';
    await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${globex}, 'Globex desk', ${number}, 'v', ${db.sql.json({ model: 'm', system_prompt: 'p' })})`;
    const [agent] = await db.sql`select id from public.voice_agents where phone = ${number}`;
    expect((await provider('GET', `/voice/route?to=${encodeURIComponent(number)}`)).status).toBe(200);
    const started = await provider('POST', '/voice/calls/events', {
      type: 'call.started',
      tenant_id: globex,
      agent_id: agent.id,
      provider_call_id: 'plan-call-1',
      answered: true,
    });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    // The plan loses voice and knowledge bases (the agent stays, as it was).
    await entitle(globex, { limits: { voice_agents: null }, features: { voice: null, knowledge_base: null } });
    const routed = await provider('GET', `/voice/route?to=${encodeURIComponent(number)}`);
    expect(routed.status).toBe(403);
    expect(routed.body.error).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'voice', plan: 'starter' } });
    const next = await provider('POST', '/voice/calls/events', {
      type: 'call.started',
      tenant_id: globex,
      agent_id: agent.id,
      provider_call_id: 'plan-call-2',
    });
    expect(next.body.error).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'voice' } });
    expect((await db.sql`select count(*)::int as n from public.voice_calls where provider_call_id = 'plan-call-2'`)[0].n).toBe(0);
    const kb = await provider('GET', `/voice/knowledge/search?tenant_id=${globex}&agent_id=${agent.id}&q=hours`);
    expect(kb.body.error).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'knowledge_base' } });
    // The call already under way is transcribed and ends.
    const segments = await provider('POST', '/voice/calls/events', {
      type: 'transcript.segments',
      tenant_id: globex,
      provider_call_id: 'plan-call-1',
      segments: [{ seq: 0, speaker: 'customer', content: 'hello' }],
    });
    expect(segments.status).toBe(200);
    const ended = await provider('POST', '/voice/calls/events', {
      type: 'call.ended',
      tenant_id: globex,
      provider_call_id: 'plan-call-1',
      status: 'completed',
    });
    expect([ended.status, ended.body.status]).toEqual([200, 'completed']);
  });

  it('and on the write path in SQL: services, webhook endpoints, SLA business hours', async () => {
    await entitle(globex, { features: FEATURES_OFF });
    // Enabling a partner service the plan lacks: refused by the database.
    const on = await call(tenantsApp, 'PUT', `/tenants/${globex}/services/odoo`, {
      token: tok.globexAdmin,
      body: { enabled: true },
    });
    expect([on.status, errorCode(on)]).toEqual([403, 'feature_not_in_plan']);
    const direct = await db
      .sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted) values (${globex}, 'https://x.example.com', 'x')`
      .catch((e) => e);
    expect(JSON.parse(direct.detail)).toMatchObject({ code: 'feature_not_in_plan', details: { feature: 'outbound_webhooks' } });
    // Its endpoints are listed all the same, to be removed (they count against its limits).
    const listed = await call(tenantsApp, 'GET', `/tenants/${globex}/webhooks`, { token: tok.globexAdmin });
    expect(listed.status).toBe(200);
    await entitle(globex, { features: { sla_business_hours: false } });
    const [hours] = await db.sql`select business_hours from public.sla_policies where business_hours is not null limit 1`;
    const sla = await db
      .sql`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes, business_hours)
      values (${globex}, 'low', 60, 120, ${
      hours?.business_hours ?? { timezone: 'UTC', days: [1, 2, 3, 4, 5], start: '09:00', end: '17:00' }
    })`
      .catch((e) => e);
    expect(sla.detail ? JSON.parse(sla.detail).code : sla.message).toMatch(/feature_not_in_plan|business/);
    // Another tenant's admin learns nothing about globex's plan: the same 404 as before.
    const cross = await call(tenantsApp, 'GET', `/tenants/${globex}/webhooks`, { token: tok.admin });
    expect(cross.status).toBe(404);
    await entitle(globex, {
      features: { ...Object.fromEntries(Object.keys(FEATURES_OFF).map((k) => [k, null])), sla_business_hours: null },
    });
    const back = await call(tenantsApp, 'GET', `/tenants/${globex}/webhooks`, { token: tok.globexAdmin });
    expect(back.status).toBe(200);
  });
});

describe("a tenant's plan and people outside it", () => {
  // Features are checked by before-row triggers, which run before a policy's WITH CHECK:
  // a write under another tenant's id must be the policy's refusal whatever that
  // tenant's plan, as under an id nobody has, or its features are read by id.
  const writes: [string, (tx: postgres.TransactionSql, tenantId: string) => Promise<unknown>][] = [
    ['voice_agents', (tx, t) => tx`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
      values (${t}, 'Probe', '+14155550999', 'v', '{"model": "m", "system_prompt": "p"}')`],
    ['voice_customers', (tx, t) => tx`insert into public.voice_customers (tenant_id, phone) values (${t}, '+14155550998')`],
    ['voice_knowledge_bases', (tx, t) => tx`insert into public.voice_knowledge_bases (tenant_id, name) values (${t}, 'Probe')`],
    ['webhook_endpoints', (tx, t) => tx`insert into public.webhook_endpoints (tenant_id, url) values (${t}, 'https://example.com/probe')`],
  ];
  const FEATURES = { voice: false, knowledge_base: false, outbound_webhooks: false };

  it("another tenant's admin writing under its id gets the policy's 42501, with its features on or off, as under an unknown id", async () => {
    const outsider = supabaseClaims(users.globexAdmin, globex);
    const answers = async (tenantId: string) => {
      const out: Record<string, string | undefined> = {};
      for (const [table, write] of writes) {
        const r = await probeAs(db.sql, 'authenticated', outsider, (tx) => write(tx, tenantId));
        out[table] = r.ok ? 'written' : r.error.code;
      }
      return out;
    };
    const withFeatures = await answers(acme);
    await entitle(acme, { features: FEATURES });
    try {
      const withoutFeatures = await answers(acme);
      const unknown = await answers('10000000-0000-4000-8000-0000000000ff');
      const policy = Object.fromEntries(writes.map(([table]) => [table, '42501']));
      expect({ withFeatures, withoutFeatures, unknown }).toEqual({ withFeatures: policy, withoutFeatures: policy, unknown: policy });
      // The tenant's own admin is told why.
      for (const [table, write] of writes) {
        const own = await probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), (tx) => write(tx, acme));
        expect([table, own.ok ? null : own.error.code]).toEqual([table, 'PT403']);
      }
    } finally {
      await entitle(acme, { features: Object.fromEntries(Object.keys(FEATURES).map((k) => [k, null])) });
    }
  });
});

describe('outbound webhooks whose endpoint no longer subscribes', () => {
  it('a delivery queued before the endpoint dropped its type is ended unsent, naming the type; the kept types go out', async () => {
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted)
      values (${globex}, 'https://hooks.globex.example.com/narrowed', 'not-sent') returning id`;
    await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${globex}, 'Queued for every type', ${users.globexUser.id})`;
    const [delivery] = await db.sql`select d.id, j.id as job_id from private.webhook_deliveries d
      join private.jobs j on j.job_key = 'delivery:' || d.id
      where d.endpoint_id = ${endpoint.id} and d.status = 'pending' order by d.id desc limit 1`;
    const withheld = async () => (await db.sql`select private.webhook_delivery_withheld(${delivery.id}) as w`)[0].w as boolean;
    try {
      // Still subscribed (every type, then ticket.created among its types): it goes out.
      expect(await withheld()).toBe(false);
      await db.sql`update public.webhook_endpoints set event_types = '{ticket.created,call.ended}' where id = ${endpoint.id}`;
      expect(await withheld()).toBe(false);
      // Narrowed to calls: the ticket's delivery is ended, not sent.
      await db.sql`update public.webhook_endpoints set event_types = '{call.ended}' where id = ${endpoint.id}`;
      const job = { id: Number(delivery.job_id), task: 'deliver-webhook', payload: { delivery_id: Number(delivery.id) }, queue: null, job_key: null, attempts: 1, max_attempts: 25 };
      expect(await deliverWebhook.run(job as never, { worker: 'test', deps: {} })).toEqual({ withheld: 1 });
      const [after] = await db.sql`select status, last_error from private.webhook_deliveries where id = ${delivery.id}`;
      expect(after).toEqual({ status: 'failed', last_error: 'not sent: the endpoint no longer subscribes to ticket.created' });
      const [ep] = await db.sql`select consecutive_failures from public.webhook_endpoints where id = ${endpoint.id}`;
      expect(ep.consecutive_failures).toBe(0);
    } finally {
      await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
    }
  });
});

describe('outbound webhooks when the plan lacks them', () => {
  it('writes no events while off, and a delivery queued before is ended unsent, not kept for an upgrade', async () => {
    const [endpoint] = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted)
      values (${globex}, 'https://hooks.globex.example.com/in', 'not-sent') returning id`;
    const ticket = async (title: string) =>
      db.sql`insert into public.tickets (tenant_id, title, created_by) values (${globex}, ${title}, ${users.globexUser.id})`;
    const events = async () =>
      (await db.sql`select count(*)::int as n from private.webhook_events where tenant_id = ${globex}`)[0].n as number;
    const before = await events();
    await ticket('Queued while the plan had webhooks');
    expect(await events()).toBe(before + 1);
    const [delivery] = await db.sql`select d.id, j.id as job_id from private.webhook_deliveries d
      join private.jobs j on j.job_key = 'delivery:' || d.id
      where d.endpoint_id = ${endpoint.id} and d.status = 'pending' order by d.id desc limit 1`;
    expect(delivery).toBeDefined();

    await entitle(globex, { features: { outbound_webhooks: false } });
    await ticket('Created while the plan has none');
    expect(await events()).toBe(before + 1);
    // The queued one: its job sends nothing and ends it, naming the plan; the endpoint is
    // not blamed for it.
    const job = {
      id: Number(delivery.job_id),
      task: 'deliver-webhook',
      payload: { delivery_id: Number(delivery.id) },
      queue: null,
      job_key: null,
      attempts: 1,
      max_attempts: 25,
    };
    const outcome = await deliverWebhook.run(job as never, { worker: 'test', deps: {} });
    expect(outcome).toEqual({ withheld: 1 });
    const [after] = await db.sql`select status, last_error, attempts from private.webhook_deliveries where id = ${delivery.id}`;
    expect(after).toEqual({ status: 'failed', last_error: expect.stringContaining('outbound_webhooks'), attempts: 0 });
    expect((await db.sql`select count(*)::int as n from private.webhook_attempts where delivery_id = ${delivery.id}`)[0].n).toBe(
      0,
    );
    const [ep] = await db.sql`select enabled, consecutive_failures from public.webhook_endpoints where id = ${endpoint.id}`;
    expect(ep).toEqual({ enabled: true, consecutive_failures: 0 });

    // Back on: new events flow again; what happened meanwhile is not replayed.
    await entitle(globex, { features: { outbound_webhooks: null } });
    await ticket('Created after the upgrade');
    expect(await events()).toBe(before + 2);
    expect(await deliverWebhook.run(job as never, { worker: 'test', deps: {} })).toEqual({ skipped: 1 });
    await db.sql`delete from public.webhook_endpoints where id = ${endpoint.id}`;
  });
});

describe('rate limits', () => {
  const write = (token: string, n: number, headers: Record<string, string> = {}) =>
    ticketsApp.request('/tickets', {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ title: `Rate ${n}` }),
    });

  it("counts a caller's writes in the minute and answers 429 rate_limited with Retry-After and RateLimit-* once spent", async () => {
    await entitle(globex, { limits: { requests_per_minute_per_caller: 3 } });
    await earlyInMinute();
    // The earlier tests' writes this minute are forgotten.
    await db.sql`delete from private.rate_limit_counters`;
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await write(tok.globexUser, i);
      expect(res.status).toBe(201);
      expect(res.headers.get('ratelimit-limit')).toBe('3');
      remaining.push(res.headers.get('ratelimit-remaining')!);
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const refused = await write(tok.globexUser, 3);
    expect(refused.status).toBe(429);
    const body = await refused.json();
    expect(body.error).toMatchObject({ code: 'rate_limited', details: { scope: 'caller', limit: 3 } });
    const retry = Number(refused.headers.get('retry-after'));
    expect(retry).toBeGreaterThanOrEqual(1);
    expect(retry).toBeLessThanOrEqual(60);
    expect(refused.headers.get('ratelimit-remaining')).toBe('0');
    expect(refused.headers.get('ratelimit-reset')).toBe(String(retry));
    // Nothing was written by the refused request.
    const [{ n }] = await db.sql`select count(*)::int as n from public.tickets where title = 'Rate 3'`;
    expect(n).toBe(0);
    // A colleague in the same tenant still writes (their own window); reads are not counted.
    expect((await write(tok.globexAdmin, 4)).status).toBe(201);
    expect((await call(ticketsApp, 'GET', '/tickets', { token: tok.globexUser })).status).toBe(200);
    // Another tenant is untouched.
    expect((await write(tok.user, 5)).status).toBe(201);
    await entitle(globex, { limits: { requests_per_minute_per_caller: null } });
  });

  it('a write that began in the previous minute counts in the newer window rather than setting it back', async () => {
    await entitle(globex, { limits: { requests_per_minute_per_caller: 3 } });
    await earlyInMinute();
    await db.sql`delete from private.rate_limit_counters`;
    const key = `${globex}/${users.globexUser.id}`;
    // Writes of the next minute got there first (as a late writer finds it after its wait).
    await db.sql`insert into private.rate_limit_counters (scope, key, window_start, hits)
      values ('caller', ${key}, date_trunc('minute', now()) + interval '1 minute', 2)`;
    const res = await write(tok.globexUser, 40);
    expect(res.status).toBe(201);
    const [row] = await db.sql`select hits, window_start = date_trunc('minute', now()) + interval '1 minute' as kept
      from private.rate_limit_counters where scope = 'caller' and key = ${key}`;
    expect(row).toEqual({ hits: 3, kept: true });
    // Refused there, it is told to wait for that window's end, not this minute's.
    const refused = await write(tok.globexUser, 41);
    expect(refused.status).toBe(429);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(60);
    await db.sql`delete from private.rate_limit_counters`;
    await entitle(globex, { limits: { requests_per_minute_per_caller: null } });
  });

  it("writes a caller's own window refuses spend nothing of the tenant's: one busy caller does not starve the others", async () => {
    await entitle(globex, { limits: { requests_per_minute: 5, requests_per_minute_per_caller: 3 } });
    await earlyInMinute();
    await db.sql`delete from private.rate_limit_counters`;
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await write(tok.globexUser, 20 + i)).status);
    expect(statuses).toEqual([201, 201, 201, 429, 429, 429, 429, 429]);
    const [tenantRow] = await db.sql`select hits from private.rate_limit_counters where scope = 'tenant' and key = ${globex}`;
    expect(tenantRow.hits).toBe(3);
    // The tenant's other two writes this minute are a colleague's.
    for (let i = 0; i < 2; i++) expect((await write(tok.globexAdmin, 30 + i)).status).toBe(201);
    const sixth = await write(tok.globexAdmin, 32);
    expect([sixth.status, (await sixth.json()).error.details]).toEqual([429, expect.objectContaining({ scope: 'tenant', limit: 5 })]);
    await entitle(globex, { limits: { requests_per_minute: null, requests_per_minute_per_caller: null } });
  });

  it("the tenant's window binds all its callers together", async () => {
    await entitle(globex, { limits: { requests_per_minute: 0 } });
    const res = await write(tok.globexAdmin, 6);
    expect(res.status).toBe(429);
    expect((await res.json()).error.details).toMatchObject({ scope: 'tenant', limit: 0 });
    // Someone else's tenant named in the path does not spend that tenant's budget: a
    // stranger's writes to globex's routes are 404s, counted nowhere.
    const before = await db.sql`select hits from private.rate_limit_counters where scope = 'tenant' and key = ${globex}`;
    const stranger = await call(tenantsApp, 'POST', `/tenants/${globex}/teams`, {
      token: tok.admin,
      body: { name: 'Moles', department: 'sales' },
    });
    expect(stranger.status).toBe(404);
    expect(await db.sql`select hits from private.rate_limit_counters where scope = 'tenant' and key = ${globex}`).toEqual(before);
    await entitle(globex, { limits: { requests_per_minute: null } });
  });

  it('finds the tenant as the request does: the token, X-Tenant-Id (id or slug), the only one', async () => {
    const unpinned = await supabaseToken(users.globexUser);
    for (const headers of [{}, { 'x-tenant-id': 'globex' }, { 'x-tenant-id': globex }] as Record<string, string>[]) {
      const res = await write(unpinned, 8, headers);
      expect(res.status, JSON.stringify(headers)).toBe(201);
      expect(res.headers.get('ratelimit-limit'), JSON.stringify(headers)).toBe('300');
    }
    // A header naming another tenant than the token's: the request's own 400, counted nowhere.
    const mismatch = await write(tok.globexUser, 9, { 'x-tenant-id': 'acme' });
    expect(mismatch.status).toBe(400);
    expect(mismatch.headers.get('ratelimit-limit')).toBeNull();
  });

  it('RATE_LIMITS=off turns the count off', async () => {
    await entitle(globex, { limits: { requests_per_minute: 0 } });
    process.env.RATE_LIMITS = 'off';
    try {
      const res = await write(tok.globexAdmin, 7);
      expect(res.status).toBe(201);
      expect(res.headers.get('ratelimit-limit')).toBeNull();
    } finally {
      delete process.env.RATE_LIMITS;
      await entitle(globex, { limits: { requests_per_minute: null } });
    }
  });
});

describe('SLA business hours and the plan', () => {
  it('count only while the plan includes them: without the feature a new ticket is due in wall-clock time, and again in business time once it is back', async () => {
    // One minute of business time a day: 60 business minutes are two months away.
    const hours = { timezone: 'UTC', days: [1, 2, 3, 4, 5, 6, 7], start: '03:00', end: '03:01' };
    await db.sql`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes, business_hours)
      values (${globex}, 'urgent', 60, 120, ${db.sql.json(hours)})`;
    const dueIn = async () => {
      const [t] = await db.sql`insert into public.tickets (tenant_id, title, priority, created_by)
        values (${globex}, 'Urgent under the plan', 'urgent', ${users.globexUser.id})
        returning extract(epoch from first_response_due_at - created_at) / 60 as minutes`;
      return Number(t.minutes);
    };
    try {
      expect(await dueIn()).toBeGreaterThan(60 * 24 * 30);
      expect((await entitle(globex, { features: { sla_business_hours: false } })).status).toBe(200);
      expect(await dueIn()).toBe(60);
      // The hours stay stored, and count again when the feature comes back.
      expect((await db.sql`select business_hours from public.sla_policies where tenant_id = ${globex} and priority = 'urgent'`)[0].business_hours)
        .toEqual(hours);
      // Meanwhile the policy's other fields change, its hours sent back as they are; other
      // hours are the feature's, refused.
      const put = (body: Record<string, unknown>) =>
        call(ticketsApp, 'PUT', '/tickets/sla-policies/urgent', { token: tok.globexAdmin, body: { first_response_minutes: 60, ...body } });
      const kept = await put({ resolution_minutes: 180, business_hours: hours });
      expect([kept.status, kept.body.resolution_minutes, kept.body.business_hours], JSON.stringify(kept.body)).toEqual([200, 180, hours]);
      const other = await put({ resolution_minutes: 120, business_hours: { ...hours, end: '04:00' } });
      expect([other.status, errorCode(other)]).toEqual([403, 'feature_not_in_plan']);
      expect((await db.sql`select resolution_minutes, business_hours from public.sla_policies where tenant_id = ${globex} and priority = 'urgent'`)[0])
        .toEqual({ resolution_minutes: 180, business_hours: hours });
      expect((await entitle(globex, { features: { sla_business_hours: null } })).status).toBe(200);
      expect(await dueIn()).toBeGreaterThan(60 * 24 * 30);
    } finally {
      await entitle(globex, { features: { sla_business_hours: null } });
      await db.sql`delete from public.tickets where tenant_id = ${globex} and title = 'Urgent under the plan'`;
      await db.sql`delete from public.sla_policies where tenant_id = ${globex} and priority = 'urgent'`;
    }
  });
});
