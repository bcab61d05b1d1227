import { sql, type Kysely } from 'kysely';
import type { SqlDialect } from './connect.ts';
import type { Database } from './types.ts';

/**
 * Indexes on amavisd's own tables that quarantine-edge benefits from but amavisd does not create.
 * Never created silently (amavisd's tables are the operator's): only by
 * `quarantine-edge migrate --recommended-indexes`, online (PostgreSQL CONCURRENTLY, InnoDB
 * ALGORITHM=INPLACE LOCK=NONE), so amavisd keeps inserting while they build. BENCHMARKS.md has the
 * measurements behind the first one; the maddr ones only add what iRedMail's schema already has.
 */
export interface RecommendedIndex {
  name: string;
  table: 'msgrcpt' | 'maddr' | 'msgs';
  /** the leading columns (PostgreSQL: "col NULLS FIRST" where the order needs it); any existing index that starts with them serves as well */
  columns: Record<SqlDialect, string[]>;
  why: string;
}

export const RECOMMENDED_INDEXES: RecommendedIndex[] = [
  {
    name: 'qe_msgrcpt_rid_rs',
    table: 'msgrcpt',
    // InnoDB secondary indexes carry the primary key (partition_tag, mail_id, rseqnum) already;
    // PostgreSQL needs the key columns in the index for an index-only scan.
    columns: { mysql: ['rid', 'rs'], postgres: ['rid', 'rs', 'partition_tag', 'mail_id'] },
    why: "a domain filter or a domain admin's list reads that domain's recipient rows from the index instead of walking all mail by time",
  },
  {
    name: 'qe_maddr_domain',
    table: 'maddr',
    columns: { mysql: ['domain'], postgres: ['domain'] },
    why: "finds a domain's addresses (iRedMail's schema has maddr_idx_domain already)",
  },
  {
    name: 'qe_maddr_email',
    table: 'maddr',
    columns: { mysql: ['email'], postgres: ['email'] },
    why: "finds a mailbox by address without its partition (iRedMail's schema has maddr_idx_email already)",
  },
  {
    name: 'qe_msgs_spam_level',
    table: 'msgs',
    // InnoDB appends the primary key; PostgreSQL needs NULLS FIRST: the list puts no score lowest (src/quarantine/sort.ts)
    columns: { mysql: ['spam_level'], postgres: ['spam_level NULLS FIRST', 'partition_tag', 'mail_id'] },
    why: 'the list sorted by score reads its page from the index instead of sorting every listable message (iRedMail on MySQL has msgs_idx_spam_level already)',
  },
  {
    name: 'qe_msgs_subject',
    table: 'msgs',
    // amavisd cuts Subject to 255 characters (README: Sorting), so the key fits a B-tree entry
    columns: { mysql: ['subject'], postgres: ['subject NULLS FIRST', 'partition_tag', 'mail_id'] },
    why: 'the list sorted by subject reads its page from the index instead of sorting every listable message',
  },
  {
    name: 'qe_msgs_sid',
    table: 'msgs',
    // every amavisd schema has msgs_idx_sid (sid): on MySQL it carries the primary key and serves
    columns: { mysql: ['sid'], postgres: ['sid', 'partition_tag', 'mail_id'] },
    why: "an admin's list sorted by sender reads each sender's first messages from the index instead of sorting all of that sender's mail (src/quarantine/sender-walk.ts)",
  },
];

export interface IndexStatus {
  index: RecommendedIndex;
  /** an index that already serves, by name ('' when none) */
  servedBy: string;
  statement: string;
}

