import { sql, type Expression, type RawBuilder, type SqlBool } from 'kysely';
import { RECIPIENT_STATUS, codesOfTypes, type ContentType } from '../amavis/codes.ts';
import { reverseDomain } from '../amavis/address.ts';
import { bind, hexBytes, searchable, text } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import { PREPARED } from '../db/bounded.ts';
import type { Deps } from '../deps.ts';
import { decodeCursor, encodeCursor, type CursorValue } from './cursor.ts';
import { afterPosition, afterTime, DEFAULT_SORT, orderBy, sortValue, type Sort } from './sort.ts';
import { senderWalkPage, walksSenders } from './sender-walk.ts';
import { toItem, type MsgRow, type QuarantineItem, type RcptRow } from './item.ts';
import { ownerVisibleFor } from './release-policy.ts';
import { recipientScope } from './scope.ts';

export type StatusFilter = 'pending' | 'released' | 'deleted' | 'releasing' | 'all';

export interface ListInput {
  types?: ContentType[];
  recipient?: string;
  /** an address, or "@domain" for every sender of that domain */
  sender?: string;
  domain?: string;
  q?: string;
  since?: number;
  until?: number;
  min_score?: number;
  max_score?: number;
  status: StatusFilter;
  limit: number;
  cursor?: string;
  /** default: received, newest first (src/quarantine/sort.ts) */
  sort?: Sort;
  /**
   * Instead of `cursor`, for the received order only: after the row (v, p, m), or without p and m
   * after every row of time v (the list across gateways, src/quarantine/list-across.ts).
   */
  after?: ReceivedPlace;
}

export interface ReceivedPlace {
  v: number;
  p?: number;
  m?: string;
}

export interface ListResult {
  items: QuarantineItem[];
  next_cursor: string | null;
}

/** The largest time_num the schema can hold: `integer` on PostgreSQL, `integer unsigned` on MySQL. */
export function timeNumMax(v: Deps['variant']): number {
  return v.dialect === 'postgres' ? 2 ** 31 - 1 : 2 ** 32 - 1;
}

