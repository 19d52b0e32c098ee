// The knowledge base's hosted half (issue 14): where the `vector` extension exists — every
// hosted Supabase project — the migrations add kb_chunks.embedding (vector(1536)) with an
// HNSW index, and private.kb_search ranks by cosine distance when it is given an
// embedding. The local embedded Postgres has no `vector`, so the rest of the suite only
// ever sees that part skipped. Here it runs: on PGlite (PostgreSQL 18 compiled to
// WebAssembly, from npm) with the real pgvector (@electric-sql/pglite-pgvector, 0.8),
// after the platform bootstrap, every migration (each file as one transaction, as
// `supabase db push` applies them) and the seed. Not a hosted project in every respect:
// the migrations run as the superuser (hosted demotes postgres), on Postgres 18, without
// pg_cron and pg_net; what differs because of `vector` is what this holds.
//
// What it holds: the schema is the local one plus the embedding column and its index
// (columns, constraints, indexes, RLS, privileges, functions with their settings and
// bodies, policies, triggers); the vector search answers a tenant's nearest chunks, in
// order, from its own chunks only (another tenant's under the same ids, and nearer or
// among its own, included), also when the planner scans the HNSW index, which holds
// every tenant's chunks; a wrong embedding is a clear 22023; people search under their
// standing in the tenant.
import type { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUERIES } from '../../scripts/catalog-snapshot.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { cosineDistance, embeddingSpace, hostedDatabase } from '../helpers/hosted-pglite.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';

const DIMENSIONS = 1536;
const acme = tenants.acme.id;
const globex = tenants.globex.id;

let pg: PGlite;
let local: TestDatabase;

async function rows<T = Record<string, unknown>>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await pg.query<T>(text, params)).rows;
}

/** An embedding as Postgres reads a real[]: `{…}`. */
const pgArray = (v: (number | string)[]) => `{${v.join(',')}}`;

const { query, near } = embeddingSpace(20261203, DIMENSIONS);

type Chunk = { id: string; knowledge_base_id: string; embedding: number[] | null };
/** acme's chunks as written, with their embeddings: the oracle ranks these. */
const acmeChunks: Chunk[] = [];
let acmeKb: string;
let acmeOtherKb: string;
let acmeDoc: string;

/** A knowledge base with one document whose chunks (ordinals 0…n-1) get these
 *  embeddings (null: none); `ids` names the chunks (another tenant's ids, to collide). */
async function knowledge(tenant: string, name: string, embeddings: (number[] | null)[], ids?: string[]) {
  const [{ id: kb }] = await rows<{ id: string }>(
    `insert into public.voice_knowledge_bases (tenant_id, name) values ($1, $2) returning id`,
    [tenant, name],
  );
  const [{ id: doc }] = await rows<{ id: string }>(
    `insert into public.kb_documents (tenant_id, knowledge_base_id, title, content) values ($1, $2, $3, 'placeholder') returning id`,
    [tenant, kb, name],
  );
  // The document's own chunking wrote ordinal 0; the rest as a bulk load writes them.
  await rows(`delete from public.kb_chunks where tenant_id = $1 and document_id = $2`, [tenant, doc]);
  const chunks: Chunk[] = [];
  for (const [ordinal, embedding] of embeddings.entries()) {
    const [{ id }] = await rows<{ id: string }>(
      `insert into public.kb_chunks (tenant_id, id, knowledge_base_id, document_id, ordinal, content, embedding)
       values ($1, coalesce($2::uuid, gen_random_uuid()), $3, $4, $5, $6, $7::real[]::extensions.vector) returning id`,
      [
        tenant,
        ids?.[ordinal] ?? null,
        kb,
        doc,
        ordinal,
        `${name} chunk ${ordinal} about parking`,
        embedding ? pgArray(embedding) : null,
      ],
    ).catch(async (err) => {
      throw new Error(`chunk ${ordinal}: ${(err as Error).message}`);
    });
    chunks.push({ id, knowledge_base_id: kb, embedding });
  }
  return { kb, doc, chunks };
}

