// Knowledge search answers the exact best chunks (supabase/migrations/
// 20261202170100_kb_search_late_rows.sql ranks (id, score) alone and reads the rows after
// the limit): for broad and narrow words, stems, phrases, OR and negation, every limit,
// one knowledge base or all, with ties (identical chunks) ordered by id — compared with
// ranking every match in one plain query, on one connection (261 calls). A query of one
// word ranks only what its postings give (20261203150000_kb_postings.sql), a query of
// words OR'd those and the chunks with two or more of them
// (20261203270000_kb_search_any_of_words.sql): the same comparison holds both to the same
// answers, and the postings are checked against the chunks after every kind of write.
import type postgres from 'postgres';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
import { rowsRead, scansOf, withNestedPlans } from '../helpers/nested-plans.ts';
import { tenants } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
const globex = tenants.globex.id;
const kbs: string[] = [];

beforeAll(async () => {
  db = await freshDatabase('voice_kb_ranking');
  await db.sql`update public.tenants set plan = 'pro' where id in (${acme}, ${globex})`;
  for (const [tenant, name] of [[acme, 'Front desk'], [acme, 'Kitchen'], [globex, 'Front desk']]) {
    const [kb] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${tenant}, ${name}) returning id`;
    const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${tenant}, ${kb.id}, ${name}, 'Opening hours') returning id`;
    kbs.push(kb.id);
    // 400 chunks per knowledge base: words in a half, a tenth and a hundredth of them,
    // repeated up to three times (different ranks), English forms that stem alike, and
    // every fifth chunk the same text as another (equal scores: ties, ordered by id).
    await db.sql`
      insert into public.kb_chunks (tenant_id, knowledge_base_id, document_id, ordinal, content)
      select ${tenant}, ${kb.id}, ${doc.id}, g,
        case when g % 5 = 0 then 'Refunds are paid within ten days; parking is free.'
        else concat_ws(' ',
          case when g % 2 = 0 then 'parking' end,
          repeat('refund ', 1 + g % 3),
          case when g % 10 = 3 then 'refunded refunding' end,
          case when g % 100 = 7 then 'XJ-42 warranty claims' end,
          'room ' || g, case when g % 7 = 0 then 'late checkout is possible' end)
        end
      from generate_series(1, 400) g`;
  }
  await db.sql`analyze public.kb_chunks`;
});
afterAll(async () => {
  await db.close();
});

const QUERIES = [
  'refund', 'refunds', 'refunded', 'parking', 'XJ-42', 'warranty', 'room 17', '"late checkout"', 'parking or warranty',
  'refund -parking', 'paid days', 'nothing-like-this', '', 'the', 'late', 'checkout', 'possible', '17', 'room', 'days;',
  // Words OR'd rank from each word's first k and the chunks with two or more of them
  // (20261203270000_kb_search_any_of_words.sql): the chunks with parking and refund three
  // times are among neither word's first k of 'parking or refunded' (the pairs find
  // them), the one chunk with both of 'late or warranty' is the best; stems, stop words,
  // a word twice, three and four words, and OR'd with what is not a word (ranked through
  // GIN). With fixed ids, in each configuration: the test below.
  'late or warranty', 'refund or room', 'parking or refunded', 'warranty or checkout or room', 'the or warranty',
  'refund or refund', 'refunds or parking or late or possible', 'XJ-42 or late', 'room or parking -late',
];

/** Postings that the chunks do not give, and chunks' postings that are missing: both empty. */
const postingsDrift = async () =>
  await db.sql`
    with want as (
      select p.* from public.kb_chunks k
      cross join lateral private.kb_chunk_postings(k.tenant_id, k.knowledge_base_id, k.id, k.search_english, k.search_simple) p
    )
    select 'extra' as kind, count(*)::int as n from (select * from private.kb_postings except all select * from want) x
    union all
    select 'missing', count(*)::int from (select * from want except all select * from private.kb_postings) y`;

