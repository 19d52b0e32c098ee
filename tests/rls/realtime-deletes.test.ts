// Realtime delivers a delete's event (the old row's primary key) to every subscriber of
// the table: no row is left for its select policy to be checked against, and a
// subscription's filter does not hold it back (Supabase's Postgres Changes). With keys of
// (tenant_id, id), a customer of one tenant learned every other tenant's ids and when they
// were deleted. So the publication carries inserts and updates only (20261207214000);
// those go through the select policy for each subscriber.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('rls_realtime_deletes');
});
afterAll(() => db?.close());

it('the realtime publication sends no deletes (nor truncates) of any table it publishes, and every table it publishes has RLS', async () => {
  const [pub] = await db.sql`select pubinsert, pubupdate, pubdelete, pubtruncate, puballtables from pg_publication where pubname = 'supabase_realtime'`;
  expect(pub).toEqual({ pubinsert: true, pubupdate: true, pubdelete: false, pubtruncate: false, puballtables: false });
  const tables = await db.sql`select t.schemaname, t.tablename, c.relrowsecurity as rls
    from pg_publication_tables t join pg_class c on c.oid = (quote_ident(t.schemaname) || '.' || quote_ident(t.tablename))::regclass
    where t.pubname = 'supabase_realtime' order by 1, 2`;
  expect(tables.length).toBeGreaterThan(0);
  for (const t of tables) expect(t, `${t.schemaname}.${t.tablename}`).toMatchObject({ schemaname: 'public', rls: true });
});
