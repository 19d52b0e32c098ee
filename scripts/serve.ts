// The local functions server (Deno): every function of supabase/config.toml at
// http://127.0.0.1:<PORT>/functions/v1/<name>, stripping /functions/v1 as the hosted
// gateway does, plus the JWKS of the local development issuers. Local only.
//
// It runs on node:http (Deno's port of Node's server) rather than Deno.serve: Deno.serve
// (2.9) has no header, request or idle timeout, and after answering a request whose
// body was not read it reads that body to its end, so a client that sends headers
// slowly, stalls mid-body or streams forever holds the connection for good. Node's
// server closes them (HTTP_HEADERS_TIMEOUT_MS, HTTP_REQUEST_TIMEOUT_MS,
// HTTP_IDLE_TIMEOUT_MS), and a response to a body left unread closes the connection
// instead of reading the rest. On the hosted platform the gateway and the runtime's
// limits play this part (request idle timeout, worker wall-clock limit).
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { parse } from 'smol-toml';
import { envInt } from '../shared/env.ts';
import { handleLocalStorage } from '../shared/storage.ts';

type FetchApp = { fetch: (req: Request) => Response | Promise<Response> };

const root = new URL('../', import.meta.url);
const config = parse(await Deno.readTextFile(new URL('supabase/config.toml', root))) as {
  functions?: Record<string, { enabled?: boolean }>;
};
const apps = new Map<string, FetchApp>();
for (const [name, fn] of Object.entries(config.functions ?? {})) {
  if (fn.enabled === false) continue;
  const mod = await import(new URL(`functions/${name}/app.ts`, root).href) as { app: FetchApp };
  apps.set(name, mod.app);
}

// Public keys of the local Clerk and SuperTokens stand-in issuers (private halves stay
// in .local/ for `npm run token`).
const devJwks = JSON.parse(Deno.env.get('DEV_ISSUER_JWKS') ?? '{}') as Record<string, unknown>;

const port = Number(Deno.env.get('PORT') ?? 54321);
const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json' } });

// The Supabase APIs a hosted project (and `supabase start`) serves beside the functions,
// which this stack does not: it says so, and how to get them, instead of a bare 404.
const HOSTED_APIS: Record<string, string> = {
  '/rest/v1': 'PostgREST',
  '/auth/v1': 'Supabase Auth',
  '/storage/v1': 'Supabase Storage',
};

function notServedLocally(pathname: string): Response | undefined {
  const prefix = Object.keys(HOSTED_APIS).find((p) => pathname === p || pathname.startsWith(`${p}/`));
  if (!prefix) return undefined;
  return json({
    error: {
      code: 'not_served_locally',
      message: `This local stack (npm start) serves Postgres and the Edge Functions, not ${HOSTED_APIS[prefix]} ` +
        `(${prefix}). For PostgREST, Auth and Storage run \`supabase start\` (Docker) and serve the functions against ` +
        `its database: \`npm start -- --db-url postgresql://postgres:postgres@127.0.0.1:54322/postgres --port 54331\`.`,
      details: {
        api: prefix,
        served_here: ['/functions/v1/<name>', '/storage/v1/local/ (signed URLs of the local storage)'],
        how: ['supabase start', 'npm start -- --db-url <the DB URL supabase start prints> --port <a free port>'],
      },
    },
  }, 404);
}

