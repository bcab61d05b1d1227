// End-to-end harness: a real amavisd-new (Debian 12, 2.13) with its own config file, ports,
// directories (/tmp/qe-e2e-<db>), database (qe_e2e_amavisd) and an in-process SMTP sink.
// It never touches another amavisd on the machine (e.g. the lab's on 10024/9998/10025).
// Prerequisite: test/e2e/harness/install.sh has run as root; the harness itself must run as root
// (amavisd starts as root and drops to the `amavis` user).
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { amavisdConfig } from './config.ts';
import * as db from './db.ts';
import { startSink, type Sink, type SinkMessage, type SinkPolicy } from './sink.ts';
import { smtpSend, type SmtpReply } from './smtp-client.ts';
import { waitForMsg, type MsgRow } from './msgs.ts';
import { acquireLock, amavisIds, banner, portOpen, processAlive, releaseLock, sleep, stopAmavisd } from './proc.ts';

export * from './messages.ts';
export type { SinkMessage, SinkMode, SinkPolicy } from './sink.ts';
export type { SmtpReply } from './smtp-client.ts';
export { SmtpError } from './smtp-client.ts';
export type { Db, DbKind, SchemaVariant } from './db.ts';
export { waitForMsg, type MsgRow, type MsgRcptRow } from './msgs.ts';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const DEFAULT_SCHEMA_DIR = path.resolve(HERE, '../../../fixtures/amavisd-schema');
const AMAVISD = process.env.QE_E2E_AMAVISD ?? '/usr/sbin/amavisd';
const SA_MODULE = '/usr/share/perl5/Mail/SpamAssassin.pm';

/** Fixed per backend, so a MariaDB and a PostgreSQL harness can run side by side. */
export const PORTS = {
  mariadb: { smtp: 10124, pdp: 9988, sink: 10125 },
  pg: { smtp: 10134, pdp: 9989, sink: 10135 },
} as const;

export interface StartOptions {
  db: db.DbKind;
  /** Default: SpamAssassin if installed (then GTUBE is spam; the blacklisted sender always is). */
  spamAssassin?: boolean;
  /** Also read policy / users / wblist from SQL (@lookup_sql_dsn); the schema must have them. */
  lookupSql?: boolean;
  /** Which fixture schema amavisd writes into: fixtures/amavisd-schema/<mysql|pg>-<schema>.sql */
  schema?: db.SchemaVariant;
  schemaDir?: string;
  ports?: Partial<{ smtp: number; pdp: number; sink: number }>;
  logLevel?: number;
  startTimeoutMs?: number;
}

export interface Harness {
  readonly db: db.DbKind;
  readonly smtpPort: number;
  readonly pdpPort: number;
  readonly sinkPort: number;
  /** mysql://qe_e2e:qe_e2e@127.0.0.1:3306/qe_e2e_amavisd or postgres://... */
  readonly databaseUrl: string;
  readonly spamAssassin: boolean;
  readonly dir: string;
  readonly logFile: string;
  /** ms from spawning amavisd until its SMTP banner and AM.PDP port answered */
  readonly startupMs: number;
  readonly pid: number;
  /** SMTP to amavisd; resolves with amavisd's 250 reply (rejects on anything else). */
  submit(mail: { from: string; to: string[]; raw: string | Uint8Array }): Promise<SmtpReply>;
  sink(): Promise<SinkMessage[]>;
  waitForSink(match: (m: SinkMessage) => boolean, timeoutMs?: number): Promise<SinkMessage>;
  clearSink(): void;
  sinkMode(policy: SinkPolicy): void;
  /** A connection to the harness database as qe_e2e; `?` placeholders on both backends. */
  query: db.Db['query'];
  conn: db.Db;
  /** The msgs row (+ msgrcpt, chunk count) of a submitted message once complete; see msgs.ts. */
  waitForMsg(messageId: string, timeoutMs?: number): Promise<MsgRow>;
  /** The tail of amavisd's log, for failure messages. */
  logTail(lines?: number): Promise<string>;
  stop(opts?: { keepDatabase?: boolean }): Promise<void>;
}

function preflight(): void {
  if (!existsSync(AMAVISD)) {
    throw new Error(`${AMAVISD} not found: run test/e2e/harness/install.sh as root first`);
  }
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    throw new Error('the amavisd e2e harness must run as root (amavisd drops to the amavis user itself)');
  }
}

export async function startAmavisd(opts: StartOptions): Promise<Harness> {
  preflight();
  const schema = db.schemaFile(opts.schemaDir ?? DEFAULT_SCHEMA_DIR, opts.db, opts.schema);
  if (!existsSync(schema)) throw new Error(`amavisd schema fixture missing: ${schema}`);
  // One harness per backend at a time (fixed ports, one database): a lock file names the owning
  // process; a stale one (owner gone, e.g. a killed test run) is taken over.
  const lockFile = `/tmp/qe-e2e-${opts.db}.lock`;
  acquireLock(lockFile, opts.db);
  try {
    return await launch(opts, schema, () => releaseLock(lockFile));
  } catch (err) {
    releaseLock(lockFile);
    throw err;
  }
}

async function prepareDir(dir: string): Promise<void> {
  // amavisd refuses a config file in a directory it could write to: `dir` stays root's, what
  // amavisd writes (home, log, pid, lock) lives in subdirectories owned by amavis.
  const { uid, gid } = amavisIds();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const d of ['var', 'home', 'home/tmp', 'home/db', 'home/var', 'quarantine']) {
    await mkdir(`${dir}/${d}`, { recursive: true, mode: 0o750 });
    chownSync(`${dir}/${d}`, uid, gid);
  }
  await writeFile(`${dir}/var/amavisd.log`, '');
  chownSync(`${dir}/var/amavisd.log`, uid, gid);
}

