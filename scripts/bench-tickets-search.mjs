// `npm run bench:search`: relevance search over one tenant's 1,000,000 tickets (issue 12),
// the ranked candidate set GET /tickets?q=… uses now against the exact ranking it used
// before, in the same run, on its own embedded PostgreSQL and functions server (started
// in a temp folder, removed at the end, on failure and on Ctrl-C too).
//
// Per query of a fixed set of 22 (QUERIES), REPS times each, one client, back to back:
//   candidates  the route's first page as it runs it now: the caller's newest 1,000
//               matches (private.ticket_search_candidates), ranked under RLS, top 20;
//   exact       the previous first page: every match ranked under RLS, top 20;
// both as acme's agent in the request transaction shape (begin; role + claims; the
// statement; commit), and the candidates path also over HTTP (GET /functions/v1/tickets
// ?q=…&limit=20, the agent's token). Quality: per query, the share of the exact top 10
// that the candidates' top 10 holds; its mean over the queries.
//
// Data: the seed, and acme's tickets from scripts/bench-data.mjs loadAcmeTickets (bulk,
// triggers off): eight subjects in the titles (each in one ticket of eight: "printer"
// matches 125,000 of 1,000,000), four verbs in the descriptions, other subjects and
// repeats in one description of seven, tags.
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadAcmeTickets } from './bench-data.mjs';
import { benchRun } from './bench-run.mjs';
import { parseCommandLine, usageExit } from './cli.mjs';
import { freePort, migrate, root, runSqlFile, seedFile, spawnFunctionsServer, startEmbeddedPostgres } from './stack.mjs';
import { apiKey, issuers, LOCAL_ISSUER_BASE, mintToken } from './tokens.mjs';

const usage = `usage: node scripts/bench-tickets-search.mjs [options]   (npm run bench:search -- [options])

Relevance search over one tenant's tickets: the ranked candidate set (the route now)
against the exact ranking (the route before), p50/p99 and top-10 overlap over a fixed
set of 22 queries, on its own embedded PostgreSQL and functions server (temp folder,
removed at the end). Prints a table and writes it as JSON.

options:
  --tickets <n>    acme's tickets (default 1000000)
  --reps <n>       repetitions of each query per path (default 7)
  --quick          20,000 tickets, 2 repetitions (proves the command works)
  --out <file>     where to write the JSON (default .bench/search-<timestamp>.json)
  -h, --help       show this help`;

const { values: args } = parseCommandLine(usage, {
  options: {
    quick: { type: 'boolean', default: false },
    tickets: { type: 'string' },
    reps: { type: 'string' },
    out: { type: 'string' },
  },
});
if (args.out === '') usageExit(usage, '--out needs a file name');
const positive = (v, name) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) usageExit(usage, `${name} needs a positive whole number`);
  return n;
};
const TICKETS = args.tickets !== undefined ? positive(args.tickets, '--tickets') : args.quick ? 20_000 : 1_000_000;
const REPS = args.reps !== undefined ? positive(args.reps, '--reps') : args.quick ? 2 : 7;
const PAGE = 20;

// The seed's tenant, team and people (tests/helpers/seed.ts).
const ACME = '10000000-0000-4000-8000-000000000001';
const ACME_TEAM = '20000000-0000-4000-8000-000000000001';
const ACME_AGENT = '00000000-0000-4000-8000-000000000012';
const ACME_USER = '00000000-0000-4000-8000-000000000013';

/** The fixed query set: single subjects and verbs (one ticket in eight or four), tags,
 *  pairs that meet often, rarely or never, phrases, or, negation, a word in every ticket. */
const QUERIES = [
  'printer', 'vpn', 'invoice', 'login', 'laptop', 'email', 'phone', 'network',
  'printing', 'connecting', 'billing', 'signing in',
  'vip', 'printer update', 'vpn keeps failing', 'invoice or laptop', '"email issue"', 'phone -vip',
  'network again', 'laptop vip', 'printer network', 'customer problem',
];

const COLUMNS = 'id, number, title, status, priority, assigned_to, created_at';
// The route's first page (functions/tickets/routes/tickets.ts, relevancePage), the list
// filters at their defaults: candidates read again under RLS, ranked.
const CANDIDATES_SQL = `
  with c as materialized (
    select id, created_at from private.ticket_search_candidates($1, $2, false, 1000)
  ), edge as (
    select created_at as edge_at, id as edge_id, (select count(*)::int from c) as candidates
    from c order by created_at, id limit 1
  )
  select ${COLUMNS}, edge.candidates
  from public.tickets, edge
  where tenant_id = $1 and deleted_at is null and search @@ websearch_to_tsquery('english', $2)
    and id in (select id from c)
  order by ts_rank(search, websearch_to_tsquery('english', $2))::double precision desc, created_at desc, id desc
  limit ${PAGE + 1}`;
