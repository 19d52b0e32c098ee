// types/database.ts must be exactly what the Supabase CLI generates from the migrations
// now: a schema change without `npm run gen:types` fails here.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateTypes, root } from '../../scripts/stack.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('types');
});
afterAll(() => db.close());

it('types/database.ts matches `supabase gen types typescript` for the migrated schema', async () => {
  const committed = await readFile(`${root}/types/database.ts`, 'utf8');
  const generated = await generateTypes(db.url);
  expect(generated).toContain('"tenants": {');
  expect(committed, 'types/database.ts is stale: run `npm run gen:types`').toBe(generated);
});

it('notices drift: a new column shows up in freshly generated types', async () => {
  await db.sql`alter table public.teams add column drift_probe text`;
  try {
    expect(await generateTypes(db.url)).toContain('drift_probe');
  } finally {
    await db.sql`alter table public.teams drop column drift_probe`;
  }
});
