// Knowledge search answers the exact best chunks (supabase/migrations/
// 20261202170100_kb_search_late_rows.sql ranks (id, score) alone and reads the rows after
// the limit): for broad and narrow words, stems, phrases, OR and negation, every limit,
// one knowledge base or all, with ties (identical chunks) ordered by id — compared with
// ranking every match in one plain query, on one connection (126 calls).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';
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
  'refund -parking', 'paid days', 'nothing-like-this', '', 'the',
];

it('answers the chunks and order that ranking every match gives, for every query, limit and knowledge base', async () => {
  let compared = 0;
  const sql = await db.sql.reserve();
  try {
    for (const limit of [1, 5, 50]) {
      for (const kb of [null, kbs[0], kbs[2]]) {
        for (const q of QUERIES) {
          const got = await sql`select chunk_id, document_id, knowledge_base_id, title, ordinal, content, score
            from private.kb_search_in_tenant(${acme}, ${q}, ${kb}, ${limit})`;
          const want = await sql`
            with q as (select websearch_to_tsquery('simple', ${q}) as qs, websearch_to_tsquery('english', ${q}) as qe)
            select k.id as chunk_id, k.document_id, k.knowledge_base_id, d.title, k.ordinal, k.content,
                   greatest(ts_rank(k.search_english, q.qe), ts_rank(k.search_simple, q.qs))::real as score
            from public.kb_chunks k join public.kb_documents d on d.tenant_id = k.tenant_id and d.id = k.document_id, q
            where k.tenant_id = ${acme} and (${kb}::uuid is null or k.knowledge_base_id = ${kb})
              and (k.search_english @@ q.qe or k.search_simple @@ q.qs)
            order by score desc, k.id limit ${limit}`;
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
