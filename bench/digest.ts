/**
 * Digest: one full run for every recipient with pending quarantined mail (force_all + all_time,
 * `quarantine-edge notify --force-all --force-all-time`), in its own process (bench/digest-worker.ts)
 * so that peak RSS is the product's, sending through the Resend mailer to the local Resend twin of
 * the tests (test/support/resend-server.ts, batch API) in this process. The twin's accepted emails
 * are counted per recipient and dropped as they arrive (its memory would otherwise hold every
 * digest): the check is exactly one digest per recipient the floor finds.
 *
 * The floor: one statement, streamed, that reads the same rows the digest reads (every pending
 * quarantined msgrcpt x msgs x maddr row with the columns a digest shows, grouped by recipient),
 * timed in the same run right after. Ratio = digest wall time / floor.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { createConnection } from 'mysql2';
import pg from 'pg';
import type { SchemaVariant } from '../src/amavis/schema.ts';
import { startResendTwin } from '../test/support/resend-server.ts';
import { ratio, ROOT } from './common.ts';
import { benchDatabaseUrl, round, type BenchBackend } from './db.ts';

export interface DigestOptions {
  log: (s: string) => void;
  /** write a V8 CPU profile of the digest process into this directory */
  cpuProf?: string;
  /** count the statements the run sends (a Kysely plugin; adds a little work) */
  countSql?: boolean;
  /**
   * 'compiled' (default): the digest process runs bench/digest-worker.ts bundled by esbuild (tsx's
   * own compiler, installed with it) into dist/bench/, dependencies left as imports, with plain
   * node: what a compiled `notify` entry costs. 'tsx': compiled in-process at start, as
   * bin/quarantine-edge.js runs `notify` today (~100 MB more peak RSS).
   */
  entry?: 'compiled' | 'tsx';
  /**
   * Also run the same digest again paced at this many Resend requests per second
   * (RESEND_RATE_LIMIT; Resend's default is 2, i.e. 200 emails/s in batches of 100), and report its
   * wall time against the ideal: ceil(recipients / 100) / rate seconds (issue 19.2).
   */
  paced?: number;
}

interface WorkerOut {
  cutoff: number;
  report: { recipients: number; sent: number; skipped: number; failed: number; messages: number; pages: number; errors: unknown[] };
  run_ms: number;
  cpu_ms: number;
  process_ms: number;
  statements: Record<string, number> | null;
  max_rss_mb: number;
  memory: Record<string, unknown>;
}

/** msgrcpt.rs values the digest counts as waiting (src/digest/plan.ts WAITING). */
const FLOOR_SQL = `SELECT r.email AS rcpt, m.partition_tag, m.mail_id, m.time_num, m.content, mr.content AS rcontent,
    mr.bspam_level, m.spam_level, m.subject, s.email AS sender
  FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    JOIN msgs m ON m.partition_tag = mr.partition_tag AND m.mail_id = mr.mail_id
    LEFT JOIN maddr s ON s.id = m.sid
  WHERE m.quar_type = 'Q' AND m.content IS NOT NULL AND mr.rs IN (' ', '', 'V') AND m.time_num < CUTOFF
  ORDER BY r.email, m.time_num DESC, m.mail_id DESC`;

const str = (x: unknown) => (Buffer.isBuffer(x) ? x.toString('utf8') : String(x));

/** The floor: the scan over the raw driver, streamed (rows are counted, not kept). */
async function floorScan(backend: BenchBackend, cutoff: number): Promise<{ ms: number; rows: number; recipients: number }> {
  const url = benchDatabaseUrl(backend);
  let rows = 0;
  let recipients = 0;
  let last = '';
  const see = (rcpt: unknown) => {
    rows++;
    const r = str(rcpt);
    if (r !== last) {
      recipients++;
      last = r;
    }
  };
  if (backend === 'mariadb') {
    const conn = createConnection({ uri: url, charset: 'utf8mb4', timezone: 'Z', dateStrings: true });
    try {
      const t0 = performance.now();
      await new Promise<void>((resolve, reject) => {
        conn
          .query(FLOOR_SQL.replace('CUTOFF', String(cutoff)))
          .on('result', (row: Record<string, unknown>) => see(row.rcpt))
          .on('error', reject)
          .on('end', () => resolve());
      });
      return { ms: performance.now() - t0, rows, recipients };
    } finally {
      conn.end();
    }
  }
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const t0 = performance.now();
    await client.query('BEGIN');
    await client.query(`DECLARE floor_scan NO SCROLL CURSOR FOR ${FLOOR_SQL.replace('CUTOFF', String(cutoff))}`);
    for (;;) {
      const { rows: batch } = await client.query('FETCH 5000 FROM floor_scan');
      for (const r of batch) see(r.rcpt);
      if (batch.length < 5000) break;
    }
    await client.query('COMMIT');
    return { ms: performance.now() - t0, rows, recipients };
  } finally {
    await client.end();
  }
}

