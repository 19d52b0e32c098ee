// Attachment bytes never pass through the functions: clients upload to and download
// from short-lived signed URLs. On a hosted project those are Supabase Storage's; in
// the local stack, a folder served by the local server with HMAC-signed URLs. One
// interface, chosen by STORAGE_BACKEND; the local folder exists only in the local stack
// (PLATFORM_LOCAL_STACK=1, where it is the default), never on a hosted project.
import { mkdir, open, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { env, envList, isLocalStack } from './env.ts';
import { jwtSecret, supabaseUrl } from './auth/issuers.ts';
import { secretEquals } from './auth/service.ts';
import { ApiError, storageUnavailable } from './errors.ts';
import { readBodyLimited } from './limits.ts';

export interface SignedUrl {
  url: string;
  method: 'PUT' | 'GET';
  headers: Record<string, string>;
  expires_at: string;
}

export interface ObjectStorage {
  createUploadUrl(
    bucket: string,
    objectPath: string,
    opts: { contentType: string; size: number },
  ): Promise<SignedUrl>;
  /** A download URL that serves the object as an attachment named fileName, with the
   *  content type stored for it. */
  createDownloadUrl(
    bucket: string,
    objectPath: string,
    opts: { fileName: string; contentType: string },
  ): Promise<SignedUrl>;
  /** Whether the object is there; throws when the storage gives no answer. */
  exists(bucket: string, objectPath: string): Promise<boolean>;
  /** Deletes the object: true, or false when it was gone already (no error). Throws when
   *  the storage gives no answer (the storage-delete job retries). */
  remove(bucket: string, objectPath: string): Promise<boolean>;
}

const UPLOAD_TTL_S = 2 * 3600;
/** The largest attachment (the tickets function refuses to announce a larger one). */
export const MAX_UPLOAD_BYTES = 50 * 1024 * 1024;
const DOWNLOAD_TTL_S = 300;
const expiry = (seconds: number) => new Date(Date.now() + seconds * 1000);
/** The object keys Supabase Storage takes (isValidKey in supabase/storage's
 *  src/storage/limits.ts): ASCII letters, digits and `_/!-.*'() &$@=;:+,?`. Anything
 *  else (an accent, a CJK name, `#`, `%`) is 400 InvalidKey there. */
const STORAGE_KEY = /^[A-Za-z0-9_/!\-.*'() &$@=;:+,?]+$/;

/** Whether Supabase Storage takes `p` as an object key: no object can be stored under
 *  one it refuses (an attachment registered before 20261205191000 kept its file name as
 *  given), so such a key names nothing to find or delete. */
export function storableKey(p: string): boolean {
  return STORAGE_KEY.test(p) && !p.split('/').some((s) => s === '' || s === '.' || s === '..');
}

/** Object paths come from the database (<tenant>/<ticket>/<attachment>/<file>); a dot
 *  segment would let a URL climb out of the bucket, so none is ever encoded. A key
 *  Storage would refuse is refused here too, on the local folder as on a hosted project. */
function encodePath(p: string): string {
  if (!storableKey(p)) {
    throw new Error(STORAGE_KEY.test(p) ? 'invalid object path' : 'invalid object path: a key Supabase Storage refuses');
  }
  return p.split('/').map(encodeURIComponent).join('/');
}

/** A storage request that failed (Storage down, a timeout, a refusal to sign) is a 503
 *  to retry, not a 500 or a missing object. */
export async function fromStorage<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    console.error('[storage] request failed:', err instanceof Error ? err.message : err);
    throw storageUnavailable();
  }
}

// ---------------------------------------------------------------- Supabase Storage

function serviceKey(): string {
  const key = env('SUPABASE_SERVICE_ROLE_KEY') ?? envList('SUPABASE_SECRET_KEYS')[0];
  if (!key) {
    throw new Error('SUPABASE_SERVICE_ROLE_KEY or SUPABASE_SECRET_KEYS is needed for Supabase Storage');
  }
  return key;
}

