// npm run token -- <email> [--tenant <slug>] [--issuer supabase|clerk|supertokens] [--ttl 1h] [--data-dir <dir>]
// Prints a signed access token for an existing user of the running local stack.
import path from 'node:path';
import { dataDirOption, parseCommandLine, runningStack, usageExit } from './cli.mjs';
import { devKeys, mintToken } from './tokens.mjs';

const usage = `usage: npm run token -- <email> [options]

Prints an access token of the running local stack for a person with a local sign-in
(the seeded identities, or someone added with \`npm run user -- add <email>\`).

options:
  --tenant <slug|id>   bind the token to a tenant (its tenant claim)
  --issuer <name>      supabase (default, HS256), clerk or supertokens (RS256)
  --ttl <duration>     lifetime, e.g. 1h, 30m (default 24h)
  --data-dir <dir>     the data folder the stack was started with (default .local, or PLATFORM_DATA_DIR)
  -h, --help           show this help`;

const { values, positionals } = parseCommandLine(usage, {
  allowPositionals: true,
  options: {
    tenant: { type: 'string' },
    issuer: { type: 'string', default: 'supabase' },
    ttl: { type: 'string', default: '24h' },
    'data-dir': dataDirOption(),
  },
});
if (positionals.length !== 1) usageExit(usage, positionals.length ? 'give one e-mail address' : 'the e-mail address is missing');
const email = positionals[0];
try {
  const dataDir = values['data-dir'];
  const stack = await runningStack(dataDir, 'npm run token -- <email>');
  const keys = await devKeys(path.join(dataDir, 'dev-keys.json'));
  console.log(await mintToken({ dbUrl: stack.dbUrl, email, tenant: values.tenant, issuer: values.issuer, secret: stack.secret, keys, ttl: values.ttl }));
} catch (err) {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
}
