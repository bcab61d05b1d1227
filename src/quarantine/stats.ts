import { sql } from 'kysely';
import { CONTENT_TYPE_NAMES, RECIPIENT_STATUS, statusOfRs, typeOfCode, type ContentType, type RecipientStatus } from '../amavis/codes.ts';
import { reverseDomain } from '../amavis/address.ts';
import { text } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { longerDeadline } from '../db/bounded.ts';
import { ownerVisibleFor } from './release-policy.ts';
import { messageConditions, recipientConditions, type ListInput } from './list.ts';
import { ZONED_WINDOW_MAX_DAYS, dayExpression, dayText, offsetSegments } from './zone-days.ts';

export interface StatsInput extends Pick<ListInput, 'since' | 'until' | 'status' | 'domain'> {
  /** an IANA zone for by_day (default UTC) */
  tz?: string;
  /** how many domains and senders (default 10) */
  top?: number;
}

export interface Stats {
  since: string;
  until: string;
  time_zone: string;
  total: number;
  by_type: Partial<Record<ContentType, number>>;
  by_day: Array<{ day: string; count: number; by_type: Partial<Record<ContentType, number>> }>;
  by_domain: Array<{ domain: string; count: number }>;
  top_senders: Array<{ sender: string; count: number }>;
  by_status: Record<RecipientStatus, number>;
}

export const STATS_TOP_DEFAULT = 10;

/**
 * Counts within scope and the window (default: the last 30 days): messages by type and by day (in
 * `tz`, default UTC), recipients by domain and messages by envelope sender (the `top` largest), and
 * recipient copies by status (whatever the status filter says). Three statements, each one pass over
 * the window (BENCHMARKS.md has their cost at 1M messages); the domains are summed here from a row
 * per domain and status in scope (a few hundred for a gateway of 200 domains).
 */
