/**
 * Database faults for the fault suite (test/integration/db-faults.test.ts) and
 * `npm run bench -- --faults`: the real `quarantine-edge serve` in a child process, and what an
 * operator (or an outage) does to its database: kill its backends, lock a table, revoke a privilege.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createConnection, type Connection } from 'mysql2/promise';
import pg from 'pg';
import { PG_ADMIN, localDatabaseUrl, mysqlRoot, type Server } from './databases.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const USER = 'qe_test';

export interface ServeChild {
  port: number;
  child: ChildProcess;
  alive(): boolean;
  /** the child's last lines of output (for a failure's message) */
  output(): string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

/** `node bin/quarantine-edge.js serve`, as an operator runs it; resolves once /healthz answers. */
export async function startServe(env: Record<string, string>): Promise<ServeChild> {
  const port = await freePort();
  const child = spawn(process.execPath, [path.join(ROOT, 'bin/quarantine-edge.js'), 'serve'], {
    cwd: ROOT,
    env: { ...process.env, ...env, PORT: String(port) },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const keep = (b: Buffer) => {
    lines.push(...b.toString('utf8').split('\n').filter(Boolean));
    if (lines.length > 200) lines.splice(0, lines.length - 200);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const alive = () => child.exitCode === null && child.signalCode === null;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (!alive()) throw new Error(`serve exited before answering:\n${lines.join('\n')}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) break;
    if (Date.now() > deadline) throw new Error(`serve did not answer within 60 s:\n${lines.join('\n')}`);
    await sleep(200);
  }
  return {
    port,
    child,
    alive,
    output: () => lines.join('\n'),
    stop: () =>
      new Promise<void>((done) => {
        if (!alive()) return done();
        child.once('exit', () => done());
        child.kill('SIGTERM');
        setTimeout(() => alive() && child.kill('SIGKILL'), 5000).unref();
      }),
  };
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Tally {
  /** status -> count; 0 = no answer (network error or the client's timeout) */
  byStatus: Record<number, number>;
  total: number;
}

/** `concurrency` clients GETting `url` back to back until stop(); every answer is counted. */
export function startLoad(url: string, headers: Record<string, string>, concurrency: number, clientTimeoutMs = 20_000) {
  const tally: Tally = { byStatus: {}, total: 0 };
  let running = true;
  const count = (s: number) => {
    tally.byStatus[s] = (tally.byStatus[s] ?? 0) + 1;
    tally.total++;
  };
  const loops = Array.from({ length: concurrency }, async () => {
    while (running) {
      try {
        const res = await fetch(url, { headers, signal: AbortSignal.timeout(clientTimeoutMs) });
        await res.arrayBuffer();
        count(res.status);
      } catch {
        count(0);
        await sleep(20);
      }
    }
  });
  return {
    tally,
    async stop() {
      running = false;
      await Promise.all(loops);
      return tally;
    },
  };
}

export interface DbOperator {
  /** terminate every connection of the project's user to this database (pg_terminate_backend / KILL CONNECTION) */
  killBackends(): Promise<number>;
  /** the connections of the project's user waiting for a lock */
  lockWaiters(): Promise<number[]>;
  kill(id: number): Promise<void>;
  /** hold an exclusive lock on the table until the returned function runs */
  lockTable(table: string): Promise<() => Promise<void>>;
  revoke(privilege: string, table: string): Promise<void>;
  grant(privilege: string, table: string): Promise<void>;
  close(): Promise<void>;
}

export async function dbOperator(server: Server, dbName: string): Promise<DbOperator> {
  return server === 'postgres' ? pgOperator(dbName) : mysqlOperator(dbName);
}

async function pgOperator(dbName: string): Promise<DbOperator> {
  const adminUrl = new URL(PG_ADMIN);
  adminUrl.pathname = `/${dbName}`;
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  admin.on('error', () => {});
  await admin.connect();
  const q = async (text: string, params: unknown[] = []) => (await admin.query(text, params)).rows;
  return {
    async killBackends() {
      const rows = await q(
        `SELECT count(*) FILTER (WHERE pg_terminate_backend(pid))::int AS n FROM pg_stat_activity WHERE datname = $1 AND usename = $2`,
        [dbName, USER],
      );
      return Number(rows[0]?.n ?? 0);
    },
    async lockWaiters() {
      const rows = await q(`SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND wait_event_type = 'Lock'`, [
        dbName,
        USER,
      ]);
      return rows.map((r) => Number(r.pid));
    },
    async kill(pid) {
      await q('SELECT pg_terminate_backend($1)', [pid]);
    },
    async lockTable(table) {
      const locker = new pg.Client({ connectionString: adminUrl.toString() });
      locker.on('error', () => {});
      await locker.connect();
      await locker.query('BEGIN');
      await locker.query(`LOCK TABLE ${pg.escapeIdentifier(table)} IN ACCESS EXCLUSIVE MODE`);
      return async () => {
        await locker.query('ROLLBACK').catch(() => {});
        await locker.end().catch(() => {});
      };
    },
    async revoke(privilege, table) {
      await q(`REVOKE ${privilege} ON ${pg.escapeIdentifier(table)} FROM ${USER}`);
    },
    async grant(privilege, table) {
      await q(`GRANT ${privilege} ON ${pg.escapeIdentifier(table)} TO ${USER}`);
    },
    close: () => admin.end(),
  };
}

const mysqlUser = `'${USER}'@'127.0.0.1'`;

/**
 * MariaDB applies a database-level REVOKE only to new sessions: the fault database's grants are
 * turned into table-level ones first (which apply at once), as a DBA granting per table would have.
 */
export async function useTableGrants(dbName: string): Promise<() => Promise<void>> {
  const conn = await createConnection(localDatabaseUrl('mysql', dbName));
  const [rows] = await conn.query('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()');
  await conn.end();
  const tables = (rows as Array<{ t: string }>).map((r) => r.t);
  await mysqlRoot(
    [
      `REVOKE ALL PRIVILEGES ON ${dbName}.* FROM ${mysqlUser};`,
      `GRANT LOCK TABLES ON ${dbName}.* TO ${mysqlUser};`,
      ...tables.map((t) => `GRANT ALL PRIVILEGES ON ${dbName}.\`${t}\` TO ${mysqlUser};`),
    ].join('\n'),
  );
  return () => mysqlRoot(tables.map((t) => `REVOKE ALL PRIVILEGES ON ${dbName}.\`${t}\` FROM ${mysqlUser};`).join('\n')).catch(() => {});
}

async function mysqlOperator(dbName: string): Promise<DbOperator> {
  const url = localDatabaseUrl('mysql', dbName);
  const admin: Connection = await createConnection(url);
  admin.on('error', () => {});
  const lockers = new Set<number>();
  const own = async () => {
    const [rows] = await admin.query(
      'SELECT ID AS id, STATE AS state FROM information_schema.PROCESSLIST WHERE DB = ? AND USER = ? AND ID <> CONNECTION_ID()',
      [dbName, USER],
    );
    return (rows as Array<{ id: number; state: string | null }>).filter((r) => !lockers.has(Number(r.id)));
  };
  const kill = async (id: number) => {
    await admin.query(`KILL CONNECTION ${Number(id)}`).catch((err: { errno?: number }) => {
      if (err.errno !== 1094) throw err; // already gone
    });
  };
  return {
    async killBackends() {
      const ids = (await own()).map((r) => Number(r.id));
      for (const id of ids) await kill(id);
      return ids.length;
    },
    async lockWaiters() {
      return (await own()).filter((r) => /lock/i.test(r.state ?? '')).map((r) => Number(r.id));
    },
    kill,
    async lockTable(table) {
      const locker = await createConnection(url);
      locker.on('error', () => {});
      lockers.add(locker.threadId);
      await locker.query(`LOCK TABLES \`${table}\` WRITE`);
      return async () => {
        await locker.query('UNLOCK TABLES').catch(() => {});
        await locker.end().catch(() => {});
        lockers.delete(locker.threadId);
      };
    },
    async revoke(privilege, table) {
      await mysqlRoot(`REVOKE ${privilege} ON ${dbName}.\`${table}\` FROM ${mysqlUser};`);
    },
    async grant(privilege, table) {
      await mysqlRoot(`GRANT ${privilege} ON ${dbName}.\`${table}\` TO ${mysqlUser};`);
    },
    close: () => admin.end(),
  };
}
