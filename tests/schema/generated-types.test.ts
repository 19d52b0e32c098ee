// types/database.ts must be exactly what the Supabase CLI generates from the migrations
// now, and shared/unique-keys.ts what scripts/unique-keys.mjs reads from the catalog: a
// schema change without `npm run gen:types` fails here.
import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { generateTypes, root } from '../../scripts/stack.mjs';
import { generateUniqueKeys, uniqueKeysFile } from '../../scripts/unique-keys.mjs';
import { fromPgError } from '../../shared/errors.ts';
import { UNIQUE_KEYS } from '../../shared/unique-keys.ts';
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

it('shared/unique-keys.ts matches the unique keys of the migrated schema', async () => {
  const committed = await readFile(uniqueKeysFile, 'utf8');
  const generated = await generateUniqueKeys(db.url);
  expect(committed, 'shared/unique-keys.ts is stale: run `npm run gen:types`').toBe(generated);
  // Unique constraints, primary keys and unique indexes on expressions, without tenant_id.
  expect(UNIQUE_KEYS).toMatchObject({
    tenants_slug_key: ['slug'],
    teams_tenant_name_key: ['name'],
    invitations_pending_key: ['email'],
    team_members_tenant_id_team_id_user_id_key: ['team_id', 'user_id'],
    user_identities_pkey: ['issuer', 'subject'],
  });
});

it('notices drift: a new unique key shows up with its columns in order', async () => {
  // A column whose name the expression's text must quote (a keyword) is found too.
  await db.sql`alter table public.teams add column drift_code text, add column "order" text,
                add constraint drift_probe_key unique (tenant_id, drift_code, department)`;
  await db
    .sql`create unique index drift_probe_lower_key on public.teams (tenant_id, lower("order"), (department || '-' || name))`;
  try {
    const generated = await generateUniqueKeys(db.url);
    expect(generated).toContain(`  drift_probe_key: ['drift_code', 'department'],\n`);
    expect(generated).toContain(`  drift_probe_lower_key: ['order', 'department', 'name'],\n`);
  } finally {
    await db.sql`drop index public.drift_probe_lower_key`;
    await db.sql`alter table public.teams drop column drift_code, drop column "order"`;
  }
});

it('answers a unique violation with the fields of its key, or none for a key it does not know', () => {
  const violation = (constraint: string) =>
    fromPgError({ name: 'PostgresError', code: '23505', message: 'duplicate', constraint_name: constraint });
  expect(violation('teams_tenant_name_key')).toMatchObject({
    status: 409,
    code: 'already_exists',
    message: 'name is already taken',
    details: { constraint: 'teams_tenant_name_key', fields: [{ field: 'name', message: 'is already taken' }] },
  });
  for (const unknown of ['jobs_job_key', 'toString', '__proto__']) {
    expect(violation(unknown), unknown).toMatchObject({
      status: 409,
      code: 'already_exists',
      message: 'A record with these values already exists',
      details: { constraint: unknown, fields: [] },
    });
  }
});

it('answers a broken check with the column it is about, read from its name, or the constraint when it names several', async () => {
  await db.sql`create table public.check_probe (id int primary key, a int check (a > 0), b int, c int, check (b > c),
    constraint check_probe_c_valid check (c <> 7))`;
  try {
    const refusal = async (values: { id: number; a?: number; b?: number; c?: number }) =>
      fromPgError(
        await db.sql`insert into public.check_probe ${db.sql({ a: null, b: null, c: null, ...values })}`.then(
          () => null,
          (e) => e,
        ),
      );
    const field = async (values: { id: number; a?: number; b?: number; c?: number }) => {
      const e = await refusal(values);
      expect([e.status, e.code]).toEqual([422, 'validation_failed']);
      return (e.details as { fields: { field: string }[] }).fields[0].field;
    };
    expect(await field({ id: 1, a: -1 })).toBe('a');
    expect(await field({ id: 2, b: 1, c: 2 })).toBe('check_probe_check');
    expect(await field({ id: 3, c: 7 })).toBe('c');
    // The schema's own: an LLM configuration past 64 kB breaks voice_agents_llm_config_valid.
    const e = fromPgError(
      await db.sql`insert into public.voice_agents (tenant_id, name, phone, voice_id, llm_config)
        values ('10000000-0000-4000-8000-000000000001', 'x', '+14155550999', 'v',
                ${
        db.sql.json({ model: 'm', system_prompt: 'p', tools: Array.from({ length: 5 }, () => ({ d: 'x'.repeat(15_000) })) })
      })`
        .then(() => null, (err) => err),
    );
    expect(e.details).toMatchObject({ constraint: 'voice_agents_llm_config_valid', fields: [{ field: 'llm_config' }] });
  } finally {
    await db.sql`drop table public.check_probe`;
  }
});
