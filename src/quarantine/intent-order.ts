/**
 * Why a cross-database write is never redone over a newer change (src/quarantine/cross-writes.ts).
 * An intent can wait minutes for the recovery pass; meanwhile its copies or its sender-list entry
 * may change, and even change back (A->B->A), so a compare-and-set on the before-value alone would
 * let the old intent's step 2 land on top of the newer changes. So every settler:
 *  1. locks the intent's row in a state transaction and reads it again: gone means another settler
 *     recorded it (nothing is redone); a second settler waits here, so one proceeds at a time;
 *  2. locks amavisd's rows (SELECT ... FOR UPDATE) and only then looks for a newer change of the
 *     same target in the state database: an audit row written after the intent (its id above the
 *     highest audit id when the intent was written, `seen`; a release compares with its attempt's
 *     own audit row, which every later attempt, open or settled, follows), or another open intent
 *     ordered after it (created_at, then id). A newer writer records its own audit row or intent
 *     before it touches amavisd's rows, so one of the two sees the other;
 *  3. skips the target when it finds one: nothing is made, and nothing is recorded as made by it.
 * Open intents are ordered by created_at, then by id, which starts with the writer's clock in
 * milliseconds (writeIntent); clocks of different nodes are trusted to a second. Changes made to
 * amavisd's tables by anything but this service are not seen (only the compare-and-set guards them).
 */
import { sql } from 'kysely';
import type { MailKey } from '../amavis/mail-id.ts';
import type { Deps } from '../deps.ts';
import type { QeCrossWritesTable } from '../db/types.ts';

export type LockedIntent = Pick<QeCrossWritesTable, 'id' | 'kind' | 'audit_id' | 'partition_tag' | 'mail_id' | 'payload' | 'created_at'> & {
  /** the gateway whose database the intent changes ('' the deployment's own) */
  gateway_id?: string;
  /** the highest qe_audit id when the intent was written; null for one written before it was kept */
  seen: number | null;
};

/** The highest audit id now: what an intent written now has seen. */
export async function highestAuditId(trx: Deps['state']): Promise<number> {
  const row = await trx.selectFrom('qe_audit').select(sql<number | string | null>`max(id)`.as('n')).executeTakeFirst();
  return Number(row?.n ?? 0);
}

/**
 * `fn` with the intent locked in a state transaction (`st`), which `fn` records in; the intent is
 * deleted in it when `fn` returns. null: the intent is gone, another settler recorded it. A failure
 * rolls back, the intent stays for the next recovery pass.
 */
export async function withIntent<T>(
  deps: Deps,
  id: string,
  fn: (st: Deps['state'], intent: LockedIntent) => Promise<T>,
): Promise<T | null> {
  return deps.state.transaction().execute(async (st) => {
    const row = await st.selectFrom('qe_cross_writes').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
    if (!row) return null;
    const seen = (JSON.parse(row.payload) as { seen?: number }).seen;
    const out = await fn(st, { ...row, seen: seen === undefined ? null : Number(seen) });
    await st.deleteFrom('qe_cross_writes').where('id', '=', id).execute();
    return out;
  });
}

/** Another open intent ordered after this one. */
const after = (a: { created_at: number; id: string }, b: { created_at: number; id: string }) =>
  Number(a.created_at) > Number(b.created_at) || (Number(a.created_at) === Number(b.created_at) && a.id > b.id);

/**
 * The audit rows newer than the intent: after its release attempt's own row, or after what it had
 * seen; for an intent from before `seen` was kept, those audited in or after its second.
 */
function newerAudit(st: Deps['state'], intent: LockedIntent, actions: string[]) {
  // a change in another gateway's database is another message, whatever its key
  const q = st
    .selectFrom('qe_audit')
    .select(['recipients', 'detail'])
    .where('action', 'in', actions)
    .where('gateway_id', '=', intent.gateway_id ?? '');
  if (intent.kind === 'release' && intent.audit_id !== null) return q.where('id', '>', Number(intent.audit_id));
  return intent.seen === null ? q.where('at', '>=', Number(intent.created_at)) : q.where('id', '>', intent.seen);
}

/**
 * The copies (by address) of a message that a newer change names: a release attempt, delete or
 * mark-released audited after the intent, or an open delete / mark-released / release intent
 * ordered after it. Call with amavisd's rows of these copies locked.
 */
export async function newerOnCopies(st: Deps['state'], intent: LockedIntent, key: MailKey): Promise<Set<string>> {
  const named = new Set<string>();
  const rows = await newerAudit(st, intent, ['release', 'delete', 'mark_released'])
    .where('partition_tag', '=', key.partitionTag)
    .where('mail_id', '=', key.mailId)
    .execute();
  for (const r of rows) for (const a of JSON.parse(r.recipients ?? '[]') as string[]) named.add(a);
  const open = await st
    .selectFrom('qe_cross_writes')
    .select(['id', 'kind', 'payload', 'created_at'])
    .where('partition_tag', '=', key.partitionTag)
    .where('mail_id', '=', key.mailId)
    .where('kind', 'in', ['release', 'delete', 'mark_released'])
    .where('gateway_id', '=', intent.gateway_id ?? '')
    .where('id', '!=', intent.id)
    .execute();
  for (const o of open) {
    if (!after(o, intent)) continue;
    for (const c of (JSON.parse(o.payload) as { copies: Array<{ address: string }> }).copies) named.add(c.address);
  }
  return named;
}

/**
 * Whether a newer change names this target of a sender-list or policy intent: an audit row of
 * `actions` after it that `matches`, or an open intent of the same kind ordered after it whose
 * payload `matches`.
 */
export async function newerOnTarget(
  st: Deps['state'],
  intent: LockedIntent,
  actions: string[],
  matches: (audit: { recipients: string[]; detail: Record<string, unknown> } | { payload: Record<string, unknown> }) => boolean,
): Promise<boolean> {
  const rows = await newerAudit(st, intent, actions).execute();
  for (const r of rows) {
    const detail = (r.detail?.startsWith('{') ? JSON.parse(r.detail) : {}) as Record<string, unknown>;
    if (matches({ recipients: JSON.parse(r.recipients ?? '[]') as string[], detail })) return true;
  }
  const open = await st
    .selectFrom('qe_cross_writes')
    .select(['id', 'payload', 'created_at'])
    .where('kind', '=', intent.kind)
    .where('gateway_id', '=', intent.gateway_id ?? '')
    .where('id', '!=', intent.id)
    .execute();
  return open.some((o) => after(o, intent) && matches({ payload: JSON.parse(o.payload) as Record<string, unknown> }));
}