/** A fresh start for the run: no earlier sends or watermarks in the bench's own database. */
async function resetDigestTables(backend: BenchBackend) {
  const url = benchDatabaseUrl(backend);
  if (backend === 'mariadb') {
    const conn = createConnection({ uri: url });
    try {
      for (const t of ['qe_digest_sends', 'qe_digest_state']) await conn.promise().query(`DELETE FROM ${t}`);
    } finally {
      conn.end();
    }
  } else {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query('DELETE FROM qe_digest_sends; DELETE FROM qe_digest_state');
    } finally {
      await client.end();
    }
  }
}

let compiling: Promise<string> | undefined;
/** bench/digest-worker.ts as one ES module (dist/bench/, so that templates/ is where templates.node.ts looks); built once a run, as backends may run side by side */
function compiledWorker(): Promise<string> {
  compiling ??= compileWorker();
  return compiling;
}

async function compileWorker(): Promise<string> {
  const { build } = await import('esbuild');
  const outfile = path.join(ROOT, 'dist/bench/digest-worker.mjs');
  await build({
    entryPoints: [path.join(ROOT, 'bench/digest-worker.ts')],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    packages: 'external',
    outfile,
    logLevel: 'warning',
  });
  return outfile;
}

async function runWorker(url: string, resendUrl: string, opts: DigestOptions, rateLimit = 0): Promise<{ out: WorkerOut; wall_ms: number }> {
  const compiled = (opts.entry ?? 'compiled') === 'compiled';
  const argv = compiled ? [] : ['--import', 'tsx'];
  // BENCH_DIGEST_NODE_FLAGS: V8 flags for the digest process only (e.g. --max-semi-space-size=16), to measure GC settings
  argv.push(...(process.env.BENCH_DIGEST_NODE_FLAGS ?? '').split(/\s+/).filter(Boolean));
  if (opts.cpuProf) argv.push('--cpu-prof', `--cpu-prof-dir=${opts.cpuProf}`);
  argv.push(compiled ? await compiledWorker() : path.join(ROOT, 'bench/digest-worker.ts'));
  const t0 = performance.now();
  const child = spawn(process.execPath, argv, {
    cwd: ROOT,
    env: {
      ...process.env,
      DATABASE_URL: url,
      RESEND_BASE_URL: resendUrl,
      RESEND_RATE_LIMIT: String(rateLimit),
      BENCH_COUNT_SQL: opts.countSql ? '1' : '0',
    },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let stdout = '';
  child.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      const wall_ms = performance.now() - t0;
      const line = stdout.trim().split('\n').pop() ?? '';
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve({ out: JSON.parse(line) as WorkerOut, wall_ms });
      } catch (err) {
        reject(new Error(`digest worker: ${(err as Error).message}: ${stdout.slice(-2000)}`));
      }
    });
  });
}

