/**
 * The benchmark's own databases (qe_bench_mysql, qe_bench_pg), made from scratch: amavisd's schema
 * from fixtures/amavisd-schema/ with its own indexes, quarantine-edge's migrations, then the data
 * generator's messages bulk-loaded (LOAD DATA LOCAL INFILE / psql \copy from TSV files, the way an
 * admin would load a dump), then ANALYZE. The rows are laid out exactly as src/demo/writer.ts (and
 * amavisd) writes them: reversed domains in maddr.domain, X-Envelope-* lines in front of the stored
 * text, chunks of <= 16 KiB from 1.
 */
import { execFile } from 'node:child_process';
import { closeSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { domainOf, reverseDomain } from '../src/amavis/address.ts';
import { mailIdOfSecret, randomSecretId } from '../src/amavis/mail-id.ts';
import { detectSchema, hasColumn, type SchemaVariant, type VariantName } from '../src/amavis/schema.ts';
import { openDatabase } from '../src/db/connect.ts';
import { loadAmavisdSchema, loadMigrationFiles } from '../src/db/drivers/files.ts';
import { migrate, splitStatements } from '../src/db/migrations.ts';
import { generateMessages, type GenerateOptions } from '../src/demo/generate.ts';
import { storedText, timeIso } from '../src/demo/writer.ts';
import { createEmptyDatabase, dropDatabase, localDatabaseUrl } from '../test/support/databases.ts';

export type BenchBackend = 'mariadb' | 'pg';
export type SchemaKind = 'upstream' | 'iredmail';

const CHUNK = 16 * 1024;

const serverOf = (b: BenchBackend) => (b === 'mariadb' ? 'mysql' : 'postgres');

/** QE_BENCH_DB_SUFFIX=x gives an experiment its own databases (qe_bench_mysql_x, qe_bench_pg_x). */
const suffix = process.env.QE_BENCH_DB_SUFFIX ?? '';
if (!/^[a-z0-9_]{0,16}$/.test(suffix)) throw new Error('QE_BENCH_DB_SUFFIX must match [a-z0-9_]{0,16}');
export const benchDatabaseName = (b: BenchBackend) => `${b === 'mariadb' ? 'qe_bench_mysql' : 'qe_bench_pg'}${suffix ? `_${suffix}` : ''}`;
export const variantOf = (b: BenchBackend, s: SchemaKind): VariantName => `${b === 'mariadb' ? 'mysql' : 'pg'}-${s}`;

export function benchDatabaseUrl(b: BenchBackend): string {
  return localDatabaseUrl(serverOf(b), benchDatabaseName(b));
}

function run(cmd: string, args: string[], input: string, timeout = 3_600_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout, maxBuffer: 64 * 1024 * 1024 }, (err, out, stderr) =>
      err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(out),
    );
    child.stdin?.end(input);
  });
}

/** MariaDB's root logs in through the unix socket only; LOAD DATA needs local-infile. */
const mysqlRoot = (statements: string, db?: string) => run('mysql', ['-uroot', '--local-infile=1', ...(db ? [db] : [])], statements);

export async function dropBenchDatabase(b: BenchBackend): Promise<void> {
  await dropDatabase(serverOf(b), benchDatabaseName(b));
}

/** Empty database with amavisd's tables and indexes (the fixture's), and our migrations. */
export async function createBenchDatabase(b: BenchBackend, schema: SchemaKind): Promise<SchemaVariant> {
  await createEmptyDatabase(serverOf(b), benchDatabaseName(b));
  const handle = await openDatabase({ url: benchDatabaseUrl(b), runtime: 'node', poolSize: 1 });
  try {
    for (const s of splitStatements(await loadAmavisdSchema(variantOf(b, schema)))) await sql.raw(s).execute(handle.db);
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    return await detectSchema(handle.db, handle.dialect);
  } finally {
    await handle.close();
  }
}

/** The bench's distribution: ~1.2 recipients a message, 50k mailboxes over 200 domains, ... */
/** `mailboxes`: how many recipients the quarantine is spread over (default 50,000: 250 in each of 200 domains). */
export function benchGenerateOptions(messages: number, now: number, mailboxes = 50_000): GenerateOptions {
  return {
    messages,
    now,
    seed: 7,
    domains: 200,
    mailboxesPerDomain: Math.max(1, Math.ceil(mailboxes / 200)),
    multiRecipientRate: 0.1,
    senders: Math.max(100, Math.floor(messages / 5)),
    sizes: 'gateway',
    storedTextCap: 4096,
    // a busy gateway keeps ~30 days of quarantine
    spanSeconds: 30 * 86400,
  };
}

/** TSV escaping shared by LOAD DATA and COPY text format. */
const ESC: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };
const esc = (s: string) => s.replace(/[\\\t\n\r]/g, (c) => ESC[c]!);

