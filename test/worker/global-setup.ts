/**
 * Runs in Node, once per `npm run test:worker`, before workerd starts: one fresh database per
 * driver (MariaDB with iRedMail's schema, PostgreSQL with upstream's), seeded, under names of their
 * own (suffix `wk<pid>`) so the integration suite can run at the same time.
 */
import type { TestProject } from 'vitest/node';
import { dropVariantDatabase } from '../support/databases.ts';
import { startResendTwin } from '../support/resend-server.ts';
import { SUFFIX, seedWorkerDatabase, type WorkerSeed } from './seed.ts';

export default async function setup(project: TestProject) {
  const [mysql, pg] = await Promise.all([seedWorkerDatabase('mysql-iredmail'), seedWorkerDatabase('pg-upstream')]);
  project.provide('workerSeeds', { mysql, pg });
  // Digests from inside workerd go to this Resend-compatible server (Node side).
  const resend = await startResendTwin();
  project.provide('resendUrl', resend.url);
  return async () => {
    await resend.close();
    await dropVariantDatabase('mysql-iredmail', { suffix: SUFFIX });
    await dropVariantDatabase('pg-upstream', { suffix: SUFFIX });
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    workerSeeds: { mysql: WorkerSeed; pg: WorkerSeed };
    /** which of workerSeeds this project's Worker is bound to (set per project in the config) */
    workerDb: 'mysql' | 'pg';
    /** the Resend twin the Worker's RESEND_BASE_URL points to */
    resendUrl: string;
  }
}
