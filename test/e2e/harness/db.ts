// The harness's own amavisd database on MariaDB or PostgreSQL: (re)created from scratch at every
// start, loaded with the upstream amavisd schema from fixtures/, queried through the project's
// drivers (mysql2, pg) as the harness user. Admin steps use what the machine offers:
// MariaDB root only through the unix socket (`mysql -uroot`), PostgreSQL `postgres` over TCP.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import mysql from 'mysql2/promise';
import pg from 'pg';

export type DbKind = 'mariadb' | 'pg';

export const DB_NAME = 'qe_e2e_amavisd';
export const DB_USER = 'qe_e2e';
export const DB_PASS = 'qe_e2e';

const MY_HOST = '127.0.0.1';
const MY_PORT = 3306;
const PG_HOST = '127.0.0.1';
const PG_PORT = 5432;
// PostgreSQL admin: trust auth as `postgres` on 127.0.0.1 here; overridable for other machines.
const PG_ADMIN_URL = process.env.QE_E2E_PG_ADMIN_URL ?? `postgres://postgres@${PG_HOST}:${PG_PORT}/postgres`;

export function databaseUrl(db: DbKind): string {
  return db === 'mariadb'
    ? `mysql://${DB_USER}:${DB_PASS}@${MY_HOST}:${MY_PORT}/${DB_NAME}`
    : `postgres://${DB_USER}:${DB_PASS}@${PG_HOST}:${PG_PORT}/${DB_NAME}`;
}

/** The DSN triple for amavisd's @storage_sql_dsn (Perl DBI). */
export function perlDsn(db: DbKind): string {
  return db === 'mariadb'
    ? `DBI:mysql:database=${DB_NAME};host=${MY_HOST};port=${MY_PORT}`
    : `DBI:Pg:dbname=${DB_NAME};host=${PG_HOST};port=${PG_PORT}`;
}

function run(cmd: string, args: string[], input: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${cmd} ${args.join(' ')} failed: ${stderr || err.message}`));
      else resolve(stdout);
    });
    child.stdin?.end(input);
  });
}

async function mysqlRoot(sql: string): Promise<void> {
  // root@localhost may log in only through the unix socket (no password); fall back to TCP.
  try {
    await run('mysql', ['-uroot'], sql);
  } catch (first) {
    try {
      await run('mysql', ['-h127.0.0.1', '-uroot'], sql);
    } catch {
      throw first;
    }
  }
}

async function pgAdmin(statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: PG_ADMIN_URL });
  await client.connect();
  try {
    for (const s of statements) await client.query(s);
  } finally {
    await client.end();
  }
}

/** Drops and recreates the harness database (and makes sure its user exists). */
export async function recreateDatabase(db: DbKind): Promise<void> {
  if (db === 'mariadb') {
    await mysqlRoot(`
DROP DATABASE IF EXISTS ${DB_NAME};
CREATE DATABASE ${DB_NAME} CHARACTER SET utf8mb4;
CREATE USER IF NOT EXISTS '${DB_USER}'@'127.0.0.1' IDENTIFIED BY '${DB_PASS}';
CREATE USER IF NOT EXISTS '${DB_USER}'@'localhost' IDENTIFIED BY '${DB_PASS}';
ALTER USER '${DB_USER}'@'127.0.0.1' IDENTIFIED BY '${DB_PASS}';
ALTER USER '${DB_USER}'@'localhost' IDENTIFIED BY '${DB_PASS}';
GRANT ALL PRIVILEGES ON ${DB_NAME}.* TO '${DB_USER}'@'127.0.0.1';
GRANT ALL PRIVILEGES ON ${DB_NAME}.* TO '${DB_USER}'@'localhost';
`);
    return;
  }
  await pgAdmin([
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${DB_USER}') THEN
         CREATE ROLE ${DB_USER} LOGIN PASSWORD '${DB_PASS}';
       END IF;
     END $$`,
    `ALTER ROLE ${DB_USER} LOGIN PASSWORD '${DB_PASS}'`,
    `DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`,
    `CREATE DATABASE ${DB_NAME} OWNER ${DB_USER} ENCODING 'UTF8' TEMPLATE template0`,
  ]);
}

export async function dropDatabase(db: DbKind): Promise<void> {
  if (db === 'mariadb') await mysqlRoot(`DROP DATABASE IF EXISTS ${DB_NAME};`);
  else await pgAdmin([`DROP DATABASE IF EXISTS ${DB_NAME} WITH (FORCE)`]);
}

/** Strips `--` comments (whole lines and trailing ones outside quotes), splits on `;` at line end. */
export function splitSqlScript(text: string): string[] {
  const lines = text.split(/\r?\n/).map((line) => {
    let quoted = false;
    for (let i = 0; i < line.length; i++) {
      const c = line[i];
      if (c === "'") quoted = !quoted;
      else if (!quoted && c === '-' && line[i + 1] === '-') return line.slice(0, i).trimEnd();
    }
    return line;
  });
  return lines
    .join('\n')
    .split(/;[ \t]*(?:\n|$)/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export type SchemaVariant = 'upstream' | 'iredmail';

export function schemaFile(schemaDir: string, db: DbKind, variant: SchemaVariant = 'upstream'): string {
  return `${schemaDir}/${db === 'mariadb' ? 'mysql' : 'pg'}-${variant}.sql`;
}

/** A small query interface over either driver; `?` placeholders on both (rewritten to $n for pg). */
export interface Db {
  query<T = Record<string, unknown>>(sql: string, params?: unknown[]): Promise<T[]>;
  /** One statement as is: no placeholders. */
  exec(sql: string): Promise<void>;
  close(): Promise<void>;
}

export async function connect(db: DbKind): Promise<Db> {
  if (db === 'mariadb') {
    const conn = await mysql.createConnection({
      host: MY_HOST,
      port: MY_PORT,
      user: DB_USER,
      password: DB_PASS,
      database: DB_NAME,
      charset: 'utf8mb4',
      supportBigNumbers: true,
    });
    return {
      async query<T>(sql: string, params: unknown[] = []) {
        const [rows] = await conn.query(sql, params);
        return (Array.isArray(rows) ? rows : []) as T[];
      },
      async exec(sql: string) {
        await conn.query(sql);
      },
      close: () => conn.end(),
    };
  }
  const client = new pg.Client({ connectionString: databaseUrl('pg') });
  await client.connect();
  return {
    async query<T>(sql: string, params: unknown[] = []) {
      let n = 0;
      const text = sql.replace(/\?/g, () => `$${++n}`);
      const res = await client.query(text, params);
      return res.rows as T[];
    },
    async exec(sql: string) {
      await client.query(sql);
    },
    close: () => client.end(),
  };
}

/** Runs the fixture schema through the given connection. */
export async function loadSchema(conn: Db, file: string): Promise<number> {
  if (!existsSync(file)) {
    throw new Error(`amavisd schema fixture missing: ${file}`);
  }
  const statements = splitSqlScript(await readFile(file, 'utf8'));
  for (const s of statements) await conn.exec(s);
  return statements.length;
}
