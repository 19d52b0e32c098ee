// A newcomer's first hour, on the real `npm start` stack: the README's sections "Two
// commands", "Seeded identities", "New people: sign up locally" and "Calling a
// function" run as written (their shell blocks through bash, the supabase-js block
// through Node 20; the only change is the port, 54321 → this stack's, and the data
// folder named the documented way, PLATFORM_DATA_DIR); the journey create tenant →
// invite → sign up → token → accept → work; what the stack says about the APIs it does
// not serve; and a second `npm start` on the same folder or ports.
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, root } from '../../scripts/stack.mjs';
import { readmeBlocks, shellCommands } from '../helpers/readme.ts';

const exec = promisify(execFile);

let dir: string;
let port: number;
let dbPort: number;
let stack: ChildProcess;
let banner = '';
let sql: postgres.Sql;

// deno-lint-ignore no-control-regex
const plain = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '');
const bannerValue = (label: string) =>
  plain(banner).split('\n').find((l) => l.trim().startsWith(label))?.trim().slice(label.length).trim() ?? '';
const api = (p: string) => `http://127.0.0.1:${port}${p}`;
const localPorts = (code: string) => code.replaceAll('127.0.0.1:54321', `127.0.0.1:${port}`);

/** Runs a README shell block as written (bash, errors stop it), against this stack. */
async function bash(code: string, extra: Record<string, string | undefined> = { PLATFORM_DATA_DIR: dir }) {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  for (const [k, v] of Object.entries(extra)) if (v === undefined) delete env[k];
  const { stdout, stderr } = await exec('bash', ['-euo', 'pipefail', '-c', localPorts(code)], {
    cwd: root,
    env,
    timeout: 120_000,
    maxBuffer: 4 * 1024 * 1024,
  });
  return { stdout, stderr };
}