/** The search's answer computed the plain way: every match ranked. */
const everyMatchRanked = (sql: postgres.Sql, tenant: string, q: string, kb: string | null, limit: number) =>
  sql`
    with q as (select websearch_to_tsquery('simple', ${q}) as qs, websearch_to_tsquery('english', ${q}) as qe)
    select k.id as chunk_id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content,
           greatest(ts_rank(k.search_english, q.qe), ts_rank(k.search_simple, q.qs))::real as score
    from public.kb_chunks k join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id, q
    where k.tenant_id = ${tenant} and (${kb}::uuid is null or k.knowledge_base_id = ${kb})
      and (k.search_english @@ q.qe or k.search_simple @@ q.qs)
    order by score desc, k.id limit ${limit}`;

it('answers the chunks and order that ranking every match gives, for every query, limit and knowledge base', async () => {
  let compared = 0;
  const sql = await db.sql.reserve();
  try {
    for (const limit of [1, 5, 50]) {
      for (const kb of [null, kbs[0], kbs[2]]) {
        for (const q of QUERIES) {
          const got = await sql`select chunk_id, document_id, knowledge_base_id, title, ordinal, content, score
            from private.kb_search_in_tenant(${acme}, ${q}, ${kb}, ${limit})`;
          const want = await everyMatchRanked(sql, acme, q, kb, limit);
          expect([...got], `${q} / ${kb} / ${limit}`).toEqual([...want]);
          compared += got.length;
        }
      }
    }
  } finally {
    sql.release();
  }
  // The comparisons had rows to compare, ties among them, and globex's knowledge base gave
  // acme nothing.
  expect(compared).toBeGreaterThan(500);
  const [{ ties }] = await db.sql`select count(*)::int as ties from (
      select score from private.kb_search_in_tenant(${acme}, 'refunds', null, 50) group by score having count(*) > 1) t`;
  expect(ties).toBeGreaterThan(0);
});

it('a one-word query reads only its candidates: a word in most chunks ranks a handful of rows, not all of them', async () => {
  // 'room' is in 320 of each knowledge base's 400 chunks. The statements the search runs,
  // counted as they ran: the chunks and postings they read.
  const { result: hits, plans } = await withNestedPlans(
    db.adminUrl,
    (probe) => probe`select chunk_id from private.kb_search_in_tenant(${acme}, 'room', null, 5)`,
  );
  expect(hits).toHaveLength(5);
  const statements = plans.filter((p) => !/kb_search_in_tenant/.test(p['Query Text']));
  const read = (table: string) => statements.reduce((n, p) => n + rowsRead(p.Plan, table), 0);
  // 2 knowledge bases × 4 lists (english, simple, and the shared under each lexeme) × 5
  // candidates from the postings (not every posting of the word), then the 5 best read
  // again for their rows (ranking every match read 640 chunks).
  expect([read('kb_postings') > 0, read('kb_chunks') > 0]).toEqual([true, true]);
  expect(read('kb_postings')).toBeLessThanOrEqual(2 * 4 * 5);
  // 'room' is the same lexeme in both configurations: its shared list is one list, read
  // once per knowledge base (it was read under each lexeme, 8 lists).
  expect(statements.reduce((n, p) => n + scansOf(p.Plan, 'kb_postings'), 0)).toBe(2 * 3);
  expect(read('kb_chunks')).toBeLessThanOrEqual(2 * 4 * 5 + 5);
});

