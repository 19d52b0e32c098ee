// Every route declares what it needs on itself (createRoute({ middleware: [needs.…] }),
// shared/auth/needs.ts); nothing is guarded app-wide, so a route that forgot would be
// open. Every operation in every function's OpenAPI document is called without
// credentials, with input that would otherwise be a 422: each is a 401 in the common
// error shape (authentication comes before validation), machine routes refuse a
// super-admin's user token too, and nothing is written.
// The documents say the same: every operation lists the security schemes it accepts,
// each defined in its document's components, and what a route answers without (or with
// wrong, or unconfigured) credentials is a response its operation documents. The machine
// and webhook routes are called with each credential built from their documents' schemes
// alone (header or query name), and let through.
import { createHmac, randomBytes } from 'node:crypto';
import { Webhook as SvixWebhook } from 'svix';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import { app as jobs } from '../../functions/jobs/app.ts';
import { app as webhooksApp } from '../../functions/webhooks/app.ts';
import { encryptJson } from '../../shared/crypto.ts';
import { closeDb } from '../../shared/db.ts';
import { chatwootUrlToken } from '../../shared/webhooks/chatwoot.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, type CallResult, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken } from '../helpers/tokens.ts';
import { functionApps as apps } from '../helpers/openapi.ts';

type App = { request: (input: string, init?: RequestInit) => Response | Promise<Response> };
/** Authenticated by their signatures instead (tests/webhooks.test.ts). */
const SIGNED = ['POST /webhooks/clerk', 'POST /webhooks/chatwoot/{tenantId}'];
const isMachineRoute = (fn: string) => fn === 'jobs';

type Param = { name: string; in: string; schema?: { enum?: string[] } };
type Requirement = Record<string, string[]>;
type DocumentedResponse = { description: string; content?: Record<string, { schema?: unknown }> };
type Operation = { parameters?: Param[]; security?: Requirement[]; responses: Record<string, DocumentedResponse> };
type Scheme = { type: 'http'; scheme: string } | { type: 'apiKey'; in: 'header' | 'query'; name: string };
type Document = {
  paths: Record<string, Record<string, Operation>>;
  components?: { securitySchemes?: Record<string, Scheme> };
};
type Route = { fn: string; method: string; documented: string; url: string; op: Operation; doc: Document };

let db: TestDatabase;
let auth: AuthFixture;
let superToken: string;
const routes: Route[] = [];

beforeAll(async () => {
  db = await freshDatabase('route_needs');
  auth = await configureAuth(db.url);
  superToken = await supabaseToken(users.super, { tenantId: tenants.acme.id });
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json() as Document;
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) {
        const params = new Map((op.parameters ?? []).filter((p) => p.in === 'path').map((p) => [p.name, p]));
        // Real ids of the seeded tenant where the path names one, so a route that forgot
        // its declaration would reach data.
        const concrete = path.replace(/\{(\w+)\}/g, (_, name: string) =>
          params.get(name)?.schema?.enum?.[0] ?? (name === 'tenantId' ? tenants.acme.id : '30000000-0000-4000-8000-00000000dead'));
        // Input that fails validation: a query limit of 0, an unknown body field.
        routes.push({ fn, method: method.toUpperCase(), documented: `${method.toUpperCase()} ${path}`, url: `${concrete}?limit=0`, op, doc });
      }
    }
  }
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const auditCount = async () => Number((await db.sql`select count(*) as n from public.audit_logs`)[0].n);

describe('each route declares what it needs', () => {
  it('documents the operations it walks (all five functions)', () => {
    expect([...new Set(routes.map((r) => r.fn))].sort()).toEqual(['jobs', 'tenants', 'tickets', 'voice', 'webhooks']);
    expect(routes.length).toBeGreaterThan(40);
    for (const signed of SIGNED) expect(routes.map((r) => r.documented)).toContain(signed);
  });

  it('without credentials every route is a 401 before validation, and nothing is written', async () => {
    const before = await auditCount();
    let tried = 0;
    for (const r of routes) {
      if (SIGNED.includes(r.documented)) continue;
      const body = ['POST', 'PUT', 'PATCH'].includes(r.method) ? { not_a_field: true } : undefined;
      const res = await call(apps[r.fn], r.method, r.url, { body });
      expect(res.status, `${r.documented}: ${JSON.stringify(res.body)}`).toBe(401);
      expectDocumented(r, res); // in the common error shape
      tried++;
    }
    expect(tried).toBe(routes.length - SIGNED.length);
    expect(await auditCount()).toBe(before);
  });

  it("machine routes refuse a super-admin's user token", async () => {
    const machine = routes.filter((r) => isMachineRoute(r.fn));
    // The one job runner and its metrics are the machine routes (the queue replaced five).
    expect(machine.map((r) => r.documented).sort()).toEqual(['GET /jobs/metrics', 'POST /jobs/run']);
    for (const r of machine) {
      const res = await call(apps[r.fn], r.method, r.url, { token: superToken });
      expect([res.status, errorCode(res)], r.documented).toEqual([401, 'service_credential_required']);
      expectDocumented(r, res);
    }
  });
});

