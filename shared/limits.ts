// Bounded input. Every request body is refused above MAX_BODY_BYTES (1 MiB by default)
// with 413 before anything else looks at it: from Content-Length without reading a
// byte, or while streaming, stopping at the limit. A body that stops arriving for
// BODY_IDLE_TIMEOUT_MS is answered 408. Files never pass through the functions (they
// go to signed storage URLs), so one JSON-sized limit fits every route — except the few
// a function declares as streamed (StreamedBody: the voice customers' CSV import), whose
// body of one named media type has its own larger cap (MAX_IMPORT_BODY_BYTES), refused
// from Content-Length or at the first byte past it, with the same idle timeout; it is not
// buffered here but by the route's authentication once the caller's standing is checked
// (TenantNeed.bodyFirst, shared/auth/context.ts), as the chunks it came in, so the
// handler still reads it chunk by chunk. A JSON body sent to such a route keeps
// MAX_BODY_BYTES.
import type { Context, MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { envInt } from './env.ts';
import { ApiError, badRequest, errorBody } from './errors.ts';

export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** The largest limit the variable may set: a function worker has 256 MB, and a body is
 *  held as bytes, as text and as parsed JSON at once. */
export const MAX_BODY_BYTES_CEILING = 64 * 1024 * 1024;
export const DEFAULT_BODY_IDLE_TIMEOUT_MS = 10_000;
/** An import: 50,000 CSV rows of about 60–200 bytes each, with room for notes. The body
 *  is held in memory (as its chunks) before the import reads it, so the ceiling stays well
 *  inside a 256 MB worker with the parsing beside it. */
export const DEFAULT_MAX_IMPORT_BODY_BYTES = 32 * 1024 * 1024;
export const MAX_IMPORT_BODY_BYTES_CEILING = 64 * 1024 * 1024;

export const maxBodyBytes = () => envInt('MAX_BODY_BYTES', DEFAULT_MAX_BODY_BYTES, 1, MAX_BODY_BYTES_CEILING);
export const maxImportBodyBytes = () =>
  envInt('MAX_IMPORT_BODY_BYTES', DEFAULT_MAX_IMPORT_BODY_BYTES, 1, MAX_IMPORT_BODY_BYTES_CEILING);
export const bodyIdleTimeoutMs = () => envInt('BODY_IDLE_TIMEOUT_MS', DEFAULT_BODY_IDLE_TIMEOUT_MS, 1, 600_000);

export const payloadTooLarge = (limit: number) =>
  new ApiError(413, 'payload_too_large', `The request body is larger than ${limit} bytes`, { limit });
export const bodyIncomplete = () => new ApiError(400, 'body_incomplete', 'The request body ended before it was complete');
export const requestTimeout = (idleMs: number) =>
  new ApiError(408, 'request_timeout', `The request body stopped arriving for ${idleMs} ms`, { idle_ms: idleMs });

/** The same bytes, but a read that waits longer than idleMs for the next chunk fails
 *  with a 408 ApiError. Pulls only on demand (high-water mark 0): a body nobody reads
 *  starts no timer. */
export function withIdleTimeout(
  source: ReadableStream<Uint8Array>,
  idleMs: number,
): { stream: ReadableStream<Uint8Array>; timedOut: () => boolean } {
  const reader = source.getReader();
  let timedOut = false;
  const stream = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          timedOut = true;
          reject(requestTimeout(idleMs));
        }, idleMs);
      });
      try {
        const { done, value } = await Promise.race([
          reader.read().catch((err) => {
            // A client that went away mid-body: its request, not a failure of ours (every
            // reader of the body — the body limit, a validator, a signature check — gets
            // this 400 rather than a 500).
            throw err instanceof ApiError ? err : bodyIncomplete();
          }),
          stalled,
        ]);
        if (done) controller.close();
        else controller.enqueue(value);
      } finally {
        clearTimeout(timer);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
  return { stream, timedOut: () => timedOut };
}

/** A route whose body, in one of `mediaTypes`, its handler reads as a stream
 *  (c.req.raw.body) instead of as JSON; `path` is relative to the function's base path. */
export interface StreamedBody {
  method: 'POST' | 'PUT';
  path: string;
  mediaTypes: readonly string[];
  maxBytes: () => number;
}

/** The media type of a Content-Type header, lower case, without parameters. */
export const mediaTypeOf = (contentType: string | null | undefined) => contentType?.split(';')[0].trim().toLowerCase() ?? '';

/** The streamed route this request is for, when it sends one of that route's media types. */
export function streamedBodyOf(streamed: readonly StreamedBody[], basePath: string, req: Request, path: string) {
  const type = mediaTypeOf(req.headers.get('content-type'));
  return streamed.find((s) => s.method === req.method && basePath + s.path === path && s.mediaTypes.includes(type));
}

/** The same bytes, erroring with a 413 ApiError at the first chunk that goes past `limit`. */
export function withByteLimit(source: ReadableStream<Uint8Array>, limit: number): ReadableStream<Uint8Array> {
  let size = 0;
  return source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        size += chunk.byteLength;
        if (size > limit) controller.error(payloadTooLarge(limit));
        else controller.enqueue(chunk);
      },
    }),
  );
}

/** A JSON body's bytes, erroring with a 400 `invalid_json` at the first that is not UTF-8:
 *  JSON is UTF-8 (RFC 8259), and a body read as text gets U+FFFD in place of bad bytes,
 *  silently (a Windows-1252 "é" in a name was stored as "\uFFFD"). */
