// Bounded input and connections on the real local server (scripts/serve.ts under
// Deno), driven over raw sockets on 127.0.0.1: over-limit bodies are answered 413 and
// the server stops reading (the client cannot push the rest: the connection is closed);
// a 256 MiB-class stream to a webhook is refused after a small fraction; slowloris
// headers, stalled bodies and idle sockets are closed by the server; bodies at the limit
// still work; local storage uploads are bounded by their signed size while streaming.
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiKey } from '../../scripts/tokens.mjs';
import { localStorage as storage } from '../../shared/storage.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { type FunctionsServer, startFunctionsServer } from '../helpers/functions-server.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

const MiB = 1024 * 1024;
const LIMIT = MiB; // the default MAX_BODY_BYTES
const STORAGE_SECRET = randomBytes(24).toString('hex');
let db: TestDatabase;
let auth: AuthFixture;
let server: FunctionsServer;
let port: number;
let storageDir: string;
let adminToken: string;
const counted = { connections: 0, offered: 0, sent: 0, closedByServer: 0 };

beforeAll(async () => {
  db = await freshDatabase('e2e_limits');
  auth = await configureAuth(db.url);
  storageDir = await mkdtemp(path.join(os.tmpdir(), 'limits-storage-'));
  server = await startFunctionsServer({
    SUPABASE_ANON_KEY: await apiKey('anon', TEST_JWT_SECRET),
    CHATWOOT_WEBHOOK_KEY: randomBytes(32).toString('base64'),
    STORAGE_BACKEND: 'local',
    LOCAL_STORAGE_DIR: storageDir,
    LOCAL_STORAGE_SECRET: STORAGE_SECRET,
    // Short, so the test does not wait long; the defaults are 10 s, 30 s and 10 s.
    HTTP_HEADERS_TIMEOUT_MS: '1000',
    HTTP_IDLE_TIMEOUT_MS: '3000',
    BODY_IDLE_TIMEOUT_MS: '500',
  });
  port = Number(new URL(server.url).port);
  // The test signs storage URLs as the server does.
  Object.assign(process.env, { LOCAL_STORAGE_SECRET: STORAGE_SECRET, LOCAL_STORAGE_PUBLIC_URL: server.url, STORAGE_BACKEND: 'local' });
  adminToken = await supabaseToken(users.acmeAdmin, { tenantId: tenants.acme.id });
  await db.sql`insert into public.tenant_services (tenant_id, service, state) values (${tenants.acme.id}, 'chatwoot', 'active')
    on conflict (tenant_id, service) do nothing`;
}, 120_000);
afterAll(async () => {
  console.log(
    `[limits e2e] ${counted.connections} raw connections; ${counted.offered} body bytes offered, ${counted.sent} accepted by ` +
      `the socket; ${counted.closedByServer} closed by the server`,
  );
  await server?.stop();
  await auth?.close();
  await db?.close();
  if (storageDir) await rm(storageDir, { recursive: true, force: true });
});

interface Outcome {
  /** The response as far as it came (head and body). */
  response: string;
  status: number;
  json: any;
  /** Body bytes the socket had accepted when the first response byte arrived. */
  sentBeforeAnswer: number;
  /** Body bytes the socket accepted in all. */
  sent: number;
  /** The server ended or reset the connection (not the client). */
  closedByServer: boolean;
}

/**
 * Opens a connection, writes `head`, then up to `total` body bytes in 64 KiB chunks
 * (chunked framing if asked), respecting backpressure, and keeps offering them after the
 * answer: only a server that stops reading stops the client. It stops sending once the
 * answer arrives, as real clients do, unless `keepSending`. `drip` instead writes
 * `head` one line at a time every `drip` ms (at most 200 lines). Resolves when the
 * connection closes, or with closedByServer false after `giveUpMs` (a bound on the
 * test, not a measurement).
 */
