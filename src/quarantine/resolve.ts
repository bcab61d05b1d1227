import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { emitMailEvent } from '../webhooks/mail-events.ts';
import { closeResolvedAttempts } from './attempts.ts';
import { chooseRecipients, loadTarget, setRecipientStatus, type ActionTarget } from './target.ts';
import { settleMark, writeIntent, type MarkPayload } from './cross-writes.ts';

export interface MarkReleasedInput {
  key: MailKey;
  recipients: string[];
  /** why, for the audit (e.g. "delivered: seen in the mail log at 10:02") */
  note?: string;
}

export interface MarkReleasedResult {
  id: string;
  marked: string[];
}

/**
 * One of the two ways out of an unknown release outcome (README "Releases whose outcome is
 * unknown"): the admin has found that amavisd did deliver (its log, the mailbox) and records it
 * without delivering again. The other way is a release with force. Admins only; each recipient
 * named must be 'releasing'.
 */
export async function markReleased(deps: Deps, who: Identity, input: MarkReleasedInput): Promise<MarkReleasedResult> {
  if (who.role !== 'admin') throw new AppError('forbidden', 'only admins resolve releases whose outcome is unknown');
  if (input.recipients.length === 0)
    throw new AppError('invalid_field', 'recipients: name the copies to mark released', { field: 'recipients' });
  const target = await loadTarget(deps, who, input.key);
  const chosen = chooseRecipients(target, input.recipients);
  const notReleasing = chosen.find((r) => r.status !== 'releasing');
  if (notReleasing) {
    throw new AppError(
      'conflict',
      `${notReleasing.address} is ${notReleasing.status}, not releasing: only a release whose outcome is unknown is marked`,
      {
        field: 'recipients',
      },
    );
  }
  const key = input.key;
  const addresses = chosen.map((r) => r.address);
  if (deps.stateApart) return markReleasedApart(deps, who, key, chosen, input.note ?? null);
  await deps.db.transaction().execute(async (trx) => {
    // Compare-and-set: a concurrent resolution (or the late settlement of the attempt) wins once.
    const res = await setRecipientStatus(
      trx,
      deps,
      key,
      chosen.map((r) => r.rseqnum),
      'R',
      'p',
    );
    if (Number(res.numAffectedRows ?? 0) !== chosen.length)
      throw new AppError('conflict', 'these copies changed meanwhile; reload and check again');
    await closeResolvedAttempts(trx, deps, key);
    await recordAudit(trx, deps.clock, who, {
      action: 'mark_released',
      partitionTag: key.partitionTag,
      mailId: key.mailId,
      recipients: addresses,
      result: 'ok',
      detail: JSON.stringify({ note: input.note ?? null, delivered_by_this_action: false }),
    });
    await emitMailEvent(
      trx,
      deps,
      who,
      'quarantine.released',
      key,
      addresses.map((address) => ({ address, released: true, reply: null })),
      { marked: true },
    );
  });
  return { id: publicItemId(deps.gateway, key), marked: addresses };
}

/** With a state database apart: intent, amavisd's change, record (src/quarantine/cross-writes.ts). */
async function markReleasedApart(
  deps: Deps,
  who: Identity,
  key: MailKey,
  chosen: ActionTarget['recipients'],
  note: string | null,
): Promise<MarkReleasedResult> {
  const payload: MarkPayload = { who, copies: chosen.map((c) => ({ address: c.address, rseqnum: c.rseqnum, rs: c.rs })), note };
  const id = await deps.state.transaction().execute((trx) => writeIntent(trx, deps, 'mark_released', key, payload));
  deps.crossWriteStep?.('mark.intent');
  const done = await settleMark(deps, { id }, deps.crossWriteStep);
  if (done === 'conflict') throw new AppError('conflict', 'these copies changed meanwhile; reload and check again');
  return { id: publicItemId(deps.gateway, key), marked: chosen.map((c) => c.address) };
}
