// `npm run bench:load` (and the second stage of `npm run bench`): the functions over
// real HTTP under concurrency, each against its database baseline measured at the same
// concurrency in the same run. Starts everything it needs in a temp folder — an embedded
// PostgreSQL (migrated and seeded as the tests do, plus bench data), the Deno functions
// server — and removes it all at the end, on failure and on Ctrl-C too.
//
// Paths, each at every concurrency C (C connections in closed loops):
//   raw                    the teams query as the superuser, no transaction, no RLS
//   bare RLS transaction   begin; role + claims (set_config); the teams query; commit — as
//                          postgres, the shape PostgREST (and shared/db's asUser) uses
//   HTTP GET teams         GET /functions/v1/tenants/{acme}/teams, the agent's token
//   HTTP GET open tickets  GET /functions/v1/tickets?status=open&limit=20
//   raw ticket insert      the bare RLS transaction around one INSERT into public.tickets
//                          (every trigger: numbering, SLA, timeline, audit, stats, outbox)
//   HTTP POST ticket       POST /functions/v1/tickets {"title": …}
// The database paths use postgres.js (prepared statements, its default) on C connections;
// the HTTP paths autocannon with C connections, against a server whose own database pool
// is DB_POOL_MAX (4 unless set), as deployed.
//
// Data: the seed, 200 tenants × 50 members and 5 teams each, and acme's tickets (200,000;
// --quick 2,000). The first 1,000 (200) of those go in with every trigger on, timed; the
// rest are bulk-loaded with the tickets table's triggers disabled — see loadBenchData.
import autocannon from 'autocannon';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadTenantsAndTeams } from './bench-data.mjs';
import { benchRun } from './bench-run.mjs';
import { parseCommandLine, usageExit } from './cli.mjs';
import { ADMIN_USER, freePort, migrate, root, runSqlFile, seedFile, spawnFunctionsServer, startEmbeddedPostgres } from './stack.mjs';
import { apiKey, issuers, LOCAL_ISSUER_BASE, mintToken } from './tokens.mjs';

const usage = `usage: node scripts/bench-load.mjs [options]   (npm run bench:load -- [options])

Measures the functions over HTTP under concurrency (autocannon) against their database
baselines at the same concurrency, on its own embedded PostgreSQL and functions server
(started in a temp folder, removed at the end). Prints a table and writes it as JSON.

options:
  --quick          small scale: 2,000 tickets, concurrency 4, 1-second runs
  --out <file>     where to write the JSON (default .bench/load-<timestamp>.json)
  -h, --help       show this help`;

const { values: args } = parseCommandLine(usage, {
  options: { quick: { type: 'boolean', default: false }, out: { type: 'string' } },
});
if (args.out === '') usageExit(usage, '--out needs a file name');

const quick = args.quick;
const TICKETS = quick ? 2_000 : 200_000;
const CONCURRENCIES = quick ? [4] : [16, 64];
const SECONDS = quick ? 1 : 10;
const WARMUP_SECONDS = quick ? 0.5 : 2;
/** Tickets inserted with every trigger on (timed); the rest are bulk-loaded without. */
const TRIGGERED_SAMPLE = quick ? 200 : 1_000;

// The seed's tenant, team and people (tests/helpers/seed.ts).
const ACME = '10000000-0000-4000-8000-000000000001';
const ACME_TEAM = '20000000-0000-4000-8000-000000000001';
const ACME_AGENT = '00000000-0000-4000-8000-000000000012';
const ACME_USER = '00000000-0000-4000-8000-000000000013';

const TEAMS_QUERY = 'select id, name, department from public.teams where tenant_id = $1 order by lower(name)';

const log = (msg) => console.log(`\x1b[2m[bench-load]\x1b[0m ${msg}`);
const seconds = (ms) => `${(ms / 1000).toFixed(1)} s`;

// ---------------------------------------------------------------- what it started, and stopping it

const bench = benchRun('bench-load');
const { started, cleanUp } = bench;

/** A pool of this run, with an early end of its own (a measurement's pools close when it
 *  is done, not at the end of the run). */
