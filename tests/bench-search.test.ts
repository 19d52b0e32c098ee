// `npm run bench:search` (scripts/bench-tickets-search.mjs) at a tiny scale: it runs end
// to end on its own Postgres and functions server, measures every query of its fixed set
// on both paths and over HTTP, writes the JSON, and nothing it started outlives it. No
// assertion on speed or on the overlap's value.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { root } from '../scripts/stack.mjs';

interface Timing {
  n: number;
  p50Ms: number;
  p99Ms: number;
}
interface Report {
  tickets: number;
  reps: number;
  meanOverlap: number;
  overall: { candidates: Timing; exact: Timing; http: Timing };
  queries: { query: string; matches: number; overlap: number; candidates: Timing; exact: Timing; http: Timing }[];
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
  dir = await mkdtemp(path.join(os.tmpdir(), 'platform-bench-search-test-'));
});

afterAll(async () => {
  if (child && child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await exited(child);
  }
  await rm(dir, { recursive: true, force: true });
}, 60_000);

describe('npm run bench:search -- --quick --tickets 2000 --reps 1', () => {
  it('measures all 22 queries on both paths and over HTTP, writes the JSON and leaves nothing running', async () => {
    const out = path.join(dir, 'search.json');
    const proc = spawn(
      process.execPath,
      ['scripts/bench-tickets-search.mjs', '--quick', '--tickets', '2000', '--reps', '1', '--out', out],
      { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    let stdout = '';
    let stderr = '';
    proc.stdout!.on('data', (d) => (stdout += d));
    proc.stderr!.on('data', (d) => (stderr += d));
    const code = await exited(proc);
    expect(code, `exit code; stderr:\n${stderr.slice(-3000)}\nstdout:\n${stdout.slice(-3000)}`).toBe(0);
    expect(stdout.trim().split('\n').at(-1)).toBe(out);

    const report = JSON.parse(await readFile(out, 'utf8')) as Report;
    expect([report.tickets, report.reps]).toEqual([2000, 1]);
    expect(report.queries.length).toBe(22);
    for (const q of report.queries) {
      for (const t of [q.candidates, q.exact, q.http]) expect([t.n, Number.isFinite(t.p50Ms)], q.query).toEqual([1, true]);
      // A fraction of the exact top results the candidates found (a NaN fails both).
      expect(q.overlap >= 0 && q.overlap <= 1, `${q.query}: ${q.overlap}`).toBe(true);
      expect(stdout, `the table has a row for ${q.query}`).toContain(q.query);
    }
    expect(report.overall.candidates.n).toBe(22);
    expect(report.meanOverlap > 0 && report.meanOverlap <= 1, String(report.meanOverlap)).toBe(true);

    expect(existsSync(report.started.tempDir), report.started.tempDir).toBe(false);
    expect(alive(report.started.postgresPid), 'postgres still running').toBe(false);
    expect(alive(report.started.serverPid), 'functions server still running').toBe(false);
  }, 300_000);
});
