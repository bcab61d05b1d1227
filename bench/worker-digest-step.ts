/**
 * The Worker digest figures (issue 19 item 3) as a step of `npm run bench`: bench/worker-digest.ts
 * in a child process, on its own databases (it writes subscriptions and send records, which the
 * digest figure's database must not see), and a summary of its report against Cloudflare's
 * default limits per invocation. The whole report is kept under `report`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './common.ts';
import { round, type BenchBackend } from './db.ts';

interface Figures {
  cpu_ms: number;
  workerd_process_cpu_ms: number;
  heap_used_peak_sampled_mb: number;
  heap_total_after_mb: number;
}
interface Report {
  data: { messages: number; recipient_rows: number; subscribers: number };
  limits: { cpu_ms: number; memory_mb: number };
  scheduled: Figures & { outcome: string; recipients_planned: number };
  scheduled_warm: Figures;
  plan_steps: {
    invocations: number;
    all_acked: boolean;
    recipients_planned_in_all: number;
    recipients_planned_twice: number;
    cpu_ms_max: number;
    workerd_process_cpu_ms_max: number;
    heap_used_peak_sampled_mb_max: number;
    heap_total_after_mb_max: number;
  } | null;
  queue_batches: Array<Figures & { queue_messages: number; recipients: number; emails_sent_to_twin: number; outcome: string }>;
  queue_batch_fresh_isolate: Figures & { recipients: number; outcome: string };
}

/** CPU of one invocation: the larger of the V8 profile's non-idle time and workerd's own CPU (BENCHMARKS.md says why both). */
const cpuOf = (f: Figures) => Math.max(f.cpu_ms, f.workerd_process_cpu_ms);

export async function benchWorkerDigest(backend: BenchBackend, recipients: number, log: (s: string) => void) {
  const report = await runChild(backend, recipients, log);
  const invocations: Array<{ what: string; cpu_ms: number; heap_mb: number }> = [
    { what: 'scheduled (cold)', cpu_ms: cpuOf(report.scheduled), heap_mb: report.scheduled.heap_total_after_mb },
    { what: 'scheduled (warm)', cpu_ms: cpuOf(report.scheduled_warm), heap_mb: report.scheduled_warm.heap_total_after_mb },
    ...report.queue_batches.map((b) => ({
      what: `queue batch of ${b.queue_messages} (${b.recipients} recipients)`,
      cpu_ms: cpuOf(b),
      heap_mb: b.heap_total_after_mb,
    })),
    {
      what: 'queue batch of 1, fresh isolate',
      cpu_ms: cpuOf(report.queue_batch_fresh_isolate),
      heap_mb: report.queue_batch_fresh_isolate.heap_total_after_mb,
    },
  ];
  const steps = report.plan_steps;
  if (steps)
    invocations.push({
      what: `plan continuation (largest of ${steps.invocations})`,
      cpu_ms: Math.max(steps.cpu_ms_max, steps.workerd_process_cpu_ms_max),
      heap_mb: steps.heap_total_after_mb_max,
    });
  const worstCpu = Math.max(...invocations.map((i) => i.cpu_ms));
  const worstHeap = Math.max(...invocations.map((i) => i.heap_mb));
  const sent = report.queue_batches.every((b) => b.outcome === 'ok' && b.emails_sent_to_twin === b.recipients);
  return {
    subscribers: report.data.subscribers,
    messages: report.data.messages,
    limits: report.limits,
    invocations,
    worst_cpu_ms: worstCpu,
    worst_heap_committed_mb: worstHeap,
    // how many times the worst invocation fits in Cloudflare's default limits
    cpu_margin_x: round(report.limits.cpu_ms / worstCpu, 1),
    memory_margin_x: round(report.limits.memory_mb / worstHeap, 1),
    plan_covers_each_subscriber_once:
      !steps || (steps.all_acked && steps.recipients_planned_in_all === report.data.subscribers && steps.recipients_planned_twice === 0),
    batches_sent_every_digest: sent,
    report,
  };
}

function runChild(backend: BenchBackend, recipients: number, log: (s: string) => void): Promise<Report> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(ROOT, 'bench/worker-digest.ts'), '--db', backend, '--recipients', String(recipients), '--json'],
    {
      cwd: ROOT,
      // its own databases, named after this run's (a QE_BENCH_DB_SUFFIX=m1 run must not lose its 1M data)
      env: { ...process.env, QE_BENCH_DB_SUFFIX: `${process.env.QE_BENCH_DB_SUFFIX ?? ''}wdigest` },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  child.stderr.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-20_000);
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => {
      try {
        if (code !== 0) throw new Error(`exit ${code}`);
        resolve(JSON.parse(stdout.trim().split('\n').pop() ?? '') as Report);
      } catch (err) {
        log(`[${backend}] worker digest failed: ${stderr.slice(-3000)}`);
        reject(new Error(`worker digest (${backend}): ${(err as Error).message}`));
      }
    });
  });
}
