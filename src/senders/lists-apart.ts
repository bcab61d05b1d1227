/**
 * Sender lists with a state database apart (README "State in its own database";
 * src/quarantine/cross-writes.ts has the design): amavisd's wblist row changes in amavisd's
 * database, its audit row and sender_list.changed event in the state database. The entry as it was
 * is read first and goes into the intent, so that the change recorded ('created', 'updated',
 * 'removed') is the one made, whether this request or the recovery pass makes it: amavisd's step
 * applies only over that prior entry and only when no newer change of the entry exists
 * (src/quarantine/intent-order.ts); otherwise nothing is made or recorded.
 */
import { sql } from 'kysely';
import { text } from '../amavis/schema.ts';
import type { MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { emitSenderListEvent } from '../webhooks/mail-events.ts';
import { writeIntent } from '../quarantine/cross-writes.ts';
import { newerOnTarget, withIntent } from '../quarantine/intent-order.ts';
import { listOfWb, type RecipientForm, type SenderForm } from './forms.ts';
import { ensureSender, ensureUser, findSender, findUser } from './rows.ts';
import type { ListName } from './lists.ts';

type Entry = ListName | 'neutral' | 'score' | null;

export interface SenderListPayload {
  who: Identity;
  r: RecipientForm;
  s: SenderForm;
  /** the entry before; and what it becomes (null: removed) */
  from: Entry;
  to: ListName | null;
}

const WB: Record<ListName, string> = { allow: 'W', block: 'B' };
/** a sender-list intent names no message */
const NO_MAIL: MailKey = { partitionTag: 0, mailId: '' };

async function currentEntry(db: Deps['db'], deps: Deps, r: RecipientForm, s: SenderForm, lock = false): Promise<Entry> {
  const user = await findUser(db, deps.variant, r.key);
  const sid = await findSender(db, deps.variant, s.key);
  if (!user || sid === null) return null;
  const { rows } = await sql<{
    wb: string;
  }>`SELECT wb FROM wblist WHERE rid = ${user.id} AND sid = ${sid}${lock ? sql` FOR UPDATE` : sql``}`.execute(db);
  return rows[0] ? listOfWb(text(rows[0].wb)) : null;
}

/** A sender-list change another cross-database write carries (allow_sender, block_sender): null when there is nothing to change. */
export async function listIntent(
  deps: Deps,
  who: Identity,
  r: RecipientForm,
  s: SenderForm,
  to: ListName,
): Promise<SenderListPayload | null> {
  const from = await currentEntry(deps.db, deps, r, s);
  return from === to ? null : { who, r, s, from, to };
}

/** An add or remove, apart: 'unchanged' / not removed without writing anything, as with one database. */
export async function changeEntryApart(
  deps: Deps,
  who: Identity,
  r: RecipientForm,
  s: SenderForm,
  to: ListName | null,
  onlyFrom?: ListName,
): Promise<'created' | 'updated' | 'unchanged' | 'removed' | 'not_found'> {
  const from = await currentEntry(deps.db, deps, r, s);
  if (to !== null && from === to) return 'unchanged';
  if (to === null && (!from || (onlyFrom && from !== onlyFrom))) return 'not_found';
  const payload: SenderListPayload = { who, r, s, from, to };
  const id = await deps.state.transaction().execute((trx) => writeIntent(trx, deps, 'sender_list', NO_MAIL, payload));
  const done = await settleSenderList(deps, { id }, { live: true });
  if (done === 'conflict') throw new AppError('conflict', 'this entry changed meanwhile; reload and try again');
  if (done === 'unchanged') return to === null ? 'not_found' : 'unchanged';
  return to === null ? 'removed' : from === null ? 'created' : 'updated';
}

/** The same recipient and sender: in a newer audit row, or in another open intent's payload (intent-order.ts). */
function sameEntry(p: SenderListPayload) {
  return (x: { recipients: string[]; detail: Record<string, unknown> } | { payload: Record<string, unknown> }) => {
    if ('payload' in x) {
      const o = x.payload as unknown as SenderListPayload;
      return o.r?.key === p.r.key && o.s?.key === p.s.key;
    }
    return x.recipients.includes(p.r.key) && x.detail.sender === p.s.key;
  };
}

/**
 * amavisd's wblist change over the prior entry, then the record. 'conflict': changed by someone
 * else meanwhile, or a newer change of this entry exists (intent-order.ts), nothing made;
 * 'unchanged': run live (`live`: the intent was just written) and the entry is already the target,
 * which another writer made, so it is not recorded as this one's. In the recovery pass an entry
 * already the target, with no newer change of it, is the stopped run's change and is recorded.
 * null: another settler recorded it.
 */
export async function settleSenderList(
  deps: Deps,
  intent: { id: string },
  opts: { live?: boolean } = {},
): Promise<'conflict' | 'unchanged' | true | null> {
  const v = deps.variant;
  return withIntent(deps, intent.id, async (st, locked) => {
    const p = JSON.parse(locked.payload) as SenderListPayload;
    const outcome = await deps.db.transaction().execute(async (trx) => {
      const now = await currentEntry(trx, deps, p.r, p.s, true);
      if (await newerOnTarget(st, locked, ['sender_list.add', 'sender_list.remove'], sameEntry(p))) return 'conflict' as const;
      if (now === p.to) return opts.live ? ('unchanged' as const) : ('made' as const);
      if (now !== p.from) return 'conflict' as const;
      const user = await ensureUser(trx, v, p.r);
      const sid = await ensureSender(trx, v, p.s.key, p.s.priority);
      if (p.to === null) await sql`DELETE FROM wblist WHERE rid = ${user.id} AND sid = ${sid}`.execute(trx);
      else if (p.from === null) await sql`INSERT INTO wblist (rid, sid, wb) VALUES (${user.id}, ${sid}, ${WB[p.to]})`.execute(trx);
      else await sql`UPDATE wblist SET wb = ${WB[p.to]} WHERE rid = ${user.id} AND sid = ${sid}`.execute(trx);
      return 'made' as const;
    });
    if (outcome !== 'made') return outcome;
    const e = { recipient: p.r.key, domain: p.r.domain, sender: p.s.key };
    if (p.to === null) {
      const list = p.from as string;
      await recordAudit(st, deps.clock, p.who, {
        action: 'sender_list.remove',
        recipients: [p.r.key],
        result: 'ok',
        detail: JSON.stringify({ sender: p.s.key, list }),
      });
      await emitSenderListEvent(st, deps, p.who, { ...e, list, change: 'removed' });
    } else {
      const change = p.from === null ? 'created' : 'updated';
      await recordAudit(st, deps.clock, p.who, {
        action: 'sender_list.add',
        recipients: [p.r.key],
        result: 'ok',
        detail: JSON.stringify({ sender: p.s.key, list: p.to, change }),
      });
      await emitSenderListEvent(st, deps, p.who, { ...e, list: p.to, change });
    }
    return true as const;
  });
}
