/**
 * Issue 19 item 3: the digest on Workers at scale. CPU and heap of one scheduled planning
 * invocation and of one queue consumer batch, in local workerd (Miniflare, from wrangler's own
 * dependencies), for a data set with N digest subscribers that all have quarantined mail.
 *
 *   npx tsx bench/worker-digest.ts [--recipients 50000] [--messages N] [--db mariadb|pg]
 *                                  [--skip-load] [--keep] [--batches 1,10] [--json] [--cpu-prof DIR]
 *
 * 1. Data: bench/db.ts (the bench's generator and bulk load) into qe_bench_{mysql,pg}_<suffix>
 *    (QE_BENCH_DB_SUFFIX, default "wdigest": its own databases, apart from `npm run bench`'s),
 *    `--messages` (default 3 × recipients) spread over `--recipients` mailboxes; then one daily,
 *    enabled subscription (no watermark: all due) for every address that received mail.
 * 2. The Worker: `wrangler deploy --dry-run --outdir` of bench/worker-digest-entry.ts
 *    (functions/worker.ts with a recording QUEUE binding) with wrangler.toml's settings (minified,
 *    nodejs_compat, aliases), run by Miniflare in workerd with the inspector on.
 * 3. CPU: a V8 CPU profile (inspector Profiler, 100 µs sampling) around each invocation; the figure
 *    is the profile's non-idle time (JS + "(program)" + GC), as bench/worker.ts does for start-up.
 *    Heap: Runtime.getHeapUsage of the isolate, polled every 10 ms during the invocation (peak seen)
 *    and after it. The invocations: one scheduled `*\/15 * * * *` (the digest cron: plans one planning
 *    page, DIGEST_PLAN_PAGES x DIGEST_PAGE_SIZE = 10 x 100 recipients, enqueues it as pages and a
 *    'digest.plan' continuation), the same tick warm, then every continuation of the plan as its own
 *    queue invocation until the last page (each measured), then queue batches of 1 and 10 of the
 *    planned pages (wrangler.toml's max_batch_size is 10), each sending through the Resend mailer to
 *    the tests' Resend twin (unpaced), and one page in a fresh isolate.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { Miniflare } from 'miniflare';
import WebSocket from 'ws';
import { startResendTwin } from '../test/support/resend-server.ts';
import { ROOT } from './common.ts';
import { profileCpu, type Profile } from './worker.ts';

process.env.QE_BENCH_DB_SUFFIX ??= 'wdigest';
const { benchDatabaseName, benchDatabaseUrl, benchGenerateOptions, createBenchDatabase, dropBenchDatabase, loadBenchData, round } =
  await import('./db.ts');
type BenchBackend = import('./db.ts').BenchBackend;

const { values: args } = parseArgs({
  options: {
    recipients: { type: 'string', default: '50000' },
    messages: { type: 'string' },
    db: { type: 'string', default: 'mariadb' },
    'skip-load': { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
    batches: { type: 'string', default: '1,10' },
    json: { type: 'boolean', default: false },
    /** write each invocation's V8 CPU profile here (open in Chrome DevTools) */
    'cpu-prof': { type: 'string' },
  },
});
const backend = args.db as BenchBackend;
if (backend !== 'mariadb' && backend !== 'pg') throw new Error('--db mariadb|pg');
const recipients = Number(args.recipients);
const messages = Number(args.messages ?? recipients * 3);
const batchSizes = args.batches!.split(',').map(Number);
const log = (s: string) => process.stderr.write(`${s}\n`);

function sh(cmd: string, argv: string[], input?: string, env = process.env): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, argv, { cwd: ROOT, env, maxBuffer: 64 << 20, timeout: 1_800_000 }, (err, out, stderr) =>
      err ? reject(new Error(`${cmd} ${argv.join(' ')}: ${(stderr || err.message).slice(-800)}`)) : resolve(out),
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

const dbSql = (statements: string) =>
  backend === 'mariadb'
    ? sh('mysql', ['-uroot', '-N', '-B', benchDatabaseName(backend)], statements)
    : sh('psql', ['-h127.0.0.1', '-Upostgres', '-d', benchDatabaseName(backend), '-qAt', '-v', 'ON_ERROR_STOP=1'], statements);

