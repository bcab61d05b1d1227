// Config for the amavisd e2e harness tests, standalone so it works whatever the root config does:
//   npx vitest run --config test/e2e/harness/vitest.config.ts
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  root: fileURLToPath(new URL('../../..', import.meta.url)),
  test: {
    include: ['test/e2e/harness/**/*.test.ts'],
    pool: 'forks',
    // one harness per backend at a time: fixed ports, one database per backend
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 180_000,
    teardownTimeout: 60_000,
  },
});
