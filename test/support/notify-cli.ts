// `quarantine-edge notify` as an admin's cron runs it (bin/, a process of its own), for the kill tests.
import { spawn } from 'node:child_process';

const BIN = new URL('../../bin/quarantine-edge.js', import.meta.url).pathname;
const CLOCK = new URL('./clock-offset.mjs', import.meta.url).href;

/** The environment without anything of ours, so a developer's shell cannot change what the CLI sees. */
const cleanEnv = () =>
  Object.fromEntries(
    Object.entries(process.env).filter(
      ([k]) =>
        !/^(DATABASE_URL|STATE_DATABASE_URL|ADMIN_API_KEY|AMAVISD_PDP|RELAY_|PORT|RESEND_|SMTP_URL|DIGEST_|PUBLIC_URL|LINK_SECRET|BACKUP_MX_DOMAINS|QE_TEST_)/.test(
          k,
        ),
    ),
  );

export interface Child {
  pid: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal: NodeJS.Signals): boolean;
}

export interface NotifyOptions {
  /** the child's wall clock this far from ours (test/support/clock-offset.mjs) */
  clockOffsetMs?: number;
  args?: string[];
}

export function notify(env: Record<string, string>, o: NotifyOptions = {}): Child {
  const child = spawn(process.execPath, ['--import', CLOCK, BIN, 'notify', ...(o.args ?? ['--force-all', '--force-all-time'])], {
    env: { ...cleanEnv(), ...env, QE_TEST_CLOCK_OFFSET_MS: String(Math.round(o.clockOffsetMs ?? 0)) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (b: Buffer) => void (out += String(b)));
  child.stderr.on('data', (b: Buffer) => void (out += String(b)));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  return { pid: child.pid!, output: () => out, exited, kill: (s) => child.kill(s) };
}

/** A run to its end (killed after 90 s so a hang fails the test instead of timing it out silently). */
export async function notifyToEnd(
  env: Record<string, string>,
  o: NotifyOptions = {},
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  const c = notify(env, o);
  const timer = setTimeout(() => c.kill('SIGKILL'), 90_000);
  const r = await c.exited;
  clearTimeout(timer);
  return { ...r, out: c.output() };
}

/**
 * Clock offsets that put a run at hh:58:30 and its restart at (hh+1):00:30, whatever the time now;
 * never across midnight UTC: a digest's links expire at a day boundary (src/digest/compose.ts
 * expiryAt), so a restart on the next day re-sends a held batch with other links, which Resend
 * rightly refuses as another payload under a used key (409, recorded as delivered), and the test
 * could not tell that apart from a key that depends on the clock.
 */
export function acrossTheHour(): { before: () => number; after: () => number } {
  let boundary = Math.ceil((Date.now() + 60_000) / 3_600_000) * 3_600_000;
  if (boundary % 86_400_000 === 0) boundary += 3_600_000;
  return { before: () => boundary - 90_000 - Date.now(), after: () => boundary + 30_000 - Date.now() };
}