function exchange(
  head: string,
  opts: { total?: number; chunked?: boolean; stallAfter?: number; drip?: number; giveUpMs?: number; keepSending?: boolean } = {},
): Promise<Outcome> {
  counted.connections++;
  const total = opts.total ?? 0;
  counted.offered += total;
  return new Promise((resolve) => {
    // keepSending: the server's FIN does not end the client's side (it writes on, as a
    // client that ignores the answer would); only the server's close or reset does.
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: !!opts.keepSending });
    let response = '';
    let sent = 0;
    let sentBeforeAnswer = -1;
    let done = false;
    const timers: ReturnType<typeof setTimeout>[] = [];
    const finish = (closedByServer: boolean) => {
      if (done) return;
      done = true;
      timers.forEach(clearTimeout);
      socket.destroy();
      counted.sent += sent;
      if (closedByServer) counted.closedByServer++;
      const status = Number(response.match(/^HTTP\/1\.1 (\d{3})/)?.[1] ?? 0);
      const bodyText = response.slice(response.indexOf('\r\n\r\n') + 4);
      let json: any = null;
      try {
        json = JSON.parse(bodyText);
      } catch {
        // not JSON (or none)
      }
      resolve({ response, status, json, sentBeforeAnswer: sentBeforeAnswer < 0 ? sent : sentBeforeAnswer, sent, closedByServer });
    };
    let answered = false;
    socket.on('data', (d) => {
      // Like a real client, stop sending once the server has answered: what it sends
      // after closing would draw a reset, which may discard the answer before it is read.
      answered = true;
      if (sentBeforeAnswer < 0) sentBeforeAnswer = sent;
      response += d.toString('latin1');
    });
    socket.on('end', () => {
      if (!opts.keepSending) finish(true);
    });
    socket.on('close', () => finish(true));
    socket.on('error', () => finish(true));
    timers.push(setTimeout(() => finish(false), opts.giveUpMs ?? 15_000));

    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!done && (!answered || opts.keepSending) && sent < total && (opts.stallAfter === undefined || sent < opts.stallAfter)) {
        const n = Math.min(chunk.length, total - sent, (opts.stallAfter ?? Infinity) - sent);
        const piece = chunk.subarray(0, n);
        const ok = opts.chunked ? socket.write(`${n.toString(16)}\r\n`) && socket.write(piece) && socket.write('\r\n') : socket.write(piece);
        sent += n;
        if (!ok) return void socket.once('drain', pump);
      }
      if (!done && !answered && sent >= total && opts.chunked && opts.stallAfter === undefined) socket.write('0\r\n\r\n');
    };
    socket.on('connect', () => {
      if (opts.drip) {
        const lines = head.split(/(?<=\r\n)/);
        let i = 0;
        const next = () => {
          if (done || i >= Math.min(lines.length, 200)) return;
          socket.write(lines[i++]);
          timers.push(setTimeout(next, opts.drip));
        };
        next();
        return;
      }
      socket.write(head);
      pump();
    });
  });
}

