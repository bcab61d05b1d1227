import { sql } from 'kysely';
import { typeOfCode, type ContentType } from '../amavis/codes.ts';
import { reverseDomain } from '../amavis/address.ts';
import { text } from '../amavis/schema.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { ownerVisible } from './release-policy.ts';
import { messageConditions, recipientConditions, type ListInput } from './list.ts';

export interface Stats {
  since: string;
  until: string;
  total: number;
  by_type: Partial<Record<ContentType, number>>;
  by_day: Array<{ day: string; count: number }>;
  by_domain: Array<{ domain: string; count: number }>;
}

/** Counts of messages (by type, by UTC day) and recipients (by domain), all within scope. */
export async function quarantineStats(
  deps: Deps,
  who: Identity,
  input: Pick<ListInput, 'since' | 'until' | 'status' | 'domain'>,
): Promise<Stats> {
  const until = input.until ?? Math.floor(deps.clock.now() / 1000) + 1;
  const since = input.since ?? until - 30 * 86400;
  const filter: ListInput = { ...input, since, until, limit: 0 };
  const msgConds = sql.join([...messageConditions(deps, filter), ownerVisible(who)], sql` AND `);
  const rcptConds = recipientConditions(deps, who, filter);
  const inScope = sql`EXISTS (SELECT 1 FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    WHERE mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id AND ${rcptConds})`;

  const byType = await sql<{ content: string; n: number | string }>`
    SELECT m.content, count(*) AS n FROM msgs m
    WHERE ${msgConds} AND ${inScope} GROUP BY m.content`.execute(deps.db);
  const byDay = await sql<{ d: number | string; n: number | string }>`
    SELECT floor(m.time_num / 86400) AS d, count(*) AS n FROM msgs m
    WHERE ${msgConds} AND ${inScope} GROUP BY floor(m.time_num / 86400) ORDER BY d`.execute(deps.db);
  const byDomain = await sql<{ domain: unknown; n: number | string }>`
    SELECT r.domain, count(*) AS n FROM msgs m
    JOIN msgrcpt mr ON mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
    JOIN maddr r ON r.id = mr.rid
    WHERE ${msgConds} AND ${rcptConds} GROUP BY r.domain ORDER BY n DESC`.execute(deps.db);

  const by_type: Partial<Record<ContentType, number>> = {};
  let total = 0;
  for (const r of byType.rows) {
    const t = typeOfCode(r.content?.trim());
    by_type[t] = (by_type[t] ?? 0) + Number(r.n);
    total += Number(r.n);
  }
  return {
    since: new Date(since * 1000).toISOString(),
    until: new Date(until * 1000).toISOString(),
    total,
    by_type,
    by_day: byDay.rows.map((r) => ({
      day: new Date(Number(r.d) * 86400 * 1000).toISOString().slice(0, 10),
      count: Number(r.n),
    })),
    by_domain: byDomain.rows.map((r) => ({ domain: reverseDomain(text(r.domain)), count: Number(r.n) })),
  };
}
