// One embedded PostgreSQL for the whole run, in a temp folder on a free port. The
// platform bootstrap and every migration (pushed by the real Supabase CLI) go into a
// template database once, plus the seed; each test file clones its own database from it.
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createDatabase, freePort, migrate, runSqlFile, seedFile, startEmbeddedPostgres, withDatabase } from '../../scripts/stack.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    templateDb: string;
  }
}

export const TEMPLATE_DB = 'platform_template';

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'platform-test-'));
  const port = await freePort();
  const { pg, url } = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port, fast: true });
  try {
    const templateUrl = await createDatabase(url, TEMPLATE_DB);
    await migrate(templateUrl);
    await runSqlFile(templateUrl, seedFile);
  } catch (err) {
    await pg.stop();
    throw err;
  }
  project.provide('pgUrl', url);
  project.provide('templateDb', TEMPLATE_DB);
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
  };
}

export { withDatabase };
