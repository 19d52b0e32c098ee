// Embeddings through the voice function where the project has vector search (issue 14;
// 20261203240000_kb_embeddings_api.sql): the voice function's own app, in-process, on a
// database as a hosted project's (tests/helpers/hosted-pglite.ts: PGlite with pgvector,
// every migration, served over the wire protocol so the function's driver and pools run
// unchanged), and at the end the local functions server (Deno, as `npm start` runs it)
// on the same database, called through supabase-js. An embedding job reads a document's
// chunks, writes their embeddings, and people and the provider's agent search by a
// query's embedding.
//
// What it holds: the chunks say which have an embedding and the size embeddings must
// have; a write is all or nothing, by chunk id, and one computed from a document's old
// content is refused after the content changed (409 chunks_changed) rather than attached
// to new text; a wrong embedding is 422 naming the item; null clears one; the search
// answers the chunks nearest the query's embedding in order (the oracle: cosine distance
// computed here), says it searched by the embedding, and falls back to the text where no
// chunk has one yet; by default both searches fused by their ranks (hybrid); another
// tenant's admin with the victim's ids finds nothing and changes nothing; the provider's
// search takes the embedding too.
import type { PGlite } from '@electric-sql/pglite';
import { createClient, FunctionsHttpError } from '@supabase/supabase-js';
import WebSocket from 'ws';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { app } from '../../functions/voice/app.ts';
import { apiKey } from '../../scripts/tokens.mjs';
import { closeDb } from '../../shared/db.ts';
import { startFunctionsServer } from '../helpers/functions-server.ts';
import { cosineDistance, embeddingSpace, hostedDatabase, serve } from '../helpers/hosted-pglite.ts';
import { call, errorCode } from '../helpers/http.ts';
import { tenants, users } from '../helpers/seed.ts';
import { type AuthFixture, configureAuth, supabaseToken, TEST_JWT_SECRET } from '../helpers/tokens.ts';

const DIMENSIONS = 1536;
const acme = tenants.acme.id;
const globex = tenants.globex.id;

let pg: PGlite;
let server: { url: string; stop: () => Promise<void> };
let auth: AuthFixture;
let service: string;
const tok: Record<string, string> = {};

const { query, near } = embeddingSpace(20261204, DIMENSIONS);

/** The stored state of a tenant's embeddings: chunk id → the embedding's text, or null. */
async function stored(tenant: string): Promise<Record<string, string | null>> {
  const rows = (await pg.query<{ id: string; e: string | null }>(
    `select id, embedding::text as e from public.kb_chunks where tenant_id = $1 order by id`,
    [tenant],
  )).rows;
  return Object.fromEntries(rows.map((r) => [r.id, r.e]));
}

type Chunk = { id: string; ordinal: number; content: string; embedded: boolean };
const paragraphs = (n: number, topic: string) =>
  Array.from({ length: n }, (_, i) => `${topic} paragraph ${i}: ${'words about the desk and its hours '.repeat(30)}`).join('\n\n');

let kb: string;
let doc: string;
let chunks: Chunk[];

