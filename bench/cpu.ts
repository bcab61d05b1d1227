/**
 * CPU accounting for the throughput figure (Linux /proc; NaN elsewhere): who spends the two cores
 * while autocannon drives the list. The API's process, the database's processes and the bench's own
 * process (autocannon runs in it) are read before and after the run.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** utime + stime of a process in ms (10 ms ticks); NaN if it cannot be read */
export function processCpuMs(pid: number | undefined): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(')').pop()!.trim().split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return Number.NaN;
  }
}

/** The pids of processes named `name` (mariadbd's one process). */
function pidsNamed(name: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === name) out.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

export interface CpuSnapshot {
  /** pid -> CPU ms at the snapshot */
  db: Map<number, number>;
  api: number;
  bench: number;
}

/**
 * PostgreSQL: the backends connected to the bench database (one per pooled connection; a backend
 * that first appears in the later snapshot counts from 0, i.e. with its start-up). MariaDB: the
 * whole server process (one process, every connection's thread: other users of the server count too).
 */
export async function cpuSnapshot(
  backend: 'mariadb' | 'pg',
  apiPid: number | undefined,
  backendPids: () => Promise<number[]>,
): Promise<CpuSnapshot> {
  const pids = backend === 'pg' ? await backendPids() : pidsNamed('mariadbd');
  const usage = process.cpuUsage();
  return {
    db: new Map(pids.map((p) => [p, processCpuMs(p)])),
    api: processCpuMs(apiPid),
    bench: (usage.user + usage.system) / 1000,
  };
}

/** CPU ms per request between two snapshots. */
export function cpuPerRequest(a: CpuSnapshot, b: CpuSnapshot, requests: number) {
  let db = 0;
  for (const [pid, ms] of b.db) {
    const before = a.db.get(pid) ?? 0;
    if (Number.isFinite(ms) && Number.isFinite(before)) db += ms - before;
  }
  const per = (ms: number) => (requests > 0 ? Math.round((ms / requests) * 100) / 100 : null);
  return {
    api_process_ms: per(b.api - a.api),
    database_ms: per(db),
    /** the bench process: autocannon (and nothing else during the run) */
    load_generator_ms: per(b.bench - a.bench),
  };
}
