/**
 * `quarantine-edge <command>`: serve | demo | migrate | keys | release | delete | relay | notify | purge.
 * Every command parses the environment with the Worker's parser.
 */
import { parseArgs } from 'node:util';
import { ConfigError, parseConfig, type Config } from '../src/config.ts';
import { createKey, listKeys, revokeKey } from '../src/auth/keys.ts';
import type { Identity } from '../src/auth/identity.ts';
import { detectSchema } from '../src/amavis/schema.ts';
import { loadMigrationFiles } from '../src/db/drivers/files.ts';
import { migrate } from '../src/db/migrations.ts';
import { checkRecommendedIndexes, createRecommendedIndexes } from '../src/db/recommended-indexes.ts';
import type { DbHandle } from '../src/db/connect.ts';
import { consoleLogger } from '../src/deps.ts';
import { seedDemo } from '../src/demo/seed.ts';
import { startScheduler } from '../src/jobs/scheduler.node.ts';
import { startSandboxPdp, type SandboxPdp } from '../src/release/sandbox-pdp.node.ts';
import { JOB_BOUNDS, listen, openNodeDatabase, startRuntime } from './node.ts';
import { parseItemId } from '../src/amavis/mail-id.ts';
import { normalizeAddress } from '../src/amavis/address.ts';
import { AppError } from '../src/errors.ts';
import { releaseMessage } from '../src/quarantine/release.ts';
import { deleteMessage } from '../src/quarantine/delete.ts';
import { purge, purgeSummary } from '../src/retention/purge.ts';
import { DEFAULT_AMAVISD_PDP, startRelay } from './relay.ts';
import { runDigest, systemIdentity, type RunReport } from '../src/digest/run.ts';
import { summarize } from '../src/digest/job.ts';

const USAGE = `usage: quarantine-edge <command> [options]

  serve                 the API on Node (HOST, default 0.0.0.0; PORT; DATABASE_URL, unset = embedded database)
  demo                  the API over an embedded database filled with demo quarantine data
  relay [--host H]      the on-host release relay: signed HTTP on RELAY_PORT (default 8788, on
                        127.0.0.1 unless --host), AM.PDP to AMAVISD_PDP (default 127.0.0.1:9998);
                        needs RELAY_SECRET
  migrate               create or update quarantine-edge's own tables (qe_*) in DATABASE_URL
  migrate --recommended-indexes [--dry-run]
                        add the opt-in indexes on amavisd's tables that fast filtered and scoped
                        listing needs (online; BENCHMARKS.md); --dry-run only shows them
  release <id> [--recipient A ...]   release through AMAVISD_PDP or the relay (as admin "cli")
  delete <id> [--recipient A ...]
  purge [--dry-run]     remove quarantined mail older than QUARANTINE_RETENTION_DAYS (30), released/
                        deleted mail older than RELEASED_RETENTION_DAYS (7), then orphans; prints counts
  keys create --name N --role admin|domain_admin|user [--domain D ...] [--mailbox M]
  keys list
  keys revoke <id>
  notify [--force-all] [--force-all-time] [--notify-backupmx] [--dry-run] [--recipient A ...]
                        send quarantine digests now (the seed's flags; for a system cron on Node,
                        or let \`serve\` run them every 15 minutes)

Configuration comes from the environment; see README.md.`;

/** `notify`'s exit code when digests were held by another run's claim (sysexits EX_TEMPFAIL) */
const NOTIFY_HELD = 75;

const cliAdmin: Identity = { role: 'admin', actor: 'cli', keyId: null };

function fail(message: string, code = 1): never {
  console.error(message);
  process.exit(code);
}

function config(): Config {
  try {
    return parseConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message, 2);
    throw err;
  }
}

function onSignals(close: () => Promise<void>) {
  const stop = () => void close().finally(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

async function serveCommand() {
  const cfg = config();
  const runtime = await startRuntime(cfg);
  const server = await listen(runtime, cfg.PORT, cfg.HOST);
  // The scheduled digests and purge run on their own small pool with the jobs' bounds; the API's
  // pool keeps its short ones (DB_*_TIMEOUT_MS).
  const jobs = runtime.handle.driver === 'pglite' ? runtime.handle : await openNodeDatabase(cfg, 2, JOB_BOUNDS);
  const scheduler = startScheduler({ ...runtime.deps, db: jobs.db });
  if (runtime.handle.driver !== 'pglite') await hintRecommendedIndexes(runtime.handle);
  consoleLogger.info('quarantine-edge listening', { host: cfg.HOST, port: cfg.PORT, driver: runtime.handle.driver, schema: runtime.variant.name });
  onSignals(async () => {
    scheduler.stop();
    server.close();
    if (jobs !== runtime.handle) await jobs.close();
    await runtime.close();
  });
}

async function demoCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { messages: { type: 'string', default: '400' } } });
  const cfg = config();
  if (cfg.DATABASE_URL) console.warn('demo: DATABASE_URL is ignored; the demo always runs on a fresh embedded database');
  const adminKey = cfg.ADMIN_API_KEY ?? `qe_demo_${crypto.randomUUID().replace(/-/g, '')}`;
  // The pages (/ui) sign their sessions with LINK_SECRET; the demo makes one when it is not set.
  const linkSecret = cfg.LINK_SECRET ?? `demo-${crypto.randomUUID()}${crypto.randomUUID()}`;
  const demoCfg: Config = { ...cfg, DATABASE_URL: undefined, ADMIN_API_KEY: adminKey, LINK_SECRET: linkSecret };
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

