import { sql, type RawBuilder, type SqlBool } from 'kysely';
import type { SchemaVariant } from '../amavis/schema.ts';
import { AppError } from '../errors.ts';
import type { CursorValue } from './cursor.ts';

/**
 * The list's orders: a key (received time, score, envelope sender, subject) and a direction, ties
 * broken by the message's unique key (partition_tag, mail_id) in the same direction, so a keyset
 * cursor (src/quarantine/cursor.ts) names one exact place in every order.
 *
 * - NULL (no score, no subject) is the lowest value on both databases: first ascending, last
 *   descending (MySQL's own rule; PostgreSQL is told NULLS FIRST / NULLS LAST).
 * - A message whose sender address row is gone (NULL sender) comes last in both directions: the
 *   sender order of an admin's whole list walks the addresses in order (src/quarantine/sender-walk.ts)
 *   and only at the end of the walk looks for such messages, which no index finds.
 * - Subjects and senders sort as their columns compare: by bytes where they are binary (bytea,
 *   varbinary; "B" before "a") and MySQL's utf8mb4_bin (code point order, trailing spaces ignored);
 *   PostgreSQL upstream's varchar subject in the database's collation (so that an index on it serves).
 * - Scores are compared as doubles: MySQL's FLOAT does not equal its own printed value (5.123).
 */
export const SORT_KEYS = ['received', 'score', 'sender', 'subject'] as const;
export type SortKey = (typeof SORT_KEYS)[number];
export type SortOrder = 'asc' | 'desc';
export interface Sort {
  key: SortKey;
  order: SortOrder;
}
export const DEFAULT_SORT: Sort = { key: 'received', order: 'desc' };

/** The column each key sorts by ("table.column" for the variant's byte/text type), under its alias. */
const COLUMN: Record<SortKey, { ref: string; column: string }> = {
  received: { ref: 'm.time_num', column: 'msgs.time_num' },
  score: { ref: 'm.spam_level', column: 'msgs.spam_level' },
  sender: { ref: 's.email', column: 'maddr.email' },
  subject: { ref: 'm.subject', column: 'msgs.subject' },
};

/** The NULLs of this key come last in both directions (see above). */
const nullsLast = (key: SortKey) => key === 'sender';

export const isBinary = (v: SchemaVariant, key: SortKey) => v.binary.has(COLUMN[key].column);

/** The sort value as compared (selected as `sort_v`; the cursor carries it back). */
export function sortValue(v: SchemaVariant, key: SortKey): RawBuilder<unknown> {
  const ref = sql.ref(COLUMN[key].ref);
  if (key === 'score') return v.dialect === 'mysql' ? sql`CAST(${ref} AS DOUBLE)` : sql`CAST(${ref} AS double precision)`;
  return ref;
}

/** ORDER BY over the page's rows: `alias` '' for msgs m itself, 'p' for the page subquery (its sort_v). */
export function orderBy(v: SchemaVariant, s: Sort, alias: '' | 'p'): RawBuilder<unknown> {
  const dir = s.order === 'asc' ? sql`ASC` : sql`DESC`;
  const col = alias === 'p' ? sql.ref('p.sort_v') : sql.ref(COLUMN[s.key].ref);
  const t = alias === 'p' ? 'p' : 'm';
  const tie = sql`${sql.ref(`${t}.partition_tag`)} ${dir}, ${sql.ref(`${t}.mail_id`)} ${dir}`;
  if (nullsLast(s.key)) {
    // MySQL has no NULLS LAST: false (0) sorts before true
    return v.dialect === 'postgres' ? sql`${col} ${dir} NULLS LAST, ${tie}` : sql`${col} IS NULL, ${col} ${dir}, ${tie}`;
  }
  const nulls = v.dialect === 'postgres' && s.key !== 'received' ? (s.order === 'asc' ? sql` NULLS FIRST` : sql` NULLS LAST`) : sql``;
  return sql`${col} ${dir}${nulls}, ${tie}`;
}

