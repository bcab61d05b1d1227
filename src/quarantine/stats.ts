import { sql } from 'kysely';
import { CONTENT_TYPE_NAMES, statusOfRs, typeOfCode, type ContentType, type RecipientStatus } from '../amavis/codes.ts';
import { reverseDomain } from '../amavis/address.ts';
import { text } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { ownerVisible } from './release-policy.ts';
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
 * recipient copies by status (whatever the status filter says). Four statements, each one pass over
 * the window's messages (BENCHMARKS.md has their cost at 1M messages).
 */
export async function quarantineStats(deps: Deps, who: Identity, input: StatsInput): Promise<Stats> {
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
  const msgConds = sql.join([...messageConditions(deps, filter), ownerVisible(who)], sql` AND `);
  const rcptConds = recipientConditions(deps, who, filter);
  const inScope = sql`EXISTS (SELECT 1 FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    WHERE mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id AND ${rcptConds})`;
  const day = dayExpression(deps.variant.dialect, offsetSegments(zone, since, until));

  const byDayType = await sql<{ d: number | string; content: string | null; n: number | string }>`
    SELECT ${day} AS d, m.content, count(*) AS n FROM msgs m
    WHERE ${msgConds} AND ${inScope} GROUP BY 1, 2 ORDER BY 1`.execute(deps.db);
  const byDomain = await sql<{ domain: unknown; n: number | string }>`
    SELECT r.domain, count(*) AS n FROM msgs m
    JOIN msgrcpt mr ON mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
    JOIN maddr r ON r.id = mr.rid
    WHERE ${msgConds} AND ${rcptConds} GROUP BY r.domain ORDER BY n DESC, r.domain LIMIT ${top}`.execute(deps.db);
  // counted by the sender's id (one pass over the window), then summed by address (one address can
  // have an id per partition): the join reads one maddr row per distinct sender, not per message
  const bySender = await sql<{ email: unknown; total: number | string }>`
    SELECT s.email, sum(t.n) AS total FROM (
      SELECT m.sid, count(*) AS n FROM msgs m WHERE ${msgConds} AND ${inScope} GROUP BY m.sid) t
    JOIN maddr s ON s.id = t.sid GROUP BY s.email ORDER BY total DESC, s.email LIMIT ${top}`.execute(deps.db);
  // every status, whatever the filter asked for: the copies' share of each
  const anyStatus = recipientConditions(deps, who, { ...filter, status: 'all' });
  const byRs = await sql<{ rs: string | null; n: number | string }>`
    SELECT mr.rs, count(*) AS n FROM msgs m
    JOIN msgrcpt mr ON mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
    JOIN maddr r ON r.id = mr.rid
    WHERE ${msgConds} AND ${anyStatus} GROUP BY mr.rs`.execute(deps.db);

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
  for (const r of byRs.rows) by_status[statusOfRs(r.rs?.trim() || ' ')] += Number(r.n);
  return {
    since: new Date(since * 1000).toISOString(),
    until: new Date(until * 1000).toISOString(),
    time_zone: zone,
    total,
    by_type: ordered(by_type),
    by_day: [...days.values()].map((d) => ({ ...d, by_type: ordered(d.by_type) })),
    by_domain: byDomain.rows.map((r) => ({ domain: reverseDomain(text(r.domain)), count: Number(r.n) })),
    top_senders: bySender.rows.map((r) => ({ sender: text(r.email), count: Number(r.total) })),
    by_status,
  };
}

/** Types in the API's order (CONTENT_TYPE_NAMES), so that every answer lists them alike. */
function ordered(x: Partial<Record<ContentType, number>>): Partial<Record<ContentType, number>> {
  const out: Partial<Record<ContentType, number>> = {};
  for (const t of CONTENT_TYPE_NAMES) if (x[t] !== undefined) out[t] = x[t];
  return out;
}
