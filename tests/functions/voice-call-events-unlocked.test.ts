// call.started and call.ended take no lock per call (issue 14;
// 20261205090000_voice_call_events_unlocked.sql). Each call's event took three
// transaction-scoped advisory locks until commit: an agent logging or ending thousands of
// calls in one PostgREST request filled the server's shared lock table, which every
// tenant's transactions share. Now the call's row orders its events (an insert is nobody
// else's until commit; an update holds the row), and the events, deliveries and jobs are
// written without the locks. What a receiver gets is unchanged.
import { randomBytes } from 'node:crypto';
import type { TransactionSql } from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { asTenantUser, countAdvisoryLocks } from '../helpers/advisory-locks.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const AGENT: Record<string, string> = { [acme]: '75000000-0000-4000-8000-000000000031', [globex]: '75000000-0000-4000-8000-000000000032' };
const LLM = { model: 'gpt-4o-mini', system_prompt: 'You answer the phone.', temperature: 0.2, tools: [] };
// Twice the 5,000 that held 15,000 locks before; each test given two minutes, as a
// loaded CI machine writes these rows several times slower than an idle one.
const CALLS = 10_000;
let endpoint: { all: string; ends: string; off: string };

beforeAll(async () => {
  db = await freshDatabase('fn_voice_events_unlocked');
  auth = await configureAuth(db.url, { PROVISIONING_ENCRYPTION_KEY: randomBytes(32).toString('base64') });
  service = await apiKey('service_role', TEST_JWT_SECRET);
  await db.sql`update public.tenants set plan = 'pro'`;
  await db.sql`insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
    values (${acme}, ${AGENT[acme]}, 'Desk', '+14155554031', 'v', ${db.sql.json(LLM)}),
           (${globex}, ${AGENT[globex]}, 'Desk', '+14155554032', 'v', ${db.sql.json(LLM)})`;
  // acme: a receiver of every event, one of call.ended only, one disabled; globex: none.
  const rows = await db.sql`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, event_types, enabled)
    values (${acme}, 'https://hooks.example.com/all', 'v1:x', '{}', true),
           (${acme}, 'https://hooks.example.com/ends', 'v1:x', '{call.ended}', true),
           (${acme}, 'https://hooks.example.com/off', 'v1:x', '{}', false)
    returning id`;
  endpoint = { all: rows[0].id, ends: rows[1].id, off: rows[2].id };
}, 120_000);
afterAll(async () => {
  await closeDb();
  await auth?.close();
  await db?.close();
});

/** Runs `statement` as the tenant's agent through PostgREST's path, in one committed
 *  transaction: the rows it changed and the advisory locks it held before commit. */
async function asAgent(tenant: string, statement: (tx: TransactionSql) => Promise<readonly unknown[]>) {
  const r = await asTenantUser(db.sql, tenant === acme ? users.acmeAgent : users.globexAgent, tenant, statement,
    (tx) => countAdvisoryLocks(tx, []));
  return { rows: r.rows, advisoryLocks: r.locks.others };
}

const logCalls = (tenant: string, prefix: string, n = CALLS) =>
  asAgent(tenant, (tx) =>
    tx`insert into public.voice_calls (tenant_id, agent_id, direction, status, provider_call_id, to_number)
       select ${tenant}, ${AGENT[tenant]}, 'outbound', 'in_progress', 'manual:' || ${prefix} || g, '+33611112222'
       from generate_series(1, ${n}) g
       returning id`);
const endCalls = (tenant: string, prefix: string) =>
  asAgent(tenant, (tx) =>
    tx`update public.voice_calls set status = 'completed'
       where tenant_id = ${tenant} and provider_call_id like ${'manual:' + prefix + '%'} returning id`);

