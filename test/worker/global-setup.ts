/**
 * Runs in Node, once per `npm run test:worker`, before workerd starts: one fresh database per
 * driver (MariaDB with iRedMail's schema, PostgreSQL with upstream's), seeded, under names of their
 * own (suffix `wk<pid>`) so the integration suite can run at the same time. It also starts the e2e
 * harness's amavisd for each backend (fixed ports, database qe_e2e_amavisd): the worker suite and
 * the e2e suite (or a second worker run) take turns, as `npm test` runs them.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startRelay } from '../../functions/relay.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { createEmptyDatabase, dropDatabase, dropVariantDatabase } from '../support/databases.ts';
import { startResendTwin } from '../support/resend-server.ts';
import { type RealAmavisd, startRealAmavisd } from './real-amavisd.ts';
import { SUFFIX, seedWorkerDatabase, type WorkerSeed } from './seed.ts';

export default async function setup(project: TestProject) {
  const [mysql, pg] = await Promise.all([seedWorkerDatabase('mysql-iredmail'), seedWorkerDatabase('pg-upstream')]);
  project.provide('workerSeeds', { mysql, pg });
  // A state database apart for each project, of the other server kind (README "State in its own
  // database"): MariaDB's amavisd with the state on PostgreSQL, and the other way round.
  const [pgState, mysqlState] = [await stateDatabase('postgres'), await stateDatabase('mysql')];
  project.provide('workerStateUrls', { mysql: pgState, pg: mysqlState });
  // Digests from inside workerd go to this Resend-compatible server (Node side).
  const resend = await startResendTwin();
  project.provide('resendUrl', resend.url);
  // Reports to the spam filter from inside workerd go through this relay to the real sa-learn.
  // One per project: both seeds hold the same messages, which one Bayes database would learn once.
  const bayes = mkdtempSync(path.join(tmpdir(), 'qe-worker-bayes-'));
  const learnRelay = (db: string) =>
    startRelay({
      secret: LEARN_RELAY_SECRET,
      pdp: '127.0.0.1:9',
      learnCommand: `sa-learn --dbpath ${bayes}/${db} --{kind} -`,
      log: { info() {}, warn() {}, error() {} },
    });
  const relays = { mysql: await learnRelay('mysql'), pg: await learnRelay('pg') };
  project.provide('learnRelay', { mysql: relays.mysql.url, pg: relays.pg.url, secret: LEARN_RELAY_SECRET });
  // A real amavisd-new per backend (the harness's own ports and database), for the one path that
  // must end in a delivery: an approved release request (test/worker/real-release.test.ts).
  // Both at once (their own ports, lock files and databases); if one fails, the other is stopped.
  const started = await Promise.allSettled([startRealAmavisd('mariadb'), startRealAmavisd('pg')]);
  const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const errors = started.flatMap((r) => (r.status === 'rejected' ? [r.reason] : []));
  if (errors.length) {
    for (const r of ok) await r.stop();
    throw errors[0];
  }
  const real = { mysql: ok[0]!, pg: ok[1]! };
  project.provide('realAmavisd', { mysql: real.mysql.real, pg: real.pg.real });
  return async () => {
    await real.mysql.stop();
    await real.pg.stop();
    await relays.mysql.close();
    await relays.pg.close();
    rmSync(bayes, { recursive: true, force: true });
    await resend.close();
    await dropVariantDatabase('mysql-iredmail', { suffix: SUFFIX });
    await dropVariantDatabase('pg-upstream', { suffix: SUFFIX });
    await dropDatabase('postgres', STATE_NAME);
    await dropDatabase('mysql', STATE_NAME);
  };
}

const STATE_NAME = `qe_wstate_${SUFFIX}`;

/** An empty database of this kind with our tables migrated: a state database apart. */
async function stateDatabase(server: 'mysql' | 'postgres'): Promise<string> {
  const url = await createEmptyDatabase(server, STATE_NAME);
  const h = await openDatabase({ url, runtime: 'node', poolSize: 1 });
  try {
    await migrate(h.db, h.dialect, await loadMigrationFiles(h.dialect), () => Date.now());
  } finally {
    await h.close();
  }
  return url;
}

const LEARN_RELAY_SECRET = 'worker-test-learn-relay-secret-0123456789';

declare module 'vitest' {
  export interface ProvidedContext {
    workerSeeds: { mysql: WorkerSeed; pg: WorkerSeed };
    /** which of workerSeeds this project's Worker is bound to (set per project in the config) */
    workerDb: 'mysql' | 'pg';
    /** per project: a migrated state database of the other server kind, for STATE_DATABASE_URL */
    workerStateUrls: { mysql: string; pg: string };
    /** the Resend twin the Worker's RESEND_BASE_URL points to */
    resendUrl: string;
    /** a relay that runs the real sa-learn (its AM.PDP goes nowhere) */
    learnRelay: { mysql: string; pg: string; secret: string };
    /** a real amavisd-new with one quarantined banned message, its relay and its sink */
    realAmavisd: { mysql: RealAmavisd; pg: RealAmavisd };
  }
}
