import { sql, type RawBuilder, type SqlBool } from 'kysely';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import type { CursorValue } from './cursor.ts';
import { afterKey, bound, orderBy, type Sort } from './sort.ts';

/**
 * The list sorted by sender without sorting every listable message.
 *
 * The sender's address is in `maddr`, so no index on `msgs` has the order; read and sorted, an
 * admin's whole list at 1M messages ran into the statement timeout (BENCHMARKS.md, "Sorted lists").
 * Instead the page is found in two small steps:
 * 1. the next `limit + 1` sender rows in address order (an index on `maddr (email)`: iRedMail's
 *    `maddr_idx_email`, or `qe_maddr_email` from `migrate --recommended-indexes`) that have a
 *    listable message (probed through `msgs (sid)`, which every amavisd schema has), and every
 *    other row of the last address (amavisd keeps one row per address and partition);
 * 2. from each of those rows (and the rows of the cursor's own address) its first `limit + 1`
 *    messages in (partition_tag, mail_id) order, merged: one statement of one branch per row. On
 *    MySQL `msgs_idx_sid` carries the primary key, so each branch reads only its rows; PostgreSQL
 *    needs `qe_msgs_sid (sid, partition_tag, mail_id)` for that, else it sorts each sender's mail.
 * The first `limit + 1` messages of the order are among these: a sender row from step 1 has at least
 * one, so there are `limit + 1` messages no later than the last address. Messages whose sender row
 * is gone come last (src/quarantine/sort.ts) and are looked for only once the walk has no more
 * addresses: that reads every listable message once (at 1M: 12 s on MariaDB, a 503; BENCHMARKS.md).
 *
 * The walk is used where most messages are listable (an admin; no recipient, domain or sender filter).
 * Narrower lists keep reading their few candidates and sorting them (src/quarantine/list.ts): a
 * walk would probe address after address for the rare one in scope.
 */
export function walksSenders(who: Identity, input: { recipient?: string; domain?: string; sender?: string }, sort: Sort): boolean {
  return sort.key === 'sender' && who.role === 'admin' && !input.recipient && !input.domain && !input.sender;
}

export interface WalkInput {
  /** the list's conditions on `msgs m` (with sender `maddr s`), without the cursor's */
  base: RawBuilder<SqlBool>;
  /** the cursor: its sender address (null: among the messages whose sender row is gone) and key; none on the first page */
  cursor: { value: CursorValue | undefined; p: number; mailId: unknown } | null;
  /** the page's columns over `m` and `s` (list.ts), `sort_v` among them */
  columns: RawBuilder<unknown>;
  limit: number;
}

/** The page's statement: up to `limit + 1` messages in the order. */
export async function senderWalkPage(deps: Deps, sort: Sort, q: WalkInput): Promise<RawBuilder<unknown>> {
  const v = deps.variant;
  const n = q.limit + 1;
  const dir = sort.order === 'asc' ? sql`ASC` : sql`DESC`;
  const rowsOf = new Map<string, unknown>();
  const add = (ids: unknown[]) => {
    for (const id of ids) rowsOf.set(String(id), id);
  };
  const sameAddress = async (email: RawBuilder<unknown>) =>
    (await sql<{ id: unknown }>`SELECT id FROM maddr WHERE email = ${email}`.execute(deps.db)).rows.map((r) => r.id);

  let walkEnded = true;
  const c = q.cursor;
  // the cursor's own address: only its messages after the cursor's key
  const sameAsCursor = new Set<string>();
  if (c?.value !== null) {
    const from = c?.value === undefined ? null : bound(v, 'sender', c.value);
    if (from) {
      const ids = await sameAddress(from);
      add(ids);
      for (const id of ids) sameAsCursor.add(String(id));
    }
    const gt = sort.order === 'asc' ? sql`>` : sql`<`;
    // "has a listable message" as a scalar subquery, not EXISTS: MariaDB turns an EXISTS into a
    // semi-join and materializes every listable message first (EXPLAIN at 1M: 461,216 rows)
    const { rows } = await sql<{ id: unknown; email: unknown }>`
      SELECT s.id, s.email FROM maddr s
      WHERE ${from ? sql`s.email ${gt} ${from} AND ` : sql``}(SELECT 1 FROM msgs m WHERE m.sid = s.id AND ${q.base} LIMIT 1) = 1
      ORDER BY s.email ${dir}, s.id ${dir}
      LIMIT ${n}`.execute(deps.db);
    add(rows.map((r) => r.id));
    walkEnded = rows.length < n;
    // the email as read binds back as the column's own type
    if (!walkEnded) add(await sameAddress(sql`${rows[rows.length - 1]!.email}`));
  }

  // Each branch's condition on the cursor is on msgs alone (the sender row decides the rest), so
  // that it is the index range of the branch instead of a filter after the join.
  const tie = c ? afterKey(v, sort, c.p, c.mailId) : null;
  const branch = (join: RawBuilder<unknown>, cond: RawBuilder<SqlBool>) => sql`(
    SELECT ${q.columns}, s.email AS sender FROM msgs m ${join} maddr s ON s.id = m.sid
    WHERE ${cond} AND ${q.base}
    ORDER BY m.partition_tag ${dir}, m.mail_id ${dir}
    LIMIT ${n})`;
  const branches = [...rowsOf].map(([key, id]) =>
    branch(sql`JOIN`, tie && sameAsCursor.has(key) ? sql<SqlBool>`m.sid = ${id} AND ${tie}` : sql<SqlBool>`m.sid = ${id}`),
  );
  // gone sender rows come last: after an address every one of them, after one of them the rest
  if (walkEnded)
    branches.push(branch(sql`LEFT JOIN`, tie && c?.value === null ? sql<SqlBool>`s.id IS NULL AND ${tie}` : sql<SqlBool>`s.id IS NULL`));
  return sql`SELECT p.* FROM (${sql.join(branches, sql` UNION ALL `)}) p ORDER BY ${orderBy(v, sort, 'p')} LIMIT ${n}`;
}
