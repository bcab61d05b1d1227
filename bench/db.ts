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

export const benchDatabaseName = (b: BenchBackend) => (b === 'mariadb' ? 'qe_bench_mysql' : 'qe_bench_pg');
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
const mysqlRoot = (statements: string, db?: string) =>
  run('mysql', ['-uroot', '--local-infile=1', ...(db ? [db] : [])], statements);


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
export function benchGenerateOptions(messages: number, now: number): GenerateOptions {
  return {
    messages,
    now,
    seed: 7,
    domains: 200,
    mailboxesPerDomain: 250,
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
  generate_s: number;
  load_s: number;
  analyze_s: number;
}

/**
 * Generate `messages` with the bench distribution and bulk-load them. Returns counts and timings
 * (generation to TSV and loading are timed apart).
 */
export async function loadBenchData(b: BenchBackend, v: SchemaVariant, opts: GenerateOptions): Promise<LoadReport> {
  const dir = path.join(tmpdir(), `qe-bench-${b}-${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const pgBytes = (column: string, s: string) =>
    v.dialect === 'postgres' && v.binary.has(column) ? esc(s.replace(/\\/g, '\\\\')) : esc(s);
  const NULL = '\\N';
  const emailRaw = hasColumn(v, 'maddr', 'email_raw');
  const files = {
    maddr: new TsvFile(path.join(dir, 'maddr.tsv')),
    msgs: new TsvFile(path.join(dir, 'msgs.tsv')),
    msgrcpt: new TsvFile(path.join(dir, 'msgrcpt.tsv')),
    quarantine: new TsvFile(path.join(dir, 'quarantine.tsv')),
  };
  const dec = new TextDecoder();
  const ids = new Map<string, number>();
  let nextId = 1;
  const addressId = (partition: number, email: string) => {
    const k = `${partition}\u0000${email}`;
    let id = ids.get(k);
    if (id === undefined) {
      id = nextId++;
      ids.set(k, id);
      const f = [String(id), String(partition), pgBytes('maddr.email', email), pgBytes('maddr.domain', reverseDomain(domainOf(email)))];
      if (emailRaw) f.push(pgBytes('maddr.email_raw', email.replace(/\+[^@]*@/, '@')));
      files.maddr.row(f);
    }
    return id;
  };

  let t0 = performance.now();
  let messages = 0;
  for (const batch of generateMessages(opts, 2000)) {
    for (const m of batch) {
      messages++;
      const p = m.partitionTag ?? 0;
      const secretId = randomSecretId();
      const mailId = mailIdOfSecret(secretId);
      const text = storedText(m, mailId);
      const sid = addressId(p, m.sender);
      const q = m.quarType ?? 'Q';
      files.msgs.row([
        String(p), pgBytes('msgs.mail_id', mailId), pgBytes('msgs.secret_id', secretId), mailId.slice(0, 10),
        String(m.timeNum), timeIso(v, m.timeNum), String(sid), '', esc(m.clientAddr ?? '192.0.2.10'),
        String(m.size ?? text.length), 'N', m.content === null ? NULL : m.content, q,
        q === '' ? '' : pgBytes('msgs.quar_loc', mailId), NULL,
        m.spamLevel === null || m.spamLevel === undefined ? NULL : String(m.spamLevel),
        esc(m.messageId ?? `<${mailId}@mx.example.net>`), pgBytes('msgs.from_addr', m.fromHeader ?? m.sender),
        pgBytes('msgs.subject', m.subject), esc(m.host ?? 'mx1.example.net'),
      ]);
      m.recipients.forEach((r, i) => {
        const score = r.score === undefined ? m.spamLevel ?? null : r.score;
        files.msgrcpt.row([
          String(p), pgBytes('msgrcpt.mail_id', mailId), String(i), String(addressId(p, r.address)), 'Y',
          r.content ?? m.content ?? ' ', r.ds ?? 'D', r.rs ?? ' ', ' ', ' ', score === null ? NULL : String(score),
          '250 2.7.0 Ok, discarded',
        ]);
      });
      if (m.content !== null && q === 'Q') {
        for (let off = 0, n = 1; off < text.length; off += CHUNK, n++) {
          files.quarantine.row([String(p), pgBytes('quarantine.mail_id', mailId), String(n),
            pgBytes('quarantine.mail_text', dec.decode(text.subarray(off, off + CHUNK)))]);
        }
      }
    }
  }
  for (const f of Object.values(files)) f.close();
  const generate_s = (performance.now() - t0) / 1000;

  const maddrCols = emailRaw ? '(id, partition_tag, email, domain, email_raw)' : '(id, partition_tag, email, domain)';
  const msgsCols = `(partition_tag, mail_id, secret_id, am_id, time_num, time_iso, sid, policy, client_addr, size,
    originating, content, quar_type, quar_loc, dsn_sent, spam_level, message_id, from_addr, subject, host)`.replace(/\s+/g, ' ');
  const rcptCols = '(partition_tag, mail_id, rseqnum, rid, is_local, content, ds, rs, bl, wl, bspam_level, smtp_resp)';
  const quarCols = '(partition_tag, mail_id, chunk_ind, mail_text)';
  const tables: Array<[keyof typeof files, string]> = [['maddr', maddrCols], ['msgs', msgsCols], ['msgrcpt', rcptCols], ['quarantine', quarCols]];

  t0 = performance.now();
  const name = benchDatabaseName(b);
  if (b === 'mariadb') {
    // foreign_key_checks/unique_checks off for the session, as mysqldump's output does
    await mysqlRoot(`SET foreign_key_checks = 0; SET unique_checks = 0;\n` +
      tables.map(([t, cols]) => `LOAD DATA LOCAL INFILE '${files[t].file}' INTO TABLE ${t} CHARACTER SET binary ${cols};`).join('\n'), name);
  } else {
    // \copy as the superuser; session_replication_role=replica skips FK triggers, as pg_restore does
    await run('psql', ['-h127.0.0.1', '-Upostgres', '-d', name, '-v', 'ON_ERROR_STOP=1', '-q'],
      `SET session_replication_role = replica;\n` +
      tables.map(([t, cols]) => `\\copy ${t} ${cols} FROM '${files[t].file}'`).join('\n') +
      `\nSELECT setval(pg_get_serial_sequence('maddr', 'id'), (SELECT max(id) FROM maddr));\n`);
  }
  const load_s = (performance.now() - t0) / 1000;
  t0 = performance.now();
  if (b === 'mariadb') await mysqlRoot('ANALYZE TABLE maddr, msgs, msgrcpt, quarantine;', name);
  else await run('psql', ['-h127.0.0.1', '-Upostgres', '-d', name, '-q'], 'VACUUM ANALYZE;');
  const analyze_s = (performance.now() - t0) / 1000;
  rmSync(dir, { recursive: true, force: true });
  return {
    messages,
    recipients: files.msgrcpt.rows,
    addresses: files.maddr.rows,
    chunks: files.quarantine.rows,
    generate_s: round(generate_s),
    load_s: round(load_s),
    analyze_s: round(analyze_s),
  };
}

export const round = (x: number, d = 2) => Math.round(x * 10 ** d) / 10 ** d;
