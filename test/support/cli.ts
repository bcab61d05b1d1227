/** The CLI as an admin runs it from a fresh clone: bin/quarantine-edge.js, no build step. */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';

export const BIN = new URL('../../bin/quarantine-edge.js', import.meta.url).pathname;

/** The environment without any of ours, so a developer's shell cannot change what a test sees. */
export const cleanEnv = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) => !/^(DATABASE_URL|STATE_DATABASE_URL|ADMIN_API_KEY|AMAVISD_PDP|RELAY_|PORT|PURGE_SCHEDULE)/.test(k),
    ),
  );

export function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...args], { env: { ...cleanEnv(), ...env }, timeout: 60_000 }, (err, out, errOut) =>
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, out: String(out), err: String(errOut) }),
    );
  });
}

export async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise((r) => probe.close(r));
  return port;
}

export interface Running {
  base: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Start a long-running process (`serve`, `relay`) and wait until its output matches `ready`
 * (rejects with the output when it exits first or after 60 s).
 */
export async function startProcess(
  argv: string[],
  opts: { env: Record<string, string>; port: number; ready: RegExp; cwd?: string },
): Promise<Running> {
  const child: ChildProcess = spawn(argv[0]!, argv.slice(1), { env: opts.env, cwd: opts.cwd });
  let out = '';
  const take = (b: Buffer) => (out += String(b));
  child.stdout!.on('data', take);
  child.stderr!.on('data', take);
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not ready after 60 s:\n${out}`)), 60_000);
    const check = () => {
      if (opts.ready.test(out)) clearTimeout(timer), resolve();
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.once('exit', (code) => (clearTimeout(timer), reject(new Error(`exited (${code}) before it was ready:\n${out}`))));
  });
  return {
    base: `http://127.0.0.1:${opts.port}`,
    output: () => out,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** `quarantine-edge serve` with this environment on a free port, until it listens. */
export async function startServe(env: Record<string, string>): Promise<Running> {
  const port = await freePort();
  return startProcess([process.execPath, BIN, 'serve'], {
    env: { ...cleanEnv(), ...env, PORT: String(port) },
    port,
    ready: /quarantine-edge listening/,
  });
}
