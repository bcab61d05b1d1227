import { defineConfig } from 'vitest/config';

// Worker tests run in workerd with their own config: test/worker/vitest.config.ts.

const GATEWAY_FILES = [
  'test/integration/gateway*.test.ts',
  'test/integration/ui-gateways.test.ts',
  'test/integration/quarantine-across.test.ts',
];

export default defineConfig({
  test: {
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          exclude: GATEWAY_FILES,
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          // Files share the four variant databases (each test uses its own domains), so they may run together.
          fileParallelism: true,
        },
      },
      {
        test: {
          // Files that register gateways: a registered gateway is seen by every job of its state
          // database (the digest job and recovery pass enter each one), so these files get variant
          // databases of their own (global-setup.ts names them per project) and run one at a time.
          name: 'integration-gateways',
          include: GATEWAY_FILES,
          globalSetup: ['test/integration/global-setup.ts'],
          testTimeout: 30_000,
          hookTimeout: 60_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