/** Escape LIKE's wildcards (backslash is the default escape in MySQL and PostgreSQL). */
function likePattern(q: string): string {
  return `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
}

/** Conditions on recipient rows (msgrcpt `mr`, maddr `r`): scope, status, recipient, domain. */
export function recipientConditions(deps: Deps, who: Identity, input: Pick<ListInput, 'status' | 'recipient' | 'domain'>) {
  const v = deps.variant;
  const conds: Expression<SqlBool>[] = [recipientScope(who, v)];
  if (input.status !== 'all') {
    conds.push(sql<SqlBool>`mr.rs IN (${sql.join([...RECIPIENT_STATUS[input.status]])})`);
  }
  if (input.recipient) conds.push(sql<SqlBool>`r.email = ${bind(v, 'maddr.email', input.recipient)}`);
  if (input.domain) conds.push(sql<SqlBool>`r.domain = ${bind(v, 'maddr.domain', reverseDomain(input.domain))}`);
  return sql.join(conds, sql` AND `);
}

/** Conditions on the message (msgs `m`, sender maddr `s`). */
export function messageConditions(deps: Deps, input: ListInput) {
  const v = deps.variant;
  const conds: Expression<SqlBool>[] = [sql<SqlBool>`m.quar_type = 'Q'`, sql<SqlBool>`m.content IS NOT NULL`];
  const max = timeNumMax(v);
  if (input.types?.length) conds.push(sql<SqlBool>`m.content IN (${sql.join(codesOfTypes(input.types))})`);
  // time_num is a 32-bit column (PostgreSQL integer): a bound outside it is a 500 there, so bounds
  // beyond the range are decided here (nothing / everything) instead of being sent.
  if (input.since !== undefined && input.since > 0) {
    conds.push(input.since > max ? sql<SqlBool>`1 = 0` : sql<SqlBool>`m.time_num >= ${input.since}`);
  }
  if (input.until !== undefined && input.until <= max) {
    conds.push(input.until <= 0 ? sql<SqlBool>`1 = 0` : sql<SqlBool>`m.time_num < ${input.until}`);
  }
  if (input.min_score !== undefined) conds.push(sql<SqlBool>`m.spam_level >= ${input.min_score}`);
  if (input.max_score !== undefined) conds.push(sql<SqlBool>`m.spam_level <= ${input.max_score}`);
  if (input.sender) {
    conds.push(
      input.sender.startsWith('@')
        ? sql<SqlBool>`s.domain = ${bind(v, 'maddr.domain', reverseDomain(input.sender.slice(1)))}`
        : sql<SqlBool>`s.email = ${bind(v, 'maddr.email', input.sender)}`,
    );
  }
  if (input.q) {
    const pattern = likePattern(input.q.toLowerCase());
    const fields = [
      searchable(v, 'm.subject', 'msgs.subject'),
      searchable(v, 'm.from_addr', 'msgs.from_addr'),
      searchable(v, 's.email', 'maddr.email'),
    ].map((f) => sql<SqlBool>`${f} LIKE ${pattern}`);
    conds.push(sql<SqlBool>`(${sql.join(fields, sql` OR `)})`);
  }
  return conds;
}

export async function listQuarantine(deps: Deps, who: Identity, input: ListInput): Promise<ListResult> {
  const v = deps.variant;
  // a mailbox owner does not see the types their domain's release policy hides
  const conds = [...messageConditions(deps, input), await ownerVisibleFor(deps, who)];
  const sort = input.sort ?? DEFAULT_SORT;
  if (input.after && sort.key !== 'received') throw new Error('a place in the list is for the received order only');
  const c: { v: CursorValue | undefined; p?: number; m?: string } | null =
    input.after ?? (input.cursor ? await decodeCursor(input.cursor, sort) : null);
  const inScope = sql<SqlBool>`EXISTS (SELECT 1 FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    WHERE mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
    AND ${recipientConditions(deps, who, input)})`;
  let after: RawBuilder<SqlBool> | null = null;
  if (c) {
    // A time past the column's range (forged; PostgreSQL would refuse the value): newest first, every
    // row is after it; oldest first, none.
    const beyond = sort.key === 'received' && (c.v as number) > timeNumMax(v);
    if (!beyond) {
      after =
        c.p === undefined || c.m === undefined
          ? afterTime(sort, c.v as number)
          : afterPosition(v, sort, { p: c.p, mailId: bind(v, 'msgs.mail_id', c.m), value: c.v });
    } else if (sort.order === 'asc') after = sql<SqlBool>`1 = 0`;
  }

  // the cursor's bound before the EXISTS, as before: MySQL evaluates a table's conditions in the order written
  const base = sql<SqlBool>`${sql.join([...conds, inScope], sql` AND `)}`;
  const where = after ? sql<SqlBool>`${sql.join([...conds, after, inScope], sql` AND `)}` : base;
  const columns = sql`m.partition_tag, m.mail_id, m.time_num, m.content, m.spam_level, m.size, m.subject,
        m.from_addr, m.message_id, m.client_addr, m.host, ${sortValue(v, sort.key)} AS sort_v`;
  // The sender's address is joined after the LIMIT unless a filter or the order needs it: when the
  // plan collects candidates and sorts them (a domain, a domain admin's scope), joining it first costs
  // one maddr read per candidate (2,500 for one domain of 200 at 1M messages: 80 ms on MariaDB) instead of 51.
  const pageSql = walksSenders(who, input, sort)
    ? await senderWalkPage(deps, sort, {
        base,
        cursor: c ? { value: c.v, p: c.p!, mailId: bind(v, 'msgs.mail_id', c.m!) } : null,
        columns,
        limit: input.limit,
      })
    : input.sender || input.q || sort.key === 'sender'
      ? sql`
      SELECT ${columns}, s.email AS sender
      FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
      WHERE ${where}
      ORDER BY ${orderBy(v, sort, '')}
      LIMIT ${input.limit + 1}`
      : sql`
      SELECT p.*, s.email AS sender FROM (
        SELECT ${columns}, m.sid FROM msgs m
        WHERE ${where}
        ORDER BY ${orderBy(v, sort, '')}
        LIMIT ${input.limit + 1}) p
      LEFT JOIN maddr s ON s.id = p.sid
      ORDER BY ${orderBy(v, sort, 'p')}`;
  const page =
    v.dialect === 'mysql'
      ? await pageWithRecipients(deps, who, pageSql, input.limit, orderBy(v, sort, 'p'))
      : await pageWithRecipientLists(deps, who, pageSql, input.limit, orderBy(v, sort, 'p'), planIsValueFree(who, input, sort));
  const items = page.msgs.map((x) => toItem(x.m, x.rcpts, deps.gateway));
  const last = page.msgs[page.msgs.length - 1]?.m;
  const next_cursor =
    page.more && last ? await encodeCursor({ sort, p: Number(last.partition_tag), m: text(last.mail_id), v: cursorValue(last) }) : null;
  return { items, next_cursor };
}

/**
 * Whether the page's plan is the same whatever the values bound into it, so that PostgreSQL may keep
 * one plan for it (src/db/bounded.ts, PREPARED): the caller's whole list (an admin's, or a mailbox's:
 * one address, unique in maddr), any status, order and cursor. Not a filter (a domain, sender, type,
 * search or range: how many rows match decides the plan, and a plan kept for a common value can be
 * the wrong one for a rare value), nor a domain admin's scope (its domains differ in size), nor the
 * sender walk (its text grows with the page).
 */
export function planIsValueFree(who: Identity, input: ListInput, sort: Sort): boolean {
  return (
    who.role !== 'domain_admin' &&
    !input.types?.length &&
    !input.recipient &&
    !input.domain &&
    !input.sender &&
    !input.q &&
    input.since === undefined &&
    input.until === undefined &&
    input.min_score === undefined &&
    input.max_score === undefined &&
    !walksSenders(who, input, sort)
  );
}

/** The last row's sort value as the cursor carries it (bytes stay bytes). */
function cursorValue(row: MsgRow): CursorValue {
  const x = (row as MsgRow & { sort_v?: unknown }).sort_v;
  if (x === null || x === undefined) return null;
  if (typeof x === 'number' || typeof x === 'string' || x instanceof Uint8Array) return x;
  return Number(x);
}

interface Page {
  msgs: Array<{ m: MsgRow; rcpts: RcptRow[] }>;
  /** a message beyond the page exists */
  more: boolean;
}

/**
 * MySQL/MariaDB: one statement, the page (limit + 1 messages; the extra one only tells whether there
 * is a next page) joined to its recipients in the caller's scope. Every message of the page has a
 * recipient in scope (the EXISTS), so the inner join drops none. Against the page and then its
 * recipients by mail_id (two statements) it saves a round trip and ~40% of the SQL time on MariaDB
 * 10.11 (1.5-1.8 vs 2.4-3.4 ms p50, first page, 20k messages). Not on PostgreSQL 15: there the
 * joined statement cost the backend about twice the CPU of the two (measured per backend process);
 * PostgreSQL reads each message's recipients as a JSON array instead (pageWithRecipientLists).
 */
async function pageWithRecipients(
  deps: Deps,
  who: Identity,
  pageSql: RawBuilder<unknown>,
  limit: number,
  order: RawBuilder<unknown>,
): Promise<Page> {
  const { rows } = await sql<PageRow>`
    SELECT p.*, mr.rseqnum AS r_rseqnum, mr.rs AS r_rs, mr.content AS r_content, mr.bspam_level AS r_bspam_level,
      r.email AS r_email
    FROM (${pageSql}) p
    JOIN msgrcpt mr ON mr.partition_tag = p.partition_tag AND mr.mail_id = p.mail_id
    JOIN maddr r ON r.id = mr.rid
    WHERE ${recipientScope(who, deps.variant)}
    ORDER BY ${order}, mr.rseqnum`.execute(deps.db);
  // rows come grouped by message in the page's order, each message's recipients by rseqnum
  const msgs: Page['msgs'] = [];
  let lastKey = '';
  for (const row of rows) {
    const k = keyOf(row.partition_tag, row.mail_id);
    if (k !== lastKey) {
      lastKey = k;
      if (msgs.length === limit) return { msgs, more: true };
      msgs.push({ m: row, rcpts: [] });
    }
    msgs[msgs.length - 1]!.rcpts.push({
      partition_tag: row.partition_tag,
      mail_id: row.mail_id,
      rseqnum: row.r_rseqnum,
      rs: row.r_rs,
      content: row.r_content,
      bspam_level: row.r_bspam_level,
      email: row.r_email,
    });
  }
  return { msgs, more: false };
}

/** A recipient as the PostgreSQL page carries it: [rseqnum, rs, content, bspam_level, email (hex where bytea)]. */
type RcptTuple = [number, string, string | null, number | null, string];

/**
 * PostgreSQL: one statement, the page with each message's recipients in the caller's scope as one
 * JSON array (a subquery per row on msgrcpt's primary key, the probe the page's EXISTS made).
 * Against the page and then its recipients (two statements) it saves, per request, a statement's
 * round trip, its socket writes and reads, and its result parsing, which were most of the API
 * process's CPU beyond the floor's (BENCHMARKS.md, issue 19.4). A join instead (as on MySQL) cost
 * the backend about twice the CPU of the two. `prepared`: the plan does not depend on the values
 * (planIsValueFree), so it is a prepared statement (src/db/bounded.ts, PREPARED).
 */
async function pageWithRecipientLists(
  deps: Deps,
  who: Identity,
  pageSql: RawBuilder<unknown>,
  limit: number,
  order: RawBuilder<unknown>,
  prepared: boolean,
): Promise<Page> {
  const v = deps.variant;
  const bytes = v.binary.has('maddr.email');
  const { rows } = await sql<MsgRow & { r_list: RcptTuple[] | null }>`${sql.raw(prepared ? PREPARED : '')}
    SELECT p.*, (SELECT json_agg(json_build_array(mr.rseqnum, mr.rs, mr.content, mr.bspam_level,
        ${bytes ? sql`encode(r.email, 'hex')` : sql`r.email`}) ORDER BY mr.rseqnum)
      FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
      WHERE mr.partition_tag = p.partition_tag AND mr.mail_id = p.mail_id AND ${recipientScope(who, v)}) AS r_list
    FROM (${pageSql}) p
    ORDER BY ${order}`.execute(deps.db);
  const msgs: Page['msgs'] = [];
  for (const row of rows.slice(0, limit)) {
    const rcpts = (row.r_list ?? []).map(([rseqnum, rs, content, bspam_level, email]) => ({
      partition_tag: row.partition_tag,
      mail_id: row.mail_id,
      rseqnum,
      rs,
      content: content ?? '',
      bspam_level,
      email: bytes ? hexBytes(email) : email,
    }));
    msgs.push({ m: row, rcpts });
  }
  return { msgs, more: rows.length > limit };
}

type PageRow = MsgRow & {
  r_rseqnum: number;
  r_rs: string;
  r_content: string;
  r_bspam_level: number | string | null;
  r_email: unknown;
};

const keyOf = (p: number | string, mailId: unknown) => `${Number(p)}.${text(mailId)}`;

/** The in-scope recipients of a page of messages, in one query. */
export async function recipientsOf(
  deps: Deps,
  who: Identity,
  msgs: Array<Pick<MsgRow, 'partition_tag' | 'mail_id'>>,
): Promise<Map<string, RcptRow[]>> {
  const out = new Map<string, RcptRow[]>();
  if (msgs.length === 0) return out;
  // the ids as they came from the page (bytes where the column is bytea): no decode and re-encode
  const seen = new Set<string>();
  const ids: unknown[] = [];
  for (const m of msgs) {
    const id = text(m.mail_id);
    if (seen.has(id)) continue;
    seen.add(id);
    const bytes = m.mail_id instanceof Uint8Array && deps.variant.dialect === 'postgres' && deps.variant.binary.has('msgrcpt.mail_id');
    ids.push(bytes ? m.mail_id : bind(deps.variant, 'msgrcpt.mail_id', id));
  }
  // PostgreSQL: the ids as one array parameter, so that the text is the same for every page and the
  // statement is prepared once per connection (src/db/bounded.ts, PREPARED); not for a domain admin,
  // whose scope's size decides the plan (see planIsValueFree).
  const pg = deps.variant.dialect === 'postgres';
  const { rows } = await sql<RcptRow>`${sql.raw(pg && who.role !== 'domain_admin' ? PREPARED : '')}
    SELECT mr.partition_tag, mr.mail_id, mr.rseqnum, mr.rs, mr.content, mr.bspam_level, r.email
    FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    WHERE ${pg ? sql`mr.mail_id = ANY(${ids})` : sql`mr.mail_id IN (${sql.join(ids)})`} AND ${recipientScope(who, deps.variant)}
    ORDER BY mr.rseqnum`.execute(deps.db);
  const wanted = new Set(msgs.map((m) => keyOf(m.partition_tag, m.mail_id)));
  for (const r of rows) {
    const k = keyOf(r.partition_tag, r.mail_id);
    if (!wanted.has(k)) continue;
    if (!out.has(k)) out.set(k, []);
    out.get(k)!.push(r);
  }
  return out;
}
