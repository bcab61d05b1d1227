import { sql } from 'kysely';
import { bind, requireLookupTables, text } from '../amavis/schema.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { emitSenderListEvent } from '../webhooks/mail-events.ts';
import { listOfWb, parseRecipient, parseSender, type RecipientForm, type SenderForm } from './forms.ts';
import { changeEntryApart } from './lists-apart.ts';
import { canManageRecipient, ensureSender, ensureUser, findSender, findUser, usersScope } from './rows.ts';

/**
 * Per-recipient sender allow/block lists, in amavisd's own tables: wblist(rid -> users.id,
 * sid -> mailaddr.id, wb 'W'|'B'). amavisd checks, for each users row matching the recipient
 * (priority DESC) and each mailaddr row matching the sender (priority DESC), the first wblist hit.
 */
export type ListName = 'allow' | 'block';
const WB: Record<ListName, string> = { allow: 'W', block: 'B' };

export interface SenderEntry {
  recipient: string;
  sender: string;
  list: ListName | 'neutral' | 'score';
  /** wblist.wb as stored ('W', 'B', or a score for soft lists written by other tools) */
  wb: string;
  recipient_priority: number;
  sender_priority: number;
}

export interface EntryInput {
  recipient: string;
  sender: string;
  list: ListName;
}

type Db = Deps['db'];

function forms(input: { recipient: string; sender: string }): { r: RecipientForm; s: SenderForm } {
  const r = parseRecipient(input.recipient);
  if (!r) throw new AppError('invalid_field', 'recipient: expected user@example.com, @example.com or @.', { field: 'recipient' });
  const s = parseSender(input.sender);
  if (!s) throw new AppError('invalid_field', 'sender: expected a@b.example, @b.example or @.b.example', { field: 'sender' });
  return { r, s };
}

function inScope(who: Identity, r: RecipientForm) {
  if (!canManageRecipient(who, r)) throw new AppError('not_found', 'no such recipient in your scope');
}

export async function listSenderEntries(
  deps: Deps,
  who: Identity,
  q: { recipient?: string; sender?: string; list?: ListName; limit?: number } = {},
): Promise<SenderEntry[]> {
  requireLookupTables(deps.variant);
  const v = deps.variant;
  const conds = [usersScope(who, v, 'u')];
  if (q.recipient !== undefined) {
    const r = parseRecipient(q.recipient);
    if (!r) throw new AppError('invalid_field', 'recipient: expected user@example.com, @example.com or @.', { field: 'recipient' });
    conds.push(sql<boolean>`u.email = ${bind(v, 'users.email', r.key)}`);
  }
  if (q.sender !== undefined) {
    const s = parseSender(q.sender);
    if (!s) throw new AppError('invalid_field', 'sender: expected a@b.example, @b.example or @.b.example', { field: 'sender' });
    conds.push(sql<boolean>`m.email = ${bind(v, 'mailaddr.email', s.key)}`);
  }
  if (q.list) conds.push(q.list === 'allow' ? sql<boolean>`upper(w.wb) IN ('W', 'Y', 'T')` : sql<boolean>`upper(w.wb) IN ('B', 'N', 'F')`);
  const { rows } = await sql<{ re: unknown; se: unknown; wb: string; rp: number; sp: number }>`
    SELECT u.email AS re, m.email AS se, w.wb, u.priority AS rp, m.priority AS sp
    FROM wblist w JOIN users u ON u.id = w.rid JOIN mailaddr m ON m.id = w.sid
    WHERE ${sql.join(conds, sql` AND `)}
    ORDER BY u.priority DESC, u.email, m.priority DESC, m.email
    LIMIT ${Math.min(q.limit ?? 500, 1000)}`.execute(deps.db);
  return rows.map((x) => ({
    recipient: text(x.re),
    sender: text(x.se),
    list: listOfWb(x.wb),
    wb: x.wb,
    recipient_priority: Number(x.rp),
    sender_priority: Number(x.sp),
  }));
}

/**
 * Write one entry inside the caller's transaction; no scope check (callers check). Returns what
 * changed: 'created', 'updated' (moved from the other list) or 'unchanged'.
 */
export async function writeEntry(trx: Db, deps: Deps, who: Identity, r: RecipientForm, s: SenderForm, list: ListName) {
  const v = deps.variant;
  const user = await ensureUser(trx, v, r);
  const sid = await ensureSender(trx, v, s.key, s.priority);
  const { rows } = await sql<{ wb: string }>`SELECT wb FROM wblist WHERE rid = ${user.id} AND sid = ${sid}`.execute(trx);
  let change: 'created' | 'updated' | 'unchanged';
  if (!rows[0]) {
    await sql`INSERT INTO wblist (rid, sid, wb) VALUES (${user.id}, ${sid}, ${WB[list]})`.execute(trx);
    change = 'created';
  } else if (listOfWb(rows[0].wb) === list) {
    change = 'unchanged';
  } else {
    await sql`UPDATE wblist SET wb = ${WB[list]} WHERE rid = ${user.id} AND sid = ${sid}`.execute(trx);
    change = 'updated';
  }
  if (change !== 'unchanged') {
    await recordAudit(trx, deps.clock, who, {
      action: 'sender_list.add',
      recipients: [r.key],
      result: 'ok',
      detail: JSON.stringify({ sender: s.key, list, change }),
    });
    await emitSenderListEvent(trx, deps, who, { recipient: r.key, domain: r.domain, sender: s.key, list, change });
  }
  return change;
}

export async function addSenderEntry(deps: Deps, who: Identity, input: EntryInput) {
  requireLookupTables(deps.variant);
  const { r, s } = forms(input);
  inScope(who, r);
  if (deps.stateApart) {
    const change = (await changeEntryApart(deps, who, r, s, input.list)) as 'created' | 'updated' | 'unchanged';
    return { entry: { recipient: r.key, sender: s.key, list: input.list }, change };
  }
  const change = await deps.db.transaction().execute((trx) => writeEntry(trx, deps, who, r, s, input.list));
  return { entry: { recipient: r.key, sender: s.key, list: input.list }, change };
}

/** Removes the wblist row only; users and mailaddr rows stay (they may carry a policy or other lists). */
export async function removeSenderEntry(deps: Deps, who: Identity, input: { recipient: string; sender: string; list?: ListName }) {
  requireLookupTables(deps.variant);
  const { r, s } = forms(input);
  inScope(who, r);
  if (deps.stateApart) return { removed: (await changeEntryApart(deps, who, r, s, null, input.list)) === 'removed' };
  const v = deps.variant;
  return deps.db.transaction().execute(async (trx) => {
    const user = await findUser(trx, v, r.key);
    const sid = await findSender(trx, v, s.key);
    if (!user || sid === null) return { removed: false };
    const { rows } = await sql<{ wb: string }>`SELECT wb FROM wblist WHERE rid = ${user.id} AND sid = ${sid}`.execute(trx);
    const current = rows[0] ? listOfWb(rows[0].wb) : null;
    if (!current || (input.list && current !== input.list)) return { removed: false };
    await sql`DELETE FROM wblist WHERE rid = ${user.id} AND sid = ${sid}`.execute(trx);
    await recordAudit(trx, deps.clock, who, {
      action: 'sender_list.remove',
      recipients: [r.key],
      result: 'ok',
      detail: JSON.stringify({ sender: s.key, list: current }),
    });
    await emitSenderListEvent(trx, deps, who, { recipient: r.key, domain: r.domain, sender: s.key, list: current, change: 'removed' });
    return { removed: true };
  });
}
