// `npm start`: the whole local stack in one command. An embedded PostgreSQL 17 (data
// kept in .local/db), the platform bootstrap, the migrations through the real Supabase
// CLI, the seed on first start, and every function served by Deno at
// http://127.0.0.1:54321/functions/v1/<name>. `--db-url postgresql://…` uses an existing
// database instead of the embedded one.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import postgres from 'postgres';
import { parse as parseToml } from 'smol-toml';
import { claimDataDir, dataDirFlag, dataDirOption, parseCommandLine, portInUse, portValue, runningLock, secondsValue, stackOnPort } from './cli.mjs';
import { childRunning, migrate, redactCredentials, root, runSqlFile, seedFile, spawnFunctionsServer, startEmbeddedPostgres } from './stack.mjs';
import { apiKey, devKeys, issuers, LOCAL_DEV_JWT_SECRET, localSecret, mintToken, publicJwks } from './tokens.mjs';

const usage = `usage: npm start [-- options]

Starts the local stack: an embedded PostgreSQL 17, the platform bootstrap and the
migrations, the seed on first start, and every function at
http://127.0.0.1:<port>/functions/v1/<name>. Ctrl-C stops it.

options:
  --port <port>      port of the functions server (default 54321, or PORT)
  --db-port <port>   port of the embedded PostgreSQL (default 54322, or DB_PORT)
  --data-dir <dir>   folder of the database, keys and files (default .local, or PLATFORM_DATA_DIR)
  --db-url <url>     use this database (e.g. the one \`supabase start\` runs) instead of starting one
  -h, --help         show this help`;

const { values: args } = parseCommandLine(usage, {
  options: {
    'db-url': { type: 'string' },
    port: { type: 'string', default: process.env.PORT ?? '54321' },
    'db-port': { type: 'string', default: process.env.DB_PORT ?? '54322' },
    'data-dir': dataDirOption(),
  },
});

const localDir = path.resolve(args['data-dir']);
const port = portValue(usage, '--port', args.port);
const dbPort = portValue(usage, '--db-port', args['db-port']);
// Checked before anything starts: a bad value ran the job queue every millisecond.
const jobsIntervalS = secondsValue(usage, 'JOBS_INTERVAL_S', process.env.JOBS_INTERVAL_S ?? '5');
const origin = `http://127.0.0.1:${port}`;
const secret = process.env.SUPABASE_JWT_SECRET ?? LOCAL_DEV_JWT_SECRET;
const log = (msg) => console.log(`\x1b[2m[start]\x1b[0m ${msg}`);

/** Before anything starts: the data folder and the ports must be free. Says which is
 *  taken, and by what, and ends with exit code 1. */
async function ensureFree() {
  const refuse = (msg) => {
    console.error(`npm start: ${msg}`);
    process.exit(1);
  };
  const another = 'Stop it (Ctrl-C where it runs), or start another stack beside it with its own ' +
    '--data-dir, --port and --db-port.';
  const held = (holder) =>
    refuse(`already running on ${holder.port ?? '?'} with data dir ${localDir}` +
      `${holder.pid ? ` (pid ${holder.pid})` : ''}. ${another}`);
  const holder = runningLock(localDir);
  if (holder) held(holder);
  if (await portInUse(port)) {
    const other = await stackOnPort(port);
    refuse(other
      ? `already running on ${port} with data dir ${other.data_dir ?? '(unknown)'}. ${another}`
      : `port ${port} (functions) is in use by another program. Pass --port <a free port>.`);
  }
  if (!args['db-url'] && await portInUse(dbPort)) {
    refuse(`port ${dbPort} (PostgreSQL) is in use, by another program or another stack's database. ` +
      'Pass --db-port <a free port>, or --db-url to use that database.');
  }
  // Claimed only now, so a refused start leaves nothing behind; two starts racing for
  // the folder: one wins the lock file.
  const made = await mkdir(localDir, { recursive: true });
  const racer = claimDataDir({ dataDir: localDir, port, dbPort: args['db-url'] ? null : dbPort });
  if (racer) held(racer);
  // A banner left by an earlier run must not look like this one's until it is ready.
  await rm(path.join(localDir, 'stack.json'), { force: true });
  return made;
}

let pg;
let deno;
let stopping = false;
const timers = [];