const post = (p: string, headers: Record<string, string>) =>
  `POST ${p} HTTP/1.1\r\nHost: 127.0.0.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;

/** A chunked JSON body to a webhook with a bad token: read until the limit, then refused. */
const chunkedToWebhook = () =>
  post(`/functions/v1/webhooks/chatwoot/${tenants.acme.id}?token=bad`, {
    'content-type': 'application/json',
    'transfer-encoding': 'chunked',
  });

function expectTooLarge(o: Outcome, limit = LIMIT) {
  expect(o.status).toBe(413);
  expect(o.json).toEqual({ error: { code: 'payload_too_large', message: expect.any(String), details: { limit } } });
}

describe('over the limit on the real server', () => {
  it('a chunked body is answered 413 and the server stops reading: the connection closes long before the client is done', async () => {
    const total = 64 * MiB;
    const o = await exchange(
      post(`/functions/v1/tenants/${tenants.acme.id}/teams`, {
        authorization: `Bearer ${adminToken}`,
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      }),
      { total, chunked: true },
    );
    expectTooLarge(o);
    expect(o.response).toMatch(/\r\nconnection: close\r\n/i);
    expect(o.closedByServer).toBe(true);
    expect(o.sentBeforeAnswer).toBeLessThan(total / 4);
    expect(o.sent).toBeLessThan(total / 2);
  });

  it('256 MiB streamed to /webhooks/chatwoot/{tenant}?token=bad: 413, refused after a small fraction, not read and then 401', async () => {
    const total = 256 * MiB;
    const o = await exchange(chunkedToWebhook(), { total, chunked: true });
    expectTooLarge(o);
    expect(o.closedByServer).toBe(true);
    // Far below the total: the limit plus what the sockets' buffers hold.
    expect(o.sentBeforeAnswer).toBeLessThan(total / 8);
    expect(o.sent).toBeLessThan(total / 8);
  });

  it('twenty oversized chunked uploads in a row each get their 413, none lost to a reset', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 20; i++) {
      const o = await exchange(chunkedToWebhook(), { total: 16 * MiB, chunked: true });
      expect(o.closedByServer).toBe(true);
      statuses.push(o.status);
    }
    expect(statuses).toEqual(Array(20).fill(413));
  });

  it('a client that keeps sending after its 413 is cut off: the drain after the answer is bounded', async () => {
    const total = 256 * MiB;
    const o = await exchange(chunkedToWebhook(), { total, chunked: true, keepSending: true });
    expectTooLarge(o);
    expect(o.closedByServer).toBe(true);
    // The limit, 8 MiB drained after the answer, and what the sockets' buffers hold.
    expect(o.sent).toBeLessThan(total / 8);
  });

  it('the same 256 MiB announced by Content-Length: refused from the header, the body unread', async () => {
    const total = 256 * MiB;
    const o = await exchange(
      post(`/functions/v1/webhooks/chatwoot/${tenants.acme.id}?token=bad`, {
        'content-type': 'application/json',
        'content-length': String(total),
      }),
      // Headers only: the answer must come from Content-Length, before any body byte.
      { total, stallAfter: 0 },
    );
    expectTooLarge(o);
    expect(o.closedByServer).toBe(true);
    expect(o.sent).toBeLessThan(total / 8);
  });

  it('the server is still there afterwards', async () => {
    const res = await fetch(`${server.url}/health`);
    expect(res.status).toBe(200);
  });
});

describe('at the limit on the real server', () => {
  it('a chunked body of exactly the limit reaches the handler: a team is created', async () => {
    const json = JSON.stringify({ name: 'Exactly the limit', department: 'support' });
    const body = json + ' '.repeat(LIMIT - json.length);
    const res = await fetch(`${server.url}/functions/v1/tenants/${tenants.acme.id}/teams`, {
      method: 'POST',
      headers: { authorization: `Bearer ${adminToken}`, 'content-type': 'application/json' },
      body: new Blob([body]).stream(),
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(201);
    expect(await res.json()).toMatchObject({ name: 'Exactly the limit' });
  });

  it('a webhook body of exactly the limit is read and then judged by its token (401)', async () => {
    const o = await exchange(
      post(`/functions/v1/webhooks/chatwoot/${tenants.acme.id}?token=bad`, {
        'content-type': 'application/json',
        'content-length': String(LIMIT),
        connection: 'close',
      }),
      { total: LIMIT },
    );
    expect(o.status).toBe(401);
    expect(o.json?.error?.code).toBe('invalid_signature');
    expect(o.sent).toBe(LIMIT);
  });
});

describe('slow and half-open connections are closed by the server', () => {
  it('headers that never finish (slowloris)', async () => {
    const o = await exchange('POST /functions/v1/webhooks/clerk HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n');
    expect(o.closedByServer).toBe(true);
    expect(o.response === '' || o.status === 408).toBe(true);
  });

  it('headers dripped one line at a time, each in time but never done', async () => {
    const head = 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n' + Array.from({ length: 200 }, (_, i) => `X-Drip-${i}: ${i}\r\n`).join('');
    const o = await exchange(head, { drip: 100, giveUpMs: 25_000 });
    expect(o.closedByServer).toBe(true);
    expect(o.status === 0 || o.status === 408).toBe(true);
  });

  it('a connection that sends nothing', async () => {
    const o = await exchange('');
    expect(o.closedByServer).toBe(true);
  });

  it('a chunked body that stalls mid-way: 408 request_timeout, then closed', async () => {
    const o = await exchange(
      post('/functions/v1/tenants/me', {
        authorization: `Bearer ${adminToken}`,
        'content-type': 'application/json',
        'transfer-encoding': 'chunked',
      }).replace(/^POST/, 'PATCH'),
      { total: 4 * 1024, chunked: true, stallAfter: 1024 },
    );
    expect(o.status).toBe(408);
    expect(o.json).toMatchObject({ error: { code: 'request_timeout', details: { idle_ms: 500 } } });
    expect(o.closedByServer).toBe(true);
  });

  it('a body shorter than its Content-Length, read by a webhook handler: 408, then closed', async () => {
    const o = await exchange(
      post('/functions/v1/webhooks/clerk', { 'content-type': 'application/json', 'content-length': '100' }),
      { total: 100, stallAfter: 10 },
    );
    expect(o.status).toBe(408);
    expect(o.json).toMatchObject({ error: { code: 'request_timeout' } });
    expect(o.closedByServer).toBe(true);
  });
});

describe('local storage uploads are bounded by the signed size while streaming', () => {
  const objectPath = () => `${tenants.acme.id}/t/${randomBytes(4).toString('hex')}/file.bin`;
  const put = (url: string, headers: Record<string, string>) => {
    const u = new URL(url);
    return `PUT ${u.pathname}${u.search} HTTP/1.1\r\nHost: 127.0.0.1\r\n${
      Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')
    }\r\n`;
  };

  it('more than the signed size, chunked: 413 at the first byte too many, nothing stored', async () => {
    const p = objectPath();
    const { url } = await storage.createUploadUrl('attachments', p, { contentType: 'application/octet-stream', size: 1000 });
    const total = 64 * MiB;
    const o = await exchange(put(url, { 'transfer-encoding': 'chunked' }), { total, chunked: true });
    expect(o.status).toBe(413);
    expect(o.json?.error?.code).toBe('payload_too_large');
    expect(o.closedByServer).toBe(true);
    expect(o.sent).toBeLessThan(total / 2);
    expect(await stat(path.join(storageDir, 'attachments', p)).catch(() => null)).toBeNull();
  });

  it('a signed size above 50 MiB is refused from Content-Length, unread', async () => {
    const size = 60 * MiB;
    const { url } = await storage.createUploadUrl('attachments', objectPath(), { contentType: 'application/octet-stream', size });
    // Headers only: the answer must come from Content-Length, before any body byte.
    const o = await exchange(put(url, { 'content-length': String(size) }), { total: size, stallAfter: 0 });
    expect(o.status).toBe(413);
    expect(o.closedByServer).toBe(true);
    expect(o.sent).toBe(0);
  });

  it('exactly the signed size, chunked, is stored', async () => {
    const p = objectPath();
    const { url } = await storage.createUploadUrl('attachments', p, { contentType: 'application/octet-stream', size: 200_000 });
    const o = await exchange(put(url, { 'transfer-encoding': 'chunked', connection: 'close' }), { total: 200_000, chunked: true });
    expect(o.status).toBe(200);
    expect((await stat(path.join(storageDir, 'attachments', p))).size).toBe(200_000);
  });
});