async function route(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const fn = url.pathname.match(/^\/functions\/v1\/([^/]+)(\/.*)?$/);
  if (fn) {
    const app = apps.get(fn[1]);
    if (!app) return json({ error: { code: 'not_found', message: `No function named ${fn[1]}` } }, 404);
    // The app leaves /functions/v1 out of the path it routes (shared/http.ts), as the
    // hosted gateway strips it, so a GET or HEAD (the call path's /route) is handed over
    // as it came. Anything else is copied into a Deno Request first: @hono/node-server's
    // lightweight request is no Request to Deno's constructor, which the body limit
    // (new Request(raw, { body })) needs.
    return await app.fetch(req.method === 'GET' || req.method === 'HEAD' ? req : new Request(req.url, req));
  }
  const issuer = url.pathname.match(
    /^\/dev-issuers\/(clerk|supertokens)\/(?:\.well-known\/jwks\.json|jwt\/jwks\.json)$/,
  );
  if (issuer && devJwks[issuer[1]]) return json(devJwks[issuer[1]]);
  if (url.pathname.startsWith('/storage/v1/local/')) return await handleLocalStorage(req);
  const hosted = notServedLocally(url.pathname);
  if (hosted) return hosted;
  if (url.pathname === '/health') {
    return json({ ok: true, functions: [...apps.keys()], data_dir: Deno.env.get('PLATFORM_DATA_DIR') ?? null });
  }
  return json({ error: { code: 'not_found', message: 'Not found' } }, 404);
}

// After answering a request whose body is still arriving, how long and how much more
// of it is read and thrown away before the socket is closed.
const LINGER_MS = 2_000;
const LINGER_BYTES = 8 * 1024 * 1024;

/**
 * Closes `socket` the way HTTP servers do after answering early ("lingering close"):
 * send the answer and a FIN, then read and discard what the client still sends until it
 * closes, for at most LINGER_MS / LINGER_BYTES. Closing a socket with unread bytes in its
 * receive queue makes the kernel send a reset and drop what is not yet sent, so the
 * client often never got its 413 (in a trial, 187 of 200 oversized uploads in a row saw
 * only ECONNRESET). The server calls destroySoon() once a `connection: close` answer is
 * written; this replaces it on that one socket.
 */
function lingerOnClose(socket: Socket) {
  let lingering = false;
  socket.destroySoon = function () {
    // Called again by @hono/node-server's own drain of an unread body: once is enough.
    if (lingering) return;
    lingering = true;
    let drained = 0;
    const close = () => {
      clearTimeout(timer);
      socket.destroy();
    };
    const timer = setTimeout(close, LINGER_MS);
    timer.unref?.();
    // The HTTP parser's reader would pause the socket again once the unread body's queue
    // is full: what comes now is only counted and dropped.
    socket.removeAllListeners('data');
    socket.on('data', (chunk: Uint8Array) => {
      drained += chunk.length;
      if (drained > LINGER_BYTES) close();
    });
    socket.once('end', close);
    socket.once('error', close);
    socket.once('close', () => clearTimeout(timer));
    socket.end();
    socket.resume();
  };
}

const listener = getRequestListener(async (req, { incoming }) => {
  const res = await route(req);
  if (incoming.complete) return res;
  // The request body has not all arrived (refused as too large, stalled, or not needed):
  // answer, then close the connection rather than read what is left.
  lingerOnClose(incoming.socket);
  const headers = new Headers(res.headers);
  headers.set('connection', 'close');
  return new Response(res.body, { status: res.status, statusText: res.statusText, headers });
}, { overrideGlobalObjects: false });

const headersTimeout = envInt('HTTP_HEADERS_TIMEOUT_MS', 10_000, 1, 600_000);
const server = createServer({
  // Until the request line and headers are in (slowloris).
  headersTimeout,
  // Until the whole request is in, body included.
  requestTimeout: Math.max(headersTimeout, envInt('HTTP_REQUEST_TIMEOUT_MS', 120_000, 1, 3_600_000)),
  // How often the two above are checked.
  connectionsCheckingInterval: Math.min(1_000, headersTimeout),
}, listener);
// No byte either way for this long (a half-open socket, a client that stops reading
// its response): the socket is destroyed.
server.setTimeout(envInt('HTTP_IDLE_TIMEOUT_MS', 30_000, 1, 3_600_000));
server.listen(port, '127.0.0.1', () => console.log(`functions listening on ${port}`));
