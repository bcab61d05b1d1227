import { sql } from 'kysely';
import { bind, requireLookupTables, text, type SchemaVariant } from '../amavis/schema.ts';
import { formatItemId, type MailKey } from '../amavis/mail-id.ts';
import { statusOfRs, type RecipientStatus } from '../amavis/codes.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { parseRecipient, parseSender, type RecipientForm, type SenderForm } from '../senders/forms.ts';
import { ownerVisibleFor } from './release-policy.ts';
import { recipientScope } from './scope.ts';

/** A message an action is about to change, with its recipients limited to the caller's scope. */
export interface ActionTarget {
  key: MailKey;
  secretId: string;
  sender: string;
  /** msgs.content: what the release policy is decided on */
  contentCode: string;
  /** msgs.host: the amavisd host that quarantined it, where its release goes (src/release/routes.ts) */
  host: string;
  recipients: Array<{ address: string; rid: string; rseqnum: number; rs: string; status: RecipientStatus }>;
}

type TargetRow = {
  partition_tag: number | string;
  mail_id: unknown;
  secret_id: unknown;
  sender: unknown;
  content: string | null;
  host: unknown;
  email: unknown;
  rid: number | string;
  rseqnum: number;
  rs: string;
};

/**
 * The messages with each of their recipients in the caller's scope, in one statement for any
 * number of keys. A key with no row is absent from the map: not quarantined, or nothing of it in
 * scope (both 404 for the caller).
 */
export async function loadTargets(deps: Deps, who: Identity, keys: MailKey[]): Promise<Map<string, ActionTarget>> {
  const out = new Map<string, ActionTarget>();
  const visible = await ownerVisibleFor(deps, who);
  if (keys.length === 0) return out;
  const v = deps.variant;
  const wanted = sql.join(
    keys.map((k) => sql`(m.partition_tag = ${k.partitionTag} AND m.mail_id = ${bind(v, 'msgs.mail_id', k.mailId)})`),
    sql` OR `,
  );
  const { rows } = await sql<TargetRow>`
    SELECT m.partition_tag, m.mail_id, m.secret_id, s.email AS sender, m.content, m.host, r.email, mr.rid, mr.rseqnum, mr.rs
    FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
      JOIN msgrcpt mr ON mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
      JOIN maddr r ON r.id = mr.rid
    WHERE (${wanted})
      AND m.quar_type = 'Q' AND m.content IS NOT NULL
      AND ${recipientScope(who, v)} AND ${visible}
    ORDER BY m.partition_tag, m.mail_id, mr.rseqnum`.execute(deps.db);
  const byId = new Map(keys.map((k) => [formatItemId(k), k]));
  for (const row of rows) {
    const id = formatItemId({ partitionTag: Number(row.partition_tag), mailId: text(row.mail_id) });
    const key = byId.get(id);
    if (!key) continue;
    const target = out.get(id) ?? toTarget(key, row);
    if (!out.has(id)) out.set(id, target);
    target.recipients.push(toRecipient(row));
  }
  return out;
}

const toTarget = (key: MailKey, msg: Omit<TargetRow, 'partition_tag' | 'mail_id'>): ActionTarget => ({
  key,
  secretId: text(msg.secret_id),
  sender: text(msg.sender),
  contentCode: (msg.content ?? '').trim(),
  host: msg.host === null || msg.host === undefined ? '' : text(msg.host),
  recipients: [],
});

const toRecipient = (r: Omit<TargetRow, 'partition_tag' | 'mail_id'>) => ({
  address: text(r.email),
  rid: String(r.rid),
  rseqnum: Number(r.rseqnum),
  rs: r.rs,
  status: statusOfRs(r.rs),
});

export async function loadTarget(deps: Deps, who: Identity, key: MailKey): Promise<ActionTarget> {
  const v = deps.variant;
  // with our tables apart, the owner's hidden types are read from them first (release-policy.ts)
  const visible = await ownerVisibleFor(deps, who);
  // One statement (it was two: the message, then its recipients): the message with each of its
  // recipients in the caller's scope. No row: not quarantined, or nothing of it in scope; both 404.
  const { rows } = await sql<Omit<TargetRow, 'partition_tag' | 'mail_id'>>`
    SELECT m.secret_id, s.email AS sender, m.content, m.host, r.email, mr.rid, mr.rseqnum, mr.rs
    FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
      JOIN msgrcpt mr ON mr.partition_tag = m.partition_tag AND mr.mail_id = m.mail_id
      JOIN maddr r ON r.id = mr.rid
    WHERE m.partition_tag = ${key.partitionTag} AND m.mail_id = ${bind(v, 'msgs.mail_id', key.mailId)}
      AND m.quar_type = 'Q' AND m.content IS NOT NULL
      AND ${recipientScope(who, v)} AND ${visible}
    ORDER BY mr.rseqnum`.execute(deps.db);
  const msg = rows[0];
  if (!msg) throw new AppError('not_found', 'no quarantined message with this id');
  return { ...toTarget(key, msg), recipients: rows.map(toRecipient) };
}

