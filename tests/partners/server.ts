// The base of every partner stand-in: a loopback HTTP server that keeps state, logs
// requests, and has switches for the faults a real partner shows — 5xx, 429 with
// Retry-After, answers slower than the client's timeout, a connection dropped after the
// partner did the work, and one dropped halfway through the answer's body.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Faults {
  /** Only requests this matches get faults ("POST /v1/admin/bots"); all when unset. */
  match?: RegExp;
  /** ...and whose raw body this matches (one JSON-RPC path carries every call: Odoo's
   *  `"res.company"` … `"create"`); any body when unset. */
  bodyMatch?: RegExp;
  fail5xx: number;
  rateLimit: number;
  /** The 429's Retry-After; null: none (Chatwoot's rack-attack sends none). */
  retryAfterSeconds: number | null;
  slow: number;
  slowMs: number;
  dropAfterWork: number;
  /** Does the work, then answers as a gateway that gave up waiting for it (504). */
  gatewayTimeoutAfterWork: number;
  /** Answers with the headers and half the body, then drops the connection. */
  truncateBody: number;
}

export interface Request {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  body: any;
}

export interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export type Handler = (req: Request) => Reply | Promise<Reply>;

const noFaults = (defaults: Partial<Faults> = {}): Faults => ({
  fail5xx: 0,
  rateLimit: 0,
  retryAfterSeconds: 30,
  slow: 0,
  slowMs: 0,
  dropAfterWork: 0,
  gatewayTimeoutAfterWork: 0,
  truncateBody: 0,
  ...defaults,
});

export class StandIn {
  faults: Faults;
  readonly log: { method: string; path: string; status: number | 'dropped' }[] = [];
  private constructor(private server: http.Server, readonly url: string, private defaults: Partial<Faults>) {
    this.faults = noFaults(defaults);
  }

  /** `defaults`: how this partner's faults look unless a test says otherwise. */
  static async start(handler: Handler, errorBody: (status: number) => unknown, defaults: Partial<Faults> = {}): Promise<StandIn> {
    let self: StandIn | undefined;
    const server = http.createServer(async (req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw;
      try {
        body = raw ? JSON.parse(raw) : undefined;
      } catch {
        // keep raw
      }
      const request: Request = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body };
      const f = self!.faults;
      const faulty = (!f.match || f.match.test(`${request.method} ${request.path}`)) && (!f.bodyMatch || f.bodyMatch.test(raw));
      const send = (reply: Reply) => {
        self!.log.push({ method: request.method, path: request.path, status: reply.status });
        res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
        res.end(reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body));
      };
      if (faulty && f.fail5xx > 0) {
        f.fail5xx--;
        return send({ status: 503, body: errorBody(503) });
      }
      if (faulty && f.rateLimit > 0) {
        f.rateLimit--;
        const body = errorBody(429);
        return send({
          status: 429,
          body,
          headers: {
            // A plain-text refusal says so (rack-attack's "Retry later").
            ...(typeof body === 'string' ? { 'content-type': 'text/plain' } : {}),
            ...(f.retryAfterSeconds === null ? {} : { 'retry-after': String(f.retryAfterSeconds) }),
          },
        });
      }
      if (faulty && f.slow > 0) {
        f.slow--;
        await new Promise((r) => setTimeout(r, f.slowMs));
      }
      let reply: Reply;
      try {
        reply = await handler(request);
      } catch (err) {
        // A bug of the stand-in's own is a 500 the test sees, not a socket left open that a
        // connector would take for a timeout (retryable) and hide.
        console.error(`[stand-in] ${request.method} ${request.path}: ${(err as Error).stack ?? err}`);
        reply = { status: 500, body: errorBody(500) };
      }
      if (faulty && f.dropAfterWork > 0) {
        f.dropAfterWork--;
        self!.log.push({ method: request.method, path: request.path, status: 'dropped' });
        req.socket.destroy(); // the work is done, the answer never arrives
        return;
      }
      if (faulty && f.gatewayTimeoutAfterWork > 0) {
        f.gatewayTimeoutAfterWork--;
        return send({ status: 504, body: '<html><body><h1>504 Gateway Time-out</h1></body></html>', headers: { 'content-type': 'text/html' } });
      }
      if (faulty && f.truncateBody > 0 && !res.destroyed) {
        f.truncateBody--;
        self!.log.push({ method: request.method, path: request.path, status: 'dropped' });
        const text = reply.body === undefined ? '' : typeof reply.body === 'string' ? reply.body : JSON.stringify(reply.body);
        const bytes = Buffer.from(text || ' ');
        res.writeHead(reply.status, { 'content-type': 'application/json', 'content-length': String(bytes.length), ...reply.headers });
        res.write(bytes.subarray(0, Math.floor(bytes.length / 2)), () => req.socket.destroy());
        return;
      }
      if (!res.destroyed) send(reply);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    self = new StandIn(server, `http://127.0.0.1:${(server.address() as AddressInfo).port}`, defaults);
    return self;
  }

  resetFaults(): void {
    this.faults = noFaults(this.defaults);
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((r) => this.server.close(() => r()));
  }
}

export const json = (status: number, body?: unknown): Reply => ({ status, body });
