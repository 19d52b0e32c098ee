// Secrets at rest and the Chatwoot URL token. Every sealed secret is bound to its row
// (AES-GCM associated data): a ciphertext copied into another tenant's row, another
// service or another webhook endpoint — the swap attack — opens nothing, through the
// API, the Chatwoot webhook and the delivery worker alike. The Chatwoot URL token comes
// from a key of its own; a tenant without Chatwoot answers like a bad token; a
// suspended tenant's events are refused with nothing written.
import { createHmac, hkdfSync, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { app as tenantsApp } from '../functions/tenants/app.ts';
import { app as webhooksApp } from '../functions/webhooks/app.ts';
import { decryptJson, encryptJson, type SealedFor } from '../shared/crypto.ts';
import { closeDb } from '../shared/db.ts';
import { chatwootUrlToken } from '../shared/webhooks/chatwoot.ts';
import { runJobs } from '../shared/jobs/runner.ts';
import { freshDatabase, type TestDatabase } from './helpers/db.ts';
import { call, errorCode } from './helpers/http.ts';
import { tenants, users } from './helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from './helpers/tokens.ts';

const ENCRYPTION_KEY = randomBytes(32).toString('base64');
let db: TestDatabase;
let auth: AuthFixture;
const acme = tenants.acme.id;
const globex = tenants.globex.id;

beforeAll(async () => {
  db = await freshDatabase('secrets');
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: ENCRYPTION_KEY });
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

async function rejects(p: Promise<unknown>): Promise<boolean> {
  try {
    await p;
    return false;
  } catch {
    return true;
  }
}

// ---------------------------------------------------------------- the binding itself

describe('sealed values are bound to their row', () => {
  const owners: SealedFor[] = [
    { tenantId: acme, service: 'chatwoot' },
    { tenantId: acme, service: 'odoo' },
    { tenantId: globex, service: 'chatwoot' },
    { tenantId: acme, endpointId: '30000000-0000-4000-8000-000000000001' },
    { tenantId: acme, endpointId: '30000000-0000-4000-8000-000000000002' },
    { tenantId: globex, endpointId: '30000000-0000-4000-8000-000000000001' },
    // The same strings under the other label: a service credential is no endpoint secret.
    { tenantId: acme, endpointId: 'chatwoot' },
  ];

  it(`opens for its own row only (${owners.length} × ${owners.length} owner pairs)`, async () => {
    let tried = 0;
    for (const sealedFor of owners) {
      const sealed = await encryptJson({ secret: 's3cret' }, sealedFor);
      expect(sealed).toMatch(/^v2:/);
      for (const openedAs of owners) {
        tried++;
        if (openedAs === sealedFor) expect(await decryptJson(sealed, openedAs)).toEqual({ secret: 's3cret' });
        else expect(await rejects(decryptJson(sealed, openedAs)), `${JSON.stringify(sealedFor)} as ${JSON.stringify(openedAs)}`).toBe(true);
      }
    }
    expect(tried).toBe(owners.length ** 2);
  });

  it('names a row by its ids whatever their case: sealed under an id in capitals (a request path), opened under the stored one', async () => {
    const tenantId = 'abcdef00-0000-4000-8000-00000000beef';
    const endpointId = 'fedcba00-0000-4000-8000-00000000f00d';
    const service = await encryptJson({ s: 1 }, { tenantId: tenantId.toUpperCase(), service: 'chatwoot' });
    expect(await decryptJson(service, { tenantId, service: 'chatwoot' })).toEqual({ s: 1 });
    const endpoint = await encryptJson({ s: 2 }, { tenantId: tenantId.toUpperCase(), endpointId: endpointId.toUpperCase() });
    expect(await decryptJson(endpoint, { tenantId, endpointId })).toEqual({ s: 2 });
    // Still another row's is not theirs.
    expect(await rejects(decryptJson(endpoint, { tenantId, endpointId: endpointId.replace('f00d', 'f00e') }))).toBe(true);
  });

  it('refuses a tampered ciphertext and an owner without its key', async () => {
    const sealed = await encryptJson({ a: 1 }, owners[0]);
    const bytes = Buffer.from(sealed.slice(3), 'base64');
    bytes[20] ^= 1;
    expect(await rejects(decryptJson(`v2:${bytes.toString('base64')}`, owners[0]))).toBe(true);
    expect(await rejects(encryptJson({ a: 1 }, { tenantId: '', service: 'chatwoot' }))).toBe(true);
  });

  it('reads the unbound v1 format only in the local stack (where .local data may hold it)', async () => {
    // A v1 value as the old code wrote it: AES-GCM without associated data.
    const key = await crypto.subtle.importKey('raw', Buffer.from(ENCRYPTION_KEY, 'base64'), 'AES-GCM', false, ['encrypt']);
    const iv = crypto.getRandomValues(new Uint8Array(12));
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: 'AES-GCM', iv }, key, new TextEncoder().encode('{"old":true}')));
    const v1 = `v1:${Buffer.concat([iv, ct]).toString('base64')}`;
    expect(await decryptJson(v1, owners[0])).toEqual({ old: true });
    delete process.env.PLATFORM_LOCAL_STACK;
    try {
      expect(await rejects(decryptJson(v1, owners[0]))).toBe(true);
    } finally {
      process.env.PLATFORM_LOCAL_STACK = '1';
    }
  });
});

