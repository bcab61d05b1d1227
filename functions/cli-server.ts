/** The long-running commands and the database set-up: serve, demo, relay, migrate. */
import { parseArgs } from 'node:util';
import { stateApart, type Config } from '../src/config.ts';
import { SchemaError, detectSchema } from '../src/amavis/schema.ts';
import { loadMigrationFiles } from '../src/db/drivers/files.ts';
import { migrate } from '../src/db/migrations.ts';
import { checkRecommendedIndexes, createRecommendedIndexes } from '../src/db/recommended-indexes.ts';
import type { DbHandle } from '../src/db/connect.ts';
import { consoleLogger } from '../src/deps.ts';
import { seedDemo } from '../src/demo/seed.ts';
import { startScheduler } from '../src/jobs/scheduler.node.ts';
import { startSandboxPdp, type SandboxPdp } from '../src/release/sandbox-pdp.node.ts';
import { JOB_BOUNDS, listen, openNodeDatabase, startRuntime } from './node.ts';
import { DEFAULT_AMAVISD_PDP, startRelay } from './relay.ts';
import { config, databaseConfig, fail, onSignals } from './cli-shared.ts';

export async function serveCommand() {
  const cfg = databaseConfig('serve');
  const runtime = await startRuntime(cfg);
  const server = await listen(runtime, cfg.PORT, cfg.HOST);
  // The scheduled digests and purge run on their own small pool with the jobs' bounds; the API's
  // pool keeps its short ones (DB_*_TIMEOUT_MS).
  const jobs = runtime.handle.driver === 'pglite' ? runtime.handle : await openNodeDatabase(cfg, 2, JOB_BOUNDS);
  // our tables: with amavisd's (the jobs' pool), or apart (a jobs' pool of the state database's own)
  const state = runtime.state;
  const jobsState = !state ? jobs : state.driver === 'pglite' ? state : await openNodeDatabase(cfg, 2, JOB_BOUNDS, 'state');
  const scheduler = startScheduler({ ...runtime.deps, db: jobs.db, state: jobsState.db }, { gateways: runtime.gateways });
  if (runtime.handle.driver !== 'pglite') await hintRecommendedIndexes(runtime.handle);
  consoleLogger.info('quarantine-edge listening', {
    host: cfg.HOST,
    port: cfg.PORT,
    driver: runtime.handle.driver,
    schema: runtime.variant.name,
    jobs: scheduler.jobs,
    ...(runtime.variant.lookup.missing.length ? { lookup_tables_missing: runtime.variant.lookup.missing } : {}),
  });
  onSignals(async () => {
    scheduler.stop();
    server.close();
    if (jobs !== runtime.handle) await jobs.close();
    if (jobsState !== jobs && jobsState !== state) await jobsState.close();
    await runtime.close();
  });
}

export async function demoCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { messages: { type: 'string', default: '400' } } });
  const cfg = config();
  if (cfg.DATABASE_URL) console.warn('demo: DATABASE_URL is ignored; the demo always runs on a fresh embedded database');
  const adminKey = cfg.ADMIN_API_KEY ?? `qe_demo_${crypto.randomUUID().replace(/-/g, '')}`;
  // The pages (/ui) sign their sessions with LINK_SECRET; the demo makes one when it is not set.
  const linkSecret = cfg.LINK_SECRET ?? `demo-${crypto.randomUUID()}${crypto.randomUUID()}`;
  const demoCfg: Config = {
    ...cfg,
    DATABASE_URL: undefined,
    STATE_DATABASE_URL: undefined,
    ADMIN_API_KEY: adminKey,
    LINK_SECRET: linkSecret,
  };
  const n = Number(values.messages);
  if (!Number.isInteger(n) || n < 1 || n > 100000) fail('--messages must be an integer from 1 to 100000', 2);
  console.log('Starting the embedded database (a few seconds)...');
  // No amavisd here: releases go to a sandbox AM.PDP peer that checks ids as amavisd does and
  // writes the released mail to an outbox folder instead of delivering it.
  let sandbox: SandboxPdp | undefined;
  const runtime = await startRuntime(demoCfg, {
    release: async (handle, variant) => (sandbox = await startSandboxPdp({ db: handle.db, variant, log: consoleLogger })).transport,
  });
  const seeded = await seedDemo(runtime.handle.db, runtime.variant, { messages: n, now: Math.floor(Date.now() / 1000) });
  const server = await listen(runtime, cfg.PORT, cfg.HOST);
  const base = `http://localhost:${cfg.PORT}`;
  console.log(`
quarantine-edge demo: ${seeded} messages in an embedded database (schema ${runtime.variant.name})

  API docs   ${base}/docs
  Web pages  ${base}/ui   (sign in with the admin key)
  Admin key  ${adminKey}${cfg.ADMIN_API_KEY ? '   (from ADMIN_API_KEY)' : '   (generated; set ADMIN_API_KEY to choose one)'}

  Releases  go to a SANDBOX AM.PDP peer (no mail is delivered): released messages are written to
            ${sandbox?.outbox}

  curl -H "Authorization: Bearer ${adminKey}" "${base}/v1/quarantine?limit=5"
`);
  onSignals(async () => {
    server.close();
    await sandbox?.close();
    await runtime.close();
  });
}

