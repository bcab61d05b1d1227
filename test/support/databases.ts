/**
 * Test databases: one per amavisd schema variant, on the machine's real MariaDB and PostgreSQL,
 * made from scratch (amavisd's tables from fixtures/amavisd-schema/, then our migrations) under the
 * project's own user. MariaDB's root logs in only through the unix socket, so admin steps use the
 * `mysql` client; PostgreSQL's `postgres` is reached over TCP (trust auth, as on this machine).
 */
import { execFile } from 'node:child_process';
import { sql } from 'kysely';
import pg from 'pg';
import type { VariantName } from '../../src/amavis/schema.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadAmavisdSchema, loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate, splitStatements } from '../../src/db/migrations.ts';

export const VARIANTS: VariantName[] = ['mysql-upstream', 'mysql-iredmail', 'pg-upstream', 'pg-iredmail'];
const serverOf = (v: VariantName): Server => (v.startsWith('mysql') ? 'mysql' : 'postgres');
const USER = 'qe_test';
const PASS = 'qe_test_pw';
export const PG_ADMIN = process.env.QE_TEST_PG_ADMIN_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/**
 * `suffix` gives a suite its own databases (e.g. the Worker suite uses `wk`), so suites that each
 * re-create their databases can run at the same time without dropping each other's.
 */
export interface DatabaseOptions {
  suffix?: string;
  /** false: amavisd's tables only, as a database looks before `quarantine-edge migrate` */
  migrate?: boolean;
}

export function databaseName(v: VariantName, opts: DatabaseOptions = {}): string {
  const base = `qe_it_${v.replace('-', '_')}`;
  if (opts.suffix === undefined) return base;
  if (!/^[a-z0-9_]{1,16}$/.test(opts.suffix)) throw new Error(`database suffix must match [a-z0-9_]{1,16}: ${opts.suffix}`);
  return `${base}_${opts.suffix}`;
}

export function databaseUrl(v: VariantName, opts: DatabaseOptions = {}): string {
  return localDatabaseUrl(serverOf(v), databaseName(v, opts));
}

/** Statements as MariaDB's root (unix socket): user and grant set-up in tests. */
export function mysqlRoot(statements: string): Promise<void> {
  const attempt = (args: string[]) =>
    new Promise<void>((resolve, reject) => {
      const child = execFile('mysql', args, { timeout: 60_000 }, (err, _out, stderr) =>
        err ? reject(new Error(`mysql ${args.join(' ')}: ${stderr || err.message}`)) : resolve(),
      );
      child.stdin?.end(statements);
    });
  return attempt(['-uroot']).catch((first) => attempt(['-h127.0.0.1', '-uroot']).catch(() => Promise.reject(first)));
}

/** Statements as PostgreSQL's `postgres`, in database `database` (default: the maintenance database). */
export async function pgAdmin(statements: string[], database?: string): Promise<void> {
  const url = new URL(PG_ADMIN);
  if (database) url.pathname = `/${database}`;
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

export type Server = 'mysql' | 'postgres';

/** The URL of database `name` on the local server, as the project's own user. */
export function localDatabaseUrl(server: Server, name: string): string {
  return server === 'mysql' ? `mysql://${USER}:${PASS}@127.0.0.1:3306/${name}` : `postgres://${USER}:${PASS}@127.0.0.1:5432/${name}`;
}

/** (Re)create an empty database owned by the project's own user (tests, bench). */
export async function createEmptyDatabase(server: Server, name: string): Promise<string> {
  if (!/^[a-z0-9_]{1,60}$/.test(name)) throw new Error(`not a database name: ${name}`);
  if (server === 'mysql') {
    await mysqlRoot(`
      DROP DATABASE IF EXISTS ${name};
      CREATE DATABASE ${name} CHARACTER SET utf8mb4;
      CREATE USER IF NOT EXISTS '${USER}'@'127.0.0.1' IDENTIFIED BY '${PASS}';
      GRANT ALL PRIVILEGES ON ${name}.* TO '${USER}'@'127.0.0.1';
      FLUSH PRIVILEGES;`);
  } else {
    await pgAdmin([
      `DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${USER}') THEN CREATE ROLE ${USER} LOGIN PASSWORD '${PASS}'; END IF; END $$`,
      `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`,
      `CREATE DATABASE ${name} OWNER ${USER} ENCODING 'UTF8' TEMPLATE template0`,
    ]);
  }
  return localDatabaseUrl(server, name);
}

export async function dropDatabase(server: Server, name: string): Promise<void> {
  if (server === 'mysql') await mysqlRoot(`DROP DATABASE IF EXISTS ${name};`);
  else await pgAdmin([`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
}

/** Create (or re-create) the database for one variant; returns its URL. */
export async function createVariantDatabase(v: VariantName, opts: DatabaseOptions = {}): Promise<string> {
  await createEmptyDatabase(serverOf(v), databaseName(v, opts));
  const url = databaseUrl(v, opts);
  const handle = await openDatabase({ url, runtime: 'node', poolSize: 1 });
  try {
    for (const s of splitStatements(await loadAmavisdSchema(v))) await sql.raw(s).execute(handle.db);
    if (opts.migrate !== false) await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
  } finally {
    await handle.close();
  }
  return url;
}

/** Drop a database made by createVariantDatabase (at the end of a run). */
export async function dropVariantDatabase(v: VariantName, opts: DatabaseOptions = {}): Promise<void> {
  await dropDatabase(serverOf(v), databaseName(v, opts));
}

/**
 * A suffix of this run's own (process id), so that two test runs on one machine (two developers,
 * CI and a developer) never drop each other's databases.
 */
export function runSuffix(kind: string): string {
  return `${kind}${process.pid}`;
}

export async function openVariant(v: VariantName, poolSize = 4, opts: DatabaseOptions = {}): Promise<DbHandle> {
  return openDatabase({ url: databaseUrl(v, opts), runtime: 'node', poolSize });
}
