// Where outbound webhooks may go: https to public hosts on a hosted project. Loopback is
// allowed only in the local stack (a loopback SUPABASE_URL), so tests and local
// receivers work. Checked at registration and again before every delivery.
import { supabaseUrl } from '../auth/issuers.ts';

const PRIVATE_V4 = [
  /^10\./, /^127\./, /^0\./, /^169\.254\./, /^192\.168\./, /^172\.(1[6-9]|2\d|3[01])\./, /^100\.(6[4-9]|[7-9]\d|1[01]\d|12[0-7])\./,
];

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host.endsWith('.localhost') || /^127\./.test(host) || host === '[::1]';
}

export function localStack(): boolean {
  return isLoopbackHost(new URL(supabaseUrl()).hostname);
}

/** Null when the URL may receive webhooks, else why not. */
export function webhookTargetProblem(raw: string, allowLoopback = localStack()): string | null {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'not a URL';
  }
  if (url.username || url.password) return 'credentials in the URL are not allowed';
  const host = url.hostname.toLowerCase();
  if (allowLoopback && isLoopbackHost(host)) return null;
  if (url.protocol !== 'https:') return 'only https targets are allowed';
  if (isLoopbackHost(host) || PRIVATE_V4.some((r) => r.test(host))) return 'private and loopback addresses are not allowed';
  if (host.startsWith('[')) {
    const v6 = host.slice(1, -1);
    if (v6 === '::1' || /^f[cd]/.test(v6) || /^fe[89ab]/.test(v6) || v6.startsWith('::ffff:')) {
      return 'private and loopback addresses are not allowed';
    }
  }
  if (host.endsWith('.internal') || host.endsWith('.local') || !host.includes('.')) return 'internal host names are not allowed';
  return null;
}
