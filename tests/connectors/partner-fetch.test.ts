// The HTTP call every connector makes (shared/connectors/partnerFetch): what it takes as
// the partner's answer. A redirect is not followed (it would turn a POST into a GET and
// carry the partner's credentials to wherever it points), and a 2xx that is not JSON (a
// proxy's maintenance page, a login page) is no answer, but a failure worth a retry.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chatwootConnector } from '../../shared/connectors/chatwoot.ts';
import { PartnerError, partnerFetch } from '../../shared/connectors/types.ts';
import { ChatwootStandIn } from '../partners/chatwoot.ts';
import { check, step, tenant } from './harness.ts';

interface Seen {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

/** A loopback server answering each request with `answer(path)`, recording what it saw. */
interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

async function server(answer: (path: string) => Answer) {
  const seen: Seen[] = [];
  const s = http.createServer((req, res) => {
    seen.push({ method: req.method ?? '', path: req.url ?? '', headers: req.headers });
    req.resume();
    const a = answer(req.url ?? '');
    res.writeHead(a.status, a.headers ?? {});
    res.end(a.body ?? '');
  });
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(s.address() as AddressInfo).port}`,
    seen,
    close: () => new Promise<void>((r) => s.close(() => r())),
  };
}

let elsewhere: Awaited<ReturnType<typeof server>>;
let partner: Awaited<ReturnType<typeof server>>;
beforeAll(async () => {
  elsewhere = await server(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"id":1}' }));
  partner = await server((path): Answer => {
    if (path.startsWith('/moved')) return { status: 302, headers: { location: `${elsewhere.url}/landing?session=abc` } };
    if (path.startsWith('/permanent')) return { status: 308, headers: { location: `${elsewhere.url}/v2/users` } };
    if (path.startsWith('/maintenance')) return { status: 200, headers: { 'content-type': 'text/html' }, body: '<html>Down for maintenance</html>' };
    if (path.startsWith('/empty')) return { status: 200 };
    if (path.startsWith('/misrouted')) return { status: 404, headers: { 'content-type': 'text/html' }, body: '<html><h1>404 Not Found</h1></html>' };
    if (path.startsWith('/missing')) return { status: 404, headers: { 'content-type': 'application/json' }, body: '{"error":"Resource could not be found"}' };
    return { status: 200, headers: { 'content-type': 'application/json' }, body: '{"ok":true}' };
  });
});
afterAll(async () => {
  await partner.close();
  await elsewhere.close();
});

describe('partnerFetch', () => {
  it('does not follow a redirect: a permanent error naming where it points, and nothing (no credentials) goes there', async () => {
    for (const path of ['/moved', '/permanent']) {
      const err = await partnerFetch('chatwoot', `${partner.url}${path}`, {
        method: 'POST',
        headers: { api_access_token: 'platform-secret-token' },
        body: { name: 'x' },
      }).catch((e) => e);
      expect(err).toBeInstanceOf(PartnerError);
      expect(err).toMatchObject({ retryable: false, message: expect.stringContaining(`redirected to ${elsewhere.url}/`) });
      // The target's query (a session, a token) is not repeated in the error.
      expect(err.message).not.toContain('session=abc');
    }
    expect(elsewhere.seen).toEqual([]);
  });

  it('takes a 2xx that is not JSON for a failure to retry, not for the answer', async () => {
    const err = await partnerFetch('n8n', `${partner.url}/maintenance`).catch((e) => e);
    expect(err).toBeInstanceOf(PartnerError);
    expect(err).toMatchObject({ retryable: true, status: 200, message: expect.stringContaining('not JSON') });
    // An empty 2xx (a DELETE's answer) and JSON are answers.
    expect((await partnerFetch('chatwoot', `${partner.url}/empty`, { method: 'DELETE' })).body).toBeNull();
    expect((await partnerFetch('chatwoot', `${partner.url}/json`)).body).toEqual({ ok: true });
  });

  it("takes a 404 that is not JSON for the operator's error (the partner's URL), never for the partner's \"gone\", also where a 404 is expected", async () => {
    for (const accept of [undefined, [404]]) {
      const err = await partnerFetch('chatwoot', `${partner.url}/misrouted/1`, { method: 'DELETE', accept }).catch((e) => e);
      expect(err).toBeInstanceOf(PartnerError);
      expect(err).toMatchObject({ retryable: false, status: undefined, message: expect.stringContaining("not the partner's: check the partner's URL") });
    }
    // The partner's own 404 (its JSON error) is an answer where expected.
    expect((await partnerFetch('chatwoot', `${partner.url}/missing/1`, { accept: [404] })).status).toBe(404);
  });

  it("a removal behind a misrouted URL (a proxy's HTML 404) fails, saying so: the account is not taken for gone", async () => {
    const cw = await ChatwootStandIn.start();
    try {
      const t = tenant('cw-misrouted');
      await step(chatwootConnector({ url: cw.url, platformToken: cw.token }), t, 'ensure');
      const misrouted = chatwootConnector({ url: `${partner.url}/misrouted`, platformToken: cw.token });
      const err = await step(misrouted, t, 'remove').catch((e) => e);
      expect(err).toBeInstanceOf(PartnerError);
      expect(err.message).toContain("check the partner's URL");
      expect(cw.accounts.get(t.externalIds.account_id)?.status).toBe('active');
    } finally {
      await cw.server.close();
    }
  });

  it("a Chatwoot behind a page that is not Chatwoot's: the drift check fails to retry, it does not report drift", async () => {
    const cw = await ChatwootStandIn.start();
    const front = await server(() => ({ status: 200, headers: { 'content-type': 'text/html' }, body: '<html>Sign in</html>' }));
    try {
      const inbound = (tenantId: string) => `http://127.0.0.1:54321/functions/v1/webhooks/chatwoot/${tenantId}?token=t`;
      const t = tenant('cw-html-front');
      await step(chatwootConnector({ url: cw.url, platformToken: cw.token, inboundUrl: inbound }), t, 'ensure');
      const behindPage = chatwootConnector({ url: front.url, platformToken: cw.token, inboundUrl: inbound });
      const err = await check(behindPage, t).catch((e) => e);
      expect(err).toBeInstanceOf(PartnerError);
      expect(err).toMatchObject({ retryable: true });
    } finally {
      await front.close();
      await cw.server.close();
    }
  });
});