function pool(url, max) {
  const sql = bench.pool(url, max);
  return {
    sql,
    end: async () => {
      started.pools.delete(sql);
      await sql.end({ timeout: 5 });
    },
  };
}

// ---------------------------------------------------------------- measuring

/** Nearest-rank percentile of sorted latencies (ms). */
const percentile = (sorted, p) => (sorted.length ? sorted[Math.max(0, Math.ceil(p * sorted.length) - 1)] : NaN);

/** `concurrency` workers each run `op` back to back for `durationS` seconds. A worker
 *  stops at its first error (counted, the first one kept to say why). */
async function closedLoop(concurrency, durationS, op) {
  const latencies = [];
  let errors = 0;
  let firstError;
  const t0 = performance.now();
  const end = t0 + durationS * 1000;
  await Promise.all(Array.from({ length: concurrency }, async (_, worker) => {
    while (!bench.interrupted && performance.now() < end) {
      const t = performance.now();
      try {
        await op(worker);
      } catch (err) {
        errors++;
        firstError ??= err;
        return;
      }
      latencies.push(performance.now() - t);
    }
  }));
  const elapsedS = (performance.now() - t0) / 1000;
  const sorted = Float64Array.from(latencies).sort();
  return {
    requests: latencies.length,
    durationS: elapsedS,
    reqPerS: latencies.length / elapsedS,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    non2xx: 0,
    errors,
    why: firstError ? `${firstError.code ? `${firstError.code}: ` : ''}${firstError.message}` : undefined,
  };
}

/** Runs a measurement so that cleanUp can wait for it; after a signal, goes no further
 *  (the signal handler cleans up and exits). */
async function tracked(promise) {
  started.running = promise;
  const out = await promise;
  if (bench.interrupted) await new Promise(() => {});
  return out;
}

async function measureDb(name, concurrency, op) {
  const warm = await tracked(closedLoop(concurrency, WARMUP_SECONDS, op));
  const run = warm.errors ? warm : await tracked(closedLoop(concurrency, SECONDS, op));
  return { path: name, kind: 'database', concurrency, ...run };
}

/** One request as autocannon sends it, to show what a non-2xx answer said. */
async function sampleAnswer(request) {
  try {
    const res = await fetch(request.url, { method: request.method, headers: request.headers, body: request.body });
    return `${res.status}: ${(await res.text()).slice(0, 300)}`;
  } catch (err) {
    return `request failed: ${err.message}`;
  }
}

async function measureHttp(name, concurrency, request) {
  // autocannon's own histogram keeps whole milliseconds: percentiles come from the
  // response times it reports per answer (hrtime, fractional ms), as for the database.
  const cannon = async (duration) => {
    const latencies = [];
    const instance = autocannon({ ...request, connections: concurrency, duration });
    const stopOnSignal = setInterval(() => bench.interrupted && instance.stop(), 100);
    instance.on('response', (_client, status, _bytes, ms) => {
      if (status >= 200 && status < 300) latencies.push(ms);
    });
    try {
      return { result: await tracked(instance), latencies: Float64Array.from(latencies).sort() };
    } finally {
      clearInterval(stopOnSignal);
    }
  };
  const warm = await cannon(WARMUP_SECONDS);
  const { result: run, latencies } = warm.result.non2xx || warm.result.errors ? warm : await cannon(SECONDS);
  const bad = run.non2xx || run.errors;
  return {
    path: name,
    kind: 'http',
    concurrency,
    requests: run.requests.total,
    durationS: run.duration,
    reqPerS: latencies.length / run.duration,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    non2xx: run.non2xx,
    errors: run.errors,
    timeouts: run.timeouts,
    statusCodes: Object.fromEntries(Object.entries(run.statusCodeStats ?? {}).map(([code, s]) => [code, s.count])),
    why: bad
      ? `${run.non2xx} non-2xx answers, ${run.errors} errors (${run.timeouts} timeouts); status codes ` +
        `${JSON.stringify(run.statusCodeStats ?? {})}; a sample answer: ${await sampleAnswer(request)}`
      : undefined,
  };
}

// ---------------------------------------------------------------- the run

