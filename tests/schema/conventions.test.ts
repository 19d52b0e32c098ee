// The schema's house rules, read from the catalog so a new table or function that
// breaks one fails here: RLS everywhere in public, search_path = '' on every function
// of ours, tenant_id leading the key of tenant-owned tables, an audit trigger on every
// table but the audit log itself and the derived tables named in UNAUDITED_TABLES
// (tests/helpers/db.ts), and nothing of ours in the auth schema.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { freshDatabase, type TestDatabase, UNAUDITED_TABLES } from '../helpers/db.ts';

let db: TestDatabase;
beforeAll(async () => {
  db = await freshDatabase('conventions');
});
afterAll(() => db.close());

it('enables RLS on every table in public', async () => {
  const rows = await db.sql`
    select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind in ('r', 'p') and not c.relrowsecurity`;
  expect(rows.map((r) => r.relname)).toEqual([]);
  const tables = await db.sql`select count(*)::int as n from pg_tables where schemaname = 'public'`;
  expect(tables[0].n).toBeGreaterThanOrEqual(9);
});

it("sets search_path = '' on every function in public and private", async () => {
  const rows = await db.sql`
    select n.nspname || '.' || p.proname as fn, p.proconfig
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname in ('public', 'private')
      and not coalesce(p.proconfig @> array['search_path=""'], false)`;
  expect(rows.map((r) => r.fn)).toEqual([]);
});

it('keys every tenant-owned table by (tenant_id, …)', async () => {
  const rows = await db.sql`
    select c.relname, (select a.attname from pg_attribute a where a.attrelid = c.oid and a.attnum = k.conkey[1]) as first_key
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    join pg_constraint k on k.conrelid = c.oid and k.contype = 'p'
    where n.nspname = 'public' and c.relkind = 'r'
      and exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'tenant_id' and not a.attisdropped)
      and c.relname <> 'audit_logs'`;
  expect(rows.length).toBeGreaterThanOrEqual(4);
  for (const r of rows) expect(`${r.relname}: ${r.first_key}`).toBe(`${r.relname}: tenant_id`);
});

it('audits every table in public except the audit log and the named derived tables', async () => {
  const rows = await db.sql`
    select c.relname,
      exists (select 1 from pg_trigger t join pg_proc p on p.oid = t.tgfoid
              where t.tgrelid = c.oid and p.proname = 'audit_row' and not t.tgisinternal) as audited
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind = 'r' and c.relname <> 'audit_logs'
    order by 1`;
  expect(rows.filter((r) => !r.audited).map((r) => r.relname)).toEqual(UNAUDITED_TABLES);
  // An exception is for a table API roles cannot write: what they change is audited
  // where they change it.
  const [written] = await db.sql`
    select count(*)::int as n from unnest(${UNAUDITED_TABLES}::text[]) u(t)
    cross join unnest(array['authenticated', 'anon']) r(role)
    -- A column's grant too (grant update (embedding) …): has_table_privilege sees only the table's.
    where has_any_column_privilege(r.role, format('public.%I', u.t), 'INSERT, UPDATE')
       or has_table_privilege(r.role, format('public.%I', u.t), 'DELETE, TRUNCATE')`;
  expect(written.n).toBe(0);
});

it('maintains updated_at by trigger on every table the API roles may update', async () => {
  const rows = await db.sql`
    select distinct c.relname,
      exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'updated_at' and not a.attisdropped) as has_column,
      exists (select 1 from pg_trigger t join pg_proc p on p.oid = t.tgfoid
              where t.tgrelid = c.oid and p.proname = 'set_updated_at') as has_trigger
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'public' and c.relkind = 'r'
      and (has_table_privilege('authenticated', c.oid, 'UPDATE')
        or exists (select 1 from information_schema.column_privileges p
                   where p.table_schema = 'public' and p.table_name = c.relname
                     and p.grantee = 'authenticated' and p.privilege_type = 'UPDATE'))`;
  expect(rows.length).toBeGreaterThanOrEqual(4);
  for (const r of rows) expect(`${r.relname}: ${r.has_column} ${r.has_trigger}`).toBe(`${r.relname}: true true`);
});

it('grants anon nothing on tenant data and creates nothing in auth', async () => {
  const grants = await db.sql`
    select table_name, privilege_type from information_schema.role_table_grants
    where grantee = 'anon' and table_schema = 'public'`;
  expect(grants).toEqual([]);
  const ours = await db.sql`
    select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
    where n.nspname = 'auth' and p.proname not in ('uid', 'role', 'email', 'jwt')`;
  expect(ours).toEqual([]);
});
