import type { MailKey } from '../amavis/mail-id.ts';
import { formatItemId } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { ReleaseReply } from '../release/transport.ts';
import { writeEntry } from '../senders/lists.ts';
import { emitReleaseEvents } from '../webhooks/mail-events.ts';
import { enabledSubscriptions } from '../webhooks/events.ts';
import { chooseRecipients, claimForRelease, loadTarget, senderListing, setRecipientStatus, unclaim } from './target.ts';

export interface ReleaseInput {
  key: MailKey;
  recipients?: string[];
  allowSender?: boolean;
  /**
   * Admins only, with explicit recipients: release copies stuck in 'releasing' (rs='p' left behind
   * when a process died while amavisd was answering). Their earlier release may have delivered, so
   * this may deliver a second time: the admin decides.
   */
  force?: boolean;
}

export interface RecipientOutcome {
  recipient: string;
  released: boolean;
  reply: string | null;
}

export interface ReleaseResult {
  id: string;
  status: 'released' | 'partial' | 'failed';
  results: RecipientOutcome[];
  via: string;
}

/** Runs inside the transaction that records the outcome (the API stores its idempotent answer here). */
export type OnRecorded = (trx: Deps['db'], result: ReleaseResult) => Promise<void>;

const ok = (line: string) => /^2\d\d\b/.test(line) && !/^2\d\d 2\.5\.0\b/.test(line);

/**
 * amavisd answers one setreply per recipient, in the order they were asked for. When the count
 * does not match, nothing can be said per recipient, so the overall verdict applies to all.
 */
export function outcomes(recipients: string[], reply: ReleaseReply): RecipientOutcome[] {
  if (reply.setreplies.length === recipients.length) {
    return recipients.map((r, i) => ({ recipient: r, released: ok(reply.setreplies[i]!), reply: reply.setreplies[i]! }));
  }
  const joined = reply.setreplies.join(' | ') || null;
  return recipients.map((r) => ({ recipient: r, released: reply.released, reply: joined }));
}

/**
 * Release a quarantined message through amavisd. The recipients are first claimed (rs='p', so a
 * concurrent release cannot deliver them a second time); only after amavisd has answered do they
 * become rs='R' (or get their status back), in one transaction with the audit row.
 */
export async function releaseMessage(deps: Deps, who: Identity, input: ReleaseInput, onRecorded?: OnRecorded): Promise<ReleaseResult> {
  const transport = deps.release;
  if (!transport) {
    throw new AppError('release_not_configured',
      'set AMAVISD_PDP=127.0.0.1:9998 (Node beside amavisd) or RELAY_URL and RELAY_SECRET (through the relay)');
  }
  const target = await loadTarget(deps, who, input.key);
  const chosen = chooseRecipients(target, input.recipients);
  if (input.force && (who.role !== 'admin' || !input.recipients?.length)) {
    throw new AppError('invalid_field', 'force: only for admins, with explicit recipients', { field: 'force' });
  }
  const blocked = chosen.find((r) => r.status === 'deleted' || (r.status === 'releasing' && !input.force));
  if (blocked) {
    const why = blocked.status === 'deleted' ? 'this copy was deleted' : 'a release of this copy is in progress';
    throw new AppError('nothing_to_release', `${blocked.address}: ${why}`, { field: 'recipients' });
  }
  if (chosen.length === 0) throw new AppError('nothing_to_release', 'every recipient in your scope was already released or deleted');
  const listing = input.allowSender ? senderListing(deps.variant, target, chosen, 'allow_sender') : null;

  // Stuck claims taken over by force keep rs='p'; if this release fails they become pending again.
  const stuck = chosen.filter((r) => r.status === 'releasing').map((r) => ({ ...r, rs: ' ' }));
  const held = [...stuck, ...(await claimForRelease(deps, input.key, chosen.filter((r) => r.status !== 'releasing')))];
  if (held.length === 0) throw new AppError('nothing_to_release', 'another release of this message is in progress');
  const id = formatItemId(input.key);
  const addresses = held.map((r) => r.address);
  const audit = { action: 'release', partitionTag: input.key.partitionTag, mailId: input.key.mailId, recipients: addresses };
  // The webhook subscriptions are read while amavisd delivers (a round trip hidden behind the
  // AM.PDP exchange instead of one more inside the transaction below); null: read them there.
  const subs = enabledSubscriptions(deps.db).catch(() => null);
  let reply: ReleaseReply;
  try {
    reply = await transport.release({
      partitionTag: input.key.partitionTag,
      mailId: input.key.mailId,
      secretId: target.secretId,
      recipients: addresses,
      requestedBy: who.actor,
    });
  } catch (err) {
    const detail = err instanceof AppError ? err.message : 'release transport failed';
    await deps.db.transaction().execute(async (trx) => {
      await unclaim(trx, deps, input.key, held);
      await recordAudit(trx, deps.clock, who, { ...audit, result: 'failed', detail });
      await emitReleaseEvents(trx, deps, who, input.key, addresses.map((recipient) => ({ recipient, released: false, reply: null })), detail, await subs);
    });
    if (err instanceof AppError) throw err;
    throw new AppError('upstream_unreachable', detail);
  }

  const results = outcomes(addresses, reply);
  const released = held.filter((_, i) => results[i]!.released);
  const status = released.length === held.length ? 'released' : released.length ? 'partial' : 'failed';
  const result: ReleaseResult = { id, status, results, via: reply.via };
  await deps.db.transaction().execute(async (trx) => {
    if (released.length) await setRecipientStatus(trx, deps, input.key, released.map((r) => r.rseqnum), 'R');
    if (listing) {
      for (const r of released) await writeEntry(trx, deps, who, listing.recipients.get(r.address)!, listing.sender, 'allow');
    }
    await unclaim(trx, deps, input.key, held.filter((_, i) => !results[i]!.released));
    await recordAudit(trx, deps.clock, who, {
      ...audit,
      result: status === 'released' ? 'ok' : status === 'partial' ? 'partial' : 'failed',
      detail: JSON.stringify(results),
    });
    await emitReleaseEvents(trx, deps, who, input.key, results, undefined, await subs);
    if (onRecorded) await onRecorded(trx, result);
  });
  return result;
}