async function storageApi(method: string, route: string, body?: unknown): Promise<Response> {
  const key = serviceKey();
  return await fetch(`${supabaseUrl()}/storage/v1${route}`, {
    method,
    headers: { authorization: `Bearer ${key}`, apikey: key, 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  });
}

/** Whether Storage's answer says the object does not exist: 404, or (older versions) 400
 *  with `"statusCode": "404"` in its body. Storage also answers 400 for a refused or
 *  malformed key and for a policy's refusal: those are failures, not absences. Consumes
 *  the body, whatever the answer. */
async function missing(res: Response): Promise<boolean> {
  if (res.status !== 400) {
    await res.body?.cancel();
    return res.status === 404;
  }
  const body = await res.json().catch(() => null) as { statusCode?: unknown } | null;
  return String(body?.statusCode) === '404';
}

/** What an answer about one object says: true (2xx: there, or done), false (it does not
 *  exist), or a throw (no answer about it: down, a refused key). */
async function aboutObject(res: Response, what: string): Promise<boolean> {
  const absent = await missing(res);
  if (res.ok) return true;
  if (absent) return false;
  throw new Error(`storage: ${what} failed (${res.status})`);
}

export const supabaseStorage: ObjectStorage = {
  async createUploadUrl(bucket, objectPath, { contentType }) {
    const res = await storageApi('POST', `/object/upload/sign/${bucket}/${encodePath(objectPath)}`, {});
    if (!res.ok) throw new Error(`storage: upload URL refused (${res.status})`);
    const { url } = await res.json() as { url: string };
    return {
      url: `${supabaseUrl()}/storage/v1${url}`,
      method: 'PUT',
      headers: { 'content-type': contentType },
      expires_at: expiry(UPLOAD_TTL_S).toISOString(),
    };
  },
  async createDownloadUrl(bucket, objectPath, { fileName }) {
    const res = await storageApi('POST', `/object/sign/${bucket}/${encodePath(objectPath)}`, { expiresIn: DOWNLOAD_TTL_S });
    if (!res.ok) throw new Error(`storage: download URL refused (${res.status})`);
    const { signedURL } = await res.json() as { signedURL: string };
    // Storage reads the download name from the signed URL's query (`download`), not from
    // the sign request: with it the object is served as an attachment under that name
    // (Content-Disposition with filename*), with the content type it was uploaded as;
    // without it, inline, where a browser would render what it can.
    const download = `${signedURL.includes('?') ? '&' : '?'}download=${encodeURIComponent(fileName)}`;
    return {
      url: `${supabaseUrl()}/storage/v1${signedURL}${download}`,
      method: 'GET',
      headers: {},
      expires_at: expiry(DOWNLOAD_TTL_S).toISOString(),
    };
  },
  async exists(bucket, objectPath) {
    return await aboutObject(await storageApi('GET', `/object/info/${bucket}/${encodePath(objectPath)}`), 'object info');
  },
  async remove(bucket, objectPath) {
    return await aboutObject(await storageApi('DELETE', `/object/${bucket}/${encodePath(objectPath)}`), 'delete');
  },
};

// ---------------------------------------------------------------- local folder

function localRoot(): string {
  return path.resolve(env('LOCAL_STORAGE_DIR') ?? '.local/storage');
}

/** The local backend exists only in the local stack. */
function requireLocalStack(): void {
  if (!isLocalStack()) {
    throw new Error('the local storage backend exists only in the local stack (PLATFORM_LOCAL_STACK=1)');
  }
}

/** The URL-signing key: LOCAL_STORAGE_SECRET, else one derived (HMAC with its own label)
 *  from the stack's JWT secret, so a storage signature is never a JWT signature. */
async function signingKey(): Promise<CryptoKey> {
  requireLocalStack();
  const hmacKey = (raw: Uint8Array) =>
    crypto.subtle.importKey('raw', raw as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const configured = env('LOCAL_STORAGE_SECRET');
  if (configured) return await hmacKey(new TextEncoder().encode(configured));
  const jwt = jwtSecret();
  if (!jwt) throw new Error('LOCAL_STORAGE_SECRET is needed for local storage');
  const derived = await crypto.subtle.sign(
    'HMAC',
    await hmacKey(new TextEncoder().encode(jwt)),
    new TextEncoder().encode('local-storage-url-signing/v1'),
  );
  return await hmacKey(new Uint8Array(derived));
}

async function hmac(text: string): Promise<string> {
  const sig = new Uint8Array(await crypto.subtle.sign('HMAC', await signingKey(), new TextEncoder().encode(text)));
  return btoa(String.fromCharCode(...sig)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

/** What a local signed URL grants: one operation on one object, until it expires —
 *  for a download also the content type and file name it is served with. Each field is
 *  JSON-encoded, so no value can pass for another. */
const grant = (
  op: string,
  bucket: string,
  objectPath: string,
  exp: number,
  size: number,
  contentType = '',
  fileName = '',
) => JSON.stringify([op, bucket, objectPath, exp, size, contentType, fileName]);

/** A stored content type as a header value: a well-formed `type/subtype` with optional
 *  parameters, else application/octet-stream. */
function servableType(contentType: string): string {
  return /^[\w.+-]+\/[\w.+-]+(\s*;\s*[\w.+-]+=("[\x20-\x7e]*"|[\w.+-]+))*$/.test(contentType)
    ? contentType
    : 'application/octet-stream';
}

/** `Content-Disposition: attachment` with the file name as RFC 6266 wants it: an ASCII
 *  fallback in `filename` (quotes, backslashes, controls and non-ASCII replaced) and the
 *  exact name, UTF-8 and percent-encoded, in `filename*`. */
export function attachmentDisposition(fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]|["\\%]/g, '_') || 'download';
  const encoded = encodeURIComponent(fileName).replace(
    /['()*]/g,
    (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${fallback}"; filename*=UTF-8''${encoded}`;
}

function localFile(bucket: string, objectPath: string): string {
  const root = localRoot();
  const file = path.resolve(root, bucket, objectPath);
  if (!file.startsWith(root + path.sep)) throw new Error('object path escapes the storage folder');
  return file;
}

async function localUrl(
  op: 'upload' | 'download',
  bucket: string,
  objectPath: string,
  ttl: number,
  size = 0,
  served: { contentType: string; fileName: string } = { contentType: '', fileName: '' },
) {
  const exp = Math.floor(expiry(ttl).getTime() / 1000);
  const sig = await hmac(grant(op, bucket, objectPath, exp, size, served.contentType, served.fileName));
  const base = env('LOCAL_STORAGE_PUBLIC_URL') ?? supabaseUrl();
  const query = new URLSearchParams({ op, exp: String(exp), size: String(size) });
  if (op === 'download') {
    query.set('type', served.contentType);
    query.set('name', served.fileName);
  }
  query.set('sig', sig);
  return { url: `${base}/storage/v1/local/${bucket}/${encodePath(objectPath)}?${query}`, exp };
}

export const localStorage: ObjectStorage = {
  async createUploadUrl(bucket, objectPath, { contentType, size }) {
    const { url, exp } = await localUrl('upload', bucket, objectPath, UPLOAD_TTL_S, size);
    return {
      url,
      method: 'PUT',
      headers: { 'content-type': contentType },
      expires_at: new Date(exp * 1000).toISOString(),
    };
  },
  async createDownloadUrl(bucket, objectPath, { fileName, contentType }) {
    const { url, exp } = await localUrl('download', bucket, objectPath, DOWNLOAD_TTL_S, 0, { contentType, fileName });
    return { url, method: 'GET', headers: {}, expires_at: new Date(exp * 1000).toISOString() };
  },
  async exists(bucket, objectPath) {
    return await stat(localFile(bucket, objectPath)).then((s) => s.isFile(), () => false);
  },
  async remove(bucket, objectPath) {
    return await unlink(localFile(bucket, objectPath)).then(() => true, (err) => {
      if ((err as { code?: string }).code === 'ENOENT') return false;
      throw err;
    });
  },
};

const json = (status: number, code: string, message: string) =>
  new Response(JSON.stringify({ error: { code, message } }), {
    status,
    headers: { 'content-type': 'application/json' },
  });

/** The local stack's storage endpoint (served by scripts/serve.ts): PUT uploads exactly
 *  the announced number of bytes, once; GET downloads; both need a valid, unexpired
 *  signature for that operation and object. */
export async function handleLocalStorage(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const m = url.pathname.match(/^\/storage\/v1\/local\/([^/]+)\/(.+)$/);
  if (!m || !isLocalStack()) return json(404, 'not_found', 'Not found');
  let bucket: string;
  let objectPath: string;
  try {
    bucket = decodeURIComponent(m[1]);
    objectPath = m[2].split('/').map(decodeURIComponent).join('/');
  } catch {
    return json(400, 'invalid_path', 'Invalid object path');
  }
  const op = url.searchParams.get('op') ?? '';
  const exp = Number(url.searchParams.get('exp'));
  const size = Number(url.searchParams.get('size'));
  const contentType = url.searchParams.get('type') ?? '';
  const fileName = url.searchParams.get('name') ?? '';
  const expected = await hmac(grant(op, bucket, objectPath, exp, size, contentType, fileName));
  if (!(await secretEquals(expected, url.searchParams.get('sig') ?? ''))) {
    return json(403, 'invalid_signature', 'Bad signature');
  }
  if (!(exp * 1000 > Date.now())) return json(403, 'expired', 'The signed URL has expired');
  let file: string;
  try {
    file = localFile(bucket, objectPath);
  } catch {
    return json(400, 'invalid_path', 'Invalid object path');
  }
  if (op === 'upload' && req.method === 'PUT') {
    // Never more than the signed size (itself at most 50 MiB), checked from
    // Content-Length and while streaming: reading stops at the first byte too many.
    if (!Number.isSafeInteger(size) || size < 0) return json(400, 'invalid_size', 'Invalid size');
    let body: Uint8Array;
    try {
      body = await readBodyLimited(req, Math.min(size, MAX_UPLOAD_BYTES));
    } catch (err) {
      if (err instanceof ApiError) return json(err.status, err.code, err.message);
      throw err;
    }
    if (body.length !== size) return json(400, 'size_mismatch', `Expected ${size} bytes, got ${body.length}`);
    await mkdir(path.dirname(file), { recursive: true });
    try {
      const handle = await open(file, 'wx'); // once: an object is never overwritten
      await handle.writeFile(body);
      await handle.close();
    } catch {
      return json(409, 'already_exists', 'The object was already uploaded');
    }
    return new Response(null, { status: 200 });
  }
  if (op === 'download' && req.method === 'GET') {
    try {
      const handle = await open(file, 'r');
      const data = await handle.readFile();
      await handle.close();
      // Served as what it was stored as, as a download, never sniffed into something
      // a browser would render (an "image" that is really HTML stays a download).
      return new Response(data, {
        status: 200,
        headers: {
          'content-type': servableType(contentType),
          'content-disposition': attachmentDisposition(fileName || path.basename(file)),
          'x-content-type-options': 'nosniff',
          'cache-control': 'private, no-store',
        },
      });
    } catch {
      return json(404, 'not_found', 'No such object');
    }
  }
  return json(405, 'method_not_allowed', 'This URL does not allow that');
}

/** STORAGE_BACKEND, else local in the local stack and Supabase Storage elsewhere. The
 *  local folder is refused outside the local stack, whatever STORAGE_BACKEND says. */
export function objectStorage(): ObjectStorage {
  const backend = env('STORAGE_BACKEND') ?? (isLocalStack() ? 'local' : 'supabase');
  if (backend === 'local') requireLocalStack();
  return backend === 'local' ? localStorage : supabaseStorage;
}
