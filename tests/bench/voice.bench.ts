// The voice call path (issue 14), closed-loop with same-run raw-SQL baselines:
//   /route at 16 and 64 concurrent clients over HTTP (service key), served two ways: by
//   the local functions server (`npm start`'s scripts/serve.ts, node:http in front of
//   every function) and by the voice function alone as the platform runs it
//   (functions/voice/index.ts, Deno.serve); against the same lookup as raw SQL
//   (postgres.js, superuser, prepared) at 16 and 64 connections, against the route's
//   own statement (private.voice_route) as raw SQL, and against a bare Deno.serve
//   handler running the lookup's statement through the same driver, one per request
//   (tests/bench/route-bare-handler.deno.ts); knowledge-base search over 100,000
//   chunks of one tenant; transcript segment appends across 50 concurrent calls.
// Dataset: 1,000 tenants, 10,000 agents, 1,000,000 customers (VOICE_BENCH_CUSTOMERS to
// shrink it). Each measurement warms up for VOICE_BENCH_WARMUP_SECONDS (2), runs
// VOICE_BENCH_SECONDS (10) and prints throughput, latency percentiles and the CPU the
// load generator and the server spent per request; the numbers depend on the machine's
// load, so read the ratios. The servers' database pools are the deployed default
// (DB_POOL_MAX 4): 16 connections measured slower on two cores.
//   VOICE_BENCH_SECONDS=5 npx vitest bench --run tests/bench/voice.bench.ts
import { readFileSync } from 'node:fs';
import postgres from 'postgres';
import { afterAll, beforeAll, bench, describe } from 'vitest';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { connections, type HttpConnection } from '../helpers/http-load.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

const SECONDS = Number(process.env.VOICE_BENCH_SECONDS ?? 10);
// Each measurement runs unmeasured for this long first: the server's JIT, the pools'
// connections and the database's caches warm up, as they are on a server in service.
const WARMUP_SECONDS = Number(process.env.VOICE_BENCH_WARMUP_SECONDS ?? 2);
const CUSTOMERS = Number(process.env.VOICE_BENCH_CUSTOMERS ?? 1_000_000);
const TENANTS = 1_000;
const AGENTS = 10_000;
const CHUNKS = 100_000;
const acme = tenants.acme.id;

let db: TestDatabase;
let auth: AuthFixture;
let server: FunctionsServer;
let deployed: FunctionsServer;
let bareHandler: FunctionsServer;
let service: string;
const results: string[] = [];

// The HTTP load generator: tests/helpers/http-load.ts, one keep-alive connection per
// client. Node's fetch (undici) cost this process about as much CPU per request as the
// server spent answering it (2.6 ms), node:http's client 0.35 ms, autocannon 0.18 ms;
// on two shared cores that CPU is taken from the server being measured.
const pools = new Map<string, HttpConnection[]>();
/** The connection of client `c` to the server at `origin`. */
function connectionOf(origin: string, c: number): HttpConnection {
  let pool = pools.get(origin);
  if (!pool) pools.set(origin, pool = connections(origin, 64));
  return pool[c];
}
async function request(origin: string, c: number, path: string, opts: { method?: string; headers?: Record<string, string>; body?: string } = {}) {
  const answer = await connectionOf(origin, c).request(opts.method ?? 'GET', path, opts.headers, opts.body);
  return { status: answer.status, text: answer.body.toString() };
}

/** CPU time (user + system) a process has used so far, in ms, or with `mainThread` only
 *  its main thread's (where Deno runs JavaScript; the platform's CPU limit counts the
 *  isolate's time, not the GC and compiler threads'); undefined where /proc does not
 *  exist. */