// ---- 1. data ----
const now = Math.floor(Date.now() / 1000);
let load: unknown = 'skipped (--skip-load)';
if (!args['skip-load']) {
  log(`loading ${messages} messages over ${Math.ceil(recipients * 1.08)} mailboxes into ${benchDatabaseName(backend)} ...`);
  const variant = await createBenchDatabase(backend, 'iredmail');
  // ~3% of the mailboxes draw no waiting quarantined mail: spread it over a few more, so that
  // `recipients` of them have some
  load = await loadBenchData(backend, variant, benchGenerateOptions(messages, now, Math.ceil(recipients * 1.08)));
  log(`  ${JSON.stringify(load)}`);
}
// every address that received mail subscribes daily, with no watermark: all due at the next tick
const email = backend === 'pg' ? "convert_from(a.email, 'UTF8')" : 'a.email';
// The first `recipients` addresses (by address) with quarantined mail still waiting subscribe daily,
// with no watermark: all due at the next tick.
await dbSql(`DELETE FROM qe_digest_state; DELETE FROM qe_digest_sends; DELETE FROM qe_digest_subscriptions;
INSERT INTO qe_digest_subscriptions (address, domain, enabled, frequency, time_zone, updated_at, updated_by)
  SELECT e, ${backend === 'pg' ? "split_part(e, '@', 2)" : "SUBSTRING_INDEX(e, '@', -1)"}, 1, 'daily', NULL, ${now}, 'bench' FROM (
    SELECT DISTINCT ${email} AS e FROM maddr a JOIN msgrcpt r ON r.rid = a.id
    JOIN msgs m ON m.partition_tag = r.partition_tag AND m.mail_id = r.mail_id
    WHERE r.rs IN (' ', '', 'V') AND m.quar_type = 'Q' AND m.content IS NOT NULL ORDER BY e LIMIT ${recipients}) s;`);
const counts = (
  await dbSql(`SELECT (SELECT COUNT(*) FROM msgs), (SELECT COUNT(*) FROM msgrcpt), (SELECT COUNT(*) FROM qe_digest_subscriptions);`)
)
  .trim()
  .split(/\s+|\|/)
  .map(Number);
const data = { messages: counts[0], recipient_rows: counts[1], subscribers: counts[2] };
log(`data: ${JSON.stringify(data)}`);

