/** Did this error come from failing to reach the database (as opposed to a bad query)? */
const CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'EPIPE',
  'PROTOCOL_CONNECTION_LOST', 'ER_CON_COUNT_ERROR', 'ER_ACCESS_DENIED_ERROR', 'ER_BAD_DB_ERROR',
  '57P01', '57P03', '53300', '28P01', '28000', '3D000',
]);

export function isConnectionError(err: unknown): boolean {
  if (!err || typeof err !== 'object') return false;
  const e = err as { code?: unknown; message?: unknown; errors?: unknown[] };
  if (typeof e.code === 'string' && CODES.has(e.code)) return true;
  if (Array.isArray(e.errors) && e.errors.some(isConnectionError)) return true;
  const msg = typeof e.message === 'string' ? e.message : '';
  return /connection terminated|timeout exceeded when trying to connect|connect ECONNREFUSED|Connection lost|Network connection lost/i.test(msg);
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
