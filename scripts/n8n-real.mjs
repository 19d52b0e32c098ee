// The real n8n for `npm run test:n8n`: installed on demand into .partners/n8n/ (git-
// ignored, its own package.json, so the project's package.json and lock stay as they
// are; cached after the first time), started on free loopback ports with SQLite and a
// fresh user folder, its owner and an API key set up through its REST endpoints, and
// stopped with its whole process group.
//
// n8n 2.8.4 is the newest release whose engines accept Node 20 (2.10+ need Node ≥ 22.16).
// It needs xlsx pinned to 0.18.5 (the version it asks for is not on the npm registry).
// It runs with E2E_TESTS=true, n8n's own switch for its end-to-end tests: every licensed
// feature starts off (as on an unlicensed instance), and PATCH /rest/e2e/feature turns
// one on, which is how projects mode (feat:projectRole:admin) is tested for real.
//
//   node scripts/n8n-real.mjs install   installs (or finds) the pinned n8n and says where
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, root } from './stack.mjs';

export const N8N_VERSION = '2.8.4';
export const n8nDir = path.join(root, '.partners', 'n8n');
const bin = path.join(n8nDir, 'node_modules', 'n8n', 'bin', 'n8n');

function installedVersion() {
  try {
    return JSON.parse(readFileSync(path.join(n8nDir, 'node_modules', 'n8n', 'package.json'), 'utf8')).version;
  } catch {
    return undefined;
  }
}

/** Installs the pinned n8n unless it is there; returns whether it installed. */
export function installN8n({ log = console.log } = {}) {
  if (installedVersion() === N8N_VERSION && existsSync(bin)) return false;
  mkdirSync(n8nDir, { recursive: true });
  writeFileSync(
    path.join(n8nDir, 'package.json'),
    JSON.stringify(
      {
        name: 'partner-n8n',
        private: true,
        description: 'The real n8n for npm run test:n8n (scripts/n8n-real.mjs); not part of the project',
        dependencies: { n8n: N8N_VERSION },
        overrides: { xlsx: '0.18.5' },
      },
      null,
      2,
    ) + '\n',
  );
  log(`installing n8n ${N8N_VERSION} into ${path.relative(root, n8nDir)}/ (first time only; a few minutes)…`);
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', '--loglevel=error'], {
    cwd: n8nDir,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0 || installedVersion() !== N8N_VERSION) {
    throw new Error(`npm install of n8n ${N8N_VERSION} failed (exit ${r.status}); see the output above`);
  }
  return true;
}

const OWNER = { email: 'owner@n8n.test', firstName: 'Owner', lastName: 'Test', password: 'Owner-Passw0rd-for-tests' };

async function waitFor(fn, what, ms, child) {
  const until = Date.now() + ms;
  let last;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`n8n exited (${child.exitCode}) while waiting for ${what}`);
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`n8n: ${what} did not happen within ${ms / 1000} s${last ? `: ${last.message}` : ''}`);
}

const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** Folders of earlier runs whose test process died without stopping its n8n (killed
 *  itself): that n8n is ended — only if it still runs in that very folder — and the
 *  folder removed. */
function cleanStaleRuns() {
  for (const name of readdirSync(n8nDir)) {
    const m = name.match(/^run-(\d+)-\d+$/);
    if (!m || alive(Number(m[1]))) continue;
    const folder = path.join(n8nDir, name);
    try {
      const pid = Number(readFileSync(path.join(folder, 'n8n.pid'), 'utf8'));
      if (pid && alive(pid) && realpathSync(`/proc/${pid}/cwd`) === realpathSync(folder)) process.kill(-pid, 'SIGKILL');
    } catch {
      // no pid file, or that process is gone
    }
    rmSync(folder, { recursive: true, force: true });
  }
}

