import { originDialect } from './error-origin.ts';
import { Kysely, MysqlDialect, PostgresDialect, type Dialect } from 'kysely';
import type pg from 'pg';
import { DEFAULT_TIMEOUTS, boundedMysqlPool, boundedPgPool, type DbErrorListener, type DbTimeouts } from './bounded.ts';
import type { Database } from './types.ts';
import { mysqlTarget } from './mysql-url.ts';

// The drivers are imported when a URL asks for them, not at module load: a process (or Worker
// isolate) uses one of them, and evaluating the others (mysql2 above all) is most of a Worker's
// start-up CPU. The Worker bundle still contains all three; only their evaluation is deferred.

export type SqlDialect = 'mysql' | 'postgres';
export type DriverName = 'mysql2' | 'pg' | 'neon' | 'pglite';

export interface DbHandle {
  db: Kysely<Database>;
  dialect: SqlDialect;
  driver: DriverName;
  close(): Promise<void>;
}

export interface OpenOptions {
  /** DATABASE_URL, or a Hyperdrive connection string. Unset means the embedded database. */
  url: string | undefined;
  runtime: 'node' | 'worker';
  /** Connections in the pool. A Worker uses one per request (workerd forbids sharing I/O across requests). */
  poolSize?: number;
  /** Only the Node entry points provide this, so PGlite's WASM never lands in the Worker bundle. */
  openEmbedded?: (path: string | undefined) => Promise<Dialect>;
  /** the URL is a Hyperdrive binding's connection string (src/db/mysql-url.ts) */
  hyperdrive?: boolean;
  /** Node needs a WebSocket constructor for the Neon driver; workerd has a global one. */
  webSocket?: unknown;
  /** connect, statement and lock-wait bounds (DB_*_TIMEOUT_MS); defaults: src/db/bounded.ts */
  timeouts?: Partial<DbTimeouts>;
  /** where a connection's own 'error' events go (logged, never thrown: see src/db/bounded.ts) */
  onError?: DbErrorListener;
  /** marks every error this database throws with this name (a registered gateway's id: src/db/error-origin.ts) */
  origin?: string;
}

const quietErrors: DbErrorListener = () => {};

/** Options in the URL that are ours, not the driver's: removed before the URL is handed on. */
const OWN_PARAMS = ['driver', 'neon_ws_proxy', 'neon_insecure', 'prepare'] as const;

export function describeUrl(url: string | undefined): { driver: DriverName; dialect: SqlDialect } {
  if (!url || url.startsWith('pglite://')) return { driver: 'pglite', dialect: 'postgres' };
  const u = new URL(url);
  if (u.protocol === 'mysql:' || u.protocol === 'mariadb:') return { driver: 'mysql2', dialect: 'mysql' };
  const neon = u.searchParams.get('driver') === 'neon' || u.hostname.endsWith('.neon.tech');
  return { driver: neon ? 'neon' : 'pg', dialect: 'postgres' };
}

function stripOwnParams(url: string): string {
  const u = new URL(url);
  for (const p of OWN_PARAMS) u.searchParams.delete(p);
  if (u.protocol === 'mariadb:') u.protocol = 'mysql:';
  return u.toString();
}

