// How a document becomes chunks, and what a search with nothing to look for finds
// (20261202200100_voice_knowledge_review.sql): chunks end between words, after a line
// break when one falls in the chunk's second half, so a list of one item per line loses
// no item at a boundary; a text of 650,000 characters without a blank line is chunked
// in one pass (each chunk within the limit, every word kept, in order); a query of
// negations only finds nothing; new content needs the plan's knowledge_base feature.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshDatabase, probeAs, type TestDatabase } from '../helpers/db.ts';
import { supabaseClaims, tenants, users } from '../helpers/seed.ts';

let db: TestDatabase;
const acme = tenants.acme.id;
let kb: string;

beforeAll(async () => {
  db = await freshDatabase('voice_kb_chunking');
  await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
  [{ id: kb }] = await db
    .sql`insert into public.voice_knowledge_bases (tenant_id, name) values (${acme}, 'Catalogue') returning id`;
});
afterAll(async () => {
  await db.close();
});

const chunksOf = async (text: string) =>
  (await db.sql<{ content: string }[]>`select content from private.kb_chunk_text(${text}) order by ordinal`).map((c) =>
    c.content
  );

describe('chunking', () => {
  it('a list of one item per line: every chunk ends after a line, so every item is found', async () => {
    const items = Array.from({ length: 300 }, (_, i) => `SKU-${1000 + i}`);
    const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${acme}, ${kb}, 'Price list', ${items.join('\n')}) returning id`;
    const chunks = await db.sql<{ content: string }[]>`
      select content from public.kb_chunks where document_id = ${doc.id} order by ordinal`;
    expect(chunks.length).toBeGreaterThan(1);
    for (const c of chunks) expect(c.content).toMatch(/^SKU-\d{4}(\nSKU-\d{4})*$/);
    for (const item of [items[0], items[133], items[266], items[299]]) {
      const hits = await db.sql`select content from private.kb_search_in_tenant(${acme}, ${item}, ${kb}, 5)`;
      expect(hits.map((h) => h.content).some((c: string) => c.split('\n').includes(item)), item).toBe(true);
    }
  });

  it('650,000 characters without a blank line: chunks within the limit, every word kept in order', async () => {
    const words = Array.from({ length: 100_000 }, (_, i) => `w${i}`);
    // Lines of seven words, no blank line anywhere.
    const lines: string[] = [];
    for (let i = 0; i < words.length; i += 7) lines.push(words.slice(i, i + 7).join(' '));
    const text = lines.join('\n');
    const chunks = await chunksOf(text);
    expect(Math.max(...chunks.map((c) => [...c].length))).toBeLessThanOrEqual(1200);
    expect(chunks.join(' ').split(/\s+/)).toEqual(words);
    // A word longer than a chunk is cut at the limit, and nothing is lost.
    const long = 'x'.repeat(3000);
    expect(await chunksOf(`before ${long} after`)).toEqual([
      'before',
      'x'.repeat(1200),
      'x'.repeat(1200),
      `${'x'.repeat(600)} after`,
    ]);
    // Short paragraphs are still packed together.
    expect(await chunksOf('One.\n\nTwo.\n\n\nThree.')).toEqual(['One.\n\nTwo.\n\nThree.']);
  });

  it('a run without spaces longer than a chunk is cut after a sentence of its script, never before a mark that belongs to the character before it', async () => {
    // Thai puts no space between words: a vowel mark (U+0E35) right at the limit.
    const thai = 'ก' + 'กี'.repeat(700);
    const thaiChunks = await chunksOf(thai);
    expect(thaiChunks.join('')).toBe(thai);
    for (const c of thaiChunks) {
      expect([...c].length).toBeLessThanOrEqual(1200);
      expect(c.startsWith('ี'), 'a chunk begins with an orphan mark').toBe(false);
    }
    // Chinese: after the last full stop in the chunk's second half, not mid-sentence.
    const sentence = '这是一个关于停车场开放时间的句子。';
    const chinese = sentence.repeat(120);
    const zh = await chunksOf(chinese);
    expect(zh.join('')).toBe(chinese);
    expect(zh.length).toBeGreaterThan(1);
    for (const c of zh.slice(0, -1)) {
      expect(c.endsWith('。')).toBe(true);
      expect([...c].length).toBeGreaterThan(600);
      expect([...c].length).toBeLessThanOrEqual(1200);
    }
    // An emoji's skin tone stays with the emoji.
    const emoji = `${'a'.repeat(1199)}👍🏽${'b'.repeat(100)}`;
    expect(await chunksOf(emoji)).toEqual(['a'.repeat(1199), `👍🏽${'b'.repeat(100)}`]);
    // A sentence end at exactly half the chunk is no cut of its own, and the limit it
    // leaves is checked for a mark as any is.
    const half = `${'ก'.repeat(599)}。ก${'กี'.repeat(400)}`;
    const halves = await chunksOf(half);
    expect(halves.join('')).toBe(half);
    for (const c of halves) expect(c.startsWith('ี'), 'a chunk begins with an orphan mark').toBe(false);
    // Joined emoji (man, joiner, woman, joiner, girl) across the limit go on together.
    const family = '👨\u200D👩\u200D👧';
    expect(await chunksOf(`${'a'.repeat(1197)}${family}${'b'.repeat(50)}`)).toEqual(['a'.repeat(1197), `${family}${'b'.repeat(50)}`]);
    // One long joined run (each character followed by a joiner): no cluster ends near the
    // cut, which is taken at the limit (eight clusters back at most).
    const joined = 'a\u200D'.repeat(700);
    expect((await chunksOf(joined)).map((c) => [...c].length)).toEqual([1200, 200]);
    // Ten joined characters before the limit: past eight clusters, the limit too.
    const tenJoined = `${'b'.repeat(1180)}${'a\u200D'.repeat(10)}c${'d'.repeat(20)}`;
    expect((await chunksOf(tenJoined)).map((c) => [...c].length)).toEqual([1200, 21]);
    // Text of marks alone (no character to move back to) is still cut at the limit.
    const marks = '\u0301'.repeat(1300);
    expect((await chunksOf(marks)).map((c) => [...c].length)).toEqual([1200, 100]);
  });

  it('a document of whitespace only is refused (it would have no chunk, and never be found)', async () => {
    await expect(db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${acme}, ${kb}, 'Blank', ${' \n\t '})`).rejects.toMatchObject({
      code: '23514',
      constraint_name: 'kb_documents_content_check',
    });
  });
});

