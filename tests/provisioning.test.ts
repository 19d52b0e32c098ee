// Provisioning end to end against stand-ins of the four partners: a tenant created
// with its services ends with exactly one object per partner — also through 5xx, 429,
// slow answers, dropped connections, a worker killed mid-job and two workers at once;
// permanent errors fail once and clearly; suspend/resume/remove round trips; the
// credentials stay encrypted and out of logs, audit rows and non-admin responses.
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest';
import { app as jobsApp } from '../functions/jobs/app.ts';
import { app as tenantsApp } from '../functions/tenants/app.ts';
import { app as webhooksApp } from '../functions/webhooks/app.ts';
import { botpressConnector } from '../shared/connectors/botpress.ts';
import { chatwootConnector } from '../shared/connectors/chatwoot.ts';
import type { Connectors } from '../shared/connectors/index.ts';
import { n8nConnector } from '../shared/connectors/n8n.ts';
import { odooConnector } from '../shared/connectors/odoo.ts';
import { decryptJson } from '../shared/crypto.ts';
import { closeDb, observeStatements } from '../shared/db.ts';
import { runJobs, type RunOptions } from '../shared/jobs/runner.ts';
import { chatwootInboundUrl } from '../shared/webhooks/chatwoot.ts';
import { apiKey } from '../scripts/tokens.mjs';
import { BotpressStandIn } from './partners/botpress.ts';
import { ChatwootStandIn } from './partners/chatwoot.ts';
import { N8nStandIn } from './partners/n8n.ts';
import { OdooStandIn } from './partners/odoo.ts';
import { freshDatabase, probeAs, type TestDatabase } from './helpers/db.ts';
import { someoneWaitsFor } from './helpers/advisory-locks.ts';
import { call, errorCode } from './helpers/http.ts';
import { supabaseClaims, users } from './helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from './helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let chatwoot: ChatwootStandIn;
let botpress: BotpressStandIn;
let n8n: N8nStandIn;
let odoo: OdooStandIn;
let superToken: string;
const TIMEOUT_MS = 400;

function connectors(overrides: { chatwootToken?: string; n8nMode?: 'shared' | 'projects' } = {}): Connectors {
  return {
    chatwoot: chatwootConnector({ url: chatwoot.url, platformToken: overrides.chatwootToken ?? chatwoot.token, timeoutMs: TIMEOUT_MS, inboundUrl: chatwootInboundUrl }),
    botpress: botpressConnector({ url: botpress.url, token: botpress.token, workspaceId: botpress.workspaceId, timeoutMs: TIMEOUT_MS }),
    n8n: n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: overrides.n8nMode ?? 'shared', timeoutMs: TIMEOUT_MS }),
    odoo: odooConnector({ url: odoo.url, db: 'main', login: odoo.login, key: odoo.key, timeoutMs: TIMEOUT_MS }),
  };
}

/** One run of the job runner over provisioning jobs (what the old provisioning worker did). */
const runProvisioningWorker = (opts: { connectors: Connectors; budgetMs: number; workerId?: string }) =>
  runJobs({ tasks: ['provision'], deps: { connectors: opts.connectors }, budgetMs: opts.budgetMs, workerId: opts.workerId } satisfies RunOptions);

/** A service's provisioning job (job key provision:<tenant>:<service>). */
const jobOf = (tenantId: string, service: string) =>
  db.sql`select *, case when dead_at is not null then 'dead' when locked_by is not null then 'running' else 'queued' end as status
         from private.jobs where job_key = ${`provision:${tenantId}:${service}`}`;

/** Runs workers until the queue is idle, moving the queue's clock past each backoff. */
async function drain(c: Connectors = connectors(), workers = 1, rounds = 40) {
  for (let i = 0; i < rounds; i++) {
    // Backoffs only (a job that failed before): a removal waiting out its grace period is
    // a fresh job scheduled later, and stays where it is.
    await db.sql`update private.jobs set run_at = now() where task = 'provision' and dead_at is null and attempts > 0 and run_at > now()`;
    const reports = await Promise.all(Array.from({ length: workers }, () => runProvisioningWorker({ connectors: c, budgetMs: 5_000 })));
    // Idle: nothing was claimable even with every backoff elapsed (what is left waits
    // on a grace period or a lease).
    if (reports.every((r) => r.claimed === 0)) return;
  }
  throw new Error('the queue did not drain');
}

