// Every route of every function's OpenAPI document, tried with every other method
// (405 with Allow naming exactly the documented ones) and with a body that is not JSON
// (415), before authentication; and with its own method and no token, which must be
// neither. Decided by shared/http.ts from the routes each app registered.
import { describe, expect, it } from 'vitest';
import { functionApps as apps } from '../helpers/openapi.ts';

const { tenants, tickets } = apps;

const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];
const SAMPLE_ID = '10000000-0000-4000-8000-0000000000ff';

interface Operation {
  fn: string;
  template: string;
  path: string;
  methods: string[];
}

async function operations(): Promise<Operation[]> {
  const all: Operation[] = [];
  for (const [fn, app] of Object.entries(apps)) {
    const doc = await (await app.request(`/${fn}/openapi.json`)).json();
    for (const [template, item] of Object.entries(doc.paths as Record<string, Record<string, unknown>>)) {
      const methods = Object.keys(item).map((m) => m.toUpperCase()).filter((m) => METHODS.includes(m));
      // The document's servers entry is /functions/v1; its paths start with /<function>.
      all.push({ fn, template, path: template.replace(/\{[^}]+\}/g, SAMPLE_ID), methods });
    }
    all.push({ fn, template: `/${fn}/openapi.json`, path: `/${fn}/openapi.json`, methods: ['GET'] });
  }
  return all;
}

async function send(op: Operation, method: string, init: RequestInit = {}) {
  const res = await apps[op.fn].request(op.path, { method, ...init });
  const text = await res.text();
  return { status: res.status, allow: res.headers.get('allow'), body: text ? JSON.parse(text) : null };
}

describe('methods and media types, over every documented route', () => {
  it('a method the path does not take is 405 with Allow listing exactly the documented methods', async () => {
    const ops = await operations();
    let tried = 0;
    for (const op of ops) {
      const expected = [...op.methods, ...(op.methods.includes('GET') ? ['HEAD'] : []), 'OPTIONS'];
      for (const method of METHODS.filter((m) => !op.methods.includes(m))) {
        const r = await send(op, method);
        const label = `${method} ${op.template}`;
        expect(r.status, label).toBe(405);
        expect(r.allow?.split(', ').sort(), label).toEqual([...expected].sort());
        expect(r.body.error.code, label).toBe('method_not_allowed');
        expect(r.body.error.message, label).toContain(method);
        expect(r.body.error.details.allowed.sort(), label).toEqual([...expected].sort());
        tried++;
      }
    }
    // 4 functions, every path: the count moves only when routes are added or removed.
    expect(ops.length).toBeGreaterThanOrEqual(85);
    expect(tried).toBeGreaterThanOrEqual(300);
    console.log(`[methods] ${ops.length} paths, ${tried} wrong methods tried: all 405 with Allow`);
  });

  it('the right method is never 405 or 415; a body that is not JSON is 415, before authentication', async () => {
    const ops = await operations();
    let tried = 0;
    for (const op of ops) {
      for (const method of op.methods) {
        const label = `${method} ${op.template}`;
        const plain = await send(op, method);
        expect([405, 415], label).not.toContain(plain.status);
        if (method === 'GET') continue;
        for (const contentType of ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x']) {
          const r = await send(op, method, { body: 'name=x', headers: { 'content-type': contentType, 'content-length': '6' } });
          expect(r.status, `${label} ${contentType}`).toBe(415);
          expect(r.body.error.code).toBe('unsupported_media_type');
          expect(r.body.error.message).toContain('application/json');
          expect(r.body.error.details.content_type).toBe(contentType);
          tried++;
        }
        // No media type at all, with a body: 415 as well.
        const bare = await send(op, method, { body: new TextEncoder().encode('{}'), headers: { 'content-length': '2' } });
        expect([bare.status, bare.body.error.code], `${label} without content-type`).toEqual([415, 'unsupported_media_type']);
        tried++;
        const json = await send(op, method, { body: '{}', headers: { 'content-type': 'application/json; charset=utf-8' } });
        expect([405, 415], `${label} json`).not.toContain(json.status);
      }
    }
    expect(tried).toBeGreaterThanOrEqual(300);
    console.log(`[methods] ${tried} non-JSON bodies tried: all 415`);
  });

  it('a wrong method on a literal path is 405, not a 422 about a path parameter', async () => {
    const r = await tenants.request('/tenants/me', { method: 'DELETE' });
    expect([r.status, r.headers.get('allow')]).toEqual([405, 'GET, PATCH, HEAD, OPTIONS']);
    const stats = await tickets.request('/tickets/stats', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    expect(stats.status).toBe(405);
    // HEAD follows GET; OPTIONS is CORS's; an unknown path is no 405.
    expect((await tenants.request('/tenants/me', { method: 'HEAD' })).status).not.toBe(405);
    expect((await tenants.request('/tenants/me', { method: 'OPTIONS', headers: { origin: 'http://localhost:3000', 'access-control-request-method': 'GET' } })).status).toBe(204);
    const missing = await tenants.request('/tenants/me/nothing/here', { method: 'DELETE' });
    expect(missing.status).not.toBe(405);
  });
});
