// The knowledge base's hosted half (issue 14): where the `vector` extension exists — every
// hosted Supabase project — the migrations add kb_chunks.embedding (vector(1536)) with an
// HNSW index, and private.kb_search ranks by cosine distance when it is given an
// embedding. The local embedded Postgres has no `vector`, so the rest of the suite only
// ever sees that part skipped. Here it runs: on PGlite (PostgreSQL compiled to
// WebAssembly, from npm) with the real pgvector (@electric-sql/pglite-pgvector, 0.8),
// after the platform bootstrap, every migration (each file as one transaction, as
// `supabase db push` applies them) and the seed — the schema a hosted project gets.
//
// What it holds: the hosted schema is the local one plus the embedding column and its
// index, nothing else; the vector search answers a tenant's nearest chunks, in order,
// from its own chunks only (another tenant's nearer chunks under the same ids included),
// also when the planner scans the HNSW index, which holds every tenant's chunks; a
// wrong embedding is a clear 22023; people search under their standing in the tenant.
import { PGlite } from '@electric-sql/pglite';
import { vector } from '@electric-sql/pglite-pgvector';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bootstrapFile, root, seedFile } from '../../scripts/stack.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
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

// Embeddings as a model gives them: dense, from a seeded generator (the same every run).
let seed = 20261203;
function random(): number {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648 - 0.5;
}
const query = Array.from({ length: DIMENSIONS }, random);
/** A direction near the query: the larger `spread`, the farther. */
const near = (spread: number) => query.map((x) => x + spread * random());

function cosineDistance(a: number[], b: number[]): number {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  return 1 - dot / Math.sqrt(na * nb);
}

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
  pg = await PGlite.create({ extensions: { vector } });
  await pg.exec(readFileSync(bootstrapFile, 'utf8'));
  const dir = path.join(root, 'supabase', 'migrations');
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql')).sort()) {
    try {
      await pg.exec(`begin;\n${readFileSync(path.join(dir, file), 'utf8')}\ncommit;`);
    } catch (err) {
      throw new Error(`${file} on a database with vector: ${(err as Error).message}`);
    }
  }
  await pg.exec(readFileSync(seedFile, 'utf8'));
  local = await freshDatabase('hosted_vector');
}, 180_000);

afterAll(async () => {
  await pg?.close();
  await local?.close();
});

describe('the migrations where the vector extension exists', () => {
  /** Columns, indexes, constraints, functions (with their bodies), policies and triggers
   *  of the project's schemas, one line each, comparable across Postgres versions. */
  const CATALOG = `
    select 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' not_null=' || a.attnotnull as line
    from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v') and a.attnum > 0 and not a.attisdropped
    union all
    select 'index ' || pg_get_indexdef(i.indexrelid)
    from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
    where n.nspname in ('public', 'private')
    union all
    select 'constraint ' || n.nspname || '.' || coalesce(c.relname, '-') || ' ' || k.conname || ' ' || pg_get_constraintdef(k.oid, true)
    from pg_constraint k join pg_namespace n on n.oid = k.connamespace left join pg_class c on c.oid = k.conrelid
    where n.nspname in ('public', 'private') and k.contype <> 'n'
    union all
    select 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') ' || md5(p.prosrc)
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('public', 'private')
    union all
    select 'policy ' || schemaname || '.' || tablename || ' ' || policyname || ' ' || cmd || ' ' || coalesce(qual, '-') || ' ' || coalesce(with_check, '-')
    from pg_policies where schemaname in ('public', 'private')
    union all
    select 'trigger ' || n.nspname || '.' || c.relname || ' ' || t.tgname || ' ' || t.tgenabled::text
    from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
    where not t.tgisinternal and n.nspname in ('public', 'private')`;

  it('gives the local schema plus the embedding column and its HNSW index, nothing else', async () => {
    const hosted = new Set((await rows<{ line: string }>(CATALOG)).map((r) => r.line));
    const here = new Set((await local.sql.unsafe<{ line: string }[]>(CATALOG)).map((r) => r.line));
    expect(here.size).toBeGreaterThan(1000);
    const onlyHosted = [...hosted].filter((l) => !here.has(l)).sort();
    const onlyLocal = [...here].filter((l) => !hosted.has(l)).sort();
    expect(onlyLocal).toEqual([]);
    expect(onlyHosted).toEqual([
      'column public.kb_chunks.embedding extensions.vector(1536) not_null=false',
      'index CREATE INDEX kb_chunks_embedding_idx ON public.kb_chunks USING hnsw (embedding extensions.vector_cosine_ops)',
    ]);
    const [ext] = await rows<{ schema: string; version: string }>(
      `select extnamespace::regnamespace::text as schema, extversion as version from pg_extension where extname = 'vector'`,
    );
    expect(ext.schema).toBe('extensions');
  });
});

describe('knowledge search by embedding', () => {
  beforeAll(async () => {
    // globex's plan (starter) has no knowledge base.
    await rows(`update public.tenants set plan = 'pro' where id = $1`, [globex]);
    // acme: 12 chunks in one knowledge base, each at its own distance from the query (one
    // without an embedding), 3 in another. globex: 300 chunks, every one nearer the query
    // than any of acme's, the first 15 under acme's chunk ids.
    const main = await knowledge(acme, 'Main', Array.from({ length: 12 }, (_, i) => i === 5 ? null : near(2 + i * 0.2)));
    const other = await knowledge(acme, 'Other', Array.from({ length: 3 }, (_, i) => near(2.1 + i * 0.4)));
    acmeKb = main.kb;
    acmeOtherKb = other.kb;
    acmeDoc = main.doc;
    acmeChunks.push(...main.chunks, ...other.chunks);
    await knowledge(
      globex,
      'Near',
      Array.from({ length: 300 }, (_, i) => near(0.3 + i * 0.002)),
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
    await pg.exec('set enable_sort = off');
    try {
      const [plan] = await rows<{ 'QUERY PLAN': string }>(
        `explain select k.id from public.kb_chunks k where k.tenant_id = $1 and k.embedding is not null
         order by k.embedding operator(extensions.<=>) $2::real[]::extensions.vector limit 5`,
        [acme, pgArray(query)],
      ).then((r) => [r.map((x) => x['QUERY PLAN']).join('\n')]);
      expect(plan).toContain('kb_chunks_embedding_idx');
      // globex's 300 chunks are all nearer: a scan that stops at hnsw.ef_search (40) and
      // filters after it finds none of acme's.
      expectOracle(await search(acme, 5), 5);
      expectOracle(await search(acme, 5, acmeKb), 5, acmeKb);
      // The iterative scan is the search's own: in the caller's transaction, the setting
      // is as it was after it.
      await pg.exec('begin');
      try {
        expectOracle(await search(acme, 5), 5);
        const [{ setting }] = await rows<{ setting: string }>(`select current_setting('hnsw.iterative_scan') as setting`);
        expect(setting).toBe('off');
      } finally {
        await pg.exec('rollback');
      }
    } finally {
      await pg.exec('reset enable_sort');
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