let tenantCount = 0;
async function createTenant(services = ['chatwoot', 'botpress', 'n8n', 'odoo']) {
  const slug = `prov-${++tenantCount}-${randomBytes(3).toString('hex')}`;
  const r = await call(tenantsApp, 'POST', '/tenants', {
    token: superToken,
    body: { name: `Prov ${tenantCount}`, slug, services, admin: { email: `owner@${slug}.test`, first_name: 'Olive' } },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { id: r.body.id as string, slug, email: `owner@${slug}.test` };
}

type ServiceRow = { state: string; desired_state: string; last_error: string | null; attempts: number; external_ids: Record<string, any> };

async function services(tenantId: string): Promise<Record<string, ServiceRow>> {
  return Object.fromEntries((await db.sql`
    select service, state, desired_state, last_error, attempts, external_ids from public.tenant_services where tenant_id = ${tenantId}`)
    .map((r) => [r.service, r]));
}

/** Another admin of the tenant (`<local>@<slug>.test`, who can sign in), younger than its first. */
async function addAdmin(t: { id: string; slug: string }, local: string, firstName = local): Promise<string> {
  const [u] = await db.sql`insert into public.users (email, first_name) values (${`${local}@${t.slug}.test`}, ${firstName}) returning id`;
  await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${u.id}, 'admin')`;
  return u.id as string;
}

/** An admin's retry of a service, recorded as failed first (a run of it, now). */
async function retryService(tenantId: string, service: string) {
  await db.sql`update public.tenant_services set state = 'failed' where tenant_id = ${tenantId} and service = ${service}`;
  expect((await call(tenantsApp, 'POST', `/tenants/${tenantId}/services/${service}/retry`, { token: superToken })).status).toBe(202);
}

/** What each partner holds for a tenant: must be exactly one of each. */
function partnerObjects(t: { id: string; email: string }) {
  return {
    chatwootAccounts: [...chatwoot.accounts.values()].filter((a) => a.custom_attributes.tenant_id === t.id).length,
    chatwootUsers: [...chatwoot.users.values()].filter((u) => u.email === t.email).length,
    chatwootLinks: chatwoot.links.filter((l) => chatwoot.accounts.get(l.account_id)?.custom_attributes.tenant_id === t.id).length,
    botpressBots: [...botpress.bots.values()].filter((b) => b.tags.tenant_id === t.id).length,
    n8nUsers: [...n8n.users.values()].filter((u) => u.email === t.email).length,
    odooCompanies: [...odoo.tables['res.company'].values()].filter((c) => String(c.name).includes(`(${t.email.split('@')[1].replace('.test', '')})`)).length,
    odooUsers: [...odoo.tables['res.users'].values()].filter((u) => u.login === t.email).length,
  };
}
const ONE_EACH = { chatwootAccounts: 1, chatwootUsers: 1, chatwootLinks: 1, botpressBots: 1, n8nUsers: 1, odooCompanies: 1, odooUsers: 1 };

beforeAll(async () => {
  db = await freshDatabase('provisioning');
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  [chatwoot, botpress, n8n, odoo] = await Promise.all([ChatwootStandIn.start(), BotpressStandIn.start(), N8nStandIn.start(), OdooStandIn.start()]);
  superToken = await supabaseToken(users.super);
});
afterEach(() => {
  for (const p of [chatwoot, botpress, n8n, odoo]) p.server.resetFaults();
});
afterAll(async () => {
  await Promise.all([chatwoot, botpress, n8n, odoo].map((p) => p?.server.close()));
  await closeDb();
  await auth.close();
  await db.close();
});

describe('provisioning a new tenant', () => {
  it('ends with all four services active and exactly one object per partner', async () => {
    const t = await createTenant();
    const queued = await db.sql`select job_key from private.jobs where task = 'provision' and payload ->> 'tenant_id' = ${t.id}`;
    expect(queued).toHaveLength(4); // enqueued in the creating transaction
    await drain();
    const s = await services(t.id);
    for (const name of ['chatwoot', 'botpress', 'n8n', 'odoo']) expect(s[name], name).toMatchObject({ state: 'active', last_error: null });
    expect(partnerObjects(t)).toEqual(ONE_EACH);
    expect(s.chatwoot.external_ids).toEqual({ account_id: expect.any(Number), user_id: expect.any(Number), owner_login: 'created', webhook_id: expect.any(Number) });
    expect(s.botpress.external_ids).toMatchObject({ bot_id: expect.stringMatching(/^bot_/) });
    // Running everything again changes nothing at the partners.
    await db.sql`update public.tenant_services set state = 'pending' where tenant_id = ${t.id}`;
    expect((await db.sql`select private.reconcile_tenant_services() as n`)[0].n).toBe(4);
    await drain();
    expect(partnerObjects(t)).toEqual(ONE_EACH);
  });

  it('gets there when every partner fails twice first (5xx), retrying with backoff', async () => {
    for (const p of [chatwoot, botpress, n8n, odoo]) p.server.faults.fail5xx = 2;
    const t = await createTenant();
    await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    const [job] = await db.sql`select attempts, run_at > now() as backing_off, last_error from private.jobs where job_key = ${`provision:${t.id}:botpress`}`;
    expect(job).toMatchObject({ attempts: 1, backing_off: true, last_error: expect.stringContaining('503') });
    await drain();
    expect(Object.values(await services(t.id)).map((s) => s.state)).toEqual(['active', 'active', 'active', 'active']);
    expect(partnerObjects(t)).toEqual(ONE_EACH);
  });

  it("honours a partner's Retry-After on 429", async () => {
    botpress.server.faults.rateLimit = 1;
    botpress.server.faults.retryAfterSeconds = 120;
    const t = await createTenant(['botpress']);
    // The failure as the runner hands it to the queue: with the partner's Retry-After (no
    // clock compared: the database's and this process's).
    const failures: unknown[][] = [];
    observeStatements((text, values) => {
      if (text.includes('private.fail_job(')) failures.push(values);
    });
    try {
      await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    } finally {
      observeStatements(null);
    }
    expect(failures).toHaveLength(1);
    expect(failures[0][3]).toBe(120);
    const [job] = await db.sql`select status, run_at > now() as waits from (${jobOf(t.id, 'botpress')}) j`;
    expect(job).toEqual({ status: 'queued', waits: true });
    await drain();
    expect(partnerObjects(t).botpressBots).toBe(1);
  });

  it('makes no duplicate when the connection drops after the partner did the work', async () => {
    chatwoot.server.faults = { ...chatwoot.server.faults, match: /^POST \/platform\/api\/v1\/users$/, dropAfterWork: 1 };
    botpress.server.faults = { ...botpress.server.faults, match: /^POST \/v1\/admin\/bots$/, dropAfterWork: 1 };
    n8n.server.faults = { ...n8n.server.faults, match: /^POST \/api\/v1\/users$/, dropAfterWork: 1 };
    // Odoo: every call is POST /jsonrpc; the creates' answers are aimed at by their body.
    odoo.server.faults = { ...odoo.server.faults, match: /^POST \/jsonrpc$/, bodyMatch: /"res\.(company|users)","create"/, dropAfterWork: 2 };
    const dropped = (p: { server: { log: { status: number | 'dropped' }[] } }) => p.server.log.filter((l) => l.status === 'dropped').length;
    const before = [chatwoot, botpress, n8n, odoo].map(dropped);
    const t = await createTenant();
    await drain();
    expect(partnerObjects(t)).toEqual(ONE_EACH);
    // Each partner's fault fired: its create was made and its answer lost.
    expect([chatwoot, botpress, n8n, odoo].map((p, i) => dropped(p) - before[i])).toEqual([1, 1, 1, 2]);
  });

  it('makes no duplicate when the partner answers after the timeout (but did the work)', async () => {
    botpress.server.faults = { ...botpress.server.faults, match: /^POST \/v1\/admin\/bots$/, slow: 1, slowMs: TIMEOUT_MS * 3 };
    const t = await createTenant(['botpress']);
    await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    expect((await services(t.id)).botpress.last_error).toContain('timed out');
    await new Promise((r) => setTimeout(r, TIMEOUT_MS * 3)); // the partner finishes its slow create
    await drain();
    expect(partnerObjects(t).botpressBots).toBe(1);
    expect((await services(t.id)).botpress.state).toBe('active');
  });

  it('makes no duplicate when a job runs past its lease: the next run leaves it to the worker still in it', async () => {
    // A create slower than the 1 s lease (but within the connector's timeout): the worker
    // renews the lease while it waits, so the next run finds nothing to claim.
    botpress.server.faults = { ...botpress.server.faults, match: /^POST \/v1\/admin\/bots$/, slow: 1, slowMs: 1_500 };
    const patient = { ...connectors(), botpress: botpressConnector({ url: botpress.url, token: botpress.token, workspaceId: botpress.workspaceId, timeoutMs: 3_000 }) };
    const t = await createTenant(['botpress']);
    const first = runJobs({ tasks: ['provision'], deps: { connectors: patient }, budgetMs: 10_000, leaseSeconds: 1, workerId: 'first' });
    await new Promise((r) => setTimeout(r, 1_100));
    const next = await runJobs({ tasks: ['provision'], deps: { connectors: patient }, budgetMs: 3_000, workerId: 'next' });
    expect(next.claimed).toBe(0);
    expect(await first).toMatchObject({ claimed: 1, completed: 1, lost: 0 });
    expect(partnerObjects(t).botpressBots).toBe(1);
    expect((await services(t.id)).botpress.state).toBe('active');
  });

  it('recovers from a worker killed mid-job: the lease runs out and another worker finishes', async () => {
    const t = await createTenant(['chatwoot']);
    // Worker A claims and dies before doing anything else.
    const claimed = await db.sql.begin(async (tx) => {
      await tx`select set_config('role', 'service_role', true)`;
      return await tx`select * from private.claim_due_jobs('worker-a', 10, 60, array['provision'])`;
    });
    expect(claimed.map((j) => j.payload.tenant_id)).toContain(t.id);
    // While A's lease holds, nobody else takes the job.
    const idle = await runProvisioningWorker({ connectors: connectors(), budgetMs: 2_000, workerId: 'worker-b' });
    expect(idle.claimed).toBe(0);
    await db.sql`update private.jobs set locked_until = now() - interval '1 second' where locked_by = 'worker-a'`;
    const b = await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000, workerId: 'worker-b' });
    expect(b.completed).toBeGreaterThanOrEqual(1);
    // A wakes up and tries to report: its lease is gone, so nothing it says counts.
    const aJob = claimed.find((j) => j.payload.tenant_id === t.id)!.id;
    const [{ ok }] = await db.sql`select private.finish_provisioning_job(${aJob}, 'worker-a', 'failed') as ok`;
    expect(ok).toBe(false);
    expect(await db.sql`select * from private.complete_jobs('worker-a', ${[aJob]})`).toEqual([]);
    expect((await db.sql`select private.fail_job('worker-a', ${aJob}, 'late', null, true) as o`)[0].o).toBe('lost');
    expect((await services(t.id)).chatwoot.state).toBe('active');
    expect(partnerObjects(t).chatwootAccounts).toBe(1);
  });

  it('lets two workers run at once without doing any job twice', async () => {
    const made = await Promise.all([1, 2, 3].map(() => createTenant()));
    const before = chatwoot.server.log.filter((l) => l.method === 'POST' && l.path === '/platform/api/v1/accounts').length;
    await drain(connectors(), 2);
    for (const t of made) {
      expect(partnerObjects(t)).toEqual(ONE_EACH);
      expect(Object.values(await services(t.id)).every((s) => s.state === 'active')).toBe(true);
    }
    const creates = chatwoot.server.log.filter((l) => l.method === 'POST' && l.path === '/platform/api/v1/accounts').length;
    expect(creates - before).toBe(3);
  });
});

describe('permanent errors', () => {
  it('a 401 fails the service at once with a readable error; an admin retries after the fix', async () => {
    const t = await createTenant(['chatwoot']);
    await drain(connectors({ chatwootToken: 'revoked-token' }));
    const s = (await services(t.id)).chatwoot;
    expect(s).toMatchObject({ state: 'failed', attempts: 1 });
    expect(s.last_error).toContain('401');
    expect(s.last_error).toContain('Invalid access_token');
    const [job] = await jobOf(t.id, 'chatwoot');
    expect(job.status).toBe('dead');

    const adminToken = await tokenForOwner(t);
    const listed = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: adminToken });
    expect(listed.body.items[0]).toMatchObject({ service: 'chatwoot', state: 'failed', last_error: expect.stringContaining('401') });
    expect((await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/retry`, { token: adminToken })).status).toBe(202);
    await drain(connectors());
    expect((await services(t.id)).chatwoot).toMatchObject({ state: 'active', last_error: null });
    expect((await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/retry`, { token: adminToken })).status).toBe(409);
  });

  it('a service that failed before any credentials existed says so: credentials_available false, and the reveal is a 409', async () => {
    const t = await createTenant([]);
    await db.sql`insert into public.tenant_services (tenant_id, service, state, last_error) values (${t.id}, 'odoo', 'failed', 'refused')`;
    const adminToken = await tokenForOwner(t);
    const listed = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: adminToken });
    expect(listed.body.items.find((i: { service: string }) => i.service === 'odoo')).toMatchObject({ state: 'failed', credentials_available: false });
    const reveal = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/odoo/credentials`, { token: adminToken });
    expect([reveal.status, errorCode(reveal)]).toEqual([409, 'credentials_unavailable']);
  });

  it('a 422 (a record the partner refuses) fails at once with its message, no retry storm', async () => {
    const t = await createTenant([]);
    chatwoot.invalidEmails.add(t.email);
    await db.sql`insert into public.tenant_services (tenant_id, service) values (${t.id}, 'chatwoot')`;
    const before = chatwoot.server.log.length;
    await drain();
    const s = (await services(t.id)).chatwoot;
    expect(s).toMatchObject({ state: 'failed', attempts: 1 });
    expect(s.last_error).toContain('422: Email is invalid');
    expect(chatwoot.server.log.slice(before).filter((l) => l.path === '/platform/api/v1/users')).toHaveLength(1);
  });

  it("n8n's licence 403 in projects mode is permanent and explained; shared mode works", async () => {
    const t = await createTenant(['n8n']);
    await drain(connectors({ n8nMode: 'projects' }));
    const s = (await services(t.id)).n8n;
    expect(s).toMatchObject({ state: 'failed', attempts: 1 });
    expect(s.last_error).toContain('licence');
    n8n.licensed = true;
    try {
      await db.sql`update public.tenant_services set state = 'pending' where tenant_id = ${t.id}`;
      await db.sql`select private.reconcile_tenant_services()`;
      await drain(connectors({ n8nMode: 'projects' }));
      expect((await services(t.id)).n8n).toMatchObject({ state: 'active', external_ids: { project_id: expect.any(String) } });
      expect(n8n.projects.size).toBe(1);
    } finally {
      n8n.licensed = false;
    }
  });

  it("n8n's user-quota 403 on /users is permanent and explained, not the projects advice", async () => {
    n8n.usersLimited = true;
    try {
      const t = await createTenant(['n8n']);
      await drain(connectors({ n8nMode: 'shared' }));
      const s = (await services(t.id)).n8n;
      expect(s).toMatchObject({ state: 'failed', attempts: 1 });
      expect(s.last_error).toContain('unlimited user quota');
      expect(s.last_error).not.toContain('N8N_MODE=shared');
    } finally {
      n8n.usersLimited = false;
    }
  });

  it('a partner that keeps failing ends dead after max_attempts', async () => {
    const t = await createTenant(['odoo']);
    await db.sql`update private.jobs set max_attempts = 3 where job_key = ${`provision:${t.id}:odoo`}`;
    odoo.server.faults.fail5xx = 100;
    await drain();
    const [job] = await db.sql`select status, attempts from (${jobOf(t.id, 'odoo')}) j`;
    expect(job).toEqual({ status: 'dead', attempts: 3 });
    expect((await services(t.id)).odoo.state).toBe('failed');
  });
});

