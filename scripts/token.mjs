// npm run token -- <email> [--tenant <slug>] [--issuer supabase|clerk|supertokens] [--ttl 1h]
// Prints a signed access token for an existing user of the running local stack.
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { root } from './stack.mjs';
import { devKeys, mintToken } from './tokens.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    tenant: { type: 'string' },
    issuer: { type: 'string', default: 'supabase' },
    ttl: { type: 'string', default: '24h' },
    'data-dir': { type: 'string', default: process.env.PLATFORM_DATA_DIR ?? path.join(root, '.local') },
  },
});
const email = positionals[0];
if (!email) {
  console.error('usage: npm run token -- <email> [--tenant <slug>] [--issuer supabase|clerk|supertokens] [--ttl 1h]');
  process.exit(2);
}
try {
  const stack = JSON.parse(await readFile(path.join(values['data-dir'], 'stack.json'), 'utf8'));
  const keys = await devKeys(path.join(values['data-dir'], 'dev-keys.json'));
  console.log(await mintToken({ dbUrl: stack.dbUrl, email, tenant: values.tenant, issuer: values.issuer, secret: stack.secret, keys, ttl: values.ttl }));
} catch (err) {
  console.error(err.code === 'ENOENT' ? 'The local stack has not been started: run `npm start` first.' : err.message);
  process.exit(1);
}
