// Starts the real local functions server (Deno, scripts/serve.ts) on a free port for
// end-to-end tests: the test process's environment (the database URL and issuers that
// configureAuth set included) plus the given variables, which win.
import { childRunning, freePort, spawnFunctionsServer } from '../../scripts/stack.mjs';

export interface FunctionsServer {
  url: string;
  /** The server's process id (the benches read its CPU time). */
  pid: number | undefined;
  /** True while the server process runs. */
  alive(): boolean;
  /** What the server printed so far. */
  output(): string;
  stop(): Promise<void>;
}

/** The local functions server, or with `opts.fn` that one function as the platform runs
 *  it (functions/<fn>/index.ts, Deno.serve): its routes at `${url}/<fn>/…`, as the hosted
 *  gateway hands them over; or with `opts.entry` another Deno.serve program (a path from
 *  the project's root), with the same environment. */
export async function startFunctionsServer(
  env: Record<string, string>,
  opts: { fn?: string; entry?: string } = {},
): Promise<FunctionsServer> {
  const port = await freePort();
  const server = spawnFunctionsServer({
    ...process.env,
    // What `npm start` passes: this is the local stack (an env argument may unset it).
    PLATFORM_LOCAL_STACK: '1',
    // Signed storage URLs must point at this server, whatever SUPABASE_URL says.
    LOCAL_STORAGE_PUBLIC_URL: `http://127.0.0.1:${port}`,
    ...env,
    PORT: String(port),
    // Where Deno.serve listens when it runs one function alone.
    ...(opts.fn || opts.entry ? { DENO_SERVE_ADDRESS: `tcp:127.0.0.1:${port}` } : {}),
  }, opts);
  const timeout = new Promise<never>((_, reject) =>
    setTimeout(() => reject(new Error(`functions server did not start:\n${server.output()}`)), 60_000).unref()
  );
  const child = server.child;
  // A server that never got ready is nobody's to stop (the caller has no handle on it):
  // it goes now, not with the machine.
  await Promise.race([server.ready, timeout]).catch((err) => {
    if (childRunning(child)) child.kill('SIGKILL');
    throw err;
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: child.pid,
    alive: () => childRunning(child),
    output: server.output,
    stop: () =>
      new Promise((resolve) => {
        if (!childRunning(child)) return resolve();
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
