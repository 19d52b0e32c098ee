import { configDefaults, defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/**/*.test.ts'],
    // The real partners run with `npm run test:n8n` (vitest.n8n.config.ts).
    exclude: [...configDefaults.exclude, 'tests/partners-real/**'],
    benchmark: { include: ['tests/bench/**/*.bench.ts'] },
    globalSetup: ['tests/setup/global-setup.ts'],
    reporters: ['default', './tests/setup/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // Each file gets its own database cloned from the migrated template; the work is
    // in Postgres, so a couple of workers keep a 2-core machine busy without thrashing.
    maxWorkers: 3,
  },
});
