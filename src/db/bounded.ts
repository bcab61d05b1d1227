/**
 * Time bounds and dead connections, under Kysely, for the pools of all three network drivers.
 *
 * - Every statement gets a client-side deadline (`queryMs`): a paused network or a stuck server
 *   never holds a request longer. Streamed results (the digest's one pass, src/digest/stream.ts)
 *   are bounded by the server's statement timeout and per FETCH instead. The connection that overran is destroyed, never reused, since
 *   its reply may still arrive and would be read as the next statement's.
 * - Waiting for a pooled connection is bounded too (`connectMs`; pg has it built in).
 * - A connection that died (timeout, reset, killed backend) answers the transaction's ROLLBACK as
 *   done (the server discards an open transaction with its session), so Kysely rethrows the
 *   original error instead of "Can't add new command when connection is in closed state".
 * - Every connection keeps an 'error' listener for its whole life: the drivers emit 'error' on a
 *   checked-out client whose server went away, and an unheard 'error' event ends the process.
 */

import { isConnectionError } from './errors.ts';

export interface DbTimeouts {
  /** opening a connection, or waiting for a free one in the pool */
  connectMs: number;
  /** one statement, client-side; the server's own statement timeout is set to the same */
  queryMs: number;
  /** waiting for a row or table lock (server-side) */
  lockMs: number;
}

export const DEFAULT_TIMEOUTS: DbTimeouts = { connectMs: 3000, queryMs: 5000, lockMs: 3000 };

/** Our own deadline passed: classified as a timeout (503) by src/db/errors.ts. */
export class DatabaseTimeoutError extends Error {
  readonly code = 'QE_DB_TIMEOUT';
  constructor(what: 'connect' | 'query', ms: number) {
    super(what === 'connect' ? `no database connection within ${ms} ms` : `the database did not answer within ${ms} ms`);
    this.name = 'DatabaseTimeoutError';
  }
}

