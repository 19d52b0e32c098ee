// The SSRF guard for outbound webhooks (shared/webhooks/ssrf.ts), table-driven: every
// IANA special-purpose IPv4 range (its first, a middle and its last address), IPv6
// special ranges, IPv4 embedded in IPv6 (mapped, compatible, NAT64, 6to4) in the forms a
// URL normalises them to, and public addresses of both families that must pass.
import { describe, expect, it } from 'vitest';
import { nonPublicAddress, parseIPv6, resolvedTargetProblem, webhookTargetProblem } from '../shared/webhooks/ssrf.ts';

const BLOCKED_V4: [string, string, string][] = [
  // range, first, last
  ['0.0.0.0/8', '0.0.0.0', '0.255.255.255'],
  ['10.0.0.0/8', '10.0.0.0', '10.255.255.255'],
  ['100.64.0.0/10', '100.64.0.0', '100.127.255.255'],
  ['127.0.0.0/8', '127.0.0.1', '127.255.255.255'],
  ['169.254.0.0/16', '169.254.0.0', '169.254.255.255'],
  ['172.16.0.0/12', '172.16.0.0', '172.31.255.255'],
  ['192.0.0.0/24', '192.0.0.0', '192.0.0.255'],
  ['192.0.2.0/24', '192.0.2.0', '192.0.2.255'],
  ['192.88.99.0/24', '192.88.99.0', '192.88.99.255'],
  ['192.168.0.0/16', '192.168.0.0', '192.168.255.255'],
  ['198.18.0.0/15', '198.18.0.0', '198.19.255.255'],
  ['198.51.100.0/24', '198.51.100.0', '198.51.100.255'],
  ['203.0.113.0/24', '203.0.113.0', '203.0.113.255'],
  ['224.0.0.0/4', '224.0.0.0', '239.255.255.255'],
  ['240.0.0.0/4', '240.0.0.0', '255.255.255.254'],
  ['255.255.255.255/32', '255.255.255.255', '255.255.255.255'],
];

/** Neighbours just outside the blocked ranges, and well-known public resolvers. */
const PUBLIC_V4 = [
  '1.1.1.1', '8.8.8.8', '9.255.255.255', '11.0.0.0', '100.63.255.255', '100.128.0.0', '126.255.255.255', '128.0.0.0',
  '169.253.255.255', '169.255.0.0', '172.15.255.255', '172.32.0.0', '192.0.1.0', '192.0.3.0', '192.167.255.255',
  '192.169.0.0', '198.17.255.255', '198.20.0.0', '198.51.99.255', '198.51.101.0', '203.0.112.255', '203.0.114.0',
  '223.255.255.255',
];

const BLOCKED_V6 = [
  '::', '::1', '::ffff:127.0.0.1', '::ffff:7f00:1', '::ffff:10.0.0.1', '::ffff:169.254.169.254', '::ffff:192.0.0.1',
  '::ffff:198.18.0.1', '::ffff:224.0.0.1', '::ffff:255.255.255.255', '::127.0.0.1', '::8.8.8.8' /* IPv4-compatible: deprecated */,
  '64:ff9b::127.0.0.1', '64:ff9b::a9fe:a9fe', '64:ff9b::10.1.2.3', '64:ff9b:1::1' /* local-use NAT64 */,
  '100::1' /* discard */, 'fc00::1', 'fd12:3456:789a::1', 'fe80::1', 'febf::1', 'fec0::1' /* site-local */, 'ff02::1',
  'ff0e::1', '2001:db8::1', '2001::1' /* Teredo */, '2001:2::1' /* benchmarking */, '2001:10::1' /* ORCHID */,
  '2002:c0a8:1::1' /* 6to4 of 192.168.0.1 */, '3fff::1', '::ffff:0:0',
];

const PUBLIC_V6 = [
  '2606:4700:4700::1111', '2001:4860:4860::8888', '2a00:1450:4001:81d::200e', '2620:fe::fe', '::ffff:8.8.8.8',
  '64:ff9b::8.8.8.8', '2c0f:fb50:4003::1',
];