async function stop(code = 0) {
  if (stopping) return;
  stopping = true;
  log('stopping…');
  for (const t of timers) clearInterval(t);
  // A server killed by a signal has exited too: waiting for its 'exit' (already fired)
  // would hang here with Postgres still up.
  if (childRunning(deno)) {
    deno.kill('SIGTERM');
    await new Promise((r) => deno.once('exit', r));
  }
  await pg?.stop().catch(() => {});
  process.exit(code);
}
// Ctrl-C ends with the conventional 130 (SIGTERM 143), after the functions server and
// Postgres have stopped; whatever way the process exits, the server is told to stop.
process.on('SIGINT', () => stop(130));
process.on('SIGTERM', () => stop(143));
process.on('exit', () => {
  if (childRunning(deno)) deno.kill('SIGTERM');
});

const madeDataDir = await ensureFree();

try {
  let dbUrl = args['db-url'];
  let adminUrl;
  if (!dbUrl) {
    log(`starting embedded PostgreSQL 17 (data in ${path.relative(root, path.join(localDir, 'db')) || localDir})…`);
    const started = await startEmbeddedPostgres({ dataDir: path.join(localDir, 'db'), port: dbPort, ownedRoot: madeDataDir });
    pg = started.pg;
    dbUrl = started.url;
    adminUrl = started.adminUrl;
  }

  log('applying the platform bootstrap and migrations (supabase db push)…');
  // The bootstrap runs as the cluster's superuser (supabase_admin); the migrations, the
  // seed and the functions as postgres, which is not one — as on a hosted project.
  await migrate(dbUrl, { adminUrl });

  const sql = postgres(dbUrl, { max: 1, onnotice: () => {} });
  const [{ empty }] = await sql`select not exists (select 1 from public.tenants) as empty`;
  await sql.end();
  if (empty) {
    log('first start: loading supabase/seed.sql…');
    await runSqlFile(dbUrl, seedFile);
  }

  const keys = await devKeys(path.join(localDir, 'dev-keys.json'));
  const anonKey = await apiKey('anon', secret);
  const serviceKey = await apiKey('service_role', secret);

  const env = {
    ...process.env,
    // The one setting that makes the functions behave as the local stack (the well-known
    // dev JWT secret, local storage, loopback webhook targets); hosted projects never set it.
    PLATFORM_LOCAL_STACK: '1',
    PORT: String(port),
    PLATFORM_DATA_DIR: localDir,
    SUPABASE_URL: origin,
    SUPABASE_AUTH_ISSUER: issuers.supabase,
    SUPABASE_DB_URL: dbUrl,
    SUPABASE_JWT_SECRET: secret,
    SUPABASE_ANON_KEY: anonKey,
    SUPABASE_SERVICE_ROLE_KEY: serviceKey,
    CLERK_ISSUER: issuers.clerk,
    CLERK_JWKS_URL: `${origin}/dev-issuers/clerk/.well-known/jwks.json`,
    CLERK_AUTHORIZED_PARTIES: process.env.CLERK_AUTHORIZED_PARTIES ?? 'http://localhost:3000',
    SUPERTOKENS_ISSUER: issuers.supertokens,
    SUPERTOKENS_JWKS_URL: `${origin}/dev-issuers/supertokens/jwt/jwks.json`,
    DEV_ISSUER_JWKS: JSON.stringify(publicJwks(keys)),
    LOCAL_STORAGE_DIR: path.join(localDir, 'storage'),
    STORAGE_BACKEND: 'local',
    PROVISIONING_ENCRYPTION_KEY: process.env.PROVISIONING_ENCRYPTION_KEY ?? await localSecret(path.join(localDir, 'encryption.key')),
  };
  const server = spawnFunctionsServer(env);
  deno = server.child;
  await server.ready;
  deno.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`functions server exited (${code ?? signal})`);
      stop(1);
    }
  });
  deno.stdout.pipe(process.stdout);
  deno.stderr.pipe(process.stderr);

  const tokens = {};
  for (const [label, email, tenant] of [
    ['super-admin (super@platform.local)', 'super@platform.local'],
    ['tenant admin (admin@acme.test)', 'admin@acme.test', 'acme'],
    ['agent (agent@acme.test)', 'agent@acme.test', 'acme'],
    ['user (user@acme.test)', 'user@acme.test', 'acme'],
  ]) {
    tokens[label] = await mintToken({ dbUrl, email, tenant, secret, keys }).catch((e) => `(${e.message})`);
  }
  await writeFile(path.join(localDir, 'stack.json'), JSON.stringify({ dbUrl, origin, secret }, null, 2), { mode: 0o600 });

  // What pg_cron (+ pg_net) do on a hosted project: call the job runner.
  const every = (seconds, job, url, report) => timers.push(setInterval(async () => {
    try {
      const res = await fetch(`${origin}/functions/v1/${url}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${serviceKey}`, 'content-type': 'application/json' },
        body: '{}',
      });
      const body = await res.json();
      if (!res.ok) log(`${job} failed: ${res.status} ${body?.error?.message ?? ''}`);
      else if (report(body)) log(`${job}: ${report(body)}`);
    } catch (err) {
      if (!stopping) log(`${job} failed: ${err.message}`);
    }
  }, seconds * 1000));
  // One timer for the one job queue: provisioning, webhook deliveries, Chatwoot replies,
  // and the recurring SLA sweep, reconcile pass and pruning (private.job_schedules).
  every(jobsIntervalS, 'jobs', 'jobs/run', (b) => {
    // What each task reported (e.g. "deliver-webhook: 3 delivered, 1 to retry"); quiet
    // when a recurring task found nothing to do.
    const queueCounts = ['claimed', 'completed', 'retried', 'dead', 'lost'];
    return Object.entries(b.tasks ?? {}).map(([task, t]) => {
      const parts = Object.entries(t).filter(([k, v]) => v && !queueCounts.includes(k)).map(([k, v]) => `${v} ${k}`);
      if (t.retried) parts.push(`${t.retried} to retry`);
      if (t.dead) parts.push(`${t.dead} dead`);
      return parts.length ? `${task}: ${parts.join(', ')}` : '';
    }).filter(Boolean).join('; ');
  });

  const line = (k, v) => console.log(`  ${k.padEnd(38)} ${v}`);
  console.log('\n\x1b[1mLocal stack is running.\x1b[0m\n');
  line('Functions URL', `${origin}/functions/v1`);
  const config = parseToml(await readFile(path.join(root, 'supabase', 'config.toml'), 'utf8'));
  for (const name of Object.keys(config.functions ?? {})) {
    line(`  ${name}`, `${origin}/functions/v1/${name}  (OpenAPI: ${origin}/functions/v1/${name}/openapi.json)`);
  }
  // The well-known local values are printed for a newcomer to copy; a password or secret
  // the user brought (--db-url, SUPABASE_JWT_SECRET) is theirs and stays off the screen.
  line('DB URL', args['db-url'] ? redactCredentials(dbUrl) : dbUrl);
  // Keys and tokens made with a secret the user brought are as secret as it: a
  // service_role key valid for years, printed to a terminal and its scrollback or a log,
  // would open the project it was made for. Shown only for the well-known local secret.
  const wellKnown = secret === LOCAL_DEV_JWT_SECRET;
  const withTheirs = '(made with your SUPABASE_JWT_SECRET: not shown)';
  line('JWT secret', wellKnown ? secret : '(the one SUPABASE_JWT_SECRET sets)');
  line('anon key', wellKnown ? anonKey : withTheirs);
  line('service_role key', wellKnown ? serviceKey : withTheirs);
  line('Clerk dev issuer', issuers.clerk);
  line('SuperTokens dev issuer', issuers.supertokens);
  if (secret === LOCAL_DEV_JWT_SECRET) {
    console.log('\n\x1b[33m  WARNING: using the well-known local development JWT secret. Anyone can mint tokens');
    console.log('  for it: never use it outside this machine. Set SUPABASE_JWT_SECRET to change it.\x1b[0m');
  }
  const flag = dataDirFlag(localDir);
  if (wellKnown) {
    console.log('\n  Access tokens (Supabase Auth issuer, valid 24 h):');
    for (const [label, token] of Object.entries(tokens)) console.log(`\n  ${label}:\n  ${token}`);
  } else {
    console.log(`\n  Access tokens: ${withTheirs}; print one with the command below.`);
  }
  console.log(`\n  More tokens: npm run -s token -- <email> --tenant <slug>${flag}`);
  console.log(`  Sign up:     npm run user -- add <email> --name "First Last"${flag}`);
  console.log('\n  Try: curl -H "Authorization: Bearer <token>" ' + `${origin}/functions/v1/tenants/me`);
  console.log('  Not served here: /rest/v1, /auth/v1, /storage/v1 (PostgREST, Auth, Storage: use `supabase start`).');
  console.log('\n  Ctrl-C stops everything.\n');
} catch (err) {
  console.error(`npm start failed: ${redactCredentials(err instanceof Error ? err.message : String(err ?? 'unknown error'))}`);
  await stop(1);
}
