// `npm test` stopped by Ctrl-C: vitest exits without its global teardown, and the run's
// temp folder (an embedded cluster of a few hundred MB, its stored files) must go anyway,
// with the PostgreSQL that ran in it. A vitest run is started here in its own process group
// with its own TMPDIR, interrupted as a terminal does once a test file has its database,
// and its folder is looked for afterwards.
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { root } from '../../scripts/stack.mjs';

let tmp: string | undefined;

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

/** Processes working in `dir` or naming it (every postgres process of a cluster works in
 *  its data folder; only the postmaster names it on its command line). */
function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      const cwd = (() => {
        try {
          return readlinkSync(`/proc/${pid}/cwd`);
        } catch {
          return '';
        }
      })();
      if (cmd.includes(dir) || cwd.startsWith(dir)) found.push(`${pid}: ${cmd}`);
    } catch { /* gone meanwhile */ }
  }
  return found;
}

/** A node program of the project's started as a terminal would (its own process group, a
 *  shell's environment — not this worker's, whose vitest variables steer a nested run —,
 *  its own TMPDIR), its output gathered, its exit awaited (128 for a signal). */
function spawnInterruptible(args: string[], tmpdir: string) {
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, LANG: process.env.LANG ?? 'C.UTF-8', TMPDIR: tmpdir };
  const child = spawn(process.execPath, args, { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const run = { child, output: '', exited: undefined as unknown as Promise<number | null> };
  child.stdout!.on('data', (d) => (run.output += d));
  child.stderr!.on('data', (d) => (run.output += d));
  run.exited = new Promise<number | null>((r) => child.once('exit', (code, signal) => r(code ?? (signal ? 128 : null))));
  return run;
}

it('Ctrl-C during a test file leaves no temp folder and no PostgreSQL behind', async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'platform-interrupt-'));
  // Run as root, the cluster's initdb (as the postgres user) reads a password file here.
  await chmod(tmp, 0o755);
  const run = spawnInterruptible([path.join(root, 'node_modules/vitest/vitest.mjs'), 'run', 'tests/webhooks.test.ts'], tmp);
  const { child, exited } = run;
  let code: number | null;
  try {
    // The run's folder, once its cluster holds a database cloned for a test file (template0,
    // template1, postgres and the migrated template are the first four; `base` holds one
    // folder per database, named by its oid).
    const deadline = Date.now() + 90_000;
    let cloned = false;
    while (Date.now() < deadline && child.exitCode === null && !cloned) {
      const runDir = readdirSync(tmp).find((f) => f.startsWith('platform-test-'));
      const base = runDir && path.join(tmp, runDir, 'data', 'base');
      cloned = !!base && existsSync(base) && readdirSync(base).filter((d) => /^\d+$/.test(d)).length >= 5;
      if (!cloned) await new Promise((r) => setTimeout(r, 100));
    }
    expect(cloned, run.output).toBe(true);
    expect(child.exitCode, run.output).toBeNull();
    process.kill(-child.pid!, 'SIGINT');
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
    code = await exited;
    clearTimeout(timer);
  } finally {
    // Whatever failed above, the nested run does not outlive this test.
    if (child.exitCode === null && child.signalCode === null) {
      process.kill(-child.pid!, 'SIGKILL');
      await exited;
    }
  }

  expect(code, run.output).not.toBe(0);
  // (The Supabase CLI unpacks a helper library into TMPDIR too; only the run's folder counts.)
  expect(readdirSync(tmp).filter((f) => f.startsWith('platform-test-')), run.output).toEqual([]);
  // A killed server's children notice within moments; none is left after that.
  for (let i = 0; i < 50 && processesUnder(tmp).length; i++) await new Promise((r) => setTimeout(r, 100));
  expect(processesUnder(tmp)).toEqual([]);
}, 180_000);

it("Ctrl-C during `node scripts/catalog-snapshot.mjs` (and gen:types, written alike) leaves no cluster folder and no PostgreSQL behind", async () => {
  const own = await mkdtemp(path.join(os.tmpdir(), 'platform-interrupt-'));
  try {
    await chmod(own, 0o755);
    const run = spawnInterruptible(['scripts/catalog-snapshot.mjs', '--out', path.join(own, 'catalog.txt')], own);
    const { child, exited } = run;
    try {
      // Once its cluster runs (the postmaster's pid file is written).
      const deadline = Date.now() + 90_000;
      let running = false;
      while (Date.now() < deadline && child.exitCode === null && !running) {
        const dir = readdirSync(own).find((f) => f.startsWith('platform-catalog-'));
        running = !!dir && existsSync(path.join(own, dir, 'data', 'postmaster.pid'));
        if (!running) await new Promise((r) => setTimeout(r, 100));
      }
      expect(running, run.output).toBe(true);
      process.kill(-child.pid!, 'SIGINT');
      const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), 30_000);
      await exited;
      clearTimeout(timer);
    } finally {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(-child.pid!, 'SIGKILL');
        await exited;
      }
    }
    expect(readdirSync(own).filter((f) => f.startsWith('platform-catalog-')), run.output).toEqual([]);
    for (let i = 0; i < 50 && processesUnder(own).length; i++) await new Promise((r) => setTimeout(r, 100));
    expect(processesUnder(own)).toEqual([]);
  } finally {
    await rm(own, { recursive: true, force: true });
  }
}, 180_000);