/** The bound cursor value: exact bytes for byte columns (MySQL: UNHEX), a double for scores. */
export function bound(v: SchemaVariant, key: SortKey, value: CursorValue): RawBuilder<unknown> {
  if (value instanceof Uint8Array) {
    if (v.dialect === 'postgres') return isBinary(v, key) ? sql`${value}` : sql`${new TextDecoder().decode(value)}`;
    const hex = Array.from(value, (b) => b.toString(16).padStart(2, '0')).join('');
    return isBinary(v, key) ? sql`UNHEX(${hex})` : sql`CONVERT(UNHEX(${hex}) USING utf8mb4)`;
  }
  if (key === 'score') return v.dialect === 'mysql' ? sql`${value}` : sql`CAST(${value} AS double precision)`;
  // A forged cursor's text where this server would have issued bytes, or a NUL PostgreSQL's text
  // cannot hold: the same order's bytes, or a 400, never the database's error (a 500).
  if (typeof value === 'string' && v.dialect === 'postgres') {
    if (isBinary(v, key)) return sql`${new TextEncoder().encode(value)}`;
    if (value.includes('\u0000')) throw new AppError('invalid_cursor', 'cursor is not one this server issued', { field: 'cursor' });
  }
  return sql`${value}`;
}

/**
 * The messages after a position's (partition_tag, mail_id) in order `s`, among messages of one sort
 * value (src/quarantine/sender-walk.ts, one sender row): on PostgreSQL as a row comparison, which an
 * index on (sid, partition_tag, mail_id) takes as its range; MySQL's range optimizer takes the OR.
 */
export function afterKey(v: SchemaVariant, s: Sort, p: number, mailId: unknown): RawBuilder<SqlBool> {
  const gt = s.order === 'asc' ? sql`>` : sql`<`;
  return v.dialect === 'postgres'
    ? sql<SqlBool>`(m.partition_tag, m.mail_id) ${gt} (${p}, ${mailId})`
    : sql<SqlBool>`(m.partition_tag ${gt} ${p} OR (m.partition_tag = ${p} AND m.mail_id ${gt} ${mailId}))`;
}

/**
 * The rows after a cursor's position (sort value, partition_tag, mail_id) in order `s`; `anchor`
 * is the value when the cursor carries it, or the anchor row's own column (a value too long for a
 * cursor) read back by subquery.
 */
export function afterPosition(
  v: SchemaVariant,
  s: Sort,
  pos: { p: number; mailId: unknown; value: CursorValue | undefined },
): RawBuilder<SqlBool> {
  const gt = s.order === 'asc' ? sql`>` : sql`<`;
  const col = sql.ref(COLUMN[s.key].ref);
  const tie = sql<SqlBool>`(m.partition_tag ${gt} ${pos.p} OR (m.partition_tag = ${pos.p} AND m.mail_id ${gt} ${pos.mailId}))`;
  if (s.key === 'received') {
    // The leading bound is implied by the rest; it lets PostgreSQL use msgs_idx_time_num as an index
    // condition (an OR alone makes it scan from the first row).
    const t = pos.value as number;
    const ge = s.order === 'asc' ? sql`>=` : sql`<=`;
    return sql<SqlBool>`m.time_num ${ge} ${t} AND (m.time_num ${gt} ${t} OR (m.time_num = ${t} AND ${tie}))`;
  }
  if (pos.value === null) {
    // NULLs last: only the other NULLs come after one
    if (nullsLast(s.key)) return sql<SqlBool>`(${col} IS NULL AND ${tie})`;
    // NULL is the lowest value: ascending, the other NULLs after it, then every value; descending, only NULLs
    return s.order === 'asc'
      ? sql<SqlBool>`((${col} IS NULL AND ${tie}) OR ${col} IS NOT NULL)`
      : sql<SqlBool>`(${col} IS NULL AND ${tie})`;
  }
  const value =
    pos.value === undefined
      ? sql`(SELECT a.subject FROM msgs a WHERE a.partition_tag = ${pos.p} AND a.mail_id = ${pos.mailId})`
      : bound(v, s.key, pos.value);
  const rest = sql<SqlBool>`(${col} ${gt} ${value} OR (${col} = ${value} AND ${tie}))`;
  return s.order === 'asc' && !nullsLast(s.key) ? rest : sql<SqlBool>`(${rest} OR ${col} IS NULL)`;
}

/**
 * The rows after every row of received time `t` in order `s` (no row's key: the list across
 * gateways bounds the gateways other than its cursor's by time alone, src/quarantine/list-across.ts).
 */
export function afterTime(s: Sort, t: number): RawBuilder<SqlBool> {
  return s.order === 'asc' ? sql<SqlBool>`m.time_num > ${t}` : sql<SqlBool>`m.time_num < ${t}`;
}
