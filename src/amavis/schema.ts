import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { SqlDialect } from '../db/connect.ts';
import type { Database } from '../db/types.ts';
import { AppError } from '../errors.ts';

/**
 * Which of amavisd's four schema layouts the database has, read from information_schema at start
 * (never configured): the byte-vs-text type of each column decides how we bind and decode it.
 */
export type VariantName = 'mysql-upstream' | 'mysql-iredmail' | 'pg-upstream' | 'pg-iredmail';

export interface SchemaVariant {
  name: VariantName;
  dialect: SqlDialect;
  /** "table.column" of every byte-typed column (bytea, varbinary, blob). */
  binary: ReadonlySet<string>;
  /** table -> its columns, for the tables we know. */
  columns: ReadonlyMap<string, ReadonlySet<string>>;
  /**
   * amavisd's lookup tables (read through its @lookup_sql_dsn), where sender lists and policies
   * live. A quarantine-only amavisd has none of them: listing and release still work, sender lists
   * and policies answer 501 with `detail` (requireLookupTables), /readyz and the pages say so.
   */
  lookup: { missing: readonly string[]; detail: string | null };
}

const AMAVISD_TABLES = ['msgs', 'msgrcpt', 'maddr', 'quarantine', 'policy', 'users', 'mailaddr', 'wblist', 'outbound_wblist'];
const REQUIRED = ['msgs', 'msgrcpt', 'maddr', 'quarantine'];
export const LOOKUP_TABLES = ['users', 'mailaddr', 'wblist', 'policy'] as const;
const BYTE_TYPES = new Set(['bytea', 'varbinary', 'binary', 'blob', 'tinyblob', 'mediumblob', 'longblob']);

export class SchemaError extends Error {}

interface ColumnRow {
  table_name: string;
  column_name: string;
  data_type: string;
}

export function classifyColumns(dialect: SqlDialect, rows: ColumnRow[]): SchemaVariant {
  const columns = new Map<string, Set<string>>();
  const binary = new Set<string>();
  for (const r of rows) {
    const table = String(r.table_name).toLowerCase();
    const column = String(r.column_name).toLowerCase();
    if (!columns.has(table)) columns.set(table, new Set());
    columns.get(table)!.add(column);
    if (BYTE_TYPES.has(String(r.data_type).toLowerCase())) binary.add(`${table}.${column}`);
  }
  const missing = REQUIRED.filter((t) => !columns.has(t));
  if (missing.length > 0) {
    throw new SchemaError(
      `amavisd's tables are missing from this database: ${missing.join(', ')}. ` +
        'Point DATABASE_URL at the database amavisd writes its SQL quarantine to (iRedMail: "amavisd").',
    );
  }
  // iRedMail adds maddr.email_raw and the outbound_wblist table to upstream's schema.
  const iredmail = columns.get('maddr')!.has('email_raw') || columns.has('outbound_wblist');
  const name = `${dialect === 'mysql' ? 'mysql' : 'pg'}-${iredmail ? 'iredmail' : 'upstream'}` as VariantName;
  const lookupMissing = LOOKUP_TABLES.filter((t) => !columns.has(t));
  return { name, dialect, binary, columns, lookup: { missing: lookupMissing, detail: lookupDetail(lookupMissing) } };
}

function lookupDetail(missing: readonly string[]): string | null {
  if (missing.length === 0) return null;
  return (
    `amavisd's lookup tables are missing from this database (or this database user may not read them): ${missing.join(', ')}. ` +
    'Sender lists and policies are kept there, and amavisd reads them only when its @lookup_sql_dsn points at this ' +
    "database: create them with amavisd's SQL schema (iRedMail creates them) and set @lookup_sql_dsn in amavisd's " +
    'configuration. Listing, release and delete work without them.'
  );
}

/** Sender lists and policies need amavisd's lookup tables: 501 naming the missing ones, before anything is read or written. */
export function requireLookupTables(v: SchemaVariant): void {
  if (v.lookup.missing.length) {
    throw new AppError('lookup_tables_missing', v.lookup.detail!, { missing_tables: [...v.lookup.missing] });
  }
}

export async function detectSchema(db: Kysely<Database>, dialect: SqlDialect): Promise<SchemaVariant> {
  const tables = sql.join(AMAVISD_TABLES.map((t) => sql.lit(t)));
  const schemaExpr = dialect === 'mysql' ? sql`DATABASE()` : sql`current_schema()`;
  const { rows } = await sql<ColumnRow>`
    SELECT table_name AS table_name, column_name AS column_name, data_type AS data_type
    FROM information_schema.columns
    WHERE table_schema = ${schemaExpr} AND table_name IN (${tables})`.execute(db);
  return classifyColumns(dialect, rows);
}

const utf8 = new TextDecoder('utf-8', { fatal: false });
const encoder = new TextEncoder();

/** Decode a column that may come back as bytes; invalid UTF-8 becomes U+FFFD, never an error. */
export function text(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (value instanceof Uint8Array) return utf8.decode(value);
  return String(value);
}

/** The bytes of PostgreSQL's encode(x, 'hex') (a bytea inside JSON, where bytes have no form of their own). */
export function hexBytes(hex: string): Uint8Array {
  const out = new Uint8Array(hex.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = (nibble(hex.charCodeAt(2 * i)) << 4) | nibble(hex.charCodeAt(2 * i + 1));
  return out;
}
/** 0-9, a-f (encode() writes lower case) */
const nibble = (c: number) => (c <= 57 ? c - 48 : c - 87);

/** Bind a value for comparison with `table.column`: bytes where PostgreSQL has bytea. */
export function bind(v: SchemaVariant, column: string, value: string): string | Uint8Array {
  return v.dialect === 'postgres' && v.binary.has(column) ? encoder.encode(value) : value;
}

/**
 * A lowercased text expression over a column, for case-insensitive search (compare it with a
 * lowercased pattern). MySQL: upstream declares subject utf8mb4_bin, iRedMail varbinary; both
 * compare case-sensitively unless lowered. PostgreSQL bytea: 'escape' keeps ASCII as is.
 */
export function searchable(v: SchemaVariant, aliased: string, column: string): RawBuilder<string> {
  const ref = sql.ref(aliased);
  if (v.dialect === 'mysql') return sql<string>`LOWER(CONVERT(${ref} USING utf8mb4))`;
  return v.binary.has(column) ? sql<string>`lower(encode(${ref}, 'escape'))` : sql<string>`lower(${ref})`;
}

export function hasColumn(v: SchemaVariant, table: string, column: string): boolean {
  return v.columns.get(table)?.has(column) ?? false;
}
