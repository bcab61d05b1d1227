import { sql } from 'kysely';
import { bind } from '../amavis/schema.ts';
import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { writeEntry } from '../senders/lists.ts';
import { AppError } from '../errors.ts';
import { emitMailEvent } from '../webhooks/mail-events.ts';
import { closeResolvedAttempts } from './attempts.ts';
import { settleDelete, writeIntent, type DeletePayload, type Listing } from './cross-writes.ts';
import { chooseRecipients, loadTarget, senderListing, setRecipientStatus, type ActionTarget } from './target.ts';

export interface DeleteInput {
  key: MailKey;
  recipients?: string[];
  blockSender?: boolean;
  /** the message as loadTarget just read it for this caller and key (a filtered bulk); unset: read here */
  target?: ActionTarget;
}

export interface DeleteResult {
  id: string;
  deleted: string[];
  /** true when no recipient was left pending, so the stored message itself was removed */
  content_removed: boolean;
}

/**
 * Delete the caller's copies: their recipients become rs='D' (gone from pending listings). When
 * no recipient of the message is left pending, the quarantined text is removed too; msgs and
 * msgrcpt stay for the log until the purge job's retention removes them.
 */
export async function deleteMessage(deps: Deps, who: Identity, input: DeleteInput): Promise<DeleteResult> {
  const target = input.target ?? (await loadTarget(deps, who, input.key));
  const chosen = chooseRecipients(target, input.recipients).filter((r) => r.status !== 'deleted');
  // Like a repeated release (nothing_to_release): a repeated delete is a 409, not a 200 that did nothing.
  if (chosen.length === 0) {
    throw new AppError(
      'nothing_to_delete',
      input.recipients?.length
        ? 'every recipient named was already deleted'
        : 'nothing pending in your scope: every recipient was already released or deleted (or is releasing)',
    );
  }
  const key = input.key;
  if (deps.stateApart) {
    const listing = input.blockSender ? senderListing(deps.variant, target, chosen, 'block_sender') : null;
    return deleteApart(
      deps,
      who,
      key,
      chosen,
      listing ? { sender: listing.sender, recipients: Object.fromEntries(listing.recipients) } : undefined,
    );
  }
  const listing = input.blockSender ? senderListing(deps.variant, target, chosen, 'block_sender') : null;
  return deps.db.transaction().execute(async (trx) => {
    await setRecipientStatus(
      trx,
      deps,
      key,
      chosen.map((r) => r.rseqnum),
      'D',
    );
    // a copy whose release outcome was unknown, deleted by name, closes that attempt
    if (chosen.some((r) => r.status === 'releasing')) await closeResolvedAttempts(trx, deps, key);
    if (listing) {
      for (const r of chosen) await writeEntry(trx, deps, who, listing.recipients.get(r.address)!, listing.sender, 'block');
    }
    const contentRemoved = await removeContentIfDone(trx, deps, key);
    const deleted = chosen.map((r) => r.address);
    await recordDeleted(trx, deps, who, key, deleted, contentRemoved);
    return { id: publicItemId(deps.gateway, key), deleted, content_removed: contentRemoved };
  });
}

/**
 * With a state database apart (src/quarantine/cross-writes.ts): the intent first, then amavisd's
 * change and the audit row and event; a process stopped between them is settled by the recovery
 * pass, which makes the change (it was asked for and recorded) before recording it.
 */
async function deleteApart(
  deps: Deps,
  who: Identity,
  key: MailKey,
  chosen: ActionTarget['recipients'],
  listing?: Listing,
): Promise<DeleteResult> {
  const payload: DeletePayload = {
    who,
    copies: chosen.map((c) => ({ address: c.address, rseqnum: c.rseqnum, rs: c.rs })),
    ...(listing ? { listing } : {}),
  };
  const id = await deps.state.transaction().execute((trx) => writeIntent(trx, deps, 'delete', key, payload));
  deps.crossWriteStep?.('delete.intent');
  const settled = await settleDelete(deps, { id }, { step: deps.crossWriteStep, live: true });
  // settled by the recovery pass meanwhile: the copies are deleted either way
  if (!settled) return { id: publicItemId(deps.gateway, key), deleted: chosen.map((c) => c.address), content_removed: false };
  // as a repeated delete: the copies were released or deleted by another request meanwhile
  if (settled.deleted.length === 0) throw new AppError('nothing_to_delete', 'these copies changed meanwhile; nothing was deleted');
  return settled;
}

/** A delete's audit row and its `quarantine.deleted` event, in the caller's (state) transaction: one database or apart (cross-writes.ts). */
export async function recordDeleted(
  trx: Deps['state'],
  deps: Deps,
  who: Identity,
  key: MailKey,
  deleted: string[],
  contentRemoved: boolean,
) {
  await recordAudit(trx, deps.clock, who, {
    action: 'delete',
    partitionTag: key.partitionTag,
    mailId: key.mailId,
    recipients: deleted,
    result: 'ok',
    detail: JSON.stringify({ content_removed: contentRemoved }),
  });
  await emitMailEvent(
    trx,
    deps,
    who,
    'quarantine.deleted',
    key,
    deleted.map((address) => ({ address })),
    { content_removed: contentRemoved },
  );
}

/**
 * amavisd's side of a delete, after the copies are 'D': when no copy is left to release or delete,
 * the stored message (quarantine rows) goes too. Returns whether it went.
 */
export async function removeContentIfDone(trx: Deps['db'], deps: Deps, key: MailKey): Promise<boolean> {
  const v = deps.variant;
  const left = await sql<{ n: number | string }>`SELECT count(*) AS n FROM msgrcpt
    WHERE partition_tag = ${key.partitionTag} AND mail_id = ${bind(v, 'msgrcpt.mail_id', key.mailId)}
      AND rs NOT IN ('R', 'D')`.execute(trx);
  const removed = Number(left.rows[0]?.n ?? 0) === 0;
  if (removed) {
    await sql`DELETE FROM quarantine WHERE partition_tag = ${key.partitionTag}
      AND mail_id = ${bind(v, 'quarantine.mail_id', key.mailId)}`.execute(trx);
  }
  return removed;
}
