// Configuration comes from the environment in both runtimes: Deno in production and
// `npm start`, Node under vitest. An empty variable counts as unset.
type DenoLike = { env: { get(name: string): string | undefined } };
type NodeLike = { env: Record<string, string | undefined> };

export function env(name: string): string | undefined {
  const g = globalThis as { Deno?: DenoLike; process?: NodeLike };
  const value = g.Deno ? g.Deno.env.get(name) : g.process?.env[name];
  return value === undefined || value === '' ? undefined : value;
}

export function requireEnv(name: string): string {
  const value = env(name);
  if (value === undefined) throw new Error(`${name} is not set`);
  return value;
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

/** The well-known secret of every local Supabase stack. Never valid on a hosted project. */
export const LOCAL_DEV_JWT_SECRET = 'super-secret-jwt-token-with-at-least-32-characters-long';

/** Whether a URL points at this machine (the local stack): loopback names and addresses. */
export function isLoopbackUrl(url: string): boolean {
  try {
    return isLoopbackHost(new URL(url).hostname);
  } catch {
    return false;
  }
}

export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase().replace(/\.$/, '');
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '[::1]' ||
    host === '::1';
}