async function loadBenchData(adminSql) {
  // As tests/bench/request-path.bench.ts: 200 tenants × 50 members, 5 teams each.
  await loadTenantsAndTeams(adminSql);

  // acme's tickets. One INSERT … SELECT generate_series with every trigger on costs ~2 ms
  // a ticket and more as it grows (on this 2-core machine 500 tickets took 1.0 s, 2,000
  // 4.3 s, 4,000 10.1 s: 200,000 would take well over 8 minutes), most likely because
  // each ticket updates the same counter and statistics rows again inside the one
  // transaction (without the statistics trigger 2,000 took 1.8 s instead of 3.4). So the
  // oldest TRIGGERED_SAMPLE tickets go in that way, timed and reported, and the rest are
  // bulk-loaded with the table's user triggers disabled (in the same transaction that
  // re-enables them), numbered from the counter, statuses and their timestamps set
  // directly, the counter and the statistics rebuilt after — as tests/bench/tickets.bench.ts
  // does. The bulk rows have no timeline, audit or outbox rows; no path here reads them.
  const sample = Math.min(TRIGGERED_SAMPLE, TICKETS);
  const t0 = Date.now();
  await adminSql`
    insert into public.tickets (tenant_id, title, description, priority, department, team_id, created_by,
                                assigned_to, created_at)
    select ${ACME}, 'Bench triggered issue ' || g, 'Filed with every trigger on',
      (array['low', 'medium', 'high', 'urgent'])[1 + g % 4], 'support', ${ACME_TEAM}, ${ACME_USER},
      case when g % 3 = 0 then ${ACME_AGENT}::uuid end,
      now() - make_interval(secs => (${TICKETS - sample}::int + g) * 30)
    from generate_series(1, ${sample}) g`;
  const triggeredMs = Date.now() - t0;
  const bulk = TICKETS - sample;
  await adminSql.begin(async (tx) => {
    await tx`alter table public.tickets disable trigger user`;
    await tx`
      insert into public.tickets (tenant_id, number, title, description, status, priority, department, team_id,
                                  created_by, assigned_to, created_at, first_response_at, resolved_at, closed_at, tags)
      select ${ACME}, c.last_number + g,
        'Bench ' || (array['printer', 'VPN', 'invoice', 'login', 'laptop', 'email', 'phone', 'network'])[1 + g % 8]
          || ' issue ' || g,
        'Customer reports a problem with ' || (array['printing', 'connecting', 'billing', 'signing in'])[1 + g % 4],
        (array['open', 'pending', 'escalated', 'resolved', 'closed'])[1 + g % 5],
        (array['low', 'medium', 'high', 'urgent'])[1 + g % 4],
        'support', ${ACME_TEAM}, ${ACME_USER},
        case when g % 3 = 0 then ${ACME_AGENT}::uuid end,
        now() - make_interval(secs => g * 30),
        case when g % 5 <> 0 then now() - make_interval(secs => g * 30 - 600) end,
        case when g % 5 >= 3 then now() - make_interval(secs => g * 30 - 3600) end,
        case when g % 5 = 4 then now() - make_interval(secs => g * 30 - 7200) end,
        case when g % 10 = 0 then array['vip'] else '{}' end
      from generate_series(1, ${bulk}) g
      cross join (select coalesce((select last_number from private.ticket_counters where tenant_id = ${ACME}), 0)
                  as last_number) c`;
    await tx`
      insert into private.ticket_counters (tenant_id, last_number)
      select ${ACME}, coalesce(max(number), 0) from public.tickets where tenant_id = ${ACME}
      on conflict (tenant_id) do update set last_number = excluded.last_number`;
    await tx`alter table public.tickets enable trigger user`;
    await tx`select private.rebuild_ticket_stats(${ACME})`;
  });
  const bulkMs = Date.now() - t0 - triggeredMs;
  // The load outruns acme's plan (rate limits, tickets this month): limits raised far
  // out of reach, so every write is still counted (its cost measured) and none refused.
  await adminSql`
    insert into private.tenant_plan_overrides (tenant_id, limits)
    values (${ACME}, '{"requests_per_minute": 1000000000, "requests_per_minute_per_caller": 1000000000, "tickets_per_month": null}')
    on conflict (tenant_id) do update set limits = private.tenant_plan_overrides.limits || excluded.limits`;
  await adminSql`vacuum analyze`;
  const counts = await adminSql`
    select status, count(*)::int as n from public.tickets where tenant_id = ${ACME} group by status order by status`;
  return {
    triggered: { tickets: sample, ms: triggeredMs },
    bulkWithTriggersDisabled: { tickets: bulk, ms: bulkMs },
    byStatus: Object.fromEntries(counts.map((r) => [r.status, r.n])),
  };
}

