// Embeddings through the voice function where the project has no vector search, as the
// local embedded Postgres (issue 14; 20261203240000_kb_embeddings_api.sql): the routes
// say so rather than pretend. A document's chunks list none embedded and no size; a write
// of embeddings is 409 vector_search_unavailable and changes nothing; a search with an
// embedding searches the text and says so (`mode`), answering what the GET search
// answers. Where the project has vector search: tests/deploy/hosted-vector-api.test.ts.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app as tenantsApp } from '../../functions/tenants/app.ts';
import { app } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

let db: TestDatabase;
let auth: AuthFixture;
let service: string;
const tok: Record<string, string> = {};
const acme = tenants.acme.id;
const globex = tenants.globex.id;
let kb: string;
let doc: string;

beforeAll(async () => {
  db = await freshDatabase('fn_voice_kb_embeddings');
  auth = await configureAuth(db.url);
  service = await apiKey('service_role', TEST_JWT_SECRET);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  await db.sql`update public.tenants set plan = 'pro'`;
  kb = (await call(app, 'POST', '/voice/knowledge-bases', { token: tok.admin, body: { name: 'Front desk' } })).body.id;
  const content = Array.from({ length: 8 }, (_, i) => `Parking note ${i}: ${'the garage opens at seven '.repeat(50)}`).join('\n\n');
  const uploaded = await call(app, 'POST', `/voice/knowledge-bases/${kb}/documents`, { token: tok.admin, body: { title: 'Garage', content } });
  expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(201);
  doc = uploaded.body.id;
});
afterAll(async () => {
  await closeDb();
  await auth.close();
  await db.close();
});

const chunksUrl = (k = kb, d = doc) => `/voice/knowledge-bases/${k}/documents/${d}/chunks`;