// The first page as the route ran it before: every match, ranked (the same order).
const EXACT_SQL = `
  select ${COLUMNS}
  from public.tickets
  where tenant_id = $1 and deleted_at is null and search @@ websearch_to_tsquery('english', $2)
  order by ts_rank(search, websearch_to_tsquery('english', $2))::double precision desc, created_at desc, id desc
  limit ${PAGE + 1}`;

const log = (msg) => console.log(`\x1b[2m[bench-search]\x1b[0m ${msg}`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------- what it started, and stopping it

const bench = benchRun('bench-search');
const { started, cleanUp, pool } = bench;

// ---------------------------------------------------------------- measuring

/** Nearest-rank percentile of sorted latencies (ms). */
const percentile = (sorted, p) => (sorted.length ? sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] : NaN);
const stats = (ms) => {
  const sorted = Float64Array.from(ms).sort();
  return { n: sorted.length, p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99) };
};

async function timed(fn) {
  const t = performance.now();
  const out = await fn();
  return { ms: performance.now() - t, out };
}

async function main() {
  const runStarted = Date.now();
  const out = path.resolve(args.out ?? path.join(root, '.bench', `search-${new Date().toISOString().replace(/[:.]/g, '-')}.json`));

  started.dir = await mkdtemp(path.join(os.tmpdir(), 'platform-bench-search-'));
  const port = await freePort();
  log(`embedded PostgreSQL on ${port}, data in ${started.dir} (fsync off, as the tests run it)…`);
  const db = await startEmbeddedPostgres({ dataDir: path.join(started.dir, 'data'), port, fast: true, ownedRoot: started.dir });
  started.pg = db.pg;
  log('bootstrap, migrations (supabase db push) and seed…');
  await migrate(db.url, { adminUrl: db.adminUrl });
  await runSqlFile(db.url, seedFile);

  log(`${TICKETS.toLocaleString('en-US')} tickets for acme (bulk, triggers off; loadAcmeTickets)…`);
  const admin = pool(db.adminUrl, 1);
  const t0 = Date.now();
  await loadAcmeTickets(admin, { tickets: TICKETS, tenantId: ACME, teamId: ACME_TEAM, userId: ACME_USER, agentId: ACME_AGENT });
  const loadMs = Date.now() - t0;
  log(`loaded in ${seconds(loadMs)}`);
  const matches = {};
  for (const q of QUERIES) {
    const [{ n }] = await admin`
      select count(*)::int as n from public.tickets
      where tenant_id = ${ACME} and deleted_at is null and search @@ websearch_to_tsquery('english', ${q})`;
    matches[q] = n;
  }

  // The functions server, configured as the tests configure it, with a secret of this run.
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('hex');
  const httpPort = await freePort();
  const origin = `http://127.0.0.1:${httpPort}`;
  started.server = spawnFunctionsServer({
    ...process.env,
    PLATFORM_LOCAL_STACK: '1',
    PORT: String(httpPort),
    PLATFORM_DATA_DIR: started.dir,
    LOCAL_STORAGE_DIR: path.join(started.dir, 'storage'),
    LOCAL_STORAGE_PUBLIC_URL: origin,
    STORAGE_BACKEND: 'local',
    SUPABASE_DB_URL: db.url,
    SUPABASE_URL: LOCAL_ISSUER_BASE,
    SUPABASE_AUTH_ISSUER: issuers.supabase,
    SUPABASE_JWT_SECRET: secret,
    SUPABASE_JWKS_URL: 'http://127.0.0.1:1/unused-jwks.json',
    SUPABASE_ANON_KEY: await apiKey('anon', secret),
    SUPABASE_SERVICE_ROLE_KEY: await apiKey('service_role', secret),
    PROVISIONING_ENCRYPTION_KEY: Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64'),
  });
  const serverStart = setTimeout(() => started.server.child.kill('SIGTERM'), 60_000);
  await started.server.ready;
  clearTimeout(serverStart);
  log(`functions server at ${origin}`);

  const token = await mintToken({ dbUrl: db.url, email: 'agent@acme.test', tenant: 'acme', secret, ttl: '2h' });
  const claimsJson = JSON.stringify({ ...JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()), role: 'authenticated' });
  const sql = pool(db.url, 1);
  const rls = (text, q) =>
    sql.begin(async (tx) => {
      const [, rows] = await Promise.all([
        tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claimsJson}, true)`,
        tx.unsafe(text, [ACME, q]),
      ]);
      return rows;
    });
  const http = async (q) => {
    const res = await fetch(`${origin}/functions/v1/tickets?q=${encodeURIComponent(q)}&limit=${PAGE}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`GET /tickets?q=${q}: ${res.status} ${JSON.stringify(body)}`);
    return body.items;
  };

  // Quality first (one run of each, which warms the caches too), then REPS timed rounds,
  // the paths interleaved per query so that load on the machine hits both alike.
  log(`${QUERIES.length} queries: top-10 overlap, then ${REPS} timed rounds of each path…`);
  const perQuery = [];
  for (const q of QUERIES) {
    const exact = (await rls(EXACT_SQL, q)).map((r) => r.id);
    const ranked = (await rls(CANDIDATES_SQL, q)).map((r) => r.id);
    const viaHttp = (await http(q)).map((t) => t.id);
    const top = exact.slice(0, 10);
    const mine = new Set(ranked.slice(0, 10));
    const overlap = top.length ? top.filter((id) => mine.has(id)).length / top.length : 1;
    if (viaHttp.slice(0, 10).join() !== ranked.slice(0, 10).join()) {
      throw new Error(`"${q}": the route's first page differs from CANDIDATES_SQL: keep them the same`);
    }
    perQuery.push({ query: q, matches: matches[q], overlap, candidatesMs: [], exactMs: [], httpMs: [] });
  }
  for (let rep = 0; rep < REPS && !bench.interrupted; rep++) {
    for (const row of perQuery) {
      row.candidatesMs.push((await timed(() => rls(CANDIDATES_SQL, row.query))).ms);
      row.exactMs.push((await timed(() => rls(EXACT_SQL, row.query))).ms);
      row.httpMs.push((await timed(() => http(row.query))).ms);
    }
    log(`round ${rep + 1}/${REPS} done`);
  }

  const all = (key) => stats(perQuery.flatMap((r) => r[key]));
  const overall = { candidates: all('candidatesMs'), exact: all('exactMs'), http: all('httpMs') };
  const meanOverlap = perQuery.reduce((s, r) => s + r.overlap, 0) / perQuery.length;

  const rows = [['query', 'matches', 'cand p50', 'exact p50', 'http p50', 'top-10 overlap']];
  for (const r of perQuery) {
    rows.push([r.query, r.matches.toLocaleString('en-US'), stats(r.candidatesMs).p50Ms.toFixed(1),
      stats(r.exactMs).p50Ms.toFixed(1), stats(r.httpMs).p50Ms.toFixed(1), r.overlap.toFixed(2)]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(`\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows.slice(1)) console.log(line(row));
  console.log(`\n${TICKETS.toLocaleString('en-US')} tickets, ${QUERIES.length} queries × ${REPS}, one client, ms:`);
  for (const [name, s] of Object.entries(overall)) {
    console.log(`  ${name.padEnd(10)} p50 ${s.p50Ms.toFixed(1).padStart(7)}  p99 ${s.p99Ms.toFixed(1).padStart(7)}  (${s.n} runs)`);
  }
  console.log(`  exact ÷ candidates at p50: ×${(overall.exact.p50Ms / overall.candidates.p50Ms).toFixed(1)}`);
  console.log(`  mean top-10 overlap with the exact ranking: ${meanOverlap.toFixed(3)}` +
    ` (lowest: ${Math.min(...perQuery.map((r) => r.overlap)).toFixed(2)})`);

  const cpus = os.cpus();
  const summary = {
    date: new Date().toISOString(),
    machine: { cpus: cpus.length, cpuModel: cpus[0]?.model, loadavg: os.loadavg(), node: process.version },
    tickets: TICKETS,
    reps: REPS,
    page: PAGE,
    loadSeconds: loadMs / 1000,
    overall,
    meanOverlap,
    queries: perQuery.map((r) => ({
      query: r.query,
      matches: r.matches,
      overlap: r.overlap,
      candidates: stats(r.candidatesMs),
      exact: stats(r.exactMs),
      http: stats(r.httpMs),
    })),
    totalSeconds: (Date.now() - runStarted) / 1000,
    // What this run started and removed, so a caller can check nothing outlived it.
    started: { tempDir: started.dir, postgresPid: started.pg?.process?.pid, serverPid: started.server.child.pid },
  };
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(summary, null, 2) + '\n');
  log(`done in ${seconds(Date.now() - runStarted)}`);
  console.log(out);
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  if (bench.interrupted) await new Promise(() => {});
  console.error(`[bench-search] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  if (started.server) console.error(`[bench-search] functions server output:\n${started.server.output().slice(-2000)}`);
} finally {
  await cleanUp();
}
process.exit(code);