/** A script of this repo, bounded, with its exit code whatever it is. */
async function script(file: string, args: string[], env: Record<string, string> = {}) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [file, ...args], { cwd: root, env: { ...process.env, ...env }, timeout: 30_000 });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout: string; stderr: string };
    return { code: e.code ?? -1, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The JSON objects curl printed one after another (it adds no newline). */
function jsonValues(out: string): unknown[] {
  const values: unknown[] = [];
  let depth = 0;
  let start = -1;
  let inString = false;
  for (let i = 0; i < out.length; i++) {
    const ch = out[i];
    if (inString) {
      if (ch === '\\') i++;
      else if (ch === '"') inString = false;
    } else if (ch === '"') inString = true;
    else if (ch === '{') {
      if (depth++ === 0) start = i;
    } else if (ch === '}' && --depth === 0) values.push(JSON.parse(out.slice(start, i + 1)));
  }
  return values;
}

async function me(token: string) {
  const res = await fetch(api('/functions/v1/tenants/me'), { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: await res.json() };
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'platform-newcomer-'));
  // Our own folder: as root, Postgres runs as a `postgres` user that must enter it.
  await chmod(dir, 0o755);
  [port, dbPort] = [await freePort(), await freePort()];
  // `npm start` as the README has it; ports and folder through the variables it honours.
  stack = spawn('npm', ['start'], {
    cwd: root,
    env: { ...process.env, PORT: String(port), DB_PORT: String(dbPort), PLATFORM_DATA_DIR: dir },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start did not come up:\n${banner}`)), 150_000);
    const on = (d: Buffer) => {
      banner += d;
      if (banner.includes('Ctrl-C stops everything')) {
        clearTimeout(timer);
        resolve();
      }
    };
    stack.stdout!.on('data', on);
    stack.stderr!.on('data', on);
    stack.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`npm start exited early (${code}):\n${banner}`));
    });
  });
  stack.removeAllListeners('exit');
  sql = postgres(bannerValue('DB URL'), { max: 1, onnotice: () => {} });
}, 180_000);

afterAll(async () => {
  await sql?.end();
  if (stack && stack.exitCode === null) {
    const exited = new Promise((r) => stack.once('exit', r));
    // The stack's own process (its pid is in the lock it holds), then npm with it.
    const lock = path.join(dir, 'stack.lock');
    const pid = existsSync(lock) ? JSON.parse(readFileSync(lock, 'utf8')).pid : undefined;
    if (pid) process.kill(pid, 'SIGINT');
    const timer = setTimeout(() => process.kill(-stack.pid!, 'SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('README: Two commands', () => {
  it('runs its commands: npm install, npm start (this stack), npm test (this run)', async () => {
    const [commands] = readmeBlocks('Two commands').filter((b) => b.lang === 'sh');
    expect(shellCommands(commands.code)).toEqual(['npm install', 'npm start', 'npm test']);
    const install = await exec('npm', ['install', '--dry-run', '--no-audit', '--no-fund'], { cwd: root, timeout: 120_000 });
    expect(install.stdout).toMatch(/up to date|added|changed/);
    expect(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).scripts.test).toContain('vitest run');
    expect(banner).toContain('Local stack is running.');
  });

  it('the banner it shows is the banner npm start prints', () => {
    const [sample] = readmeBlocks('Two commands').filter((b) => b.lang === '');
    const real = plain(banner).split('\n').map((l) => l.trim().replace(/\s+/g, ' '));
    let compared = 0;
    for (const line of sample.code.split('\n')) {
      const expected = line.trim().replace(/\s+/g, ' ').replaceAll('54321', String(port)).replaceAll('54322', String(dbPort));
      if (!expected || expected.startsWith('(')) continue; // an elision, not output
      // The issuer names keep 54321 whatever the port (README: Options).
      const prefixes = [expected.split('…')[0], line.trim().replace(/\s+/g, ' ').split('…')[0]];
      expect(real.some((l) => prefixes.some((p) => l.startsWith(p))), `banner line: ${expected}`).toBe(true);
      compared++;
    }
    expect(compared).toBeGreaterThanOrEqual(20);
  });
});

describe('README: Seeded identities', () => {
  it('each token command prints a token the stack accepts', async () => {
    const [block] = readmeBlocks('Seeded identities (local only)').filter((b) => b.lang === 'sh');
    const commands = shellCommands(block.code);
    expect(commands).toHaveLength(3);
    for (const command of commands) {
      const { stdout } = await bash(command);
      const who = await me(stdout.trim().split('\n').at(-1)!);
      expect(who.status, command).toBe(200);
      expect(who.body.user.email, command).toBe(command.split(' ')[4]);
    }
  });
});

describe('README: New people: sign up locally', () => {
  it('the journey runs as written: create tenant, sign up, invite, sign up, accept, work', async () => {
    const [block] = readmeBlocks('New people: sign up locally').filter((b) => b.lang === 'sh');
    const { stdout } = await bash(block.code);
    // The tenant, the two sign-ups, the invitation, the accepted membership, the role, the ticket.
    expect(stdout).toContain('"slug":"initech"');
    expect(stdout).toContain('Signed up peter@initech.test (Peter Gibbons)');
    expect(stdout).toContain('member of initech (admin)');
    expect(stdout).toContain('"email":"milton@initech.test","role":"agent"');
    expect(stdout).toMatch(/Signed up milton@initech.test \(Milton Waddams\)[\s\S]*invited to initech as agent/);
    // curl prints no newline of its own: the accept's answer, then the role /me reports.
    expect(stdout).toMatch(/\{"tenant_id":"[0-9a-f-]{36}","role":"agent"\}agent\n/);
    const ticket = JSON.parse(stdout.trim().split('\n').at(-1)!);
    expect(ticket).toMatchObject({ number: 1, title: 'Where is my stapler?', status: 'open', priority: 'high' });

    // In the database: one platform user per person (Peter's is the one the tenant's
    // creation made, now linked), each with a confirmed Supabase Auth user.
    const people = await sql`
      select u.email, u.first_name, u.last_name, m.role, a.email_confirmed_at is not null as confirmed,
             (select count(*)::int from public.users x where x.email = u.email) as rows
      from public.users u
      join public.memberships m on m.user_id = u.id
      join public.tenants t on t.id = m.tenant_id and t.slug = 'initech'
      join public.user_identities i on i.user_id = u.id and i.issuer = 'http://127.0.0.1:54321/auth/v1'
      join auth.users a on a.id::text = i.subject
      order by u.email`;
    expect(people).toEqual([
      { email: 'milton@initech.test', first_name: 'Milton', last_name: 'Waddams', role: 'agent', confirmed: true, rows: 1 },
      { email: 'peter@initech.test', first_name: 'Peter', last_name: 'Gibbons', role: 'admin', confirmed: true, rows: 1 },
    ]);

    // Accepting again says it was accepted (409), with the token bound to the tenant.
    const [invitation] = await sql`select id from public.invitations where email = 'milton@initech.test'`;
    const milton = (await bash('npm run -s token -- milton@initech.test --tenant initech')).stdout.trim();
    const again = await fetch(api(`/functions/v1/tenants/invitations/${invitation.id}/accept`), {
      method: 'POST',
      headers: { authorization: `Bearer ${milton}` },
    });
    expect([again.status, (await again.json()).error.code]).toEqual([409, 'already_accepted']);

    // Signing up again changes nothing and says so.
    const before = await sql`select count(*)::int as n from auth.users`;
    const repeat = await script('scripts/user.mjs', ['add', 'peter@initech.test'], { PLATFORM_DATA_DIR: dir });
    expect([repeat.code, repeat.stdout]).toEqual([0, expect.stringContaining('can already sign in locally')]);
    expect(await sql`select count(*)::int as n from auth.users`).toEqual(before);
  });
});

describe('README: Calling a function', () => {
  it('the curl block runs as written', async () => {
    const [block] = readmeBlocks('Calling a function').filter((b) => b.lang === 'sh');
    const { stdout } = await bash(block.code);
    const [who, team] = jsonValues(stdout);
    expect(who).toMatchObject({ role: 'admin', active_tenant: { slug: 'acme' } });
    expect(team).toMatchObject({ name: 'Billing', department: 'support' });
  });

  it('the supabase-js block runs on this Node as written, and reads the error body', async () => {
    const [block] = readmeBlocks('Calling a function').filter((b) => b.lang === 'js');
    expect(block.code).toContain('realtime: { transport: ws }');
    expect(block.code).toContain('await error.context.json()');
    const token = (await bash('npm run -s token -- admin@acme.test --tenant acme')).stdout.trim();
    const child = spawn(process.execPath, ['--input-type=module'], {
      cwd: root,
      env: { ...process.env, SUPABASE_ANON_KEY: bannerValue('anon key'), TOKEN: token },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.stdin.end(localPorts(block.code));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    const code = await new Promise((r) => child.once('exit', r));
    clearTimeout(timer);
    expect([code, out.trim().split('\n')]).toEqual([0, ['admin@acme.test admin acme', '422 validation_failed department']]);
  });

  it('the error shape it shows is what a 422 looks like', async () => {
    const [block] = readmeBlocks('Calling a function').filter((b) => b.lang === 'json');
    const elided = (v: unknown): unknown =>
      v === '…' ? expect.any(String) : Array.isArray(v) ? v.map(elided) : v && typeof v === 'object'
        ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, elided(x)]))
        : v;
    const token = (await bash('npm run -s token -- admin@acme.test --tenant acme')).stdout.trim();
    const res = await fetch(api('/functions/v1/tenants/10000000-0000-4000-8000-000000000001/teams'), {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'No department' }),
    });
    expect(res.status).toBe(422);
    expect(await res.json()).toMatchObject(elided(JSON.parse(block.code)) as object);
  });
});

describe('what the local stack does not serve', () => {
  it('/rest/v1, /auth/v1 and /storage/v1 answer 404 saying so and how to get them; local signed URLs are served', async () => {
    for (const [method, p, apiPrefix] of [
      ['GET', '/rest/v1/tickets?select=*', '/rest/v1'],
      ['GET', '/rest/v1', '/rest/v1'],
      ['POST', '/auth/v1/token?grant_type=password', '/auth/v1'],
      ['GET', '/auth/v1/user', '/auth/v1'],
      ['GET', '/storage/v1/object/attachments/a.txt', '/storage/v1'],
    ]) {
      const res = await fetch(api(p), { method });
      const body = await res.json();
      expect([res.status, body.error.code, body.error.details.api], p).toEqual([404, 'not_served_locally', apiPrefix]);
      expect(body.error.message).toContain('supabase start');
      expect(body.error.message).toContain('npm start -- --db-url');
    }
    const signed = await fetch(api('/storage/v1/local/upload/x'));
    expect((await signed.json()).error?.code).not.toBe('not_served_locally');
  });
});

describe('a second npm start', () => {
  it('on the same folder or ports says what is running where, before starting anything', async () => {
    const other = path.join(dir, 'other');
    const [freeA, freeB] = [await freePort(), await freePort()];
    const cases: [string[], string][] = [
      [['--data-dir', dir, '--port', String(port), '--db-port', String(dbPort)], `already running on ${port} with data dir ${dir}`],
      [['--data-dir', dir, '--port', String(freeA), '--db-port', String(freeB)], `already running on ${port} with data dir ${dir}`],
      [['--data-dir', other, '--port', String(port), '--db-port', String(freeB)], `already running on ${port} with data dir ${dir}`],
      [['--data-dir', other, '--port', String(freeA), '--db-port', String(dbPort)], `port ${dbPort} (PostgreSQL) is in use`],
    ];
    for (const [args, message] of cases) {
      const r = await script('scripts/start.mjs', args);
      expect(r.code, args.join(' ')).toBe(1);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.stderr + r.stdout).not.toContain('undefined');
      expect(r.stderr).not.toMatch(/^\s+at /m);
      expect(r.stdout).not.toContain('starting embedded PostgreSQL');
    }
    expect(existsSync(other)).toBe(false);
    // The first stack runs on, and still holds its folder.
    expect((await fetch(api('/health'))).status).toBe(200);
    expect(JSON.parse(readFileSync(path.join(dir, 'stack.lock'), 'utf8')).port).toBe(port);
  });

  it("the banner's token and sign-up commands name this data folder and work as printed", async () => {
    const tokenCommand = bannerValue('More tokens:');
    const signUp = bannerValue('Sign up:');
    expect(tokenCommand).toBe(`npm run -s token -- <email> --tenant <slug> --data-dir ${dir}`);
    expect(signUp).toBe(`npm run user -- add <email> --name "First Last" --data-dir ${dir}`);
    const env = { PLATFORM_DATA_DIR: undefined }; // only what the command itself says
    await bash(signUp.replace('<email>', 'newcomer@acme.test'), env);
    const token = (await bash(tokenCommand.replace('<email>', 'admin@acme.test').replace('<slug>', 'acme'), env)).stdout.trim();
    expect((await me(token)).body).toMatchObject({ role: 'admin', active_tenant: { slug: 'acme' } });
    const newcomer = (await bash(`npm run -s token -- newcomer@acme.test --data-dir ${dir}`, env)).stdout.trim();
    expect((await me(newcomer)).body).toMatchObject({ user: { first_name: 'First', last_name: 'Last' }, memberships: [] });
  });
});
