// End-to-end harness: a real amavisd-new (Debian 12, 2.13) with its own config file, ports,
// directories (/tmp/qe-e2e-<db>), database (qe_e2e_amavisd) and an in-process SMTP sink.
// It never touches another amavisd on the machine (e.g. the lab's on 10024/9998/10025).
// Prerequisite: test/e2e/harness/install.sh has run as root; the harness itself must run as root
// (amavisd starts as root and drops to the `amavis` user).
import { spawn, type ChildProcess } from 'node:child_process';
import { chownSync, existsSync, openSync, closeSync, readFileSync, readdirSync } from 'node:fs';
import { mkdir, rm, writeFile, readFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { amavisdConfig } from './config.ts';
import * as db from './db.ts';
import { startSink, type Sink, type SinkMessage, type SinkPolicy } from './sink.ts';
import { smtpSend, type SmtpReply } from './smtp-client.ts';
import { waitForMsg, type MsgRow } from './msgs.ts';

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

function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Reads the first reply line of an SMTP server; resolves null if none within timeout. */
function banner(port: number, timeoutMs = 5000): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (v: string | null) => {
      s.removeAllListeners();
      s.on('error', () => undefined);
      if (v !== null) s.end('QUIT\r\n');
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(null));
    s.on('error', () => done(null));
    s.on('close', () => done(null));
    s.on('data', (c) => {
      buf += c.toString('latin1');
      const nl = buf.indexOf('\r\n');
      if (nl >= 0) done(buf.slice(0, nl));
    });
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function processAlive(pid: number, needle: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(needle);
  } catch {
    return false;
  }
}

function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) kids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return kids;
}

/** Stops an amavisd master (and any child it leaves behind): TERM, then KILL after a grace period. */
async function stopAmavisd(pid: number, graceMs = 15_000): Promise<void> {
  if (!processAlive(pid, 'amavisd')) return;
  const kids = childrenOf(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const t0 = Date.now();
  while (processAlive(pid, 'amavisd') && Date.now() - t0 < graceMs) await sleep(50);
  if (processAlive(pid, 'amavisd')) process.kill(pid, 'SIGKILL');
  for (const k of kids) {
    if (processAlive(k, 'amavisd')) {
      try {
        process.kill(k, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

function amavisIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.startsWith('amavis:'));
  const f = line?.split(':');
  if (!f || f.length < 4) throw new Error('user amavis missing: run test/e2e/harness/install.sh as root');
  return { uid: Number(f[2]), gid: Number(f[3]) };
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
  const kind = opts.db;
  const ports = { ...PORTS[kind], ...opts.ports };
  const dir = `/tmp/qe-e2e-${kind}`;
  const harnessPidFile = `${dir}/harness.pid`;
  const logFile = `${dir}/var/amavisd.log`;
  const spamAssassin = opts.spamAssassin ?? existsSync(SA_MODULE);
  const schema = db.schemaFile(opts.schemaDir ?? DEFAULT_SCHEMA_DIR, kind, opts.schema);
  if (!existsSync(schema)) throw new Error(`amavisd schema fixture missing: ${schema}`);

  // harness.pid holds "<amavisd pid> <owning node pid>". A live owner means another harness for
  // this backend is running (another test file, or a missing stop()): refuse rather than kill it.
  // A dead owner means a crashed run: its amavisd, if still there, is stopped.
  if (existsSync(harnessPidFile)) {
    const [old = 0, owner = 0] = readFileSync(harnessPidFile, 'utf8').trim().split(/\s+/).map(Number);
    if (owner > 0 && processAlive(owner, 'node') && processAlive(old, 'amavisd')) {
      throw new Error(
        `an e2e amavisd harness for ${kind} is already running (amavisd pid ${old}, owned by pid ${owner}` +
          `${owner === process.pid ? ', this process: call stop() first' : ''}); run e2e files one at a time`,
      );
    }
    if (old > 0) await stopAmavisd(old);
  }
  for (const [name, port] of Object.entries(ports)) {
    for (let i = 0; (await portOpen(port)) && i < 50; i++) await sleep(100);
    if (await portOpen(port)) {
      throw new Error(`port 127.0.0.1:${port} (${name}) is in use by another process; the e2e harness needs it`);
    }
  }

  // amavisd refuses a config file in a directory it could write to: `dir` stays root's, what
  // amavisd writes (home, log, pid, lock) lives in subdirectories owned by amavis.
  const { uid, gid } = amavisIds();
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true, mode: 0o755 });
  for (const d of [`${dir}/var`, `${dir}/home`, `${dir}/home/tmp`, `${dir}/home/db`, `${dir}/home/var`, `${dir}/quarantine`]) {
    await mkdir(d, { recursive: true, mode: 0o750 });
    chownSync(d, uid, gid);
  }
  await writeFile(logFile, '');
  chownSync(logFile, uid, gid);
  const confFile = `${dir}/amavisd.conf`;
  await writeFile(confFile, amavisdConfig({
    dir, smtpPort: ports.smtp, pdpPort: ports.pdp, sinkPort: ports.sink,
    dsn: db.perlDsn(kind), dbUser: db.DB_USER, dbPass: db.DB_PASS,
    spamAssassin, lookupSql: opts.lookupSql ?? false, logLevel: opts.logLevel ?? 2,
  }), { mode: 0o644 });

  // Everything below is undone if a later step fails.
  let conn: db.Db | undefined;
  let sink: Sink | undefined;
  let child: ChildProcess | undefined;
  const killSync = () => {
    if (child?.pid && processAlive(child.pid, 'amavisd')) process.kill(child.pid, 'SIGTERM');
  };
  const teardown = async (dropDb: boolean) => {
    process.off('exit', killSync);
    if (child?.pid) await stopAmavisd(child.pid);
    await sink?.close();
    await conn?.close().catch(() => undefined);
    if (dropDb) await db.dropDatabase(kind);
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
    await writeFile(harnessPidFile, `${child.pid} ${process.pid}\n`);
    let exited: string | null = null;
    child.once('exit', (code, signal) => {
      exited = `amavisd exited (code ${code}, signal ${signal})`;
    });

    const deadline = t0 + (opts.startTimeoutMs ?? 120_000);
    for (;;) {
      if (exited) throw new Error(exited);
      const line = await banner(ports.smtp, 2000);
      if (line?.startsWith('220 ') && (await portOpen(ports.pdp))) break;
      if (Date.now() > deadline) throw new Error(`amavisd not ready after ${opts.startTimeoutMs ?? 120_000} ms`);
      await sleep(100);
    }
    const startupMs = Date.now() - t0;
    let stopped = false;

    const c = conn;
    const s = sink;
    const p = child;
    const tail = async (n = 40) => {
      const text = await readFile(logFile, 'utf8').catch(() => '');
      const stdout = await readFile(`${dir}/amavisd.stdout`, 'utf8').catch(() => '');
      return [...text.split('\n').slice(-n), ...stdout.split('\n').slice(-5)].join('\n');
    };
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
      pid: p.pid ?? -1,
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
        await rm(harnessPidFile, { force: true });
      },
    };
  } catch (err) {
    const log = await readFile(logFile, 'utf8').catch(() => '');
    await teardown(false).catch(() => undefined);
    const detail = log.split('\n').slice(-30).join('\n');
    throw new Error(`${(err as Error).message}\n--- ${logFile} (tail) ---\n${detail}`, { cause: err });
  }
}
