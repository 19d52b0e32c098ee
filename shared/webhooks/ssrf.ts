// Where outbound webhooks may go: https to public hosts on a hosted project. Loopback is
// allowed only in the local stack (PLATFORM_LOCAL_STACK=1), so tests and local
// receivers work. Checked at registration and again before every delivery.
//
// Addresses are parsed, not pattern-matched: an IPv4 address is public unless it lies in
// one of IANA's special-purpose ranges below; an IPv6 address is public only inside
// global unicast (2000::/3) and outside its special ranges, and an IPv6 form that embeds
// an IPv4 address (IPv4-mapped, IPv4-compatible, NAT64, 6to4, Teredo) is judged by the
// address it embeds — or refused where that cannot be known.
import { lookup } from 'node:dns/promises';
import { isLocalStack, isLoopbackHost } from '../env.ts';

/** IANA IPv4 special-purpose ranges (RFC 6890 and successors) plus multicast and the
 *  reserved 240/4: none is a webhook receiver on the public Internet. */
const BLOCKED_V4: [string, number][] = [
  ['0.0.0.0', 8], // "this network"
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.0.2.0', 24], // TEST-NET-1
  ['192.31.196.0', 24], // AS112-v4
  ['192.52.193.0', 24], // AMT
  ['192.88.99.0', 24], // 6to4 relay anycast (deprecated)
  ['192.168.0.0', 16], // private
  ['192.175.48.0', 24], // direct delegation AS112
  ['198.18.0.0', 15], // benchmarking
  ['198.51.100.0', 24], // TEST-NET-2
  ['203.0.113.0', 24], // TEST-NET-3
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, and 255.255.255.255 broadcast
];

/** The four bytes of a dotted-quad IPv4 address, or undefined. */
export function parseIPv4(text: string): number[] | undefined {
  const m = text.match(/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/);
  if (!m) return undefined;
  const bytes = m.slice(1).map(Number);
  return bytes.every((b) => b <= 255) ? bytes : undefined;
}

/** The sixteen bytes of an IPv6 address (with or without brackets, `::`, a trailing
 *  dotted IPv4 part; no zone), or undefined. */
export function parseIPv6(text: string): number[] | undefined {
  let s = text.replace(/^\[|\]$/g, '').toLowerCase();
  if (!s.includes(':') || s.includes('%')) return undefined;
  const tail: number[] = [];
  const v4 = s.match(/^(.*:)(\d{1,3}(?:\.\d{1,3}){3})$/);
  if (v4) {
    const bytes = parseIPv4(v4[2]);
    if (!bytes) return undefined;
    tail.push(bytes[0] << 8 | bytes[1], bytes[2] << 8 | bytes[3]);
    s = v4[1].endsWith('::') ? v4[1] : v4[1].slice(0, -1);
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string) => (part === '' ? [] : part.split(':'));
  const head = groups(halves[0]);
  const rest = halves.length === 2 ? groups(halves[1]) : [];
  if ([...head, ...rest].some((g) => !/^[0-9a-f]{1,4}$/.test(g))) return undefined;
  const words = [...head, ...rest].map((g) => parseInt(g, 16));
  const missing = 8 - words.length - tail.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const all = [...head.map((g) => parseInt(g, 16)), ...Array(halves.length === 2 ? missing : 0).fill(0)];
  all.push(...rest.map((g) => parseInt(g, 16)), ...tail);
  return all.flatMap((w) => [w >> 8, w & 0xff]);
}

function inPrefix(bytes: number[], prefix: number[], bits: number): boolean {
  for (let i = 0; i < bits; i++) {
    const byte = i >> 3;
    const mask = 0x80 >> (i & 7);
    if ((bytes[byte] & mask) !== (prefix[byte] & mask)) return false;
  }
  return true;
}

function blockedV4(bytes: number[]): boolean {
  return BLOCKED_V4.some(([net, bits]) => inPrefix(bytes, parseIPv4(net)!, bits));
}