it('postings follow every write: a new document, a changed one, a deleted one, a deleted knowledge base', async () => {
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  const [{ count }] = await db.sql`select count(*)::int from private.kb_postings`;
  expect(count).toBeGreaterThan(1000);
  const [kb] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Churn') returning id`;
  const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
    values (${acme}, ${kb.id}, 'Churn', ${'Refunds refunds for the parking garage.\n\n'.repeat(80)}) returning id`;
  expect((await db.sql`select count(*)::int as n from public.kb_chunks where document_id = ${doc.id}`)[0].n).toBeGreaterThan(1);
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  const hit = async () => (await db.sql`select count(*)::int as n from private.kb_search_in_tenant(${acme}, 'garage', ${kb.id}, 50)`)[0].n;
  expect(await hit()).toBeGreaterThan(0);
  await db.sql`update public.kb_documents set content = 'Only the valet now.' where id = ${doc.id}`;
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  expect(await hit()).toBe(0);
  expect((await db.sql`select count(*)::int as n from private.kb_search_in_tenant(${acme}, 'valet', ${kb.id}, 50)`)[0].n).toBe(1);
  await db.sql`delete from public.kb_documents where id = ${doc.id}`;
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
    values (${acme}, ${kb.id}, 'Again', 'The valet parks cars.')`;
  await db.sql`delete from public.voice_knowledge_bases where id = ${kb.id}`;
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  expect((await db.sql`select count(*)::int as n from private.kb_postings where knowledge_base_id = ${kb.id}`)[0].n).toBe(0);
});

it('reads the words of a query of words OR\'d back exactly, quotes and backslashes included, or not at all', async () => {
  const rows = await db.sql`
    select w, private.tsquery_any_lexemes(q) as got
    from unnest(array['plain', 'o''brien', 'back\\slash', 'it''''s', 'two & words', 'a | b', 'a | b | a', 'a | b & c',
                      '(a & b) | c', 'a | !b', 'a <-> b', '!neg', 'pre:*', 'w:A', 'a | b:*', ${Array.from({ length: 16 }, (_, i) => `w${i}`).join(' | ')},
                      ${Array.from({ length: 17 }, (_, i) => `w${i}`).join(' | ')}]) w,
         lateral (select case when w ~ '[&|!:<]' then to_tsquery('simple', w) else array_to_tsvector(array[w])::text::tsquery end as q) x`;
  const got = Object.fromEntries(rows.map((r) => [r.w, r.got]));
  expect(got).toEqual({
    plain: ['plain'],
    "o'brien": ["o'brien"],
    'back\\slash': ['back\\slash'],
    "it''s": ["it''s"],
    'two & words': null,
    'a | b': ['a', 'b'],
    'a | b | a': ['a', 'b'],
    'a | b & c': null,
    '(a & b) | c': null,
    'a | !b': null,
    'a <-> b': null,
    '!neg': null,
    'pre:*': null,
    'w:A': null,
    'a | b:*': null,
    [Array.from({ length: 16 }, (_, i) => `w${i}`).join(' | ')]: Array.from({ length: 16 }, (_, i) => `w${i}`),
    [Array.from({ length: 17 }, (_, i) => `w${i}`).join(' | ')]: null,
  });
  // Any two of them, for the chunks that have two or more.
  const [pairs] = await db.sql`
    select private.tsquery_any_two(array['a', 'b', 'c'])::text as three, private.tsquery_any_two(array['a']) as one,
           private.tsquery_any_two(array['it''s', 'x']) @@ array_to_tsvector(array['it''s', 'x']) as quoted,
           private.tsquery_any_two(array['back\\slash', 'x']) @@ array_to_tsvector(array['back\\slash', 'x']) as escaped,
           private.tsquery_any_two(array['back\\slash', 'x']) @@ array_to_tsvector(array['backslash', 'x']) as unescaped`;
  expect(pairs).toEqual({ three: "'a' & 'b' | 'a' & 'c' | 'b' & 'c'", one: null, quoted: true, escaped: true, unescaped: false });
});