async function launch(opts: StartOptions, schema: string, unlock: () => void): Promise<Harness> {
  const kind = opts.db;
  const ports = { ...PORTS[kind], ...opts.ports };
  const dir = `/tmp/qe-e2e-${kind}`;
  const harnessPidFile = `${dir}/harness.pid`;
  const logFile = `${dir}/var/amavisd.log`;
  const confFile = `${dir}/amavisd.conf`;
  const spamAssassin = opts.spamAssassin ?? existsSync(SA_MODULE);
  const startTimeoutMs = opts.startTimeoutMs ?? 120_000;

  // the amavisd a killed run left behind
  if (existsSync(harnessPidFile)) {
    const old = Number(readFileSync(harnessPidFile, 'utf8').trim());
    if (old > 0) await stopAmavisd(old);
  }
  for (const [name, port] of Object.entries(ports)) {
    for (let i = 0; (await portOpen(port)) && i < 50; i++) await sleep(100);
    if (await portOpen(port)) {
      throw new Error(`port 127.0.0.1:${port} (${name}) is in use by another process; the e2e harness needs it`);
    }
  }
  await prepareDir(dir);
  await writeFile(
    confFile,
    amavisdConfig({
      dir,
      smtpPort: ports.smtp,
      pdpPort: ports.pdp,
      sinkPort: ports.sink,
      dsn: db.perlDsn(kind),
      dbUser: db.DB_USER,
      dbPass: db.DB_PASS,
      spamAssassin,
      lookupSql: opts.lookupSql ?? false,
      logLevel: opts.logLevel ?? 2,
    }),
    { mode: 0o644 },
  );

  // Everything from here on is undone by teardown, also when a later step fails.
  let conn: db.Db | undefined;
  let sink: Sink | undefined;
  let child: ChildProcess | undefined;
  const killSync = () => {
    if (child?.pid && processAlive(child.pid, 'amavisd')) process.kill(child.pid, 'SIGTERM');
  };
  const teardown = async (dropDb: boolean) => {
    process.off('exit', killSync);
    try {
      if (child?.pid) await stopAmavisd(child.pid);
      await sink?.close();
      await conn?.close().catch(() => undefined);
      if (dropDb) await db.dropDatabase(kind);
    } finally {
      await rm(harnessPidFile, { force: true });
      unlock();
    }
  };
  const tail = async (n = 40) => {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    const stdout = await readFile(`${dir}/amavisd.stdout`, 'utf8').catch(() => '');
    return [...log.split('\n').slice(-n), ...stdout.split('\n').slice(-5)].join('\n');
  };

  try {
    await db.recreateDatabase(kind);
    conn = await db.connect(kind);
    await db.loadSchema(conn, schema);
    sink = await startSink(ports.sink);

    const out = openSync(`${dir}/amavisd.stdout`, 'a');
    const t0 = Date.now();
    child = spawn(AMAVISD, ['-c', confFile, 'foreground'], {
      cwd: dir,
      stdio: ['ignore', out, out],
      env: { ...process.env, PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C.UTF-8' },
    });
    closeSync(out);
    process.on('exit', killSync);
    await writeFile(harnessPidFile, `${child.pid}\n`);
    let exited: string | null = null;
    child.once('exit', (code, signal) => {
      exited = `amavisd exited (code ${code}, signal ${signal})`;
    });
    // ready = SMTP banner on the input port and the AM.PDP port accepting connections
    for (;;) {
      if (exited) throw new Error(exited);
      const line = await banner(ports.smtp, 2000);
      if (line?.startsWith('220 ') && (await portOpen(ports.pdp))) break;
      if (Date.now() - t0 > startTimeoutMs) throw new Error(`amavisd not ready after ${startTimeoutMs} ms`);
      await sleep(100);
    }
    const startupMs = Date.now() - t0;

    const c = conn;
    const s = sink;
    let stopped = false;
    return {
      db: kind,
      smtpPort: ports.smtp,
      pdpPort: ports.pdp,
      sinkPort: ports.sink,
      databaseUrl: db.databaseUrl(kind),
      spamAssassin,
      dir,
      logFile,
      startupMs,
      pid: child.pid ?? -1,
      submit: (mail) => smtpSend({ host: '127.0.0.1', port: ports.smtp, from: mail.from, to: mail.to, raw: mail.raw }),
      sink: async () => s.messages(),
      waitForSink: (match, timeoutMs) => s.waitFor(match, timeoutMs),
      clearSink: () => s.clear(),
      sinkMode: (policy) => s.setMode(policy),
      query: (sql, params) => c.query(sql, params),
      conn: c,
      waitForMsg: (messageId, timeoutMs) => waitForMsg(c, messageId, timeoutMs),
      logTail: tail,
      async stop(stopOpts) {
        if (stopped) return;
        stopped = true;
        await teardown(!(stopOpts?.keepDatabase ?? process.env.QE_E2E_KEEP === '1'));
      },
    };
  } catch (err) {
    const detail = await tail(30);
    await teardown(false).catch(() => undefined);
    throw new Error(`${(err as Error).message}\n--- ${logFile} (tail) ---\n${detail}`, { cause: err });
  }
}
