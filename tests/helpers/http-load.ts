// The benches' HTTP load client: one keep-alive HTTP/1.1 connection per simulated
// client over node:net, each request written as bytes and its answer read by its
// Content-Length (or its chunks), one request at a time per connection. This is what
// wrk does, for the same reason: the load generator shares the machine's two cores
// with the server and the database it measures, so its own CPU per request must be
// small. Measured on /voice/route: node:http's client about 0.35 ms per request,
// autocannon about 0.18 ms, this about 0.08 ms (against 0.12 ms for postgres.js in the
// raw SQL baseline).
import net from 'node:net';

export interface HttpAnswer {
  status: number;
  body: Buffer;
}

type Pending = { resolve: (a: HttpAnswer) => void; reject: (e: Error) => void };

const HEADER_END = Buffer.from('\r\n\r\n');

export class HttpConnection {
  private socket: net.Socket | undefined;
  private buffered: Buffer = Buffer.alloc(0);
  private pending: Pending | undefined;

  constructor(private readonly host: string, private readonly port: number) {}

  /** One request; the connection is opened on first use and again after the server
   *  closed it. `headers` are sent as given (Host is added). */
  request(method: string, path: string, headers: Record<string, string> = {}, body?: string): Promise<HttpAnswer> {
    if (this.pending) return Promise.reject(new Error('one request at a time per connection'));
    const payload = body === undefined ? undefined : Buffer.from(body);
    let head = `${method} ${path} HTTP/1.1\r\nHost: ${this.host}:${this.port}\r\n`;
    for (const [name, value] of Object.entries(headers)) head += `${name}: ${value}\r\n`;
    if (payload) head += `Content-Length: ${payload.length}\r\n`;
    const bytes = payload ? Buffer.concat([Buffer.from(`${head}\r\n`), payload]) : Buffer.from(`${head}\r\n`);
    return new Promise<HttpAnswer>((resolve, reject) => {
      this.pending = { resolve, reject };
      this.open().write(bytes);
    });
  }

  close(): void {
    const socket = this.socket;
    this.socket = undefined;
    socket?.destroy();
  }

  private open(): net.Socket {
    if (this.socket && !this.socket.destroyed) return this.socket;
    this.buffered = Buffer.alloc(0);
    const socket = net.connect({ host: this.host, port: this.port, noDelay: true });
    socket.on('data', (chunk: Buffer) => {
      this.buffered = this.buffered.length ? Buffer.concat([this.buffered, chunk]) : chunk;
      this.answer();
    });
    const fail = (err: Error) => {
      // A socket this connection already let go of (close()) answers for nothing.
      if (this.socket !== socket) return;
      this.socket = undefined;
      const pending = this.pending;
      this.pending = undefined;
      pending?.reject(err);
    };
    socket.on('error', fail);
    socket.on('close', () => fail(new Error('the server closed the connection')));
    this.socket = socket;
    return socket;
  }

  /** Resolves the pending request once its whole answer is buffered. */
  private answer(): void {
    if (!this.pending) return;
    const buf = this.buffered;
    const end = buf.indexOf(HEADER_END);
    if (end < 0) return;
    const head = buf.toString('latin1', 0, end);
    const status = Number(head.slice(9, 12));
    let bodyStart = end + 4;
    let body: Buffer;
    const length = /\r\ncontent-length:[ \t]*(\d+)/i.exec(head);
    if (length) {
      const size = Number(length[1]);
      if (buf.length < bodyStart + size) return;
      body = buf.subarray(bodyStart, bodyStart + size);
      this.buffered = buf.subarray(bodyStart + size);
    } else if (/\r\ntransfer-encoding:[ \t]*chunked/i.test(head)) {
      const parts: Buffer[] = [];
      for (;;) {
        const lineEnd = buf.indexOf('\r\n', bodyStart);
        if (lineEnd < 0) return;
        const size = parseInt(buf.toString('latin1', bodyStart, lineEnd), 16);
        if (buf.length < lineEnd + 2 + size + 2) return;
        if (size === 0) {
          this.buffered = buf.subarray(lineEnd + 4);
          break;
        }
        parts.push(buf.subarray(lineEnd + 2, lineEnd + 2 + size));
        bodyStart = lineEnd + 2 + size + 2;
      }
      body = Buffer.concat(parts);
    } else if (status === 204 || status === 304) {
      body = Buffer.alloc(0);
      this.buffered = buf.subarray(bodyStart);
    } else {
      // Delimited by the end of the connection: not what a keep-alive server sends.
      this.pending.reject(new Error(`an answer without Content-Length or chunks: ${head.split('\r\n')[0]}`));
      this.pending = undefined;
      this.close();
      return;
    }
    const pending = this.pending;
    this.pending = undefined;
    if (/\r\nconnection:[ \t]*close/i.test(head)) this.close();
    pending.resolve({ status, body });
  }
}

/** `n` connections to the origin of `url` (http only). */
export function connections(url: string, n: number): HttpConnection[] {
  const { hostname, port } = new URL(url);
  return Array.from({ length: n }, () => new HttpConnection(hostname, Number(port)));
}