async function tokenForOwner(t: { email: string }) {
  const [u] = await db.sql`select id from public.users where email = ${t.email}`;
  await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${u.id}, ${u.id}) on conflict do nothing`;
  return await supabaseToken({ id: u.id, email: t.email });
}

describe('lifecycle', () => {
  it('suspend, resume and remove (after the grace period) reach the partners', async () => {
    const t = await createTenant(['chatwoot', 'odoo', 'botpress']);
    await drain();
    const ids = await services(t.id);
    const account = () => chatwoot.accounts.get(ids.chatwoot.external_ids.account_id);
    const odooUser = () => odoo.tables['res.users'].get(ids.odoo.external_ids.user_id);

    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    await drain();
    expect(Object.values(await services(t.id)).map((s) => s.state)).toEqual(['suspended', 'suspended', 'suspended']);
    expect(account()?.status).toBe('suspended');
    expect(odooUser()?.active).toBe(false);
    expect(partnerObjects(t).botpressBots).toBe(1); // suspended is blocked, not deleted
    expect(botpress.bots.get(ids.botpress.external_ids.bot_id)?.blocked).toBe(true);

    await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
    await drain();
    expect(Object.values(await services(t.id)).map((s) => s.state)).toEqual(['active', 'active', 'active']);
    expect(account()?.status).toBe('active');
    expect(odooUser()?.active).toBe(true);
    expect(botpress.bots.get(ids.botpress.external_ids.bot_id)?.blocked).toBe(false);

    await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken });
    await drain();
    // Within the grace period nothing is removed, but access ends at once: suspended.
    expect(account()?.status).toBe('suspended');
    expect(odooUser()?.active).toBe(false);
    expect(botpress.bots.get(ids.botpress.external_ids.bot_id)?.blocked).toBe(true);
    expect(Object.values(await services(t.id)).every((s) => s.desired_state === 'removed' && s.state === 'suspended')).toBe(true);
    // The removal waits for its time.
    const removals = await db.sql`select run_at > now() + interval '6 days' as later from private.jobs
      where task = 'provision' and dead_at is null and payload ->> 'tenant_id' = ${t.id}`;
    expect(removals.map((j) => j.later)).toEqual([true, true, true]);
    await db.sql`update public.tenant_services set remove_after = now() where tenant_id = ${t.id}`;
    await drain();
    expect(Object.values(await services(t.id)).map((s) => s.state)).toEqual(['removed', 'removed', 'removed']);
    // Chatwoot deletes in a background job: until it runs the account is suspended and marked.
    expect(account()).toMatchObject({ status: 'suspended', custom_attributes: { deletion_requested_at: expect.any(String) } });
    chatwoot.runJobs();
    expect(account()).toBeUndefined();
    expect(partnerObjects(t).botpressBots).toBe(0);
    expect(odooUser()?.active).toBe(false);
  });

  it('a deletion suspends at once, also a suspension still waiting out a failure, and a restore within the grace period resumes', async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const ids = await services(t.id);
    const account = () => chatwoot.accounts.get(ids.chatwoot.external_ids.account_id);
    // The suspension meets a Chatwoot 503 and waits out its backoff…
    chatwoot.server.faults = { ...chatwoot.server.faults, match: /^PATCH \/platform\/api\/v1\/accounts\//, fail5xx: 1 };
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    expect(account()?.status).toBe('active');
    // …when the tenant is deleted: the job is not moved out by the grace period.
    const [waiting] = await jobOf(t.id, 'chatwoot');
    await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken });
    const [job] = await jobOf(t.id, 'chatwoot');
    // Not moved later (to the grace period's end): at most where its backoff had it.
    expect(new Date(job.run_at).getTime()).toBeLessThanOrEqual(new Date(waiting.run_at).getTime());
    await drain();
    expect(account()?.status).toBe('suspended');
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'removed', state: 'suspended' });

    await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
    await drain();
    expect(account()?.status).toBe('active');
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'active', state: 'active' });
    expect(await db.sql`select 1 from private.jobs where job_key = ${`provision:${t.id}:chatwoot`} and dead_at is null`).toHaveLength(0);
  });

  it('a tenant deleted again while its removed space is being made anew has the new space suspended at once, and cannot be purged meanwhile', async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    // Deleted with no grace period: the space is removed.
    await db.sql`update public.tenants set settings = settings || '{"removal_grace_days": "0"}' where id = ${t.id}`;
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    await drain();
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'removed', state: 'removed' });
    // Restored, with the usual grace period again: the account is made anew, and the job
    // stops on a Chatwoot 503 after making it (its webhook), to try again later.
    await db.sql`update public.tenants set settings = settings - 'removal_grace_days' where id = ${t.id}`;
    expect((await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken })).status).toBe(200);
    chatwoot.server.faults = { ...chatwoot.server.faults, match: /^POST \/api\/v1\/accounts\/\d+\/webhooks/, fail5xx: 1 };
    expect((await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 })).retried).toBe(1);
    const made = (await services(t.id)).chatwoot;
    // In flight, not taken for removed (which is what lets a tenant be purged).
    expect(made).toMatchObject({ desired_state: 'active', state: 'provisioning' });
    const account = () => chatwoot.accounts.get(made.external_ids.account_id);
    expect(account()?.status).toBe('active');
    // Deleted again: the new account is suspended now, not after the grace period.
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    expect(await db.sql`delete from public.tenants where id = ${t.id}`.catch((e) => e.code)).toBe('PT409');
    await drain();
    expect(account()?.status).toBe('suspended');
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'removed', state: 'suspended' });
  });

  /** A Chatwoot tenant deleted, whose suspension in the grace period met a Chatwoot 503
   *  and waits to be tried again (retried, not ended as superseded by the removal it
   *  queued under its own key). */
  async function deletedWithSuspensionFailed() {
    const t = await createTenant(['chatwoot']);
    await drain();
    const made = (await services(t.id)).chatwoot;
    const account = () => chatwoot.accounts.get(made.external_ids.account_id);
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    chatwoot.server.faults = { ...chatwoot.server.faults, match: /^PATCH \/platform\/api\/v1\/accounts\//, fail5xx: 1 };
    const first = await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    expect(first.tasks.provision).toMatchObject({ retried: 1, superseded: 0 });
    expect(account()?.status).toBe('active');
    return { t, account };
  }

  it("a deleted tenant's suspension that meets a partner failure is retried, not ended (it queued the removal under its own key)", async () => {
    const { t, account } = await deletedWithSuspensionFailed();
    await drain();
    expect(account()?.status).toBe('suspended');
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'removed', state: 'suspended' });
  });

  it("a restore while the deleted tenant's suspension waits out a backoff resumes at once, not behind it", async () => {
    const { t, account } = await deletedWithSuspensionFailed();
    // Restored while that suspension waits for its retry: the resume runs now (no backoff
    // is moved here), and the account was never suspended.
    expect((await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken })).status).toBe(200);
    const run = await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    expect(run.tasks.provision).toMatchObject({ completed: 1 });
    expect(account()?.status).toBe('active');
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'active', state: 'active' });
    expect(await db.sql`select 1 from private.jobs where task = 'provision' and payload ->> 'tenant_id' = ${t.id} and dead_at is null`)
      .toHaveLength(0);
  });

  it('a space that comes up after its tenant was deleted (a resume in flight) is suspended at once', async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const account = () => chatwoot.accounts.get(made.external_ids.account_id);
    const made = (await services(t.id)).chatwoot;
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    await drain();
    expect(account()?.status).toBe('suspended');
    // The resume is under way (its job holds the service) when the tenant is deleted.
    await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
    chatwoot.server.faults = { ...chatwoot.server.faults, match: /^PATCH \/platform\/api\/v1\/accounts\//, slow: 1, slowMs: 1_500 };
    // A client that waits that long, so the resume is slow rather than failed.
    const patient = {
      ...connectors(),
      chatwoot: chatwootConnector({ url: chatwoot.url, platformToken: chatwoot.token, timeoutMs: 5_000, inboundUrl: chatwootInboundUrl }),
    };
    const resuming = runProvisioningWorker({ connectors: patient, budgetMs: 8_000 });
    await vi.waitFor(async () => {
      expect(await db.sql`select 1 from private.jobs where task = 'provision' and payload ->> 'tenant_id' = ${t.id} and locked_by is not null`)
        .toHaveLength(1);
    });
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    // Still under way when the deletion committed (else this tests nothing new).
    expect(await db.sql`select 1 from private.jobs where task = 'provision' and payload ->> 'tenant_id' = ${t.id} and locked_by is not null`)
      .toHaveLength(1);
    expect((await services(t.id)).chatwoot.state).toBe('suspended');
    await resuming;
    await drain();
    expect(account()?.status).toBe('suspended');
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'removed', state: 'suspended' });
    const [removal] = await db.sql`select run_at > now() + interval '6 days' as later from private.jobs
      where task = 'provision' and dead_at is null and payload ->> 'tenant_id' = ${t.id}`;
    expect(removal.later).toBe(true);
  });

  it("a deleted tenant's suspension that fails for good is not queued again at once: it waits for the removal", async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const made = (await services(t.id)).chatwoot;
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    // Chatwoot refuses the platform token (a permanent error) for every suspension: each
    // one that ended failed used to queue the next at once, for the whole grace period.
    await drain(connectors({ chatwootToken: 'revoked-token' }));
    const jobs = await db.sql`select dead_at is not null as dead, run_at > now() + interval '6 days' as later
      from private.jobs where task = 'provision' and payload ->> 'tenant_id' = ${t.id} order by id`;
    expect(jobs).toEqual([{ dead: true, later: false }, { dead: false, later: true }]); // the suspension; the removal
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'removed', state: 'failed', last_error: expect.stringContaining('401') });
    expect(chatwoot.accounts.get(made.external_ids.account_id)?.status).toBe('active');
    // A space recorded as failed (its account made, a later change refused) is likewise
    // tried once: the suspension does not mark it provisioning, which a job bringing the
    // space up does, and whose failure queues the suspension at once.
    const u = await createTenant(['chatwoot']);
    await drain();
    await db.sql`update public.tenant_services set state = 'failed' where tenant_id = ${u.id}`;
    expect((await call(tenantsApp, 'DELETE', `/tenants/${u.id}`, { token: superToken })).status).toBe(200);
    await drain(connectors({ chatwootToken: 'revoked-token' }));
    const after = await db.sql`select dead_at is not null as dead, run_at > now() + interval '6 days' as later
      from private.jobs where task = 'provision' and payload ->> 'tenant_id' = ${u.id} order by id`;
    expect(after).toEqual([{ dead: true, later: false }, { dead: false, later: true }]);
    expect((await services(u.id)).chatwoot).toMatchObject({ desired_state: 'removed', state: 'failed' });
  });

  it("a removal called off after Chatwoot's DELETE failed has that account deleted when the space is made again, not left behind", async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const old = (await services(t.id)).chatwoot.external_ids.account_id;
    await db.sql`update public.tenants set settings = settings || '{"removal_grace_days": "0"}' where id = ${t.id}`;
    chatwoot.server.faults = { ...chatwoot.server.faults, match: /^DELETE \/platform\/api\/v1\/accounts\//, fail5xx: 1 };
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    expect((await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 })).retried).toBe(1);
    expect(chatwoot.accounts.get(old)).toMatchObject({ status: 'suspended', custom_attributes: { deletion_requested_at: expect.any(String) } });
    // Restored while that removal waits out its backoff: the space is made again.
    await db.sql`update public.tenants set settings = settings - 'removal_grace_days' where id = ${t.id}`;
    expect((await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken })).status).toBe(200);
    await drain();
    const made = (await services(t.id)).chatwoot;
    expect(made).toMatchObject({ desired_state: 'active', state: 'active' });
    expect(made.external_ids.account_id).not.toBe(old);
    chatwoot.runJobs();
    expect(chatwoot.accounts.has(old)).toBe(false);
    expect(chatwoot.accounts.get(made.external_ids.account_id)?.status).toBe('active');
    expect(partnerObjects(t).chatwootAccounts).toBe(1);
  });

  it("a new owner takes the n8n project and the Odoo company; the former owner's access there goes, and their n8n login the tenant made goes with the tenant", async () => {
    const c = connectors({ n8nMode: 'projects' });
    n8n.licensed = true; // projects need n8n's licence
    onTestFinished(() => void (n8n.licensed = false));
    const t = await createTenant(['n8n', 'odoo']);
    await drain(c);
    const before = await services(t.id);
    const formerN8n = before.n8n.external_ids.user_id as string;
    const formerOdoo = before.odoo.external_ids.user_id as number;
    const project = before.n8n.external_ids.project_id as string;
    const company = before.odoo.external_ids.company_id as number;
    expect(n8n.projects.get(project)?.members.has(formerN8n)).toBe(true);
    await addAdmin(t, 'next', 'Nia');
    // The first admin is disabled by a platform admin (the membership stays).
    await db.sql`update public.users set status = 'disabled' where email = ${t.email}`;
    for (const service of ['n8n', 'odoo']) await retryService(t.id, service);
    await drain(c);
    const after = await services(t.id);
    expect([after.n8n.state, after.odoo.state]).toEqual(['active', 'active']);
    // n8n: the new owner is the project's admin, the former one no longer a member; their
    // login stays (in shared mode their workflows would be the tenant's), kept for removal.
    const ownerN8n = after.n8n.external_ids.user_id as string;
    expect(n8n.users.get(ownerN8n)?.email).toBe(`next@${t.slug}.test`);
    expect(n8n.projects.get(project)?.members.has(ownerN8n)).toBe(true);
    expect(n8n.projects.get(project)?.members.has(formerN8n)).toBe(false);
    expect(n8n.users.has(formerN8n)).toBe(true);
    expect(after.n8n.external_ids).toMatchObject({ former_user_ids: [], former_logins: [formerN8n] });
    // Odoo: the new owner has the company; the former owner's login has lost it.
    const users = odoo.tables['res.users'];
    const ownerOdoo = after.odoo.external_ids.user_id as number;
    expect(users.get(ownerOdoo)).toMatchObject({ login: `next@${t.slug}.test`, active: true });
    expect(users.get(ownerOdoo)!.company_ids).toContain(company);
    const formerRow = users.get(formerOdoo)!;
    expect(formerRow.active === false || !(formerRow.company_ids as number[]).includes(company)).toBe(true);
    expect(after.odoo.external_ids.former_user_ids).toEqual([]);
    // Removed: the former owner's n8n login, which the tenant's invitation made, goes too.
    await db.sql`update public.tenants set settings = settings || '{"removal_grace_days": "0"}' where id = ${t.id}`;
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    await drain(c);
    expect((await services(t.id)).n8n.state).toBe('removed');
    expect(n8n.users.has(formerN8n)).toBe(false);
    expect(n8n.users.has(ownerN8n)).toBe(false);
  });

  it('a change of owner reaches the partners by itself: an admin disabled, removed or back queues the hand-over; with no admin left, nothing is queued', async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const queued = async () =>
      (await db.sql`select count(*)::int as n from private.jobs where job_key = ${`provision:${t.id}:chatwoot`} and dead_at is null`)[0].n;
    const owner = async () => chatwoot.users.get((await services(t.id)).chatwoot.external_ids.user_id)?.email;
    expect(await queued()).toBe(0);
    // Any admin change queues it (the run reads the owner again, after the change).
    const next = await addAdmin(t, 'next', 'Nia');
    expect(await queued()).toBe(1);
    await drain();
    expect(await owner()).toBe(t.email);
    // The owner disabled: queued in that transaction, and handed over by the next run.
    await db.sql`update public.users set status = 'disabled' where email = ${t.email}`;
    expect(await queued()).toBe(1);
    await drain();
    expect(await owner()).toBe(`next@${t.slug}.test`);
    // Back: the oldest admin owns it again.
    await db.sql`update public.users set status = 'active' where email = ${t.email}`;
    expect(await queued()).toBe(1);
    await drain();
    expect(await owner()).toBe(t.email);
    // Removed from the tenant (as an admin, through the members API's path).
    await db.sql`delete from public.memberships where tenant_id = ${t.id} and user_id = (select id from public.users where email = ${t.email})`;
    expect(await queued()).toBe(1);
    await drain();
    expect(await owner()).toBe(`next@${t.slug}.test`);
    // The last admin disabled (a platform admin may): nothing is queued, and the service
    // keeps its state rather than failing for want of an owner.
    await db.sql`update public.users set status = 'disabled' where id = ${next}`;
    expect(await queued()).toBe(0);
    expect((await services(t.id)).chatwoot.state).toBe('active');
  });

  it('the owner changing again before a failed run took the first former owner out: every former owner leaves the n8n project', async () => {
    const c = connectors({ n8nMode: 'projects' });
    n8n.licensed = true;
    onTestFinished(() => void (n8n.licensed = false));
    const t = await createTenant(['n8n']);
    await drain(c);
    const { user_id: a, project_id: project } = (await services(t.id)).n8n.external_ids as { user_id: string; project_id: string };
    const b = await addAdmin(t, 'bea');
    await db.sql`update public.users set status = 'disabled' where email = ${t.email}`;
    // B's run records B and A as former, then fails taking A out of the project.
    n8n.server.faults = { ...n8n.server.faults, match: /^DELETE \/api\/v1\/projects\/[^/]+\/users\//, fail5xx: 1 };
    await retryService(t.id, 'n8n');
    expect((await runProvisioningWorker({ connectors: c, budgetMs: 5_000 })).retried).toBe(1);
    expect((await services(t.id)).n8n.external_ids).toMatchObject({ former_user_ids: [a] });
    // B is disabled before the retry, and C owns the space.
    await addAdmin(t, 'cyd');
    await db.sql`update public.users set status = 'disabled' where id = ${b}`;
    await drain(c);
    const after = (await services(t.id)).n8n;
    expect(after.state).toBe('active');
    const c3 = after.external_ids.user_id as string;
    expect(n8n.users.get(c3)?.email).toBe(`cyd@${t.slug}.test`);
    const members = n8n.projects.get(project)!.members;
    expect([members.has(c3), members.has(a), members.size]).toEqual([true, false, 2]); // C and n8n's owner
    expect(after.external_ids.former_user_ids).toEqual([]);
  });

  it("n8n: a former owner who owns the space again keeps the login the tenant's invitation made as the tenant's; a login another tenant keeps as a former owner's is not deleted", async () => {
    const t = await createTenant(['n8n']);
    await drain();
    const a = (await services(t.id)).n8n.external_ids.user_id as string;
    n8n.users.get(a)!.isPending = false; // accepted the invitation
    const b = await addAdmin(t, 'bo', 'Bo');
    const retry = async () => {
      await retryService(t.id, 'n8n');
      await drain();
      return (await services(t.id)).n8n.external_ids;
    };
    await db.sql`update public.users set status = 'disabled' where email = ${t.email}`;
    const toB = await retry();
    const bLogin = toB.user_id as string;
    expect(toB.former_logins).toEqual([a]);
    // A is back and B disabled: A owns the space again, with the login the tenant made.
    await db.sql`update public.users set status = 'active' where email = ${t.email}`;
    await db.sql`update public.users set status = 'disabled' where id = ${b}`;
    const back = await retry();
    expect(back).toMatchObject({ user_id: a, owner_login: 'invited', former_logins: [bLogin] });
    // Another tenant keeps B's login as a former owner's: it stays when this one goes.
    const other = await createTenant(['n8n']);
    await drain();
    await db.sql`update public.tenant_services set external_ids = external_ids || ${db.sql.json({ former_logins: [bLogin] })}
      where tenant_id = ${other.id} and service = 'n8n'`;
    expect((await db.sql`select private.partner_id_users(${t.id}, 'n8n', 'user_id', ${bLogin}) as n`)[0].n).toBe(1);
    await db.sql`update public.tenants set settings = settings || '{"removal_grace_days": "0"}' where id = ${t.id}`;
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    await drain();
    expect((await services(t.id)).n8n.state).toBe('removed');
    expect([n8n.users.has(a), n8n.users.has(bLogin)]).toEqual([false, true]);
  });

  it("the partner account's owner is the oldest admin who can sign in; with none, making it stops and says why", async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const next = await addAdmin(t, 'next', 'Nia');
    // The first admin is disabled by a platform admin (the membership stays).
    await db.sql`update public.users set status = 'disabled' where email = ${t.email}`;
    const retry = async () => {
      await retryService(t.id, 'chatwoot');
      await drain();
      return (await services(t.id)).chatwoot;
    };
    const [before] = await db.sql`select external_ids, credentials_encrypted from public.tenant_services where tenant_id = ${t.id}`;
    const formerPassword = (await decryptJson<{ password: string }>(before.credentials_encrypted, { tenantId: t.id, service: 'chatwoot' })).password;
    const made = await retry();
    expect(made.state).toBe('active');
    const owner = chatwoot.users.get(made.external_ids.user_id);
    expect(owner?.email).toBe(`next@${t.slug}.test`);
    const account = made.external_ids.account_id;
    expect(chatwoot.links.some((l) => l.account_id === account && l.user_id === owner!.id)).toBe(true);
    // The former owner is no longer the account's administrator (their login stays).
    expect(chatwoot.links.some((l) => l.account_id === account && l.user_id === before.external_ids.user_id)).toBe(false);
    expect(chatwoot.users.has(before.external_ids.user_id)).toBe(true);
    // The new owner's login has a password of its own, not the one the former owner was shown.
    const [{ credentials_encrypted }] = await db.sql`select credentials_encrypted from public.tenant_services where tenant_id = ${t.id}`;
    const shown = await decryptJson<{ email: string; password: string }>(credentials_encrypted, { tenantId: t.id, service: 'chatwoot' });
    expect(shown.email).toBe(`next@${t.slug}.test`);
    expect(shown.password).not.toBe(formerPassword);
    expect(owner!.password).toBe(shown.password);
    // Locked out too (marked deleted, the membership kept): no admin can own it.
    await db.sql`update public.users set status = 'deleted' where id = ${next}`;
    expect(await retry()).toMatchObject({ state: 'failed', last_error: expect.stringContaining('no admin') });
  });

  it('a tenant is deleted outright only once its partner services are removed (they would stay live at the partners)', async () => {
    const t = await createTenant(['chatwoot', 'botpress']);
    await drain();
    const refused = await db.sql`delete from public.tenants where id = ${t.id}`.catch((e) => e);
    expect(refused).toMatchObject({ code: 'PT409', message: expect.stringContaining('botpress, chatwoot') });
    expect(JSON.parse(refused.detail)).toEqual({ code: 'services_not_removed', details: { services: ['botpress', 'chatwoot'] } });
    expect(await db.sql`select 1 from public.tenant_services where tenant_id = ${t.id}`).toHaveLength(2);
    // Purged the way it says: deleted with no grace period, its services removed, then gone.
    await db.sql`update public.tenants set settings = settings || '{"removal_grace_days": "0"}' where id = ${t.id}`;
    expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
    await drain();
    expect(Object.values(await services(t.id)).map((s) => s.state)).toEqual(['removed', 'removed']);
    expect(partnerObjects(t).botpressBots).toBe(0);
    await db.sql`delete from public.tenants where id = ${t.id}`;
    // A service that never made anything does not hold a tenant back: pending, or failed
    // before it made anything (a partner this deployment has no connection to).
    const bare = await createTenant(['odoo']);
    expect((await services(bare.id)).odoo.state).toBe('pending');
    // ... unless a job has just taken it (provisioning_context: locked, marked
    // provisioning, the partner called next): the purge waits for it, and is refused.
    const { whileHeld } = await import('./helpers/advisory-locks.ts');
    const raced = await whileHeld(
      db.sql,
      (tx) => tx`update public.tenant_services set state = 'provisioning' where tenant_id = ${bare.id} and service = 'odoo'`,
      () => db.sql`delete from public.tenants where id = ${bare.id}`.execute().catch((e) => e),
    );
    expect(raced).toMatchObject({ code: 'PT409' });
    await db.sql`update public.tenant_services set state = 'pending' where tenant_id = ${bare.id}`;
    await db.sql`delete from public.tenants where id = ${bare.id}`;
    expect(await db.sql`select 1 from public.tenants where id = ${bare.id}`).toHaveLength(0);
    // A failed one may have made something whose answer was lost (a Botpress bot is made
    // before its id can be recorded): it holds the tenant, also where this deployment has
    // no connection to its partner. An operator who knows nothing was made deletes the
    // service's row first.
    const failed = await createTenant(['botpress']);
    const { botpress: _unconfigured, ...withoutBotpress } = connectors();
    await drain(withoutBotpress as Connectors);
    expect((await services(failed.id)).botpress).toMatchObject({ state: 'failed', external_ids: {} });
    expect(await db.sql`delete from public.tenants where id = ${failed.id}`.catch((e) => e.code)).toBe('PT409');
    await db.sql`delete from public.tenant_services where tenant_id = ${failed.id}`;
    await db.sql`delete from public.tenants where id = ${failed.id}`;
    expect(await db.sql`select 1 from public.tenants where id = ${failed.id}`).toHaveLength(0);
  });

  it("a feature taken away while the tenant resumes: the override waits for the resume, and the service stays off", async () => {
    // The override did not lock the tenant: the resume set the service active by the
    // feature it still saw, and the override, seeing it suspended still, passed it by.
    const t = await createTenant(['chatwoot']);
    await drain();
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    expect((await services(t.id)).chatwoot.desired_state).toBe('suspended');
    const waited: boolean[] = [];
    /** Sets the chatwoot feature while a resume (as it updates the tenant) is uncommitted. */
    const entitleDuringResume = async (chatwootFeature: boolean | null) => {
      const resume = await db.sql.reserve();
      try {
        await resume`begin`;
        await resume`update public.tenants set status = 'active' where id = ${t.id}`;
        const [{ pid }] = await resume`select pg_backend_pid() as pid`;
        const entitled = call(tenantsApp, 'PATCH', `/tenants/${t.id}/entitlements`, {
          token: superToken,
          body: { features: { chatwoot: chatwootFeature } },
        });
        waited.push(await someoneWaitsFor(db.sql, pid));
        await resume`commit`;
        expect((await entitled).status).toBe(200);
      } finally {
        await resume`rollback`.catch(() => {});
        resume.release();
      }
    };
    await entitleDuringResume(false);
    expect((await services(t.id)).chatwoot.desired_state).toBe('suspended');
    // And granted back while it resumes: the service comes back.
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    await entitleDuringResume(null);
    expect((await services(t.id)).chatwoot.desired_state).toBe('active');
    expect(waited).toEqual([true, true]);
  });

  it('a service whose feature the plan loses is suspended at the partner, and resumed when the plan has it again', async () => {
    const t = await createTenant(['chatwoot', 'botpress']);
    await drain();
    const ids = await services(t.id);
    const account = () => chatwoot.accounts.get(ids.chatwoot.external_ids.account_id);
    const entitle = (features: Record<string, boolean | null>) =>
      call(tenantsApp, 'PATCH', `/tenants/${t.id}/entitlements`, { token: superToken, body: { features } });
    expect((await entitle({ chatwoot: false })).status).toBe(200);
    await drain();
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'suspended', state: 'suspended' });
    expect(account()?.status).toBe('suspended');
    // The other service is the plan's still.
    expect((await services(t.id)).botpress).toMatchObject({ desired_state: 'active', state: 'active' });
    // Nothing re-creates it meanwhile.
    expect((await db.sql`select private.reconcile_tenant_services() as n`)[0].n).toBe(0);
    // Suspension is the platform's: an admin turns a service off by removing it, not by
    // suspending it through PostgREST (which the tenant's next resume would undo).
    await tokenForOwner(t); // their login, which the claims name
    const [owner] = await db.sql`select id, email from public.users where email = ${t.email}`;
    const paused = await probeAs(db.sql, 'authenticated', { ...supabaseClaims(users.acmeAdmin, t.id), sub: owner.id, email: owner.email },
      (tx) => tx`update public.tenant_services set desired_state = 'suspended' where tenant_id = ${t.id} and service = 'botpress'`);
    expect(paused).toMatchObject({ ok: false, error: { code: 'PT409' } });
    expect((await entitle({ chatwoot: null })).status).toBe(200);
    await drain();
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'active', state: 'active' });
    expect(account()?.status).toBe('active');

    // The plan loses the feature while the tenant is suspended: still paused after the
    // tenant's resume, and back with the feature.
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    expect((await entitle({ chatwoot: false })).status).toBe(200);
    await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
    await drain();
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'suspended', state: 'suspended' });
    expect((await services(t.id)).botpress).toMatchObject({ desired_state: 'active', state: 'active' });
    expect((await entitle({ chatwoot: null })).status).toBe(200);
    await drain();
    expect((await services(t.id)).chatwoot).toMatchObject({ desired_state: 'active', state: 'active' });
  });

  it('removes what a create made when its answer was lost and the tenant went before a retry', async () => {
    // The bot and the n8n project are made, their answers never arrive: no id is recorded.
    botpress.server.faults = { ...botpress.server.faults, match: /^POST \/v1\/admin\/bots$/, dropAfterWork: 1 };
    n8n.licensed = true;
    try {
      const c = connectors({ n8nMode: 'projects' });
      n8n.server.faults = { ...n8n.server.faults, match: /^POST \/api\/v1\/projects$/, dropAfterWork: 1 };
      const t = await createTenant(['botpress', 'n8n']);
      const projectsBefore = n8n.projects.size;
      await runJobs({ tasks: ['provision'], deps: { connectors: c }, budgetMs: 5_000 });
      const made = await services(t.id);
      expect(made.botpress.external_ids.bot_id).toBeUndefined();
      expect(made.n8n.external_ids.project_id).toBeUndefined();
      expect(partnerObjects(t).botpressBots).toBe(1);
      expect(n8n.projects.size).toBe(projectsBefore + 1);

      expect((await call(tenantsApp, 'DELETE', `/tenants/${t.id}`, { token: superToken })).status).toBe(200);
      await db.sql`update public.tenant_services set remove_after = now() where tenant_id = ${t.id}`;
      await drain(c);
      expect(Object.values(await services(t.id)).map((s) => s.state)).toEqual(['removed', 'removed']);
      expect(partnerObjects(t).botpressBots).toBe(0);
      expect(n8n.projects.size).toBe(projectsBefore);
    } finally {
      n8n.licensed = false;
    }
  });

  it('unblocks a bot whose suspension was applied but never answered once the tenant is resumed', async () => {
    const t = await createTenant(['botpress']);
    await drain();
    const { bot_id: botId } = (await services(t.id)).botpress.external_ids;
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    // Botpress blocks the bot; the answer is lost, so the suspension is retried later.
    botpress.server.faults = { ...botpress.server.faults, match: /^PUT \/v1\/admin\/bots\//, dropAfterWork: 1 };
    await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    expect(botpress.bots.get(botId)?.blocked).toBe(true);
    expect((await services(t.id)).botpress.state).toBe('active');
    await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
    await drain();
    expect((await services(t.id)).botpress.state).toBe('active');
    expect(botpress.bots.get(botId)?.blocked).toBe(false);
  });

  it('an owner of two tenants keeps one Odoo login with both companies; suspending one takes away only that company', async () => {
    const a = await createTenant(['odoo']);
    const b = await createTenant([]);
    // b's owner is a's owner.
    const [owner] = await db.sql`select id from public.users where email = ${a.email}`;
    await db.sql`update public.memberships set user_id = ${owner.id} where tenant_id = ${b.id}`;
    await db.sql`insert into public.tenant_services (tenant_id, service) values (${b.id}, 'odoo')`;
    await drain();
    const logins = [...odoo.tables['res.users'].values()].filter((u) => u.login === a.email);
    expect(logins).toHaveLength(1);
    const companies = () => [...(logins[0].company_ids as number[])];
    const [sa, sb] = [(await services(a.id)).odoo.external_ids.company_id, (await services(b.id)).odoo.external_ids.company_id];
    expect(companies().sort()).toEqual([sa, sb].sort());
    await call(tenantsApp, 'POST', `/tenants/${b.id}/suspend`, { token: superToken });
    await drain();
    expect(logins[0].active).toBe(true);
    expect(companies()).toEqual([sa]);
    await call(tenantsApp, 'POST', `/tenants/${b.id}/resume`, { token: superToken });
    await drain();
    expect(companies().sort()).toEqual([sa, sb].sort());
  });

  it("each connector's check sees the partner objects exist, then gone after removal", async () => {
    const t = await createTenant();
    await drain();
    const c = connectors();
    const ctx = async (service: string) => ({
      tenant: { id: t.id, slug: t.slug, name: '' },
      admin: null,
      externalIds: (await services(t.id))[service].external_ids,
      credentials: null,
      checkpoint: () => Promise.resolve(),
    });
    for (const service of ['chatwoot', 'botpress', 'n8n', 'odoo'] as const) expect(await c[service]!.check(await ctx(service)), service).toBe(true);
    await db.sql`update public.tenant_services set desired_state = 'removed' where tenant_id = ${t.id} and service in ('chatwoot', 'botpress')`;
    await drain();
    for (const service of ['chatwoot', 'botpress'] as const) expect(await c[service]!.check(await ctx(service)), service).toBe(false);
  });

  it('admins enable and disable a service; others cannot', async () => {
    const t = await createTenant([]);
    const adminToken = await tokenForOwner(t);
    const on = await call(tenantsApp, 'PUT', `/tenants/${t.id}/services/botpress`, { token: adminToken, body: { enabled: true } });
    expect(on.body).toMatchObject({ service: 'botpress', desired_state: 'active', state: 'pending' });
    await drain();
    expect(partnerObjects(t).botpressBots).toBe(1);
    const off = await call(tenantsApp, 'PUT', `/tenants/${t.id}/services/botpress`, { token: adminToken, body: { enabled: false } });
    expect(off.body.desired_state).toBe('removed');
    await drain();
    expect(partnerObjects(t).botpressBots).toBe(0);
    const agent = await supabaseToken(users.acmeAgent);
    expect((await call(tenantsApp, 'PUT', `/tenants/${t.id}/services/botpress`, { token: agent, body: { enabled: true } })).status).toBe(404);
    const bad = await call(tenantsApp, 'PUT', `/tenants/${t.id}/services/slack`, { token: adminToken, body: { enabled: true } });
    expect([bad.status, errorCode(bad)]).toEqual([422, 'validation_failed']);
  });
});

describe('Chatwoot conversations', () => {
  it("flow in without manual steps: provisioning makes the account webhook at the tenant's inbound URL, and its secret verifies the deliveries", async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const s = await services(t.id);
    const hooks = chatwoot.webhooks.filter((w) => w.account_id === s.chatwoot.external_ids.account_id);
    expect(hooks).toHaveLength(1);
    expect(hooks[0]).toMatchObject({ url: await chatwootInboundUrl(t.id), subscriptions: ['conversation_created', 'message_created', 'conversation_status_changed'] });
    const [row] = await db.sql`select credentials_encrypted from public.tenant_services where tenant_id = ${t.id} and service = 'chatwoot'`;
    expect(await decryptJson(row.credentials_encrypted, { tenantId: t.id, service: 'chatwoot' })).toMatchObject({ webhook_secret: hooks[0].secret });

    // The URL the services API shows is the one the webhook was made with.
    const listed = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: await tokenForOwner(t) });
    expect(listed.body.items[0].inbound_webhook_url).toBe(hooks[0].url);

    const conversation = { event: 'conversation_created', id: 4242, inbox_id: 1, status: 'open', meta: { sender: { name: 'Wendy' } }, messages: [] };
    const d = chatwoot.delivery(hooks[0], conversation);
    const path = d.url.replace(/^https?:\/\/[^/]+\/functions\/v1/, '');
    const ok = await call(webhooksApp, 'POST', path, { rawBody: d.body, headers: d.headers });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const [ticket] = await db.sql`select id from public.tickets where tenant_id = ${t.id} and chatwoot_conversation_id = '4242'`;
    expect(ticket).toBeDefined();
    // With a secret, the token in the URL alone no longer opens anything, and a forged signature fails.
    const unsigned = await call(webhooksApp, 'POST', path, { rawBody: d.body, headers: { 'x-chatwoot-delivery': 'x1' } });
    expect(unsigned.status).toBe(401);
    const forged = await call(webhooksApp, 'POST', path, { rawBody: d.body.replace('Wendy', 'Mallory'), headers: d.headers });
    expect(forged.status).toBe(401);

    // A password rotation asked and not yet run keeps the secret (and the owner token the
    // replies use): the URL token alone still opens nothing, a signed delivery still does.
    const ownerToken = await tokenForOwner(t);
    const rotated = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/rotate-credentials`, { token: ownerToken });
    expect(rotated.status).toBe(202);
    const meanwhile = await call(webhooksApp, 'POST', path, { rawBody: d.body, headers: { 'x-chatwoot-delivery': 'x2' } });
    expect(meanwhile.status).toBe(401);
    const signed = chatwoot.delivery(hooks[0], { ...conversation, id: 4243 });
    expect((await call(webhooksApp, 'POST', path, { rawBody: signed.body, headers: signed.headers })).status).toBe(200);
    const before = await decryptJson<Record<string, string>>(row.credentials_encrypted, { tenantId: t.id, service: 'chatwoot' });
    const [during] = await db.sql`select credentials_encrypted from public.tenant_services where tenant_id = ${t.id} and service = 'chatwoot'`;
    expect(await decryptJson(during.credentials_encrypted, { tenantId: t.id, service: 'chatwoot' }))
      .toMatchObject({ access_token: before.access_token, webhook_secret: before.webhook_secret });
    await drain();
    const [after] = await db.sql`select state, credentials_encrypted from public.tenant_services where tenant_id = ${t.id} and service = 'chatwoot'`;
    const rotatedTo = await decryptJson<Record<string, string>>(after.credentials_encrypted, { tenantId: t.id, service: 'chatwoot' });
    expect(after.state).toBe('active');
    expect(rotatedTo).toMatchObject({ access_token: before.access_token });
    expect(rotatedTo.password).not.toBe(before.password);
    expect(chatwoot.userByEmail(t.email)!.password).toBe(rotatedTo.password);
    // Run, the rotation replaced the webhook: a new one (its secret new: the old one was
    // shown to whoever signed in to Chatwoot as the owner), the old one gone.
    const now = chatwoot.webhooks.filter((w) => w.account_id === s.chatwoot.external_ids.account_id);
    expect(now).toHaveLength(1);
    expect(now[0].id).not.toBe(hooks[0].id);
    expect(rotatedTo.webhook_secret).toBe(now[0].secret);
    expect(rotatedTo.webhook_secret).not.toBe(before.webhook_secret);
    const newPath = now[0].url.replace(/^https?:\/\/[^/]+\/functions\/v1/, '');
    const fresh = chatwoot.delivery(now[0], { ...conversation, id: 4244 });
    expect((await call(webhooksApp, 'POST', newPath, { rawBody: fresh.body, headers: fresh.headers })).status).toBe(200);
    // What Chatwoot signed with the old secret before still counts for a while, then not.
    const late = chatwoot.delivery(hooks[0], { ...conversation, id: 4245 });
    expect((await call(webhooksApp, 'POST', path, { rawBody: late.body, headers: late.headers })).status).toBe(200);
    await db.sql`update public.tenant_services
      set external_ids = external_ids || jsonb_build_object('webhook_secret_replaced_at', now() - interval '16 minutes')
      where tenant_id = ${t.id} and service = 'chatwoot'`;
    const stale = chatwoot.delivery(hooks[0], { ...conversation, id: 4246 });
    const refused = await call(webhooksApp, 'POST', path, { rawBody: stale.body, headers: stale.headers });
    expect([refused.status, errorCode(refused)]).toEqual([401, 'invalid_signature']);
  });

  it('a credentials rotation gives the inbound URL a new token: the former one counts until the webhook has moved and a while after, then no more', async () => {
    chatwoot.signing = false; // a Chatwoot before webhook signing: the URL token is what authenticates
    try {
      const t = await createTenant(['chatwoot']);
      await drain();
      const s = await services(t.id);
      const [hook] = chatwoot.webhooks.filter((w) => w.account_id === s.chatwoot.external_ids.account_id);
      const former = hook.url;
      expect(former).toBe(await chatwootInboundUrl(t.id));
      let n = 5100;
      const send = (url: string) =>
        call(webhooksApp, 'POST', url.replace(/^https?:\/\/[^/]+\/functions\/v1/, ''), {
          rawBody: JSON.stringify({ event: 'conversation_created', id: ++n, inbox_id: 1, status: 'open', meta: { sender: { name: 'Rex' } }, messages: [] }),
          headers: { 'x-chatwoot-delivery': `rotation-${n}` },
        });
      expect((await send(former)).status).toBe(200);
      const owner = await tokenForOwner(t);
      expect((await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/rotate-credentials`, { token: owner })).status).toBe(202);
      expect((await send(former)).status).toBe(200); // asked, not yet run
      // The rotation's job stops after the new token is recorded, before the webhook has
      // moved (Chatwoot answers that PATCH 503): both tokens count meanwhile.
      chatwoot.server.faults = { ...chatwoot.server.faults, match: /^PATCH \/api\/v1\/accounts\/\d+\/webhooks\/\d+$/, fail5xx: 1 };
      expect((await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 })).retried).toBe(1);
      const next = await chatwootInboundUrl(t.id, 1);
      expect(chatwoot.webhooks.find((w) => w.id === hook.id)!.url).toBe(former);
      expect((await send(former)).status).toBe(200);
      expect((await send(next)).status).toBe(200);
      await drain();
      expect(chatwoot.webhooks.find((w) => w.id === hook.id)!.url).toBe(next);
      expect((await services(t.id)).chatwoot).toMatchObject({
        state: 'active',
        external_ids: { url_token_generation: 1, webhook_url_generation: 1, webhook_url_former_generation: 0 },
      });
      // Moved: deliveries Chatwoot queued before still carry the former URL (its job took
      // it when queued) and count for a while; then the former token opens nothing.
      expect((await send(former)).status).toBe(200);
      const movedAgo = (minutes: number) =>
        db.sql`update public.tenant_services set external_ids = external_ids || jsonb_build_object('webhook_url_moved_at', now() - make_interval(mins => ${minutes}))
               where tenant_id = ${t.id}`;
      await movedAgo(16);
      const refused = await send(former);
      expect([refused.status, errorCode(refused)]).toEqual([401, 'invalid_signature']);
      expect((await send(next)).status).toBe(200);
      const listed = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: owner });
      expect(listed.body.items[0].inbound_webhook_url).toBe(next);
      const tickets = await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${t.id}`;
      expect(tickets[0].n).toBe(6); // each delivery that counted made its conversation's ticket

      // Asked again before the last rotation's move was recorded (its job lost its lease
      // after moving the webhook): every generation since the recorded move counts.
      await db.sql`update public.tenant_services set external_ids = external_ids || '{"url_token_generation": 3}' where tenant_id = ${t.id}`;
      for (const g of [1, 2, 3]) expect((await send(await chatwootInboundUrl(t.id, g))).status, `generation ${g}`).toBe(200);
      expect((await send(former)).status).toBe(401);
    } finally {
      chatwoot.signing = true;
    }
  });
});

