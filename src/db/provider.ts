import { detectSchema, type SchemaVariant } from '../amavis/schema.ts';
import type { DatabaseProvider } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { DbHandle } from './connect.ts';
import { LATEST_VERSION, appliedVersion } from './migrations.ts';

export class NotMigratedError extends AppError {
  constructor(applied: number) {
    super(
      'database_unavailable',
      `quarantine-edge's tables are at migration ${applied} of ${LATEST_VERSION}: run \`quarantine-edge migrate\` (npm run migrate)`,
      { retryAfter: 60 },
    );
  }
}

/** Detects amavisd's schema variant and checks our migrations; throws with what to do. */
export async function inspectDatabase(handle: DbHandle): Promise<SchemaVariant> {
  const variant = await detectSchema(handle.db, handle.dialect);
  const version = (await appliedVersion(handle.db)) ?? 0;
  if (version < LATEST_VERSION) throw new NotMigratedError(version);
  return variant;
}

/** Node: one pool for the process, inspected once at start. */
export function sharedProvider(handle: DbHandle, variant: SchemaVariant): DatabaseProvider {
  return {
    async acquire() {
      return { handle, variant, release: async () => {} };
    },
  };
}

/**
 * Workers: a connection may not serve two requests, so each request opens its own (Hyperdrive
 * pools behind it) and closes it. What was learnt about the schema is kept per isolate: it is data,
 * not a connection.
 */
export function perRequestProvider(open: () => Promise<DbHandle>): DatabaseProvider {
  let known: SchemaVariant | null = null;
  return {
    async acquire() {
      const handle = await open();
      try {
        known ??= await inspectDatabase(handle);
      } catch (err) {
        await handle.close().catch(() => {});
        throw err;
      }
      return { handle, variant: known, release: () => handle.close() };
    },
  };
}
