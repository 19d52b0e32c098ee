// The command-line scripts fail helpfully, without a stack running: `npm start`'s usage
// and argument errors, a port taken by another program or another stack, and
// `npm run token` / `npm run user` pointed at a folder where no stack runs. Every run is
// bounded; the only traffic is to 127.0.0.1.
import { execFile, spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, OUTPUT_KEPT, root, spawnFunctionsServer, supabaseCli } from '../scripts/stack.mjs';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function run(file: string, args: string[], env: Record<string, string | undefined> = {}): Promise<Run> {
  const full: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete full[k];
  return new Promise((resolve) => {
    execFile(process.execPath, [file, ...args], { cwd: root, env: full, timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr });
    });
  });
}

/** No stack trace, no `undefined`: what a person reads is a sentence. */
function readable(r: Run) {
  expect(r.stdout + r.stderr).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  expect(r.stdout + r.stderr).not.toContain('undefined');
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'platform-cli-'));
  await chmod(dir, 0o755);
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('npm start: usage', () => {
  it('--help prints the usage and exits 0', async () => {
    for (const flag of ['--help', '-h']) {
      const r = await run('scripts/start.mjs', [flag]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('usage: npm start');
      for (const option of ['--port', '--db-port', '--data-dir', '--db-url']) expect(r.stdout).toContain(option);
      readable(r);
    }
  });

  it('an unknown flag, a stray argument, a port or a job interval that is not a number prints the usage and exits 2', async () => {
    const cases: [string[], Record<string, string>, string][] = [
      [['--bogus'], {}, "Unknown option '--bogus'"],
      [['--data-dir'], {}, '--data-dir'],
      [['start'], {}, 'start'],
      [['--port', 'abc'], {}, '--port must be a port number (1-65535), not "abc"'],
      [['--port', '70000'], {}, '--port must be a port number'],
      [['--db-port', '-1'], {}, '--db-port'],
      [[], { PORT: 'eighty' }, '--port must be a port number (1-65535), not "eighty"'],
      [[], { JOBS_INTERVAL_S: 'soon' }, 'JOBS_INTERVAL_S must be a number of seconds (0.1-3600), not "soon"'],
      [[], { JOBS_INTERVAL_S: '0' }, 'JOBS_INTERVAL_S must be a number of seconds'],
    ];
    for (const [args, env, message] of cases) {
      const r = await run('scripts/start.mjs', [...args, '--data-dir', path.join(dir, 'never')], env);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toContain(message);
      expect(r.stderr, args.join(' ')).toContain('usage: npm start');
      readable(r);
    }
    expect(existsSync(path.join(dir, 'never'))).toBe(false);
  });
});

describe('npm start: a port already taken', () => {
  let servers: (Server | net.Server)[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
    servers = [];
  });
  const listen = async (server: Server | net.Server) => {
    const port = await freePort();
    await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
    servers.push(server);
    return port;
  };

  it('by another program: says which port, starts nothing, creates nothing', async () => {
    const taken = await listen(net.createServer((s) => s.destroy()));
    const dataDir = path.join(dir, 'fresh');
    const r = await run('scripts/start.mjs', ['--port', String(taken), '--db-port', String(await freePort()), '--data-dir', dataDir]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`port ${taken} (functions) is in use by another program`);
    expect(r.stdout).not.toContain('starting embedded PostgreSQL');
    expect(existsSync(dataDir)).toBe(false);
    readable(r);

    const dbTaken = await listen(net.createServer((s) => s.destroy()));
    const db = await run('scripts/start.mjs', ['--port', String(await freePort()), '--db-port', String(dbTaken), '--data-dir', dataDir]);
    expect([db.code, db.stderr]).toEqual([1, expect.stringContaining(`port ${dbTaken} (PostgreSQL) is in use`)]);
    readable(db);
  });

  it('by another local stack: names the data folder it runs with', async () => {
    const other = path.join(dir, 'the other one');
    const port = await listen(createServer((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ ok: true, functions: ['tenants'], data_dir: other }));
    }));
    const r = await run('scripts/start.mjs', ['--port', String(port), '--db-port', String(await freePort()), '--data-dir', path.join(dir, 'mine')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`already running on ${port} with data dir ${other}`);
    readable(r);
  });

  it('a data folder whose stack died is not held: its lock is stale', async () => {
    // A process that has exited: its pid holds nothing.
    const gone = spawn(process.execPath, ['-e', '']);
    await new Promise((r) => gone.once('exit', r));
    const dataDir = path.join(dir, 'stale');
    await mkdir(dataDir);
    await writeFile(path.join(dataDir, 'stack.lock'), JSON.stringify({ pid: gone.pid, port: 1, dataDir }));
    const taken = await listen(net.createServer((s) => s.destroy()));
    // It gets past the folder check and stops at the port this test holds.
    const r = await run('scripts/start.mjs', ['--port', String(taken), '--data-dir', dataDir]);
    expect(r.stderr).toContain(`port ${taken} (functions) is in use`);
    expect(r.stderr).not.toContain('already running');
  });
});

