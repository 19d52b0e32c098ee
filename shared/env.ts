// Configuration comes from the environment in both runtimes: Deno in production and
// `npm start`, Node under vitest. An empty variable counts as unset.
type DenoLike = { env: { get(name: string): string | undefined } };
type NodeLike = { env: Record<string, string | undefined> };

// Deno's environment does not change while a worker runs (the platform starts new
// workers when secrets change; nothing here sets a variable), and each Deno.env.get is a
// call into the runtime (0.85 µs measured; a /route request made ten, about 4% of its
// CPU). So Deno's values are read once. Node (vitest) reads process.env every time:
// tests change it.
const denoValues = new Map<string, string | undefined>();

export function env(name: string): string | undefined {
  const g = globalThis as { Deno?: DenoLike; process?: NodeLike };
  let value: string | undefined;
  if (g.Deno) {
    value = denoValues.get(name);
    if (value === undefined && !denoValues.has(name)) denoValues.set(name, value = g.Deno.env.get(name));
  } else {
    value = g.process?.env[name];
  }
  return value === undefined || value === '' ? undefined : value;
}

export function requireEnv(name: string): string {
  const value = env(name);
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
}

const warned = new Set<string>();

/** A whole number from the environment, parsed strictly (digits only, within
 *  [min, max]). Unset gives the default; anything else gives the default too, with one
 *  log line per bad value. Falling back rather than failing closed: every default is
 *  itself a bound (a size, a timeout, a pool), while refusing to start over a typo would
 *  take the whole API down. */
export function envInt(name: string, fallback: number, min: number, max: number): number {
  const raw = env(name);
  if (raw === undefined) return fallback;
  const value = /^\d{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
  if (Number.isSafeInteger(value) && value >= min && value <= max) return value;
  if (!warned.has(`${name}=${raw}`)) {
    warned.add(`${name}=${raw}`);
    console.error(
      `[env] ${name}=${JSON.stringify(raw.slice(0, 40))} is not a whole number between ${min} and ${max}; ` +
        `using the default ${fallback}`,
    );
  }
  return fallback;
}

/** A list variable: a JSON array or object of values (the new Supabase key variables
 *  are JSON objects name → key), or a comma-separated string. */
export function envList(name: string): string[] {
  const raw = env(name);
  if (!raw) return [];
  if (raw.startsWith('[') || raw.startsWith('{')) {
    const parsed = JSON.parse(raw) as unknown;
    const values = Array.isArray(parsed) ? parsed : Object.values(parsed as Record<string, unknown>);
    return values.filter((v): v is string => typeof v === 'string' && v !== '');
  }
  return raw.split(',').map((s) => s.trim()).filter(Boolean);
}

/** The well-known secret of every local Supabase stack. Never valid on a hosted project:
 *  accepted only where isLocalStack() says so, even when configured explicitly. */
export const LOCAL_DEV_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

/** Whether this process is the local development stack: `npm start` (and the test
 *  helpers) set PLATFORM_LOCAL_STACK=1 when they spawn the functions; a hosted project
 *  never does. This one setting decides everything that exists only locally — the
 *  well-known development JWT secret, the local storage backend and its signing
 *  secret, webhooks to loopback receivers, reading pre-binding ciphertexts — never the
 *  shape of SUPABASE_URL (unset or loopback proves nothing about where code runs). */
export function isLocalStack(): boolean {
  return env('PLATFORM_LOCAL_STACK') === '1';
}

/** Loopback names and addresses (this machine). */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  // 127.x.y.z as an address only: a name such as 127.hooks.example.com may resolve anywhere.
  return host === 'localhost' || host.endsWith('.localhost') || /^127(\.\d{1,3}){3}$/.test(host) || host === '[::1]' ||
    host === '::1';
}