it("words OR'd read their candidates only: each word's first k and the chunks with both, not every chunk with one", async () => {
  // 400 chunks, 'alpha' in half of them, 'beta' in the other half, and both in ten: those
  // ten rank first (two words beat one), and none need be among either word's first five.
  const [kb] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${globex}, 'Alphabet') returning id`;
  const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
    values (${globex}, ${kb.id}, 'Alphabet', 'x') returning id`;
  await db.sql`
    insert into public.kb_chunks (tenant_id, knowledge_base_id, document_id, ordinal, content)
    select ${globex}, ${kb.id}, ${doc.id}, g,
      case when g % 2 = 1 then 'alpha alpha' else 'beta' end || case when g % 40 = 1 then ' beta' else '' end
    from generate_series(1, 400) g`;
  try {
    const { result: hits, plans } = await withNestedPlans(
      db.adminUrl,
      (probe) => probe`select content from private.kb_search_in_tenant(${globex}, 'alpha or beta', ${kb.id}, 5)`,
    );
    expect(hits.map((h) => h.content)).toEqual(Array(5).fill('alpha alpha beta'));
    const statements = plans.filter((p) => !/kb_search_in_tenant/.test(p['Query Text']));
    const read = (table: string) => statements.reduce((n, p) => n + rowsRead(p.Plan, table), 0);
    // Two words, each the same lexeme with the same count in both configurations: 3 lists
    // each (english, simple, shared; all in the shared one here) read up to 5, the 10
    // heads ranked by id; the ten chunks with both, ranked as GIN finds them (not read
    // again by id); the best five read again for their rows (ranking every match read all
    // 400).
    expect([read('kb_postings') > 0, read('kb_chunks') > 0]).toEqual([true, true]);
    expect(read('kb_postings')).toBeLessThanOrEqual(2 * 3 * 5);
    expect(read('kb_chunks')).toBeLessThanOrEqual(2 * 5 + 10 + 5);
  } finally {
    await db.sql`delete from public.voice_knowledge_bases where tenant_id = ${globex} and id = ${kb.id}`;
  }
});

it("words OR'd: a chunk with two of the words is found in either configuration, though in no word's first k", async () => {
  // Ten chunks with one of the words, more often than the last one has it or as often,
  // ids before the last one's, which has two of the words: it ranks first, and only the
  // search for chunks with two words finds it.
  // 'is' is a word the english configuration drops (simple: 'is' | 'late'; english:
  // 'late'): only the simple one's pairs have it. 'parked refunded' has neither 'parking'
  // nor 'refunds' as a simple word: only the english one's pairs (park, refund) have it.
  const cases = [
    { q: 'is or late', many: ['is is is is', 'late'], both: 'is is is late' },
    { q: 'parking or refunds', many: ['parking parking parking', 'refunds refunds refunds'], both: 'parked refunded' },
  ];
  for (const { q, many, both } of cases) {
    const [kb] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${globex}, ${q}) returning id`;
    const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${globex}, ${kb.id}, ${q}, 'x') returning id`;
    await db.sql`
      insert into public.kb_chunks (tenant_id, id, knowledge_base_id, document_id, ordinal, content)
      select ${globex}::uuid, ('00000000-0000-4000-8000-' || lpad(g::text, 12, '0'))::uuid, ${kb.id}::uuid, ${doc.id}::uuid, g,
        (${many}::text[])[1 + g % 2]
      from generate_series(1, 10) g
      union all
      select ${globex}::uuid, 'ffffffff-ffff-4fff-bfff-ffffffffffff'::uuid, ${kb.id}::uuid, ${doc.id}::uuid, 11, ${both}::text`;
    try {
      const got = await db.sql`select chunk_id, document_id, knowledge_base_id, title, ordinal, content, score
        from private.kb_search_in_tenant(${globex}, ${q}, ${kb.id}, 5)`;
      expect(got[0]?.content, q).toBe(both);
      expect([...got], q).toEqual([...await everyMatchRanked(db.sql, globex, q, kb.id, 5)]);
    } finally {
      await db.sql`delete from public.voice_knowledge_bases where tenant_id = ${globex} and id = ${kb.id}`;
    }
  }
});

