import type { PGlite } from '@electric-sql/pglite';

/**
 * PGlite is one in-process connection. Kysely's PostgresDialect wants a pg-style pool, so this
 * hands out that single connection one borrower at a time: a transaction must not interleave with
 * another request's statements.
 */
export function pglitePool(db: PGlite) {
  let tail: Promise<void> = Promise.resolve();
  return {
    async connect() {
      let release!: () => void;
      const turn = new Promise<void>((r) => (release = r));
      const previous = tail;
      tail = previous.then(() => turn);
      await previous;
      return {
        async query(text: string, params: readonly unknown[] = []) {
          const res = await db.query<Record<string, unknown>>(text, params as unknown[]);
          const command = /^\s*(\w+)/.exec(text)?.[1]?.toUpperCase() ?? '';
          return { command, rowCount: res.affectedRows ?? 0, rows: res.rows };
        },
        release() {
          release();
        },
      };
    },
    async end() {
      await tail;
    },
  };
}
