// The attack kit shared by the generated suites of tests/rls/attack-*.test.ts (issue 9,
// "isolation holes on the direct-table path"). Nothing here names a table or a function:
// tables, columns, privileges, keys and executable functions come from the catalog, so a
// new table or function is attacked without writing a test.
//
// How a probe runs: a test-only plpgsql runner (schema attack_probe, created by the
// superuser in the test file's own database) executes each statement in a subtransaction,
// exactly as PostgREST would (`set local role`, `request.jwt.claims`), then switches back to
// the superuser INSIDE that subtransaction and fingerprints the target tenant's rows (every
// table of every schema, with each row's xmin, so even `set x = x` shows), and rolls the
// subtransaction back. A write that the final rollback would hide is therefore still seen.
// Batches of probes go to the server in one call each, on a small pool.
import { createHash, randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { parse } from 'smol-toml';
import { API_KEY_ISSUER, API_KEY_SCOPES } from '../../shared/auth/api-keys.ts';
import { root } from '../../scripts/stack.mjs';
import type { Sql } from '../helpers/db.ts';
import { LOCAL_CLERK_ISSUER, LOCAL_SUPABASE_ISSUER, LOCAL_SUPERTOKENS_ISSUER, teams, tenants, users } from '../helpers/seed.ts';

export type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------
// The server-side runner.

const KIT_SQL = String.raw`
create schema attack_probe;
revoke all on schema attack_probe from public;

-- How to find a tenant's rows in each table (the condition takes the tenant as $1).
create table attack_probe.scope (rel regclass primary key, kind text not null, cond text not null);
create table attack_probe.tenant_users (tenant uuid, user_id uuid, primary key (tenant, user_id));
create table attack_probe.victim_rows (tenant uuid, rel regclass, row jsonb);
create index on attack_probe.victim_rows (tenant, rel);
create table attack_probe.markers (tenant uuid, value text, primary key (tenant, value));
create table attack_probe.baseline (tenant uuid primary key, fp text not null, xid bigint not null);
create table attack_probe.counts (tenant uuid, rel text, n bigint, primary key (tenant, rel));

-- Fills attack_probe.scope from the catalog: every ordinary table outside the system
-- schemas. The tenant table is the one tenant_id columns point at; the people table is
-- the one memberships-like rows point at with a non-tenant foreign key.
create function attack_probe.build_scope() returns void language plpgsql as $f$
declare
  v_tenants regclass;
  v_people regclass;
  r record;
  v_cond text;
  v_kind text;
begin
  delete from attack_probe.scope;
  select distinct c.confrelid::regclass into v_tenants
  from pg_constraint c join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
  where c.contype = 'f' and array_length(c.conkey, 1) = 1 and a.attname = 'tenant_id';
  -- The people table: referenced by a single-column foreign key named user_id.
  select distinct c.confrelid::regclass into v_people
  from pg_constraint c join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
  where c.contype = 'f' and array_length(c.conkey, 1) = 1 and a.attname = 'user_id'
    and c.confrelid <> v_tenants
    and not exists (select 1 from pg_attribute t where t.attrelid = c.confrelid and t.attname = 'tenant_id');
  for r in
    select c.oid::regclass as rel, c.oid
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'attack_probe')
      and n.nspname not like 'pg_temp%' and n.nspname not like 'pg_toast%'
  loop
    v_cond := null;
    if exists (select 1 from pg_attribute a where a.attrelid = r.oid and a.attname = 'tenant_id' and not a.attisdropped) then
      v_kind := 'tenant'; v_cond := 't.tenant_id = $1';
    elsif r.rel = v_tenants then
      v_kind := 'tenant'; v_cond := 't.id = $1';
    elsif r.rel = v_people then
      v_kind := 'people'; v_cond := 't.id in (select u.user_id from attack_probe.tenant_users u where u.tenant = $1)';
    else
      -- A child without tenant_id: reach its tenant through a single-column foreign key.
      select 'child', format('t.%I in (select p.%I from %s p where %s)', a.attname, pa.attname, c.confrelid::regclass,
               case when c.confrelid = v_people then 'p.id in (select u.user_id from attack_probe.tenant_users u where u.tenant = $1)'
                    when c.confrelid = v_tenants then 'p.id = $1'
                    else 'p.tenant_id = $1' end)
        into v_kind, v_cond
      from pg_constraint c
      join pg_attribute a on a.attrelid = c.conrelid and a.attnum = c.conkey[1]
      join pg_attribute pa on pa.attrelid = c.confrelid and pa.attnum = c.confkey[1]
      where c.conrelid = r.oid and c.contype = 'f' and array_length(c.conkey, 1) = 1
        and (c.confrelid in (v_tenants, v_people)
             or exists (select 1 from pg_attribute t where t.attrelid = c.confrelid and t.attname = 'tenant_id'))
      order by c.conname limit 1;
      if v_cond is null then
        v_kind := 'global'; v_cond := 'true'; -- shared rows (settings, lookup tables): no API role may change them either
      end if;
    end if;
    insert into attack_probe.scope values (r.rel, v_kind, v_cond);
  end loop;
  -- The change detector, generated as static SQL so its plan is cached: the tables
  -- where a row of the tenant is new in this transaction (xmin after the snapshot: an
  -- insert or an update, even one that sets x = x) or where rows are gone (the count).
  execute 'create or replace function attack_probe.changed_tables(p_tenant uuid, p_xid bigint) returns text[] language plpgsql as $c$ '
       || 'begin return array_remove(array[' || (
    select string_agg(format(
      '(select case when count(*) <> coalesce((select c.n from attack_probe.counts c where c.tenant = p_tenant and c.rel = %L), 0) '
      || 'or coalesce(bool_or(t.xmin::text::bigint >= p_xid), false) then %L end from %s t where %s)',
      s.rel::text, s.rel::text, s.rel, replace(s.cond, '$1', 'p_tenant')), ', ' order by s.rel::text)
    from attack_probe.scope s) || '], null); end $c$';
end $f$;

create function attack_probe.fingerprint(p_tenant uuid) returns text language plpgsql as $f$
declare
  r record;
  v text := '';
  h text;
begin
  for r in select s.rel, s.cond from attack_probe.scope s order by s.rel::text loop
    execute format('select md5(coalesce(string_agg(t.xmin::text || chr(1) || t::text, chr(2) order by t::text), '''')) from %s t where %s', r.rel, r.cond)
      into h using p_tenant;
    v := v || r.rel::text || '=' || h || ';';
  end loop;
  return md5(v);
end $f$;

-- Per table fingerprints, to say WHICH table a probe changed.
create function attack_probe.fingerprints(p_tenant uuid) returns jsonb language plpgsql as $f$
declare
  r record;
  v jsonb := '{}';
  h text;
begin
  for r in select s.rel, s.cond from attack_probe.scope s loop
    execute format('select md5(coalesce(string_agg(t.xmin::text || chr(1) || t::text, chr(2) order by t::text), '''')) from %s t where %s', r.rel, r.cond)
      into h using p_tenant;
    v := v || jsonb_build_object(r.rel::text, h);
  end loop;
  return v;
end $f$;

-- Records what a tenant owns now: its people (members of it and of no other tenant, not
-- platform admins), its rows as jsonb (to recognise them when read), the distinctive
-- values in them (to recognise them inside a function's result) and the fingerprint.
create function attack_probe.snapshot(p_tenant uuid) returns text language plpgsql as $f$
declare
  r record;
begin
  delete from attack_probe.tenant_users where tenant = p_tenant;
  insert into attack_probe.tenant_users
  select p_tenant, m.user_id from public.memberships m
  where m.tenant_id = p_tenant
    and not exists (select 1 from public.memberships o where o.user_id = m.user_id and o.tenant_id <> p_tenant)
    and not exists (select 1 from public.platform_admins a where a.user_id = m.user_id);
  delete from attack_probe.victim_rows where tenant = p_tenant;
  for r in select s.rel, s.cond from attack_probe.scope s where s.kind <> 'global' loop
    execute format('insert into attack_probe.victim_rows select $1, %L::regclass, to_jsonb(t) from %s t where %s', r.rel, r.rel, r.cond) using p_tenant;
  end loop;
  -- Distinctive values: at least 6 characters, found in this tenant's rows and nowhere else.
  delete from attack_probe.markers where tenant = p_tenant;
  insert into attack_probe.markers
  select distinct p_tenant, e.value from attack_probe.victim_rows v, jsonb_each_text(v.row) e
  where v.tenant = p_tenant and length(e.value) >= 6 and e.key not in ('created_at', 'updated_at')
    and jsonb_typeof(v.row -> e.key) = 'string'
    and e.value <> p_tenant::text -- a tenant's id is no secret (it is in every URL); its rows are
    and e.value <> '00000000-0000-0000-0000-000000000000'; -- the nil id: "none" (a person's idempotency keys), nobody's
  for r in select s.rel, s.cond from attack_probe.scope s where s.kind <> 'global' loop
    execute format('delete from attack_probe.markers m using %s t, jsonb_each_text(to_jsonb(t)) e where m.tenant = $1 and not (%s) and e.value = m.value', r.rel, r.cond) using p_tenant;
  end loop;
  delete from attack_probe.counts where tenant = p_tenant;
  for r in select s.rel, s.cond from attack_probe.scope s loop
    execute format('insert into attack_probe.counts select $1, %L, count(*) from %s t where %s', r.rel::text, r.rel, r.cond) using p_tenant;
  end loop;
  insert into attack_probe.baseline values (p_tenant, attack_probe.fingerprint(p_tenant), txid_current() % 4294967296 + 1)
  on conflict (tenant) do update set fp = excluded.fp, xid = excluded.xid;
  return attack_probe.fingerprint(p_tenant);
end $f$;

-- One probe: {role, claims, sql, kind: read|write, rel?, tenant, fp: bool}. Returns
-- {n, code?, msg?, changed?, leaks?, markers?, value?}.
create function attack_probe.run_probe(p jsonb) returns jsonb language plpgsql as $f$
declare
  v_tenant uuid := (p ->> 'tenant')::uuid;
  v_rows jsonb;
  v_n bigint;
  v_changed text[];
  v_out jsonb;
  v_leaks jsonb;
  v_markers jsonb;
  v_attempt int := 0;
begin
  -- Batches run side by side and their probes write the same rows, each rolled back: two
  -- of them can deadlock (40P01) or fail to serialise (40001), which says nothing about the
  -- probe's own rights. Such a probe runs again, its first try rolled back, after a random
  -- pause growing with each try: run again at once, it met the same batch in the same
  -- step and deadlocked again (a CI run saw one probe refused five times in a row).
  <<attempts>>
  loop
  v_attempt := v_attempt + 1;
  begin
    perform set_config('role', p ->> 'role', true);
    perform set_config('request.jwt.claims', (p -> 'claims')::text, true);
    if p ->> 'kind' = 'read' then
      execute format('select coalesce(jsonb_agg(to_jsonb(q)), ''[]'') from (%s) q', p ->> 'sql') into v_rows;
      v_n := jsonb_array_length(v_rows);
    else
      execute p ->> 'sql';
      get diagnostics v_n = row_count;
    end if;
    perform set_config('role', 'none', true);
    -- A write that reached no row fired no row trigger: nothing to look for, unless the
    -- table has statement-level triggers (the probe then says fp_always).
    if coalesce((p ->> 'fp')::boolean, false) and (v_n > 0 or coalesce((p ->> 'fp_always')::boolean, false) or p ->> 'kind' = 'read') then
      v_changed := attack_probe.changed_tables(v_tenant, (select b.xid from attack_probe.baseline b where b.tenant = v_tenant));
    end if;
    raise exception using errcode = 'PRB00', message = jsonb_build_object('n', v_n, 'rows', v_rows, 'changed', v_changed)::text;
  exception when others then
    if sqlstate = 'PRB00' then
      v_out := sqlerrm::jsonb;
    elsif sqlstate in ('40P01', '40001') and v_attempt < 8 then
      perform pg_sleep(random() * 0.02 * v_attempt);
      continue attempts;
    else
      return jsonb_strip_nulls(jsonb_build_object('code', sqlstate, 'msg', left(sqlerrm, 300), 'retries', nullif(v_attempt - 1, 0)));
    end if;
  end;
  exit attempts;
  end loop;
  v_rows := v_out -> 'rows';
  if v_rows is not null and jsonb_typeof(v_rows) = 'array' then
    if p ? 'rel' then
      select jsonb_agg(r) into v_leaks from jsonb_array_elements(v_rows) r
      where r ->> 'tenant_id' = v_tenant::text
         or (r <> '{}' and exists (select 1 from attack_probe.victim_rows v
                                   where v.tenant = v_tenant and v.rel = (p ->> 'rel')::regclass and v.row @> r));
    end if;
    select jsonb_agg(m.value) into v_markers from attack_probe.markers m
    where m.tenant = v_tenant and position(m.value in v_rows::text) > 0 and position(m.value in (p ->> 'sql')) = 0
      and position(m.value in (p -> 'claims')::text) = 0;
  end if;
  return jsonb_strip_nulls(jsonb_build_object(
    'n', v_out -> 'n',
    'changed', case when jsonb_typeof(v_out -> 'changed') = 'array' then jsonb_array_length(v_out -> 'changed') > 0 end,
    'changed_tables', case when jsonb_typeof(v_out -> 'changed') = 'array' and jsonb_array_length(v_out -> 'changed') > 0 then v_out -> 'changed' end,
    'leaks', (select jsonb_agg(x) from (select x from jsonb_array_elements(v_leaks) x limit 2) y),
    'leak_count', case when v_leaks is not null then jsonb_array_length(v_leaks) end,
    'markers', v_markers,
    'value', case when p ? 'keep' then v_rows end,
    'retries', nullif(v_attempt - 1, 0)));
end $f$;

create function attack_probe.run_batch(ps jsonb) returns setof jsonb language plpgsql as $f$
declare
  p jsonb;
begin
  for p in select x from jsonb_array_elements(ps) x loop
    return next attack_probe.run_probe(p);
  end loop;
end $f$;

-- A row's text with every member of p_from named as p_user instead.
create function attack_probe.swap_people(p_text text, p_from uuid, p_user uuid) returns text language plpgsql as $f$
declare
  v text := p_text;
  u uuid;
begin
  for u in select m.user_id from public.memberships m where m.tenant_id = p_from loop
    v := replace(v, u::text, p_user::text);
  end loop;
  return v;
end $f$;

-- Copies a tenant's rows into another tenant with the SAME ids, in every table whose
-- primary key is (tenant_id, <uuid>), with every reference to a person replaced by
-- p_user: rows the attacker owns whose ids collide with the victim's. Triggers and
-- foreign-key checks are off while copying (session_replication_role), as for a restore.
create function attack_probe.plant_colliders(p_from uuid, p_to uuid, p_user uuid) returns int language plpgsql as $f$
declare
  r record;
  v_people text[];
  v_cols text;
  v_sel text;
  v_n int := 0;
  v_k int;
begin
  perform set_config('session_replication_role', 'replica', true);
  for r in
    select c.oid, c.oid::regclass as rel
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    join pg_index i on i.indrelid = c.oid and i.indisprimary and i.indnatts = 2
    join pg_attribute a1 on a1.attrelid = c.oid and a1.attnum = i.indkey[0] and a1.attname = 'tenant_id'
    join pg_attribute a2 on a2.attrelid = c.oid and a2.attnum = i.indkey[1] and a2.atttypid = 'uuid'::regtype
    where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema', 'attack_probe')
  loop
    -- Columns that point at a person: a foreign key to the people table, directly or
    -- through a (tenant_id, user) key of a table whose user column does.
    select coalesce(array_agg(a.attname::text), '{}') into v_people
    from pg_attribute a
    where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped and a.atttypid = 'uuid'::regtype
      and a.attname <> 'tenant_id'
      and exists (select 1 from attack_probe.scope s where s.kind = 'people'
                  and exists (select 1 from pg_constraint c where c.conrelid = r.oid and c.contype = 'f' and a.attnum = any (c.conkey)
                              and (c.confrelid = s.rel
                                   or exists (select 1 from pg_constraint c2 where c2.conrelid = c.confrelid and c2.contype = 'f'
                                              and c2.confrelid = s.rel and array_length(c2.conkey, 1) = 1
                                              and c2.conkey[1] = c.confkey[array_position(c.conkey, a.attnum)]))));
    select string_agg(format('%I', a.attname), ', ' order by a.attnum), string_agg(format('x.%I', a.attname), ', ' order by a.attnum)
      into v_cols, v_sel
    from pg_attribute a where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped and a.attgenerated = '';
    -- The victim's tenant id becomes the attacker's wherever it appears (paths embed it),
    -- as do its people's ids (jsonb columns name them: a notification's event data);
    -- non-null references to people become the attacker.
    execute format('insert into %1$s (%2$s) select %3$s from %1$s t, jsonb_populate_record(null::%1$s, attack_probe.swap_people(replace(to_jsonb(t)::text, $1::text, $2::text), $1, $4)::jsonb
                      || coalesce((select jsonb_object_agg(e.key, $4) from jsonb_each(to_jsonb(t)) e
                                   where e.key = any ($3) and e.value <> ''null''::jsonb), ''{}'')
                      || jsonb_build_object(''tenant_id'', $2)) x
                    where t.tenant_id = $1 on conflict do nothing', r.rel, v_cols, v_sel)
      using p_from, p_to, v_people, p_user;
    get diagnostics v_k = row_count;
    v_n := v_n + v_k;
  end loop;
  perform set_config('session_replication_role', 'origin', true);
  return v_n;
end $f$;

revoke all on all functions in schema attack_probe from public;
`;

export async function installKit(sql: Sql): Promise<void> {
  await sql.unsafe(KIT_SQL);
  await sql`select attack_probe.build_scope()`;
}

export async function snapshot(sql: Sql, tenantId: string): Promise<string> {
  const [{ fp }] = await sql`select attack_probe.snapshot(${tenantId}) as fp`;
  return fp as string;
}

export async function fingerprint(sql: Sql, tenantId: string): Promise<string> {
  const [{ fp }] = await sql`select attack_probe.fingerprint(${tenantId}) as fp`;
  return fp as string;
}

// ---------------------------------------------------------------------------------------
// Probes and outcomes.

export interface Probe {
  role: 'anon' | 'authenticated';
  claims: Json;
  sql: string;
  kind: 'read' | 'write';
  /** the relation read, to recognise victim rows in what it returns */
  rel?: string;
  /** whose rows must not change or be read */
  tenant: string;
  /** fingerprint after the statement (writes, function calls) */
  fp: boolean;
  /** look for changes even when the statement reached no row (statement triggers, calls) */
  fp_always?: boolean;
  /** return the rows read (function results, to compare) */
  keep?: boolean;
  /** labels for the report */
  meta: Json;
}

export interface Outcome {
  n?: number;
  code?: string;
  msg?: string;
  changed?: boolean;
  changed_tables?: string[];
  leaks?: unknown[];
  leak_count?: number;
  markers?: string[];
  value?: unknown;
  /** Times the probe ran again after a deadlock with another batch's probe. */
  retries?: number;
}

/** Runs probes in batches on the connection pool; results in the probes' order. */
export async function runProbes(sql: Sql, probes: Probe[], batch = 150): Promise<Outcome[]> {
  const chunks: Probe[][] = [];
  for (let i = 0; i < probes.length; i += batch) chunks.push(probes.slice(i, i + batch));
  const results = await Promise.all(
    chunks.map(async (chunk) => {
      const payload = chunk.map(({ meta: _meta, ...p }) => p);
      const rows = await sql`select attack_probe.run_batch(${sql.json(payload as never)}) as r`;
      return rows.map((row) => row.r as Outcome);
    }),
  );
  return results.flat();
}

// Errors that stop a generic statement before the database decided about the tenant
// (a missing value, a check, a duplicate, a bad cast): the probe was refused, but not by
// the rule under test. Everything else — rows, RLS/privilege refusals (42501), the
// platform's PTxxx refusals, a trigger's exception — is the database's decision.
const STOPPED = /^(22|23)/;
// Errors that mean the generator wrote a broken statement: the suite must fail.
const BROKEN = new Set(['42601', '42703', '42P01', '42883', '42804', '42P10', '42725', '0A000', '42P18', '42846']);

export const reachedDecision = (o: Outcome) => o.code === undefined || !STOPPED.test(o.code);
export const brokenProbe = (o: Outcome) => o.code !== undefined && BROKEN.has(o.code);

// ---------------------------------------------------------------------------------------
// The world: the victim tenant with a row in every table, attackers who each belong to
// two tenants with different roles, and rows in the attackers' tenants whose ids collide
// with the victim's.

export const VICTIM = { id: tenants.globex.id, slug: tenants.globex.slug, org: tenants.globex.clerkOrg };
export const VICTIM_PEOPLE = { admin: users.globexAdmin, agent: users.globexAgent, user: users.globexUser };
export const VICTIM_TEAM = teams.globex;

export interface AttackTenant {
  id: string;
  slug: string;
  org: string;
  role: 'user' | 'agent' | 'admin';
}
export interface Person {
  label: string;
  id: string;
  email: string;
  clerkSubject: string;
  supertokensSubject: string;
  a: AttackTenant;
  b: AttackTenant;
}
export interface Attacker extends Person {
  /** Same role in A, the same role as in B in a tenant of its own, no colliding rows:
   *  what the attacker may legitimately reach in A. */
  twin: Person;
  /** A's own people and rows, which the attacker reaches only as its role in A allows. */
  bystanders: { admin: { id: string }; agent: { id: string }; user: { id: string } };
  teamA: string;
  ticketsA: { open: string; other: string };
}

const ROLE_PAIRS: ['user' | 'agent' | 'admin', 'user' | 'agent' | 'admin'][] = [
  ['agent', 'admin'],
  ['user', 'agent'],
  ['admin', 'user'],
];

const hex = (x: number) => x.toString(16).padStart(12, '0');
export const attackers: Attacker[] = ROLE_PAIRS.map(([ra, rb], i) => {
  const n = i + 1;
  const a = { id: `a1000000-0000-4000-8000-${hex(n)}`, slug: `attack-a${n}`, org: `org_attack_a${n}`, role: ra };
  return {
    label: `${ra} in A${n} + ${rb} in B${n}`,
    id: `a0000000-0000-4000-8000-${hex(n)}`,
    email: `attacker${n}@attack.test`,
    clerkSubject: `user_attacker${n}`,
    supertokensSubject: `st-attacker${n}`,
    a,
    b: { id: `a2000000-0000-4000-8000-${hex(n)}`, slug: `attack-b${n}`, org: `org_attack_b${n}`, role: rb },
    twin: {
      label: `twin of attacker ${n}`,
      id: `a0000000-0000-4000-8000-${hex(n + 100)}`,
      email: `twin${n}@attack.test`,
      clerkSubject: `user_twin${n}`,
      supertokensSubject: `st-twin${n}`,
      a,
      b: { id: `a3000000-0000-4000-8000-${hex(n)}`, slug: `twin-b${n}`, org: `org_twin_b${n}`, role: rb },
    },
    bystanders: {
      admin: { id: `b0000000-0000-4000-8000-${hex(n * 10 + 1)}` },
      agent: { id: `b0000000-0000-4000-8000-${hex(n * 10 + 2)}` },
      user: { id: `b0000000-0000-4000-8000-${hex(n * 10 + 3)}` },
    },
    teamA: `a4000000-0000-4000-8000-${hex(n)}`,
    ticketsA: { open: `5a000000-0000-4000-8000-${hex(n * 10 + 1)}`, other: `5a000000-0000-4000-8000-${hex(n * 10 + 2)}` },
  };
});

export const VICTIM_TICKETS = {
  open: '5c000000-0000-4000-8000-000000000001',
  other: '5c000000-0000-4000-8000-000000000002',
};

/** Gives a tenant a row in every tenant-owned table, the way its own people would have
 *  created them (as the superuser, with their claims set so triggers record them). */
export async function populateTenant(
  sql: Sql,
  t: { id: string },
  people: { admin: { id: string }; agent: { id: string }; user: { id: string } },
  team: string,
  ids = VICTIM_TICKETS,
): Promise<void> {
  const as = (u: { id: string }) => JSON.stringify({ iss: LOCAL_SUPABASE_ISSUER, sub: u.id, role: 'authenticated', tenant_id: t.id });
  await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${as(people.admin)}, true)`;
    await tx`insert into public.sla_policies (tenant_id, priority, first_response_minutes, resolution_minutes) values (${t.id}, 'high', 61, 487)`;
    // A team's own policy too: its team_id is one more key an attacker could aim at another tenant.
    await tx`insert into public.sla_policies (tenant_id, team_id, priority, first_response_minutes, resolution_minutes) values (${t.id}, ${team}, 'urgent', 31, 241)`;
    await tx`insert into public.tenant_services (tenant_id, service) values (${t.id}, 'botpress'), (${t.id}, 'n8n')`;
    await tx`update public.tenant_services set state = 'failed', last_error = 'victim-error-text', credentials_encrypted = 'v1:victim-credential-ciphertext'
             where tenant_id = ${t.id} and service = 'botpress'`;
    await tx`insert into public.webhook_endpoints (tenant_id, url, secret_encrypted, description)
             values (${t.id}, 'https://hooks.victim.example/endpoint', 'v1:victim-webhook-secret', 'victim endpoint')`;
    await tx`insert into public.invitations (tenant_id, email, role) values (${t.id}, ${`invitee-${t.id.slice(-4)}@victim.test`}, 'agent')`;
    await tx`insert into public.macros (tenant_id, scope, owner_id, name, description, actions)
             values (${t.id}, 'tenant', null, 'Victim macro', 'victim macro description', '[{"type":"add_note","content":"victim macro note"}]'),
                    (${t.id}, 'personal', ${people.agent.id}, 'Victim personal macro', 'victim personal macro', '[{"type":"set_priority","priority":"low"}]')`;
    const [victimRule] = await tx`insert into public.automation_rules (tenant_id, name, description, event, conditions, actions, active)
             values (${t.id}, 'Victim rule', 'victim rule description', 'ticket.created',
                     '{"all":[{"field":"title","op":"contains","value":"victim-condition"}]}',
                     '[{"type":"add_note","content":"victim rule note"}]', false) returning id`;
    const [key] = await tx`insert into public.api_keys (tenant_id, name, prefix, scopes, created_by)
             values (${t.id}, 'victim api key', 'tpk_live_victim00', '{tickets:read,webhooks:manage}', ${people.admin.id}) returning id`;
    await tx`insert into private.api_key_secrets (tenant_id, key_id, secret_sha256) values (${t.id}, ${key.id}, sha256('victim-api-key-secret'))`;
    await tx`insert into public.canned_responses (tenant_id, scope, team_id, owner_id, short_code, title, body)
             values (${t.id}, 'tenant', null, null, 'victim', 'Victim template', 'victim canned body for {{requester.name}}'),
                    (${t.id}, 'team', ${team}, null, 'victim-team', 'Victim team template', 'victim team canned body'),
                    (${t.id}, 'personal', null, ${people.agent.id}, 'victim-own', 'Victim personal template', 'victim personal canned body')`;
    // Custom fields (issue 16 §4): one customers see, one hidden from them, both with
    // values on the ticket; a department and a coloured tag of the tenant's own.
    await tx`insert into public.custom_field_definitions (tenant_id, key, label, type, visible_to_customers, options)
             values (${t.id}, 'victim_plan', 'Victim plan', 'select', true, '{victim-gold,victim-silver}'),
                    (${t.id}, 'victim_secret', 'Victim secret', 'text', false, '{}')`;
    await tx`insert into public.departments (tenant_id, key, name) values (${t.id}, 'victim-dept', 'Victim department')`;
    await tx`insert into public.tags (tenant_id, name, color, description) values (${t.id}, 'victim-tag', '#aa0000', 'victim tag description')`;
    await tx`insert into public.tickets (tenant_id, id, title, description, team_id, created_by, assigned_to, priority, custom_fields)
             values (${t.id}, ${ids.open}, 'Victim ticket on the team', 'victim confidential description', ${team}, ${people.user.id}, ${people.agent.id}, 'high',
                     '{"victim_plan": "victim-gold", "victim_secret": "victim hidden field value"}')`;
    await tx`insert into public.tickets (tenant_id, id, title, created_by) values (${t.id}, ${ids.other}, 'Victim second ticket', ${people.user.id})`;
    await tx`insert into public.ticket_followers (tenant_id, ticket_id, user_id) values (${t.id}, ${ids.open}, ${people.admin.id})`;
    await tx`insert into public.notifications (tenant_id, user_id, ticket_id, type, data)
             select ${t.id}, p, ${ids.open}, 'victim', '{"note": "victim notification"}'::jsonb
             from unnest(${[people.admin.id, people.agent.id, people.user.id]}::uuid[]) p`;
    await tx`insert into public.automation_runs (tenant_id, rule_id, ticket_id, event, event_id, outcome, failed_action, error)
             values (${t.id}, ${victimRule.id}, ${ids.open}, 'ticket.created', gen_random_uuid(), 'failed', 0, 'victim rule error')`;
  });
  await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${as(people.user)}, true)`;
    await tx`insert into public.ticket_messages (tenant_id, ticket_id, author_id, content) values (${t.id}, ${ids.open}, ${people.user.id}, 'victim customer message')`;
    await tx`insert into public.ticket_messages (tenant_id, ticket_id, author_id, content) values (${t.id}, ${ids.other}, ${people.user.id}, 'victim customer second message')`;
    await tx`insert into public.attachments (tenant_id, ticket_id, file_name, size_bytes) values (${t.id}, ${ids.open}, 'victim-photo.jpg', 1024)`;
  });
  await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${as(people.agent)}, true)`;
    await tx`insert into public.ticket_messages (tenant_id, ticket_id, author_id, type, content) values (${t.id}, ${ids.open}, ${people.agent.id}, 'note', 'victim internal note')`;
    await tx`insert into public.ticket_messages (tenant_id, ticket_id, author_id, content) values (${t.id}, ${ids.open}, ${people.agent.id}, 'victim staff reply')`;
    await tx`update public.tickets set status = 'pending' where tenant_id = ${t.id} and id = ${ids.open}`;
  });
  // Voice (issue 14): a knowledge base with a document (and so its chunks), an agent on
  // a number of its own, a customer, a call with a transcript segment.
  const phone = `+1555${String(parseInt(createHash('sha256').update(t.id).digest('hex').slice(0, 12), 16) % 1e7).padStart(7, '0')}`;
  // Voice agents and knowledge need a plan that includes them (starter has neither).
  await sql`update public.tenants set plan = 'pro' where id = ${t.id} and plan = 'starter'`;
  await sql.begin(async (tx) => {
    await tx`select set_config('request.jwt.claims', ${as(people.admin)}, true)`;
    const [kb] = await tx`insert into public.voice_knowledge_bases (tenant_id, name, description) values (${t.id}, 'Victim KB', 'victim kb description') returning id`;
    await tx`insert into public.kb_documents (tenant_id, knowledge_base_id, title, content)
             values (${t.id}, ${kb.id}, 'Victim document', 'victim confidential knowledge: the safe code is 1234')`;
    const [agent] = await tx`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config, knowledge_base_id)
             values (${t.id}, 'Victim agent', ${phone}, 'victim-voice', ${tx.json({ model: 'm', system_prompt: 'victim system prompt' })}, ${kb.id}) returning id`;
    const [customer] = await tx`insert into public.voice_customers (tenant_id, phone, name, email, notes, recording_consent)
             values (${t.id}, '+15559990001', 'Victim caller', 'caller@victim.test', 'victim customer notes', true) returning id`;
    const [call] = await tx`insert into public.voice_calls (tenant_id, agent_id, customer_id, provider_call_id, summary)
             values (${t.id}, ${agent.id}, ${customer.id}, 'manual:victim-call-1', 'victim call summary') returning id`;
    await tx`insert into public.voice_call_segments (tenant_id, call_id, seq, speaker, content)
             values (${t.id}, ${call.id}, 0, 'customer', 'victim transcript line')`;
  });
  await sql`update public.teams set auto_assign = 'round_robin' where tenant_id = ${t.id} and id = ${team}`;
  await sql`insert into public.team_members (tenant_id, team_id, user_id) values (${t.id}, ${team}, ${people.agent.id}) on conflict do nothing`;
  await sql`insert into private.idempotency_keys (tenant_id, user_id, key, request_hash) values (${t.id}, ${people.admin.id}, 'victim-idempotency-key', 'victim-request-hash')`;
  // A provider event held for a call not started yet, received in the future so it stays
  // held (listed) however long a suite runs; under the call id and past the event id that
  // tests/rls/attack-functions.test.ts passes for private.voice_held_events ('x', the text
  // it passes for a name no victim column has, and 10), so a listing that answered
  // outsiders shows it there.
  await sql`insert into private.voice_call_early_events (tenant_id, provider_call_id, id, type, payload, received_at)
            overriding system value
            values (${t.id}, 'x', 1000000, 'call.answered', '{"answered_at": null, "victim": "held event"}', now() + interval '1 day')`;
}

/** The attackers and their twins: their person, identities at the three issuers, their
 *  two tenants (linked to Clerk organisations) with a membership each; in A, three
 *  bystanders (admin, agent, user) and a team of the bystander agent. */
export async function createAttackers(sql: Sql): Promise<void> {
  const tenantsMade = new Set<string>();
  for (const at of attackers) {
    for (const p of [at, at.twin]) {
      await sql`insert into public.users (id, email, first_name) values (${p.id}, ${p.email}, 'Mallory')`;
      await sql`insert into public.user_identities (issuer, subject, user_id) values
        (${LOCAL_SUPABASE_ISSUER}, ${p.id}, ${p.id}),
        (${LOCAL_CLERK_ISSUER}, ${p.clerkSubject}, ${p.id}),
        (${LOCAL_SUPERTOKENS_ISSUER}, ${p.supertokensSubject}, ${p.id})`;
      for (const t of [p.a, p.b]) {
        if (!tenantsMade.has(t.id)) {
          tenantsMade.add(t.id);
          await sql`insert into public.tenants (id, name, slug) values (${t.id}, ${`Attacker tenant ${t.slug}`}, ${t.slug})`;
          await sql`insert into public.tenant_org_links (tenant_id, issuer, org_id) values (${t.id}, ${LOCAL_CLERK_ISSUER}, ${t.org})`;
        }
        await sql`insert into public.memberships (tenant_id, user_id, role) values (${t.id}, ${p.id}, ${t.role})`;
      }
      // An API key of theirs in each of their tenants, with every scope (issue 15): a key
      // is a principal the policies know, acting as its creator in its tenant only.
      for (const [t, keyId] of [[p.a, apiKeyIds(p).a], [p.b, apiKeyIds(p).b]] as const) {
        await sql`insert into public.api_keys (tenant_id, id, name, prefix, scopes, created_by)
          values (${t.id}, ${keyId}, 'attacker key', 'tpk_live_attacker', ${[...API_KEY_SCOPES]}, ${p.id})`;
      }
    }
    for (const [role, person] of Object.entries(at.bystanders)) {
      await sql`insert into public.users (id, email) values (${person.id}, ${`${role}-${person.id.slice(-4)}@bystander.test`})`;
      await sql`insert into public.user_identities (issuer, subject, user_id) values (${LOCAL_SUPABASE_ISSUER}, ${person.id}, ${person.id})`;
      await sql`insert into public.memberships (tenant_id, user_id, role) values (${at.a.id}, ${person.id}, ${role})`;
    }
    await sql`insert into public.teams (tenant_id, id, name, department) values (${at.a.id}, ${at.teamA}, 'Bystander team', 'technical')`;
    await sql`insert into public.team_members (tenant_id, team_id, user_id) values (${at.a.id}, ${at.teamA}, ${at.bystanders.agent.id})`;
  }
}

/** Rows in attacker tenants with another tenant's ids (see plant_colliders). */
export async function plantColliders(sql: Sql, from: string, into: { tenant: string; person: string }[]): Promise<number> {
  let n = 0;
  for (const { tenant, person } of into) {
    await sql.begin(async (tx) => {
      const [{ k }] = await tx`select attack_probe.plant_colliders(${from}, ${tenant}, ${person}) as k`;
      n += k as number;
    });
  }
  return n;
}

// ---------------------------------------------------------------------------------------
// Token shapes: how the request names (or does not name) its tenant, exactly as the
// database reads it (private.active_tenant_id): the tenant_id claim as an id or a slug,
// app_metadata.tenant_id, Clerk's v2 `o.id` and v1 `org_id`, or nothing at all.

export interface Shape {
  label: string;
  claims: Json;
}

/** The ids of a person's API keys in their tenants A and B (createAttackers). */
export const apiKeyIds = (p: Person) => ({ a: `c1${p.id.slice(2)}`, b: `c2${p.id.slice(2)}` });

export function shapes(at: Person): Shape[] {
  const targets: [string, { id: string; slug: string; org: string }][] = [
    ['A', at.a],
    ['B', at.b],
    ['victim', VICTIM],
  ];
  const sb = { iss: LOCAL_SUPABASE_ISSUER, sub: at.id, aud: 'authenticated', email: at.email };
  const clerk = { iss: LOCAL_CLERK_ISSUER, sub: at.clerkSubject, azp: 'http://localhost:3000' };
  const out: Shape[] = [];
  for (const [name, t] of targets) {
    out.push({ label: `supabase tenant_id=${name}`, claims: { ...sb, tenant_id: t.id } });
    out.push({ label: `supabase tenant_id=${name} slug`, claims: { ...sb, tenant_id: t.slug } });
    out.push({ label: `supabase app_metadata.tenant_id=${name}`, claims: { ...sb, app_metadata: { tenant_id: t.id } } });
    out.push({ label: `clerk v2 o.id=${name}`, claims: { ...clerk, v: 2, o: { id: t.org, rol: 'admin', slg: t.slug } } });
    out.push({ label: `clerk v1 org_id=${name}`, claims: { ...clerk, org_id: t.org, org_role: 'org:admin' } });
  }
  out.push({ label: 'supabase no tenant', claims: sb });
  out.push({ label: 'clerk no organisation', claims: clerk });
  out.push({ label: 'supertokens no tenant', claims: { iss: LOCAL_SUPERTOKENS_ISSUER, sub: at.supertokensSubject } });
  // An API key's claims as the functions set them once the key is verified: the key's
  // own tenant, whatever else the claims name.
  const key = apiKeyIds(at);
  out.push({ label: 'api key of A', claims: { iss: API_KEY_ISSUER, sub: key.a } });
  out.push({ label: 'api key of B', claims: { iss: API_KEY_ISSUER, sub: key.b } });
  out.push({
    label: 'api key of B naming the victim',
    claims: { iss: API_KEY_ISSUER, sub: key.b, tenant_id: VICTIM.id, app_metadata: { tenant_id: VICTIM.id }, o: { id: VICTIM.org } },
  });
  return out;
}

/** Who probes: anon (an unauthenticated request still carries a shape's tenant hints), and
 *  each attacker as `authenticated`. Super-admins are left out on purpose: they act across
 *  tenants by design (ARCHITECTURE decision 6), so reaching the victim is their job. */
export interface Actor {
  label: string;
  role: 'anon' | 'authenticated';
  shapes: Shape[];
}

export function actors(): Actor[] {
  const anonShapes = shapes(attackers[0]).map((s) => {
    const { sub: _sub, email: _email, ...rest } = s.claims;
    return { label: s.label, claims: { ...rest, role: 'anon' } };
  });
  return [
    { label: 'anon', role: 'anon', shapes: anonShapes },
    ...attackers.map((at) => ({
      label: at.label,
      role: 'authenticated' as const,
      shapes: shapes(at).map((s) => ({ label: s.label, claims: { ...s.claims, role: 'authenticated' } })),
    })),
  ];
}

// ---------------------------------------------------------------------------------------
// The catalog.

/** Schemas PostgREST exposes (supabase/config.toml [api] schemas), plus storage when the
 *  database has it (Supabase Storage reads its tables through the same roles). */
export async function exposedSchemas(sql: Sql): Promise<string[]> {
  const config = parse(await readFile(path.join(root, 'supabase', 'config.toml'), 'utf8')) as { api?: { schemas?: string[] } };
  const schemas = new Set(config.api?.schemas ?? ['public']);
  const [{ storage }] = await sql`select exists (select 1 from pg_namespace where nspname = 'storage') as storage`;
  if (storage) schemas.add('storage');
  return [...schemas].sort();
}

export interface Column {
  name: string;
  type: string;
  select: boolean;
  insert: boolean;
  update: boolean;
  generated: boolean;
  unique: boolean;
  fk: boolean;
}

export interface Table {
  rel: string;
  schema: string;
  name: string;
  kind: string;
  columns: Column[];
  key: string[];
  hasTenantId: boolean;
  canDelete: boolean;
  /** statement-level triggers: a write may act even when it reaches no row */
  statementTriggers: boolean;
}

/** Every table and view in the given schemas, with what `role` may do to each column. */
export async function catalogTables(sql: Sql, schemas: string[], role: string): Promise<Table[]> {
  const rows = await sql`
    select c.oid::regclass::text as rel, n.nspname as schema, c.relname as name, c.relkind as kind,
           has_table_privilege(${role}, c.oid, 'DELETE') as can_delete,
           exists (select 1 from pg_trigger g where g.tgrelid = c.oid and not g.tgisinternal and (g.tgtype & 1) = 0
                   and (g.tgtype & 28) <> 0) as statement_triggers,
           coalesce((select array_agg(a.attname::text order by k.ord)
                     from pg_index i cross join unnest(i.indkey) with ordinality k(att, ord)
                     join pg_attribute a on a.attrelid = c.oid and a.attnum = k.att
                     where i.indrelid = c.oid and i.indisprimary), '{}') as key,
           (select json_agg(json_build_object(
              'name', a.attname, 'type', format_type(a.atttypid, a.atttypmod),
              'select', has_column_privilege(${role}, c.oid, a.attnum, 'SELECT'),
              'insert', has_column_privilege(${role}, c.oid, a.attnum, 'INSERT'),
              'update', has_column_privilege(${role}, c.oid, a.attnum, 'UPDATE'),
              'generated', a.attgenerated <> '' or a.attidentity = 'a',
              'unique', exists (select 1 from pg_index i where i.indrelid = c.oid and i.indisunique and a.attnum = any (i.indkey)),
              'fk', exists (select 1 from pg_constraint f where f.conrelid = c.oid and f.contype = 'f' and a.attnum = any (f.conkey)))
              order by a.attnum)
            from pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped) as columns
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = any (${schemas}) and c.relkind in ('r', 'p', 'v', 'm', 'f')
    order by 1`;
  return rows.map((r) => {
    const columns = r.columns as Column[];
    const hasTenantId = columns.some((c) => c.name === 'tenant_id');
    let key = r.key as string[];
    if (key.length === 0) key = hasTenantId && columns.some((c) => c.name === 'id') ? ['tenant_id', 'id'] : columns.some((c) => c.name === 'id') ? ['id'] : [];
    return {
      rel: r.rel as string,
      schema: r.schema as string,
      name: r.name as string,
      kind: r.kind as string,
      columns,
      key,
      hasTenantId,
      canDelete: r.can_delete as boolean,
      statementTriggers: r.statement_triggers as boolean,
    };
  });
}

/** The rows snapshot() recorded as the tenant's, per relation. */
export async function tenantRows(sql: Sql, tenantId: string): Promise<Map<string, Json[]>> {
  const rows = await sql`select v.rel::text as rel, v.row from attack_probe.victim_rows v where v.tenant = ${tenantId} order by 1, v.row::text`;
  const out = new Map<string, Json[]>();
  for (const r of rows) {
    const list = out.get(r.rel as string) ?? [];
    list.push(r.row as Json);
    out.set(r.rel as string, list);
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// Generic statements for a table, built from its columns and the target tenant's rows.

const lit = (v: unknown) => `'${JSON.stringify(v).replace(/'/g, "''")}'::jsonb`;
const ident = (s: string) => `"${s.replace(/"/g, '""')}"`;