async function relayCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { host: { type: 'string', default: '127.0.0.1' } } });
  const cfg = config();
  if (!cfg.RELAY_SECRET) {
    fail('relay: RELAY_SECRET is not set. Set it to the same value (at least 32 characters) as the API\'s RELAY_SECRET.', 2);
  }
  const pdp = cfg.AMAVISD_PDP ?? DEFAULT_AMAVISD_PDP;
  const relay = await startRelay({
    secret: cfg.RELAY_SECRET, pdp, port: cfg.RELAY_PORT, host: values.host,
    limit: { max: cfg.AMAVISD_PDP_CONCURRENCY, maxWaitMs: cfg.AMAVISD_PDP_WAIT_SECONDS * 1000 },
  });
  consoleLogger.info('quarantine-edge relay listening', { url: relay.url, amavisd_pdp: pdp });
  onSignals(() => relay.close());
}

async function migrateCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { 'recommended-indexes': { type: 'boolean', default: false }, 'dry-run': { type: 'boolean', default: false } } });
  const cfg = config();
  if (!cfg.DATABASE_URL) fail('migrate: set DATABASE_URL (the embedded database migrates itself)', 2);
  // An index on a large msgs table takes minutes: statements are bounded by the hour here.
  const handle = await openNodeDatabase(cfg, 1, { queryMs: 3_600_000, lockMs: JOB_BOUNDS.lockMs });
  try {
    if (values['recommended-indexes']) return await recommendedIndexesCommand(handle, values['dry-run']);
    if (values['dry-run']) fail('migrate: --dry-run goes with --recommended-indexes', 2);
    try {
      const v = await detectSchema(handle.db, handle.dialect);
      console.log(`amavisd schema: ${v.name}`);
    } catch (err) {
      console.warn(`warning: ${(err as Error).message}`);
    }
    const applied = await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
  } finally {
    await handle.close();
  }
}

/** One line at start when the opt-in indexes are missing: the admin decides, nothing is created. */
async function hintRecommendedIndexes(handle: DbHandle) {
  try {
    const missing = (await checkRecommendedIndexes(handle.db, handle.dialect)).filter((s) => !s.servedBy).map((s) => s.index.name);
    if (missing.length) {
      consoleLogger.info('optional indexes for large quarantines are missing: see `quarantine-edge migrate --recommended-indexes --dry-run`', { missing });
    }
  } catch (err) {
    consoleLogger.warn('could not read the indexes of amavisd\'s tables', { error: (err as Error).message });
  }
}

/** `migrate --recommended-indexes [--dry-run]`: the opt-in indexes on amavisd's tables (BENCHMARKS.md). */
async function recommendedIndexesCommand(handle: DbHandle, dryRun: boolean) {
  await detectSchema(handle.db, handle.dialect); // refuses a database without amavisd's tables
  const status = await checkRecommendedIndexes(handle.db, handle.dialect);
  for (const s of status) {
    console.log(s.servedBy
      ? `ok       ${s.index.name}: served by ${s.servedBy}`
      : `missing  ${s.index.name}: ${s.index.why}\n         ${s.statement}`);
  }
  if (dryRun) return console.log('dry run: nothing created');
  const created = await createRecommendedIndexes(handle.db, handle.dialect, (m) => console.log(m));
  console.log(created.length ? `created: ${created.join(', ')}` : 'nothing to create');
}

/** `release <id> [--recipient A ...]` and `delete <id> [--recipient A ...]`: the API's verbs, as admin "cli". */
async function actionCommand(action: 'release' | 'delete', args: string[]) {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { recipient: { type: 'string', multiple: true } } });
  const key = positionals[0] ? parseItemId(positionals[0]) : null;
  if (!key) fail(`usage: quarantine-edge ${action} <partition_tag>.<mail_id> [--recipient ADDRESS ...]`, 2);
  const recipients = values.recipient?.map((r) => normalizeAddress(r) ?? fail(`not an address: ${JSON.stringify(r)}`, 2));
  const cfg = config();
  const runtime = await startRuntime(cfg);
  const deps = runtime.deps;
  try {
    const result = action === 'release'
      ? await releaseMessage(deps, cliAdmin, { key, recipients })
      : await deleteMessage(deps, cliAdmin, { key, recipients });
    console.log(JSON.stringify(result, null, 2));
    if ('status' in result && result.status !== 'released') process.exitCode = 1;
  } catch (err) {
    if (err instanceof AppError) fail(`${action}: ${err.message}`, 1);
    throw err;
  } finally {
    await runtime.close();
  }
}

