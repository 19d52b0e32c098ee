// npm run user -- add <email> [--name "First Last"] [--data-dir <dir>]
// Local sign-up: creates a confirmed Supabase Auth user (a row in auth.users) in the
// running local stack's database. The same trigger a hosted project runs on auth.users
// (private.sync_auth_user) creates the platform user, or links the one a super-admin or
// an invitation already named by e-mail, and maps the identity; after that
// `npm run token -- <email>` works for them.
import postgres from 'postgres';
import { dataDirFlag, dataDirOption, parseCommandLine, runningStack, usageExit } from './cli.mjs';
import { issuers } from './tokens.mjs';

const usage = `usage: npm run user -- add <email> [options]

Signs a person up in the running local stack, as Supabase Auth would after they
confirmed their e-mail: a confirmed auth.users row, from which the platform's trigger
creates (or links) their platform user. Then \`npm run token -- <email>\` works for them.

options:
  --name "First Last"  their name (first word: first name, the rest: last name)
  --data-dir <dir>     the data folder the stack was started with (default .local, or PLATFORM_DATA_DIR)
  -h, --help           show this help`;

const { values, positionals } = parseCommandLine(usage, {
  allowPositionals: true,
  options: { name: { type: 'string' }, 'data-dir': dataDirOption() },
});
const [command, rawEmail, ...extra] = positionals;
if (command !== 'add') usageExit(usage, command ? `unknown command ${JSON.stringify(command)}: use add` : 'the command is missing');
if (!rawEmail || extra.length) usageExit(usage, rawEmail ? 'give one e-mail address' : 'the e-mail address is missing');
const email = rawEmail.trim().toLowerCase();
if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email) || email.length > 255) usageExit(usage, `not an e-mail address: ${JSON.stringify(rawEmail)}`);
const name = values.name?.trim().replace(/\s+/g, ' ');
const [firstName, ...rest] = name ? name.split(' ') : [];
const meta = name ? { full_name: name, first_name: firstName, ...(rest.length ? { last_name: rest.join(' ') } : {}) } : {};
const flag = dataDirFlag(values['data-dir']);

let sql;
try {
  const stack = await runningStack(values['data-dir'], 'npm run user -- add <email>');
  sql = postgres(stack.dbUrl, { max: 1, onnotice: () => {} });
  const identity = () => sql`
    select u.id, u.first_name, u.last_name from public.user_identities i join public.users u on u.id = i.user_id
    where i.issuer = ${issuers.supabase} and lower(u.email) = ${email}`;

  const [existing] = await identity();
  if (existing) {
    console.log(`${email} can already sign in locally (platform user ${existing.id}).`);
  } else {
    const [admin] = await sql`
      select u.id from public.users u join public.platform_admins p on p.user_id = u.id where lower(u.email) = ${email}`;
    if (admin) {
      throw new Error(`${email} is a platform admin: the sign-up trigger never links one automatically ` +
        '(an operator maps their identities, as supabase/seed.sql does).');
    }
    await sql.begin(async (tx) => {
      // An earlier, unconfirmed sign-up is confirmed; otherwise the person signs up.
      const confirmed = await tx`
        update auth.users set email_confirmed_at = now(), updated_at = now(),
          raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || ${tx.json(meta)}
        where lower(email) = ${email} and email_confirmed_at is null and deleted_at is null
        returning id`;
      if (!confirmed.length) {
        await tx`
          insert into auth.users (instance_id, id, aud, role, email, email_confirmed_at,
                                  raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
          values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
                  ${email}, now(), ${tx.json({ provider: 'email', providers: ['email'] })}, ${tx.json(meta)}, now(), now())`;
      }
    });
    const [created] = await identity();
    if (!created) {
      throw new Error(`auth.users has ${email}, but the trigger mapped no identity at ${issuers.supabase}: ` +
        "check private.settings' supabase_auth_issuer (it must be that issuer locally).");
    }
    const who = [created.first_name, created.last_name].filter(Boolean).join(' ');
    console.log(`Signed up ${email}${who ? ` (${who})` : ''}: platform user ${created.id}, Supabase Auth identity mapped.`);
  }

  const memberships = await sql`
    select t.slug, m.role from public.memberships m join public.tenants t on t.id = m.tenant_id
    join public.users u on u.id = m.user_id
    where lower(u.email) = ${email} and t.status <> 'deleted' order by t.slug`;
  const invitations = await sql`
    select i.id, t.slug, i.role from public.invitations i join public.tenants t on t.id = i.tenant_id
    where i.email = ${email} and i.accepted_at is null and i.expires_at > now() and t.status = 'active'
    order by i.created_at`;
  for (const m of memberships) console.log(`  member of ${m.slug} (${m.role})`);
  for (const i of invitations) {
    console.log(`  invited to ${i.slug} as ${i.role}: accept with POST /functions/v1/tenants/invitations/${i.id}/accept`);
  }
  const tenant = memberships[0]?.slug ?? invitations[0]?.slug;
  console.log(`Token: npm run -s token -- ${email}${tenant ? ` --tenant ${tenant}` : ''}${flag}`);
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exitCode = 1;
} finally {
  await sql?.end();
}