class TsvFile {
  private fd: number;
  private buf: string[] = [];
  private len = 0;
  rows = 0;
  constructor(readonly file: string) {
    this.fd = openSync(file, 'w');
  }
  row(fields: string[]) {
    const line = fields.join('\t') + '\n';
    this.buf.push(line);
    this.len += line.length;
    this.rows++;
    if (this.len > 1 << 20) this.flush();
  }
  flush() {
    if (this.buf.length) writeSync(this.fd, this.buf.join(''));
    this.buf = [];
    this.len = 0;
  }
  close() {
    this.flush();
    closeSync(this.fd);
  }
}

export interface LoadReport {
  messages: number;
  recipients: number;
  addresses: number;
  chunks: number;
  /** one generator pass writes the TSV files of every backend loaded in the run */
  generate_s: number;
  generated_for: BenchBackend[];
  load_s: number;
  analyze_s: number;
  /** the backends were loaded (and analyzed) at the same time */
  parallel: boolean;
}

export interface LoadTarget {
  backend: BenchBackend;
  variant: SchemaVariant;
}

const MSGS_COLS = `(partition_tag, mail_id, secret_id, am_id, time_num, time_iso, sid, policy, client_addr, size,
  originating, content, quar_type, quar_loc, dsn_sent, spam_level, message_id, from_addr, subject, host)`.replace(/\s+/g, ' ');
const RCPT_COLS = '(partition_tag, mail_id, rseqnum, rid, is_local, content, ds, rs, bl, wl, bspam_level, smtp_resp)';
const QUAR_COLS = '(partition_tag, mail_id, chunk_ind, mail_text)';

/** One backend's TSV files and how its columns are written. */
class TargetFiles {
  readonly maddr: TsvFile;
  readonly msgs: TsvFile;
  readonly msgrcpt: TsvFile;
  readonly quarantine: TsvFile;
  readonly emailRaw: boolean;
  constructor(
    readonly t: LoadTarget,
    dir: string,
  ) {
    mkdirSync(dir, { recursive: true });
    this.maddr = new TsvFile(path.join(dir, 'maddr.tsv'));
    this.msgs = new TsvFile(path.join(dir, 'msgs.tsv'));
    this.msgrcpt = new TsvFile(path.join(dir, 'msgrcpt.tsv'));
    this.quarantine = new TsvFile(path.join(dir, 'quarantine.tsv'));
    this.emailRaw = hasColumn(t.variant, 'maddr', 'email_raw');
  }
  /** COPY text format reads bytea escapes: a backslash in a bytea value is written twice more */
  bytes(column: string, s: string): string {
    const v = this.t.variant;
    return v.dialect === 'postgres' && v.binary.has(column) ? esc(s.replace(/\\/g, '\\\\')) : esc(s);
  }
  tables(): Array<[TsvFile, string, string]> {
    const maddrCols = this.emailRaw ? '(id, partition_tag, email, domain, email_raw)' : '(id, partition_tag, email, domain)';
    return [
      [this.maddr, 'maddr', maddrCols],
      [this.msgs, 'msgs', MSGS_COLS],
      [this.msgrcpt, 'msgrcpt', RCPT_COLS],
      [this.quarantine, 'quarantine', QUAR_COLS],
    ];
  }
  close() {
    for (const [f] of this.tables()) f.close();
  }
}

async function loadFiles(b: BenchBackend, files: TargetFiles): Promise<number> {
  const t0 = performance.now();
  const name = benchDatabaseName(b);
  if (b === 'mariadb') {
    // foreign_key_checks/unique_checks off for the session, as mysqldump's output does
    await mysqlRoot(
      `SET foreign_key_checks = 0; SET unique_checks = 0;\n` +
        files
          .tables()
          .map(([f, t, cols]) => `LOAD DATA LOCAL INFILE '${f.file}' INTO TABLE ${t} CHARACTER SET binary ${cols};`)
          .join('\n'),
      name,
    );
  } else {
    // \copy as the superuser; session_replication_role=replica skips FK triggers, as pg_restore does
    await run(
      'psql',
      ['-h127.0.0.1', '-Upostgres', '-d', name, '-v', 'ON_ERROR_STOP=1', '-q'],
      `SET session_replication_role = replica;\n` +
        files
          .tables()
          .map(([f, t, cols]) => `\\copy ${t} ${cols} FROM '${f.file}'`)
          .join('\n') +
        `\nSELECT setval(pg_get_serial_sequence('maddr', 'id'), (SELECT max(id) FROM maddr));\n`,
    );
  }
  return (performance.now() - t0) / 1000;
}

async function analyze(b: BenchBackend): Promise<number> {
  const t0 = performance.now();
  const name = benchDatabaseName(b);
  if (b === 'mariadb') await mysqlRoot('ANALYZE TABLE maddr, msgs, msgrcpt, quarantine;', name);
  else await run('psql', ['-h127.0.0.1', '-Upostgres', '-d', name, '-q'], 'VACUUM ANALYZE;');
  return (performance.now() - t0) / 1000;
}

