// The Supabase CLI's database advisors (security and performance lints) must report
// nothing at WARN or ERROR level for the migrated schema.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { advisors } from '../../scripts/stack.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

type Lint = { name: string; level: string; detail: string };

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('advisors');
});
afterAll(() => db.close());

it('reports no WARN or ERROR for the schema', async () => {
  const results = (await advisors(db.url)) as Lint[];
  const serious = results.filter((r) => r.level === 'WARN' || r.level === 'ERROR');
  expect(serious.map((r) => `${r.level} ${r.name}: ${r.detail}`)).toEqual([]);
});

it('would catch a table without RLS and a function with a mutable search_path', async () => {
  await db.sql`create table public.advisor_probe (id int primary key)`;
  await db.sql`create function public.advisor_probe_fn() returns int language sql as 'select 1'`;
  try {
    const names = ((await advisors(db.url)) as Lint[]).map((r) => `${r.level} ${r.name}`);
    expect(names).toContain('ERROR rls_disabled_in_public');
    expect(names).toContain('WARN function_search_path_mutable');
  } finally {
    await db.sql`drop table public.advisor_probe`;
    await db.sql`drop function public.advisor_probe_fn()`;
  }
});