/**
 * The recipients an action applies to: those asked for (each must be one of the mail's own, in
 * scope: an action never reaches an address the mail was not for), else every pending one.
 */
export function chooseRecipients(target: ActionTarget, requested: string[] | undefined) {
  if (!requested || requested.length === 0) return target.recipients.filter((r) => r.status === 'pending');
  const chosen = [];
  for (const address of new Set(requested)) {
    const r = target.recipients.find((x) => x.address === address);
    if (!r) {
      throw new AppError('invalid_field', `recipients: ${JSON.stringify(address)} is not a recipient of this message`, {
        field: 'recipients',
      });
    }
    chosen.push(r);
  }
  return chosen;
}

/**
 * Claim recipients for a release (rs='p') with a compare-and-set on the value we read, so two
 * concurrent releases of one copy cannot both reach amavisd (amavisd itself would deliver twice).
 * Returns the recipients this caller now holds.
 */
export async function claimForRelease<R extends { rseqnum: number; rs: string }>(
  trx: Deps['db'],
  deps: Deps,
  key: MailKey,
  rcpts: R[],
): Promise<R[]> {
  const held: R[] = [];
  for (const r of rcpts) {
    const res = await sql`UPDATE msgrcpt SET rs = 'p'
      WHERE partition_tag = ${key.partitionTag} AND mail_id = ${bind(deps.variant, 'msgrcpt.mail_id', key.mailId)}
        AND rseqnum = ${r.rseqnum} AND rs = ${r.rs}`.execute(trx);
    if (Number(res.numAffectedRows ?? 0) === 1) held.push(r);
  }
  return held;
}

/**
 * Copies a forced release takes over: still 'p' now, and locked until the claim's transaction
 * ends, so an older release's answer settled meanwhile (which may have given them back or
 * released them) is seen rather than overwritten (src/quarantine/intent-order.ts).
 */
export async function holdReleasing(trx: Deps['db'], deps: Deps, key: MailKey, rcpts: Array<{ rseqnum: number }>): Promise<boolean> {
  if (rcpts.length === 0) return true;
  const { rows } = await sql<{ rs: string }>`SELECT rs FROM msgrcpt
    WHERE partition_tag = ${key.partitionTag} AND mail_id = ${bind(deps.variant, 'msgrcpt.mail_id', key.mailId)}
      AND rseqnum IN (${sql.join(rcpts.map((r) => r.rseqnum))}) FOR UPDATE`.execute(trx);
  return rows.length === rcpts.length && rows.every((r) => r.rs === 'p');
}

/** Give claimed recipients back their former status (the release did not happen for them). */
export async function unclaim(trx: Deps['db'], deps: Deps, key: MailKey, rcpts: Array<{ rseqnum: number; rs: string }>) {
  for (const r of rcpts) {
    await sql`UPDATE msgrcpt SET rs = ${r.rs}
      WHERE partition_tag = ${key.partitionTag} AND mail_id = ${bind(deps.variant, 'msgrcpt.mail_id', key.mailId)}
        AND rseqnum = ${r.rseqnum} AND rs = 'p'`.execute(trx);
  }
}

/** `from`: only rows still in that state (a compare-and-set). */
export function setRecipientStatus(trx: Deps['db'], deps: Deps, key: MailKey, rseqnums: number[], rs: 'R' | 'D', from?: string) {
  return sql`UPDATE msgrcpt SET rs = ${rs}
    WHERE partition_tag = ${key.partitionTag} AND mail_id = ${bind(deps.variant, 'msgrcpt.mail_id', key.mailId)}
      AND rseqnum IN (${sql.join(rseqnums)})${from === undefined ? sql`` : sql` AND rs = ${from}`}`.execute(trx);
}

/**
 * The sender-list entries an allow_sender / block_sender will write, checked before anything is
 * sent to amavisd or changed: the envelope sender must be listable (not the null sender '') and
 * each recipient a mailbox amavisd can key on; amavisd's lookup tables must exist (501 otherwise).
 */
export function senderListing(v: SchemaVariant, target: ActionTarget, chosen: Array<{ address: string }>, field: string) {
  requireLookupTables(v);
  const sender: SenderForm | null = target.sender === '' ? null : parseSender(target.sender);
  if (!sender?.key.includes('@') || sender.key.startsWith('@')) {
    const why =
      target.sender === '' ? 'the message has the null sender <>, which cannot be listed' : 'the envelope sender is not a listable address';
    throw new AppError('invalid_field', `${field}: ${why}; nothing was changed`, { field });
  }
  const recipients = new Map<string, RecipientForm>();
  for (const r of chosen) {
    const form = parseRecipient(r.address);
    if (form?.kind !== 'mailbox') {
      throw new AppError('invalid_field', `${field}: recipient ${JSON.stringify(r.address)} cannot carry a sender list`, { field });
    }
    recipients.set(r.address, form);
  }
  return { sender, recipients };
}