// ---- 2. the Worker, built as `wrangler deploy` builds it ----
const dir = mkdtempSync(path.join(tmpdir(), 'qe-bench-wdigest-'));
await sh(
  path.join(ROOT, 'node_modules/.bin/wrangler'),
  ['deploy', '--dry-run', '--outdir', dir, 'bench/worker-digest-entry.ts'],
  undefined,
  { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' },
);
const script = readdirSync(dir).find((f) => f.endsWith('.js'));
if (!script) throw new Error(`wrangler wrote no .js to ${dir}`);
const twin = await startResendTwin();
const inspectorPort = 20000 + (process.pid % 20000);
const miniflareOptions = () => ({
  name: 'qe',
  modules: true,
  scriptPath: path.join(dir, script),
  modulesRoot: dir,
  compatibilityDate: '2026-05-01',
  compatibilityFlags: ['nodejs_compat'],
  inspectorPort,
  unsafeInspectorProxy: true,
  // the Worker's own log lines (job finished, digest batch) go to stderr: stdout is the report
  handleRuntimeStdio(stdout: Readable, stderr: Readable) {
    stdout.pipe(process.stderr);
    stderr.pipe(process.stderr);
  },
  bindings: {
    DATABASE_URL: benchDatabaseUrl(backend),
    RESEND_API_KEY: 're_bench_key',
    RESEND_BASE_URL: twin.url,
    RESEND_RATE_LIMIT: '0',
    DIGEST_FROM: 'Quarantine <quarantine@bench.example>',
    PUBLIC_URL: 'https://quarantine.bench.example',
    LINK_SECRET: 'bench-link-secret-0123456789abcdef0123',
  },
});

interface BenchWorker {
  scheduled(o: { cron: string; scheduledTime?: Date }): Promise<{ outcome: string; noRetry: boolean }>;
  queue(
    name: string,
    messages: Array<{ id: string; timestamp: Date; body: unknown; attempts: number }>,
  ): Promise<{ outcome: string; ackAll: boolean; retryBatch: unknown; explicitAcks: string[]; retryMessages: unknown[] }>;
  fetch(url: string): Promise<{ json(): Promise<unknown> }>;
}
let mf: Miniflare;
let ws: WebSocket;
let worker!: BenchWorker;
let workerdPid: string | undefined;
let nextId = 1;
const pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();

/** A workerd with a fresh isolate, its inspector connected (CPU profiler on), and its pid. */
async function boot() {
  mf = new Miniflare(miniflareOptions());
  await mf.ready;
  // Miniflare's inspector proxy connects to workerd's own inspector after `ready`; a message sent
  // before it has throws inside Miniflare (seen on the second boot): give it time
  await new Promise((r) => setTimeout(r, 2000));
  // ---- 3. the inspector: CPU profile and heap per invocation ----
  ws = new WebSocket(`ws://127.0.0.1:${inspectorPort}/qe`);
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  ws.on('message', (raw) => {
    const msg = JSON.parse(String(raw)) as { id?: number; result?: unknown; error?: { message: string } };
    if (msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error) p?.reject(new Error(msg.error.message));
    else p?.resolve(msg.result);
  });
  await cdp('Profiler.enable');
  await cdp('Profiler.setSamplingInterval', { interval: 100 });
  const heapProbe = await heap();
  workerdPid = findWorkerdPid();
  log(`inspector connected; Runtime.getHeapUsage ${heapProbe ? 'works' : 'not available'}; workerd pid ${workerdPid ?? 'not found'}`);
  worker = (await mf.getWorker('qe')) as unknown as BenchWorker;
}
async function shutdown() {
  ws.close();
  await mf.dispose();
}
/** one DevTools protocol call; rejects when unanswered within `timeout` ms (an unsupported method may never answer) */
function cdp<T = Record<string, unknown>>(method: string, params: Record<string, unknown> = {}, timeout = 120_000): Promise<T> {
  const id = nextId++;
  ws.send(JSON.stringify({ id, method, params }));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => {
      pending.delete(id);
      reject(new Error(`${method}: no answer in ${timeout} ms`));
    }, timeout);
    pending.set(id, {
      resolve: (v) => {
        clearTimeout(timer);
        resolve(v as T);
      },
      reject: (e) => {
        clearTimeout(timer);
        reject(e);
      },
    });
  });
}
const heap = async () => {
  try {
    return await cdp<{ usedSize: number; totalSize: number }>('Runtime.getHeapUsage', {}, 5_000);
  } catch {
    return null;
  }
};

/** bench/worker.ts's split of a V8 CPU profile, to a tenth of a millisecond */
function roundedCpu(p: Profile) {
  const r1 = (x: number) => Math.round(x * 10) / 10;
  const c = profileCpu(p);
  return { cpu_ms: r1(c.cpu_ms), js_ms: r1(c.js_ms), program_ms: r1(c.program_ms), gc_ms: r1(c.gc_ms), idle_ms: r1(c.idle_ms) };
}

const MB = 1024 * 1024;
/** Miniflare's workerd: the child of this process */
const findWorkerdPid = () =>
  readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .find((d) => {
      try {
        const st = readFileSync(`/proc/${d}/stat`, 'utf8');
        return st.includes('(workerd)') && Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]) === process.pid;
      } catch {
        return false;
      }
    });