export function withUtf8Check(source: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const notUtf8 = () => badRequest('invalid_json', 'The request body is not valid JSON: it is not UTF-8 text');
  const reader = source.getReader();
  // Pulled chunk by chunk as its reader asks (no read-ahead: a body over the limit stops
  // being taken from the client one chunk past it, as without this check).
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let read: ReadableStreamReadResult<Uint8Array>;
      try {
        read = await reader.read();
      } catch (err) {
        controller.error(err);
        return;
      }
      try {
        if (read.done) {
          decoder.decode();
          controller.close();
        } else {
          decoder.decode(read.value, { stream: true });
          controller.enqueue(read.value);
        }
      } catch {
        controller.error(notUtf8());
        await reader.cancel().catch(() => undefined);
      }
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}

/** True when the media type is JSON (`application/json`, `application/<x>+json`). */
export function isJsonMediaType(contentType: string | null | undefined): boolean {
  const type = mediaTypeOf(contentType);
  return type === 'application/json' || /^application\/[a-z0-9.!#$&^_-]+\+json$/.test(type);
}
const isJson = (req: Request) => isJsonMediaType(req.headers.get('content-type'));

/** Hono middleware, first after CORS in every function (shared/http.ts), so before any
 *  authentication, signature check or validation: Hono's bodyLimit refuses a declared
 *  Content-Length above the limit unread, and buffers a streamed body only up to the
 *  limit; every handler (the webhook signature checks included) then reads that bounded
 *  body. The idle timeout wraps the stream underneath. */
export function limitBody(basePath = '', streamed: readonly StreamedBody[] = []): MiddlewareHandler {
  return async (c: Context, next) => {
    const raw = c.req.raw;
    // A GET or HEAD has no body any route reads, and asking for one is not free: a server
    // adapter (@hono/node-server, scripts/serve.ts) builds a body stream on first access
    // (7 % of the call path's /route in a profile).
    if (raw.method === 'GET' || raw.method === 'HEAD' || !raw.body) return await next();
    const stream = streamed.length ? streamedBodyOf(streamed, basePath, raw, c.req.path) : undefined;
    if (stream) {
      // Read by the handler as it arrives: checked here from Content-Length, and counted
      // as it streams (the 413 surfaces from the handler's read, as an ApiError).
      const cap = stream.maxBytes();
      const declared = raw.headers.get('content-length');
      if (declared !== null && !(Number(declared) <= cap)) throw payloadTooLarge(cap);
      const guarded = withIdleTimeout(raw.body, bodyIdleTimeoutMs());
      const bounded = withByteLimit(guarded.stream, cap);
      c.req.raw = new Request(raw, { body: isJson(raw) ? withUtf8Check(bounded) : bounded, duplex: 'half' } as RequestInit);
      return await next();
    }
    const limit = maxBodyBytes();
    const guarded = withIdleTimeout(raw.body, bodyIdleTimeoutMs());
    c.req.raw = new Request(
      raw,
      { body: isJson(raw) ? withUtf8Check(guarded.stream) : guarded.stream, duplex: 'half' } as RequestInit,
    );
    await bodyLimit({
      maxSize: limit,
      onError: () => {
        throw payloadTooLarge(limit);
      },
    })(c, next);
    // A stalled body read by a handler (Content-Length path) surfaces there as a parse
    // failure; the client should learn what really happened.
    if (guarded.timedOut() && c.res.status !== 408) {
      const e = requestTimeout(bodyIdleTimeoutMs());
      c.res = c.json(errorBody(e.code, e.message, e.details), 408);
    }
  };
}

/** Every chunk of a stream, as it came; throws what the stream fails with through
 *  limitBody (its 413 or 408) as it is, and a broken stream as 400 body_incomplete. */
export async function chunksOf(stream: ReadableStream<Uint8Array>): Promise<Uint8Array[]> {
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  for (;;) {
    let read: ReadableStreamReadResult<Uint8Array>;
    try {
      read = await reader.read();
    } catch (err) {
      // A client that went away mid-upload: its request, not a failure of ours (it was
      // logged as a 500 internal_error).
      if (err instanceof ApiError) throw err;
      throw bodyIncomplete();
    }
    if (read.done) return chunks;
    chunks.push(read.value);
  }
}

/** The chunks as a stream again, one read each, each let go once read. */
export function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= chunks.length) return controller.close();
      const chunk = chunks[at];
      chunks[at++] = EMPTY;
      controller.enqueue(chunk);
    },
  });
}
const EMPTY = new Uint8Array(0);

function concat(chunks: Uint8Array[], size: number): Uint8Array<ArrayBuffer> {
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

/** Reads a whole body of at most `limit` bytes (outside Hono: local storage uploads),
 *  with the idle timeout; refuses a larger one from Content-Length or at the first byte
 *  past the limit, without reading further. Throws 413/408 ApiErrors. */
export async function readBodyLimited(req: Request, limit: number, idleMs = bodyIdleTimeoutMs()): Promise<Uint8Array> {
  const declared = req.headers.get('content-length');
  if (declared !== null && !(Number(declared) <= limit)) throw payloadTooLarge(limit);
  if (!req.body) return new Uint8Array(0);
  const reader = withIdleTimeout(req.body, idleMs).stream.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) throw payloadTooLarge(limit);
    chunks.push(value);
  }
  return concat(chunks, size);
}
