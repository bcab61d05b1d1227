import { sql, type Kysely } from 'kysely';
import type { SqlDialect } from './connect.ts';
import type { Database } from './types.ts';

/**
 * The migrations in migrations/<dialect>/, in order. The SQL lives in files an admin can read and
 * apply by hand; this list is what the server compares the database against at start (a unit test
 * keeps it equal to the folder).
 */
export const MIGRATIONS = [
  '0001_init',
  '0002_idempotency',
  '0003_digest',
  '0005_webhooks',
  '0006_digest_batches',
  '0007_long_addresses',
  '0008_key_ties',
  '0009_release_attempts',
  '0011_webhook_attempts',
  '0012_release_policies',
  '0013_release_requests',
  '0014_digest_language',
  '0015_admin_digests',
  '0016_key_notify_email',
  '0017_stats_snapshots',
  '0018_state_apart',
  '0019_gateways',
  '0020_gateway_scope',
  '0021_gateway_digests',
  '0022_gateway_release_hosts',
  '0023_gateway_release_policies',
  '0024_gateway_webhooks',
  '0025_gateway_sessions',
  '0026_gateway_tombstones',
] as const;
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

/**
 * Errors that mean "this step is already done": a run that failed half way (MySQL commits each DDL
 * statement at once) left it behind. MySQL 1050 table, 1060 column, 1061 index name; PostgreSQL
 * 42P07 relation (table or index), 42701 column.
 */
function alreadyDone(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  if (!e) return false;
  return e.errno === 1050 || e.errno === 1060 || e.errno === 1061 || e.code === '42P07' || e.code === '42701';
}

/** A refused privilege: the migrate user must be granted it (README, "Database users"). */
function privilegeError(err: unknown): boolean {
  const e = err as { code?: unknown; errno?: unknown } | null;
  // MySQL 1142 table, 1044 database, 1227 specific privilege; PostgreSQL 42501 insufficient_privilege.
  return !!e && (e.errno === 1142 || e.errno === 1044 || e.errno === 1227 || e.code === '42501');
}

export class MigrationError extends Error {
  constructor(file: string, statement: string, cause: unknown, dialect: SqlDialect) {
    const first = statement.replace(/\s+/g, ' ').slice(0, 80);
    const what = privilegeError(cause)
      ? dialect === 'mysql'
        ? 'the migrate user lacks a privilege: GRANT SELECT, INSERT, UPDATE, CREATE, ALTER, INDEX ON <database>.* TO it (README, "Database users"), or run migrate as a database administrator'
        : 'the migrate user lacks a privilege: GRANT CREATE, USAGE ON SCHEMA public TO it (README, "Database users"), or run migrate as the database\'s owner'
      : 'fix the cause';
    super(
      `migration ${file} failed at \`${first}\`: ${(cause as Error)?.message ?? String(cause)}. ` +
        `To fix: ${what}, then run \`quarantine-edge migrate\` again: the steps already done are skipped.`,
    );
    this.name = 'MigrationError';
  }
}

/**
 * Apply every file not applied yet, in order. Safe to run again after any failure:
 * - PostgreSQL: each file runs in one transaction with its qe_schema_migrations row (DDL is
 *   transactional there), so a file is applied whole or not at all;
 * - MySQL/MariaDB commit each DDL statement at once, so a file that failed part way is run again
 *   from its start and a statement whose object already exists counts as done.
 * On both, an object left by an earlier, interrupted run (before this was so) also counts as done:
 * each statement runs under a savepoint on PostgreSQL, so "already exists" does not abort the file.
 */
export async function migrate(db: Kysely<Database>, dialect: SqlDialect, files: MigrationFile[], now: () => number): Promise<string[]> {
  // Every file not yet applied, in order (not only those above the highest: two branches may land
  // their migrations in either order).
  const done = (await appliedVersions(db)) ?? new Set<number>();
  const applied: string[] = [];
  for (const file of [...files].sort((a, b) => a.version - b.version)) {
    if (done.has(file.version)) continue;
    const record = (q: Kysely<Database>) =>
      q
        .insertInto('qe_schema_migrations')
        .values({ version: file.version, name: file.name, applied_at: Math.floor(now() / 1000) })
        .execute();
    if (dialect === 'postgres') {
      await db.transaction().execute(async (trx) => {
        for (const [i, statement] of splitStatements(file.sql).entries()) {
          await sql.raw(`SAVEPOINT qe_step_${i}`).execute(trx);
          try {
            await sql.raw(statement).execute(trx);
          } catch (err) {
            if (!alreadyDone(err)) throw new MigrationError(file.name, statement, err, dialect);
            await sql.raw(`ROLLBACK TO SAVEPOINT qe_step_${i}`).execute(trx);
          }
        }
        await record(trx);
      });
    } else {
      for (const statement of splitStatements(file.sql)) {
        try {
          await sql.raw(statement).execute(db);
        } catch (err) {
          if (!alreadyDone(err)) throw new MigrationError(file.name, statement, err, dialect);
        }
      }
      await record(db).catch((err) => {
        throw new MigrationError(file.name, 'INSERT INTO qe_schema_migrations', err, dialect);
      });
    }
    applied.push(file.name);
  }
  return applied;
}