export interface Statement {
  action: 'select' | 'insert' | 'update' | 'delete';
  variant: string;
  kind: 'read' | 'write';
  sql: string;
}

/** A row to insert, derived from one of the tenant's rows (or, for a table where it has
 *  none, from the tenant and its people): the columns `role` may insert. fresh: unique
 *  values that are not references are made new, so a duplicate cannot hide the verdict. */
function insertRow(t: Table, template: Json, fresh: boolean): Json {
  const row: Json = {};
  for (const c of t.columns) {
    if (!c.insert || c.generated || !(c.name in template)) continue;
    let v = template[c.name];
    if (fresh && v !== null && c.unique && !c.fk && c.name !== 'tenant_id') {
      if (c.type === 'uuid') v = randomUUID();
      else if (typeof v === 'string') v = `${v}-${randomUUID().slice(0, 8)}`;
    }
    row[c.name] = v;
  }
  return row;
}

export function statementsFor(t: Table, rows: Json[], fallback: Json): Statement[] {
  const out: Statement[] = [];
  const sel = t.columns.filter((c) => c.select).map((c) => ident(c.name));
  out.push({ action: 'select', variant: 'all rows', kind: 'read', sql: `select ${sel.length ? sel.join(', ') : '1 as x'} from ${t.rel}` });

  const template = rows[0] ?? fallback;
  for (const fresh of [true, false]) {
    const row = insertRow(t, template, fresh);
    const cols = Object.keys(row).map(ident);
    out.push({
      action: 'insert',
      variant: fresh ? "copy of the tenant's row, new unique values" : "exact copy of the tenant's row",
      kind: 'write',
      sql: cols.length
        ? `insert into ${t.rel} (${cols.join(', ')}) select ${cols.join(', ')} from jsonb_populate_record(null::${t.rel}, ${lit(row)})`
        : `insert into ${t.rel} default values`,
    });
  }

  const upd = t.columns.filter((c) => c.update && !c.generated).map((c) => ident(c.name));
  const set = (upd.length ? upd : [ident(t.columns[0].name)]).map((c) => `${c} = ${c}`).join(', ');
  const keyRows = rows.map((r) => Object.fromEntries(t.key.map((k) => [k, r[k]])));
  const wheres: [string, string][] = [['every row it reaches', '']];
  if (t.key.length && keyRows.length) {
    const k = t.key.map(ident).join(', ');
    wheres.push([`the tenant's rows by (${t.key.join(', ')})`, ` where (${k}) in (select ${k} from jsonb_populate_recordset(null::${t.rel}, ${lit(keyRows)}))`]);
    const bare = t.key.filter((c) => c !== 'tenant_id');
    if (bare.length && bare.length < t.key.length) {
      const b = bare.map(ident).join(', ');
      wheres.push([`the tenant's rows by bare ${bare.join(', ')}`, ` where (${b}) in (select ${b} from jsonb_populate_recordset(null::${t.rel}, ${lit(keyRows)}))`]);
    }
  }
  for (const [variant, where] of wheres) {
    out.push({ action: 'update', variant, kind: 'write', sql: `update ${t.rel} set ${set}${where}` });
    out.push({ action: 'delete', variant, kind: 'write', sql: `delete from ${t.rel}${where}` });
  }
  return out;
}