beforeAll(async () => {
  pg = await hostedDatabase();
  local = await freshDatabase('hosted_vector');
}, 180_000);

afterAll(async () => {
  await pg?.close();
  await local?.close();
});

describe('the migrations where the vector extension exists', () => {
  /** The catalogue snapshot's facts (scripts/catalog-snapshot.mjs) of the project's two
   *  schemas: tables (RLS, privileges, options), columns (type, default, nullability,
   *  privileges), indexes, constraints, functions (settings, privileges, bodies),
   *  policies and triggers. Postgres 18 lists NOT NULL as constraints too (type=n):
   *  those are the columns' not_null, compared already. */
  const SECTIONS = ['relation', 'column', 'index', 'constraint', 'function', 'policy', 'trigger'] as const;
  async function catalog(run: (query: string) => Promise<{ line: string }[]>): Promise<Set<string>> {
    const lines = new Set<string>();
    for (const section of SECTIONS) {
      for (const { line } of await run(QUERIES[section])) {
        const fact = line.replace(/\s*\n\s*/g, ' ');
        if (/^(public|private)\./.test(fact) && !(section === 'constraint' && / type=n /.test(fact))) lines.add(`${section}: ${fact}`);
      }
    }
    return lines;
  }

  it('gives the local schema plus the embedding column, its HNSW index and the triggers counting embeddings, nothing else; pgvector 0.8', async () => {
    const hosted = await catalog((q) => rows<{ line: string }>(q));
    const here = await catalog((q) => local.sql.unsafe<{ line: string }[]>(q));
    expect(here.size).toBeGreaterThan(1000);
    const onlyHosted = [...hosted].filter((l) => !here.has(l)).sort();
    const onlyLocal = [...here].filter((l) => !hosted.has(l)).sort();
    expect(onlyLocal).toEqual([]);
    expect(onlyHosted).toEqual([
      'column: public.kb_chunks #10 embedding type=extensions.vector(1536) not_null=f default=- generated=- identity=- collation=- acl=- comment=-',
      'index: public.kb_chunks CREATE INDEX kb_chunks_embedding_idx ON public.kb_chunks USING hnsw (embedding extensions.vector_cosine_ops)',
      // The documents' embedding counts, kept where there are embeddings (20261204091000).
      'trigger: public.kb_chunks CREATE TRIGGER embeddings_counted_on_delete AFTER DELETE ON kb_chunks REFERENCING OLD TABLE AS changed_old FOR EACH STATEMENT EXECUTE FUNCTION private.kb_chunks_embeddings_counted() enabled=A comment=-',
      'trigger: public.kb_chunks CREATE TRIGGER embeddings_counted_on_insert AFTER INSERT ON kb_chunks REFERENCING NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION private.kb_chunks_embeddings_counted() enabled=A comment=-',
      'trigger: public.kb_chunks CREATE TRIGGER embeddings_counted_on_update AFTER UPDATE ON kb_chunks REFERENCING OLD TABLE AS changed_old NEW TABLE AS changed_new FOR EACH STATEMENT EXECUTE FUNCTION private.kb_chunks_embeddings_counted() enabled=A comment=-',
    ]);
    const [ext] = await rows<{ schema: string; version: string }>(
      `select extnamespace::regnamespace::text as schema, extversion as version from pg_extension where extname = 'vector'`,
    );
    expect(ext.schema).toBe('extensions');
    // 0.8 and later: the iterative scan the search turns on.
    expect(ext.version.split('.').map(Number)).toSatisfy(([major, minor]: number[]) => major > 0 || minor >= 8);
  });
});