describe('without vector search', () => {
  it("a document's chunks: in order, in pages, none embedded, no embedding size", async () => {
    const stored = await db.sql`select id, ordinal, content from public.kb_chunks where tenant_id = ${acme} and document_id = ${doc} order by ordinal`;
    expect(stored.length).toBeGreaterThan(3);
    const first = await call(app, 'GET', `${chunksUrl()}?limit=3`, { token: tok.user });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body).toEqual({
      items: stored.slice(0, 3).map((c) => ({ id: c.id, ordinal: c.ordinal, content: c.content, embedded: false })),
      next: 2,
      embedding_dimensions: null,
    });
    const rest = await call(app, 'GET', `${chunksUrl()}?limit=500&after=2`, { token: tok.user });
    expect(rest.body.items.map((c: { id: string }) => c.id)).toEqual(stored.slice(3).map((c) => c.id));
    expect(rest.body.next).toBeNull();
    expect((await call(app, 'GET', `${chunksUrl()}?embedded=true`, { token: tok.user })).body.items).toEqual([]);
    expect((await call(app, 'GET', `${chunksUrl()}?embedded=false`, { token: tok.user })).body.items).toHaveLength(
      Math.min(stored.length, 100),
    );
    // A document addressed through another knowledge base, or another tenant's: 404.
    const [other] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Other') returning id`;
    const wrongKb = await call(app, 'GET', chunksUrl(other.id), { token: tok.admin });
    const foreign = await call(app, 'GET', chunksUrl(), { token: tok.globexAdmin });
    expect([wrongKb.status, foreign.status]).toEqual([404, 404]);
    expect(errorCode(foreign)).toBe('not_found');
    for (const query of ['?limit=0', '?limit=501', '?after=x', '?after=1e20', '?embedded=yes']) {
      const r = await call(app, 'GET', `${chunksUrl()}${query}`, { token: tok.user });
      expect(r.status, query).toBe(422);
      expect(errorCode(r)).toBe('validation_failed');
    }
  });

  it('a page of 500, the most, says whether another follows (a document of 640 chunks)', async () => {
    const content = Array.from({ length: 640 }, (_, i) => `Item ${i}: ${'x'.repeat(1_100)}`).join('\n\n');
    const long = await call(app, 'POST', `/voice/knowledge-bases/${kb}/documents`, { token: tok.admin, body: { title: 'Long', content } });
    expect(long.status, JSON.stringify(long.body).slice(0, 200)).toBe(201);
    const url = `/voice/knowledge-bases/${kb}/documents/${long.body.id}/chunks?limit=500`;
    const first = await call(app, 'GET', url, { token: tok.user });
    expect(first.body.items).toHaveLength(500);
    expect(first.body.next).toBe(499);
    const second = await call(app, 'GET', `${url}&after=499`, { token: tok.user });
    expect(second.body.items.map((c: { ordinal: number }) => c.ordinal)).toEqual(Array.from({ length: 140 }, (_, i) => 500 + i));
    expect(second.body.next).toBeNull();
  });

  it('a write of embeddings is 409 vector_search_unavailable and changes nothing; bad bodies are 422 first', async () => {
    const [chunk] = await db.sql`select id from public.kb_chunks where tenant_id = ${acme} and document_id = ${doc} order by ordinal limit 1`;
    const before = await db.sql`select * from public.kb_chunks where tenant_id = ${acme} order by id`;
    const url = `/voice/knowledge-bases/${kb}/documents/${doc}/embeddings`;
    const r = await call(app, 'PUT', url, { token: tok.admin, body: { items: [{ chunk_id: chunk.id, embedding: [0.1, 0.2] }] } });
    expect(r.status, JSON.stringify(r.body)).toBe(409);
    expect(errorCode(r)).toBe('vector_search_unavailable');
    expect(r.body.error.message).toMatch(/full text/);
    for (
      const body of [
        {},
        { items: [] },
        { items: [{ chunk_id: 'not-an-id', embedding: [1] }] },
        { items: [{ chunk_id: chunk.id, embedding: [] }] },
        { items: [{ chunk_id: chunk.id, embedding: [1, 'two'] }] },
        { items: Array.from({ length: 101 }, () => ({ chunk_id: chunk.id, embedding: [1] })) },
        { items: [{ chunk_id: chunk.id, embedding: [1] }], extra: true },
      ]
    ) {
      const bad = await call(app, 'PUT', url, { token: tok.admin, body });
      expect(bad.status, JSON.stringify(body).slice(0, 80)).toBe(422);
      expect(errorCode(bad)).toBe('validation_failed');
    }
    // A user may not, whatever the project has.
    const user = await call(app, 'PUT', url, { token: tok.user, body: { items: [{ chunk_id: chunk.id, embedding: [1] }] } });
    expect(user.status).toBe(403);
    expect(await db.sql`select * from public.kb_chunks where tenant_id = ${acme} order by id`).toEqual(before);
  });

  it('a search with an embedding searches the text, says so, and answers what the GET search answers', async () => {
    const get = await call(app, 'GET', `/voice/knowledge-bases/search?q=garage&limit=3`, { token: tok.user });
    expect(get.status).toBe(200);
    expect(get.body.mode).toBe('full_text');
    expect(get.body.items).toHaveLength(3);
    const post = await call(app, 'POST', '/voice/knowledge-bases/search', {
      token: tok.user,
      body: { q: 'garage', embedding: [0.3, 0.1, 0.7], limit: 3 },
    });
    expect(post.status, JSON.stringify(post.body)).toBe(200);
    expect(post.body).toEqual(get.body);
    // Without an embedding, the same; and by either ranking (each needs vector search).
    expect((await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { q: 'garage', limit: 3 } })).body).toEqual(get.body);
    for (const ranking of ['hybrid', 'embedding']) {
      const ranked = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { q: 'garage', embedding: [0.3, 0.1, 0.7], ranking, limit: 3 } });
      expect(ranked.body, ranking).toEqual(get.body);
    }
    for (const body of [{ embedding: [1] }, { q: '' }, { q: 'garage', embedding: [1], ranking: 'nearest' }, { q: 'garage', ranking: null }, { q: 'garage', limit: 51 }, { q: 'garage', embedding: [1e39] }, { q: 'garage', embedding: [1, 1e-40] }, { q: 'garage', embedding: [1e-25, 1e-25] }, { q: 'garage', embedding: [2e19, 2e19] }, { q: 'garage', tenant_id: acme }]) {
      const r = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body });
      expect(r.status, JSON.stringify(body)).toBe(422);
    }
    // Another tenant's people search their own (none here).
    const foreign = await call(app, 'POST', '/voice/knowledge-bases/search', {
      token: tok.globexAdmin,
      body: { q: 'garage', embedding: [1, 2], knowledge_base_id: kb },
    });
    expect(foreign.body).toEqual({ items: [], mode: 'full_text' });
  });

  it('a write of embeddings takes the document\'s lock first: it waits for a content change in progress (and so cannot write between its check of the ids and the new chunks)', async () => {
    const [chunk] = await db.sql`select id from public.kb_chunks where tenant_id = ${acme} and document_id = ${doc} order by ordinal limit 1`;
    // Held by a content change; and by FOR SHARE, as another write held it before
    // 20261203241000 (two writes then each held it and updated the chunks in their own
    // order: a deadlock): a write now waits for both.
    for (
      const hold of [
        (tx: typeof db.sql) => tx`update public.kb_documents set content = content || ' (revised)' where tenant_id = ${acme} and id = ${doc}`,
        (tx: typeof db.sql) => tx`select 1 from public.kb_documents where tenant_id = ${acme} and id = ${doc} for share`,
      ]
    ) {
    const holder = await db.sql.reserve();
    let write: Promise<{ status: number; body: { error?: { code: string } } }> | undefined;
    try {
      await holder`begin`;
      await hold(holder as unknown as typeof db.sql);
      write = call(app, 'PUT', `/voice/knowledge-bases/${kb}/documents/${doc}/embeddings`, {
        token: tok.admin,
        body: { items: [{ chunk_id: chunk.id, embedding: [0.5, 0.5] }] },
      });
      // The write waits on the document's row lock held here (without its lock it answered
      // at once); here, without vector search, it then answers that.
      for (let tries = 0;; tries++) {
        const [{ n }] = await db.sql`
          select count(*)::int as n from pg_stat_activity
          where datname = current_database() and wait_event_type = 'Lock' and query like '%kb_set_embeddings%'`;
        if (n === 1) break;
        if (tries > 500) throw new Error('the write never waited on the document');
        await new Promise((r) => setTimeout(r, 20));
      }
      await holder`rollback`;
    } finally {
      holder.release();
    }
    const r = await write!;
    expect([r.status, r.body.error?.code]).toEqual([409, 'vector_search_unavailable']);
    }
  });

  it("the provider's search takes an embedding too; a tenant's API key searches its own tenant only", async () => {
    const headers = { authorization: `Bearer ${service}` };
    const get = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&knowledge_base_id=${kb}&q=garage&limit=2`, { headers });
    const post = await call(app, 'POST', '/voice/knowledge/search', { headers, body: { tenant_id: acme, knowledge_base_id: kb, q: 'garage', embedding: [1, 2], limit: 2 } });
    expect(post.status, JSON.stringify(post.body)).toBe(200);
    expect(post.body).toEqual(get.body);
    expect(post.body.items).toHaveLength(2);
    const created = await call(tenantsApp, 'POST', `/tenants/${acme}/api-keys`, {
      token: tok.admin,
      body: { name: 'provider', scopes: ['voice:route'] },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const key = created.body.key as string;
    const own = await call(app, 'POST', '/voice/knowledge/search', { headers: { authorization: `Bearer ${key}` }, body: { tenant_id: acme, knowledge_base_id: kb, q: 'garage' } });
    const other = await call(app, 'POST', '/voice/knowledge/search', { headers: { authorization: `Bearer ${key}` }, body: { tenant_id: globex, knowledge_base_id: kb, q: 'garage' } });
    expect([own.status, other.status]).toEqual([200, 404]);
    const anonymous = await call(app, 'POST', '/voice/knowledge/search', { body: { tenant_id: acme, knowledge_base_id: kb, q: 'garage' } });
    expect(anonymous.status).toBe(401);
  });
});
