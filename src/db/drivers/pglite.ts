import { PGlite } from '@electric-sql/pglite';
import { PostgresDialect, type Dialect } from 'kysely';
import type pg from 'pg';
import { pglitePool } from './pglite-pool.ts';

/** Node-only: the embedded database for the demo and for `DATABASE_URL=pglite://PATH`. */
export async function openPglite(path: string | undefined): Promise<Dialect> {
  const db = await PGlite.create(path ? { dataDir: path } : {});
  const pool = pglitePool(db);
  return new PostgresDialect({
    pool: {
      ...pool,
      async end() {
        await pool.end();
        await db.close();
      },
    } as unknown as pg.Pool,
  });
}
