/**
 * The Worker: bundle size from `wrangler deploy --dry-run --minify` (the JS it would upload,
 * gzip-compressed as wrangler reports it) and start-up CPU from `wrangler check startup`, which
 * runs the bundle's start-up phase in local workerd and writes a V8 CPU profile. Start-up CPU here
 * is the profile's non-idle time (JS + V8's own "(program)" work such as compiling + GC), median of
 * three runs; measured on this machine's CPU, not Cloudflare's.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { ROOT } from './common.ts';

const env = { ...process.env, WRANGLER_SEND_METRICS: 'false', CLOUDFLARE_CF_FETCH_ENABLED: 'false', NO_COLOR: '1' };

function wrangler(args: string[], timeout = 180_000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(path.join(ROOT, 'node_modules/.bin/wrangler'), args, { cwd: ROOT, env, timeout, maxBuffer: 16 << 20 }, (err, out, stderr) =>
      err ? reject(new Error(`wrangler ${args.join(' ')}: ${(stderr || out || err.message).slice(-600)}`)) : resolve(out + stderr),
    );
  });
}

export interface Profile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export function profileCpu(p: Profile) {
  const kind = new Map(p.nodes.map((n) => [n.id, n.callFrame.functionName]));
  let idle = 0,
    program = 0,
    gc = 0,
    js = 0;
  p.samples.forEach((s, i) => {
    const dt = (p.timeDeltas[i] ?? 0) / 1000;
    const k = kind.get(s);
    if (k === '(idle)') idle += dt;
    else if (k === '(program)') program += dt;
    else if (k === '(garbage collector)') gc += dt;
    else js += dt;
  });
  return { cpu_ms: js + program + gc, js_ms: js, program_ms: program, gc_ms: gc, idle_ms: idle };
}

export async function benchWorker(log: (s: string) => void) {
  const dir = mkdtempSync(path.join(tmpdir(), 'qe-bench-worker-'));
  try {
    // one build: the JS for the size, the upload bundle for the start-up runs (no rebuild per run)
    const bundle = path.join(dir, 'worker.bundle');
    const out = await wrangler(['deploy', '--dry-run', '--minify', '--outdir', dir, '--outfile', bundle]);
    const reported = /Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/.exec(out);
    const js = readdirSync(dir).filter((f) => /\.(m?js|wasm)$/.test(f));
    const raw = js.reduce((n, f) => n + statSync(path.join(dir, f)).size, 0);
    const gz = js.reduce((n, f) => n + gzipSync(readFileSync(path.join(dir, f))).length, 0);
    const runs: Array<ReturnType<typeof profileCpu>> = [];
    let startupError: string | null = null;
    for (let i = 0; i < 3; i++) {
      const file = path.join(dir, `startup-${i}.cpuprofile`);
      try {
        await wrangler(['check', 'startup', '--worker', bundle, '--outfile', file]);
        runs.push(profileCpu(JSON.parse(readFileSync(file, 'utf8')) as Profile));
      } catch (err) {
        startupError = (err as Error).message;
        log(`  wrangler check startup failed: ${startupError}`);
        break;
      }
    }
    runs.sort((a, b) => a.cpu_ms - b.cpu_ms);
    const mid = runs[Math.floor(runs.length / 2)];
    const r1 = (x: number) => Math.round(x * 10) / 10;
    return {
      bundle_kib: r1(raw / 1024),
      bundle_gzip_kib: r1(gz / 1024),
      wrangler_reported_kib: reported ? { total: Number(reported[1]), gzip: Number(reported[2]) } : null,
      startup: mid
        ? {
            method: 'wrangler check startup (local workerd CPU profile), median of 3',
            cpu_ms: r1(mid.cpu_ms),
            js_ms: r1(mid.js_ms),
            program_ms: r1(mid.program_ms),
            gc_ms: r1(mid.gc_ms),
            runs_cpu_ms: runs.map((r) => r1(r.cpu_ms)),
          }
        : { skipped: `wrangler check startup did not run here: ${startupError}` },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
