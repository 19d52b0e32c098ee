// Starts the real local functions server (Deno, scripts/serve.ts) on a free port for
// end-to-end tests, with the given environment.
import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { freePort, root } from '../../scripts/stack.mjs';

export interface FunctionsServer {
  url: string;
  stop(): Promise<void>;
}

export async function startFunctionsServer(env: Record<string, string>): Promise<FunctionsServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    path.join(root, 'node_modules', '.bin', 'deno'),
    ['run', '--allow-net', '--allow-env', '--allow-read', '--allow-write', '--quiet', '--unstable-no-legacy-abort', 'scripts/serve.ts'],
    {
      cwd: root,
      // Signed storage URLs must point at this server, whatever SUPABASE_URL says.
      env: { ...process.env, LOCAL_STORAGE_PUBLIC_URL: `http://127.0.0.1:${port}`, ...env, PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`functions server did not start:\n${output}`)), 60_000);
    const onData = (d: Buffer) => {
      output += d;
      if (output.includes('functions listening')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (d) => (output += d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`functions server exited (${code}):\n${output}`));
    });
  });
  return {
    url: `http://127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.removeAllListeners('exit');
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
