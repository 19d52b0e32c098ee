// The Storage buckets a hosted project gets from the migrations are private, whatever a
// project had before. The local stack has no storage schema (the migrations skip the
// bucket there), so the hosted one's table is stood in for here, with the columns the
// migrations write, and the migration run on it as written.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { root } from '../../scripts/stack.mjs';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
const migration = (name: string) => readFileSync(path.join(root, 'supabase', 'migrations', name), 'utf8');

beforeAll(async () => {
  db = await freshDatabase('storage_buckets');
  await db.sql.unsafe(`
    create schema storage;
    create table storage.buckets (id text primary key, name text not null, public boolean default false,
                                  file_size_limit bigint, allowed_mime_types text[])`);
});
afterAll(async () => {
  await db.close();
});

it('an attachments bucket that was public is made private, with its size limit (20261206153000)', async () => {
  await db.sql`insert into storage.buckets (id, name, public, file_size_limit) values ('attachments', 'attachments', true, null)`;
  await db.sql.unsafe(migration('20261206153000_attachments_bucket_kept_private.sql'));
  expect((await db.sql`select public, file_size_limit::int from storage.buckets where id = 'attachments'`)[0])
    .toEqual({ public: false, file_size_limit: 52428800 });
});

it('a project without the bucket gets it, private', async () => {
  await db.sql`delete from storage.buckets`;
  await db.sql.unsafe(migration('20261206153000_attachments_bucket_kept_private.sql'));
  expect(await db.sql`select id, public from storage.buckets`).toEqual([{ id: 'attachments', public: false }]);
});