/** A statement sent on a connection that already died. */
export class ConnectionLostError extends Error {
  readonly code = 'QE_CONNECTION_LOST';
  constructor(cause: unknown) {
    super(`the database connection was lost: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.name = 'ConnectionLostError';
  }
}

/**
 * A statement whose text begins with this comment gets its own client-side deadline (`ms`, plus a
 * second for the server's own cancel to arrive first) instead of `queryMs`: the overview's
 * snapshot job counts a window that is too large for a request (src/quarantine/stats-snapshots.ts),
 * and sets the server's bound for the same statements itself. Only this code writes SQL text (values
 * are parameters), so no request can lengthen its own bound.
 */
export function longerDeadline(ms: number): string {
  return `/* qe:deadline-ms=${Math.max(1, Math.floor(ms))} */ `;
}
const DEADLINE = /^\/\* qe:deadline-ms=(\d{1,9}) \*\//;
const deadlineOf = (sqlText: string, queryMs: number) => {
  const m = DEADLINE.exec(sqlText);
  return m ? Number(m[1]) + 1000 : queryMs;
};

/**
 * A statement whose text begins with this comment is sent as a named (prepared) statement where the
 * driver is node-postgres (src/db/connect.ts): parsed once per connection, and after five executions
 * PostgreSQL may keep a generic plan instead of planning it again. For the hot statements whose
 * planning costs as much as running them (the list's page: ~1 ms of planning for ~1 ms of execution
 * at 1M messages; BENCHMARKS.md, issue 19.4). Only for statements whose text does not grow with
 * their input (a list of values is one array parameter), and whose plan does not hinge on a value:
 * PostgreSQL picks the generic plan only where it is not dearer than the planned ones.
 */
export const PREPARED = '/* qe:prepared */ ';
/** Named statements kept per connection; later texts run unnamed (nothing to evict, memory bounded). */
export const PREPARED_PER_CONNECTION = 32;
/** "cached plan must not change result type": a table changed under a prepared statement. */
const PLAN_CHANGED = '0A000';

export type DbErrorListener = (err: Error, where: string) => void;

const ROLLBACK = /^\s*rollback\s*;?\s*$/i;
// past our leading comments (PREPARED, longerDeadline)
const verbOf = (sqlText: string) => /^\s*(?:\/\*[^*]*\*\/\s*)*(\w+)/.exec(sqlText)?.[1]?.toUpperCase() ?? null;

/** PostgreSQL's permission error does not say which privilege: remember the statement's verb. */
function annotate(err: unknown, sqlText: string): unknown {
  if (err && typeof err === 'object' && (err as { code?: unknown }).code === '42501') {
    (err as { qeStatement?: string | null }).qeStatement = verbOf(sqlText);
  }
  return err;
}

// ---- pg and @neondatabase/serverless (same Pool/Client API) ----

interface PgClientLike {
  query(text: unknown, params?: unknown): Promise<unknown>;
  release(err?: Error | boolean): void;
  on(ev: 'error', fn: (err: Error) => void): unknown;
  _queryable?: boolean;
  connection?: { stream?: { destroy?: () => void } };
}
interface PgPoolLike {
  connect(): Promise<PgClientLike>;
  end(): Promise<void>;
  on(ev: 'error' | 'connect', fn: (arg: never) => void): unknown;
}

/** The name a PREPARED statement has on this connection (null: run it unnamed). */
const preparedNames = new WeakMap<object, Map<string, string>>();
function preparedName(client: object, text: string): string | null {
  if (!text.startsWith(PREPARED)) return null;
  let names = preparedNames.get(client);
  if (!names) preparedNames.set(client, (names = new Map()));
  let name = names.get(text);
  if (name === undefined) {
    if (names.size >= PREPARED_PER_CONNECTION) return null;
    name = `qe_${names.size + 1}`;
    names.set(text, name);
  }
  return name;
}

/**
 * A pg-style pool for Kysely's PostgresDialect whose clients are time-bounded (see the top).
 * `prepare`: send PREPARED statements as named ones (node-postgres only: a connection pooler in
 * transaction mode, or Neon's proxy, may not keep a session's prepared statements).
 */
export function boundedPgPool(pool: PgPoolLike, t: DbTimeouts, onError: DbErrorListener, opts: { prepare?: boolean } = {}) {
  pool.on('error', ((err: Error) => onError(err, 'idle pooled connection')) as (arg: never) => void);
  pool.on('connect', ((client: PgClientLike) => client.on('error', (err) => onError(err, 'pooled connection'))) as (arg: never) => void);
  return {
    async connect() {
      const client = await pool.connect();
      let broken: unknown = null;
      return {
        query(text: unknown, params?: unknown): Promise<unknown> {
          // A cursor (streamed query) keeps its own life; Kysely passes SQL text otherwise.
          if (typeof text !== 'string') return client.query(text, params);
          if (broken || client._queryable === false) {
            broken ??= new Error('not queryable');
            if (ROLLBACK.test(text)) return Promise.resolve({ command: 'ROLLBACK', rowCount: 0, rows: [] });
            return Promise.reject(new ConnectionLostError(broken));
          }
          const ms = deadlineOf(text, t.queryMs);
          const name = opts.prepare ? preparedName(client, text) : null;
          return new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
              broken = new DatabaseTimeoutError('query', ms);
              reject(broken);
              // The reply may still come: the socket goes, so nothing reads it as another answer.
              client.connection?.stream?.destroy?.();
            }, ms);
            (name ? client.query({ name, text, values: params }) : client.query(text, params)).then(
              (res) => {
                clearTimeout(timer);
                resolve(res);
              },
              (err: unknown) => {
                clearTimeout(timer);
                if (client._queryable === false) broken ??= err;
                // the statement would fail the same way on this connection until it closes
                if (name && (err as { code?: unknown })?.code === PLAN_CHANGED) broken ??= err;
                reject(annotate(err, text));
              },
            );
          });
        },
        /** Kysely passes true for a connection it discarded (a cancelled query). */
        release(discard?: boolean) {
          // pg-pool destroys a client released with an error (or true) instead of pooling it again.
          client.release(broken ? (broken instanceof Error ? broken : new Error(String(broken))) : discard ? true : undefined);
        },
        get processID() {
          return (client as { processID?: number }).processID;
        },
      };
    },
    end: () => pool.end(),
    /** what Kysely's query cancellation reads */
    get options() {
      return (pool as { options?: unknown }).options;
    },
  };
}

// ---- mysql2 (callback API, as Kysely's MysqlDialect uses it) ----

type Callback = (err: unknown, result?: unknown) => void;
interface MysqlConnLike {
  query(sqlText: string, params: unknown, cb?: Callback): unknown;
  release(): void;
  destroy(): void;
  on(ev: 'error', fn: (err: Error) => void): unknown;
  threadId: number | null;
}
interface MysqlPoolLike {
  getConnection(cb: (err: unknown, conn: MysqlConnLike) => void): void;
  end(cb: (err?: unknown) => void): void;
  on(ev: 'connection', fn: (conn: MysqlConnLike) => void): unknown;
}

/**
 * A mysql2 pool for Kysely's MysqlDialect with the bounds above. `onConnection` runs first on every
 * new connection (the session's server-side timeouts).
 */
export function boundedMysqlPool(pool: MysqlPoolLike, t: DbTimeouts, onError: DbErrorListener, sessionSql: string | null) {
  pool.on('connection', (conn) => {
    // mysql2 listens with once('error'): a second error on the same connection would be unheard.
    conn.on('error', (err) => onError(err, 'pooled connection'));
    // Queued before anything else is sent on this connection.
    if (sessionSql) conn.query(sessionSql, [], (err) => err && onError(err as Error, 'session settings'));
  });
  return {
    getConnection(cb: (err: unknown, conn?: unknown) => void) {
      let settled = false;
      const timer = setTimeout(() => {
        settled = true;
        cb(new DatabaseTimeoutError('connect', t.connectMs));
      }, t.connectMs);
      pool.getConnection((err, conn) => {
        if (settled) {
          // It came too late for the request that asked: back to the pool.
          if (!err) conn.release();
          return;
        }
        settled = true;
        clearTimeout(timer);
        if (err) return cb(err);
        cb(null, wrapMysqlConnection(conn, t));
      });
    },
    end: (cb: (err?: unknown) => void) => pool.end(cb),
  };
}

function wrapMysqlConnection(conn: MysqlConnLike, t: DbTimeouts) {
  let broken: unknown = null;
  return {
    get threadId() {
      return conn.threadId;
    },
    query(sqlText: string, params: unknown, cb?: Callback): unknown {
      if (!cb) return conn.query(sqlText, params); // streamed
      if (broken) {
        if (ROLLBACK.test(sqlText)) return cb(null, { affectedRows: 0, insertId: 0 });
        return cb(new ConnectionLostError(broken));
      }
      let done = false;
      const ms = deadlineOf(sqlText, t.queryMs);
      const timer = setTimeout(() => {
        done = true;
        broken = new DatabaseTimeoutError('query', ms);
        conn.destroy();
        cb(broken);
      }, ms);
      conn.query(sqlText, params, (err, result) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (err && ((err as { fatal?: boolean }).fatal || isConnectionError(err))) broken = err;
        cb(err, result);
      });
      return undefined;
    },
    release() {
      if (broken) conn.destroy();
      else conn.release();
    },
    destroy() {
      broken ??= new Error('destroyed');
      conn.destroy();
    },
  };
}
