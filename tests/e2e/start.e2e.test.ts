// `npm start` itself: the embedded stack comes up in an empty folder, prints what a
// newcomer needs (URLs, secret, working tokens), serves the functions, stops cleanly
// on Ctrl-C, and keeps its data across a restart; `--db-url` uses another database.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { bootstrapFile, createDatabase, freePort, root, runSqlFile, withDatabase } from '../../scripts/stack.mjs';
import { apiKey, mintToken } from '../../scripts/tokens.mjs';
import { tenants } from '../helpers/seed.ts';

const run = promisify(execFile);

interface Started {
  child: ChildProcess;
  output: string;
}

async function start(args: string[], env: Record<string, string> = {}): Promise<Started> {
  const child = spawn(process.execPath, ['scripts/start.mjs', ...args], {
    cwd: root,
    env: { ...process.env, JOBS_INTERVAL_S: '0.5', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const started: Started = { child, output: '' };
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      // Not up in time: stopped, its Postgres and functions server with it, rather than
      // left running (holding their ports) with no one to stop them.
      child.kill('SIGINT');
      const hard = setTimeout(() => child.kill('SIGKILL'), 15_000);
      child.once('exit', () => clearTimeout(hard));
      reject(new Error(`npm start did not come up:\n${started.output}`));
    }, 90_000);
    const on = (d: Buffer) => {
      started.output += d;
      if (started.output.includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', on);
    child.stderr!.on('data', on);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited early (${code}):\n${started.output}`));
    });
  });
  child.removeAllListeners('exit');
  return started; // output keeps growing with what the stack logs later
}

async function stop(s: Started): Promise<number | null> {
  const exited = new Promise<number | null>((r) => s.child.once('exit', (code) => r(code)));
  s.child.kill('SIGINT');
  return await exited;
}

/** The token printed under a label of the start banner. */
function printedToken(output: string, label: string): string {
  // deno-lint-ignore no-control-regex
  const lines = output.replace(/\x1b\[[0-9;]*m/g, '').split('\n');
  const i = lines.findIndex((l) => l.includes(label));
  return lines[i + 1].trim();
}

function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** The value printed on the same line as a label of the start banner. */
function printedValue(output: string, label: string): string {
  // deno-lint-ignore no-control-regex
  const line = output.replace(/\x1b\[[0-9;]*m/g, '').split('\n').find((l) => l.includes(label)) ?? '';
  return line.trim().split(/\s+/).pop() ?? '';
}

/** The pid of the functions server (Deno, scripts/serve.ts) a start process runs. */
function functionsServerPid(startPid: number): number {
  const children = readdirSync(`/proc/${startPid}/task`)
    .flatMap((task) => readFileSync(`/proc/${startPid}/task/${task}/children`, 'utf8').trim().split(/\s+/))
    .filter(Boolean).map(Number);
  const deno = children.find((pid) => readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('scripts/serve.ts'));
  if (!deno) throw new Error(`no functions server among the children of ${startPid}`);
  return deno;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'platform-start-'));
  // Our own folder: as root, Postgres runs as a `postgres` user that must enter it.
  await chmod(dir, 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('embedded stack', () => {
  it('starts, serves, stops cleanly and keeps data across a restart', async () => {
    const [port, dbPort] = [await freePort(), await freePort()];
    const args = ['--data-dir', dir, '--port', String(port), '--db-port', String(dbPort)];
    const first = await start(args);
    try {
      expect(first.output).toContain('first start: loading supabase/seed.sql');
      expect(first.output).toContain(`http://127.0.0.1:${port}/functions/v1`);
      expect(first.output).toContain(`postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres`);
      expect(first.output).toContain('super-secret-jwt-token-with-at-least-32-characters-long');
      expect(first.output).toContain('WARNING: using the well-known local development JWT secret');

      const admin = printedToken(first.output, 'tenant admin (admin@acme.test)');
      const me = await fetch(`http://127.0.0.1:${port}/functions/v1/tenants/me`, { headers: { authorization: `Bearer ${admin}` } });
      expect(me.status).toBe(200);
      expect(await me.json()).toMatchObject({ role: 'admin', active_tenant: { slug: 'acme' } });
      for (const label of ['super-admin (super@platform.local)', 'agent (agent@acme.test)', 'user (user@acme.test)']) {
        const r = await fetch(`http://127.0.0.1:${port}/functions/v1/tenants/me`, { headers: { authorization: `Bearer ${printedToken(first.output, label)}` } });
        expect(r.status, label).toBe(200);
      }

      // npm run token, with the Clerk dev issuer whose JWKS the stack serves.
      const { stdout } = await run(process.execPath, ['scripts/token.mjs', 'agent@acme.test', '--tenant', 'acme', '--issuer', 'clerk', '--data-dir', dir], { cwd: root });
      const viaClerk = await fetch(`http://127.0.0.1:${port}/functions/v1/tenants/me`, { headers: { authorization: `Bearer ${stdout.trim()}` } });
      expect(await viaClerk.json()).toMatchObject({ role: 'agent', identity: { kind: 'clerk' } });

      const created = await fetch(`http://127.0.0.1:${port}/functions/v1/tenants/${tenants.acme.id}/teams`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'Survives restarts', department: 'technical' }),
      });
      expect(created.status).toBe(201);

      // The scheduler stand-in calls the job runner (SLA sweep, provisioning, webhook
      // delivery, …) with the service key it printed.
      // A tick that ran: the SLA sweep's schedule (every minute, due since the migrations)
      // was added and its next run moved past now — nothing else moves it before our own
      // call below. (Not the prune's: it is first due at 03:17 UTC, in the future all night.)
      const sql = postgres(`postgresql://postgres:postgres@127.0.0.1:${dbPort}/postgres`, { max: 1, onnotice: () => {} });
      try {
        await expect.poll(async () => (await sql`select count(*)::int as n from private.job_schedules where name = 'sla-sweep' and next_run_at > now()`)[0].n, {
          timeout: 15_000,
        }).toBeGreaterThan(0);
      } finally {
        await sql.end();
      }
      expect(first.output).not.toContain('jobs failed');
      const jobsRun = await fetch(`http://127.0.0.1:${port}/functions/v1/jobs/run`, {
        method: 'POST',
        headers: { authorization: `Bearer ${printedValue(first.output, 'service_role key')}` },
      });
      expect(jobsRun.status).toBe(200);
    } finally {
      expect(await stop(first)).toBe(130);
    }
    // Both servers are gone: nothing listens on either port any more.
    await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    await expect(portOpen(dbPort)).resolves.toBe(false);

    const second = await start(args);
    try {
      expect(second.output).not.toContain('first start');
      const admin = printedToken(second.output, 'tenant admin (admin@acme.test)');
      const teams = await fetch(`http://127.0.0.1:${port}/functions/v1/tenants/${tenants.acme.id}/teams`, { headers: { authorization: `Bearer ${admin}` } });
      expect((await teams.json()).items.map((t: { name: string }) => t.name)).toContain('Survives restarts');
    } finally {
      expect(await stop(second)).toBe(130);
    }
  }, 180_000);
});

