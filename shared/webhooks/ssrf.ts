// Where outbound webhooks may go: https to public hosts on a hosted project. Loopback is
// allowed only in the local stack (a loopback SUPABASE_URL), so tests and local
// receivers work. Checked at registration and again before every delivery.
import { lookup } from 'node:dns/promises';
import { supabaseUrl } from '../auth/issuers.ts';
import { isLoopbackHost, isLoopbackUrl } from '../env.ts';

const PRIVATE_V4 = [
  /^10\./,
  /^127\./,
  /^0\./,
  /^169\.254\./,
  /^192\.168\./,
  /^172\.(1[6-9]|2\d|3[01])\./,
  /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./,
];

/** The local stack (a loopback SUPABASE_URL) may send webhooks to this machine. */
export function localStack(): boolean {
  return isLoopbackUrl(supabaseUrl());
}

function privateAddress(address: string): boolean {
  const a = address.toLowerCase();
  if (a.includes(':')) {
    return a === '::1' || a === '::' || /^f[cd]/.test(a) || /^fe[89ab]/.test(a) || a.startsWith('::ffff:');
  }
  return PRIVATE_V4.some((r) => r.test(a));
}

/** Null when the URL may receive webhooks, else why not (from the URL alone). */
export function webhookTargetProblem(raw: string, allowLoopback = localStack()): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (url.username || url.password) return 'credentials in the URL are not allowed';
  // "localhost." and "metadata.internal." are the same hosts as without the dot.
  const host = url.hostname.toLowerCase().replace(/\.$/, '');
  if (allowLoopback && isLoopbackHost(host)) return null;
  if (url.protocol !== 'https:') return 'only https targets are allowed';
  if (isLoopbackHost(host) || PRIVATE_V4.some((r) => r.test(host))) {
    return 'private and loopback addresses are not allowed';
  }
  if (host.startsWith('[') && privateAddress(host.slice(1, -1))) {
    return 'private and loopback addresses are not allowed';
  }
  if (host.endsWith('.internal') || host.endsWith('.local') || !host.includes('.')) {
    return 'internal host names are not allowed';
  }
  return null;
}

/** The full check: the URL, then every address its host resolves to (a public name can
 *  point at a private address). The check and the request resolve separately, so a
 *  name that changes its answer in between is not caught: infrastructure egress rules
 *  are the last line. */
export async function resolvedTargetProblem(
  raw: string,
  allowLoopback = localStack(),
): Promise<string | null> {
  const problem = webhookTargetProblem(raw, allowLoopback);
  if (problem) return problem;
  const host = new URL(raw).hostname.toLowerCase().replace(/\.$/, '').replace(/^\[|\]$/g, '');
  if (allowLoopback && isLoopbackHost(host)) return null;
  if (/^[\d.]+$/.test(host) || host.includes(':')) return null; // a literal address, checked above
  try {
    const addresses = await lookup(host, { all: true });
    if (addresses.some((a) => privateAddress(a.address))) return 'the host resolves to a private address';
  } catch {
    return 'the host name does not resolve';
  }
  return null;
}