/**
 * Generate `messages` with the bench distribution and bulk-load them into every target: one
 * generator pass (the same messages, ids and secrets for each backend) writes each backend's TSV
 * files, streaming (a batch of 2,000 messages in memory; the address ids are the only state that
 * grows, ~250k entries at 1M), then the backends load and analyze at the same time. Returns one
 * report per backend (generation and loading timed apart).
 */
export async function loadBenchDataAll(targets: LoadTarget[], opts: GenerateOptions): Promise<Map<BenchBackend, LoadReport>> {
  const root = path.join(tmpdir(), `qe-bench-load-${process.pid}`);
  rmSync(root, { recursive: true, force: true });
  const all = targets.map((t) => new TargetFiles(t, path.join(root, t.backend)));
  const NULL = '\\N';
  const dec = new TextDecoder();
  const ids = new Map<string, number>();
  let nextId = 1;
  const addressId = (partition: number, email: string) => {
    const k = `${partition}\u0000${email}`;
    let id = ids.get(k);
    if (id === undefined) {
      id = nextId++;
      ids.set(k, id);
      const domain = reverseDomain(domainOf(email));
      for (const f of all) {
        const row = [String(id), String(partition), f.bytes('maddr.email', email), f.bytes('maddr.domain', domain)];
        if (f.emailRaw) row.push(f.bytes('maddr.email_raw', email.replace(/\+[^@]*@/, '@')));
        f.maddr.row(row);
      }
    }
    return id;
  };

  let t0 = performance.now();
  let messages = 0;
  try {
    for (const batch of generateMessages(opts, 2000)) {
      for (const m of batch) {
        messages++;
        const p = m.partitionTag ?? 0;
        const secretId = randomSecretId();
        const mailId = mailIdOfSecret(secretId);
        const text = storedText(m, mailId);
        const sid = addressId(p, m.sender);
        const rids = m.recipients.map((r) => addressId(p, r.address));
        const q = m.quarType ?? 'Q';
        const chunks: string[] = [];
        if (m.content !== null && q === 'Q') {
          for (let off = 0; off < text.length; off += CHUNK) chunks.push(dec.decode(text.subarray(off, off + CHUNK)));
        }
        for (const f of all) {
          const v = f.t.variant;
          f.msgs.row([
            String(p),
            f.bytes('msgs.mail_id', mailId),
            f.bytes('msgs.secret_id', secretId),
            mailId.slice(0, 10),
            String(m.timeNum),
            timeIso(v, m.timeNum),
            String(sid),
            '',
            esc(m.clientAddr ?? '192.0.2.10'),
            String(m.size ?? text.length),
            'N',
            m.content === null ? NULL : m.content,
            q,
            q === '' ? '' : f.bytes('msgs.quar_loc', mailId),
            NULL,
            m.spamLevel === null || m.spamLevel === undefined ? NULL : String(m.spamLevel),
            esc(m.messageId ?? `<${mailId}@mx.example.net>`),
            f.bytes('msgs.from_addr', m.fromHeader ?? m.sender),
            f.bytes('msgs.subject', m.subject),
            esc(m.host ?? 'mx1.example.net'),
          ]);
          m.recipients.forEach((r, i) => {
            const score = r.score === undefined ? (m.spamLevel ?? null) : r.score;
            f.msgrcpt.row([
              String(p),
              f.bytes('msgrcpt.mail_id', mailId),
              String(i),
              String(rids[i]),
              'Y',
              r.content ?? m.content ?? ' ',
              r.ds ?? 'D',
              r.rs ?? ' ',
              ' ',
              ' ',
              score === null ? NULL : String(score),
              '250 2.7.0 Ok, discarded',
            ]);
          });
          chunks.forEach((c, n) =>
            f.quarantine.row([String(p), f.bytes('quarantine.mail_id', mailId), String(n + 1), f.bytes('quarantine.mail_text', c)]),
          );
        }
      }
    }
    for (const f of all) f.close();
    const generate_s = (performance.now() - t0) / 1000;

    const parallel = all.length > 1;
    const loads = await Promise.all(all.map((f) => loadFiles(f.t.backend, f)));
    t0 = performance.now();
    const analyzes = await Promise.all(all.map((f) => analyze(f.t.backend)));
    const out = new Map<BenchBackend, LoadReport>();
    all.forEach((f, i) =>
      out.set(f.t.backend, {
        messages,
        recipients: f.msgrcpt.rows,
        addresses: f.maddr.rows,
        chunks: f.quarantine.rows,
        generate_s: round(generate_s),
        generated_for: all.map((x) => x.t.backend),
        load_s: round(loads[i]!),
        analyze_s: round(analyzes[i]!),
        parallel,
      }),
    );
    return out;
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

/** One backend (see loadBenchDataAll). */
export async function loadBenchData(b: BenchBackend, v: SchemaVariant, opts: GenerateOptions): Promise<LoadReport> {
  return (await loadBenchDataAll([{ backend: b, variant: v }], opts)).get(b)!;
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
