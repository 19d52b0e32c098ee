// `npm run test:n8n`: the n8n connector against the real n8n (installed on demand into
// .partners/n8n/, scripts/n8n-real.mjs). Not part of `npm test` (vitest.config.ts only
// includes tests/**/*.test.ts outside tests/partners-real/).
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['tests/partners-real/**/*.real.test.ts'],
    globalSetup: ['tests/setup/global-setup.ts', 'tests/partners-real/global-setup.ts'],
    reporters: ['default', './tests/setup/summary-reporter.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 1,
  },
});