describe('credentials', () => {
  it('are encrypted at rest, shown to the admin once, and never logged, audited or shown to others', async () => {
    const logged: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((...args) => void logged.push(args.join(' ')));
    try {
      chatwoot.server.faults.fail5xx = 1; // make the worker log a failure too
      const t = await createTenant(['chatwoot']);
      await drain();
      const stored = [...chatwoot.users.values()].find((u) => u.email === t.email)!;
      expect(stored.password).toMatch(/[A-Z]/);

      const [row] = await db.sql`select credentials_encrypted from public.tenant_services where tenant_id = ${t.id}`;
      expect(row.credentials_encrypted).toMatch(/^v2:/);
      expect(row.credentials_encrypted).not.toContain(stored.password);
      expect(await decryptJson(row.credentials_encrypted, { tenantId: t.id, service: 'chatwoot' })).toMatchObject({ password: stored.password });

      const audit = await db.sql`select old_data, new_data, changed_fields from public.audit_logs where table_name = 'tenant_services' and tenant_id = ${t.id}`;
      expect(audit.length).toBeGreaterThan(1);
      expect(JSON.stringify(audit)).not.toContain(stored.password);
      expect(JSON.stringify(audit.map((a) => [a.old_data, a.new_data]))).not.toContain('credentials_encrypted');
      expect(logged.join('\n')).not.toContain(stored.password);
      expect(logged.some((l) => l.includes('chatwoot'))).toBe(true);

      const adminToken = await tokenForOwner(t);
      const listed = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: adminToken });
      expect(JSON.stringify(listed.body)).not.toContain(stored.password);
      expect(listed.body.items[0].credentials_available).toBe(true);
      const first = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
      expect(first.body.credentials).toMatchObject({ email: t.email, password: stored.password });
      const second = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
      expect([second.status, errorCode(second)]).toEqual([409, 'credentials_unavailable']);
      const shown = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: adminToken });
      expect(shown.body.items[0]).toMatchObject({ credentials_available: false, credentials_pending: false });

      // API roles cannot even select the ciphertext.
      await expect(db.sql.begin(async (tx) => {
        await tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${JSON.stringify({ iss: 'http://127.0.0.1:54321/auth/v1', sub: users.super.id, role: 'authenticated' })}, true)`;
        await tx`select credentials_encrypted from public.tenant_services`;
      })).rejects.toMatchObject({ code: '42501' });
    } finally {
      spy.mockRestore();
    }
  });
});

describe('an n8n invitation', () => {
  it("is shown to the person invited only: another admin, or a platform admin, accepting it would own their login (and every tenant's space it owns)", async () => {
    const t = await createTenant(['n8n']);
    await drain();
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${users.acmeAdmin.id}, 'admin')`;
    const other = await supabaseToken(users.acmeAdmin, { tenantId: t.id });
    for (const token of [other, superToken]) {
      const r = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/n8n/credentials`, { token });
      expect([r.status, errorCode(r)]).toEqual([403, 'not_the_invitee']);
      expect(JSON.stringify(r.body)).not.toMatch(/invite_url|inviteeId/);
    }
    const [row] = await db.sql`select credentials_revealed_at from public.tenant_services where tenant_id = ${t.id} and service = 'n8n'`;
    expect(row.credentials_revealed_at).toBeNull();
    const own = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/n8n/credentials`, { token: await tokenForOwner(t) });
    expect([own.status, own.body.credentials]).toEqual([200, { email: t.email, invite_url: expect.stringMatching(/^https?:\/\//) }]);
  });
});

describe("a partner login's password", () => {
  it("is shown to the login's owner only: another admin, or a platform admin, would keep the login after leaving", async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const other = await supabaseToken(users.acmeAdmin, { tenantId: t.id });
    await db.sql`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${users.acmeAdmin.id}, 'admin')`;
    for (const token of [other, superToken]) {
      const r = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token });
      expect([r.status, errorCode(r), r.body.error.message]).toEqual([403, 'not_the_owner', expect.stringContaining(t.email)]);
      expect(r.body.credentials).toBeUndefined();
    }
    const [row] = await db.sql`select credentials_revealed_at from public.tenant_services where tenant_id = ${t.id} and service = 'chatwoot'`;
    expect(row.credentials_revealed_at).toBeNull();
    const own = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: await tokenForOwner(t) });
    expect([own.status, own.body.credentials]).toEqual([200, { email: t.email, password: expect.any(String) }]);
    // The admin added queued the service's checks: done here, not in the next test.
    await db.sql`delete from public.memberships where tenant_id = ${t.id} and user_id = ${users.acmeAdmin.id}`;
    await drain();
  });
});