const v6 = (text: string) => parseIPv6(text)!;
/** IPv6 ranges inside 2000::/3 that are not public unicast. */
const BLOCKED_V6_GLOBAL: [number[], number][] = [
  [v6('2001::'), 23], // IETF protocol assignments (Teredo, benchmarking, ORCHID, …)
  [v6('2001:db8::'), 32], // documentation
  [v6('2002::'), 16], // 6to4: embeds an IPv4 address of any kind
  [v6('3fff::'), 20], // documentation
];

function blockedV6(bytes: number[]): boolean {
  // Forms that embed an IPv4 address in their last 32 bits: judged by that address.
  const embedded = bytes.slice(12);
  if (inPrefix(bytes, v6('::ffff:0:0'), 96)) return blockedV4(embedded); // IPv4-mapped
  if (inPrefix(bytes, v6('64:ff9b::'), 96)) return blockedV4(embedded); // NAT64 (well-known)
  // Everything else outside global unicast: ::, ::1, IPv4-compatible ::/96, discard
  // 100::/64, local NAT64 64:ff9b:1::/48, ULA fc00::/7, link-local fe80::/10,
  // site-local fec0::/10, multicast ff00::/8.
  if (!inPrefix(bytes, v6('2000::'), 3)) return true;
  return BLOCKED_V6_GLOBAL.some(([net, bits]) => inPrefix(bytes, net, bits));
}

/** Whether an IP address (v4 or v6, as a URL or DNS gives it) is not a public unicast
 *  address. Anything that is not an address at all counts as not public. */
export function nonPublicAddress(address: string): boolean {
  const four = parseIPv4(address);
  if (four) return blockedV4(four);
  const six = parseIPv6(address);
  if (six) return blockedV6(six);
  return true;
}

/** Whether a URL host is an IP literal (after WHATWG URL normalisation). */
function ipLiteral(host: string): boolean {
  return parseIPv4(host) !== undefined || host.startsWith('[');
}

/** The local stack (PLATFORM_LOCAL_STACK=1) may send webhooks to this machine. */
export function localStack(): boolean {
  return isLocalStack();
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
  if (isLoopbackHost(host)) return 'private and loopback addresses are not allowed';
  if (ipLiteral(host)) {
    return nonPublicAddress(host) ? 'private, loopback and reserved addresses are not allowed' : null;
  }
  if (host.endsWith('.internal') || host.endsWith('.local') || !host.includes('.')) {
    return 'internal host names are not allowed';
  }
  return null;
}

/** One answer for a name that does not resolve and one that resolves to a private
 *  address: two told an admin (or a key with webhooks:manage) which internal names the
 *  platform's resolver knows, a map of the network around it. */
const UNRESOLVED = 'the host name must resolve, and only to public addresses';

/** The full check: the URL, then every address its host resolves to (a public name can
 *  point at a private address). The check and the request resolve separately, so a
 *  name that changes its answer in between is not caught: infrastructure egress rules
 *  are the last line. */
export async function resolvedTargetProblem(
  raw: string,
  allowLoopback = localStack(),
  resolve: (host: string) => Promise<{ address: string }[]> = (host) => lookup(host, { all: true }),
  timeoutMs = DNS_TIMEOUT_MS,
): Promise<string | null> {
  const problem = webhookTargetProblem(raw, allowLoopback);
  if (problem) return problem;
  const host = new URL(raw).hostname.toLowerCase().replace(/\.$/, '');
  if (allowLoopback && isLoopbackHost(host)) return null;
  if (ipLiteral(host)) return null; // a literal address, checked above
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    // The system resolver's own timeouts run to tens of seconds, while a registration
    // holds its request and a delivery its job: a name server that never answers is a
    // name that does not resolve, now.
    const addresses = await Promise.race([
      resolve(host),
      new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('timed out')), timeoutMs))),
    ]);
    if (addresses.some((a) => nonPublicAddress(a.address))) return UNRESOLVED;
  } catch {
    return UNRESOLVED;
  } finally {
    clearTimeout(timer);
  }
  return null;
}

/** How long a webhook host's name may take to resolve. */
const DNS_TIMEOUT_MS = 5_000;