beforeAll(async () => {
  pg = await hostedDatabase();
  server = await serve(pg);
  auth = await configureAuth(server.url);
  service = await apiKey('service_role', TEST_JWT_SECRET);
  tok.admin = await supabaseToken(users.acmeAdmin, { tenantId: acme });
  tok.agent = await supabaseToken(users.acmeAgent, { tenantId: acme });
  tok.user = await supabaseToken(users.acmeUser, { tenantId: acme });
  tok.globexAdmin = await supabaseToken(users.globexAdmin, { tenantId: globex });
  await pg.exec(`update public.tenants set plan = 'pro'`);
  const created = await call(app, 'POST', '/voice/knowledge-bases', { token: tok.admin, body: { name: 'Front desk' } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  kb = created.body.id;
  const uploaded = await call(app, 'POST', `/voice/knowledge-bases/${kb}/documents`, {
    token: tok.admin,
    body: { title: 'Handbook', content: paragraphs(12, 'Handbook') },
  });
  expect(uploaded.status, JSON.stringify(uploaded.body)).toBe(201);
  doc = uploaded.body.id;
}, 180_000);

afterAll(async () => {
  await closeDb();
  await auth?.close();
  await server?.stop();
  await pg?.close();
});

/** The tests' oracle for hybrid ranking: [chunk id, what found it] by the sum of
 *  1/(60 + rank) over the two lists (compared exactly, as fractions), ties to the better
 *  single place, then the embedding's. */
function fused(byEmbedding: string[], byText: string[]): [string, string][] {
  const ids = [...new Set([...byEmbedding, ...byText])];
  const place = (list: string[], id: string) => (list.includes(id) ? list.indexOf(id) + 1 : Infinity);
  const fraction = (id: string) =>
    [byEmbedding, byText]
      .filter((list) => list.includes(id))
      .reduce((f, list) => ({ n: f.n * (60 + place(list, id)) + f.d, d: f.d * (60 + place(list, id)) }), { n: 0, d: 1 });
  return ids
    .sort((a, b) =>
      fraction(b).n * fraction(a).d - fraction(a).n * fraction(b).d ||
      Math.min(place(byEmbedding, a), place(byText, a)) - Math.min(place(byEmbedding, b), place(byText, b)) ||
      (place(byEmbedding, a) - place(byEmbedding, b) || 0)
    )
    .map((id) => [id, byEmbedding.includes(id) && byText.includes(id) ? 'both' : byEmbedding.includes(id) ? 'embedding' : 'full_text']);
}

const chunksUrl = () => `/voice/knowledge-bases/${kb}/documents/${doc}/chunks`;
const embeddingsUrl = () => `/voice/knowledge-bases/${kb}/documents/${doc}/embeddings`;

describe("a document's chunks, for whoever computes their embeddings", () => {
  it('pages them in order, with the size embeddings must have and none embedded yet', async () => {
    const first = await call(app, 'GET', `${chunksUrl()}?limit=5`, { token: tok.user });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.embedding_dimensions).toBe(DIMENSIONS);
    expect(first.body.items.map((c: Chunk) => c.ordinal)).toEqual([0, 1, 2, 3, 4]);
    expect(first.body.next).toBe(4);
    const all: Chunk[] = [...first.body.items];
    let after = first.body.next;
    while (after !== null) {
      const next = await call(app, 'GET', `${chunksUrl()}?limit=5&after=${after}`, { token: tok.user });
      all.push(...next.body.items);
      after = next.body.next;
    }
    const [{ n }] = (await pg.query<{ n: number }>(
      `select count(*)::int as n from public.kb_chunks where tenant_id = $1 and document_id = $2`,
      [acme, doc],
    )).rows;
    expect(all.length).toBe(n);
    expect(n).toBeGreaterThan(5);
    expect(all.every((c) => !c.embedded)).toBe(true);
    expect(all.every((c) => c.content.startsWith('Handbook paragraph'))).toBe(true);
    chunks = all;
  });
});

describe('writing embeddings', () => {
  it("writes them by chunk id; the chunks say so; the search ranks by them, nearest first, as the oracle's cosine distance", async () => {
    // Each chunk a step farther from the query, given in shuffled order.
    const embeddings = chunks.map((_, i) => near(0.05 + 0.1 * i));
    const items = chunks.map((c, i) => ({ chunk_id: c.id, embedding: embeddings[i] })).reverse();
    const written = await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items } });
    expect(written.status, JSON.stringify(written.body)).toBe(200);
    expect(written.body).toEqual({ written: chunks.length });
    const listed = await call(app, 'GET', `${chunksUrl()}?limit=500`, { token: tok.user });
    expect(listed.body.items.every((c: Chunk) => c.embedded)).toBe(true);
    expect((await call(app, 'GET', `${chunksUrl()}?embedded=false`, { token: tok.user })).body.items).toEqual([]);

    const found = await call(app, 'POST', '/voice/knowledge-bases/search', {
      token: tok.user,
      body: { q: 'a text that matches nothing', embedding: query, ranking: 'embedding', limit: 4 },
    });
    expect(found.status, JSON.stringify(found.body)).toBe(200);
    expect(found.body.mode).toBe('embedding');
    const oracle = chunks
      .map((c, i) => ({ id: c.id, distance: cosineDistance(query, embeddings[i]) }))
      .sort((a, b) => a.distance - b.distance)
      .slice(0, 4);
    expect(found.body.items.map((h: { chunk_id: string }) => h.chunk_id)).toEqual(oracle.map((o) => o.id));
    for (const [i, hit] of found.body.items.entries()) {
      expect(hit).toMatchObject({ document_id: doc, knowledge_base_id: kb, title: 'Handbook' });
      expect(hit.score).toBeCloseTo(1 - oracle[i].distance, 4);
    }
    // Hybrid (the default), where the text finds nothing: the embedding's order, each hit
    // found by it alone, at its place.
    const hybrid = await call(app, 'POST', '/voice/knowledge-bases/search', {
      token: tok.user,
      body: { q: 'a text that matches nothing', embedding: query, limit: 4 },
    });
    expect(hybrid.body.mode).toBe('hybrid');
    expect(hybrid.body.items.map((h: { chunk_id: string }) => h.chunk_id)).toEqual(oracle.map((o) => o.id));
    for (const [i, hit] of hybrid.body.items.entries()) {
      expect(hit.matched_by).toBe('embedding');
      expect(hit.hybrid.full_text).toBeNull();
      expect(hit.hybrid.embedding.rank).toBe(i + 1);
      expect(hit.hybrid.embedding.score).toBeCloseTo(1 - oracle[i].distance, 4);
      expect(hit.score).toBeCloseTo(1 / (60 + i + 1), 6);
    }
  });

  it('the provider searches by the embedding too, within its tenant, and a plan without knowledge is 403', async () => {
    const headers = { authorization: `Bearer ${service}` };
    const found = await call(app, 'POST', '/voice/knowledge/search', {
      headers,
      body: { tenant_id: acme, knowledge_base_id: kb, q: 'desk', embedding: query, ranking: 'embedding', limit: 2 },
    });
    expect(found.status, JSON.stringify(found.body)).toBe(200);
    expect(found.body.mode).toBe('embedding');
    expect(found.body.items.map((h: { chunk_id: string }) => h.chunk_id)).toEqual([chunks[0].id, chunks[1].id]);
    // Hybrid by default: the two lists, each read four deep, fused by their ranks.
    const hybrid = await call(app, 'POST', '/voice/knowledge/search', {
      headers,
      body: { tenant_id: acme, knowledge_base_id: kb, q: 'desk', embedding: query, limit: 2 },
    });
    expect(hybrid.body.mode).toBe('hybrid');
    const textOrder = (await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&knowledge_base_id=${kb}&q=desk&limit=4`, { headers })).body.items;
    const expected = fused(chunks.slice(0, 4).map((c) => c.id), textOrder.map((h: { chunk_id: string }) => h.chunk_id)).slice(0, 2);
    expect(hybrid.body.items.map((h: { chunk_id: string; matched_by: string }) => [h.chunk_id, h.matched_by])).toEqual(expected);
    // By the text, as before, on GET.
    const text = await call(app, 'GET', `/voice/knowledge/search?tenant_id=${acme}&knowledge_base_id=${kb}&q=desk&limit=2`, { headers });
    expect(text.body.mode).toBe('full_text');
    expect(text.body.items).toHaveLength(2);
    // For the agent on the call: its knowledge base's chunks, and none for an agent without one.
    const { rows: [withKb, withoutKb] } = await pg.query<{ id: string }>(
      `insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, knowledge_base_id)
       values ($1, 'Desk', '+15550001001', 'v', '{"model": "m", "system_prompt": "p"}', $2),
              ($1, 'Sales', '+15550001002', 'v', '{"model": "m", "system_prompt": "p"}', null) returning id`,
      [acme, kb],
    );
    const forAgent = async (agent: string) =>
      (await call(app, 'POST', '/voice/knowledge/search', { headers, body: { tenant_id: acme, agent_id: agent, q: 'desk', embedding: query, limit: 2 } }))
        .body.items.map((h: { chunk_id: string }) => h.chunk_id);
    expect(await forAgent(withKb.id)).toEqual(hybrid.body.items.map((h: { chunk_id: string }) => h.chunk_id));
    expect(await forAgent(withoutKb.id)).toEqual([]);
    await pg.query(`delete from public.voice_agents where id in ($1, $2)`, [withKb.id, withoutKb.id]);
    // Another tenant's knowledge: globex has none, under the same embedding.
    const other = await call(app, 'POST', '/voice/knowledge/search', { headers, body: { tenant_id: globex, knowledge_base_id: kb, q: 'desk', embedding: query } });
    expect(other.status, JSON.stringify(other.body)).toBe(200);
    expect(other.body.items).toEqual([]);
    await pg.query(`update public.tenants set plan = 'starter' where id = $1`, [acme]);
    try {
      const starter = await call(app, 'POST', '/voice/knowledge/search', { headers, body: { tenant_id: acme, knowledge_base_id: kb, q: 'desk', embedding: query } });
      expect(starter.status).toBe(403);
      expect(errorCode(starter)).toBe('feature_not_in_plan');
    } finally {
      await pg.query(`update public.tenants set plan = 'pro' where id = $1`, [acme]);
    }
  });

  it("chunks of another document of the tenant, or of another tenant, are refused (409 chunks_changed) and nothing is written", async () => {
    const other = await call(app, 'POST', `/voice/knowledge-bases/${kb}/documents`, { token: tok.admin, body: { title: 'Other', content: 'Other document about the desk.' } });
    expect(other.status).toBe(201);
    const [otherChunk] = (await call(app, 'GET', `/voice/knowledge-bases/${kb}/documents/${other.body.id}/chunks`, { token: tok.admin })).body.items;
    // globex's own knowledge, under its own ids.
    const { rows: [gkb] } = await pg.query<{ id: string }>(`insert into public.voice_knowledge_bases (tenant_id, name) values ($1, 'Globex desk') returning id`, [globex]);
    const { rows: [gdoc] } = await pg.query<{ id: string }>(
      `insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values ($1, $2, 'Globex', 'Globex desk hours.') returning id`,
      [globex, gkb.id],
    );
    const { rows: [globexChunk] } = await pg.query<{ id: string }>(`select id from public.kb_chunks where tenant_id = $1 and document_id = $2`, [globex, gdoc.id]);
    const beforeAcme = await stored(acme);
    const beforeGlobex = await stored(globex);
    for (const foreign of [otherChunk.id, globexChunk.id]) {
      const r = await call(app, 'PUT', embeddingsUrl(), {
        token: tok.admin,
        body: { items: [{ chunk_id: chunks[0].id, embedding: near(3) }, { chunk_id: foreign, embedding: near(3) }] },
      });
      expect(r.status, JSON.stringify(r.body)).toBe(409);
      expect(errorCode(r)).toBe('chunks_changed');
      expect(r.body.error.details).toEqual({ chunk_ids: [foreign] });
    }
    expect(await stored(acme)).toEqual(beforeAcme);
    expect(await stored(globex)).toEqual(beforeGlobex);
    // globex's admin searching by the same embedding, while acme's chunks have theirs,
    // finds globex's chunk only (by the text: it has no embedding), never acme's.
    const search = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.globexAdmin, body: { q: 'desk', embedding: query } });
    expect(search.status, JSON.stringify(search.body)).toBe(200);
    expect(search.body.items.map((h: { chunk_id: string; matched_by: string }) => [h.chunk_id, h.matched_by])).toEqual([[globexChunk.id, 'full_text']]);
    const byKb = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.globexAdmin, body: { q: 'desk', embedding: query, knowledge_base_id: kb } });
    expect(byKb.body.items).toEqual([]);
    await call(app, 'DELETE', `/voice/knowledge-bases/${kb}/documents/${other.body.id}`, { token: tok.admin });
  });

  it('a wrong embedding is 422 naming the item and why, and nothing is written', async () => {
    const before = await stored(acme);
    const cases: [unknown[], string, string][] = [
      [[{ chunk_id: chunks[0].id, embedding: near(1) }, { chunk_id: chunks[1].id, embedding: [1, 2, 3] }], 'items.1.embedding', 'must have 1536 dimensions, not 3'],
      [[{ chunk_id: chunks[0].id, embedding: new Array(DIMENSIONS).fill(0) }], 'items.0.embedding', 'must not be all zeros'],
      // Squares that all round to zero in single precision: no direction either.
      [[{ chunk_id: chunks[0].id, embedding: new Array(DIMENSIONS).fill(1e-30) }], 'items.0.embedding', 'must not be all zeros'],
      [[{ chunk_id: chunks[0].id, embedding: new Array(DIMENSIONS).fill(1e30) }], 'items.0.embedding', 'values are too large'],
      [[{ chunk_id: chunks[0].id, embedding: near(1) }, { chunk_id: chunks[0].id, embedding: near(1) }], 'items.1.chunk_id', 'appears twice'],
    ];
    for (const [items, field, message] of cases) {
      const r = await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items } });
      expect(r.status, JSON.stringify(r.body)).toBe(422);
      expect(errorCode(r)).toBe('validation_failed');
      // The route's own check (zod) or the database's: the same field and reason.
      expect(r.body.error.details.fields).toEqual([expect.objectContaining({ field, message: expect.stringContaining(message) })]);
    }
    // And by the route's own schema: not numbers, no items, an unknown field, no embedding,
    // a value single precision cannot hold (past it, or below its smallest normal number).
    for (
      const body of [
        { items: [{ chunk_id: chunks[0].id, embedding: ['1'] }] },
        { items: [] },
        { items: [{ chunk_id: chunks[0].id, embedding: [1], model: 'x' }] },
        { items: [{ chunk_id: chunks[0].id }] },
        { items: [{ chunk_id: chunks[0].id, embedding: [...near(1).slice(1), 1e39] }] },
        { items: [{ chunk_id: chunks[0].id, embedding: [...near(1).slice(1), 1e-40] }] },
      ]
    ) {
      const r = await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body });
      expect(r.status, JSON.stringify(r.body)).toBe(422);
    }
    // Past the route (its SQL function, as a direct caller reaches it, without the route's
    // checks): an item without an embedding is refused, not taken as clearing the chunk's,
    // and the numbers are checked exactly (a float8 sum of squares overflows past 1.3e154,
    // a real[] cast fails below 1.4e-45).
    const direct = (item: Record<string, unknown>) =>
      pg.query(`select private.kb_set_embeddings($1, $2, $3, $4)`, [acme, kb, doc, JSON.stringify([{ chunk_id: chunks[0].id, ...item }])]);
    const fill = (x: number, last = x) => [...new Array(DIMENSIONS - 1).fill(x), last];
    for (
      const [item, message] of [
        [{}, 'items.0.embedding is required'],
        [{ embedding: fill(1, 1e200) }, 'values must be below 3.4e38'],
        [{ embedding: fill(1, 1e-40) }, 'values must be 0 or at least 1.2e-38'],
        [{ embedding: fill(0) }, 'must not be all zeros'],
        [{ embedding: fill(1e-30) }, 'must not be all zeros'],
        [{ embedding: fill(2e37) }, 'values are too large'],
        [{ embedding: fill(1).map(String) }, 'must hold numbers only'],
      ] as const
    ) {
      await expect(direct(item), message).rejects.toMatchObject({ code: 'PT422', message: expect.stringContaining(message) });
    }
    expect(await stored(acme)).toEqual(before);
    // A search by an embedding of the wrong size: 422 naming it, with the database's reason.
    const search = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { q: 'desk', embedding: [1, 2] } });
    expect(search.status, JSON.stringify(search.body)).toBe(422);
    expect(search.body.error.details.fields).toEqual([{ field: 'embedding', message: 'embedding must have 1536 dimensions, not 2' }]);
    // The same through the provider's search, by either ranking (its own statement, on the call path's pool).
    for (const ranking of ['hybrid', 'embedding']) {
      const provider = await call(app, 'POST', '/voice/knowledge/search', {
        headers: { authorization: `Bearer ${service}` },
        body: { tenant_id: acme, knowledge_base_id: kb, q: 'desk', embedding: [1, 2], ranking },
      });
      expect(provider.status, JSON.stringify(provider.body)).toBe(422);
      expect(provider.body.error.details.fields).toEqual([{ field: 'embedding', message: 'embedding must have 1536 dimensions, not 2' }]);
    }
    // A query embedding whose squares all round to zero in single precision: every cosine
    // distance would be NaN (scores "NaN", any order).
    const flat = await call(app, 'POST', '/voice/knowledge-bases/search', {
      token: tok.user,
      body: { q: 'desk', embedding: new Array(DIMENSIONS).fill(1e-25) },
    });
    expect(flat.status, JSON.stringify(flat.body)).toBe(422);
    expect(flat.body.error.details.fields).toEqual([
      expect.objectContaining({ field: 'embedding', message: expect.stringContaining('must not be all zeros') }),
    ]);
  });

  it("embeddings of a document's old content are refused once it changed (409 chunks_changed), all of them, and the new chunks start without", async () => {
    const before = await stored(acme);
    const changed = await call(app, 'PATCH', `/voice/knowledge-bases/${kb}/documents/${doc}`, {
      token: tok.admin,
      body: { content: paragraphs(3, 'Revised') },
    });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    const fresh = (await call(app, 'GET', chunksUrl(), { token: tok.admin })).body.items as Chunk[];
    expect(fresh.every((c) => !c.embedded && c.content.startsWith('Revised'))).toBe(true);
    expect(fresh.map((c) => c.id).some((id) => chunks.some((old) => old.id === id))).toBe(false);
    // One new chunk and one of the old content: nothing is written, and the old one is named.
    const stale = await call(app, 'PUT', embeddingsUrl(), {
      token: tok.admin,
      body: { items: [{ chunk_id: fresh[0].id, embedding: near(0.1) }, { chunk_id: chunks[0].id, embedding: near(0.1) }] },
    });
    expect(stale.status, JSON.stringify(stale.body)).toBe(409);
    expect(errorCode(stale)).toBe('chunks_changed');
    expect(stale.body.error.details).toEqual({ chunk_ids: [chunks[0].id] });
    const now = await stored(acme);
    expect(now[fresh[0].id]).toBeNull();
    // The old chunks are gone with their embeddings; no other chunk of the tenant changed.
    for (const old of chunks) expect(now).not.toHaveProperty(old.id);
    for (const [id, e] of Object.entries(now)) if (id in before) expect(e, id).toBe(before[id]);
    chunks = fresh;
  });

  it('fewer embedded chunks than asked for: those by the embedding first, the rest by the text, each saying what found it', async () => {
    const put = await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items: [{ chunk_id: chunks[1].id, embedding: near(0.1) }] } });
    expect(put.body).toEqual({ written: 1 });
    const found = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { q: 'revised', embedding: query, ranking: 'embedding', limit: 3 } });
    expect(found.body.mode).toBe('embedding');
    expect(found.body.items.map((h: { chunk_id: string; matched_by: string }) => [h.chunk_id, h.matched_by])).toEqual([
      [chunks[1].id, 'embedding'],
      ...[chunks[0].id, chunks[2].id].sort().map((id) => [id, 'full_text']),
    ]);
    const one = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { q: 'revised', embedding: query, ranking: 'embedding', limit: 1 } });
    expect(one.body.items.map((h: { matched_by: string }) => h.matched_by)).toEqual(['embedding']);
  });

  it('null clears an embedding; a search where no chunk has one falls back to the text, and says so', async () => {
    const items = chunks.map((c, i) => ({ chunk_id: c.id, embedding: near(0.2 * (i + 1)) }));
    expect((await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items } })).body).toEqual({ written: chunks.length });
    const cleared = await call(app, 'PUT', embeddingsUrl(), {
      token: tok.admin,
      body: { items: chunks.map((c) => ({ chunk_id: c.id, embedding: null })) },
    });
    expect(cleared.body).toEqual({ written: chunks.length });
    expect(Object.values(await stored(acme)).every((e) => e === null)).toBe(true);
    const found = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { q: 'revised', embedding: query } });
    expect(found.status, JSON.stringify(found.body)).toBe(200);
    expect(found.body.mode).toBe('full_text');
    expect(found.body.items.map((h: { chunk_id: string }) => h.chunk_id).sort()).toEqual(chunks.map((c) => c.id).sort());
  });
});

describe('hybrid ranking (the default with an embedding)', () => {
  it("a chunk both searches place well beats one either places first; a chunk without an embedding is still found by its words; the provider's search ranks the same", async () => {
    // Five chunks of one document (each paragraph too long to share a chunk), in their own
    // knowledge base: the part number X42 three times, twice, once or not at all, and
    // embeddings at known distances from the query (the fourth has none yet).
    const filler = 'the clerk checks the ledger before the counter opens. '.repeat(16);
    const texts = [
      `Valve X42, X42 and X42 again. ${filler}`,
      `Nothing about that part here. ${filler}`,
      `One mention of X42. ${filler}`,
      `X42 twice: X42. ${filler}`,
      `Opening times only. ${filler}`,
    ];
    const parts = await call(app, 'POST', '/voice/knowledge-bases', { token: tok.admin, body: { name: 'Parts' } });
    expect(parts.status).toBe(201);
    const upload = await call(app, 'POST', `/voice/knowledge-bases/${parts.body.id}/documents`, {
      token: tok.admin,
      body: { title: 'Parts', content: texts.join('\n\n') },
    });
    expect(upload.status, JSON.stringify(upload.body)).toBe(201);
    try {
      const url = `/voice/knowledge-bases/${parts.body.id}/documents/${upload.body.id}`;
      const partChunks = (await call(app, 'GET', `${url}/chunks`, { token: tok.admin })).body.items as Chunk[];
      expect(partChunks.map((c) => c.content.slice(0, 12))).toEqual(texts.map((t) => t.slice(0, 12)));
      const [p0, p1, p2, p3, p4] = partChunks.map((c) => c.id);
      const embedded: [string, number[]][] = [[p0, near(2)], [p1, near(0.05)], [p2, near(0.3)], [p4, near(0.5)]];
      const put = await call(app, 'PUT', `${url}/embeddings`, {
        token: tok.admin,
        body: { items: embedded.map(([chunk_id, embedding]) => ({ chunk_id, embedding })) },
      });
      expect(put.body).toEqual({ written: 4 });
      // The two searches alone, as the oracle ranks them: by the embedding p1, p2, p4, p0
      // (cosine distances computed here); by the text p0, p3, p2 (three, two, one X42).
      const byEmbedding = embedded.map(([id, e]) => ({ id, d: cosineDistance(query, e) })).sort((a, b) => a.d - b.d).map((x) => x.id);
      expect(byEmbedding).toEqual([p1, p2, p4, p0]);
      const body = { q: 'X42', embedding: query, knowledge_base_id: parts.body.id, limit: 5 };
      const text = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { q: 'X42', knowledge_base_id: parts.body.id, limit: 5 } });
      expect(text.body.items.map((h: { chunk_id: string }) => h.chunk_id)).toEqual([p0, p3, p2]);
      // Fused: p0 (4th and 1st) and p2 (2nd and 3rd) first, each found by both; then p1
      // (the embedding's first alone), p3 (the text's second, no embedding), p4.
      const hybrid = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body });
      expect(hybrid.status, JSON.stringify(hybrid.body)).toBe(200);
      expect(hybrid.body.mode).toBe('hybrid');
      const answer = hybrid.body.items.map((h: { chunk_id: string; matched_by: string }) => [h.chunk_id, h.matched_by]);
      expect(answer).toEqual([[p0, 'both'], [p2, 'both'], [p1, 'embedding'], [p3, 'full_text'], [p4, 'embedding']]);
      expect(answer).toEqual(fused(byEmbedding, [p0, p3, p2]));
      expect(hybrid.body.items.map((h: { score: number }) => h.score)).toEqual(
        [[4, 1], [2, 3], [1], [2], [3]].map((ranks) => expect.closeTo(ranks.reduce((sum, r) => sum + 1 / (60 + r), 0), 9)),
      );
      expect(hybrid.body.items[0].hybrid).toEqual({
        embedding: { rank: 4, score: expect.closeTo(1 - cosineDistance(query, embedded[0][1]), 4) },
        full_text: { rank: 1, score: text.body.items[0].score },
      });
      expect(hybrid.body.items[3].hybrid.embedding).toBeNull();
      // The same fused order for the provider's agent, and at a smaller limit its head.
      const headers = { authorization: `Bearer ${service}` };
      const provider = await call(app, 'POST', '/voice/knowledge/search', { headers, body: { ...body, tenant_id: acme } });
      expect(provider.body).toEqual(hybrid.body);
      const two = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { ...body, limit: 2 } });
      expect(two.body.items.map((h: { chunk_id: string }) => h.chunk_id)).toEqual([p0, p2]);
      // By the embedding alone: its order, the text's p3 after (it has no embedding).
      const nearest = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: { ...body, ranking: 'embedding' } });
      expect(nearest.body.items.map((h: { chunk_id: string; matched_by: string }) => [h.chunk_id, h.matched_by])).toEqual([
        [p1, 'embedding'], [p2, 'embedding'], [p4, 'embedding'], [p0, 'embedding'], [p3, 'full_text'],
      ]);
      // Another tenant's admin, naming this knowledge base: nothing, by either search.
      const foreign = await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.globexAdmin, body });
      expect(foreign.body).toEqual({ items: [], mode: 'full_text' });
    } finally {
      await call(app, 'DELETE', `/voice/knowledge-bases/${parts.body.id}`, { token: tok.admin });
    }
  });
});

describe('who may', () => {
  it("agents and users may not write embeddings (403); another tenant's admin with the victim's ids finds nothing and changes nothing", async () => {
    const items = [{ chunk_id: chunks[0].id, embedding: near(0.1) }];
    const before = await stored(acme);
    for (const token of [tok.agent, tok.user]) {
      const r = await call(app, 'PUT', embeddingsUrl(), { token, body: { items } });
      expect(r.status, JSON.stringify(r.body)).toBe(403);
    }
    const foreignWrite = await call(app, 'PUT', embeddingsUrl(), { token: tok.globexAdmin, body: { items } });
    const foreignRead = await call(app, 'GET', chunksUrl(), { token: tok.globexAdmin });
    // globex is on pro here: the same answers as for ids nobody has.
    const unknown = '00000000-0000-4000-8000-00000000beef';
    const unknownWrite = await call(app, 'PUT', `/voice/knowledge-bases/${unknown}/documents/${unknown}/embeddings`, {
      token: tok.globexAdmin,
      body: { items },
    });
    const unknownRead = await call(app, 'GET', `/voice/knowledge-bases/${unknown}/documents/${unknown}/chunks`, { token: tok.globexAdmin });
    expect([foreignWrite.status, foreignRead.status]).toEqual([404, 404]);
    expect(foreignWrite.body).toEqual(unknownWrite.body);
    expect(foreignRead.body).toEqual(unknownRead.body);
    const search = await call(app, 'POST', '/voice/knowledge-bases/search', {
      token: tok.globexAdmin,
      body: { q: 'revised', embedding: query, knowledge_base_id: kb },
    });
    expect(search.body.items).toEqual([]);
    expect(await stored(acme)).toEqual(before);
  });
});

type Entry = { action: string; changed_fields: string[]; old_data: Record<string, unknown>; new_data: Record<string, unknown>; actor_user_id: string | null; actor_role: string };
/** The document's entries in the trail after an id, oldest first. */
async function docEntries(after: number): Promise<Entry[]> {
  return (await pg.query<Entry>(
    `select action, changed_fields, old_data, new_data, actor_user_id, actor_role from public.audit_logs
     where table_name = 'kb_documents' and record_key = $1::jsonb and id > $2 order by id`,
    [JSON.stringify({ tenant_id: acme, id: doc }), after],
  )).rows;
}
const lastAuditId = async () => (await pg.query<{ id: number }>(`select coalesce(max(id), 0)::int as id from public.audit_logs`)).rows[0].id;
const docUrl = () => `/voice/knowledge-bases/${kb}/documents/${doc}`;

describe('the trail', () => {
  /** A statement on the chunks as the service role (a job with the service key, through
   *  PostgREST or SQL), under its claims. */
  async function asServiceRole(sql: string, params: unknown[]) {
    await pg.transaction(async (tx) => {
      await tx.exec(`set local role service_role; select set_config('request.jwt.claims', '{"role":"service_role"}', true);`);
      await tx.query(sql, params);
    });
  }
  const count = async () => (await call(app, 'GET', docUrl(), { token: tok.user })).body.embedded_chunks;

  it('every write of embeddings is an entry of its document, by its writer, with how many chunks have one; refused writes leave none', async () => {
    const start = await lastAuditId();
    const before = await call(app, 'GET', docUrl(), { token: tok.user });
    expect(before.status, JSON.stringify(before.body)).toBe(200);
    expect(before.body.embedded_chunks).toBe(0);
    expect(before.body.chunks).toBe(chunks.length);

    const all = chunks.map((c, i) => ({ chunk_id: c.id, embedding: near(0.1 * (i + 1)) }));
    expect((await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items: all } })).body).toEqual({ written: chunks.length });
    const first = await call(app, 'GET', docUrl(), { token: tok.user });
    expect(first.body.embedded_chunks).toBe(chunks.length);
    expect(Date.parse(first.body.embeddings_written_at)).not.toBeNaN();
    // The list shows the same figures.
    const listed = await call(app, 'GET', `/voice/knowledge-bases/${kb}/documents`, { token: tok.user });
    expect(listed.body.items.find((d: { id: string }) => d.id === doc)).toMatchObject({
      embedded_chunks: chunks.length,
      embeddings_written_at: first.body.embeddings_written_at,
    });
    let entries = await docEntries(start);
    expect(entries).toEqual([expect.objectContaining({
      action: 'UPDATE',
      changed_fields: ['embedded_chunks', 'embeddings_written_at'],
      actor_user_id: users.acmeAdmin.id,
      actor_role: 'authenticated',
    })]);
    // (Earlier tests wrote embeddings of this document's chunks, and cleared them.)
    expect(entries[0].old_data).toMatchObject({ embedded_chunks: 0, embeddings_written_at: before.body.embeddings_written_at });
    expect(Date.parse(before.body.embeddings_written_at)).toBeLessThanOrEqual(Date.parse(first.body.embeddings_written_at));
    expect(entries[0].new_data).toMatchObject({ embedded_chunks: chunks.length, embeddings_written_at: first.body.embeddings_written_at });

    // The same chunks again, with other embeddings: as many embedded, still an entry.
    const again = chunks.map((c, i) => ({ chunk_id: c.id, embedding: near(0.3 + 0.1 * i) }));
    expect((await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items: again } })).status).toBe(200);
    // One cleared.
    expect((await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items: [{ chunk_id: chunks[0].id, embedding: null }] } })).body)
      .toEqual({ written: 1 });
    // One written again as it is stored: nothing changed, no entry.
    expect((await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items: [again[1]] } })).body).toEqual({ written: 1 });
    entries = await docEntries(start);
    expect(entries.map((e) => e.changed_fields)).toEqual([
      ['embedded_chunks', 'embeddings_written_at'],
      ['embeddings_written_at'],
      ['embedded_chunks', 'embeddings_written_at'],
    ]);
    expect(entries[2].new_data).toMatchObject({ embedded_chunks: chunks.length - 1 });
    const cleared = await call(app, 'GET', docUrl(), { token: tok.user });
    expect(cleared.body.embedded_chunks).toBe(chunks.length - 1);

    // Refused writes that reach the database (a wrong size, a chunk that is not the
    // document's, another tenant's admin with this one's ids) leave the document and the
    // trail as they were.
    const mark = await lastAuditId();
    const refused = [
      await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items: [{ chunk_id: chunks[1].id, embedding: [1, 2] }] } }),
      await call(app, 'PUT', embeddingsUrl(), {
        token: tok.admin,
        body: { items: [{ chunk_id: chunks[1].id, embedding: near(1) }, { chunk_id: '00000000-0000-4000-8000-00000000beef', embedding: near(1) }] },
      }),
      await call(app, 'PUT', embeddingsUrl(), { token: tok.globexAdmin, body: { items: [{ chunk_id: chunks[1].id, embedding: null }] } }),
    ];
    expect(refused.map((r) => r.status)).toEqual([422, 409, 404]);
    expect(await lastAuditId()).toBe(mark);
    expect((await call(app, 'GET', docUrl(), { token: tok.user })).body).toEqual(cleared.body);

    // The document's own columns: no API role writes them, through PostgREST's grants either.
    const [{ may }] = (await pg.query<{ may: boolean }>(
      `select bool_or(has_column_privilege(r, 'public.kb_documents', c, p)) as may
       from unnest(array['authenticated', 'anon']) r, unnest(array['embedded_chunks', 'embeddings_written_at']) c,
            unnest(array['INSERT', 'UPDATE']) p`,
    )).rows;
    expect(may).toBe(false);
  });

  it("embeddings the service role writes or deletes on the chunks directly are counted and entered too, under its claims", async () => {
    const start = await lastAuditId();
    const n = await count();
    // (Copies of another chunk's: the service role here may not call pgvector's input function.)
    const copy = `(select k.embedding from public.kb_chunks k where k.tenant_id = $1 and k.id = '${chunks[1].id}')`;
    await asServiceRole(`update public.kb_chunks set embedding = ${copy} where tenant_id = $1 and id = $2`, [acme, chunks[0].id]);
    expect(await count()).toBe(n + 1);
    // A chunk with its embedding deleted: the count, not the time of a write.
    await asServiceRole(`delete from public.kb_chunks where tenant_id = $1 and id = $2`, [acme, chunks[chunks.length - 1].id]);
    expect(await count()).toBe(n);
    // Chunks inserted with an embedding count too.
    await asServiceRole(
      `insert into public.kb_chunks (tenant_id, knowledge_base_id, document_id, ordinal, content, embedding)
       values ($1, $2, $3, 1000, 'An appendix.', ${copy})`,
      [acme, kb, doc],
    );
    expect(await count()).toBe(n + 1);
    const entries = await docEntries(start);
    expect(entries.map((e) => [e.changed_fields, e.actor_role, e.actor_user_id])).toEqual([
      [['embedded_chunks', 'embeddings_written_at'], 'service_role', null],
      [['embedded_chunks'], 'service_role', null],
      [['embedded_chunks'], 'service_role', null],
    ]);
    expect(entries.map((e) => [e.old_data.embedded_chunks, e.new_data.embedded_chunks])).toEqual([[n, n + 1], [n + 1, n], [n, n + 1]]);
  });

  it('an operator repairs counts written with the triggers off: private.kb_documents_recount_embeddings', async () => {
    const n = await count();
    const written = (await call(app, 'GET', docUrl(), { token: tok.user })).body.embeddings_written_at;
    await pg.exec(`update public.kb_documents set embedded_chunks = 0 where tenant_id = '${acme}' and id = '${doc}'`);
    expect(await count()).toBe(0);
    const fixed = await pg.query<{ n: number }>(`select private.kb_documents_recount_embeddings() as n`);
    expect(fixed.rows[0].n).toBe(1);
    expect(await count()).toBe(n);
    expect((await call(app, 'GET', docUrl(), { token: tok.user })).body.embeddings_written_at).toBe(written);
    expect((await pg.query<{ n: number }>(`select private.kb_documents_recount_embeddings() as n`)).rows[0].n).toBe(0);
    const [{ may }] = (await pg.query<{ may: boolean }>(
      `select has_function_privilege('authenticated', 'private.kb_documents_recount_embeddings(uuid[], uuid[], boolean)', 'EXECUTE')
           or has_function_privilege('anon', 'private.kb_documents_recount_embeddings(uuid[], uuid[], boolean)', 'EXECUTE') as may`,
    )).rows;
    expect(may).toBe(false);
  });

  it('a new title leaves the count; a new content or knowledge base resets it in the same entry', async () => {
    const n = await count();
    expect(n).toBeGreaterThan(0);
    const mark = await lastAuditId();
    // The route sends the content it has with a new title: the chunks stay, and the count.
    const renamed = await call(app, 'PATCH', docUrl(), { token: tok.admin, body: { title: 'Handbook, revised' } });
    expect(renamed.status, JSON.stringify(renamed.body)).toBe(200);
    expect(renamed.body.embedded_chunks).toBe(n);
    expect((await docEntries(mark)).map((e) => e.changed_fields)).toEqual([['title']]);

    const changed = await call(app, 'PATCH', docUrl(), { token: tok.admin, body: { content: paragraphs(4, 'Revised') } });
    expect(changed.status, JSON.stringify(changed.body)).toBe(200);
    expect(changed.body.embedded_chunks).toBe(0);
    const [, content, ...more] = await docEntries(mark);
    expect(more).toEqual([]);
    expect(content.changed_fields).toEqual(['content', 'embedded_chunks']);
    expect([content.old_data.embedded_chunks, content.new_data.embedded_chunks]).toEqual([n, 0]);

    // Moved to another knowledge base (SQL: the API moves no document), it is cut again.
    const fresh = (await call(app, 'GET', `${chunksUrl()}?limit=500`, { token: tok.admin })).body.items as Chunk[];
    await call(app, 'PUT', embeddingsUrl(), { token: tok.admin, body: { items: [{ chunk_id: fresh[0].id, embedding: near(0.1) }] } });
    expect(await count()).toBe(1);
    const other = await call(app, 'POST', '/voice/knowledge-bases', { token: tok.admin, body: { name: 'Elsewhere' } });
    await pg.query(`update public.kb_documents set knowledge_base_id = $1 where tenant_id = $2 and id = $3`, [other.body.id, acme, doc]);
    const [moved] = (await pg.query<{ n: number }>(`select embedded_chunks as n from public.kb_documents where tenant_id = $1 and id = $2`, [acme, doc])).rows;
    expect(moved.n).toBe(0);
    await pg.query(`update public.kb_documents set knowledge_base_id = $1, title = 'Handbook' where tenant_id = $2 and id = $3`, [kb, acme, doc]);
    await call(app, 'DELETE', `/voice/knowledge-bases/${other.body.id}`, { token: tok.admin });

    chunks = (await call(app, 'GET', `${chunksUrl()}?limit=500`, { token: tok.admin })).body.items;
    expect(chunks.every((c) => !c.embedded)).toBe(true);
    expect(await count()).toBe(0);
  });
});

describe('the function as `npm start` serves it (Deno), through supabase-js', () => {
  it('an embedding job and a search by embedding run the same on this database', async () => {
    const anonKey = await apiKey('anon', TEST_JWT_SECRET);
    // The local functions server with its own driver and pools, on this database.
    const functions = await startFunctionsServer({ SUPABASE_DB_URL: server.url, SUPABASE_ANON_KEY: anonKey });
    try {
      const as = (token: string) =>
        createClient(functions.url, anonKey, {
          auth: { persistSession: false, autoRefreshToken: false },
          realtime: { transport: WebSocket as never },
          global: { headers: { Authorization: `Bearer ${token}` } },
        });
      const admin = as(tok.admin);
      const listed = await admin.functions.invoke(`voice/knowledge-bases/${kb}/documents/${doc}/chunks?embedded=false`, { method: 'GET' });
      expect(listed.error).toBeNull();
      expect(listed.data.embedding_dimensions).toBe(DIMENSIONS);
      const todo = listed.data.items as Chunk[];
      expect(todo.length).toBe(chunks.length);
      const embeddings = todo.map((_, i) => near(0.05 + 0.2 * i));
      const written = await admin.functions.invoke(`voice/knowledge-bases/${kb}/documents/${doc}/embeddings`, {
        method: 'PUT',
        body: { items: todo.map((c, i) => ({ chunk_id: c.id, embedding: embeddings[i] })) },
      });
      expect(written.error).toBeNull();
      expect(written.data).toEqual({ written: todo.length });
      const document = await admin.functions.invoke(`voice/knowledge-bases/${kb}/documents/${doc}`, { method: 'GET' });
      expect(document.error).toBeNull();
      expect(document.data.embedded_chunks).toBe(todo.length);
      const search = { q: 'revised', embedding: query, knowledge_base_id: kb, limit: 2 };
      const found = await as(tok.user).functions.invoke('voice/knowledge-bases/search', { body: { ...search, ranking: 'embedding' } });
      expect(found.error).toBeNull();
      expect(found.data.mode).toBe('embedding');
      expect(found.data.items.map((h: { chunk_id: string }) => h.chunk_id)).toEqual(
        todo.map((c, i) => ({ id: c.id, d: cosineDistance(query, embeddings[i]) })).sort((a, b) => a.d - b.d).slice(0, 2).map((x) => x.id),
      );
      // Hybrid, the default: as the function answers in-process.
      const hybrid = await as(tok.user).functions.invoke('voice/knowledge-bases/search', { body: search });
      expect(hybrid.error).toBeNull();
      expect(hybrid.data.mode).toBe('hybrid');
      expect(hybrid.data).toEqual((await call(app, 'POST', '/voice/knowledge-bases/search', { token: tok.user, body: search })).body);
      // A wrong size through the same path: 422 in the common error shape.
      const wrong = await admin.functions.invoke(`voice/knowledge-bases/${kb}/documents/${doc}/embeddings`, {
        method: 'PUT',
        body: { items: [{ chunk_id: todo[0].id, embedding: [1, 2] }] },
      });
      expect(wrong.error).toBeInstanceOf(FunctionsHttpError);
      const res = (wrong.error as FunctionsHttpError).context as Response;
      expect(res.status).toBe(422);
      expect((await res.json()).error.details.fields).toEqual([{ field: 'items.0.embedding', message: 'must have 1536 dimensions, not 2' }]);
    } finally {
      await functions.stop();
    }
  });
});