export async function quarantineStats(
  deps: Deps,
  who: Identity,
  input: StatsInput,
  /** the snapshot job's longer bound for these statements (src/quarantine/stats-snapshots.ts) */
  opts: { statementMs?: number } = {},
): Promise<Stats> {
  const until = input.until ?? Math.floor(deps.clock.now() / 1000) + 1;
  const since = input.since ?? until - 30 * 86400;
  const zone = input.tz ?? 'UTC';
  if (zone !== 'UTC' && until - since > ZONED_WINDOW_MAX_DAYS * 86400) {
    throw new AppError(
      'invalid_field',
      `days in a time zone other than UTC: at most ${ZONED_WINDOW_MAX_DAYS} days between since and until`,
      {
        field: 'tz',
      },
    );
  }
  const top = input.top ?? STATS_TOP_DEFAULT;
  const filter: ListInput = { ...input, since, until, limit: 0 };
  const msgConds = sql.join([...messageConditions(deps, filter), await ownerVisibleFor(deps, who)], sql` AND `);
  const rcptConds = recipientConditions(deps, who, filter);
  const inScope = sql`EXISTS (SELECT 1 FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    WHERE mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id AND ${rcptConds})`;
  const day = dayExpression(deps.variant.dialect, offsetSegments(zone, since, until));

  // an admin's unfiltered count of everything needs no look at the recipients (amavisd writes a
  // msgrcpt row for each recipient of each message it logs)
  const everything = who.role === 'admin' && !input.domain && filter.status === 'all';
  const msgWhere = everything ? msgConds : sql`${msgConds} AND ${inScope}`;

  const lead = leadFor(deps, opts.statementMs);
  const byDayType = await sql<{ d: number | string; content: string | null; n: number | string }>`${lead}
    SELECT ${day} AS d, m.content, count(*) AS n FROM msgs m
    WHERE ${msgWhere} GROUP BY 1, 2 ORDER BY 1`.execute(deps.db);
  // counted by the sender's id (one pass over the window), then summed by address (one address can
  // have an id per partition): the join reads one maddr row per distinct sender, not per message
  const bySender = await sql<{ email: unknown; total: number | string }>`${lead}
    SELECT s.email, sum(t.n) AS total FROM (
      SELECT m.sid, count(*) AS n FROM msgs m WHERE ${msgWhere} GROUP BY m.sid) t
    JOIN maddr s ON s.id = t.sid GROUP BY s.email ORDER BY total DESC, s.email LIMIT ${top}`.execute(deps.db);
  // one pass over the copies for both the domains (those of the status asked for) and the statuses
  // (all of them): a row per domain and status in scope
  const anyStatus = recipientConditions(deps, who, { ...filter, status: 'all' });
  const byDomainRs = await sql<{ domain: unknown; rs: string | null; n: number | string }>`${lead}
    SELECT r.domain, mr.rs, count(*) AS n FROM msgs m
    JOIN msgrcpt mr ON mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
    JOIN maddr r ON r.id = mr.rid
    WHERE ${msgConds} AND ${anyStatus} GROUP BY r.domain, mr.rs`.execute(deps.db);

  const by_type: Partial<Record<ContentType, number>> = {};
  const days = new Map<string, Stats['by_day'][number]>();
  let total = 0;
  for (const r of byDayType.rows) {
    const t = typeOfCode(r.content?.trim());
    const n = Number(r.n);
    const d = dayText(Number(r.d));
    let entry = days.get(d);
    if (!entry) days.set(d, (entry = { day: d, count: 0, by_type: {} }));
    entry.count += n;
    entry.by_type[t] = (entry.by_type[t] ?? 0) + n;
    by_type[t] = (by_type[t] ?? 0) + n;
    total += n;
  }
  const by_status: Record<RecipientStatus, number> = { pending: 0, releasing: 0, released: 0, deleted: 0 };
  const wanted = filter.status === 'all' ? null : (RECIPIENT_STATUS[filter.status] as readonly string[]);
  const domains = new Map<string, number>();
  for (const r of byDomainRs.rows) {
    const rs = r.rs ?? '';
    by_status[statusOfRs(rs.trim() || ' ')] += Number(r.n);
    if (wanted && !wanted.includes(rs) && !wanted.includes(rs.trim())) continue;
    const d = reverseDomain(text(r.domain));
    domains.set(d, (domains.get(d) ?? 0) + Number(r.n));
  }
  const by_domain = [...domains]
    .map(([domain, count]) => ({ domain, count }))
    .sort((a, b) => b.count - a.count || (a.domain < b.domain ? -1 : 1))
    .slice(0, top);
  return {
    since: new Date(since * 1000).toISOString(),
    until: new Date(until * 1000).toISOString(),
    time_zone: zone,
    total,
    by_type: ordered(by_type),
    by_day: [...days.values()].map((d) => ({ ...d, by_type: ordered(d.by_type) })),
    by_domain,
    top_senders: bySender.rows.map((r) => ({ sender: text(r.email), count: Number(r.total) })),
    by_status,
  };
}

/**
 * What goes before each statement: nothing for a request; for the snapshot job its own client-side
 * deadline (src/db/bounded.ts) and, on MariaDB, the server's (SET STATEMENT, MariaDB only: MySQL
 * skips the /*M! comment). On PostgreSQL the job sets statement_timeout for its transaction.
 */
function leadFor(deps: Deps, ms: number | undefined) {
  if (ms === undefined) return sql``;
  const server = deps.variant.dialect === 'mysql' ? `/*M! SET STATEMENT max_statement_time = ${ms / 1000} FOR */ ` : '';
  return sql.raw(longerDeadline(ms) + server);
}

/** Types in the API's order (CONTENT_TYPE_NAMES), so that every answer lists them alike. */
export function ordered(x: Partial<Record<ContentType, number>>): Partial<Record<ContentType, number>> {
  const out: Partial<Record<ContentType, number>> = {};
  for (const t of CONTENT_TYPE_NAMES) if (x[t] !== undefined) out[t] = x[t];
  return out;
}