export async function openDatabase(opts: OpenOptions): Promise<DbHandle> {
  const { driver, dialect } = describeUrl(opts.url);
  const size = opts.poolSize ?? (opts.runtime === 'worker' ? 1 : 10);
  const t: DbTimeouts = { ...DEFAULT_TIMEOUTS, ...opts.timeouts };
  const onError = opts.onError ?? quietErrors;
  // Server-side bounds go with the session on Node. A Worker reaches the database through
  // Hyperdrive's shared pool, where a session setting could outlive the request: there only the
  // client-side bounds apply (they answer as fast; the server finishes the statement on its own).
  const serverSide = opts.runtime === 'node';
  // The server cancels a statement at queryMs (the connection stays usable); the client gives up a
  // second later, for a server or network that does not answer at all.
  const clientBound: DbTimeouts = { ...t, queryMs: serverSide ? t.queryMs + 1000 : t.queryMs };
  let kyselyDialect: Dialect;

  if (driver === 'pglite') {
    if (!opts.openEmbedded) {
      throw new Error('DATABASE_URL is not set, and the embedded database only runs on Node');
    }
    const path = opts.url?.slice('pglite://'.length) || undefined;
    kyselyDialect = await opts.openEmbedded(path);
  } else if (driver === 'mysql2') {
    const { createPool: createMysqlPool } = await import('mysql2');
    const target = mysqlTarget(stripOwnParams(opts.url!), { hyperdrive: opts.hyperdrive });
    const pool = createMysqlPool({
      uri: target.uri,
      ...(target.ssl ? { ssl: target.ssl } : {}),
      connectionLimit: size,
      charset: 'utf8mb4',
      timezone: 'Z',
      dateStrings: true,
      connectTimeout: t.connectMs,
      // workerd forbids eval/new Function, which mysql2's row parser generator uses.
      disableEval: opts.runtime === 'worker',
    });
    const lockS = Math.max(1, Math.ceil(t.lockMs / 1000));
    // Row locks (InnoDB) and table/metadata locks (LOCK TABLES, DDL) each have their own wait;
    // max_statement_time is MariaDB's (the /*M! */ part is skipped by MySQL). net_write_timeout:
    // a streamed result (the digest's, src/digest/stream.ts) pauses the socket while its consumer
    // is behind (a paced mail service); the server must wait as long as the statement may run.
    const writeS = Math.max(60, Math.ceil(t.queryMs / 1000));
    const session = serverSide
      ? `SET SESSION innodb_lock_wait_timeout = ${lockS}, lock_wait_timeout = ${lockS}, net_write_timeout = ${writeS} /*M!, max_statement_time = ${t.queryMs / 1000} */`
      : null;
    kyselyDialect = new MysqlDialect({ pool: boundedMysqlPool(pool as never, clientBound, onError, session) as never });
  } else if (driver === 'neon') {
    const { Pool: NeonPool, neonConfig } = await import('@neondatabase/serverless');
    const u = new URL(opts.url!);
    const proxy = u.searchParams.get('neon_ws_proxy');
    if (proxy) {
      // A plain PostgreSQL behind a WebSocket-to-TCP proxy (tests, self-hosting).
      // e.g. "127.0.0.1:9000/v1": the driver appends ?address=host:port
      neonConfig.wsProxy = proxy;
      neonConfig.useSecureWebSocket = u.searchParams.get('neon_insecure') !== '1';
      neonConfig.pipelineTLS = false;
      neonConfig.pipelineConnect = false;
    }
    if (opts.webSocket) neonConfig.webSocketConstructor = opts.webSocket as typeof WebSocket;
    const pool = new NeonPool({ connectionString: stripOwnParams(opts.url!), max: size, connectionTimeoutMillis: t.connectMs });
    // Neon's proxy in front of the server: only the client-side bounds (as on a Worker).
    kyselyDialect = new PostgresDialect({ pool: boundedPgPool(pool as never, { ...t }, onError) as unknown as pg.Pool });
  } else {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: stripOwnParams(opts.url!),
      max: size,
      // also bounds the wait for a free client when every one is busy
      connectionTimeoutMillis: t.connectMs,
      ...(serverSide ? { statement_timeout: t.queryMs, lock_timeout: t.lockMs } : {}),
    });
    // Named statements on Node only: a Worker's connection lives for one request (nothing to reuse)
    // and goes through Hyperdrive's pool. ?prepare=false: none (a pooler in transaction mode, e.g.
    // PgBouncer before 1.21, does not keep a session's prepared statements across transactions).
    const prepare = serverSide && new URL(opts.url!).searchParams.get('prepare') !== 'false';
    kyselyDialect = new PostgresDialect({ pool: boundedPgPool(pool as never, clientBound, onError, { prepare }) as unknown as pg.Pool });
  }

  const db = new Kysely<Database>({ dialect: opts.origin === undefined ? kyselyDialect : originDialect(kyselyDialect, opts.origin) });
  return { db, dialect, driver, close: () => db.destroy() };
}
