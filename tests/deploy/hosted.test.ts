// The README's "Deploying to a hosted project" as written: every command checked against
// the pinned CLI's own --help, then run (with --remote pointed at a scratch database
// standing in for the linked project) on a database that has the platform's roles but
// not the local issuer — as a hosted one. There, Supabase Auth users are refused until
// the README's settings step ran, and then mapped under the issuer it names. The
// schedule guard decides from what it reads, tested branch by branch.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import postgres from 'postgres';
import { spawn } from 'node:child_process';
import { bootstrapFile, createDatabase, root, runSqlFile, withDatabase } from '../../scripts/stack.mjs';
import { readmeBlocks, shellCommands } from '../helpers/readme.ts';
import { LOCAL_SUPABASE_ISSUER } from '../helpers/seed.ts';
import { freshDatabase, type TestDatabase } from '../helpers/db.ts';

const REF = 'abcdefghijklmnopqrst';
const commands = readmeBlocks('Deploying to a hosted project')
  .filter((b) => b.lang === 'sh')
  .flatMap((b) => shellCommands(b.code))
  .filter((c) => c.startsWith('npx supabase '));

/** The pinned CLI from node_modules: exit code and everything it printed (stdout and
 *  stderr: dry runs and targets are reported on stderr). Bounded: killed after 120 s. */
function cli(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(root, 'node_modules', '.bin', 'supabase'), args, {
      cwd: root,
      env: { ...process.env, PGSSLMODE: 'disable', SUPABASE_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', CI: 'true' },
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 120_000,
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code, out }));
  });
}
async function cliOk(args: string[]): Promise<string> {
  const { code, out } = await cli(args);
  if (code !== 0) throw new Error(`supabase ${args.join(' ')} exited ${code}:\n${out}`);
  return out;
}

