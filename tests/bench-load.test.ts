// The load stage of `npm run bench` (scripts/bench-load.mjs) at its quick scale: it runs
// end to end on its own Postgres and functions server, every path answers (no non-2xx,
// no errors) at concurrency 4, the JSON it writes says so, and nothing it started
// outlives it — its temp folder, Postgres and the functions server are gone. No
// assertion on speed.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../scripts/stack.mjs';

const PATHS = [
  'raw',
  'bare RLS transaction',
  'HTTP GET teams',
  'HTTP GET open tickets',
  'raw ticket insert',
  'HTTP POST ticket',
];

interface Result {
  path: string;
  concurrency: number;
  reqPerS: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  errors: number;
}

interface Report {
  scale: string;
  ok: boolean;
  concurrencies: number[];
  results: Result[];
  ratios: { name: string; concurrency: number; reqPerS: number }[];
  started: { tempDir: string; postgresPid: number; serverPid: number };
}

let dir: string;
let child: ChildProcess | undefined;

function exited(proc: ChildProcess): Promise<number | null> {
  if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve(proc.exitCode);
  return new Promise((resolve) => proc.once('exit', (code) => resolve(code)));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'platform-bench-load-test-'));
});

afterAll(async () => {
  // A run cut short by the timeout: SIGTERM makes the script stop what it started.
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await exited(child);
  }
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('npm run bench:load -- --quick', () => {
  it('measures every path at concurrency 4 without a failed request, writes the JSON and leaves nothing running', async () => {
    const out = path.join(dir, 'load.json');
    const proc = spawn(process.execPath, ['scripts/bench-load.mjs', '--quick', '--out', out], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d) => (stdout += d));
    proc.stderr!.on('data', (d) => (stderr += d));
    const code = await exited(proc);
    expect(code, `exit code; stderr:\n${stderr.slice(-3000)}\nstdout:\n${stdout.slice(-3000)}`).toBe(0);
    expect(stdout.trim().split('\n').at(-1)).toBe(out);

    const report = JSON.parse(await readFile(out, 'utf8')) as Report;
    expect(report.scale).toBe('quick');
    expect(report.concurrencies).toEqual([4]);
    expect(report.ok).toBe(true);
    for (const name of PATHS) {
      const r = report.results.find((x) => x.path === name && x.concurrency === 4);
      expect(r, `${name} at concurrency 4`).toBeDefined();
      expect(r!.reqPerS, name).toBeGreaterThan(0);
      expect(r!.non2xx, name).toBe(0);
      expect(r!.errors, name).toBe(0);
      expect(Number.isFinite(r!.p50Ms) && Number.isFinite(r!.p99Ms), name).toBe(true);
      expect(stdout, `the table has a row for ${name}`).toContain(name);
    }
    expect(report.ratios.filter((r) => r.concurrency === 4).map((r) => r.name).sort()).toEqual([
      'HTTP GET teams ÷ bare RLS transaction',
      'HTTP POST ticket ÷ raw ticket insert',
    ]);

    // Nothing it started is left: its temp folder, Postgres, the functions server.
    expect(existsSync(report.started.tempDir), report.started.tempDir).toBe(false);
    expect(alive(report.started.postgresPid), 'postgres still running').toBe(false);
    expect(alive(report.started.serverPid), 'functions server still running').toBe(false);
  }, 180_000);
});
