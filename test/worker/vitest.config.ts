// The Worker suite: the real functions/worker.ts inside workerd (@cloudflare/vitest-pool-workers
// 0.15.1), against the machine's real MariaDB and PostgreSQL.   npm run test:worker
//
// Two projects run the same test files: worker-mysql (MariaDB, iRedMail's schema) and worker-pg
// (PostgreSQL, upstream's schema). Each project is its own Miniflare with its own DATABASE_URL.
// The global setup (Node) makes and seeds both databases, then hands URLs, ids and keys to the
// projects and the tests with provide/inject.
import './env.ts'; // first: wrangler and miniflare read it
import { fileURLToPath } from 'node:url';
import { cloudflareTest } from '@cloudflare/vitest-pool-workers';
import { defineConfig } from 'vitest/config';
import { workerdCommonJs } from './resolve-plugin.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The bootstrap admin key (ADMIN_API_KEY binding); test/worker/support.ts has the same value. */
const ADMIN_API_KEY = 'worker-test-bootstrap-admin-key-0123456789';

/**
 * After `end()` a driver's socket may still have a read pending; workerd rejects it with one of
 * these once the request is over. They are not test failures: the answer was already complete.
 */
const HARMLESS_AFTER_END = /Stream was cancelled|Network connection lost/;

function workerProject(db: 'mysql' | 'pg') {
  return {
    plugins: [
      workerdCommonJs(),
      cloudflareTest(({ inject }) => ({
        main: './functions/worker.ts',
        wrangler: { configPath: './wrangler.toml' },
        miniflare: {
          bindings: {
            DATABASE_URL: inject('workerSeeds')[db].url,
            ADMIN_API_KEY,
            RESEND_API_KEY: 're_worker_test',
            RESEND_BASE_URL: inject('resendUrl'),
            RESEND_RATE_LIMIT: '0',
            // per project, so each project can tell its own digests apart on the shared twin
            DIGEST_FROM: `Quarantine <digest-${db}@example.test>`,
            PUBLIC_URL: 'https://quarantine.test',
            LINK_SECRET: 'worker-test-link-secret-0123456789abcdef',
            // the gateway registry's sealing key (test/worker/gateways.test.ts): 32 bytes of 7, base64
            GATEWAY_SECRETS_KEY: 'BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=',
            // The seed's mail is dated 2026-01-01 (fixed, for exact assertions); a digest link never
            // outlives the retention of its message, so keep it longer than the seed's age.
            QUARANTINE_RETENTION_DAYS: '3650',
          },
        },
      })),
    ],
    test: {
      name: `worker-${db}`,
      root,
      include: ['test/worker/**/*.test.ts'],
      provide: { workerDb: db },
      testTimeout: 30_000,
      hookTimeout: 60_000,
    },
  };
}

export default defineConfig({
  root,
  // Also here, not only per project: the pool's module fallback service (every require() and
  // import inside workerd that Vite did not transform) resolves with the root Vite server.
  plugins: [workerdCommonJs()],
  test: {
    globalSetup: ['test/worker/global-setup.ts'],
    projects: [workerProject('mysql'), workerProject('pg')],
    onUnhandledError: (error) => (HARMLESS_AFTER_END.test(String(error?.message ?? error)) ? false : undefined),
  },
});