describe('calls written many at once', () => {
  it(`an agent logs ${CALLS.toLocaleString('en')} calls in one insert: a call.started for each, and no lock per call`, async () => {
    expect(await logCalls(acme, 'bulk-')).toEqual({ rows: CALLS, advisoryLocks: 0 });
    const [events] = await db.sql`
      select count(*)::int as n, count(distinct ev.ordering_key)::int as keys,
             bool_and(ev.type = 'call.started' and ev.payload ->> 'type' = 'call.started' and ev.payload ->> 'tenant_id' = ${acme}
                      and ev.payload -> 'data' ->> 'id' = c.id::text and ev.payload -> 'data' ->> 'provider_call_id' = c.provider_call_id
                      and ev.payload -> 'data' ->> 'status' = 'in_progress' and ev.payload -> 'data' ->> 'started_at' like '%Z'
                      and not ev.payload ? 'provisional') as exact
      from private.webhook_events ev
      join public.voice_calls c on c.tenant_id = ev.tenant_id and ev.ordering_key = 'call:' || c.id
      where ev.tenant_id = ${acme} and c.provider_call_id like 'manual:bulk-%'`;
    expect(events).toEqual({ n: CALLS, keys: CALLS, exact: true });
    // One delivery each, to the receiver of every event only, with its job as add_job
    // writes it (key, queue, attempts).
    const [deliveries] = await db.sql`
      select count(*)::int as n, count(*) filter (where d.endpoint_id = ${endpoint.all})::int as to_all, count(j.id)::int as jobs,
             bool_and(j.task = 'deliver-webhook' and j.queue = 'webhook:' || d.endpoint_id || ':' || d.ordering_key
                      and (j.payload ->> 'delivery_id')::bigint = d.id and (j.payload ->> 'tenant_id')::uuid = ${acme}
                      and j.tenant_id = ${acme} and j.attempts = 0 and j.max_attempts = 25 and j.run_at <= now()) as exact
      from private.webhook_deliveries d
      join private.webhook_events ev on ev.id = d.event_id
      left join private.jobs j on j.job_key = 'delivery:' || d.id
      where d.tenant_id = ${acme} and ev.type = 'call.started'`;
    expect(deliveries).toEqual({ n: CALLS, to_all: CALLS, jobs: CALLS, exact: true });
  }, 120_000);

  it(`ending the ${CALLS.toLocaleString('en')} calls in one update: a call.ended for each to both receivers that want it, after its start, and no lock per call`, async () => {
    expect(await endCalls(acme, 'bulk-')).toEqual({ rows: CALLS, advisoryLocks: 0 });
    const [events] = await db.sql`
      select count(*)::int as n,
             bool_and(ev.payload ->> 'type' = 'call.ended' and ev.payload -> 'data' ->> 'status' = 'completed'
                      and (ev.payload ->> 'provisional')::boolean = false and (ev.payload ->> 'replaces_provisional')::boolean = false
                      and ev.id > s.id) as exact
      from private.webhook_events ev
      join private.webhook_events s on s.tenant_id = ev.tenant_id and s.ordering_key = ev.ordering_key and s.type = 'call.started'
      where ev.tenant_id = ${acme} and ev.type = 'call.ended'`;
    expect(events).toEqual({ n: CALLS, exact: true });
    const perEndpoint = await db.sql`
      select d.endpoint_id, count(*)::int as n, count(j.id)::int as jobs
      from private.webhook_deliveries d
      join private.webhook_events ev on ev.id = d.event_id
      left join private.jobs j on j.job_key = 'delivery:' || d.id and j.queue = 'webhook:' || d.endpoint_id || ':' || d.ordering_key
      where d.tenant_id = ${acme} and ev.type = 'call.ended'
      group by d.endpoint_id order by d.endpoint_id`;
    expect(perEndpoint).toEqual(
      [endpoint.all, endpoint.ends].sort().map((id) => ({ endpoint_id: id, n: CALLS, jobs: CALLS })),
    );
  }, 120_000);

  it('a tenant nobody listens to gets no event, delivery or job for its calls', async () => {
    const before = (await db.sql`select count(*)::int as n from private.jobs where tenant_id = ${globex}`)[0].n;
    expect(await logCalls(globex, 'quiet-', 2_000)).toEqual({ rows: 2_000, advisoryLocks: 0 });
    expect(await endCalls(globex, 'quiet-')).toEqual({ rows: 2_000, advisoryLocks: 0 });
    const [written] = await db.sql`
      select (select count(*)::int from private.webhook_events where tenant_id = ${globex}) as events,
             (select count(*)::int from private.webhook_deliveries where tenant_id = ${globex}) as deliveries,
             (select count(*)::int from private.jobs where tenant_id = ${globex}) - ${before}::int as jobs`;
    expect(written).toEqual({ events: 0, deliveries: 0, jobs: 0 });
  }, 120_000);
});

describe("one call's events from two transactions", () => {
  it("the provider's end waits for the sweep's provisional end to commit and is numbered after it, in the same queues", async () => {
    const send = (body: Record<string, unknown>) =>
      call(app, 'POST', '/voice/calls/events', { body, headers: { authorization: `Bearer ${service}` } });
    const started = await send({ type: 'call.started', tenant_id: acme, provider_call_id: 'pc-order', agent_id: AGENT[acme], answered: true });
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    const id = started.body.call_id as string;

    // The sweep's provisional end, held open; the provider's end arrives meanwhile.
    let providerEnd: Promise<{ status: number; body: Record<string, unknown> }> | undefined;
    let waiting = false;
    await db.sql.begin(async (tx) => {
      await tx`update public.voice_calls set status = 'failed', timed_out_at = now() where id = ${id}`;
      providerEnd = send({ type: 'call.ended', tenant_id: acme, provider_call_id: 'pc-order', status: 'completed' });
      // The provider's end is waiting for the call's row, not yet written.
      for (let i = 0; i < 100 && !waiting; i++) {
        const [w] = await db.sql`select count(*)::int as n from pg_catalog.pg_stat_activity
                                 where wait_event_type = 'Lock' and query like '%voice_call_ended%'`;
        waiting = w.n > 0;
        if (!waiting) await new Promise((r) => setTimeout(r, 50));
      }
    });
    expect(waiting).toBe(true);
    const ended = await providerEnd!;
    expect([ended.status, ended.body.applied, ended.body.status], JSON.stringify(ended.body)).toEqual([200, true, 'completed']);

    const events = await db.sql`
      select ev.payload ->> 'type' as type, (ev.payload ->> 'provisional')::boolean as provisional,
             (ev.payload ->> 'replaces_provisional')::boolean as replaces,
             array_agg(d.endpoint_id::text || ' ' || j.queue order by d.endpoint_id) as queues,
             ev.id as event_id, min(d.id) as delivery_id, min(j.id) as job_id
      from private.webhook_events ev
      join private.webhook_deliveries d on d.event_id = ev.id
      join private.jobs j on j.job_key = 'delivery:' || d.id
      where ev.tenant_id = ${acme} and ev.ordering_key = ${'call:' + id}
      group by ev.id order by ev.id`;
    expect(events.map((e) => [e.type, e.provisional, e.replaces])).toEqual([
      ['call.started', null, null],
      ['call.ended', true, false],
      ['call.ended', false, true],
    ]);
    const queues = [endpoint.all, endpoint.ends].sort().map((e) => `${e} webhook:${e}:call:${id}`);
    expect(events.slice(1).map((e) => e.queues)).toEqual([queues, queues]);
    // Ids in commit order: events, deliveries and jobs alike.
    for (const key of ['event_id', 'delivery_id', 'job_id']) {
      const ids = events.map((e) => BigInt(e[key]));
      expect(ids, key).toEqual([...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
    }
  }, 120_000);
});
