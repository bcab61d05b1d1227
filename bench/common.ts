import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ADMIN_KEY = 'bench-admin-key-0123456789abcdef0123';

export interface Stats {
  n: number;
  p50: number;
  p95: number;
  mean: number;
}

export function stats(xs: number[]): Stats {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => s[Math.min(s.length - 1, Math.floor(f * s.length))]!;
  return { n: s.length, p50: r3(q(0.5)), p95: r3(q(0.95)), mean: r3(s.reduce((a, b) => a + b, 0) / s.length) };
}

export const r3 = (x: number) => Math.round(x * 1000) / 1000;
export const ratio = (a: number, b: number) => Math.round((a / b) * 100) / 100;

export interface ServerChild {
  ports: { api: number; apiRelay?: number; relay?: number; pdp?: string | null };
  child: ChildProcess;
  stop(): Promise<void>;
}

/** bench/server.ts in its own Node process; resolves once it prints its ports. */
export function spawnServer(env: Record<string, string>): Promise<ServerChild> {
  // BENCH_SERVER_CPU_PROF=DIR: a V8 CPU profile of the API's process, written there when it stops
  const prof = process.env.BENCH_SERVER_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_SERVER_CPU_PROF}`] : [];
  const child = spawn(process.execPath, [...prof, '--import', 'tsx', path.join(ROOT, 'bench/server.ts')], {
    cwd: ROOT,
    env: { ...process.env, ADMIN_API_KEY: ADMIN_KEY, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    child.once('exit', (code) => reject(new Error(`bench server exited (${code}) before listening`)));
    rl.once('line', (line) => {
      const ports = JSON.parse(line) as ServerChild['ports'];
      resolve({
        ports,
        child,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

const agent = new http.Agent({ keepAlive: true, maxSockets: 4 });

/** A plain keep-alive HTTP request (lighter than fetch, so the client adds little to what is timed). */
export function request(
  port: number,
  pathname: string,
  opts: { method?: string; body?: unknown; headers?: Record<string, string> } = {},
): Promise<{ status: number; body: string }> {
  const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
  return new Promise((resolve, reject) => {
    const req = http.request(
      {
        host: '127.0.0.1',
        port,
        path: pathname,
        method: opts.method ?? 'GET',
        agent,
        headers: {
          authorization: `Bearer ${ADMIN_KEY}`,
          ...(payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
          ...opts.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

export function closeAgent() {
  agent.destroy();
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
