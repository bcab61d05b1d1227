import { detectSchema, type SchemaVariant } from '../amavis/schema.ts';
import type { DatabaseProvider } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { DbHandle } from './connect.ts';
import { LATEST_VERSION, appliedVersion } from './migrations.ts';

export class NotMigratedError extends AppError {
  constructor(applied: number, where = '') {
    super(
      'database_unavailable',
      `quarantine-edge's tables${where} are at migration ${applied} of ${LATEST_VERSION}: run \`quarantine-edge migrate\` (npm run migrate)`,
      { retryAfter: 60 },
    );
  }
}

/**
 * Detects amavisd's schema variant and checks our migrations (in the state database when it is
 * apart: STATE_DATABASE_URL); throws with what to do.
 */
export async function inspectDatabase(handle: DbHandle, state?: DbHandle): Promise<SchemaVariant> {
  const variant = await detectSchema(handle.db, handle.dialect);
  const version = (await appliedVersion((state ?? handle).db)) ?? 0;
  if (version < LATEST_VERSION) throw new NotMigratedError(version, state ? ' (STATE_DATABASE_URL)' : '');
  return variant;
}

/** Node: one pool for the process (and one for the state database when apart), inspected once at start. */
export function sharedProvider(handle: DbHandle, variant: SchemaVariant, state?: DbHandle): DatabaseProvider {
  return {
    async acquire() {
      return { handle, ...(state ? { state } : {}), variant, release: async () => {} };
    },
  };
}

/**
 * Workers: a connection may not serve two requests, so each request opens its own (Hyperdrive
 * pools behind it) and closes it; with STATE_DATABASE_URL, one to each database. What was learnt
 * about the schema is kept per isolate: it is data, not a connection.
 */
export function perRequestProvider(open: () => Promise<DbHandle>, openState?: () => Promise<DbHandle>): DatabaseProvider {
  let known: SchemaVariant | null = null;
  return {
    async acquire() {
      const [opened, openedState] = await Promise.allSettled([open(), openState ? openState() : Promise.resolve(undefined)]);
      const handle = opened.status === 'fulfilled' ? opened.value : null;
      const state = openedState.status === 'fulfilled' ? openedState.value : undefined;
      const closeAll = async () => {
        await handle?.close().catch(() => {});
        await state?.close().catch(() => {});
      };
      if (opened.status === 'rejected' || openedState.status === 'rejected') {
        await closeAll();
        throw opened.status === 'rejected' ? opened.reason : (openedState as PromiseRejectedResult).reason;
      }
      try {
        known ??= await inspectDatabase(handle!, state);
      } catch (err) {
        await closeAll();
        throw err;
      }
      return {
        handle: handle!,
        ...(state ? { state } : {}),
        variant: known,
        release: () => Promise.all([handle!.close(), state?.close()]).then(() => {}),
      };
    },
  };
}