/** Starts n8n; resolves with its URL, the owner's API key and stop(). */
export async function startN8n({ log = () => {} } = {}) {
  if (installedVersion() !== N8N_VERSION) throw new Error('n8n is not installed: node scripts/n8n-real.mjs install');
  cleanStaleRuns();
  const [port, brokerPort] = [await freePort(), await freePort()];
  const folder = path.join(n8nDir, `run-${process.pid}-${port}`);
  rmSync(folder, { recursive: true, force: true });
  mkdirSync(folder, { recursive: true });
  const out = openSync(path.join(folder, 'n8n.log'), 'a');
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [bin, 'start'], {
    cwd: folder,
    detached: true, // its own process group: stop() ends n8n and its task runner together
    stdio: ['ignore', out, out],
    env: {
      PATH: process.env.PATH,
      HOME: folder,
      N8N_USER_FOLDER: folder,
      DB_TYPE: 'sqlite',
      N8N_PORT: String(port),
      N8N_LISTEN_ADDRESS: '127.0.0.1',
      N8N_HOST: '127.0.0.1',
      N8N_PROTOCOL: 'http',
      N8N_EDITOR_BASE_URL: url,
      N8N_RUNNERS_BROKER_PORT: String(brokerPort),
      N8N_RUNNERS_BROKER_LISTEN_ADDRESS: '127.0.0.1',
      N8N_SECURE_COOKIE: 'false',
      // No internet here: nothing that phones home.
      N8N_DIAGNOSTICS_ENABLED: 'false',
      N8N_VERSION_NOTIFICATIONS_ENABLED: 'false',
      N8N_TEMPLATES_ENABLED: 'false',
      N8N_PERSONALIZATION_ENABLED: 'false',
      N8N_HIRING_BANNER_ENABLED: 'false',
      N8N_LICENSE_AUTO_RENEW_ENABLED: 'false',
      N8N_COMMUNITY_PACKAGES_ENABLED: 'false',
      EXTERNAL_FRONTEND_HOOKS_URLS: '',
      N8N_DIAGNOSTICS_CONFIG_FRONTEND: '',
      N8N_DIAGNOSTICS_CONFIG_BACKEND: '',
      N8N_ENCRYPTION_KEY: 'test-only-n8n-encryption-key',
      E2E_TESTS: 'true',
    },
  });
  writeFileSync(path.join(folder, 'n8n.pid'), String(child.pid));
  let stopped = false;
  const kill = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {
      // already gone
    }
  };
  const onExit = () => kill('SIGKILL');
  process.once('exit', onExit);
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.off('exit', onExit);
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      kill('SIGTERM');
      const timer = setTimeout(() => kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    }
    kill('SIGKILL'); // whatever of the group is left (the task runner)
    rmSync(folder, { recursive: true, force: true });
  };

  try {
    const json = async (p, init = {}) => {
      const res = await fetch(`${url}${p}`, {
        ...init,
        headers: { 'content-type': 'application/json', ...init.headers },
        signal: AbortSignal.timeout(10_000),
      });
      return { status: res.status, headers: res.headers, body: await res.json().catch(() => null) };
    };
    // The REST routes exist only once n8n has finished starting (the health check
    // answers earlier): retry the owner's setup until it is served.
    await waitFor(async () => {
      const r = await json('/rest/owner/setup', { method: 'POST', body: JSON.stringify(OWNER) });
      // While it starts, n8n answers every path with an HTML page (200 or 404).
      if (r.status === 200 && r.body?.data?.id) return true;
      if (r.body && r.status !== 404) throw new Error(`owner setup → ${r.status} ${JSON.stringify(r.body)}`);
      return false;
    }, 'the owner setup', 120_000, child);
    const login = await json('/rest/login', {
      method: 'POST',
      body: JSON.stringify({ emailOrLdapLoginId: OWNER.email, password: OWNER.password }),
    });
    if (login.status !== 200 || !login.body?.data) throw new Error(`login → ${login.status}`);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0];
    const scopes = await json('/rest/api-keys/scopes', { headers: { cookie } });
    const key = await json('/rest/api-keys', {
      method: 'POST',
      headers: { cookie },
      body: JSON.stringify({ label: 'test:n8n', expiresAt: null, scopes: scopes.body.data }),
    });
    const apiKey = key.body?.data?.rawApiKey;
    if (!apiKey) throw new Error(`API key → ${key.status} ${JSON.stringify(key.body)}`);
    log(`n8n ${N8N_VERSION} at ${url} (task broker on ${brokerPort})`);
    return { url, apiKey, ownerId: login.body.data.id, pid: child.pid, stop, json };
  } catch (err) {
    await stop();
    throw err;
  }
}

if (import.meta.url === `file://${process.argv[1]}` && process.argv[2] === 'install') {
  const started = Date.now();
  const did = installN8n();
  console.log(
    did
      ? `n8n ${N8N_VERSION} installed in ${((Date.now() - started) / 1000).toFixed(0)} s`
      : `n8n ${N8N_VERSION} already installed in ${path.relative(root, n8nDir)}/`,
  );
}
