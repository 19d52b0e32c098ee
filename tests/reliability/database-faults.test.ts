// A bad day for the database, through the real Deno functions server: this file starts
// ITS OWN embedded Postgres (the shared one of global-setup serves other files at the
// same time), migrates and seeds it, and serves the functions against it. Then, while
// bounded readers and writers run over HTTP on 127.0.0.1, it restarts that Postgres 5
// times and terminates the functions' backends (pg_terminate_backend) before each
// restart and once more after the last. It asserts that the server process lives
// throughout and answers /health after; that no status other than 2xx, 409 and 503
// was seen, every 503 being database_unavailable with Retry-After; that the first
// request after each return of the database succeeds; that every acknowledged write is
// in the database exactly once; and that writes sent with an Idempotency-Key and
// retried after a 503 until acknowledged exist exactly once. The voice call path runs in
// the same workload (issue 14): the telephony provider's /voice/route lookups and call
// events, which share batched statements (shared/batch.ts), so a batch that the outage
// fails answers every request in it 503 and the next batch runs for what waits. Every
// route answered is the right agent and customer; every call whose events were each
// retried after a 503 until acknowledged exists once, ended, with exactly its segments.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { apiKey } from '../../scripts/tokens.mjs';
import { freePort, migrate, runSqlFile, seedFile, startEmbeddedPostgres } from '../../scripts/stack.mjs';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

const RESTARTS = 5;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let dir: string;
let pgPort: number;
let postgres: { stop(): Promise<void> } | undefined;
let dbUrl: string;
let auth: AuthFixture;
let server: FunctionsServer;
// The voice call path's fixture: acme's agent on a number, and a caller it knows.
const VOICE = { agent: '00000000-0000-4000-8000-00000000a901', number: '+14155550901', caller: '+14155550999' };
let voiceCustomer: string;

const startPostgres = async () => {
  postgres = (await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port: pgPort, fast: true, ownedRoot: dir })).pg;
};

/** One short-lived connection for the test's own SQL (pg: it survives a lost
 *  connection as the functions now do). */
async function adminQuery<T extends pg.QueryResultRow>(text: string, values: unknown[] = []): Promise<T[]> {
  const client = new pg.Client({ connectionString: dbUrl });
  client.on('error', () => {});
  await client.connect();
  try {
    return (await client.query<T>(text, values)).rows;
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'reliability-db-'));
  pgPort = await freePort();
  const started = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port: pgPort, fast: true, ownedRoot: dir });
  postgres = started.pg;
  dbUrl = started.url;
  await migrate(dbUrl);
  await runSqlFile(dbUrl, seedFile);
  // The customer's writers file hundreds of tickets in minutes: above a customer's daily
  // allowance (private.customer_tickets_per_day), which this suite is not about.
  await adminQuery(`update public.tenants set settings = settings || '{"customer_tickets_per_day": 10000}'`);
  await adminQuery(
    `insert into public.voice_agents (tenant_id, id, name, phone, voice_id, llm_config)
     values ($1, $2, 'Reliability desk', $3, 'voice-r', '{"model": "m", "system_prompt": "p"}')`,
    [tenants.acme.id, VOICE.agent, VOICE.number],
  );
  [{ id: voiceCustomer }] = await adminQuery<{ id: string }>(
    `insert into public.voice_customers (tenant_id, phone, name) values ($1, $2, 'Reliability caller') returning id`,
    [tenants.acme.id, VOICE.caller],
  );
  auth = await configureAuth(dbUrl);
  const env: Record<string, string> = { DB_CONNECT_TIMEOUT_MS: '2000' };
  server = await startFunctionsServer(env);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await auth?.close();
  await postgres?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