/** The row used to build inserts into a table where the tenant owns no row: the tenant
 *  for tenant_id and every reference to a tenant, one of its people for references to people. */
export function fallbackRow(t: Table, tenantId: string, personId: string): Json {
  const row: Json = {};
  for (const c of t.columns) {
    if (c.name === 'tenant_id') row[c.name] = tenantId;
    else if (c.type === 'uuid' && c.fk && /user|author|by$/.test(c.name)) row[c.name] = personId;
  }
  return row;
}

// ---------------------------------------------------------------------------------------
// Verdicts.

export interface Tried {
  probe: Probe;
  outcome: Outcome;
}

/** What went wrong across all probes: victim rows read, victim rows changed, broken probes. */
export function problems(tried: Tried[]): string[] {
  const out: string[] = [];
  for (const { probe, outcome } of tried) {
    const where = Object.values(probe.meta).join(' | ');
    if (brokenProbe(outcome)) out.push(`BROKEN PROBE ${where}: ${outcome.code} ${outcome.msg} — ${probe.sql.slice(0, 200)}`);
    if (outcome.leaks?.length) out.push(`READ victim rows: ${where}: e.g. ${JSON.stringify(outcome.leaks[0]).slice(0, 240)}`);
    if (outcome.markers?.length) out.push(`READ victim values: ${where}: ${outcome.markers.slice(0, 3).join(', ')}`);
    if (outcome.changed) out.push(`CHANGED victim rows: ${where}: ${(outcome.changed_tables ?? []).join(', ')} (${outcome.n} rows)`);
  }
  return out;
}

/** The distinct problems, one line per (what, table, action, variant) with the actors and
 *  shapes that triggered it counted, so a hole is reported once, not 18 × 4 times. */
export function summarise(lines: string[]): string[] {
  const counts = new Map<string, number>();
  for (const l of lines) counts.set(l, (counts.get(l) ?? 0) + 1);
  return [...counts.entries()].map(([l, n]) => (n > 1 ? `${l}  [×${n}]` : l));
}

export { LOCAL_CLERK_ISSUER, LOCAL_SUPABASE_ISSUER, LOCAL_SUPERTOKENS_ISSUER };