function processCpuMs(pid: number | undefined, mainThread = false): number | undefined {
  if (!pid) return undefined;
  try {
    const fields = readFileSync(mainThread ? `/proc/${pid}/task/${pid}/stat` : `/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10; // clock ticks of 10 ms (USER_HZ 100)
  } catch {
    return undefined;
  }
}

type Outcome = {
  n: number;
  errors: number;
  seconds: number;
  p50: number;
  p99: number;
  clientCpuMs: number;
  serverCpuMs?: number;
};
/** `clients` loops, each running `op` back to back for WARMUP_SECONDS unmeasured, then
 *  for SECONDS; `op` gets a running count and its client's number. With `serverPid`,
 *  also the server's CPU per op. */
async function closedLoop(clients: number, op: (i: number, client: number) => Promise<void>, serverPid?: number): Promise<Outcome> {
  let k = 0;
  const warm = performance.now() + WARMUP_SECONDS * 1000;
  await Promise.all(Array.from({ length: clients }, async (_, client) => {
    while (performance.now() < warm) await op(k++, client).catch(() => {});
  }));
  const latencies: number[] = [];
  let errors = 0;
  const cpu = process.cpuUsage();
  const serverCpu = processCpuMs(serverPid);
  const start = performance.now();
  const end = start + SECONDS * 1000;
  await Promise.all(Array.from({ length: clients }, async (_, client) => {
    while (performance.now() < end) {
      const t = performance.now();
      try {
        await op(k++, client);
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  }));
  const seconds = (performance.now() - start) / 1000;
  const used = process.cpuUsage(cpu);
  const serverUsed = serverCpu === undefined ? undefined : (processCpuMs(serverPid) ?? serverCpu) - serverCpu;
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? NaN;
  const perOp = Math.max(1, latencies.length);
  return {
    n: latencies.length,
    errors,
    seconds,
    p50: at(0.5),
    p99: at(0.99),
    clientCpuMs: (used.user + used.system) / 1000 / perOp,
    serverCpuMs: serverUsed === undefined ? undefined : serverUsed / perOp,
  };
}
const line = (label: string, o: Outcome, unit = 'req/s') =>
  `${label}: ${(o.n / o.seconds).toFixed(0)} ${unit}, p50 ${o.p50.toFixed(2)} ms, p99 ${o.p99.toFixed(2)} ms, errors ${o.errors}` +
  `, load generator CPU ${o.clientCpuMs.toFixed(3)} ms/op` +
  (o.serverCpuMs === undefined ? '' : `, server CPU ${o.serverCpuMs.toFixed(3)} ms/op`);

const phoneOfAgent = (i: number) => `+1555${String(i).padStart(7, '0')}`;
const phoneOfCustomer = (i: number) => `+1666${String(i).padStart(7, '0')}`;

beforeAll(async () => {
  db = await freshDatabase('voice_bench');
  const t0 = performance.now();
  await db.sql`
    insert into public.tenants (id, name, slug, plan)
    select gen_random_uuid(), 'Voice tenant ' || g, 'voice-tenant-' || g, 'pro' from generate_series(1, ${TENANTS - 2}) g`;
  // Every tenant on a plan with voice and room for its 10 agents (globex is starter).
  await db.sql`update public.tenants set plan = 'pro' where plan = 'starter'`;
  await db.sql`alter table public.voice_agents disable trigger user`;
  await db.sql`alter table public.voice_customers disable trigger user`;
  await db.sql`alter table public.kb_chunks disable trigger user`;
  await db.sql`
    with t as (select id, row_number() over (order by id) - 1 as k from public.tenants)
    insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
    select t.id, 'Agent ' || a, '+1555' || lpad((t.k * 10 + a)::text, 7, '0'), 'voice', '{"model": "m", "system_prompt": "p"}'
    from t, generate_series(0, 9) a`;
  // Customer i belongs to the tenant of agent i % AGENTS.
  await db.sql`
    with t as (select id, row_number() over (order by id) - 1 as k from public.tenants)
    insert into public.voice_customers (tenant_id, phone, name)
    select t.id, '+1666' || lpad(g::text, 7, '0'), 'Customer ' || g
    from generate_series(0, ${CUSTOMERS - 1}) g join t on t.k = (g % ${AGENTS}) / 10`;
  const [{ kb }] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Bench') returning id as kb`;
  const [{ doc }] = await db.sql`
    insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values (${acme}, ${kb}, 'Bench', 'x') returning id as doc`;
  await db.sql`
    insert into public.kb_chunks (tenant_id, knowledge_base_id, document_id, ordinal, content)
    select ${acme}, ${kb}, ${doc}, g,
      (select string_agg((array['refund', 'parking', 'invoice', 'opening', 'hours', 'delivery', 'warranty', 'password',
                                'account', 'shipping', 'return', 'order', 'billing', 'support', 'holiday', 'menu'])[1 + (g * 7 + w * 13) % 16]
                         || (g % 997)::text, ' ') from generate_series(1, 40) w)
      -- and one word that a tenth of the chunks share: a broad query ranks 10,000 of them;
      -- and one a seventh share, found with each season word in ~1,430 chunks.
      || ' season' || (g % 10) || ' tier' || (g % 7)
    from generate_series(1, ${CHUNKS}) g`;
  // The chunks' postings, which their (disabled) trigger writes as each chunk is written
  // (20261203150000_kb_postings.sql): here in one statement.
  await db.sql`
    insert into private.kb_postings (tenant_id, knowledge_base_id, config, lexeme, positions, chunk_id)
    select p.* from public.kb_chunks k
    cross join lateral private.kb_chunk_postings(k.tenant_id, k.knowledge_base_id, k.id, k.search_english, k.search_simple) p
    where k.tenant_id = ${acme}`;
  await db.sql`alter table public.voice_agents enable trigger user`;
  await db.sql`alter table public.voice_customers enable trigger user`;
  await db.sql`alter table public.kb_chunks enable trigger user`;
  await db.sql`vacuum analyze`;
  // The load's dirty pages written now, not by a checkpoint during the first measurement
  // (the raw baseline, which it slowed to half in some runs).
  await db.sql`checkpoint`;
  results.push(`[voice bench] data: ${TENANTS} tenants, ${AGENTS} agents, ${CUSTOMERS} customers, ${CHUNKS} chunks in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  auth = await configureAuth(db.url);
  service = await apiKey('service_role', TEST_JWT_SECRET);
  const env: Record<string, string> = { REQUEST_LOG: 'off' };
  server = await startFunctionsServer(env);
  deployed = await startFunctionsServer(env, { fn: 'voice' });
  bareHandler = await startFunctionsServer(env, { entry: 'tests/bench/route-bare-handler.deno.ts' });
}, 900_000);

afterAll(async () => {
  console.info(results.join('\n'));
  for (const pool of pools.values()) for (const c of pool) c.close();
  await server?.stop();
  await deployed?.stop();
  await bareHandler?.stop();
  await closeDb();
  await auth?.close();
  await db?.close();
});

const once = { iterations: 1, warmupIterations: 0, time: 0, warmupTime: 0 };

/** The lookup /route makes, as one raw statement: agent, tenant, known customer. */
const rawRoute = (sql: postgres.Sql, to: string, from: string) =>
  sql`select a.id, a.tenant_id, a.name, a.voice_id, a.llm_config, a.greeting, a.language, a.knowledge_base_id, t.status, t.name as tenant_name,
             c.id as customer_id, c.name as customer_name
      from public.voice_agents a join public.tenants t on t.id = a.tenant_id
      left join public.voice_customers c on c.tenant_id = a.tenant_id and c.phone = ${from}
      where a.phone = ${to} and a.active`;

const pick = (i: number) => {
  const agent = (i * 7919) % AGENTS;
  const customer = agent + AGENTS * ((i * 104729) % Math.max(1, Math.floor(CUSTOMERS / AGENTS)));
  return { to: phoneOfAgent(agent), from: phoneOfCustomer(customer) };
};

describe('voice call path', () => {
  for (const clients of [16, 64]) {
    bench(`/route vs raw SQL, ${clients} clients`, async () => {
      const raw = postgres(db.adminUrl, { max: clients, onnotice: () => {} });
      const auth = { authorization: `Bearer ${service}` };
      const query = (i: number) => {
        const { to, from } = pick(i);
        return `route?to=${encodeURIComponent(to)}&from=${encodeURIComponent(from)}`;
      };
      try {
        const baseline = await closedLoop(clients, async (i) => {
          const { to, from } = pick(i);
          const rows = await rawRoute(raw, to, from);
          if (rows.length !== 1) throw new Error('no agent');
        });
        // The statement /route runs (the function with every rule), as raw SQL: what
        // the HTTP path adds on top of its own database work.
        const statement = await closedLoop(clients, async (i) => {
          const { to, from } = pick(i);
          await raw`select private.voice_route(${to}, ${from})::text as route`;
        });
        const local = await closedLoop(clients, async (i, c) => {
          const res = await request(server.url, c, `/functions/v1/voice/${query(i)}`, { headers: auth });
          if (res.status !== 200) throw new Error(`status ${res.status}`);
        }, server.pid);
        const alone = await closedLoop(clients, async (i, c) => {
          const res = await request(deployed.url, c, `/voice/${query(i)}`, { headers: auth });
          if (res.status !== 200) throw new Error(`status ${res.status}`);
        }, deployed.pid);
        // A bare Deno.serve handler running the lookup's statement through the same driver,
        // one per request (tests/bench/route-bare-handler.deno.ts): the function's distance
        // to it is what its router, validation and checks cost, less what batching saves.
        const bare = await closedLoop(clients, async (i, c) => {
          const res = await request(bareHandler.url, c, `/${query(i)}`);
          if (res.status !== 200) throw new Error(`status ${res.status}`);
        }, bareHandler.pid);
        const rate = (o: Outcome) => o.n / o.seconds;
        results.push(line(`raw SQL lookup, ${clients} connections`, baseline));
        results.push(line(`raw SQL select private.voice_route(…), ${clients} connections`, statement));
        results.push(line(`GET /voice/route, local functions server (npm start), ${clients} clients`, local));
        results.push(line(`GET /voice/route, the voice function alone (Deno.serve, as deployed), ${clients} clients`, alone));
        results.push(line(`GET /route, a bare handler: Deno.serve + pg, the same statement unbatched, ${clients} clients`, bare));
        results.push(
          `  /route throughput ÷ raw SQL lookup: ${(rate(local) / rate(baseline)).toFixed(2)}× (local server), ` +
            `${(rate(alone) / rate(baseline)).toFixed(2)}× (function alone); ÷ its own statement as raw SQL: ` +
            `${(rate(local) / rate(statement)).toFixed(2)}×, ${(rate(alone) / rate(statement)).toFixed(2)}×`,
        );
        results.push(
          `  the bare handler ÷ raw SQL lookup: ${(rate(bare) / rate(baseline)).toFixed(2)}×; ` +
            `the function alone ÷ the bare handler: ${(rate(alone) / rate(bare)).toFixed(2)}×`,
        );
      } finally {
        await raw.end();
      }
    }, once);
  }

  bench('knowledge-base search over 100,000 chunks of one tenant', async () => {
    const words = ['refund', 'parking', 'invoice', 'warranty', 'password', 'holiday'];
    const raw = postgres(db.adminUrl, { max: 8, onnotice: () => {} });
    try {
      // One client (the search's own latency) and eight (its latency while queued behind
      // others on two cores); a narrow word, then one in a tenth of the chunks, whose
      // 10,000 matches are every one ranked.
      const narrow = (i: number) => raw`select * from private.kb_search_in_tenant(${acme}, ${`${words[i % 6]}${i % 997}`}, null, 5)`;
      const broad = (i: number) => raw`select * from private.kb_search_in_tenant(${acme}, ${`season${i % 10}`}, null, 5)`;
      // The same-run baseline: the search as it was before
      // 20261202170100_kb_search_late_rows.sql (its full-text part, verbatim: it ranks and
      // sorts the matches' whole rows and joins each to its document before the limit),
      // installed in this bench's own database. Each is measured with the other warm.
      await db.sql`create schema if not exists bench`;
      await db.sql`
        create or replace function bench.kb_search_whole_rows(p_tenant_id uuid, p_query text, p_knowledge_base_id uuid, p_limit int)
        returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
        language plpgsql stable set search_path = '' as $$
        declare
          v_limit int := least(greatest(coalesce(p_limit, 5), 1), 50);
          qs tsquery := websearch_to_tsquery('simple'::regconfig, coalesce(p_query, ''));
          qe tsquery := websearch_to_tsquery('english'::regconfig, coalesce(p_query, ''));
        begin
          return query
            select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content,
                   greatest(ts_rank(k.search_english, qe), ts_rank(k.search_simple, qs))::real as score
            from public.kb_chunks k
            join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
            where k.tenant_id = p_tenant_id
              and (p_knowledge_base_id is null or k.knowledge_base_id = p_knowledge_base_id)
              and (k.search_english @@ qe or k.search_simple @@ qs)
            order by score desc, k.id
            limit v_limit;
        end;
        $$`;
      // And the search before 20261203150000_kb_postings.sql (its full-text part): every
      // match ranked through GIN, (id, score) alone, the rows read after the limit.
      await db.sql`
        create or replace function bench.kb_search_every_match(p_tenant_id uuid, p_query text, p_knowledge_base_id uuid, p_limit int)
        returns table (chunk_id uuid, document_id uuid, knowledge_base_id uuid, title text, ordinal int, content text, score real)
        language plpgsql stable set search_path = '' set plan_cache_mode = force_custom_plan as $$
        declare
          v_limit int := least(greatest(coalesce(p_limit, 5), 1), 50);
          qs tsquery := websearch_to_tsquery('simple'::regconfig, coalesce(p_query, ''));
          qe tsquery := websearch_to_tsquery('english'::regconfig, coalesce(p_query, ''));
        begin
          return query
            with best as materialized (
              select m.id, greatest(ts_rank(m.search_english, qe), ts_rank(m.search_simple, qs))::real as score
              from public.kb_chunks m
              where m.tenant_id = p_tenant_id
                and (p_knowledge_base_id is null or m.knowledge_base_id = p_knowledge_base_id)
                and (m.search_english @@ qe or m.search_simple @@ qs)
              order by score desc, m.id
              limit v_limit
            )
            select k.id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content, b.score
            from best b
            join public.kb_chunks k on k.tenant_id = p_tenant_id and k.id = b.id
            join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id
            order by b.score desc, k.id;
        end;
        $$`;
      const broadWholeRows = (i: number) => raw`select * from bench.kb_search_whole_rows(${acme}, ${`season${i % 10}`}, null, 5)`;
      const broadEveryMatch = (i: number) => raw`select * from bench.kb_search_every_match(${acme}, ${`season${i % 10}`}, null, 5)`;
      await closedLoop(1, async (i) => void await broad(i));
      results.push(line(
        'baseline: the search before its late rows, 1 connection (a word in 10% of the chunks, 10,000 matches)',
        await closedLoop(1, async (i) => void await broadWholeRows(i)),
      ));
      results.push(line(
        'baseline: the search before its postings (every match ranked), 1 connection (a word in 10% of the chunks, 10,000 matches)',
        await closedLoop(1, async (i) => void await broadEveryMatch(i)),
      ));
      // Queries of several words: two narrow words together (all of a chunk's words share
      // its number: ~100 chunks have both) through GIN; two broad words OR'd (websearch's
      // `or`) from the postings and the chunks with both (20261203270000): none of them
      // (20,000 matches), then ~1,430 (a season and a tier word: ~22,860 matches), each
      // beside every match ranked through GIN, as before that migration.
      const pair = (i: number) =>
        raw`select * from private.kb_search_in_tenant(${acme}, ${`${words[i % 6]}${i % 997} ${words[(i + 1) % 6]}${i % 997}`}, null, 5)`;
      const disjoint = (i: number) => `season${i % 10} or season${(i + 1) % 10}`;
      const overlapping = (i: number) => `season${i % 10} or tier${i % 7}`;
      results.push(line('kb search in SQL, 1 connection (two words, both in the same ~100 chunks)', await closedLoop(1, async (i) => void await pair(i))));
      for (const [label, query] of [['20,000 matches, none with both', disjoint], ['~22,860 matches, ~1,430 with both', overlapping]] as const) {
        results.push(line(
          `kb search in SQL, 1 connection (two broad words OR'd, ${label})`,
          await closedLoop(1, async (i) => void await raw`select * from private.kb_search_in_tenant(${acme}, ${query(i)}, null, 5)`),
        ));
        results.push(line(
          `baseline: every match ranked, 1 connection (two broad words OR'd, ${label})`,
          await closedLoop(1, async (i) => void await raw`select * from bench.kb_search_every_match(${acme}, ${query(i)}, null, 5)`),
        ));
      }
      for (const clients of [1, 8]) {
        results.push(line(
          `kb search in SQL, ${clients} connection(s) (a word in 0.1% of the chunks, ~100 matches)`,
          await closedLoop(clients, async (i) => void await narrow(i)),
        ));
        results.push(line(
          `kb search in SQL, ${clients} connection(s) (a word in 10% of the chunks, 10,000 matches)`,
          await closedLoop(clients, async (i) => void await broad(i)),
        ));
      }
      // What the postings cost: their size, and a document's upload and delete (25 chunks
      // of ~80 words) with their trigger and, same run, without it.
      const [size] = await db.sql`
        select (select count(*) from private.kb_postings)::int as n,
               pg_total_relation_size('private.kb_postings') / 1048576 as mb,
               pg_total_relation_size('public.kb_chunks') / 1048576 as chunks_mb`;
      results.push(`[voice bench] postings: ${size.n} rows, ${size.mb} MB with their index, for chunks of ${size.chunks_mb} MB`);
      const [{ kb }] = await db.sql`select id as kb from public.voice_knowledge_bases where tenant_id = ${acme} limit 1`;
      const text = Array.from({ length: 50 }, (_, p) => Array.from({ length: 40 }, (_, w) => `${words[(p + w) % 6]}${(p * 40 + w) % 997}`).join(' '))
        .join('\n\n');
      const upload = async () => {
        const [{ id }] = await raw`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
          values (${acme}, ${kb}, 'Upload', ${text}) returning id`;
        await raw`delete from public.kb_documents where tenant_id = ${acme} and id = ${id}`;
      };
      // Twice each, in turns (the second round reported): neither runs on a table only the
      // other has churned.
      const uploads: Record<string, Outcome> = {};
      for (const round of [1, 2]) {
        for (const postings of [true, false]) {
          if (!postings) await db.sql`alter table public.kb_chunks disable trigger postings`;
          try {
            const o = await closedLoop(1, upload);
            if (round === 2) uploads[String(postings)] = o;
          } finally {
            if (!postings) await db.sql`alter table public.kb_chunks enable always trigger postings`;
          }
        }
      }
      results.push(line('a 25-chunk document (50 paragraphs of 40 words) uploaded and deleted, 1 connection', uploads.true, 'documents/s'));
      results.push(line('baseline: the same without postings, 1 connection', uploads.false, 'documents/s'));
      const http = await closedLoop(8, async (i, c) => {
        const res = await request(server.url, c, `/functions/v1/voice/knowledge/search?tenant_id=${acme}&knowledge_base_id=${kb}&q=${words[i % 6]}${i % 997}`, {
          headers: { authorization: `Bearer ${service}` },
        });
        if (res.status !== 200) throw new Error(`status ${res.status}`);
      }, server.pid);
      results.push(line('GET /voice/knowledge/search over HTTP, 8 clients', http));
    } finally {
      await raw.end();
    }
  }, once);

  bench('transcript segment appends, 50 concurrent calls', async () => {
    const agents = await db.sql`select tenant_id, id from public.voice_agents where tenant_id = ${acme} limit 1`;
    // The voice function alone (as deployed), and the local functions server (npm start).
    const targets = {
      'the voice function alone': { url: deployed.url, path: '/voice/calls/events', pid: deployed.pid },
      'local functions server': { url: server.url, path: '/functions/v1/voice/calls/events', pid: server.pid },
    };
    type Target = keyof typeof targets;
    const post = (target: Target, body: unknown, client = 0) =>
      request(targets[target].url, client, targets[target].path, {
        method: 'POST',
        headers: { authorization: `Bearer ${service}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    // One segment per event (on both servers), then batches of 10 and 50 (what a provider
    // sends when it flushes its recogniser's output every second or so): each on 50 calls
    // of its own, 50 clients, client c appending to call c in sequence.
    const runs: [Target, number][] = [
      ['the voice function alone', 1],
      ['local functions server', 1],
      ['the voice function alone', 10],
      ['the voice function alone', 50],
    ];
    for (const [target, perEvent] of runs) {
      const calls = Array.from({ length: 50 }, (_, i) => `bench-call-${target.length}-${perEvent}-${i}`);
      for (const id of calls) {
        await post(target, { type: 'call.started', tenant_id: acme, agent_id: agents[0].id, provider_call_id: id, answered: true });
      }
      const seqs = calls.map(() => 0);
      const appended = await closedLoop(50, async (_i, c) => {
        const first = seqs[c];
        seqs[c] += perEvent;
        const res = await post(target, {
          type: 'transcript.segments',
          tenant_id: acme,
          provider_call_id: calls[c],
          segments: Array.from({ length: perEvent }, (_, k) => {
            const seq = first + k;
            return { seq, speaker: seq % 2 ? 'agent' : 'customer', content: `segment ${seq} of the call`, offset_ms: seq * 800 };
          }),
        }, c);
        if (res.status !== 200) throw new Error(`status ${res.status}`);
        const out = JSON.parse(res.text) as { segments_added: number };
        if (out.segments_added !== perEvent) throw new Error(`added ${out.segments_added}`);
      }, targets[target].pid);
      const [{ n }] = await db.sql`
        select count(*)::int as n from public.voice_call_segments s join public.voice_calls c on c.tenant_id = s.tenant_id and c.id = s.call_id
        where c.tenant_id = ${acme} and c.provider_call_id like ${`bench-call-${target.length}-${perEvent}-%`}`;
      const segments = { ...appended, n: appended.n * perEvent };
      results.push(
        line(`segment appends over HTTP, ${target}, ${perEvent} segment(s) per event, 50 calls`, segments, 'segments/s') +
          ` (${(appended.n / appended.seconds).toFixed(0)} events/s); stored ${n}`,
      );
    }
  }, once);
  // The Edge Functions' limit that matters for a big import is CPU time per request (2 s
  // on the hosted platform; waiting on the database does not count), so this reads the
  // CPU the voice function alone (as deployed) used for the request.
  bench('customers import: 50,000 rows of CSV in one request', async () => {
    const token = await supabaseToken(users.acmeAgent, { tenantId: acme });
    const rows = Array.from({ length: 50_000 }, (_, i) =>
      `+1332${3_000_000 + i},"Imported ${i}, bench",i${i}@example.com,,bulk;bench,${i % 2 ? 'yes' : ''},no`);
    const csv = `phone,name,email,notes,tags,recording_consent,marketing_consent\n${rows.join('\n')}\n`;
    for (const pass of ['new customers', 'the same file again (nothing changes)']) {
      const cpu = processCpuMs(deployed.pid);
      const js = processCpuMs(deployed.pid, true);
      const t = performance.now();
      const res = await request(deployed.url, 0, '/voice/customers/import', {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'text/csv' },
        body: csv,
      });
      const ms = performance.now() - t;
      const used = cpu === undefined ? undefined : (processCpuMs(deployed.pid) ?? cpu) - cpu;
      const usedJs = js === undefined ? undefined : (processCpuMs(deployed.pid, true) ?? js) - js;
      if (res.status !== 200) throw new Error(`import: status ${res.status} ${res.text.slice(0, 300)}`);
      results.push(
        `customers import, 50,000 rows (${(csv.length / 1e6).toFixed(1)} MB), ${pass}: ${(ms / 1000).toFixed(2)} s, ` +
          `${(50_000 / (ms / 1000)).toFixed(0)} rows/s` +
          (used === undefined || usedJs === undefined
            ? ''
            : `, function CPU ${(used / 1000).toFixed(2)} s, of which its JavaScript thread ${(usedJs / 1000).toFixed(2)} s ` +
              '(hosted limit 2 s)') +
          `; ${res.text}`,
      );
    }
  }, once);
});