it("another tenant's knowledge base and chunks under the same ids are never a candidate", async () => {
  // Ids are unique within a tenant only: globex holds a knowledge base with acme's id, and
  // chunks with acme's chunk ids, full of a word acme's chunks never have.
  const before = await db.sql`select chunk_id, score from private.kb_search_in_tenant(${acme}, 'refund', ${kbs[0]}, 5)`;
  const beforeOr = await db.sql`select chunk_id, score from private.kb_search_in_tenant(${acme}, 'zebra or refund', ${kbs[0]}, 5)`;
  await db.sql`insert into public.voice_knowledge_bases (tenant_id, id, name) values (${globex}, ${kbs[0]}, 'Twin')`;
  const [{ doc }] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
    values (${globex}, ${kbs[0]}, 'Twin', 'x') returning id as doc`;
  await db.sql`
    insert into public.kb_chunks (tenant_id, id, knowledge_base_id, document_id, ordinal, content)
    select ${globex}, k.id, ${kbs[0]}, ${doc}, 1000 + k.ordinal, repeat('zebra refund ', 5)
    from public.kb_chunks k where k.tenant_id = ${acme} and k.knowledge_base_id = ${kbs[0]}`;
  expect(await db.sql`select chunk_id from private.kb_search_in_tenant(${acme}, 'zebra', null, 5)`).toHaveLength(0);
  expect([...await db.sql`select chunk_id, score from private.kb_search_in_tenant(${acme}, 'refund', ${kbs[0]}, 5)`]).toEqual([...before]);
  // Words OR'd: the twins have both words (the chunks with two are looked for too).
  expect([...await db.sql`select chunk_id, score from private.kb_search_in_tenant(${acme}, 'zebra or refund', ${kbs[0]}, 5)`])
    .toEqual([...beforeOr]);
  await db.sql`delete from public.voice_knowledge_bases where tenant_id = ${globex} and id = ${kbs[0]}`;
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  expect([...await db.sql`select chunk_id, score from private.kb_search_in_tenant(${acme}, 'refund', ${kbs[0]}, 5)`]).toEqual([...before]);
});

it('postings survive the writes that skip row triggers: never a wrong answer, emptied with a TRUNCATE', async () => {
  // A restore in replica mode (as the attack suites plant rows) still writes postings.
  const [kb] = await db.sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${globex}, 'Restored') returning id`;
  const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
    values (${globex}, ${kb.id}, 'Restored', 'x') returning id`;
  await db.sql.begin(async (tx) => {
    await tx`set local session_replication_role = replica`;
    await tx`insert into public.kb_chunks (tenant_id, knowledge_base_id, document_id, ordinal, content)
      values (${globex}, ${kb.id}, ${doc.id}, 1, 'restored gazebo'), (${globex}, ${kb.id}, ${doc.id}, 2, 'gazebo gazebo')`;
  });
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  const gazebo = async () =>
    (await db.sql`select content from private.kb_search_in_tenant(${globex}, 'gazebo', ${kb.id}, 5)`).map((r) => r.content);
  expect(await gazebo()).toEqual(['gazebo gazebo', 'restored gazebo']);
  // A posting left behind (its chunk's row trigger skipped), its id then taken by a chunk
  // without the word: not an answer, and writing that chunk is not refused.
  const [left] = await db.sql`select id from public.kb_chunks where tenant_id = ${globex} and content = 'gazebo gazebo'`;
  await db.sql.begin(async (tx) => {
    await tx`alter table public.kb_chunks disable trigger postings`;
    await tx`delete from public.kb_chunks where tenant_id = ${globex} and id = ${left.id}`;
    await tx`alter table public.kb_chunks enable always trigger postings`;
  });
  await db.sql`insert into public.kb_chunks (tenant_id, id, knowledge_base_id, document_id, ordinal, content)
    values (${globex}, ${left.id}, ${kb.id}, ${doc.id}, 3, 'a pergola')`;
  expect(await gazebo()).toEqual(['restored gazebo']);
  // The words come back under that id: the posting left behind is the same row, kept
  // (not a unique violation that would refuse the chunk).
  await db.sql`delete from public.kb_chunks where tenant_id = ${globex} and id = ${left.id}`;
  await db.sql`insert into public.kb_chunks (tenant_id, id, knowledge_base_id, document_id, ordinal, content)
    values (${globex}, ${left.id}, ${kb.id}, ${doc.id}, 3, 'gazebo gazebo')`;
  expect(await gazebo()).toEqual(['gazebo gazebo', 'restored gazebo']);
  await db.sql`delete from public.kb_chunks where tenant_id = ${globex} and id = ${left.id}`;
  await db.sql`insert into public.kb_chunks (tenant_id, id, knowledge_base_id, document_id, ordinal, content)
    values (${globex}, ${left.id}, ${kb.id}, ${doc.id}, 3, 'a pergola')`;
  await db.sql`delete from public.voice_knowledge_bases where tenant_id = ${globex} and id = ${kb.id}`;
  // The one left behind was taken back by the chunk written again, and went with it.
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
  // TRUNCATE (no row trigger fires): the postings go with the chunks.
  let emptied: number | undefined;
  await db.sql.begin(async (tx) => {
    await tx`truncate public.kb_chunks`;
    [{ n: emptied }] = await tx`select count(*)::int as n from private.kb_postings`;
    throw new Error('undo'); // the other tests' chunks stay
  }).catch((e) => {
    if (e.message !== 'undo') throw e;
  });
  expect(emptied).toBe(0);
  expect(await postingsDrift()).toEqual([{ kind: 'extra', n: 0 }, { kind: 'missing', n: 0 }]);
});

it("the chunks' vectors carry no weights: the postings' fast path's exactness rests on it", async () => {
  // ts_rank of one word is a function of its count of positions only while every position
  // weighs the same (and of words OR'd, a sum of those); a setweight (titles as A, say)
  // would make the postings' order wrong.
  const columns = await db.sql`
    select a.attname, pg_get_expr(d.adbin, d.adrelid) as expr from pg_attribute a
    join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where a.attrelid = 'public.kb_chunks'::regclass and a.attname like 'search_%' order by a.attname`;
  expect(columns.map((c) => c.attname)).toEqual(['search_english', 'search_simple']);
  for (const c of columns) expect(c.expr).toMatch(/^to_tsvector\('\w+'::regconfig, content\)$/);
  const [{ weighted }] = await db.sql`
    select count(*)::int as weighted from public.kb_chunks k,
      lateral (select e.weights from unnest(k.search_english) e union all select s.weights from unnest(k.search_simple) s) u
    where u.weights && array['A', 'B', 'C']`;
  expect(weighted).toBe(0);
});

it('a lexeme both configurations give with the same count is one posting; any other difference keeps two', async () => {
  const text = 'Parking parking refunds refund the 42';
  const rows = await db.sql`
    select lexeme, config, positions from private.kb_chunk_postings(${acme}, ${kbs[0]}, gen_random_uuid(),
      to_tsvector('english', ${text}), to_tsvector('simple', ${text}))
    order by lexeme, config`;
  expect(rows.map((r) => `${r.lexeme} ${r.config} ${r.positions}`)).toEqual([
    '42 b 1', // the same in both
    'park e 2', // stemmed: english only
    'parking s 2',
    'refund e 2', // one lexeme, two counts: refund and refunds stem alike in english only
    'refund s 1',
    'refunds s 1',
    'the s 1', // an english stop word
  ]);
  // And the shared ones are most of the postings here: words the stemmer leaves alone.
  const [{ shared, all }] = await db.sql`
    select count(*) filter (where config = 'b')::int as shared, count(*)::int as all from private.kb_postings
    where tenant_id = ${acme} and knowledge_base_id = ${kbs[0]}`;
  expect(shared / all).toBeGreaterThan(0.3);
});