/** No operation is public today; one that is (a health check) lists it here and declares `security: []`. */
const PUBLIC: string[] = [];

const route = (documented: string) => routes.find((r) => r.documented === documented)!;

/** The schemes an operation names, in order, alternatives flattened. */
const schemeNames = (r: Route) => (r.op.security ?? []).flatMap((alternative) => Object.keys(alternative));

function scheme(r: Route, name: string): Scheme {
  const found = r.doc.components?.securitySchemes?.[name];
  if (!found) throw new Error(`${r.documented} names the scheme ${name}, which its document does not define`);
  return found;
}

/** A request carrying each named value where the document's scheme of that name says. */
function credentials(r: Route, values: Record<string, string>): { headers: Record<string, string>; query: string } {
  const headers: Record<string, string> = {};
  const query = new URLSearchParams();
  for (const [name, value] of Object.entries(values)) {
    const s = scheme(r, name);
    if (s.type === 'http') {
      expect(s.scheme, name).toBe('bearer');
      headers.authorization = `Bearer ${value}`;
    } else if (s.in === 'header') headers[s.name] = value;
    else query.set(s.name, value);
  }
  return { headers, query: query.size ? `?${query}` : '' };
}

/** The answer is one the operation documents: its status, the common error shape, and,
 *  on machine and webhook routes, whose descriptions name their codes, its code. */
function expectDocumented(r: Route, res: CallResult): void {
  const documented = r.op.responses[String(res.status)];
  expect(documented, `${r.documented} answered ${res.status} ${JSON.stringify(res.body)}, undocumented`).toBeDefined();
  expect(documented.content?.['application/json']?.schema, `${r.documented} ${res.status}`).toEqual({
    $ref: '#/components/schemas/Error',
  });
  const code = errorCode(res);
  if (r.fn === 'jobs' || r.fn === 'webhooks') expect(documented.description, r.documented).toContain(`\`${code}\``);
}

