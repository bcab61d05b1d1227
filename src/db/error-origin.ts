/**
 * Which database an error came from, when one request uses two: a request in a registered gateway
 * reads that gateway's amavisd database and the deployment's state database (src/gateways/context.ts).
 * A gateway's database that fails is that gateway's problem (503 gateway_unavailable naming it,
 * src/api/problem.ts), never the deployment's: it must not fail the deployment's /readyz.
 *
 * The dialect is wrapped so that every error its driver and connections throw (connecting,
 * statements, streams, transaction control) is marked with the origin before it reaches Kysely.
 * Errors a transaction's callback throws for other reasons pass through its own statements
 * unmarked, so an error is marked only when this database threw it.
 */
import type { DatabaseConnection, Dialect, Driver, QueryResult } from 'kysely';

const ORIGIN = Symbol('qe.databaseOrigin');

/** The origin an error was marked with (a registered gateway's id), or undefined. */
export function errorOrigin(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const v = (err as { [ORIGIN]?: unknown })[ORIGIN];
  return typeof v === 'string' ? v : undefined;
}

function mark(err: unknown, origin: string): unknown {
  if (typeof err === 'object' && err !== null && errorOrigin(err) === undefined && Object.isExtensible(err)) {
    Object.defineProperty(err, ORIGIN, { value: origin, enumerable: false });
  }
  return err;
}

async function marked<T>(p: Promise<T>, origin: string): Promise<T> {
  try {
    return await p;
  } catch (err) {
    throw mark(err, origin);
  }
}

/** `inner`, whose errors carry `origin`. */
export function originDialect(inner: Dialect, origin: string): Dialect {
  return {
    createQueryCompiler: () => inner.createQueryCompiler(),
    createAdapter: () => inner.createAdapter(),
    createIntrospector: (db) => inner.createIntrospector(db),
    createDriver: () => originDriver(inner.createDriver(), origin),
  };
}

function originDriver(inner: Driver, origin: string): Driver {
  // the inner driver gets its own connections back (its release and transaction steps need them)
  const own = new WeakMap<DatabaseConnection, DatabaseConnection>();
  const unwrap = (c: DatabaseConnection) => own.get(c) ?? c;
  const wrap = (c: DatabaseConnection): DatabaseConnection => {
    const w: DatabaseConnection = {
      executeQuery: <R>(q: Parameters<DatabaseConnection['executeQuery']>[0]) => marked(c.executeQuery<R>(q), origin),
      async *streamQuery<R>(
        q: Parameters<DatabaseConnection['streamQuery']>[0],
        chunkSize?: number,
      ): AsyncIterableIterator<QueryResult<R>> {
        try {
          yield* c.streamQuery<R>(q, chunkSize);
        } catch (err) {
          throw mark(err, origin);
        }
      },
    };
    own.set(w, c);
    return w;
  };
  const driver: Driver = {
    init: () => marked(inner.init(), origin),
    acquireConnection: async () => wrap(await marked(inner.acquireConnection(), origin)),
    beginTransaction: (c, settings) => marked(inner.beginTransaction(unwrap(c), settings), origin),
    commitTransaction: (c) => marked(inner.commitTransaction(unwrap(c)), origin),
    rollbackTransaction: (c) => marked(inner.rollbackTransaction(unwrap(c)), origin),
    releaseConnection: (c) => inner.releaseConnection(unwrap(c)),
    destroy: () => inner.destroy(),
  };
  if (inner.savepoint) driver.savepoint = (c, name, compile) => marked(inner.savepoint!(unwrap(c), name, compile), origin);
  if (inner.rollbackToSavepoint)
    driver.rollbackToSavepoint = (c, name, compile) => marked(inner.rollbackToSavepoint!(unwrap(c), name, compile), origin);
  if (inner.releaseSavepoint)
    driver.releaseSavepoint = (c, name, compile) => marked(inner.releaseSavepoint!(unwrap(c), name, compile), origin);
  return driver;
}
