// Local storage downloads (the local stack's signed URLs, shared/storage.ts): served with
// the content type stored for the file, as an attachment under its file name (RFC 6266:
// an ASCII fallback and the exact UTF-8 name), never sniffed; the served type and name
// are part of the signature. Supabase Storage's download URLs carry the file name too.
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { attachmentDisposition, handleLocalStorage, localStorage, supabaseStorage } from '../shared/storage.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'storage-test-'));
  Object.assign(process.env, {
    PLATFORM_LOCAL_STACK: '1',
    LOCAL_STORAGE_DIR: dir,
    LOCAL_STORAGE_PUBLIC_URL: 'http://127.0.0.1:54321',
    SUPABASE_JWT_SECRET: 'storage-test-jwt-secret-of-at-least-32-chars',
  });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

let n = 0;
async function stored(bytes: Uint8Array, fileName: string, contentType: string) {
  // The key is the database's (private.set_attachment_location: the name in the characters
  // Storage takes); the name served is the file's own.
  const objectPath = `t/${++n}/a/file`;
  const up = await localStorage.createUploadUrl('attachments', objectPath, { contentType, size: bytes.length });
  expect((await handleLocalStorage(new Request(up.url, { method: 'PUT', body: bytes as BufferSource }))).status).toBe(200);
  return await localStorage.createDownloadUrl('attachments', objectPath, { fileName, contentType });
}

describe('local storage downloads', () => {
  const cases: [string, string, string, string][] = [
    // file name, stored type, served type, Content-Disposition
    ['invoice.pdf', 'application/pdf', 'application/pdf', `attachment; filename="invoice.pdf"; filename*=UTF-8''invoice.pdf`],
    ['Rechnung März "2026".pdf', 'application/pdf', 'application/pdf',
      `attachment; filename="Rechnung M_rz _2026_.pdf"; filename*=UTF-8''Rechnung%20M%C3%A4rz%20%222026%22.pdf`],
    ['screen shot (1).png', 'image/png', 'image/png', `attachment; filename="screen shot (1).png"; filename*=UTF-8''screen%20shot%20%281%29.png`],
    ['报告.txt', 'text/plain; charset=utf-8', 'text/plain; charset=utf-8', `attachment; filename="__.txt"; filename*=UTF-8''%E6%8A%A5%E5%91%8A.txt`],
    ['page.html', 'text/html', 'text/html', `attachment; filename="page.html"; filename*=UTF-8''page.html`],
    ["a;b=c\\d'e%f.bin", 'application/octet-stream', 'application/octet-stream',
      `attachment; filename="a;b=c_d'e_f.bin"; filename*=UTF-8''a%3Bb%3Dc%5Cd%27e%25f.bin`],
    ['odd.bin', 'text/html\r\nx-evil: 1', 'application/octet-stream', `attachment; filename="odd.bin"; filename*=UTF-8''odd.bin`],
  ];

  it.each(cases)('%s (%j) is served as %j, as an attachment, nosniff', async (fileName, type, served, disposition) => {
    const bytes = new TextEncoder().encode(`<html>${fileName}</html>`);
    const download = await stored(bytes, fileName, type);
    const res = await handleLocalStorage(new Request(download.url));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(served);
    expect(res.headers.get('content-disposition')).toBe(disposition);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
  });

  it('the served type and name are signed: changing either is a 403', async () => {
    const download = await stored(new Uint8Array([1, 2, 3]), 'photo.png', 'image/png');
    for (const [param, value] of [['type', 'text/html'], ['name', 'photo.html'], ['type', ''], ['name', '']]) {
      const tampered = new URL(download.url);
      tampered.searchParams.set(param, value);
      expect((await handleLocalStorage(new Request(tampered))).status, `${param}=${value}`).toBe(403);
    }
  });

  it('the disposition header never carries a raw quote, backslash, control or non-ASCII character', () => {
    for (const name of ['a"b', 'a\\b', 'a\r\nb', 'ä', '\u0000', '"; filename="evil.html']) {
      const header = attachmentDisposition(name);
      const fallback = header.match(/filename="([^"]*)"/)![1];
      expect(fallback, name).toMatch(/^[\x20-\x7e]*$/);
      expect(fallback, name).not.toMatch(/["\\]/);
      expect(header.split('filename*=')[1], name).toMatch(/^UTF-8''[A-Za-z0-9%._~!-]*$/);
      expect(() => new Headers({ 'content-disposition': header }), name).not.toThrow();
    }
  });
});

describe('Supabase Storage download URLs', () => {
  // A stand-in for Storage's sign endpoint: it records each request and answers with a
  // signed path, as /storage/v1/object/sign does.
  const requests: { method?: string; url?: string; body: string }[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => (body += d));
    req.on('end', () => {
      requests.push({ method: req.method, url: req.url, body });
      const signed = req.url!.replace(/^\/storage\/v1/, '') + '?token=eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl';
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ signedURL: signed }));
    });
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.env.SUPABASE_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.SUPABASE_SERVICE_ROLE_KEY = 'storage-test-service-key';
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it.each(['invoice.pdf', 'Rechnung März "2026".pdf', 'a&b=c+d %41#x?.txt', '报告.txt'])(
    '%s: the signed URL asks Storage to serve it as an attachment under that exact name',
    async (fileName) => {
      requests.length = 0;
      const objectPath = 't/1/a/file';
      const got = await supabaseStorage.createDownloadUrl('attachments', objectPath, { fileName, contentType: 'application/pdf' });
      expect(requests).toHaveLength(1);
      expect(requests[0].method).toBe('POST');
      expect(JSON.parse(requests[0].body)).toEqual({ expiresIn: 300 });
      const url = new URL(got.url);
      expect(url.origin).toBe(process.env.SUPABASE_URL);
      expect(decodeURIComponent(url.pathname)).toBe(`/storage/v1/object/sign/attachments/${objectPath}`);
      expect(url.searchParams.get('token')).toBe('eyJhbGciOiJIUzI1NiJ9.e30.c2lnbmF0dXJl');
      // Exactly the name, however a query string parser reads it (no '+' for a space).
      expect(url.searchParams.get('download')).toBe(fileName);
      expect(url.search).not.toMatch(/\+/);
      expect(got.method).toBe('GET');
    },
  );
});