/** Leading columns of every valid index on `table`, by index name. */
async function existingIndexes(db: Kysely<Database>, dialect: SqlDialect, table: string): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  if (dialect === 'mysql') {
    const { rows } = await sql<{ name: string; col: string }>`
      SELECT index_name AS name, column_name AS col FROM information_schema.statistics
      WHERE table_schema = DATABASE() AND table_name = ${table} ORDER BY index_name, seq_in_index`.execute(db);
    for (const r of rows) out.set(r.name, [...(out.get(r.name) ?? []), String(r.col).toLowerCase()]);
    return out;
  }
  // indisvalid: a CONCURRENTLY build that was interrupted leaves an invalid index behind.
  // indoption per column: bit 0 DESC, bit 1 NULLS FIRST (absolute: DESC alone is 3); read back as written.
  const { rows } = await sql<{ name: string; col: string; opt: number | string }>`
    SELECT c.relname AS name, a.attname AS col, i.indoption[k.pos - 1] AS opt
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, pos) ON true
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = to_regclass(${table}) AND i.indisvalid
      AND i.indpred IS NULL AND k.pos <= i.indnkeyatts -- not partial; key columns only (not INCLUDE)
    ORDER BY c.relname, k.pos`.execute(db);
  for (const r of rows) out.set(r.name, [...(out.get(r.name) ?? []), `${String(r.col).toLowerCase()}${PG_ORDER[Number(r.opt) & 3]}`]);
  return out;
}

/** PostgreSQL's column order by indoption bits, as CREATE INDEX writes it ('' is ASC NULLS LAST). */
const PG_ORDER = ['', ' DESC NULLS LAST', ' NULLS FIRST', ' DESC'] as const;

/** The same order read backwards (an index scanned backwards serves it). RECOMMENDED_INDEXES spell their orders as PG_ORDER does. */
const BACKWARD: Record<string, string> = {
  '': ' DESC',
  ' DESC': '',
  ' NULLS FIRST': ' DESC NULLS LAST',
  ' DESC NULLS LAST': ' NULLS FIRST',
};

/** Does an index starting with `have` serve `want`, in one direction or the other? */
function serves(dialect: SqlDialect, want: string[], have: string[]): boolean {
  // MySQL/MariaDB: NULL sorts first ascending, and the list's orders are built for that
  if (dialect === 'mysql') return want.every((c, i) => have[i] === c.split(' ')[0]);
  const split = (c: string) => {
    const at = c.indexOf(' ');
    return at < 0 ? [c, ''] : [c.slice(0, at), c.slice(at)];
  };
  const match = (backward: boolean) =>
    want.every((c, i) => {
      const [name, order] = split(c);
      return have[i] === `${name}${backward ? BACKWARD[order!] : order}`;
    });
  return match(false) || match(true);
}

function createStatement(dialect: SqlDialect, ix: RecommendedIndex): string {
  const cols = ix.columns[dialect].join(', ');
  return dialect === 'mysql'
    ? `CREATE INDEX ${ix.name} ON ${ix.table} (${cols}) ALGORITHM=INPLACE LOCK=NONE`
    : `CREATE INDEX CONCURRENTLY ${ix.name} ON ${ix.table} (${cols})`;
}

/** Which recommended indexes the database has (or has an equivalent of), and what would create the rest. */
export async function checkRecommendedIndexes(db: Kysely<Database>, dialect: SqlDialect): Promise<IndexStatus[]> {
  const byTable = new Map<string, Map<string, string[]>>();
  const out: IndexStatus[] = [];
  for (const ix of RECOMMENDED_INDEXES) {
    if (!byTable.has(ix.table)) byTable.set(ix.table, await existingIndexes(db, dialect, ix.table));
    let servedBy = '';
    for (const [name, cols] of byTable.get(ix.table)!) {
      if (serves(dialect, ix.columns[dialect], cols)) servedBy = servedBy || name;
    }
    out.push({ index: ix, servedBy, statement: createStatement(dialect, ix) });
  }
  return out;
}

/**
 * Create the missing ones, one at a time. On PostgreSQL an invalid leftover of an interrupted build
 * of ours is dropped first (it is not used for queries, but its name is taken).
 */
export async function createRecommendedIndexes(
  db: Kysely<Database>,
  dialect: SqlDialect,
  onProgress: (msg: string) => void = () => {},
): Promise<string[]> {
  const created: string[] = [];
  for (const s of await checkRecommendedIndexes(db, dialect)) {
    if (s.servedBy) continue;
    if (dialect === 'postgres') await sql.raw(`DROP INDEX CONCURRENTLY IF EXISTS ${s.index.name}`).execute(db);
    onProgress(`${s.statement} ...`);
    const started = Date.now();
    await sql.raw(s.statement).execute(db);
    onProgress(`created ${s.index.name} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    created.push(s.index.name);
  }
  return created;
}