describe('knowledge search by embedding', () => {
  beforeAll(async () => {
    // globex's plan (starter) has no knowledge base.
    await rows(`update public.tenants set plan = 'pro' where id = $1`, [globex]);
    // acme: 12 chunks in one knowledge base, each at its own distance from the query (one
    // without an embedding), 3 in another. globex: 300 chunks, the first 15 under acme's
    // chunk ids; the nearest 85 nearer than any of acme's (a scan that stops at
    // hnsw.ef_search, 40, finds none of acme's), the others among and beyond acme's (a
    // scan in strict order skipped acme's nearer chunks found after globex's farther ones:
    // with this data, as seeded, its best 5 were not acme's best 5).
    const ours = Array.from({ length: 15 }, (_, i) => near(2 + i * 0.15));
    const main = await knowledge(acme, 'Main', ours.slice(0, 12).map((v, i) => i === 5 ? null : v));
    const other = await knowledge(acme, 'Other', ours.slice(12));
    acmeKb = main.kb;
    acmeOtherKb = other.kb;
    acmeDoc = main.doc;
    acmeChunks.push(...main.chunks, ...other.chunks);
    await knowledge(
      globex,
      'Near',
      Array.from({ length: 300 }, (_, i) => near(0.3 + i * 0.02)),
      acmeChunks.map((c) => c.id),
    );
    await rows('analyze public.kb_chunks');
  });

  /** acme's best `limit` chunks by the oracle: every embedded chunk in scope, by distance. */
  function oracle(limit: number, kb?: string) {
    return acmeChunks
      .filter((c) => c.embedding && (!kb || c.knowledge_base_id === kb))
      .map((c) => ({ id: c.id, distance: cosineDistance(c.embedding!, query) }))
      .sort((a, b) => a.distance - b.distance)
      .slice(0, limit);
  }

  const search = (tenant: string, limit: number, kb: string | null = null, embedding: number[] = query) =>
    rows<{ chunk_id: string; knowledge_base_id: string; document_id: string; score: number; content: string }>(
      `select * from private.kb_search_in_tenant($1, 'parking', $2, $3, $4::real[])`,
      [tenant, kb, limit, pgArray(embedding)],
    );

  function expectOracle(found: { chunk_id: string; score: number }[], limit: number, kb?: string) {
    const expected = oracle(limit, kb);
    expect(found.map((r) => r.chunk_id)).toEqual(expected.map((e) => e.id));
    for (const [i, r] of found.entries()) expect(r.score).toBeCloseTo(1 - expected[i].distance, 5);
  }

  it("answers the tenant's nearest chunks in order, never another tenant's nearer ones under the same ids", async () => {
    const found = await search(acme, 5);
    expectOracle(found, 5);
    for (const r of found) expect(r.content).toMatch(/^(Main|Other) chunk/);
    // The chunk without an embedding is never an answer, even when every other one is.
    const all = await search(acme, 50);
    expectOracle(all, 50);
    expect(all).toHaveLength(14);
    expect(all.map((r) => r.chunk_id)).not.toContain(acmeChunks[5].id);
  });

  it('narrows to one knowledge base, and clamps the limit to 1…50', async () => {
    expectOracle(await search(acme, 10, acmeOtherKb), 10, acmeOtherKb);
    expect((await search(acme, 10, acmeOtherKb)).every((r) => r.knowledge_base_id === acmeOtherKb)).toBe(true);
    expectOracle(await search(acme, 0), 1);
    expect(await search(acme, 1000)).toHaveLength(14);
  });

  it("finds the tenant's chunks when the planner scans the HNSW index, which holds every tenant's", async () => {
    // Without a sort the planner must take the index's order: the plan a large table gets.
    // In a transaction whose own setting is strict order, which the search must leave so.
    await pg.exec('begin');
    try {
      await pg.exec(`set local enable_sort = off; set local hnsw.iterative_scan = strict_order`);
      expectOracle(await search(acme, 5), 5);
      expectOracle(await search(acme, 5, acmeKb), 5, acmeKb);
      expectOracle(await search(acme, 14), 14);
      // The searches scanned the HNSW index (this transaction's count of its scans).
      const [{ scans }] = await rows<{ scans: number }>(
        `select pg_stat_get_xact_numscans('public.kb_chunks_embedding_idx'::regclass)::int as scans`,
      );
      expect(scans).toBeGreaterThanOrEqual(3);
      const [{ setting }] = await rows<{ setting: string }>(`select current_setting('hnsw.iterative_scan') as setting`);
      expect(setting).toBe('strict_order');
    } finally {
      await pg.exec('rollback');
    }
  });

  it('refuses a wrong embedding with 22023, saying why', async () => {
    const refused = async (embedding: string, message: RegExp) => {
      const err = await rows(`select * from private.kb_search_in_tenant($1, 'parking', null, 5, $2::real[])`, [acme, embedding])
        .then(() => null, (e: { code?: string; message: string }) => e);
      expect(err?.code).toBe('22023');
      expect(err?.message).toMatch(message);
    };
    await refused('{1,0,0}', /^embedding must have 1536 dimensions, not 3$/);
    await refused(pgArray(new Array(DIMENSIONS + 1).fill(0.5)), /not 1537/);
    await refused(pgArray(['NaN', ...query.slice(1)]), /finite/);
    await refused(pgArray(['Infinity', ...query.slice(1)]), /finite/);
    await refused(pgArray(['NULL', ...query.slice(1)]), /finite/);
    await refused(pgArray(['-Infinity', ...query.slice(1)]), /finite/);
    await refused('{}', /^embedding must be a list of numbers/);
    await refused('{{1,2},{3,4}}', /^embedding must be a list of numbers/);
    await refused(pgArray(new Array(DIMENSIONS).fill(0)), /^embedding must not be all zeros$/);
    await refused(pgArray(query.map((x) => x * 1e20)), /too large/);
    // Squares that all round to zero in single precision: pgvector's distances were NaN.
    await refused(pgArray(new Array(DIMENSIONS).fill(1e-25)), /^embedding is so near zero that single precision loses its direction/);
  });

  it('searches full text without an embedding, as locally', async () => {
    const found = await rows<{ content: string }>(`select * from private.kb_search_in_tenant($1, 'parking', $2, 50)`, [acme, acmeKb]);
    expect(found).toHaveLength(12);
    for (const r of found) expect(r.content).toMatch(/^Main chunk \d+ about parking$/);
  });

  it("searches as a person only in a tenant they belong to (private.kb_search)", async () => {
    const asPerson = async (user: (typeof users)[keyof typeof users], tenant: string) => {
      await pg.exec('begin');
      try {
        await rows(`select set_config('role', 'authenticated', true), set_config('request.jwt.claims', $1, true)`, [
          JSON.stringify(supabaseClaims(user)),
        ]);
        return await rows<{ chunk_id: string; score: number; content: string }>(`select * from private.kb_search($1, 'parking', null, 5, $2::real[])`, [
          tenant,
          pgArray(query),
        ]);
      } finally {
        await pg.exec('rollback');
      }
    };
    expectOracle(await asPerson(users.acmeUser, acme), 5);
    expect(await asPerson(users.globexAdmin, acme)).toEqual([]);
    // globex's member finds globex's chunks, none of acme's.
    const theirs = await asPerson(users.globexUser, globex);
    expect(theirs).toHaveLength(5);
    for (const r of theirs) expect(r.content).toMatch(/^Near chunk/);
  });

  it("drops a document's embeddings with its old chunks when its content changes", async () => {
    await rows(`update public.kb_documents set content = 'new text about parking' where tenant_id = $1 and id = $2`, [acme, acmeDoc]);
    const left = await rows<{ n: number; embedded: number }>(
      `select count(*)::int as n, count(embedding)::int as embedded from public.kb_chunks where tenant_id = $1 and document_id = $2`,
      [acme, acmeDoc],
    );
    expect(left).toEqual([{ n: 1, embedded: 0 }]);
    // Only the other knowledge base's chunks have embeddings now.
    expectOracle(await search(acme, 5), 3, acmeOtherKb);
  });
});
