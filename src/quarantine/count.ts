import { sql, type SqlBool } from 'kysely';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { messageConditions, recipientConditions, type ListInput } from './list.ts';

/** Counted exactly up to here; past it the answer is "more than": a count never reads the whole quarantine. */
export const COUNT_CAP = 10_000;

export interface CountResult {
  /** exact when !more; COUNT_CAP when more */
  count: number;
  more: boolean;
}

/**
 * How many messages the list's filters match (the cursor aside), in the caller's scope: a COUNT over
 * a LIMIT cap+1 subquery, so a broad filter costs at most cap+1 index rows, never a full count.
 */
export async function countQuarantine(deps: Deps, who: Identity, input: ListInput, cap = COUNT_CAP): Promise<CountResult> {
  const conds = messageConditions(deps, input);
  conds.push(sql<SqlBool>`EXISTS (SELECT 1 FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid
    WHERE mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
    AND ${recipientConditions(deps, who, input)})`);
  const from = input.sender || input.q ? sql`msgs m LEFT JOIN maddr s ON s.id = m.sid` : sql`msgs m`;
  const { rows } = await sql<{ n: number | string }>`
    SELECT COUNT(*) AS n FROM (SELECT 1 AS one FROM ${from} WHERE ${sql.join(conds, sql` AND `)} LIMIT ${cap + 1}) capped`.execute(deps.db);
  const n = Number(rows[0]?.n ?? 0);
  return n > cap ? { count: cap, more: true } : { count: n, more: false };
}