describe('npm run token and npm run user without a stack', () => {
  it('a data folder where no stack runs: says so, and how to name the folder', async () => {
    const nowhere = path.join(dir, 'no-stack-here');
    for (const [file, args] of [
      ['scripts/token.mjs', ['admin@acme.test', '--data-dir', nowhere]],
      ['scripts/user.mjs', ['add', 'someone@acme.test', '--data-dir', nowhere]],
    ] as const) {
      const r = await run(file, [...args]);
      expect(r.code, file).toBe(1);
      expect(r.stderr).toContain(`No local stack is running with data dir ${nowhere}`);
      expect(r.stderr).toContain(`npm start -- --data-dir ${nowhere}`);
      expect(r.stderr).toContain('--data-dir <folder>');
      expect(r.stderr).toContain('PLATFORM_DATA_DIR');
      readable(r);
    }
    const viaEnv = await run('scripts/token.mjs', ['admin@acme.test'], { PLATFORM_DATA_DIR: nowhere });
    expect([viaEnv.code, viaEnv.stderr]).toEqual([1, expect.stringContaining(`with data dir ${nowhere}`)]);
  });

  it('a folder whose stack has stopped: says it is stopped', async () => {
    const stopped = path.join(dir, 'stopped');
    await mkdir(stopped);
    await writeFile(path.join(stopped, 'stack.json'), JSON.stringify({ dbUrl: 'postgresql://127.0.0.1:1/x', secret: 'x' }));
    const r = await run('scripts/token.mjs', ['admin@acme.test', '--data-dir', stopped]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining('it was started there before, but is stopped')]);
    readable(r);
  });

  it('usage: --help exits 0; a missing or malformed argument exits 2', async () => {
    for (const file of ['scripts/token.mjs', 'scripts/user.mjs']) {
      const help = await run(file, ['--help']);
      expect([help.code, help.stdout], file).toEqual([0, expect.stringContaining('usage: npm run')]);
    }
    const cases: [string, string[], string][] = [
      ['scripts/token.mjs', [], 'the e-mail address is missing'],
      ['scripts/token.mjs', ['a@b.test', '--tennant', 'acme'], "Unknown option '--tennant'"],
      ['scripts/user.mjs', [], 'the command is missing'],
      ['scripts/user.mjs', ['remove', 'a@b.test'], 'unknown command "remove"'],
      ['scripts/user.mjs', ['add'], 'the e-mail address is missing'],
      ['scripts/user.mjs', ['add', 'not-an-address'], 'not an e-mail address'],
      ['scripts/user.mjs', ['add', 'a@b.test', '--nmae', 'X'], "Unknown option '--nmae'"],
    ];
    for (const [file, args, message] of cases) {
      const r = await run(file, [...args, '--data-dir', path.join(dir, 'none')]);
      expect([r.code, r.stderr], `${file} ${args.join(' ')}`).toEqual([2, expect.stringContaining(message)]);
      expect(r.stderr).toContain('usage: npm run');
      readable(r);
    }
    // Nine node processes one after another: ~1 s each alone, several under a loaded suite.
  }, 120_000);
});

describe('the functions server a script starts', () => {
  it('keeps only the tail of what the server prints, however long it runs', async () => {
    const server = spawnFunctionsServer({ ...process.env }, { entry: 'tests/helpers/noisy-server.deno.ts' });
    try {
      await server.ready;
      for (let i = 0; i < 600 && !server.output().includes('last line'); i++) await new Promise((r) => setTimeout(r, 50));
      expect(server.output()).toContain('last line');
      expect(server.output().length).toBeLessThanOrEqual(OUTPUT_KEPT);
    } finally {
      server.child.kill();
    }
  });
});

describe('a database password', () => {
  it('is masked in the error of a Supabase CLI command that names the database', async () => {
    // A closed port: the CLI fails to connect, and its message names the command.
    const r = await run('scripts/gen-types.mjs', ['--db-url', `postgresql://postgres:s3cr3t-pw@127.0.0.1:${await freePort()}/x`]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('postgresql://postgres:***@127.0.0.1:');
    expect(r.stdout + r.stderr).not.toContain('s3cr3t-pw');
  });
});

describe('the Supabase CLI', () => {
  it('leaves nothing in the temp folder: the native helper it unpacks there goes with the run', async () => {
    const own = await mkdtemp(path.join(os.tmpdir(), 'platform-cli-tmp-'));
    const before = process.env.TMPDIR;
    process.env.TMPDIR = own;
    try {
      // A database command loads it (`--version` does not); this one fails at once, as no
      // database listens on port 1.
      await expect(supabaseCli(['db', 'push', '--db-url', 'postgresql://nobody:none@127.0.0.1:1/none', '--dry-run']))
        .rejects.toThrow(/supabase db push/);
      expect(readdirSync(own)).toEqual([]);
    } finally {
      if (before === undefined) delete process.env.TMPDIR;
      else process.env.TMPDIR = before;
      await rm(own, { recursive: true, force: true });
    }
  });
});