describe('credentials not yet taken by the partner', () => {
  it('a password chosen before Chatwoot answered is not shown while the create keeps failing, nor at all when the login existed', async () => {
    const t = await createTenant(['chatwoot']);
    // The owner already has a Chatwoot login of their own, and the create fails at first.
    chatwoot.addForeignUser(t.email);
    chatwoot.server.faults = { ...chatwoot.server.faults, match: /^POST \/platform\/api\/v1\/users$/, fail5xx: 1 };
    await runProvisioningWorker({ connectors: connectors(), budgetMs: 5_000 });
    expect((await services(t.id)).chatwoot.state).not.toBe('active');
    const adminToken = await tokenForOwner(t);
    // The list says the login is coming, not that it can be shown.
    const listedEarly = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: adminToken });
    expect(listedEarly.body.items[0]).toMatchObject({ service: 'chatwoot', credentials_available: false, credentials_pending: true });
    const early = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
    expect([early.status, errorCode(early)]).toEqual([409, 'credentials_pending']);
    // Not spent: shown once the service is set up — the existing login, without a password.
    await drain();
    expect((await services(t.id)).chatwoot.state).toBe('active');
    const listedLater = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: adminToken });
    expect(listedLater.body.items[0]).toMatchObject({ credentials_available: true, credentials_pending: false });
    // Enabling again answers with the same state of the login.
    const put = await call(tenantsApp, 'PUT', `/tenants/${t.id}/services/chatwoot`, { token: adminToken, body: { enabled: true } });
    expect(put.body).toMatchObject({ credentials_available: true, credentials_pending: false });
    const later = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
    expect(later.status, JSON.stringify(later.body)).toBe(200);
    expect(later.body.credentials).toMatchObject({ email: t.email, existing_login: true });
    expect(later.body.credentials.password).toBeUndefined();
  });
});