/** `purge [--dry-run]`: the purge cron job, once, now. */
async function purgeCommand(args: string[]) {
  const { values } = parseArgs({ args, options: { 'dry-run': { type: 'boolean', default: false } } });
  const runtime = await startRuntime(config(), { bounds: 'jobs' });
  try {
    const report = await purge(runtime.deps, { dryRun: values['dry-run'] });
    console.log(purgeSummary(report));
    console.log(JSON.stringify(report));
  } finally {
    await runtime.close();
  }
}

/** `notify`: one digest run, a progress line on a terminal, a summary line at the end. */
async function notifyCommand(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      'force-all': { type: 'boolean', default: false },
      'force-all-time': { type: 'boolean', default: false },
      'notify-backupmx': { type: 'boolean', default: false },
      'dry-run': { type: 'boolean', default: false },
      recipient: { type: 'string', multiple: true },
    },
  });
  const recipients = values.recipient?.map((r) => normalizeAddress(r) ?? fail(`not an address: ${JSON.stringify(r)}`, 2));
  const runtime = await startRuntime(config(), { bounds: 'jobs' });
  const tty = process.stderr.isTTY;
  try {
    const report = await runDigest(runtime.deps, systemIdentity, {
      forceAll: values['force-all'], allTime: values['force-all-time'], includeBackupMx: values['notify-backupmx'],
      dryRun: values['dry-run'], recipients,
      onProgress: (r: RunReport) => {
        if (tty) process.stderr.write(`\r${r.dry_run ? 'planned' : 'sent'} ${r.dry_run ? r.recipients : r.sent}, skipped ${r.skipped}, failed ${r.failed} (page ${r.pages})   `);
      },
    });
    if (tty) process.stderr.write('\n');
    if (report.dry_run) for (const p of report.planned) console.log(`${p.recipient}\t${p.messages}`);
    for (const e of report.errors) console.error(`failed: ${e.recipient}: ${e.error}`);
    for (const r of report.held_recipients) console.error(`held: ${r}: claimed by another run, not settled`);
    console.log(summarize(report));
    // 1: a digest failed; 75 (EX_TEMPFAIL): none failed, but some were in another run's hands (a
    // dead run's claim lapses after 10 minutes): run again later. Never 0 while someone got nothing.
    if (report.failed) process.exitCode = 1;
    else if (report.held) process.exitCode = NOTIFY_HELD;
  } catch (err) {
    if (err instanceof AppError) fail(`notify: ${err.message}`, 2);
    throw err;
  } finally {
    await runtime.close();
  }
}

async function keysCommand(args: string[]) {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: 'string' },
      role: { type: 'string' },
      domain: { type: 'string', multiple: true },
      mailbox: { type: 'string' },
    },
  });
  const cfg = config();
  const runtime = await startRuntime(cfg);
  const deps = runtime.deps;
  try {
    const [sub, id] = positionals;
    if (sub === 'list') {
      for (const k of await listKeys(deps, cliAdmin)) {
        console.log([k.id, k.role, k.name, k.domains?.join(',') ?? k.mailbox ?? '', k.revoked_at ? 'revoked' : 'active'].join('\t'));
      }
    } else if (sub === 'revoke' && id) {
      await revokeKey(deps, cliAdmin, id);
      console.log(`revoked ${id}`);
    } else if (sub === 'create') {
      const role = values.role;
      if (!values.name || (role !== 'admin' && role !== 'domain_admin' && role !== 'user')) {
        fail('keys create needs --name and --role admin|domain_admin|user', 2);
      }
      const k = await createKey(deps, cliAdmin, { name: values.name, role, domains: values.domain, mailbox: values.mailbox }).catch((err: unknown) => {
        if (err instanceof AppError) fail(`keys create: ${err.message}`, 2);
        throw err;
      });
      console.log(`${k.id}\t${k.key}\n(the key is shown only now)`);
    } else {
      fail(USAGE, 2);
    }
  } finally {
    await runtime.close();
  }
}

const [command, ...rest] = process.argv.slice(2);
const commands: Record<string, (args: string[]) => Promise<void>> = {
  serve: serveCommand,
  demo: demoCommand,
  migrate: migrateCommand,
  keys: keysCommand,
  release: (args) => actionCommand('release', args),
  delete: (args) => actionCommand('delete', args),
  relay: relayCommand,
  notify: notifyCommand,
  purge: purgeCommand,
};
const run = command ? commands[command] : undefined;
if (!run) fail(USAGE, command && command !== 'help' && command !== '--help' ? 2 : 0);
run(rest).catch((err: Error) => fail(`quarantine-edge ${command}: ${err.message}`));
