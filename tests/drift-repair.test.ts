// Drift repair, for every partner alike: the reconcile pass asks each connector's
// check() whether an active service's partner objects still exist, a few services per
// partner per run and each at most once per interval; a service whose objects are gone
// is recorded as drifted (admins see it in GET /tenants/{id}/services), announced as a
// `service.drift_detected` outbound event and provisioned again. Against the stand-ins;
// tests/helpers/n8n-lifecycle.ts does the same against the real n8n (npm run test:n8n).
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../functions/tenants/app.ts';
import { botpressConnector } from '../shared/connectors/botpress.ts';
import { chatwootConnector } from '../shared/connectors/chatwoot.ts';
import type { Connectors } from '../shared/connectors/index.ts';
import { n8nConnector } from '../shared/connectors/n8n.ts';
import { closeDb } from '../shared/db.ts';
import { runJobs } from '../shared/jobs/runner.ts';
import { chatwootInboundUrl } from '../shared/webhooks/chatwoot.ts';
import { BotpressStandIn } from './partners/botpress.ts';
import { ChatwootStandIn } from './partners/chatwoot.ts';
import { N8nStandIn } from './partners/n8n.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { call } from './helpers/http.ts';
import { users } from './helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from './helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let botpress: BotpressStandIn;
let chatwoot: ChatwootStandIn;
let n8n: N8nStandIn;
let superToken: string;

const connectors = (): Connectors => ({
  chatwoot: chatwootConnector({ url: chatwoot.url, platformToken: chatwoot.token, timeoutMs: 400, inboundUrl: chatwootInboundUrl }),
  botpress: botpressConnector({ url: botpress.url, token: botpress.token, workspaceId: botpress.workspaceId, timeoutMs: 400 }),
  n8n: n8nConnector({ url: n8n.url, apiKey: n8n.apiKey, mode: 'shared', timeoutMs: 400 }),
});

async function drain() {
  for (let i = 0; i < 20; i++) {
    await db.sql`update private.jobs set run_at = now() where task = 'provision' and dead_at is null and attempts > 0 and run_at > now()`;
    if ((await runJobs({ tasks: ['provision'], deps: { connectors: connectors() }, budgetMs: 5_000 })).claimed === 0) return;
  }
  throw new Error('the queue did not drain');
}

/** One scheduled reconcile pass (the recurring job made due now). */
async function reconcile(opts: { perPartner?: number; intervalS?: number } = {}) {
  await db.sql`update private.job_schedules set next_run_at = now() where name = 'reconcile'`;
  const r = await runJobs({
    tasks: ['reconcile'],
    schedule: true,
    deps: { connectors: connectors(), driftChecksPerPartner: opts.perPartner ?? 50, driftCheckIntervalS: opts.intervalS ?? 0 },
    budgetMs: 10_000,
  });
  return r.tasks.reconcile as Record<string, number>;
}

