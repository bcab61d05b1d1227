// Process and port plumbing for the harness: readiness probes, stopping an amavisd master and
// whatever children it leaves, the per-backend lock file.
import { closeSync, openSync, readFileSync, readdirSync, rmSync, writeSync } from 'node:fs';
import net from 'node:net';

export function portOpen(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, host);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/** Reads the first reply line of an SMTP server; resolves null if none within timeout. */
export function banner(port: number, timeoutMs = 5000): Promise<string | null> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const done = (v: string | null) => {
      s.removeAllListeners();
      s.on('error', () => undefined);
      if (v !== null) s.end('QUIT\r\n');
      s.destroy();
      resolve(v);
    };
    s.setTimeout(timeoutMs, () => done(null));
    s.on('error', () => done(null));
    s.on('close', () => done(null));
    s.on('data', (c) => {
      buf += c.toString('latin1');
      const nl = buf.indexOf('\r\n');
      if (nl >= 0) done(buf.slice(0, nl));
    });
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function processAlive(pid: number, needle: string): boolean {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'latin1').includes(needle);
  } catch {
    return false;
  }
}

export function childrenOf(pid: number): number[] {
  const kids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) kids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return kids;
}

/** Stops an amavisd master (and any child it leaves behind): TERM, then KILL after a grace period. */
export async function stopAmavisd(pid: number, graceMs = 15_000): Promise<void> {
  if (!processAlive(pid, 'amavisd')) return;
  const kids = childrenOf(pid);
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const t0 = Date.now();
  while (processAlive(pid, 'amavisd') && Date.now() - t0 < graceMs) await sleep(50);
  if (processAlive(pid, 'amavisd')) process.kill(pid, 'SIGKILL');
  for (const k of kids) {
    if (processAlive(k, 'amavisd')) {
      try {
        process.kill(k, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

export function amavisIds(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((l) => l.startsWith('amavis:'));
  const f = line?.split(':');
  if (!f || f.length < 4) throw new Error('user amavis missing: run test/e2e/harness/install.sh as root');
  return { uid: Number(f[2]), gid: Number(f[3]) };
}

export function acquireLock(lockFile: string, kind: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockFile, 'wx', 0o644);
      writeSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const owner = Number(readFileSync(lockFile, 'utf8').trim());
    if (owner > 0 && processAlive(owner, 'node')) {
      throw new Error(
        `an e2e amavisd harness for ${kind} is already running in pid ${owner}` +
          `${owner === process.pid ? ' (this process: call stop() first)' : ''}; run e2e files one at a time (${lockFile})`,
      );
    }
    rmSync(lockFile, { force: true });
  }
  throw new Error(`cannot take ${lockFile}`);
}

export function releaseLock(lockFile: string): void {
  try {
    if (Number(readFileSync(lockFile, 'utf8').trim()) === process.pid) rmSync(lockFile, { force: true });
  } catch {
    // already gone
  }
}