function printTable(results, ratios) {
  const rows = [['path', 'C', 'req/s', 'p50 ms', 'p99 ms', 'requests', 'non2xx', 'errors']];
  for (const r of results) {
    rows.push([r.path, String(r.concurrency), r.reqPerS.toFixed(0), r.p50Ms.toFixed(2), r.p99Ms.toFixed(2),
      String(r.requests), String(r.non2xx), String(r.errors)]);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((row) => row[i].length)));
  const line = (row) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]) : cell.padStart(widths[i]))).join('  ');
  console.log(`\n${line(rows[0])}\n${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  for (const row of rows.slice(1)) console.log(line(row));
  console.log('');
  for (const r of ratios) {
    console.log(`C=${String(r.concurrency).padEnd(3)} ${r.name}: req/s ×${r.reqPerS.toFixed(2)}, p50 ×${r.p50.toFixed(2)}, ` +
      `p99 ×${r.p99.toFixed(2)}`);
  }
}

async function main() {
  const runStarted = Date.now();
  const out = path.resolve(args.out ?? path.join(root, '.bench', `load-${new Date().toISOString().replace(/[:.]/g, '-')}.json`));

  started.dir = await mkdtemp(path.join(os.tmpdir(), 'platform-bench-load-'));
  const port = await freePort();
  log(`embedded PostgreSQL on ${port}, data in ${started.dir} (fsync off, as the tests run it)…`);
  const db = await startEmbeddedPostgres({
    dataDir: path.join(started.dir, 'data'),
    port,
    fast: true,
    ownedRoot: started.dir,
  });
  started.pg = db.pg;
  log('bootstrap, migrations (supabase db push) and seed…');
  await migrate(db.url, { adminUrl: db.adminUrl });
  await runSqlFile(db.url, seedFile);

  log(`bench data: 200 tenants × 50 members, 5 teams each; ${TICKETS.toLocaleString('en-US')} tickets for acme…`);
  const admin = pool(db.adminUrl, 1);
  const load = await loadBenchData(admin.sql);
  await admin.end();
  log(`tickets: ${load.triggered.tickets.toLocaleString('en-US')} with every trigger on in one statement took ` +
    `${seconds(load.triggered.ms)}; the other ${load.bulkWithTriggersDisabled.tickets.toLocaleString('en-US')} were ` +
    `bulk-loaded with public.tickets' triggers DISABLED in ${seconds(load.bulkWithTriggersDisabled.ms)} ` +
    `(counter and statistics rebuilt after). By status: ${JSON.stringify(load.byStatus)}`);

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
  started.server.child.once('exit', (code, signal) => {
    console.error(`[bench-load] the functions server exited (${code ?? signal}):\n${started.server.output().slice(-2000)}`);
  });
  const dbPoolMax = Number(process.env.DB_POOL_MAX ?? 4);
  log(`functions server at ${origin} (its database pool: ${dbPoolMax} connections, DB_POOL_MAX)`);

  const token = await mintToken({ dbUrl: db.url, email: 'agent@acme.test', tenant: 'acme', secret, ttl: '2h' });
  // What the functions publish to SQL for this token (shared/db's asUser adds the role).
  const claims = { ...JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString()), role: 'authenticated' };
  const claimsJson = JSON.stringify(claims);
  const auth = { authorization: `Bearer ${token}` };

  const results = [];
  const report = (r) => {
    results.push(r);
    log(`${r.path.padEnd(22)} C=${String(r.concurrency).padEnd(3)} ${r.reqPerS.toFixed(0).padStart(6)} req/s  ` +
      `p50 ${r.p50Ms.toFixed(2)} ms  p99 ${r.p99Ms.toFixed(2)} ms${r.why ? `  FAILED: ${r.why}` : ''}`);
  };
  log(`each path: ${WARMUP_SECONDS} s warm-up, then ${SECONDS} s, at concurrency ${CONCURRENCIES.join(', ')}`);
  for (const c of CONCURRENCIES) {
    const raw = pool(db.adminUrl, c);
    report(await measureDb('raw', c, () => raw.sql.unsafe(TEAMS_QUERY, [ACME])));
    await raw.end();

    const asPostgres = pool(db.url, c);
    // The request transaction as shared/db runs it: the role and claims queued ahead of
    // the statement on the same connection (pipelined), then commit.
    const rls = (statement) => asPostgres.sql.begin((tx) =>
      Promise.all([
        tx`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', ${claimsJson}, true)`,
        statement(tx),
      ]));
    report(await measureDb('bare RLS transaction', c, () => rls((tx) => tx.unsafe(TEAMS_QUERY, [ACME]))));

    report(await measureHttp('HTTP GET teams', c, { url: `${origin}/functions/v1/tenants/${ACME}/teams`, headers: auth }));
    report(await measureHttp('HTTP GET open tickets', c, {
      url: `${origin}/functions/v1/tickets?status=open&limit=20`,
      headers: auth,
    }));

    report(await measureDb('raw ticket insert', c, (worker) =>
      rls((tx) => tx`
        insert into public.tickets (tenant_id, title) values (${ACME}, ${`Load test ticket ${c}/${worker}`})`)));
    await asPostgres.end();
    report(await measureHttp('HTTP POST ticket', c, {
      url: `${origin}/functions/v1/tickets`,
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ title: `Load test ticket over HTTP, C=${c}` }),
    }));
  }

  const find = (name, c) => results.find((r) => r.path === name && r.concurrency === c);
  const ratios = [];
  for (const c of CONCURRENCIES) {
    for (const [name, http, base] of [
      ['HTTP GET teams ÷ bare RLS transaction', 'HTTP GET teams', 'bare RLS transaction'],
      ['HTTP POST ticket ÷ raw ticket insert', 'HTTP POST ticket', 'raw ticket insert'],
    ]) {
      const a = find(http, c);
      const b = find(base, c);
      ratios.push({ name, concurrency: c, reqPerS: a.reqPerS / b.reqPerS, p50: a.p50Ms / b.p50Ms, p99: a.p99Ms / b.p99Ms });
    }
  }

  printTable(results, ratios);
  const failed = results.filter((r) => r.why || r.non2xx || r.errors);
  const cpus = os.cpus();
  const summary = {
    date: new Date().toISOString(),
    scale: quick ? 'quick' : 'default',
    machine: { cpus: cpus.length, cpuModel: cpus[0]?.model, node: process.version, platform: `${os.type()} ${os.release()}` },
    tickets: TICKETS,
    ticketLoad: load,
    concurrencies: CONCURRENCIES,
    warmupSeconds: WARMUP_SECONDS,
    seconds: SECONDS,
    functionsDbPoolMax: dbPoolMax,
    postgres: { fsync: false, superuser: ADMIN_USER, rlsRole: 'postgres → authenticated' },
    totalSeconds: (Date.now() - runStarted) / 1000,
    // What this run started and removed, so a caller can check nothing outlived it.
    started: { tempDir: started.dir, postgresPid: started.pg?.process?.pid, serverPid: started.server.child.pid },
    results,
    ratios,
    ok: failed.length === 0,
  };
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, JSON.stringify(summary, null, 2) + '\n');
  if (failed.length) {
    console.error(`\n[bench-load] FAILED: ${failed.length} path(s) had non-2xx answers or errors:`);
    for (const r of failed) console.error(`  ${r.path} (C=${r.concurrency}): ${r.why ?? `${r.non2xx} non-2xx, ${r.errors} errors`}`);
  }
  log(`done in ${seconds(Date.now() - runStarted)}`);
  console.log(out);
  return failed.length ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  if (bench.interrupted) await new Promise(() => {}); // the signal handler cleans up and exits
  console.error(`[bench-load] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
  if (started.server) console.error(`[bench-load] functions server output:\n${started.server.output().slice(-2000)}`);
} finally {
  await cleanUp();
}
process.exit(code);