let count = 0;
async function createTenant(services: string[]) {
  const slug = `drift-${++count}-${randomBytes(3).toString('hex')}`;
  const r = await call(tenantsApp, 'POST', '/tenants', {
    token: superToken,
    body: { name: `Drift ${count}`, slug, services, admin: { email: `owner@${slug}.test`, first_name: 'Dee' } },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return { id: r.body.id as string, slug, email: `owner@${slug}.test` };
}

async function service(tenantId: string, name: string) {
  const [s] = await db.sql`select state, last_error, external_ids, drift_detected_at, drift_detail, drift_repaired_at
                           from public.tenant_services where tenant_id = ${tenantId} and service = ${name}`;
  return s;
}

/** Only the tenants of one test are active: the others are suspended out of the way. */
async function onlyActive(...tenantIds: string[]) {
  await db.sql`update public.tenant_services set state = 'suspended', desired_state = 'suspended' where not (tenant_id = any (${tenantIds}))`;
  await db.sql`delete from private.jobs where task = 'provision' and not (payload ->> 'tenant_id' = any (${tenantIds}))`;
}

beforeAll(async () => {
  db = await freshDatabase('drift');
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  [botpress, chatwoot, n8n] = await Promise.all([BotpressStandIn.start(), ChatwootStandIn.start(), N8nStandIn.start()]);
  superToken = await supabaseToken(users.super);
});
afterEach(() => {
  for (const p of [botpress, chatwoot, n8n]) p.server.resetFaults();
});
afterAll(async () => {
  await Promise.all([botpress, chatwoot, n8n].map((p) => p?.server.close()));
  await closeDb();
  await auth.close();
  await db.close();
});

describe('drift repair in the reconcile pass', () => {
  it('finds objects deleted at the partners, records and announces the drift, and provisions them again', async () => {
    const t = await createTenant(['botpress', 'n8n']);
    await drain();
    await onlyActive(t.id);
    await db.sql`insert into public.webhook_endpoints (tenant_id, url, event_types, secret_encrypted)
                 values (${t.id}, 'http://127.0.0.1:9/hook', '{service.drift_detected}', 'unused')`;
    expect(await reconcile()).toMatchObject({ checked: 2, drifted: 0, check_errors: 0 });

    const bot = (await service(t.id, 'botpress')).external_ids.bot_id;
    botpress.bots.delete(bot);
    n8n.users.delete((await service(t.id, 'n8n')).external_ids.user_id);
    expect(await reconcile()).toMatchObject({ checked: 2, drifted: 2 });
    for (const name of ['botpress', 'n8n']) {
      expect(await service(t.id, name), name).toMatchObject({
        state: 'pending',
        drift_detected_at: expect.any(Date),
        drift_detail: expect.stringContaining(`${name} no longer has`),
        drift_repaired_at: null,
      });
    }
    const events = await db.sql`select type, payload from private.webhook_events where tenant_id = ${t.id} order by id`;
    expect(events.map((e) => [e.type, e.payload.data.service]).sort()).toEqual([
      ['service.drift_detected', 'botpress'],
      ['service.drift_detected', 'n8n'],
    ]);
    expect(events[0].payload).toMatchObject({ tenant_id: t.id, data: { state: 'pending', drift_detected_at: expect.stringMatching(/Z$/) } });
    expect(JSON.stringify(events)).not.toContain('credentials_encrypted');

    // Admins see it.
    const [owner] = await db.sql`select id from public.users where email = ${t.email}`;
    await db.sql`insert into public.user_identities (issuer, subject, user_id) values ('http://127.0.0.1:54321/auth/v1', ${owner.id}, ${owner.id})`;
    const listed = await call(tenantsApp, 'GET', `/tenants/${t.id}/services`, { token: await supabaseToken({ id: owner.id, email: t.email }) });
    expect(listed.body.items.find((i: { service: string }) => i.service === 'botpress')).toMatchObject({
      state: 'pending',
      drift_detected_at: expect.any(String),
      drift_detail: expect.any(String),
      drift_repaired_at: null,
    });

    await drain();
    for (const name of ['botpress', 'n8n']) {
      expect(await service(t.id, name), name).toMatchObject({ state: 'active', last_error: null, drift_repaired_at: expect.any(Date) });
    }
    expect([...botpress.bots.values()].filter((b) => b.tags.tenant_id === t.id)).toHaveLength(1);
    expect([...n8n.users.values()].filter((u) => u.email === t.email)).toHaveLength(1);
    expect(await reconcile()).toMatchObject({ checked: 2, drifted: 0 });
  });

  it("reads the sealed credentials a check needs: Chatwoot's account webhook deleted there is made again", async () => {
    const t = await createTenant(['chatwoot']);
    await drain();
    await onlyActive(t.id);
    const { account_id: accountId, webhook_id: hookId } = (await service(t.id, 'chatwoot')).external_ids;
    expect(hookId).toEqual(expect.any(Number));
    expect(await reconcile()).toMatchObject({ checked: 1, drifted: 0 });
    chatwoot.webhooks = chatwoot.webhooks.filter((w) => w.id !== hookId);
    expect(await reconcile()).toMatchObject({ checked: 1, drifted: 1 });
    await drain();
    expect(await service(t.id, 'chatwoot')).toMatchObject({ state: 'active', last_error: null, drift_repaired_at: expect.any(Date) });
    expect(chatwoot.webhooks.filter((w) => w.account_id === accountId)).toHaveLength(1);
  });

  it('checks at most N services per partner per run, each at most once per interval', async () => {
    const made = await Promise.all([1, 2, 3].map(() => createTenant(['botpress'])));
    await drain();
    await onlyActive(...made.map((t) => t.id));
    await db.sql`delete from private.service_checks`;
    const before = botpress.server.log.length;
    expect(await reconcile({ perPartner: 1, intervalS: 3600 })).toMatchObject({ checked: 1 });
    expect(await reconcile({ perPartner: 1, intervalS: 3600 })).toMatchObject({ checked: 1 });
    expect(await reconcile({ perPartner: 1, intervalS: 3600 })).toMatchObject({ checked: 1 });
    // Every service was checked once within the interval: nothing is due.
    expect(await reconcile({ perPartner: 1, intervalS: 3600 })).toMatchObject({ checked: 0 });
    expect(botpress.server.log.length - before).toBe(3);
    const checked = await db.sql`select tenant_id from private.service_checks where service = 'botpress'`;
    expect(checked.map((c) => c.tenant_id).sort()).toEqual(made.map((t) => t.id).sort());
  });

  it('a check that errors is no drift; services not active, or with provisioning under way, are not checked', async () => {
    const [a, b, c] = await Promise.all([1, 2, 3].map(() => createTenant(['botpress'])));
    await drain();
    await onlyActive(a.id, b.id, c.id);
    await call(tenantsApp, 'POST', `/tenants/${b.id}/suspend`, { token: superToken });
    await drain();
    await db.sql`update public.tenant_services set state = 'pending' where tenant_id = ${c.id}`;
    await db.sql`select private.reconcile_tenant_services()`; // c has a live provisioning job now
    botpress.server.faults.fail5xx = 5;
    expect(await reconcile()).toMatchObject({ checked: 0, check_errors: 1, drifted: 0 });
    expect(await service(a.id, 'botpress')).toMatchObject({ state: 'active', drift_detected_at: null });
    expect(await service(b.id, 'botpress')).toMatchObject({ state: 'suspended', drift_detected_at: null });
  });

  it('a service that changed since its check is left alone', async () => {
    const t = await createTenant(['botpress']);
    await drain();
    await call(tenantsApp, 'POST', `/tenants/${t.id}/suspend`, { token: superToken });
    const [s] = await db.sql`select external_ids, credentials_encrypted from public.tenant_services where tenant_id = ${t.id} and service = 'botpress'`;
    const [{ recorded }] = await db.sql`select private.record_service_drift(${t.id}, 'botpress', 'gone',
      ${db.sql.json(s.external_ids)}, ${s.credentials_encrypted}) as recorded`;
    expect(recorded).toBe(false);
    expect(await service(t.id, 'botpress')).toMatchObject({ drift_detected_at: null });
  });

  it('a service provisioned again while it was checked (new ids) is not judged by the check of its old ones', async () => {
    const t = await createTenant(['botpress']);
    await drain();
    await onlyActive(t.id);
    const before = await service(t.id, 'botpress');
    const events = async () =>
      (await db.sql`select count(*)::int as n from private.webhook_events where tenant_id = ${t.id} and type = 'service.drift_detected'`)[0].n;
    const eventsBefore = await events();
    // The bot deleted at Botpress, and while the check finds it gone, the service is
    // provisioned again (as a credentials rotation does): active, with another bot.
    const base = connectors();
    const reprovisioned = { ...before.external_ids, bot_id: `${before.external_ids.bot_id}-new` };
    const racing: Connectors = {
      botpress: {
        ...base.botpress!,
        async check() {
          await db.sql`update public.tenant_services set external_ids = ${db.sql.json(reprovisioned)}
            where tenant_id = ${t.id} and service = 'botpress'`;
          return false;
        },
      },
    };
    await db.sql`update private.job_schedules set next_run_at = now() where name = 'reconcile'`;
    const r = await runJobs({
      tasks: ['reconcile'],
      schedule: true,
      deps: { connectors: racing, driftChecksPerPartner: 50, driftCheckIntervalS: 0 },
      budgetMs: 10_000,
    });
    expect(r.tasks.reconcile).toMatchObject({ checked: 1, drifted: 0 });
    expect(await service(t.id, 'botpress')).toMatchObject({ state: 'active', drift_detected_at: null, external_ids: reprovisioned });
    expect(await events()).toBe(eventsBefore);
    expect(await db.sql`select 1 from private.jobs where job_key = ${`provision:${t.id}:botpress`} and dead_at is null`).toHaveLength(0);
  });
});

describe('drift checks with what the provision job knows', () => {
  it("Odoo's database mode: a tenant's own database (recorded under its name) is no drift", async () => {
    const { odooConnector } = await import('../shared/connectors/odoo.ts');
    const { OdooStandIn } = await import('./partners/odoo.ts');
    const odoo = await OdooStandIn.start();
    try {
      const withOdoo = (): Connectors => ({
        odoo: odooConnector({
          url: odoo.url, db: 'main', login: odoo.login, key: odoo.key, masterPassword: odoo.masterPassword, timeoutMs: 3_000, mode: 'database',
        }),
      });
      const t = await createTenant(['odoo']);
      for (let i = 0; i < 20; i++) {
        await db.sql`update private.jobs set run_at = now() where task = 'provision' and dead_at is null and attempts > 0 and run_at > now()`;
        if ((await runJobs({ tasks: ['provision'], deps: { connectors: withOdoo() }, budgetMs: 5_000 })).claimed === 0) break;
      }
      await onlyActive(t.id);
      expect(await service(t.id, 'odoo')).toMatchObject({ state: 'active', external_ids: { database: `tenant_${t.slug.replace(/-/g, '_')}` } });
      await db.sql`update private.job_schedules set next_run_at = now() where name = 'reconcile'`;
      const r = await runJobs({
        tasks: ['reconcile'],
        schedule: true,
        deps: { connectors: withOdoo(), driftChecksPerPartner: 50, driftCheckIntervalS: 0 },
        budgetMs: 10_000,
      });
      expect(r.tasks.reconcile).toMatchObject({ checked: 1, drifted: 0, check_errors: 0 });
      expect(await service(t.id, 'odoo')).toMatchObject({ state: 'active', drift_detected_at: null });
    } finally {
      await odoo.server.close();
    }
  });
});
