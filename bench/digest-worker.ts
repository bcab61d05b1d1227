/**
 * The digest run under test, in its own Node process so that its peak RSS is the product's alone:
 * exactly what `quarantine-edge notify --force-all --force-all-time` does (functions/cli-ops.ts:
 * startRuntime from functions/node.ts, then runDigest with the system identity), with the Resend
 * mailer (src/mail/resend.ts) pointed at RESEND_BASE_URL.
 *
 * env: DATABASE_URL, RESEND_BASE_URL; BENCH_COUNT_SQL=1 counts the statements the run sends (a
 * Kysely plugin on the same handle; off by default so it adds nothing to what is timed).
 * Prints one JSON line: the run's report, wall time, statements, process.resourceUsage().maxRSS and the
 * largest of each part of process.memoryUsage() over the run (`memory`: what the peak is made of).
 */
import type { KyselyPlugin, PluginTransformQueryArgs, PluginTransformResultArgs, QueryResult, RootOperationNode, UnknownRow } from 'kysely';
import { startRuntime } from '../functions/node.ts';
import { parseConfig } from '../src/config.ts';
import type { Logger } from '../src/deps.ts';
import { inProgressCutoff } from '../src/digest/plan.ts';
import { runDigest, systemIdentity } from '../src/digest/run.ts';

const env = process.env;
const t0 = performance.now();
const config = parseConfig({
  DATABASE_URL: env.DATABASE_URL,
  RESEND_API_KEY: 're_bench_key',
  RESEND_BASE_URL: env.RESEND_BASE_URL,
  RESEND_RATE_LIMIT: env.RESEND_RATE_LIMIT ?? '0',
  DIGEST_FROM: 'Quarantine <quarantine@bench.example>',
  PUBLIC_URL: 'https://quarantine.bench.example',
  LINK_SECRET: 'bench-link-secret-0123456789abcdef0123',
});
const runtime = await startRuntime(config, { bounds: 'jobs' }); // as `notify` runs
const quiet: Logger = { info() {}, warn() {}, error: (msg, f) => console.error(msg, f ?? '') };
const statements: Record<string, number> = {};
let deps = { ...runtime.deps, log: quiet };
if (env.BENCH_COUNT_SQL === '1') {
  const counter: KyselyPlugin = {
    transformQuery(args: PluginTransformQueryArgs): RootOperationNode {
      const k = args.node.kind;
      statements[k] = (statements[k] ?? 0) + 1;
      return args.node;
    },
    transformResult: async (args: PluginTransformResultArgs): Promise<QueryResult<UnknownRow>> => args.result,
  };
  deps = { ...deps, db: deps.db.withPlugin(counter) };
}
// the same cutoff runDigest computes (mail still in progress bounds the run), for the floor to use
const cutoff = await inProgressCutoff(deps, Math.floor(deps.clock.now() / 1000));
// what the peak RSS is made of: the highest of each part of process.memoryUsage(), sampled twice a second
const memory = {
  rss_mb: 0,
  heap_total_mb: 0,
  heap_used_mb: 0,
  external_mb: 0,
  array_buffers_mb: 0,
  at_peak_rss: {} as Record<string, number>,
};
const mb = (n: number) => Math.round(n / 1048576);
const sampler = setInterval(() => {
  const m = process.memoryUsage();
  const now = {
    rss_mb: mb(m.rss),
    heap_total_mb: mb(m.heapTotal),
    heap_used_mb: mb(m.heapUsed),
    external_mb: mb(m.external),
    array_buffers_mb: mb(m.arrayBuffers),
  };
  if (now.rss_mb > memory.rss_mb) memory.at_peak_rss = now;
  for (const k of Object.keys(now) as (keyof typeof now)[]) memory[k] = Math.max(memory[k], now[k]);
}, 500);
const started = performance.now();
const cpu0 = process.cpuUsage();
const report = await runDigest(deps, systemIdentity, { forceAll: true, allTime: true, includeBackupMx: false, streamed: true });
const runMs = performance.now() - started;
const cpu = process.cpuUsage(cpu0);
clearInterval(sampler);
await runtime.close();
const { planned: _planned, ...rest } = report;
process.stdout.write(
  `${JSON.stringify({
    report: rest,
    cutoff,
    run_ms: Math.round(runMs),
    /** user + system CPU of this process during the run: less sensitive to a loaded machine than wall time */
    cpu_ms: Math.round((cpu.user + cpu.system) / 1000),
    process_ms: Math.round(performance.now() - t0),
    statements: env.BENCH_COUNT_SQL === '1' ? statements : null,
    max_rss_mb: Math.round(process.resourceUsage().maxRSS / 1024),
    memory,
  })}\n`,
);