/** Sets variables for one test; restores them after it. */
function withEnv(vars: Record<string, string | undefined>): void {
  const saved = Object.fromEntries(Object.keys(vars).map((k) => [k, process.env[k]]));
  const apply = (values: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(values)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  apply(vars);
  onTestFinished(() => apply(saved));
}

describe('the OpenAPI documents say what each route needs', () => {
  it('every operation lists the schemes it accepts, each defined in its document', () => {
    for (const r of routes) {
      expect(Array.isArray(r.op.security), `${r.documented} declares no security`).toBe(true);
      if (PUBLIC.includes(r.documented)) {
        expect(r.op.security, r.documented).toEqual([]);
        continue;
      }
      expect(r.op.security!.length, `${r.documented}: an empty security list makes it public`).toBeGreaterThan(0);
      for (const alternative of r.op.security!) {
        expect(Object.keys(alternative).length, r.documented).toBeGreaterThan(0);
        for (const name of Object.keys(alternative)) expect(scheme(r, name), `${r.documented} ${name}`).toBeDefined();
      }
      // What it answers without credentials, documented (the 401s are checked above).
      expect(r.op.responses['401'], r.documented).toBeDefined();
    }
    // Each kind of route, the credentials its code accepts: a person's token, and an API
    // key where the route names the scope a key needs (tests/functions/api-keys.test.ts).
    for (const r of routes.filter((r) => r.fn === 'tenants' || r.fn === 'tickets')) {
      const keyed = (r.op as { 'x-api-key-scope'?: string })['x-api-key-scope'] !== undefined;
      expect(r.op.security, r.documented).toEqual(keyed ? [{ bearerAuth: [] }, { apiKey: [] }] : [{ bearerAuth: [] }]);
    }
    expect(route('POST /jobs/run').op.security).toEqual([{ serviceKey: [] }, { serviceApiKey: [] }, { cronSecret: [] }]);
    // The voice function: people's routes take a token or a key with the route's scope,
    // the telephony provider's its credential or a tenant's key with the route's scope
    // (that tenant's numbers and calls only); a customer's erasure and a call's delete take a
    // person's token only.
    const telephony = [{ serviceKey: [] }, { serviceApiKey: [] }, { telephonySecret: [] }, { apiKey: [] }];
    const provider = ['GET /voice/route', 'POST /voice/calls/events', 'POST /voice/calls/recordings', 'GET /voice/knowledge/search', 'POST /voice/knowledge/search'];
    const peopleOnly = ['POST /voice/customers/{id}/erasure', 'DELETE /voice/calls/{id}'];
    for (const r of routes.filter((r) => r.fn === 'voice')) {
      const keyed = (r.op as { 'x-api-key-scope'?: string })['x-api-key-scope'] !== undefined;
      expect(keyed, r.documented).toBe(!peopleOnly.includes(r.documented));
      expect(r.op.security, r.documented).toEqual(
        provider.includes(r.documented) ? telephony : peopleOnly.includes(r.documented) ? [{ bearerAuth: [] }] : [{ bearerAuth: [] }, { apiKey: [] }],
      );
    }
    expect(route('POST /webhooks/clerk').op.security).toEqual([{ svixId: [], svixTimestamp: [], svixSignature: [] }]);
    expect(route('POST /webhooks/chatwoot/{tenantId}').op.security).toEqual([
      { chatwootSignature: [], chatwootTimestamp: [] },
      { chatwootUrlToken: [] },
    ]);
    // A document defines the schemes its operations use, and no others.
    for (const fn of Object.keys(apps)) {
      const ofFn = routes.filter((r) => r.fn === fn);
      expect(Object.keys(ofFn[0].doc.components?.securitySchemes ?? {}).sort(), fn).toEqual(
        [...new Set(ofFn.flatMap(schemeNames))].sort(),
      );
    }
  });

  it('the job runner takes each credential its document names, only with the right value', async () => {
    const serviceKey = `sb_secret_${randomBytes(16).toString('hex')}`;
    const cronSecret = randomBytes(16).toString('hex');
    withEnv({ SUPABASE_SERVICE_ROLE_KEY: serviceKey, PROVISIONER_CRON_SECRET: cronSecret });
    const r = route('POST /jobs/run');
    const values: Record<string, string> = { serviceKey, serviceApiKey: serviceKey, cronSecret };
    expect(schemeNames(r)).toEqual(Object.keys(values));
    for (const name of schemeNames(r)) {
      // A body that fails validation: past the credential check it is a 422, and no job runs.
      const right = credentials(r, { [name]: values[name] });
      const accepted = await call(jobs, 'POST', `/jobs/run${right.query}`, { headers: right.headers, body: { batch: 0 } });
      expect([name, accepted.status], JSON.stringify(accepted.body)).toEqual([name, 422]);
      const wrong = credentials(r, { [name]: `${values[name]}-wrong` });
      const refused = await call(jobs, 'POST', `/jobs/run${wrong.query}`, { headers: wrong.headers, body: { batch: 0 } });
      expect([name, refused.status]).toEqual([name, 401]);
      expectDocumented(r, refused);
    }
    // Without PROVISIONER_CRON_SECRET no x-cron-secret opens it, an empty one included.
    withEnv({ PROVISIONER_CRON_SECRET: undefined });
    for (const value of ['', cronSecret]) {
      const unset = credentials(r, { cronSecret: value });
      const refused = await call(jobs, 'POST', '/jobs/run', { headers: unset.headers, body: { batch: 0 } });
      expect(refused.status).toBe(401);
      expectDocumented(r, refused);
    }
  });

  it('the Clerk webhook: the Svix headers its document names; missing, wrong and unconfigured answers documented', async () => {
    const secret = `whsec_${randomBytes(24).toString('base64')}`;
    withEnv({ CLERK_WEBHOOK_SECRET: secret });
    const r = route('POST /webhooks/clerk');
    const body = JSON.stringify({ type: 'openapi.probe', data: {} });
    const signed = (key: string) => {
      const id = `msg_${randomBytes(8).toString('hex')}`;
      const at = new Date();
      const values: Record<string, string> = {
        svixId: id,
        svixTimestamp: String(Math.floor(at.getTime() / 1000)),
        svixSignature: new SvixWebhook(key).sign(id, at, body),
      };
      expect(schemeNames(r)).toEqual(Object.keys(values));
      return credentials(r, values).headers;
    };
    const accepted = await call(webhooksApp, 'POST', '/webhooks/clerk', { rawBody: body, headers: signed(secret) });
    expect([accepted.status, accepted.body]).toEqual([200, { received: true, outcome: 'ignored' }]);
    // No credentials: the headers' absence is a 400, said before any signature is checked.
    const missing = await call(webhooksApp, 'POST', '/webhooks/clerk', { rawBody: body });
    expect([missing.status, errorCode(missing)]).toEqual([400, 'missing_signature']);
    expectDocumented(r, missing);
    const forged = await call(webhooksApp, 'POST', '/webhooks/clerk', {
      rawBody: body,
      headers: signed(`whsec_${randomBytes(24).toString('base64')}`),
    });
    expect([forged.status, errorCode(forged)]).toEqual([401, 'invalid_signature']);
    expectDocumented(r, forged);
    withEnv({ CLERK_WEBHOOK_SECRET: undefined });
    for (const headers of [undefined, signed(secret)]) {
      const unconfigured = await call(webhooksApp, 'POST', '/webhooks/clerk', { rawBody: body, headers });
      expect([unconfigured.status, errorCode(unconfigured)]).toEqual([503, 'not_configured']);
      expectDocumented(r, unconfigured);
    }
  });

  it('the Chatwoot webhook: a signature or the URL token as its document names them; other answers documented', async () => {
    const acme = tenants.acme.id;
    const webhookSecret = randomBytes(16).toString('hex');
    withEnv({ PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64'), CHATWOOT_WEBHOOK_KEY: randomBytes(16).toString('hex') });
    const sealed = async (credentials: object | null) =>
      credentials && await encryptJson(credentials, { tenantId: acme, service: 'chatwoot' });
    await db.sql`insert into public.tenant_services (tenant_id, service, state, credentials_encrypted)
      values (${acme}, 'chatwoot', 'active', ${await sealed({ webhook_secret: webhookSecret })})`;
    onTestFinished(async () => {
      await db.sql`delete from public.tenant_services where tenant_id = ${acme} and service = 'chatwoot'`;
    });
    const r = route('POST /webhooks/chatwoot/{tenantId}');
    const [signature, urlToken] = r.op.security!.map((alternative) => Object.keys(alternative));
    let n = 0;
    const send = (values: Record<string, string>, rawBody = JSON.stringify({ event: 'openapi_probe', id: ++n })) => {
      const { headers, query } = credentials(r, values);
      return call(webhooksApp, 'POST', `/webhooks/chatwoot/${acme}${query}`, { rawBody, headers });
    };
    const sign = (key: string, body: string) => {
      const ts = String(Math.floor(Date.now() / 1000));
      expect(signature).toEqual(['chatwootSignature', 'chatwootTimestamp']);
      return { chatwootSignature: `sha256=${createHmac('sha256', key).update(`${ts}.${body}`).digest('hex')}`, chatwootTimestamp: ts };
    };
    const body = JSON.stringify({ event: 'openapi_probe', id: 'signed' });
    const accepted = await send(sign(webhookSecret, body), body);
    expect([accepted.status, accepted.body]).toEqual([200, { received: true, outcome: 'ignored' }]);
    for (const values of [{} as Record<string, string>, sign('wrong', body)]) {
      const refused = await send(values, body);
      expect([refused.status, errorCode(refused)]).toEqual([401, 'invalid_signature']);
      expectDocumented(r, refused);
    }

    // Without a webhook secret, the URL token.
    await db.sql`update public.tenant_services set credentials_encrypted = null where tenant_id = ${acme} and service = 'chatwoot'`;
    expect(urlToken).toEqual(['chatwootUrlToken']);
    const token = await chatwootUrlToken(acme);
    const viaToken = await send({ chatwootUrlToken: token });
    expect([viaToken.status, viaToken.body.received]).toEqual([200, true]);
    for (const values of [{} as Record<string, string>, { chatwootUrlToken: `${token.slice(0, -1)}${token.endsWith('0') ? '1' : '0'}` }]) {
      const refused = await send(values);
      expect([refused.status, errorCode(refused)]).toEqual([401, 'invalid_signature']);
      expectDocumented(r, refused);
    }
    // No key to check URL tokens with: a 503, not a 401 that blames the caller.
    withEnv({ CHATWOOT_WEBHOOK_KEY: undefined, PROVISIONING_ENCRYPTION_KEY: undefined });
    const unconfigured = await send({ chatwootUrlToken: token });
    expect([unconfigured.status, errorCode(unconfigured)]).toEqual([503, 'not_configured']);
    expectDocumented(r, unconfigured);
  });
});