describe('object keys', () => {
  // Supabase Storage refuses (400 InvalidKey) any key outside ASCII letters, digits and
  // `_/!-.*'() &$@=;:+,?` (isValidKey, supabase/storage src/storage/limits.ts): such a key
  // is refused before any request, by the local folder as by a hosted project.
  it.each(['t/1/a/Rechnung März.pdf', 't/1/a/报告.txt', 't/1/a/a#b.txt', 't/1/a/100%.txt', 't/1/a/12.05\u202fPM.png'])(
    '%s is refused on both backends',
    async (objectPath) => {
      for (const storage of [localStorage, supabaseStorage]) {
        await expect(storage.createUploadUrl('attachments', objectPath, { contentType: 'text/plain', size: 1 }))
          .rejects.toThrow('a key Supabase Storage refuses');
        await expect(storage.createDownloadUrl('attachments', objectPath, { fileName: 'x', contentType: 'text/plain' }))
          .rejects.toThrow('a key Supabase Storage refuses');
      }
    },
  );
  it("takes every character Storage takes: `_/!-.*'() &$@=;:+,?` and ASCII letters and digits", async () => {
    const key = "t/1/a/Az09_!-.*'() &$@=;:+,?.txt";
    const up = await localStorage.createUploadUrl('attachments', key, { contentType: 'text/plain', size: 1 });
    expect((await handleLocalStorage(new Request(up.url, { method: 'PUT', body: new Uint8Array([7]) }))).status).toBe(200);
  });
});

describe('Supabase Storage: an absent object told from a failure', () => {
  // Storage answers a missing object 404, or (older versions) 400 with "statusCode": "404"
  // in its body; it also answers 400 for a refused key or a policy's refusal, and 5xx when
  // it is down. Only the first two are absences; the rest must throw (a job retries, a
  // route answers 503), never read as "gone".
  let answer: { status: number; body: string } = { status: 200, body: '{}' };
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.writeHead(answer.status, { 'content-type': 'application/json' }).end(answer.body));
  });
  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    process.env.SUPABASE_URL = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    process.env.SUPABASE_SERVICE_ROLE_KEY = 'storage-test-service-key';
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const cases: [string, number, string, boolean | 'throws', boolean | 'throws'][] = [
    // what, status, body, exists(), remove()
    ['there (200)', 200, '{"name":"x"}', true, true],
    ['missing (404)', 404, '{"statusCode":"404","error":"not_found"}', false, false],
    ['missing (400, statusCode 404)', 400, '{"statusCode":"404","error":"not_found","message":"Object not found"}', false, false],
    ['a refused key (400, statusCode 403)', 400, '{"statusCode":"403","error":"Unauthorized","message":"invalid signature"}', 'throws', 'throws'],
    ['a 400 that is no JSON', 400, 'Bad Request', 'throws', 'throws'],
    ['down (503)', 503, '{"statusCode":"503"}', 'throws', 'throws'],
    ['a refused key (401)', 401, '{"statusCode":"401"}', 'throws', 'throws'],
  ];
  it.each(cases)('%s', async (_, status, body, exists, removed) => {
    answer = { status, body };
    const outcome = (p: Promise<boolean>) => p.then((v) => v, () => 'throws' as const);
    expect(await outcome(supabaseStorage.exists('call-recordings', 't/c/recording.mp3'))).toBe(exists);
    expect(await outcome(supabaseStorage.remove('call-recordings', 't/c/recording.mp3'))).toBe(removed);
  });
});
