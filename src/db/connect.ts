import { Kysely, MysqlDialect, PostgresDialect, type Dialect } from 'kysely';
import type pg from 'pg';
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
}

/** Options in the URL that are ours, not the driver's: removed before the URL is handed on. */
const OWN_PARAMS = ['driver', 'neon_ws_proxy', 'neon_insecure'] as const;

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
      connectTimeout: 5000,
      // workerd forbids eval/new Function, which mysql2's row parser generator uses.
      disableEval: opts.runtime === 'worker',
    });
    kyselyDialect = new MysqlDialect({ pool });
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
    const pool = new NeonPool({ connectionString: stripOwnParams(opts.url!), max: size });
    kyselyDialect = new PostgresDialect({ pool: pool as unknown as pg.Pool });
  } else {
    const { default: pg } = await import('pg');
    const pool = new pg.Pool({
      connectionString: stripOwnParams(opts.url!),
      max: size,
      connectionTimeoutMillis: 5000,
    });
    // An idle client that loses its server must not crash the process.
    pool.on('error', () => {});
    kyselyDialect = new PostgresDialect({ pool });
  }

  const db = new Kysely<Database>({ dialect: kyselyDialect });
  return { db, dialect, driver, close: () => db.destroy() };
}