describe('SSRF guard: addresses', () => {
  it(`blocks every special-purpose IPv4 range (${BLOCKED_V4.length} ranges × first, middle, last)`, () => {
    for (const [range, first, last] of BLOCKED_V4) {
      const a = first.split('.').map(Number);
      const b = last.split('.').map(Number);
      const middle = a.map((x, i) => Math.floor((x + b[i]) / 2)).join('.');
      for (const address of [first, middle, last]) {
        expect(nonPublicAddress(address), `${address} in ${range}`).toBe(true);
        expect(webhookTargetProblem(`https://${address}/hook`, false), `https://${address}/`).not.toBeNull();
      }
    }
  });

  it(`lets public IPv4 addresses through, next to the blocked ranges (${PUBLIC_V4.length})`, () => {
    for (const address of PUBLIC_V4) {
      expect(nonPublicAddress(address), address).toBe(false);
      expect(webhookTargetProblem(`https://${address}/hook`, false), address).toBeNull();
    }
  });

  it(`blocks special IPv6 ranges and IPv4 embedded in IPv6 by what it embeds (${BLOCKED_V6.length})`, () => {
    for (const address of BLOCKED_V6) {
      expect(nonPublicAddress(address), address).toBe(true);
      // As a URL host (the URL parser rewrites e.g. ::ffff:127.0.0.1 to ::ffff:7f00:1).
      const url = `https://[${address}]/hook`;
      expect(webhookTargetProblem(url, false), `${url} → ${new URL(url).hostname}`).not.toBeNull();
    }
  });

  it(`lets public IPv6 literals through (${PUBLIC_V6.length}), e.g. https://[2606:4700:4700::1111]/`, () => {
    for (const address of PUBLIC_V6) {
      expect(nonPublicAddress(address), address).toBe(false);
      expect(webhookTargetProblem(`https://[${address}]/hook`, false), address).toBeNull();
    }
  });

  it('parses IPv6 text forms exactly, and refuses what is not an address', () => {
    expect(parseIPv6('::ffff:127.0.0.1')).toEqual(parseIPv6('::ffff:7f00:1'));
    expect(parseIPv6('[2606:4700:4700::1111]')).toEqual([0x26, 0x06, 0x47, 0, 0x47, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x11, 0x11]);
    expect(parseIPv6('1:2:3:4:5:6:7:8')).toHaveLength(16);
    for (const bad of ['1:2:3:4:5:6:7:8:9', '1::2::3', ':1', '12345::', '::1.2.3.256', 'fe80::1%eth0', '1:2:3:4:5:6:7']) {
      expect(parseIPv6(bad), bad).toBeUndefined();
    }
    for (const notAnAddress of ['', 'example.com', '1.2.3', '256.1.1.1']) expect(nonPublicAddress(notAnAddress), notAnAddress).toBe(true);
  });
});

describe('SSRF guard: URLs', () => {
  it('normalised IPv4 spellings are judged as the address they are', () => {
    for (const url of ['https://2130706433/h', 'https://0x7f.1/h', 'https://0177.0.0.1/h', 'https://127.1/h', 'https://0/h', 'https://4294967295/h']) {
      expect(webhookTargetProblem(url, false), `${url} → ${new URL(url).hostname}`).not.toBeNull();
    }
  });

  it('a host name that merely starts like a private address is a name, not an address', () => {
    expect(webhookTargetProblem('https://10.hooks.example.com/h', false)).toBeNull();
    expect(webhookTargetProblem('https://192.168.example.org/h', false)).toBeNull();
    expect(webhookTargetProblem('https://127.example.com/h', false)).toBeNull();
    // Nor is it loopback where the local stack allows loopback: plain http stays refused.
    expect(webhookTargetProblem('http://127.hooks.attacker.example/h', true)).not.toBeNull();
  });

  it('loopback only where the local stack allows it; plain http only to loopback there', () => {
    expect(webhookTargetProblem('http://127.0.0.1:8080/h', true)).toBeNull();
    expect(webhookTargetProblem('http://[::1]:8080/h', true)).toBeNull();
    expect(webhookTargetProblem('http://127.0.0.1:8080/h', false)).not.toBeNull();
    expect(webhookTargetProblem('https://[::1]/h', false)).not.toBeNull();
    expect(webhookTargetProblem('http://[2606:4700:4700::1111]/h', true)).not.toBeNull(); // https only
    expect(webhookTargetProblem('https://[::ffff:10.0.0.1]/h', true)).not.toBeNull(); // private is never allowed
  });
});

describe('SSRF guard: names', () => {
  it('a name server that never answers is a name that does not resolve, within the timeout', async () => {
    let asked = 0;
    const neverAnswers = () => {
      asked++;
      return new Promise<{ address: string }[]>(() => {});
    };
    // Settled by the timeout: the resolver never answers (without it, this never returns).
    const problem = await resolvedTargetProblem('https://hooks.slow-dns.example/h', false, neverAnswers, 50);
    expect(problem).toBe('the host name must resolve, and only to public addresses');
    expect(asked).toBe(1);
  });

  it('the names a resolver answers are judged by their addresses', async () => {
    const answers = (address: string) => () => Promise.resolve([{ address }]);
    // The same words as for a name that does not resolve: which internal names the
    // platform's resolver knows is not told.
    expect(await resolvedTargetProblem('https://hooks.example.com/h', false, answers('10.0.0.7'))).toBe(
      'the host name must resolve, and only to public addresses',
    );
    expect(await resolvedTargetProblem('https://hooks.example.com/h', false, answers('93.184.216.34'))).toBeNull();
  });
});