it('survives 5 restarts and terminated backends under readers and writers, losing nothing', async () => {
  const customer = await supabaseToken(users.acmeUser, { tenantId: tenants.acme.id });
  const admin = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
  const service = await apiKey('service_role', TEST_JWT_SECRET);
  const byStatus: Record<string, number> = {};
  const unexpected: string[] = [];
  let networkErrors = 0;
  let serverDied = false;

  async function request(method: string, route: string, token: string, body?: unknown, headers: Record<string, string> = {}) {
    try {
      const res = await fetch(`${server.url}/functions/v1${route}`, {
        method,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(15_000),
      });
      const json = await res.json().catch(() => null);
      byStatus[res.status] = (byStatus[res.status] ?? 0) + 1;
      const ok = (res.status >= 200 && res.status < 300) || res.status === 409 ||
        (res.status === 503 && json?.error?.code === 'database_unavailable' &&
          /^\d+$/.test(res.headers.get('retry-after') ?? ''));
      if (!ok && unexpected.length < 10) unexpected.push(`${method} ${route} → ${res.status} ${JSON.stringify(json)}`);
      // As a client would (Retry-After): an outage must not use up a worker's requests
      // before the later restarts (each of which must be felt, below).
      if (res.status === 503) await sleep(25);
      return { status: res.status, body: json };
    } catch (err) {
      networkErrors++;
      if (!server.alive()) serverDied = true;
      if (unexpected.length < 10) unexpected.push(`${method} ${route} → ${(err as Error).message}`);
      await sleep(50);
      return { status: 0, body: null };
    }
  }

  let stopping = false;
  const MAX_PER_WORKER = 400;
  const plain: { title: string; status: number }[] = [];
  const keyed: { title: string; status: number; attempts: number; after503: boolean }[] = [];
  const teams: { name: string; status: number }[] = [];

  const reader = async () => {
    for (let i = 0; i < MAX_PER_WORKER && !stopping; i++) await request('GET', '/tickets?limit=5', customer);
  };
  const plainWriter = async (w: number) => {
    for (let i = 0; i < MAX_PER_WORKER && !stopping; i++) {
      const title = `Reliability plain ${w}-${i}`;
      const r = await request('POST', '/tickets', customer, { title });
      plain.push({ title, status: r.status });
    }
  };
  /** Sends the same request again after a 503 or a dropped connection, 25 ms apart, until
   *  it is acknowledged (at most 200 times), as a client that retries does. */
  const untilAcknowledged = async (send: () => Promise<{ status: number }>) => {
    let status = 0;
    let attempts = 0;
    let after503 = false;
    while (attempts < 200) {
      attempts++;
      status = (await send()).status;
      if (status !== 503 && status !== 0) break;
      after503 = true;
      await sleep(25);
    }
    return { status, attempts, after503 };
  };
  // Sends each write with an Idempotency-Key and, after a 503, the same request again
  // until it is acknowledged (bounded).
  const keyedWriter = async (w: number) => {
    for (let i = 0; i < MAX_PER_WORKER && !stopping; i++) {
      const title = `Reliability keyed ${w}-${i}`;
      const r = await untilAcknowledged(() =>
        request('POST', '/tickets', customer, { title }, { 'Idempotency-Key': `reliability-${w}-${i}` })
      );
      keyed.push({ title, ...r });
    }
  };
  const teamWriter = async () => {
    for (let i = 0; i < MAX_PER_WORKER && !stopping; i++) {
      const name = `Reliability team ${i}`;
      const r = await request('POST', `/tenants/${tenants.acme.id}/teams`, admin, { name, department: 'support' });
      teams.push({ name, status: r.status });
    }
  };

  // The telephony provider: lookups of the dialled number (each answer checked), and
  // calls reported event by event (start, three transcript events of two segments, end),
  // each event sent again after a 503 until acknowledged, as a provider's retry does.
  const routeQuery = `/voice/route?to=${encodeURIComponent(VOICE.number)}&from=${encodeURIComponent(VOICE.caller)}`;
  const wrongRoutes: string[] = [];
  let routesAnswered = 0;
  const routeReader = async () => {
    for (let i = 0; i < MAX_PER_WORKER && !stopping; i++) {
      const r = await request('GET', routeQuery, service);
      if (r.status === 200) routesAnswered++;
      if (
        r.status === 200 &&
        (r.body?.agent?.id !== VOICE.agent || r.body?.customer?.id !== voiceCustomer || r.body?.tenant?.id !== tenants.acme.id)
      ) {
        wrongRoutes.push(JSON.stringify(r.body));
      }
    }
  };
  const SEGMENT_EVENTS = 3;
  const calls: { id: string; acked: boolean; after503: boolean }[] = [];
  const segment = (id: string, seq: number) => ({
    seq,
    speaker: seq % 2 ? 'agent' : 'customer',
    content: `${id} line ${seq}`,
    offset_ms: seq * 1000,
  });
  const callWriter = async (w: number) => {
    for (let i = 0; i < MAX_PER_WORKER && !stopping; i++) {
      const id = `reliability-call-${w}-${i}`;
      const events: Record<string, unknown>[] = [
        {
          type: 'call.started',
          tenant_id: tenants.acme.id,
          agent_id: VOICE.agent,
          provider_call_id: id,
          from: VOICE.caller,
          to: VOICE.number,
        },
        ...Array.from({ length: SEGMENT_EVENTS }, (_, k) => ({
          type: 'transcript.segments',
          tenant_id: tenants.acme.id,
          provider_call_id: id,
          segments: [segment(id, 2 * k), segment(id, 2 * k + 1)],
        })),
        {
          type: 'call.ended',
          tenant_id: tenants.acme.id,
          provider_call_id: id,
          status: 'completed',
          duration_seconds: 30,
          outcome: 'answered',
          cost: 0.1,
        },
      ];
      const call = { id, acked: true, after503: false };
      for (const e of events) {
        const r = await untilAcknowledged(() => request('POST', '/voice/calls/events', service, e));
        if (r.after503) call.after503 = true;
        if (r.status !== 200) call.acked = false;
      }
      calls.push(call);
    }
  };

  const faults = { restarts: 0, terminationRounds: 0, backendsTerminated: 0 };
  const firstAfterReturn: number[] = [];
  const terminate = async () => {
    const rows = await adminQuery<{ ok: boolean }>(
      `select pg_terminate_backend(pid) as ok from pg_stat_activity
        where application_name = 'edge-functions' and pid <> pg_backend_pid()`,
    );
    faults.terminationRounds++;
    faults.backendsTerminated += rows.filter((r) => r.ok).length;
  };

  const workload = Promise.all([
    reader(),
    reader(),
    plainWriter(1),
    plainWriter(2),
    keyedWriter(1),
    keyedWriter(2),
    teamWriter(),
    routeReader(),
    routeReader(),
    callWriter(1),
    callWriter(2),
    callWriter(3),
  ]);
  const alive: boolean[] = [];
  /** The 503s answered during each outage: every restart hit requests in flight. */
  const felt: number[] = [];
  for (let round = 0; round < RESTARTS; round++) {
    await sleep(300);
    await terminate();
    alive.push(server.alive());
    await sleep(300);
    const before503 = byStatus['503'] ?? 0;
    await postgres!.stop();
    faults.restarts++;
    await sleep(300); // the outage: requests answer 503
    alive.push(server.alive());
    felt.push((byStatus['503'] ?? 0) - before503);
    await startPostgres();
    // The first request after the database returns succeeds, with nothing restarted.
    firstAfterReturn.push((await request('GET', '/tickets?limit=1', customer)).status);
  }
  await sleep(300);
  await terminate();
  await sleep(300);
  stopping = true;
  await workload;
  alive.push(server.alive());

  const health = await fetch(`${server.url}/health`);
  expect(health.status).toBe(200);
  expect(serverDied).toBe(false);
  expect(alive.every(Boolean)).toBe(true);
  expect(networkErrors).toBe(0);
  expect(unexpected).toEqual([]);
  expect(Object.keys(byStatus).filter((s) => !['200', '201', '409', '503'].includes(s))).toEqual([]);
  expect(firstAfterReturn).toEqual(Array(RESTARTS).fill(200));
  expect(faults.restarts).toBe(RESTARTS);
  expect(byStatus['503']).toBeGreaterThan(0); // the faults were felt
  expect(felt.filter((n) => n > 0), JSON.stringify(felt)).toHaveLength(RESTARTS); // each restart, under load
  expect(faults.backendsTerminated).toBeGreaterThan(0); // the terminations found the functions' backends

  // What the database holds.
  const ticketCounts = new Map(
    (await adminQuery<{ title: string; n: number }>(
      `select title, count(*)::int as n from public.tickets where tenant_id = $1 and title like 'Reliability %' group by title`,
      [tenants.acme.id],
    )).map((r) => [r.title, r.n]),
  );
  const teamCounts = new Map(
    (await adminQuery<{ name: string; n: number }>(
      `select name, count(*)::int as n from public.teams where tenant_id = $1 and name like 'Reliability team %' group by name`,
      [tenants.acme.id],
    )).map((r) => [r.name, r.n]),
  );
  const acked = <T extends { status: number }>(xs: T[]) => xs.filter((x) => x.status >= 200 && x.status < 300);
  const ackedWrites = [
    ...acked(plain).map((p) => ticketCounts.get(p.title) ?? 0),
    ...acked(keyed).map((k) => ticketCounts.get(k.title) ?? 0),
    ...acked(teams).map((t) => teamCounts.get(t.name) ?? 0),
  ];
  const rowsLost = ackedWrites.filter((n) => n === 0).length;
  const duplicated = ackedWrites.filter((n) => n > 1).length;
  // A write answered 503 may or may not have committed, but never twice.
  const unackedTwice = [...plain, ...teams.map((t) => ({ title: t.name, status: t.status }))]
    .filter((x) => x.status === 503 && ((ticketCounts.get(x.title) ?? teamCounts.get(x.title) ?? 0) > 1)).length;
  const retried = keyed.filter((k) => k.after503);

  console.log(
    `[reliability] faults injected: ${faults.restarts} restarts, ${faults.terminationRounds} termination rounds ` +
      `(${faults.backendsTerminated} backends terminated); 503s in each outage ${JSON.stringify(felt)}; requests by status ${JSON.stringify(byStatus)}; ` +
      `acknowledged writes ${ackedWrites.length} (plain tickets ${acked(plain).length}, keyed tickets ${acked(keyed).length}, ` +
      `teams ${
        acked(teams).length
      }); keyed writes retried after a 503 ${retried.length}; rows lost ${rowsLost}; duplicated ${duplicated}`,
  );

  expect(keyed.every((k) => k.status === 201)).toBe(true);
  // Some keyed writes met an outage and were sent again (else the line below compares
  // nothing), and each acknowledged one left its key with the answer stored: the
  // retries were answered by the key, not by luck (a 503 almost never committed).
  expect(retried.length).toBeGreaterThan(0);
  expect(retried.map((k) => ticketCounts.get(k.title))).toEqual(retried.map(() => 1));
  const storedKeys = new Set((await adminQuery<{ key: string }>(
    `select key from private.idempotency_keys where tenant_id = $1 and key like 'reliability-%' and status_code = 201`,
    [tenants.acme.id],
  )).map((r) => r.key));
  expect(keyed.map((k) => k.title.replace('Reliability keyed ', 'reliability-')).filter((key) => !storedKeys.has(key))).toEqual([]);
  expect(rowsLost).toBe(0);
  expect(duplicated).toBe(0);
  expect(unackedTwice).toBe(0);
  expect(ackedWrites.length).toBeGreaterThan(0);

  // The voice call path: right answers only, and every call exactly as reported.
  expect(wrongRoutes).toEqual([]);
  const stored = new Map(
    (await adminQuery<{ provider_call_id: string; n: number; status: string; transcript: string[] }>(
      `select c.provider_call_id, count(*) over (partition by c.provider_call_id)::int as n, c.status,
              coalesce((select array_agg(s.seq || ':' || s.content order by s.seq) from public.voice_call_segments s
                        where s.tenant_id = c.tenant_id and s.call_id = c.id), '{}') as transcript
       from public.voice_calls c where c.tenant_id = $1 and c.provider_call_id like 'reliability-call-%'`,
      [tenants.acme.id],
    )).map((r) => [r.provider_call_id, r]),
  );
  const expected = (id: string) => Array.from({ length: 2 * SEGMENT_EVENTS }, (_, seq) => `${seq}:${id} line ${seq}`);
  const callsWrong = calls.filter((c) => c.acked).map((c) => ({ id: c.id, stored: stored.get(c.id) }))
    .filter(({ id, stored }) =>
      stored?.n !== 1 || stored.status !== 'completed' || JSON.stringify(stored.transcript) !== JSON.stringify(expected(id))
    );
  const callsRetried = calls.filter((c) => c.after503);
  console.log(
    `[reliability] voice: calls reported ${calls.length} (after a 503 ${callsRetried.length}), ` +
      `routes answered ${routesAnswered}; calls not as reported ${callsWrong.length}`,
  );
  expect(calls.every((c) => c.acked)).toBe(true);
  expect(callsWrong).toEqual([]);
  expect(calls.length).toBeGreaterThan(0);
  expect(routesAnswered).toBeGreaterThan(0);
  expect(callsRetried.length).toBeGreaterThan(0); // the outage reached the call path
}, 120_000);
