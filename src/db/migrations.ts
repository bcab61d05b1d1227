import { sql, type Kysely } from 'kysely';
import type { SqlDialect } from './connect.ts';
import type { Database } from './types.ts';

/**
 * The migrations in migrations/<dialect>/, in order. The SQL lives in files an admin can read and
 * apply by hand; this list is what the server compares the database against at start (a unit test
 * keeps it equal to the folder).
 */
export const MIGRATIONS = ['0001_init', '0002_idempotency', '0003_digest', '0005_webhooks', '0006_digest_batches', '0011_webhook_attempts'] as const;
export const LATEST_VERSION = MIGRATIONS.length;

export interface MigrationFile {
  version: number;
  name: string;
  sql: string;
}

/** Split a migration file into statements: `--` comment lines out, `;` at line end separates. */
export function splitStatements(source: string): string[] {
  return source
    .split('\n')
    .filter((line) => !/^\s*--/.test(line))
    .join('\n')
    .split(/;\s*(?:\n|$)/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The versions applied so far, or null when the database was never migrated. */
export async function appliedVersions(db: Kysely<Database>): Promise<Set<number> | null> {
  try {
    const rows = await db.selectFrom('qe_schema_migrations').select('version').execute();
    return new Set(rows.map((r) => Number(r.version)));
  } catch {
    return null; // the table does not exist: never migrated
  }
}

/** How many of MIGRATIONS are applied (all of them: LATEST_VERSION), or null when never migrated. */
export async function appliedVersion(db: Kysely<Database>): Promise<number | null> {
  const applied = await appliedVersions(db);
  if (!applied) return null;
  // By each name's own number, not its position: versions may have gaps while branches land.
  return MIGRATIONS.filter((name) => applied.has(Number(name.slice(0, 4)))).length;
}

export async function migrate(
  db: Kysely<Database>,
  _dialect: SqlDialect,
  files: MigrationFile[],
  now: () => number,
): Promise<string[]> {
  // Every file not yet applied, in order (not only those above the highest: two branches may land
  // their migrations in either order).
  const done = (await appliedVersions(db)) ?? new Set<number>();
  const applied: string[] = [];
  for (const file of [...files].sort((a, b) => a.version - b.version)) {
    if (done.has(file.version)) continue;
    // MySQL commits DDL implicitly, so a failed file can leave part of it behind: files are
    // written so that each statement stands alone and the error names the statement.
    for (const statement of splitStatements(file.sql)) {
      await sql.raw(statement).execute(db);
    }
    await db
      .insertInto('qe_schema_migrations')
      .values({ version: file.version, name: file.name, applied_at: Math.floor(now() / 1000) })
      .execute();
    applied.push(file.name);
  }
  return applied;
}