describe('a search with nothing to look for', () => {
  it('negations only, or only what a configuration drops, finds nothing rather than every other chunk', async () => {
    await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${acme}, ${kb}, 'Refunds', 'Refunds take five days.'), (${acme}, ${kb}, 'Parking', 'Parking is free.')`;
    const search = (q: string) => db.sql`select content from private.kb_search_in_tenant(${acme}, ${q}, null, 50)`;
    expect(await search('-refunds')).toEqual([]);
    expect(await search('-zzzz')).toEqual([]);
    // `the` is a stop word of the english configuration: its half of the query is
    // negations only, and the simple half looks for `the` (in no chunk here).
    expect(await search('the -refunds')).toEqual([]);
    // A query with a word still finds it, negation and all.
    expect((await search('parking -refunds')).map((r) => r.content)).toEqual(['Parking is free.']);
    expect((await search('refunds')).map((r) => r.content)).toEqual(['Refunds take five days.']);
  });
});

describe("the plan's knowledge_base feature", () => {
  it('a tenant without it may retitle or delete a document, not give it new content', async () => {
    const [doc] = await db.sql`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
      values (${acme}, ${kb}, 'Menu', 'Soup of the day.') returning id`;
    await db.sql`update public.tenants set plan = 'starter' where id = ${acme}`;
    try {
      const asAdmin = <T>(f: Parameters<typeof probeAs<T>>[3]) =>
        probeAs(db.sql, 'authenticated', supabaseClaims(users.acmeAdmin, acme), f);
      expect(
        await asAdmin((tx) =>
          tx`update public.kb_documents set content = 'All new knowledge.' where id = ${doc.id} returning id`
        ),
      )
        .toMatchObject({ ok: false, error: { code: 'PT403' } });
      expect(await asAdmin((tx) => tx`update public.kb_documents set title = 'Lunch menu' where id = ${doc.id} returning title`))
        .toEqual({ ok: true, value: [{ title: 'Lunch menu' }] });
      expect(await asAdmin((tx) => tx`delete from public.kb_documents where id = ${doc.id} returning id`))
        .toEqual({ ok: true, value: [{ id: doc.id }] });
    } finally {
      await db.sql`update public.tenants set plan = 'pro' where id = ${acme}`;
    }
  });
});

describe("an agent's tools", () => {
  it('written in a form the API refuses before the strict check are mended, so deleting its knowledge base works', async () => {
    const repair = readFileSync('supabase/migrations/20261207227000_voice_agents_tools_repaired_and_checked.sql', 'utf8');
    const tools = {
      nested: [[{ name: 'book' }, { name: 'cancel' }], { name: 'transfer' }, [[{ name: 'deeper' }]], 'text', 7],
      many: Array.from({ length: 60 }, (_, i) => ({ name: `t${i}` })),
      fine: [{ name: 'lookup' }],
    };
    const rollback = new Error('rollback');
    await expect(db.sql.begin(async (tx) => {
      // The table as it was before 20261202180200: nested arrays and more than 50 passed.
      await tx`alter table public.voice_agents drop constraint voice_agents_llm_config_tools`;
      const [base] = await tx`insert into public.voice_knowledge_bases (tenant_id, name)
        values (${acme}, 'Tools going away') returning id`;
      const ids: Record<string, string> = {};
      let n = 7310;
      for (const [name, list] of Object.entries(tools)) {
        [{ id: ids[name] }] = await tx`insert into public.voice_agents
          (tenant_id, name, phone, voice_id, llm_config, knowledge_base_id)
          values (${acme}, ${name}, ${'+1415555' + n++}, 'v',
                  ${tx.json({ model: 'm', system_prompt: 'p', tools: list })}, ${base.id})
          returning id`;
      }
      await tx`alter table public.voice_agents add constraint voice_agents_llm_config_tools
        check (case when jsonb_typeof(llm_config -> 'tools') = 'array'
                    then jsonb_array_length(llm_config -> 'tools') <= 50
                         and not jsonb_path_exists(llm_config -> 'tools', 'strict $[*] ? (@.type() != "object")')
                    else true end) not valid`;
      // What failed before the repair: the foreign key's set null updates the agents.
      await tx`savepoint before_repair`;
      await expect(tx`delete from public.voice_knowledge_bases where id = ${base.id}`)
        .rejects.toMatchObject({ code: '23514', constraint_name: 'voice_agents_llm_config_tools' });
      await tx`rollback to savepoint before_repair`;

      await tx.unsafe(repair).simple();

      const rows = await tx<{ name: string; tools: { name: string }[] }[]>`select name, llm_config -> 'tools' as tools
        from public.voice_agents where id in ${tx(Object.values(ids))}`;
      const byName = Object.fromEntries(rows.map((r) => [r.name, r.tools.map((t) => t.name)]));
      expect(byName).toEqual({
        nested: ['book', 'cancel', 'transfer'],
        many: Array.from({ length: 50 }, (_, i) => `t${i}`),
        fine: ['lookup'],
      });
      const [check] = await tx`select convalidated from pg_constraint where conname = 'voice_agents_llm_config_tools'`;
      expect(check.convalidated).toBe(true);
      await tx`delete from public.voice_knowledge_bases where id = ${base.id}`;
      throw rollback;
    })).rejects.toBe(rollback);
  });
});

describe("an agent's language", () => {
  it('is a language tag of at most 35 characters', async () => {
    await expect(db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, language)
      values (${acme}, 'Long tongue', '+14155557201', 'v', '{"model": "m", "system_prompt": "p"}', ${
      'en' + '-abcdefgh'.repeat(10)
    })`)
      .rejects.toMatchObject({ code: '23514', constraint_name: 'voice_agents_language_check' });
  });

  it('written long before the bound is cut to whole subtags, so deleting its knowledge base works', async () => {
    const repair = readFileSync('supabase/migrations/20261202210000_voice_agents_language_repair.sql', 'utf8');
    const tags = {
      boundary: 'en-' + 'abcdefgh-'.repeat(3) + 'abcde-xy', // 38: the 35th character ends a subtag
      inside: 'de-' + 'abcdefgh-'.repeat(4) + 'ab', // 41: the 35th character is inside one
      short: 'fr-CA',
    };
    const rollback = new Error('rollback');
    await expect(db.sql.begin(async (tx) => {
      // The table as it was before 20261202200100: a long tag was allowed.
      await tx`alter table public.voice_agents drop constraint voice_agents_language_check`;
      const [base] = await tx`insert into public.voice_knowledge_bases (tenant_id, name)
        values (${acme}, 'Going away') returning id`;
      const ids: Record<string, string> = {};
      let n = 7210;
      for (const [name, language] of Object.entries(tags)) {
        [{ id: ids[name] }] = await tx`insert into public.voice_agents
          (tenant_id, name, phone, voice_id, llm_config, language, knowledge_base_id)
          values (${acme}, ${name}, ${'+1415555' + n++}, 'v', '{"model": "m", "system_prompt": "p"}', ${language}, ${base.id})
          returning id`;
      }
      await tx`alter table public.voice_agents add constraint voice_agents_language_check
        check (char_length(language) <= 35 and language ~ '^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$') not valid`;
      // What failed before the repair: the foreign key's set null updates the agent.
      await tx`savepoint before_repair`;
      await expect(tx`delete from public.voice_knowledge_bases where id = ${base.id}`)
        .rejects.toMatchObject({ code: '23514', constraint_name: 'voice_agents_language_check' });
      await tx`rollback to savepoint before_repair`;

      await tx.unsafe(repair).simple();

      const rows = await tx<{ name: string; language: string }[]>`select name, language from public.voice_agents
        where id in ${tx(Object.values(ids))} order by name`;
      expect(Object.fromEntries(rows.map((r) => [r.name, r.language]))).toEqual({
        boundary: 'en-abcdefgh-abcdefgh-abcdefgh-abcde',
        inside: 'de-abcdefgh-abcdefgh-abcdefgh',
        short: 'fr-CA',
      });
      const [check] = await tx`select convalidated from pg_constraint where conname = 'voice_agents_language_check'`;
      expect(check.convalidated).toBe(true);
      await tx`delete from public.voice_knowledge_bases where id = ${base.id}`;
      const [after] = await tx`select count(*)::int as n from public.voice_agents
        where id in ${tx(Object.values(ids))} and knowledge_base_id is null`;
      expect(after.n).toBe(3);
      throw rollback;
    })).rejects.toBe(rollback);
  });
});