export async function relayCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { host: { type: 'string', default: '127.0.0.1' } } });
  const cfg = config();
  if (!cfg.RELAY_SECRET) {
    fail("relay: RELAY_SECRET is not set. Set it to the same value (at least 32 characters) as the API's RELAY_SECRET.", 2);
  }
  const pdp = cfg.AMAVISD_PDP ?? DEFAULT_AMAVISD_PDP;
  const relay = await startRelay({
    secret: cfg.RELAY_SECRET,
    pdp,
    port: cfg.RELAY_PORT,
    host: values.host,
    limit: { max: cfg.AMAVISD_PDP_CONCURRENCY, maxWaitMs: cfg.AMAVISD_PDP_WAIT_SECONDS * 1000 },
    learnCommand: cfg.SA_LEARN_COMMAND,
  });
  consoleLogger.info('quarantine-edge relay listening', { url: relay.url, amavisd_pdp: pdp });
  onSignals(() => relay.close());
}

export async function migrateCommand(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      'recommended-indexes': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      'without-amavisd': { type: 'boolean', default: false },
    },
  });
  const cfg = databaseConfig('migrate');
  // An index on a large msgs table takes minutes: statements are bounded by the hour here.
  const handle = await openNodeDatabase(cfg, 1, { queryMs: 3_600_000, lockMs: JOB_BOUNDS.lockMs });
  try {
    if (values['recommended-indexes']) return await recommendedIndexesCommand(handle, values['dry-run']);
    if (values['dry-run']) fail('migrate: --dry-run goes with --recommended-indexes', 2);
    try {
      const v = await detectSchema(handle.db, handle.dialect);
      console.log(`amavisd schema: ${v.name}`);
      if (v.lookup.missing.length) console.warn(`note: ${v.lookup.detail}`);
    } catch (err) {
      // The same refusal as `serve`: qe_* tables beside no amavisd are a wrong DATABASE_URL, not a start.
      if (!(err instanceof SchemaError) || !values['without-amavisd']) {
        if (err instanceof SchemaError)
          fail(`quarantine-edge migrate: ${err.message}\n(--without-amavisd creates quarantine-edge's tables anyway)`, 1);
        throw err;
      }
      console.warn(`warning: ${err.message} (--without-amavisd: creating quarantine-edge's tables anyway)`);
    }
    // our tables go where the server keeps them: STATE_DATABASE_URL when set (README "State in its own database")
    const target = stateApart(cfg) ? await openNodeDatabase(cfg, 1, { queryMs: 3_600_000, lockMs: JOB_BOUNDS.lockMs }, 'state') : handle;
    try {
      if (target !== handle) console.log('quarantine-edge tables: in STATE_DATABASE_URL');
      const applied = await migrate(target.db, target.dialect, await loadMigrationFiles(target.dialect), () => Date.now());
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
    } finally {
      if (target !== handle) await target.close();
    }
  } finally {
    await handle.close();
  }
}

/** One line at start when the opt-in indexes are missing: the admin decides, nothing is created. */
async function hintRecommendedIndexes(handle: DbHandle) {
  try {
    const missing = (await checkRecommendedIndexes(handle.db, handle.dialect)).filter((s) => !s.servedBy).map((s) => s.index.name);
    if (missing.length) {
      consoleLogger.info(
        'optional indexes for large quarantines are missing: see `quarantine-edge migrate --recommended-indexes --dry-run`',
        { missing },
      );
    }
  } catch (err) {
    consoleLogger.warn("could not read the indexes of amavisd's tables", { error: (err as Error).message });
  }
}

/** `migrate --recommended-indexes [--dry-run]`: the opt-in indexes on amavisd's tables (BENCHMARKS.md). */
async function recommendedIndexesCommand(handle: DbHandle, dryRun: boolean) {
  await detectSchema(handle.db, handle.dialect); // refuses a database without amavisd's tables
  const status = await checkRecommendedIndexes(handle.db, handle.dialect);
  for (const s of status) {
    console.log(
      s.servedBy
        ? `ok       ${s.index.name}: served by ${s.servedBy}`
        : `missing  ${s.index.name}: ${s.index.why}\n         ${s.statement}`,
    );
  }
  if (dryRun) return console.log('dry run: nothing created');
  const created = await createRecommendedIndexes(handle.db, handle.dialect, (m) => console.log(m));
  console.log(created.length ? `created: ${created.join(', ')}` : 'nothing to create');
}