// ---------------------------------------------------------------- the swap attack, end to end

describe('the swap attack: a ciphertext copied into another row', () => {
  const cwEvent = (id: number) => ({ event: 'conversation_created', id, meta: { sender: { name: 'Mallory' } }, messages: [] });
  const signed = (event: unknown, secret: string) => {
    const body = JSON.stringify(event);
    const ts = Math.floor(Date.now() / 1000);
    const sig = createHmac('sha256', secret).update(`${ts}.${body}`).digest('hex');
    return { rawBody: body, headers: { 'x-chatwoot-signature': `sha256=${sig}`, 'x-chatwoot-timestamp': String(ts) } };
  };

  it("Chatwoot: acme's sealed webhook secret in globex's row does not let acme's secret sign for globex", async () => {
    const acmeSecret = 'acme-chatwoot-signing-secret';
    await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted) values
      (${acme}, 'chatwoot', 'active', ${await encryptJson({ webhook_secret: acmeSecret, password: 'acme-owner-pw' }, { tenantId: acme, service: 'chatwoot' })}),
      (${globex}, 'chatwoot', 'active', ${await encryptJson({ webhook_secret: 'globex-secret', password: 'globex-owner-pw' }, { tenantId: globex, service: 'chatwoot' })})`;
    onTestFinished(() => db.sql`delete from public.tenant_services where service = 'chatwoot'`.then(() => {}));
    // Before the swap: acme's secret signs for acme.
    expect((await call(webhooksApp, 'POST', `/webhooks/chatwoot/${acme}`, signed(cwEvent(501), acmeSecret))).body.outcome).toBe('applied');

    await db.sql`update public.tenant_services g set credentials_encrypted = a.credentials_encrypted
      from public.tenant_services a where a.tenant_id = ${acme} and a.service = 'chatwoot' and g.tenant_id = ${globex} and g.service = 'chatwoot'`;
    const before = (await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${globex}`)[0].n;
    const r = await call(webhooksApp, 'POST', `/webhooks/chatwoot/${globex}`, signed(cwEvent(502), acmeSecret));
    expect([r.status, errorCode(r)]).toEqual([500, 'internal_error']); // the row does not open: a fault, logged
    expect((await db.sql`select count(*)::int as n from public.tickets where tenant_id = ${globex}`)[0].n).toBe(before);
    expect((await db.sql`select count(*)::int as n from private.webhook_inbox where tenant_id = ${globex}`)[0].n).toBe(0);

    // Revealing globex's credentials shows nothing of acme's, and does not use up the one reveal.
    const globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
    // The services list still answers (it opens the logins not yet shown to tell a pending
    // one): the row that does not open is listed as stored and not yet shown.
    const listed = await call(tenantsApp, 'GET', `/tenants/${globex}/services`, { token: globexAdmin });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    expect(listed.body.items).toEqual([expect.objectContaining({ service: 'chatwoot', credentials_available: true, credentials_pending: false })]);
    expect(JSON.stringify(listed.body)).not.toContain('acme-owner-pw');
    const reveal = await call(tenantsApp, 'POST', `/tenants/${globex}/services/chatwoot/credentials`, { token: globexAdmin });
    expect(reveal.status).toBe(500);
    expect(JSON.stringify(reveal.body)).not.toContain('acme-owner-pw');
    const [row] = await db.sql`select credentials_revealed_at from public.tenant_services where tenant_id = ${globex} and service = 'chatwoot'`;
    expect(row.credentials_revealed_at).toBeNull();
  });

  it("a credential sealed for one service does not open as another service's of the same tenant", async () => {
    await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted) values
      (${acme}, 'odoo', 'active', ${await encryptJson({ password: 'odoo-pw' }, { tenantId: acme, service: 'odoo' })}),
      (${acme}, 'n8n', 'active', null)`;
    onTestFinished(() => db.sql`delete from public.tenant_services where tenant_id = ${acme} and service in ('odoo', 'n8n')`.then(() => {}));
    await db.sql`update public.tenant_services set credentials_encrypted = (select credentials_encrypted from public.tenant_services where tenant_id = ${acme} and service = 'odoo')
      where tenant_id = ${acme} and service = 'n8n'`;
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
    const reveal = await call(tenantsApp, 'POST', `/tenants/${acme}/services/n8n/credentials`, { token: admin });
    expect(reveal.status).toBe(500);
    expect(JSON.stringify(reveal.body)).not.toContain('odoo-pw');
    const own = await call(tenantsApp, 'POST', `/tenants/${acme}/services/odoo/credentials`, { token: admin });
    expect([own.status, own.body.credentials]).toEqual([200, { password: 'odoo-pw' }]);
  });

  it("webhook endpoints: another endpoint's sealed secret (same tenant or another) signs nothing", async () => {
    const received: { endpoint: string; verifiedWith: string | null }[] = [];
    const secrets = new Map<string, string>();
    const server = http.createServer(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = Buffer.concat(chunks).toString('utf8');
      let verifiedWith: string | null = null;
      for (const [name, secret] of secrets) {
        try {
          new StandardWebhook(secret).verify(body, req.headers as Record<string, string>);
          verifiedWith = name;
        } catch {
          // not this one
        }
      }
      received.push({ endpoint: String(req.url).slice(1), verifiedWith });
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      const register = async (tenantId: string, token: string, name: string) => {
        const r = await call(tenantsApp, 'POST', `/tenants/${tenantId}/webhooks`, { token, body: { url: `${base}/${name}`, event_types: ['ticket.created'] } });
        expect(r.status).toBe(201);
        secrets.set(name, r.body.secret);
        return r.body.id as string;
      };
      const acmeAdmin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
      const globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
      const a1 = await register(acme, acmeAdmin, 'a1');
      const a2 = await register(acme, acmeAdmin, 'a2');
      const g1 = await register(globex, globexAdmin, 'g1');
      const [stored] = await db.sql`select secret_encrypted from public.webhook_endpoints where tenant_id = ${acme} and id = ${a1}`;
      expect(stored.secret_encrypted).toMatch(/^v2:/);
      expect(await decryptJson(stored.secret_encrypted, { tenantId: acme, endpointId: a1 })).toEqual({ secret: secrets.get('a1') });
      // a1's ciphertext copied into a2 (same tenant) and into g1 (another tenant).
      await db.sql`update public.webhook_endpoints set secret_encrypted = ${stored.secret_encrypted} where (tenant_id, id) in ((${acme}::uuid, ${a2}::uuid), (${globex}::uuid, ${g1}::uuid))`;

      await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${acme}, 'Swap probe A', ${users.acmeUser.id}), (${globex}, 'Swap probe G', ${users.globexUser.id})`;
      await runJobs({ tasks: ['deliver-webhook'], deps: { webhookTimeoutMs: 1_000 }, budgetMs: 10_000 });

      // a1 got its event, signed with its own secret; a2 and g1 got nothing signed with a1's.
      expect(received).toEqual([{ endpoint: 'a1', verifiedWith: 'a1' }]);
      const failed = await db.sql`select endpoint_id, last_error from private.webhook_deliveries where endpoint_id in (${a2}, ${g1})`;
      expect(failed).toHaveLength(2);
      for (const d of failed) expect(d.last_error).toMatch(/does not decrypt/);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

describe('a deployment without its sealing key', () => {
  it("is the platform's fault, not the endpoints': deliveries wait, no attempt or failure is charged to an endpoint", async () => {
    const received: string[] = [];
    const server = http.createServer((req, res) => {
      received.push(String(req.url));
      res.writeHead(204).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
    const reg = await call(tenantsApp, 'POST', `/tenants/${acme}/webhooks`, { token: admin, body: { url: `${base}/keyless`, event_types: ['ticket.created'] } });
    expect(reg.status).toBe(201);
    try {
      await db.sql`insert into public.tickets (tenant_id, title, created_by) values (${acme}, 'Keyless probe', ${users.acmeUser.id})`;
      delete process.env.PROVISIONING_ENCRYPTION_KEY;
      try {
        await runJobs({ tasks: ['deliver-webhook'], deps: { webhookTimeoutMs: 1_000 }, budgetMs: 5_000 });
      } finally {
        process.env.PROVISIONING_ENCRYPTION_KEY = ENCRYPTION_KEY;
      }
      const endpoint = async () => (await db.sql`
        select e.enabled, e.consecutive_failures,
               (select count(*)::int from private.webhook_attempts a join private.webhook_deliveries d on d.id = a.delivery_id
                where d.endpoint_id = e.id) as attempts,
               (select array_agg(d.status) from private.webhook_deliveries d where d.endpoint_id = e.id) as deliveries
        from public.webhook_endpoints e where e.id = ${reg.body.id}`)[0];
      expect(await endpoint()).toEqual({ enabled: true, consecutive_failures: 0, attempts: 0, deliveries: ['pending'] });
      expect(received).toEqual([]);
      // Its job waits without spending attempts: however long the key is missing, it never
      // dies and fails the delivery.
      const jobs = await db.sql`select attempts from private.jobs where task = 'deliver-webhook' and dead_at is null
        and payload ->> 'delivery_id' in (select id::text from private.webhook_deliveries where endpoint_id = ${reg.body.id})`;
      expect(jobs).toEqual([{ attempts: 0 }]);
      // The key back: delivered.
      await db.sql`update private.jobs set run_at = now() where task = 'deliver-webhook' and dead_at is null`;
      await runJobs({ tasks: ['deliver-webhook'], deps: { webhookTimeoutMs: 1_000 }, budgetMs: 5_000 });
      expect(received).toEqual(['/keyless']);
      expect(await endpoint()).toMatchObject({ consecutive_failures: 0, deliveries: ['delivered'] });
    } finally {
      await db.sql`delete from public.webhook_endpoints where id = ${reg.body.id}`;
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

// ---------------------------------------------------------------- the Chatwoot URL token

describe('the Chatwoot URL token', () => {
  const reference = (ikm: Buffer, tenantId: string) => {
    const key = Buffer.from(hkdfSync('sha256', ikm, 'tenant-platform', 'chatwoot-webhook-url-token/v1', 32));
    return createHmac('sha256', key).update(`chatwoot-webhook-url-token/v1:${tenantId}`).digest('hex').slice(0, 40);
  };
  const restoreKeys = () => {
    delete process.env.CHATWOOT_WEBHOOK_KEY;
    process.env.PROVISIONING_ENCRYPTION_KEY = ENCRYPTION_KEY;
  };

  it('is an HMAC under a key derived with its own label, never under the credentials key itself', async () => {
    onTestFinished(restoreKeys);
    const token = await chatwootUrlToken(acme);
    // HKDF of the credentials key's bytes, label "chatwoot-webhook-url-token/v1".
    expect(token).toBe(reference(Buffer.from(ENCRYPTION_KEY, 'base64'), acme));
    // Not the old construction: HMAC keyed with the credentials key itself.
    expect(token).not.toBe(createHmac('sha256', ENCRYPTION_KEY).update(`chatwoot-webhook:${acme}`).digest('hex').slice(0, 40));
    expect(await chatwootUrlToken(globex)).not.toBe(token);

    // With a dedicated CHATWOOT_WEBHOOK_KEY the credentials key plays no part.
    process.env.CHATWOOT_WEBHOOK_KEY = 'a-dedicated-chatwoot-url-token-key';
    const dedicated = await chatwootUrlToken(acme);
    expect(dedicated).toBe(reference(Buffer.from('a-dedicated-chatwoot-url-token-key'), acme));
    process.env.PROVISIONING_ENCRYPTION_KEY = randomBytes(32).toString('base64');
    expect(await chatwootUrlToken(acme)).toBe(dedicated);
  });
});

describe('Chatwoot events by tenant state', () => {
  const conversation = (id: number) => ({ event: 'conversation_created', id, meta: { sender: { name: 'Tess' } }, messages: [] });
  const send = async (tenantId: string, id: number, token?: string) =>
    await call(webhooksApp, 'POST', `/webhooks/chatwoot/${tenantId}?token=${token ?? await chatwootUrlToken(tenantId)}`, { rawBody: JSON.stringify(conversation(id)) });
  const written = async (tenantId: string) =>
    (await db.sql`select (select count(*)::int from public.tickets where tenant_id = ${tenantId})
                       + (select count(*)::int from private.webhook_inbox where tenant_id = ${tenantId}) as n`)[0].n as number;

  it('a tenant without Chatwoot, an unknown one, and one that switched Chatwoot off: 401 like any bad token', async () => {
    const before = await written(globex);
    // Globex has no Chatwoot row at all; the token is the right one for its id.
    const none = await send(globex, 601);
    expect([none.status, errorCode(none)]).toEqual([401, 'invalid_signature']);
    const unknown = await send('10000000-0000-4000-8000-00000000beef', 602);
    expect([unknown.status, errorCode(unknown)]).toEqual([401, 'invalid_signature']);
    await db.sql`insert into public.tenant_services (tenant_id, service, desired_state, state) values (${globex}, 'chatwoot', 'removed', 'removed')`;
    onTestFinished(() => db.sql`delete from public.tenant_services where tenant_id = ${globex} and service = 'chatwoot'`.then(() => {}));
    const off = await send(globex, 603);
    expect([off.status, errorCode(off)]).toEqual([401, 'invalid_signature']);
    const badToken = await send(globex, 604, 'x');
    expect([badToken.status, errorCode(badToken)]).toEqual([401, 'invalid_signature']);
    expect(await written(globex)).toBe(before);
  });

  it('a suspended tenant: 403 tenant_suspended, nothing written; a deleted one: 401; resumed: applied', async () => {
    await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted)
      values (${acme}, 'chatwoot', 'active', ${await encryptJson({}, { tenantId: acme, service: 'chatwoot' })})`;
    onTestFinished(async () => {
      await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${acme}`;
      await db.sql`delete from public.tenant_services where tenant_id = ${acme} and service = 'chatwoot'`;
    });
    const before = await written(acme);
    await db.sql`update public.tenants set status = 'suspended' where id = ${acme}`;
    const suspended = await send(acme, 701);
    expect([suspended.status, errorCode(suspended)]).toEqual([403, 'tenant_suspended']);
    // A wrong token still says only "not authenticated": the state is told to genuine senders alone.
    expect((await send(acme, 702, 'x')).status).toBe(401);
    expect(await written(acme)).toBe(before);

    await db.sql`update public.tenants set status = 'deleted', deleted_at = now() where id = ${acme}`;
    const deleted = await send(acme, 703);
    expect([deleted.status, errorCode(deleted)]).toEqual([401, 'invalid_signature']);
    expect(await written(acme)).toBe(before);

    await db.sql`update public.tenants set status = 'active', deleted_at = null where id = ${acme}`;
    expect((await send(acme, 704)).body.outcome).toBe('applied');
    expect(await written(acme)).toBe(before + 2); // one ticket, one inbox row
  });
});