describe('credential rotation', () => {
  it('a password shown once stays shown after later runs hand back the same credentials (suspend, resume, drift repair)', async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const adminToken = await tokenForOwner(t);
    const first = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
    expect(first.status).toBe(200);
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    await drain();
    await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
    await drain();
    expect((await services(t.id)).chatwoot.state).toBe('active');
    const again = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
    expect([again.status, errorCode(again)]).toEqual([409, 'credentials_unavailable']);
    // Someone deletes the account webhook at Chatwoot; the next ensure makes it again with
    // a new signing secret, kept with the credentials — the login, already shown, is not.
    const before = (await services(t.id)).chatwoot;
    chatwoot.webhooks = chatwoot.webhooks.filter((w) => w.account_id !== before.external_ids.account_id);
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    await drain();
    await call(tenantsApp, 'POST', `/tenants/${t.id}/resume`, { token: superToken });
    await drain();
    const hook = chatwoot.webhooks.find((w) => w.account_id === before.external_ids.account_id)!;
    expect(hook).toBeDefined();
    const [row] = await db.sql`select credentials_encrypted from public.tenant_services where tenant_id = ${t.id} and service = 'chatwoot'`;
    expect(await decryptJson(row.credentials_encrypted, { tenantId: t.id, service: 'chatwoot' })).toMatchObject({ webhook_secret: hook.secret });
    const third = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
    expect([third.status, errorCode(third)]).toEqual([409, 'credentials_unavailable']);
  });

  it("gives the Chatwoot owner a new password, shown once again to the tenant's admins", async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    const adminToken = await tokenForOwner(t);
    const first = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
    const rotated = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/rotate-credentials`, { token: adminToken });
    expect(rotated.status).toBe(202);
    await drain();
    const second = await call(tenantsApp, 'POST', `/tenants/${t.id}/services/chatwoot/credentials`, { token: adminToken });
    expect(second.body.credentials.password).not.toBe(first.body.credentials.password);
    expect([...chatwoot.users.values()].find((u) => u.email === t.email)!.password).toBe(second.body.credentials.password);
    expect(partnerObjects(t).chatwootAccounts).toBe(1);
    // A second tenant of the same owner reuses the login: no password of ours, nothing to rotate.
    const b = await createTenant([]);
    const [owner] = await db.sql`select id from public.users where email = ${t.email}`;
    await db.sql`update public.memberships set user_id = ${owner.id} where tenant_id = ${b.id}`;
    await db.sql`insert into public.tenant_services (tenant_id, service) values (${b.id}, 'chatwoot')`;
    await drain();
    const shown = await call(tenantsApp, 'POST', `/tenants/${b.id}/services/chatwoot/credentials`, { token: adminToken });
    expect(shown.body.credentials).toMatchObject({ email: t.email, existing_login: true });
    expect(shown.body.credentials.password).toBeUndefined();
    // The owner's API token would open every account of that login (tenant t's too): never shown.
    expect(Object.keys(shown.body.credentials).sort()).toEqual(['email', 'existing_login', 'note']);
    const refused = await call(tenantsApp, 'POST', `/tenants/${b.id}/services/chatwoot/rotate-credentials`, { token: adminToken });
    expect(refused.status).toBe(409);
    expect(JSON.stringify(refused.body)).toContain('existed before this tenant');
    expect([...chatwoot.users.values()].find((u) => u.email === t.email)!.password).toBe(second.body.credentials.password);
    const botpressOnly = await createTenant(['botpress']);
    await drain();
    const other = await call(tenantsApp, 'POST', `/tenants/${botpressOnly.id}/services/botpress/rotate-credentials`, { token: await tokenForOwner(botpressOnly) });
    expect(other.status).toBe(409);
  });
});

describe('the jobs function', () => {
  it('runs for the service credential only', async () => {
    const user = await call(jobsApp, 'POST', '/jobs/run', { token: await supabaseToken(users.super) });
    expect([user.status, errorCode(user)]).toEqual([401, 'service_credential_required']);
    // The reconcile pass is a recurring job of the same run (private.job_schedules).
    await db.sql`update private.job_schedules set next_run_at = now() where name = 'reconcile'`;
    const ok = await call(jobsApp, 'POST', '/jobs/run', { token: await apiKey('service_role', TEST_JWT_SECRET), body: { budget_ms: 1000 } });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ claimed: expect.any(Number), ms: expect.any(Number) });
    expect(ok.body.tasks.reconcile).toMatchObject({ completed: 1, queued: expect.any(Number) });
  });

  it('never queues the same work twice', async () => {
    const t = await createTenant(['botpress']);
    for (let i = 0; i < 3; i++) {
      await db.sql`update public.tenant_services set desired_state = ${i % 2 ? 'active' : 'suspended'} where tenant_id = ${t.id}`;
    }
    const [{ n }] = await db.sql`select count(*)::int as n from private.jobs where task = 'provision' and payload ->> 'tenant_id' = ${t.id} and dead_at is null`;
    expect(n).toBe(1);
  });
});