export async function benchDigest(backend: BenchBackend, _v: SchemaVariant | null, opts: DigestOptions) {
  await resetDigestTables(backend);
  const twin = await startResendTwin();
  // count and drop what the twin accepted, so its memory stays one interval's worth
  const perRecipient = new Map<string, number>();
  let emails = 0;
  let batches = 0;
  let refused = 0;
  const drain = () => {
    for (const e of twin.emails) {
      emails++;
      for (const to of e.to) perRecipient.set(to, (perRecipient.get(to) ?? 0) + 1);
    }
    for (const r of twin.requests) {
      if (r.path === '/emails/batch' && r.status === 200) batches++;
      else if (r.status !== 200) refused++;
    }
    twin.reset();
  };
  const timer = setInterval(drain, 250);
  let run: Awaited<ReturnType<typeof runWorker>>;
  try {
    run = await runWorker(benchDatabaseUrl(backend), twin.url, opts);
  } finally {
    clearInterval(timer);
    drain();
    await twin.close();
  }
  const floor = await floorScan(backend, run.out.cutoff);
  const { out } = run;
  const paced = opts.paced ? await pacedRun(backend, opts, opts.paced, out.report.sent, out.run_ms / 1000) : null;
  const dupes = [...perRecipient.values()].filter((n) => n !== 1).length;
  const oneEach = dupes === 0 && perRecipient.size === out.report.sent && perRecipient.size === floor.recipients;
  if (!oneEach) {
    opts.log(
      `  ${backend} digest: ${perRecipient.size} recipients got ${emails} emails (${dupes} more than one), run says ${out.report.sent} sent, floor finds ${floor.recipients} recipients`,
    );
  }
  const wallS = out.run_ms / 1000;
  return {
    mode: 'force_all + all_time (quarantine-edge notify --force-all --force-all-time), Resend batch API to the local twin',
    entry: (opts.entry ?? 'compiled') === 'compiled' ? 'bundled by esbuild, plain node' : 'tsx in-process',
    recipients: floor.recipients,
    digests_sent: out.report.sent,
    failed: out.report.failed,
    skipped: out.report.skipped,
    messages_covered: out.report.messages,
    pages: out.report.pages,
    resend: {
      emails,
      batch_requests: batches,
      refused_requests: refused,
      distinct_recipients: perRecipient.size,
      one_digest_per_recipient: oneEach,
    },
    wall_s: round(wallS),
    process_wall_s: round(run.wall_ms / 1000),
    digests_per_s: Math.round(out.report.sent / wallS),
    cpu_s: round(out.cpu_ms / 1000),
    cpu_ms_per_digest: round(out.cpu_ms / Math.max(1, out.report.sent), 3),
    peak_rss_mb: out.max_rss_mb,
    memory: out.memory,
    floor: {
      what: 'one streamed SELECT of the same msgrcpt x msgs x maddr rows, ordered by recipient',
      rows: floor.rows,
      recipients: floor.recipients,
      seconds: round(floor.ms / 1000, 3),
    },
    digest_floor_ratio: ratio(out.run_ms, floor.ms),
    ...(paced ? { paced } : {}),
    ...(out.statements ? { statements: out.statements } : {}),
    ...(out.report.errors.length ? { errors: out.report.errors.slice(0, 5) } : {}),
  };
}

/**
 * The same digest again, paced to the mail service (RESEND_RATE_LIMIT), against the ideal: the time
 * the rate allows (batches of 100 at `rate` a second) or, when computing the digests takes longer
 * than that (a quick run's fast rate), the unpaced run's own time (`computeS`).
 */
async function pacedRun(backend: BenchBackend, opts: DigestOptions, rate: number, expected: number, computeS: number) {
  await resetDigestTables(backend);
  const twin = await startResendTwin();
  let batches = 0;
  let sent = 0;
  const timer = setInterval(() => {
    batches += twin.requests.filter((r) => r.path === '/emails/batch' && r.status === 200).length;
    sent += twin.emails.length;
    twin.reset();
  }, 250);
  let run: Awaited<ReturnType<typeof runWorker>>;
  try {
    run = await runWorker(benchDatabaseUrl(backend), twin.url, { ...opts, cpuProf: undefined, countSql: false }, rate);
  } finally {
    clearInterval(timer);
    batches += twin.requests.filter((r) => r.path === '/emails/batch' && r.status === 200).length;
    sent += twin.emails.length;
    await twin.close();
  }
  const rateFloorS = Math.ceil(expected / 100) / rate;
  const idealS = Math.max(rateFloorS, computeS);
  const wallS = run.out.run_ms / 1000;
  return {
    rate_limit_rps: rate,
    digests_sent: run.out.report.sent,
    emails_accepted: sent,
    batch_requests: batches,
    wall_s: round(wallS),
    rate_floor_s: round(rateFloorS),
    compute_only_s: round(computeS),
    ideal_s: round(idealS),
    ratio_to_ideal: round(wallS / idealS, 3),
    peak_rss_mb: run.out.max_rss_mb,
  };
}