/** Shell words of a command line (double and single quotes). */
function words(line: string): string[] {
  return [...line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

/** A command's subcommand path (`db push`) and its flags (`--remote`, `--dry-run`). */
function parse(line: string) {
  const args = words(line).slice(2);
  const path: string[] = [];
  while (args.length && /^[a-z][a-z-]*$/.test(args[0]) && path.length < 2) path.push(args.shift()!);
  return { path, flags: args.filter((a) => a.startsWith('--')).map((a) => a.split('=')[0]), args };
}

describe('the README deploy commands, against the pinned CLI', () => {
  it('are the ones a deploy needs', () => {
    const paths = commands.map((c) => parse(c).path.join(' '));
    expect(paths).toEqual([
      'login', 'link', 'db push', 'db push', 'db query', 'db query', 'functions deploy', 'secrets set', 'secrets set', 'db query',
    ]);
  });

  it('make the encryption key once, apart from the commands each deploy re-runs', () => {
    // A key made inline in the deploy commands would be replaced on every redeploy, and
    // nothing sealed before could be read again.
    const blocks = readmeBlocks('Deploying to a hosted project').filter((b) => b.lang === 'sh');
    const everyDeploy = blocks.find((b) => b.code.includes('functions deploy'))!;
    expect(everyDeploy.code).not.toContain('PROVISIONING_ENCRYPTION_KEY');
    expect(everyDeploy.code).not.toContain('openssl rand');
    const once = blocks.filter((b) => b.code.includes('PROVISIONING_ENCRYPTION_KEY'));
    expect(once).toHaveLength(1);
    expect(once[0].code).toMatch(/umask 077 && openssl rand -base64 32 > (\S+)\)[\s\S]*PROVISIONING_ENCRYPTION_KEY="\$\(cat \1\)"/);
  });

  it('use only flags the CLI documents, and every db command targets --remote (db is local by default)', async () => {
    const version = await cliOk(['--version']);
    expect(version.trim()).toMatch(/^3\.1\./);
    for (const line of commands) {
      const { path: sub, flags } = parse(line);
      const help = await cliOk([...sub, '--help']);
      for (const flag of flags) expect(help, `${line}: ${flag}`).toMatch(new RegExp(`^\\s+${flag}\\b`, 'm'));
      if (sub[0] === 'db') {
        expect(help, line).toContain('Local by default. Pass --remote for the linked project');
        expect(flags, line).toContain('--remote');
      }
      if (['functions', 'secrets'].includes(sub[0])) expect(help, line).toMatch(/Remote only\. Uses the linked project/);
    }
    // Without --remote a dry run targets the local stack, which is why the README names it.
    const local = await cli(['db', 'push', '--dry-run']);
    expect(local.out).toMatch(/Target: local stack \(127\.0\.0\.1:54322\)/);
  }, 120_000); // a dozen CLI start-ups: on a busy 2-core machine over 30 s

  it('deploy every function of config.toml with --use-api (no Docker) and take no function names', () => {
    const deploy = commands.map(parse).find((c) => c.path.join(' ') === 'functions deploy')!;
    expect(deploy.flags).toEqual(['--use-api']);
    expect(deploy.args.filter((a) => !a.startsWith('--'))).toEqual([]);
  });
});

describe('a hosted-like database, deployed with the README commands', () => {
  let url: string;
  let sql: postgres.Sql;
  const name = `hosted_${Date.now().toString(36)}`;
  /** A README command, with --remote aimed at the scratch database and <ref> filled in. */
  const run = (line: string, extra: string[] = []) => {
    const { path: sub, args } = parse(line.replaceAll('<ref>', REF));
    return cliOk([...sub, ...args.map((a) => (a === '--remote' ? `--remote=${url}` : a)), ...extra]);
  };
  const find = (pattern: RegExp) => {
    const line = commands.find((c) => pattern.test(c));
    if (!line) throw new Error(`README has no command matching ${pattern}`);
    return line;
  };

  beforeAll(async () => {
    url = await createDatabase(inject('pgUrl'), name);
    // The platform is what hosted already has: built by the superuser, as on hosted.
    await runSqlFile(withDatabase(inject('pgAdminUrl'), name), bootstrapFile);
    // A hosted database has the platform's roles and schemas but not the local issuer.
    const admin = postgres(withDatabase(inject('pgAdminUrl'), name), { max: 1, onnotice: () => {} });
    await admin.unsafe(`alter database "${name}" reset app.supabase_auth_issuer`);
    await admin.end();
    sql = postgres(url, { max: 2, onnotice: () => {} });
  }, 120_000);
  afterAll(async () => {
    await sql?.end({ timeout: 1 });
    const admin = postgres(inject('pgUrl'), { max: 1, onnotice: () => {} });
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
    await admin.end();
  });

  it('db push --remote --dry-run lists the migrations and applies none; db push --remote applies them', async () => {
    const migrations = readdirSync(path.join(root, 'supabase', 'migrations')).filter((f) => f.endsWith('.sql')).sort();
    const dry = await run(find(/^npx supabase db push --remote --dry-run$/));
    expect(dry).toContain('DRY RUN: migrations will *not* be pushed to the database.');
    for (const m of migrations) expect(dry).toContain(m);
    const [{ n }] = await sql`select count(*)::int as n from pg_namespace where nspname = 'private'`;
    expect(n).toBe(0);
    // --yes: the test answers the confirmation a person gives.
    await run(find(/^npx supabase db push --remote$/), ['--yes']);
    const [{ m }] = await sql`select count(*)::int as m from supabase_migrations.schema_migrations`;
    expect(m).toBe(migrations.length);
  }, 120_000);

  it('refuses to map a Supabase Auth user, loudly, until the issuer is set', async () => {
    const settings = await sql`select key from private.settings where key = 'supabase_auth_issuer'`;
    expect(settings).toEqual([]);
    await expect(sql`
      insert into auth.users (id, email, email_confirmed_at) values ('7a000000-0000-4000-8000-000000000001', 'first@hosted.test', now())`)
      .rejects.toThrow(/private\.settings has no supabase_auth_issuer/);
    await expect(sql`select private.custom_access_token_hook('{"user_id": "7a000000-0000-4000-8000-000000000001", "claims": {}}')`)
      .rejects.toThrow(/private\.settings has no supabase_auth_issuer/);
    const [{ users }] = await sql`select count(*)::int as users from public.users`;
    expect(users).toBe(0);
  });

  it('maps them under the issuer the README step sets (db query --remote)', async () => {
    await run(find(/^npx supabase db query --remote "insert into private\.settings/), ['--yes']);
    const [row] = await sql`select value from private.settings where key = 'supabase_auth_issuer'`;
    expect(row.value).toBe(`https://${REF}.supabase.co/auth/v1`);
    await sql`insert into auth.users (id, email, email_confirmed_at) values ('7a000000-0000-4000-8000-000000000002', 'second@hosted.test', now())`;
    const ids = await sql`select issuer, subject from public.user_identities`;
    expect(ids.map((r) => `${r.issuer} ${r.subject}`)).toEqual([`https://${REF}.supabase.co/auth/v1 7a000000-0000-4000-8000-000000000002`]);
  }, 60_000);

  it('makes the first platform super-admin with the README step, found by address whatever its case', async () => {
    const line = find(/^npx supabase db query --remote "insert into public\.platform_admins/).replace('<you@example.com>', 'Second@Hosted.test');
    await run(line, ['--yes']);
    const admins = await sql`select u.email from public.platform_admins a join public.users u on u.id = a.user_id`;
    expect(admins.map((a) => a.email)).toEqual(['second@hosted.test']);
  }, 60_000);

  it('went through without pg_cron and pg_net, which this machine lacks: the schedules were skipped', async () => {
    const [{ n }] = await sql`select count(*)::int as n from pg_extension where extname in ('pg_cron', 'pg_net')`;
    expect(n).toBe(0);
    const [{ runner }] = await sql`select count(*)::int as runner from private.job_schedules`;
    expect(runner).toBeGreaterThan(0);
  });
});

describe('the issuer and the schedule guard on the local database', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await freshDatabase('hosted_guard');
  });
  afterAll(() => db.close());

  it('comes from the local bootstrap, never from a migration', async () => {
    const [row] = await db.sql`select value from private.settings where key = 'supabase_auth_issuer'`;
    expect(row.value).toBe(LOCAL_SUPABASE_ISSUER);
    const dir = path.join(root, 'supabase', 'migrations');
    for (const f of readdirSync(dir)) expect(readFileSync(path.join(dir, f), 'utf8'), f).not.toContain('127.0.0.1');
    expect(readFileSync(bootstrapFile, 'utf8')).toContain(`'${LOCAL_SUPABASE_ISSUER}'`);
  });

  it('refuses to map users when the local setting is removed', async () => {
    await expect(db.sql.begin(async (tx) => {
      await tx`delete from private.settings where key = 'supabase_auth_issuer'`;
      await tx`insert into auth.users (id, email, email_confirmed_at) values ('7a000000-0000-4000-8000-000000000003', 'third@local.test', now())`;
    })).rejects.toThrow(/no supabase_auth_issuer/);
  });

  it('decides each case of the schedule guard', async () => {
    const [r] = await db.sql`
      select private.schedule_skip_reason(true, true, 'postgres', 'postgres') as ok,
             private.schedule_skip_reason(false, true, 'postgres', 'postgres') as no_cron,
             private.schedule_skip_reason(true, false, 'postgres', 'postgres') as no_net,
             private.schedule_skip_reason(true, true, null, 'postgres') as not_preloaded,
             private.schedule_skip_reason(true, true, 'postgres', 'app') as other_db`;
    expect(r).toEqual({
      ok: null,
      no_cron: 'pg_cron is not available',
      no_net: 'pg_net is not available',
      not_preloaded: 'pg_cron is not preloaded (cron.database_name is unset)',
      other_db: 'pg_cron runs in database postgres, not in app',
    });
  });

  it('says why it skips, as a notice, and no API role may call it', async () => {
    const notices: string[] = [];
    const sql = postgres(db.url, { max: 1, onnotice: (n) => notices.push(n.message) });
    try {
      const [{ can }] = await sql`select private.can_schedule(true) as can`;
      expect(can).toBe(false);
      expect(notices).toEqual(['schedule skipped: pg_cron is not available']);
    } finally {
      await sql.end();
    }
    const [p] = await db.sql`
      select has_function_privilege('authenticated', 'private.can_schedule(boolean)', 'execute') as a,
             has_function_privilege('service_role', 'private.schedule_skip_reason(boolean, boolean, text, text)', 'execute') as s`;
    expect(p).toEqual({ a: false, s: false });
  });

  it('guards every extension the migrations create, and pg_net goes to the extensions schema', () => {
    const dir = path.join(root, 'supabase', 'migrations');
    let created = 0;
    // A DO block, with any dollar-quote tag: `do $$ … $$;` or `do $vector$ … $vector$;`.
    const blocks = /\bdo (\$\w*\$)([\s\S]*?)\1;/g;
    for (const f of readdirSync(dir).filter((x) => x.endsWith('.sql'))) {
      const source = readFileSync(path.join(dir, f), 'utf8').replace(/--[^\n]*/g, '');
      for (const [, , block] of source.matchAll(blocks)) {
        const creates = [...block.matchAll(/create extension[^;]*;/gi)].map((m) => m[0]);
        if (!creates.length) continue;
        created += creates.length;
        if (creates.some((x) => /pg_cron|pg_net/.test(x))) {
          // The schedule's extensions: only where the role may create them.
          expect(block, f).toMatch(/if private\.can_schedule\((true|false)\) then/);
        } else {
          // Any other (vector): only where the server offers it, skipping cleanly if not.
          expect(block, f).toMatch(/pg_available_extensions/);
          expect(block, f).toMatch(/exception when others then/);
        }
        for (const c of creates.filter((x) => /pg_net/.test(x))) expect(c, f).toMatch(/with schema extensions/);
        if (creates.some((x) => /pg_net/.test(x))) expect(block, f).toContain('private.can_schedule(true)');
      }
      // No extension is created outside a guarded block.
      const outside = source.replace(blocks, '');
      expect(outside, f).not.toMatch(/create extension/i);
    }
    // pg_cron and pg_net, in the one schedule block of the job runner.
    expect(created).toBeGreaterThanOrEqual(2);
  });
});
