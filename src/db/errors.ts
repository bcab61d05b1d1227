/** Did this error come from failing to reach the database (as opposed to a bad query)? */
const CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'EPIPE',
  'ECONNABORTED',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_CON_COUNT_ERROR',
  'ER_ACCESS_DENIED_ERROR',
  'ER_BAD_DB_ERROR',
  'ER_SERVER_SHUTDOWN',
  'ER_CONNECTION_KILLED',
  'QE_CONNECTION_LOST',
  // PostgreSQL: admin shutdown / crash shutdown / cannot connect now, too many connections, auth, no database, connection exceptions
  '57P01',
  '57P02',
  '57P03',
  '53300',
  '28P01',
  '28000',
  '3D000',
  '08000',
  '08001',
  '08003',
  '08004',
  '08006',
]);

export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] };
  if (typeof e.code === 'string' && CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isConnectionError)) return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  // mysql2 answers a command on a connection that already died with "Can't add new command when
  // connection is in closed state" (no code); pg with "Client has encountered a connection error
  // and is not queryable" or "Connection terminated unexpectedly".
  return /connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Connection lost|Network connection lost|connection is in closed state|not queryable|Connection is closed|Client was closed/i.test(
    msg,
  );
}

/**
 * The database did not answer within a bound: our own client-side timeout (src/db/bounded.ts), a
 * statement or lock wait the server cancelled (statement_timeout 57014, lock_timeout 55P03,
 * innodb_lock_wait_timeout 1205, MariaDB max_statement_time 1969, MySQL max_execution_time 3024).
 */
const TIMEOUT_CODES = new Set(['QE_DB_TIMEOUT', '57014', '55P03', 'ER_LOCK_WAIT_TIMEOUT', 'ER_STATEMENT_TIMEOUT', 'ER_QUERY_TIMEOUT']);
const TIMEOUT_ERRNOS = new Set([1205, 1969, 3024]);

export function isTimeoutError(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return !!e && ((typeof e.code === 'string' && TIMEOUT_CODES.has(e.code)) || (typeof e.errno === 'number' && TIMEOUT_ERRNOS.has(e.errno)));
}

export interface PermissionFailure {
  /** the table (or database) the privilege is missing on, when the server names it */
  table: string | null;
  /** SELECT, UPDATE, ...: MySQL names it; for PostgreSQL it is the failed statement's verb */
  privilege: string | null;
  message: string;
}

/**
 * A privilege the database user lacks: a dependency failure (an admin revoked or never granted it),
 * not a bug. MySQL/MariaDB 1142 (table), 1143 (column), 1044 (database); PostgreSQL 42501.
 */
export function permissionFailure(err: unknown): PermissionFailure | null {
  if (!err || typeof err !== 'object') return null;
  const e = err as { code?: unknown; errno?: unknown; message?: unknown; qeStatement?: unknown };
  const message = typeof e.message === 'string' ? e.message : '';
  const unquote = (s: string | undefined) => (s === undefined ? null : (s.replace(/[`'"]/g, '').split('.').pop() ?? null));
  if (e.errno === 1142 || e.errno === 1143 || e.code === 'ER_TABLEACCESS_DENIED_ERROR' || e.code === 'ER_COLUMNACCESS_DENIED_ERROR') {
    // "SELECT command denied to user 'u'@'h' for table `db`.`msgs`" / "... for column 'x' in table 'msgs'"
    const m = /^(\w+) command denied .*? table ([`'"]?[^\s]+[`'"]?)\s*$/i.exec(message);
    return { table: unquote(m?.[2]), privilege: m?.[1]?.toUpperCase() ?? null, message };
  }
  if (e.errno === 1044 || e.code === 'ER_DBACCESS_DENIED_ERROR') {
    const m = /to database ([`'"]?[^\s]+[`'"]?)/i.exec(message);
    return { table: unquote(m?.[1]), privilege: null, message };
  }
  if (e.code === '42501') {
    // "permission denied for table msgs" (PostgreSQL does not say which privilege: the statement's verb)
    const m = /permission denied for (?:table|relation|sequence|schema) (\S+)/i.exec(message);
    return { table: unquote(m?.[1]), privilege: typeof e.qeStatement === 'string' ? e.qeStatement : null, message };
  }
  return null;
}

export type DatabaseFailure =
  | { kind: 'unavailable'; message: string }
  | { kind: 'timeout'; message: string }
  | ({ kind: 'permission' } & PermissionFailure);

/** What went wrong with the database, when it is the database's fault; null for anything else (a bug: 500). */
export function classifyDatabaseFailure(err: unknown): DatabaseFailure | null {
  const message = String((err as { message?: unknown } | null)?.message ?? err);
  const perm = permissionFailure(err);
  if (perm) return { kind: 'permission', ...perm };
  if (isTimeoutError(err)) return { kind: 'timeout', message };
  if (isConnectionError(err)) return { kind: 'unavailable', message };
  return null;
}

/** A duplicate key on insert, on MySQL/MariaDB or PostgreSQL. */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return !!e && (e.code === 'ER_DUP_ENTRY' || e.errno === 1062 || e.code === '23505');
}

/**
 * Text PostgreSQL refuses to store or compare (a NUL byte, 22021; 22P05 untranslatable): the
 * request's text, since what PostgreSQL sends back never trips it. A 400, not a 500.
 */
export function isUnstorableText(err: unknown): boolean {
  const e = err as { code?: unknown } | null;
  return !!e && (e.code === '22021' || e.code === '22P05');
}

/** The database chose this transaction as a deadlock's victim (or could not serialize it): run it again. */
export function isDeadlock(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  return !!e && (e.code === 'ER_LOCK_DEADLOCK' || e.errno === 1213 || e.code === '40P01' || e.code === '40001');
}

/**
 * Run a short transaction, again (up to `attempts` times in all) when it lost a deadlock: two pages
 * of a digest run write their recipients' rows at the same time, and InnoDB's gap locks on the
 * same index range can make one of them the victim. The transaction is rolled back, so it is safe.
 */
export async function retryOnDeadlock<T>(fn: () => Promise<T>, attempts = 3): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (err) {
      if (i >= attempts || !isDeadlock(err)) throw err;
      await new Promise((r) => setTimeout(r, 20 * i + Math.random() * 30));
    }
  }
}