const TICK_MS = 10; // USER_HZ 100
function workerdCpuMs(): number {
  if (!workerdPid) return Number.NaN;
  const f = readFileSync(`/proc/${workerdPid}/stat`, 'utf8').slice(-0).split(')').pop()!.trim().split(' ');
  return (Number(f[11]) + Number(f[12])) * TICK_MS; // utime, stime (fields 14 and 15)
}
async function measure<T>(what: string, fn: () => Promise<T>) {
  log(`${what}: start`);
  // (HeapProfiler.collectGarbage is never answered by this workerd: the "before" heap includes garbage)
  const before = await heap();
  let peak = before?.usedSize ?? 0;
  let polling = true;
  const poller = (async () => {
    while (polling) {
      const h = await heap();
      if (h && h.usedSize > peak) peak = h.usedSize;
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  await cdp('Profiler.start');
  const cpu0 = workerdCpuMs();
  const t0 = performance.now();
  const result = await fn();
  const workerdCpu = workerdCpuMs() - cpu0;
  const wall = performance.now() - t0;
  const { profile } = await cdp<{ profile: Profile }>('Profiler.stop');
  polling = false;
  await poller;
  const after = await heap();
  const cpu = roundedCpu(profile);
  if (args['cpu-prof']) {
    mkdirSync(args['cpu-prof'], { recursive: true });
    writeFileSync(path.join(args['cpu-prof'], `${backend}-${what.replace(/\W+/g, '-')}.cpuprofile`), JSON.stringify(profile));
  }
  const out = {
    ...cpu,
    wall_ms: Math.round(wall),
    /** user + system CPU of the whole workerd process (all its threads: Miniflare's own services too) */
    workerd_process_cpu_ms: Math.round(workerdCpu),
    heap_used_before_mb: before ? round(before.usedSize / MB, 1) : null,
    heap_used_peak_sampled_mb: before ? round(Math.max(peak, after?.usedSize ?? 0) / MB, 1) : null,
    heap_used_after_mb: after ? round(after.usedSize / MB, 1) : null,
    heap_total_after_mb: after ? round(after.totalSize / MB, 1) : null,
  };
  log(`${what}: ${JSON.stringify(out)}`);
  return { result, figures: out };
}

await boot();
const loadAtStart = loadavg().map((x) => round(x, 2));
const results: Record<string, unknown> = {};
try {
  // the scheduled digest: plans one planning page (DIGEST_PLAN_PAGES x DIGEST_PAGE_SIZE), enqueues
  // it as pages and the rest as a 'digest.plan' continuation
  type Sent = { kind: string; recipients?: string[]; after?: string };
  const drain = async () => (await (await worker.fetch('http://qe/__bench/sent')).json()) as Sent[];
  const sched = await measure('scheduled (cold isolate)', () => worker.scheduled({ cron: '*/15 * * * *', scheduledTime: new Date() }));
  const first = await drain();
  const batchesOf = (sent: Sent[]) => sent.filter((b) => b.kind === 'digest.batch');
  const plansOf = (sent: Sent[]) => sent.filter((b) => b.kind === 'digest.plan');
  const pages = batchesOf(first);
  results.scheduled = {
    outcome: sched.result.outcome,
    ...sched.figures,
    queue_messages: first.length,
    recipients_planned: pages.reduce((n, p) => n + p.recipients!.length, 0),
    continuation: plansOf(first).length === 1,
    largest_page: Math.max(...pages.map((p) => p.recipients!.length)),
  };
  // the same tick again in the same (now warm) isolate: nothing was sent, so it plans the same page
  const sched2 = await measure('scheduled (warm isolate)', () => worker.scheduled({ cron: '*/15 * * * *', scheduledTime: new Date() }));
  const second = await drain();
  results.scheduled_warm = { outcome: sched2.result.outcome, ...sched2.figures, queue_messages: second.length };

  // the whole plan: every continuation, one queue invocation each, until the last page
  let plan = plansOf(first)[0];
  const steps: Array<Record<string, unknown>> = [];
  const planned = new Set(pages.flatMap((p) => p.recipients!));
  let duplicates = 0;
  let stepNo = 0;
  while (plan) {
    stepNo++;
    const body = plan;
    const r = await measure(`plan step ${stepNo}`, () =>
      worker.queue('quarantine-edge-jobs', [{ id: `p${stepNo}`, timestamp: new Date(), body, attempts: 1 }]),
    );
    const out = await drain();
    for (const b of batchesOf(out)) {
      pages.push(b);
      for (const a of b.recipients!) {
        if (planned.has(a)) duplicates++;
        else planned.add(a);
      }
    }
    steps.push({
      acked: r.result.explicitAcks.length,
      retried: r.result.retryMessages.length,
      recipients_planned: batchesOf(out).reduce((n, b) => n + b.recipients!.length, 0),
      ...r.figures,
    });
    plan = plansOf(out)[0];
  }
  const worst = (k: string) => Math.max(...steps.map((x) => Number(x[k])));
  const median = (k: string) => {
    const v = steps.map((x) => Number(x[k])).sort((a, b) => a - b);
    return v[Math.floor(v.length / 2)] ?? null;
  };
  results.plan_steps = {
    invocations: steps.length,
    all_acked: steps.every((x) => x.acked === 1 && x.retried === 0),
    recipients_planned_in_all: planned.size,
    recipients_planned_twice: duplicates,
    largest_step_recipients: worst('recipients_planned'),
    cpu_ms_max: worst('cpu_ms'),
    cpu_ms_median: median('cpu_ms'),
    workerd_process_cpu_ms_max: worst('workerd_process_cpu_ms'),
    wall_ms_max: worst('wall_ms'),
    heap_used_peak_sampled_mb_max: worst('heap_used_peak_sampled_mb'),
    heap_total_after_mb_max: worst('heap_total_after_mb'),
    first: steps[0] ?? null,
    last: steps[steps.length - 1] ?? null,
  };

  // queue consumer batches: the first pages, as the queue would deliver them
  let next = 0;
  const batches: unknown[] = [];
  for (const size of batchSizes) {
    const slice = pages.slice(next, next + size);
    next += size;
    const before = twin.emails.length;
    const r = await measure(`queue batch of ${slice.length}`, () =>
      worker.queue(
        'quarantine-edge-jobs',
        slice.map((body, i) => ({ id: `m${next}-${i}`, timestamp: new Date(), body, attempts: 1 })),
      ),
    );
    batches.push({
      queue_messages: slice.length,
      recipients: slice.reduce((n, p) => n + p.recipients!.length, 0),
      emails_sent_to_twin: twin.emails.length - before,
      outcome: r.result.outcome,
      acked: r.result.ackAll ? slice.length : r.result.explicitAcks.length,
      retried: r.result.retryMessages.length,
      ...r.figures,
    });
  }
  results.queue_batches = batches;

  // one page again, as the first event of a fresh isolate (a new workerd): what a consumer pays
  // when the queue lands on an isolate that has not run anything yet
  await shutdown();
  await boot();
  const slice = pages.slice(next, next + 1);
  const before = twin.emails.length;
  const r = await measure('queue batch of 1 (fresh isolate)', () =>
    worker.queue(
      'quarantine-edge-jobs',
      slice.map((body, i) => ({ id: `f${next}-${i}`, timestamp: new Date(), body, attempts: 1 })),
    ),
  );
  results.queue_batch_fresh_isolate = {
    queue_messages: slice.length,
    recipients: slice.reduce((n, p) => n + p.recipients!.length, 0),
    emails_sent_to_twin: twin.emails.length - before,
    outcome: r.result.outcome,
    acked: r.result.ackAll ? slice.length : r.result.explicitAcks.length,
    retried: r.result.retryMessages.length,
    ...r.figures,
  };
} finally {
  await shutdown();
  await twin.close();
  rmSync(dir, { recursive: true, force: true });
  if (!args.keep && !args['skip-load']) {
    // the data set is kept for --skip-load only when --keep says so
    await dropBenchDatabase(backend).catch(() => {});
  }
}

const report = {
  bench: 'worker-digest (issue 19 item 3)',
  at: new Date().toISOString(),
  db: backend,
  data,
  load,
  limits: { cpu_ms: 30_000, memory_mb: 128 },
  machine: { load_average_start: loadAtStart, load_average_end: loadavg().map((x) => round(x, 2)) },
  method:
    'wrangler deploy --dry-run build of bench/worker-digest-entry.ts (functions/worker.ts, recording QUEUE) in Miniflare/workerd; CPU = non-idle time of a V8 CPU profile (inspector, 100 µs sampling) around the invocation; heap = Runtime.getHeapUsage polled every 10 ms',
  ...results,
};
process.stdout.write(`${JSON.stringify(report, null, args.json ? 0 : 2)}\n`);