describe('--db-url', () => {
  it('migrates and seeds an existing database instead of starting one; keys and tokens made with a JWT secret the user set are not printed', async () => {
    // A database with the platform but none of the project's migrations, as `supabase
    // start` hands one out: Supabase's superuser set it up, the stack gets postgres's URL.
    const name = `start_dburl_${Date.now()}`;
    const url = await createDatabase(inject('pgUrl'), name);
    await runSqlFile(withDatabase(inject('pgAdminUrl'), name), bootstrapFile);
    const port = await freePort();
    // The user's own secret (their hosted project's, say): what is signed with it opens
    // that project, and a terminal's scrollback or a log is no place for it.
    const secret = `their-own-jwt-secret-${Date.now()}-of-at-least-32-characters`;
    const s = await start(['--db-url', url, '--port', String(port), '--data-dir', path.join(dir, 'external')], { SUPABASE_JWT_SECRET: secret });
    let exitCode: number | null = null;
    try {
      expect(s.output).not.toContain('starting embedded PostgreSQL');
      // The URL the user brought is shown with its password masked.
      const { password } = new URL(url);
      expect(password).not.toBe('');
      expect(s.output).toContain(url.replace(`:${password}@`, ':***@'));
      expect(s.output).not.toContain(`:${password}@`);
      expect(s.output).not.toContain(secret);
      for (const role of ['service_role', 'anon']) expect(s.output).not.toContain(await apiKey(role, secret));
      expect(s.output).not.toContain('tenant admin (admin@acme.test):');
      expect(s.output).toContain('(made with your SUPABASE_JWT_SECRET: not shown)');
      // The token command makes one with it.
      // The tenant named by its slug in any case, as requests name it.
      const admin = await mintToken({ dbUrl: url, email: 'admin@acme.test', tenant: 'Acme', secret, keys: undefined });
      const me = await fetch(`http://127.0.0.1:${port}/functions/v1/tenants/me`, { headers: { authorization: `Bearer ${admin}` } });
      expect(me.status).toBe(200);
      expect((await me.json()).active_tenant).toMatchObject({ slug: 'acme' });

      // The functions server killed under it (an OOM kill): npm start says so and fails,
      // rather than waiting for an exit that has already happened.
      // 'close': after the last of its output ('exit' may come before it).
      const exited = new Promise<number | null>((r) => s.child.once('close', (code) => r(code)));
      process.kill(functionsServerPid(s.child.pid!), 'SIGKILL');
      exitCode = await exited;
      expect(s.output).toContain('functions server exited (SIGKILL)');
      expect(exitCode).toBe(1);
    } finally {
      if (exitCode === null && s.child.exitCode === null) expect(await stop(s)).toBe(130);
    }
  }, 120_000);
});
