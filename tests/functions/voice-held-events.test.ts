// The provider's events held for calls that have not started (issue 14;
// 20261203242000_voice_held_events_listed.sql): GET /voice/calls/held-events lists them
// for the tenant's staff, in the order they arrived, with what the provider sent and when
// each is dropped; a call's start applies them and they leave the list; an expired one
// is not listed; customers (role user) may not, another tenant's staff see their own
// tenant's only; the credential each was sent under is never shown.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
const AGENT = '72000000-0000-4000-8000-000000000001';
const NUMBER = '+14155552001';

beforeAll(async () => {
  db = await freshDatabase('fn_voice_held_events');
  auth = await configureAuth(db.url);
  service = await apiKey('service_role', TEST_JWT_SECRET);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  tok.super = await supabaseToken(users.super, { tenantId: acme });
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${AGENT}, 'Desk', ${NUMBER}, 'v', ${db.sql.json(LLM)})`;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const event = (body: Record<string, unknown>) => call(app, 'POST', '/voice/calls/events', { body, headers: { authorization: `Bearer ${service}` } });
const segment = (id: string, seq: number) => ({
  type: 'transcript.segments',
  tenant_id: acme,
  provider_call_id: id,
  segments: [{ seq, speaker: 'customer', content: `line ${seq}`, offset_ms: seq * 1000 }],
});
const end = (id: string) => ({ type: 'call.ended', tenant_id: acme, provider_call_id: id, status: 'completed', duration_seconds: 30 });
const held = (token: string, query = '') => call(app, 'GET', `/voice/calls/held-events${query}`, { token });

describe('events held for calls not started', () => {
  it('staff see them in the order they arrived, with what was sent and when each is dropped, in pages', async () => {
    const sent = [segment('pc-held-1', 0), segment('pc-held-2', 0), segment('pc-held-1', 1), end('pc-held-1')];
    for (const body of sent) {
      const r = await event(body);
      expect([r.status, r.body.held], JSON.stringify(r.body)).toEqual([202, true]);
    }
    for (const token of [tok.agent, tok.admin]) {
      const r = await held(token);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      expect(r.body.next).toBeNull();
      expect(r.body.items.map((e: { provider_call_id: string; type: string; payload: unknown }) => [e.provider_call_id, e.type, e.payload]))
        // The event as validated (what was sent, the fields it left out as null), less what
        // its columns say (its tenant, type and call).
        .toEqual(sent.map(({ tenant_id: _, type, provider_call_id, ...rest }) => [provider_call_id, type, expect.objectContaining(rest)]));
      for (const e of r.body.items) {
        expect(Object.keys(e).sort()).toEqual(['held_until', 'payload', 'provider_call_id', 'received_at', 'type']);
        expect(e.received_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
        expect(Date.parse(e.held_until) - Date.parse(e.received_at)).toBe(10 * 60_000);
      }
    }
    // One call's, and pages of one.
    const one = await held(tok.agent, '?provider_call_id=pc-held-2');
    expect(one.body.items.map((e: { type: string }) => e.type)).toEqual(['transcript.segments']);
    const pages: string[] = [];
    let cursor: string | null = '';
    while (cursor !== null) {
      const page = await held(tok.agent, `?limit=1${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.body.items).toHaveLength(1);
      pages.push(`${page.body.items[0].provider_call_id} ${page.body.items[0].type}`);
      cursor = page.body.next;
    }
    expect(pages).toEqual(sent.map((b) => `${b.provider_call_id} ${b.type}`));
  });

  it('a start applies them and they leave the list; an expired one is not listed', async () => {
    const start = await event({ type: 'call.started', tenant_id: acme, agent_id: AGENT, provider_call_id: 'pc-held-1', from: '+14155559999', to: NUMBER });
    expect([start.status, start.body.status], JSON.stringify(start.body)).toEqual([200, 'completed']);
    expect((await held(tok.agent)).body.items.map((e: { provider_call_id: string }) => e.provider_call_id)).toEqual(['pc-held-2']);
    // Held for more than 10 minutes (the job has not dropped it yet): a start would not apply it.
    await db.sql`update private.voice_call_early_events set received_at = now() - interval '11 minutes' where provider_call_id = 'pc-held-2'`;
    expect((await held(tok.agent)).body.items).toEqual([]);
  });

  it("customers may not; another tenant's staff see their own tenant's only; bad queries are 422", async () => {
    expect((await event(segment('pc-held-3', 0))).status).toBe(202);
    const user = await held(tok.user);
    expect(user.status).toBe(403);
    expect(errorCode(user)).toBe('forbidden');
    // Another tenant's admin naming this tenant: refused before anything is read.
    const named = await call(app, 'GET', '/voice/calls/held-events', { token: tok.globexAdmin, headers: { 'x-tenant-id': acme } });
    expect([400, 403]).toContain(named.status);
    errorCode(named);
    // A platform admin acting in the tenant sees them.
    const platform = await held(tok.super);
    expect(platform.status, JSON.stringify(platform.body)).toBe(200);
    expect(platform.body.items.map((e: { provider_call_id: string }) => e.provider_call_id)).toContain('pc-held-3');
    const foreign = await held(tok.globexAdmin, '?provider_call_id=pc-held-3');
    expect([foreign.status, foreign.body.items]).toEqual([200, []]);
    // The definer under the route answers nothing to anyone outside the tenant's staff,
    // whoever calls it with the tenant's id: its customers, another tenant's admin.
    const [{ n }] = await db.sql`select count(*)::int as n from private.voice_call_early_events
      where tenant_id = ${acme} and received_at >= now() - interval '10 minutes'`;
    expect(n).toBeGreaterThan(0);
    const direct = async (claims: Record<string, unknown>) => {
      const r = await probeAs(db.sql, 'authenticated', claims, (tx) => tx`select provider_call_id from private.voice_held_events(${acme}, null, null, 50)`);
      if (!r.ok) throw new Error(r.error.message);
      return r.value.length;
    };
    expect(await direct(supabaseClaims(users.acmeAgent, acme))).toBe(n);
    expect(await direct(supabaseClaims(users.acmeUser, acme))).toBe(0);
    expect(await direct(supabaseClaims(users.globexAdmin, globex))).toBe(0);
    expect(await direct(supabaseClaims(users.globexAdmin, acme))).toBe(0);
    for (const query of ['?limit=0', '?limit=101', '?cursor=x', '?cursor=-1', '?cursor=9223372036854775808', '?provider_call_id=']) {
      const r = await held(tok.agent, query);
      expect(r.status, query).toBe(422);
      expect(errorCode(r)).toBe('validation_failed');
    }
  });

  it("a tenant's API key reads them with calls:read (and not without); the credential an event came with is never shown", async () => {
    const key = async (scopes: string[]) => {
      const r = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, { token: tok.admin, body: { name: scopes.join(' '), scopes } });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return { id: r.body.id as string, key: r.body.key as string };
    };
    const provider = await key(['calls:write']);
    const body = segment('pc-held-keyed', 0);
    const r = await call(app, 'POST', '/voice/calls/events', { body, headers: { authorization: `Bearer ${provider.key}` } });
    expect([r.status, r.body.held], JSON.stringify(r.body)).toEqual([202, true]);
    const [{ claims }] = await db.sql`select claims from private.voice_call_early_events where provider_call_id = 'pc-held-keyed'`;
    expect(claims).toContain(provider.id);
    const reader = await key(['calls:read']);
    const listed = await call(app, 'GET', '/voice/calls/held-events?provider_call_id=pc-held-keyed', { headers: { authorization: `Bearer ${reader.key}` } });
    expect(listed.status, JSON.stringify(listed.body)).toBe(200);
    expect(listed.body.items.map((e: { payload: unknown }) => e.payload)).toEqual([{ segments: body.segments }]);
    expect(JSON.stringify(listed.body)).not.toContain(provider.id);
    const other = await key(['tickets:read']);
    const refused = await call(app, 'GET', '/voice/calls/held-events', { headers: { authorization: `Bearer ${other.key}` } });
    expect(refused.status).toBe(403);
    expect(errorCode(refused)).toBe('insufficient_scope');
  });

  it('a page stops after 1 MiB of events (at least one), so large transcripts never make one answer', async () => {
    // Three events of about 600 kB each: one a page.
    const big = (seq0: number) => ({
      ...segment('pc-held-big', 0),
      segments: Array.from({ length: 60 }, (_, i) => ({ seq: seq0 + i, speaker: 'agent', content: 'x'.repeat(10_000), offset_ms: i })),
    });
    for (const seq0 of [0, 60, 120]) expect((await event(big(seq0))).status).toBe(202);
    const seen: number[] = [];
    let cursor: string | null = '';
    let pages = 0;
    while (cursor !== null) {
      const page = await held(tok.agent, `?provider_call_id=pc-held-big${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      expect(page.body.items).toHaveLength(1);
      seen.push(page.body.items[0].payload.segments[0].seq);
      cursor = page.body.next;
      pages++;
    }
    expect([pages, seen]).toEqual([3, [0, 60, 120]]);
  });
});
