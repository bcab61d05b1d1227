/**
 * Writes that span amavisd's database and a state database apart from it (STATE_DATABASE_URL;
 * README "State in its own database"). With one database, a change to msgrcpt, its audit row and
 * its outgoing event are one transaction (release.ts, delete.ts). Apart, they cannot be, so:
 *  1. intent: a qe_cross_writes row, committed in the state database, holding everything the
 *     settlement needs (who, which copies, their rs before, amavisd's answer for a release);
 *  2. amavisd's change, committed in amavisd's database; idempotent (compare-and-set on rs);
 *  3. settle: in one state transaction, the intent row deleted, the audit row written or settled,
 *     the events in the outbox.
 * Steps 2 and 3 run holding the intent's row lock in that state transaction (intent-order.ts): a
 * settler that finds the intent gone redoes nothing, and step 2 is skipped for a target a newer
 * change names, so an old intent is never redone over a newer change (not even A->B->A).
 * A process killed after 1 leaves the intent: the minute job (settleCrossWrites, run by the
 * webhook job before its delivery pass) redoes 2 (a no-op when it was done) and then 3, so no audit
 * row or event is lost, and none is written for a change that was not made: step 3 only ever
 * follows a committed step 2. A release's claim has its own intent and fence (releaseApart in
 * release.ts: the attempt row is 'pending' until the claim is made and fenced as 'claimed'; a
 * 'pending' one whose copies were never claimed is voided here, and nothing is sent for it).
 */
import { sql } from 'kysely';
import { bind } from '../amavis/schema.ts';
import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { emitMailEvent, emitReleaseEvents } from '../webhooks/mail-events.ts';
import { newId, type Subscriptions } from '../webhooks/events.ts';
import { closeResolvedAttempts, settleAttempt, voidUnclaimed } from './attempts.ts';
import type { QeCrossWritesTable, QeReleaseRequestsTable } from '../db/types.ts';
import { listIntent, settleSenderList, type SenderListPayload } from '../senders/lists-apart.ts';
import type { RecipientForm, SenderForm } from '../senders/forms.ts';
import type { ListName } from '../senders/lists.ts';
import { settlePolicy, type PolicyPayload } from '../policies/policies-apart.ts';
import { recordDeleted, removeContentIfDone, type DeleteResult } from './delete.ts';
import { decideRequest, notifyApproved } from './release-requests.ts';
import { releaseHttpAnswer, type AnswerKey } from './release-answer.ts';
import { forgetPending, rememberAnswer } from '../api/idempotency.ts';
import { highestAuditId, newerOnCopies, withIntent } from './intent-order.ts';
import type { OnRecorded, RecipientOutcome, ReleaseResult } from './release.ts';

/** A copy a cross-write changes: its rs before (a compare-and-set, and what a failed release gives back). */
export interface PlannedCopy {
  address: string;
  rseqnum: number;
  rs: string;
  /** a release: claimed by this attempt (false: taken over by force, already 'p') */
  fresh?: boolean;
}

export interface ReleasePayload {
  who: Identity;
  copies: PlannedCopy[];
  results: RecipientOutcome[];
  status: ReleaseResult['status'];
  via: string;
  /** a known failure (amavisd refused, or never reached: notSent) */
  error?: string;
  notSent?: boolean;
  /** the release request it approves (src/quarantine/release-requests.ts): approved with it when released */
  request?: string;
  /** the API request's Idempotency-Key: settled by the recovery pass, its answer is stored under it */
  answerKey?: AnswerKey;
  /** allow_sender: the sender and each recipient's form; the released ones get an allow entry */
  listing?: Listing;
}

/** allow_sender / block_sender: entries written as sender-list cross-writes of their own, their intents in the settlement's transaction. */
export interface Listing {
  sender: SenderForm;
  recipients: Record<string, RecipientForm>;
}

/** The sender-list intents for these recipients (read before the settlement), then written in it, then settled after it. */
async function listingIntents(deps: Deps, who: Identity, listing: Listing | undefined, addresses: string[], to: ListName) {
  const out: SenderListPayload[] = [];
  if (!listing) return out;
  for (const a of addresses) {
    const r = listing.recipients[a];
    if (!r) continue;
    const p = await listIntent(deps, who, r, listing.sender, to);
    if (p) out.push(p);
  }
  return out;
}

async function settleListings(deps: Deps, ids: Array<{ id: string; payload: string }>) {
  for (const i of ids) {
    // left to the recovery pass when this fails: its intent is committed
    await settleSenderList(deps, i, { live: true }).catch((e: Error) =>
      deps.log.warn('sender-list entry left to the recovery pass', { message: e.message }),
    );
  }
}

export interface DeletePayload {
  who: Identity;
  copies: PlannedCopy[];
  /** block_sender */
  listing?: Listing;
}

export interface MarkPayload {
  who: Identity;
  copies: PlannedCopy[];
  note: string | null;
}

/** Steps a test can stop the process at (test/integration/state-apart-kill.test.ts); nothing else observes them. */
export type CrossWriteStep =
  | 'release.intent'
  | 'release.claimed'
  | 'release.fenced'
  | 'release.answered'
  | 'release.amavisd'
  | 'delete.intent'
  | 'delete.amavisd'
  | 'mark.intent'
  | 'mark.amavisd';

export const seconds = (deps: Pick<Deps, 'clock'>) => Math.floor(deps.clock.now() / 1000);

/** Step 1: the intent, committed in the state database (or in `trx`, the state transaction that records the answer). */
export async function writeIntent(
  trx: Deps['state'],
  deps: Deps,
  kind: QeCrossWritesTable['kind'],
  key: MailKey,
  payload: ReleasePayload | DeletePayload | MarkPayload | SenderListPayload | PolicyPayload,
  auditId: number | null = null,
): Promise<string> {
  // ordered by when it was written, to the millisecond (intent-order.ts orders open intents by it)
  const id = `xw_${deps.clock.now().toString(36).padStart(9, '0')}${newId('').slice(1)}`;
  await trx
    .insertInto('qe_cross_writes')
    .values({
      id,
      kind,
      audit_id: auditId,
      partition_tag: key.partitionTag,
      mail_id: key.mailId,
      // what it had seen: a newer change is one audited after it (intent-order.ts)
      payload: JSON.stringify({ ...payload, seen: await highestAuditId(trx) }),
      created_at: seconds(deps),
      gateway_id: deps.gateway,
    })
    .execute();
  return id;
}

/** a sender-list intent names no message */
const NO_MAIL: MailKey = { partitionTag: 0, mailId: '' };

const mailIdOf = (deps: Deps, key: MailKey) => bind(deps.variant, 'msgrcpt.mail_id', key.mailId);

/**
 * A release whose answer is recorded (the intent): step 2, released copies 'p' → 'R' and the rest
 * of its own claims back to their rs, then step 3. Returns the result, or null when another
 * settler recorded it first. The answer is recorded even when a newer change holds some copies
 * (intent-order.ts): amavisd has answered, so its delivery is audited and announced; only those
 * copies' rs is left to the newer change.
 */
export async function settleRelease(
  deps: Deps,
  intent: { id: string },
  opts: { onRecorded?: OnRecorded; subs?: Subscriptions | null; step?: (s: CrossWriteStep) => void } = {},
): Promise<ReleaseResult | null> {
  const listIds: Array<{ id: string; payload: string }> = [];
  let approved: QeReleaseRequestsTable | undefined;
  const settled = await withIntent(deps, intent.id, async (st, locked) => {
    const p = JSON.parse(locked.payload) as ReleasePayload;
    const key: MailKey = { partitionTag: Number(locked.partition_tag), mailId: locked.mail_id };
    const auditId = Number(locked.audit_id);
    await deps.db.transaction().execute(async (trx) => {
      await lockCopies(trx, deps, key, p.copies);
      const newer = await newerOnCopies(st, locked, key);
      const released = p.copies.filter((c, i) => p.results[i]?.released && !newer.has(c.address));
      const giveBack = p.copies.filter((c, i) => c.fresh !== false && !p.results[i]?.released && !newer.has(c.address));
      if (released.length) {
        await sql`UPDATE msgrcpt SET rs = 'R' WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)}
          AND rseqnum IN (${sql.join(released.map((c) => c.rseqnum))}) AND rs = 'p'`.execute(trx);
      }
      for (const c of giveBack) {
        await sql`UPDATE msgrcpt SET rs = ${c.rs} WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)}
          AND rseqnum = ${c.rseqnum} AND rs = 'p'`.execute(trx);
      }
    });
    opts.step?.('release.amavisd');
    const result: ReleaseResult = { id: publicItemId(deps.gateway, key), status: p.status, results: p.results, via: p.via };
    const forced = p.copies.some((c) => c.fresh === false);
    const lists = await listingIntents(
      deps,
      p.who,
      p.listing,
      p.copies.filter((_, i) => p.results[i]?.released).map((c) => c.address),
      'allow',
    );
    for (const l of lists) listIds.push({ id: await writeIntent(st, deps, 'sender_list', NO_MAIL, l), payload: JSON.stringify(l) });
    if (p.error !== undefined) {
      await settleAttempt(st, auditId, 'failed', p.notSent ? `not sent: ${p.error}` : p.error);
      if (!p.notSent) await emitReleaseEvents(st, deps, p.who, key, p.results, p.error, opts.subs);
      // the live request answers with the error and frees its key; so does the recovery pass
      if (p.answerKey) await forgetPending(st, p.answerKey.keyHash);
      return result;
    }
    await settleAttempt(st, auditId, p.status === 'released' ? 'ok' : p.status, JSON.stringify(p.results));
    if (forced) await closeResolvedAttempts(st, deps, key);
    await emitReleaseEvents(st, deps, p.who, key, p.results, undefined, opts.subs);
    if (opts.onRecorded) await opts.onRecorded(st, result);
    else {
      // the recovery pass: what the stopped request would have recorded with the release
      if (p.answerKey) await rememberAnswer(st, p.answerKey.keyHash, releaseHttpAnswer(result, p.answerKey.requestId));
      if (p.request && p.status === 'released') {
        const row = await st.selectFrom('qe_release_requests').selectAll().where('id', '=', p.request).executeTakeFirst();
        if (row?.status === 'pending') {
          await decideRequest(st, deps, p.who, row, 'approved', null);
          approved = row;
        }
      }
    }
    return result;
  });
  await settleListings(deps, listIds);
  // the owner's email, after the commit, as the live approval sends it (approveReleaseRequest)
  if (approved) await (await notifyApproved(deps, approved)).delivery;
  return settled;
}

/** amavisd's rows of these copies, locked until its transaction ends (intent-order.ts). */
async function lockCopies(trx: Deps['db'], deps: Deps, key: MailKey, copies: PlannedCopy[]): Promise<Map<number, string>> {
  if (copies.length === 0) return new Map();
  const { rows } = await sql<{ rseqnum: number; rs: string }>`SELECT rseqnum, rs FROM msgrcpt
    WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)}
      AND rseqnum IN (${sql.join(copies.map((c) => c.rseqnum))}) FOR UPDATE`.execute(trx);
  return new Map(rows.map((r) => [Number(r.rseqnum), r.rs]));
}

/**
 * A delete's step 2 (copies → 'D' where they still have the rs read before; the stored text
 * removed when no copy is left pending) and step 3. Returns null when another settler recorded it.
 * Recorded as deleted: only the copies this delete made 'D'. Run live (`live`: the intent was just
 * written, no run before made any change) that is what its compare-and-set changed; in the
 * recovery pass also a copy already 'D' that no newer change names (the stopped run's change).
 * When none is left the intent goes with no audit row or event: nothing was deleted by it, and a
 * 'failed' row would claim an attempt nobody is waiting for.
 */
export async function settleDelete(
  deps: Deps,
  intent: { id: string },
  opts: { step?: (s: CrossWriteStep) => void; live?: boolean } = {},
): Promise<DeleteResult | null> {
  const listIds: Array<{ id: string; payload: string }> = [];
  const out = await withIntent(deps, intent.id, async (st, locked) => {
    const p = JSON.parse(locked.payload) as DeletePayload;
    const key: MailKey = { partitionTag: Number(locked.partition_tag), mailId: locked.mail_id };
    const { deleted, contentRemoved } = await deps.db.transaction().execute(async (trx) => {
      const before = await lockCopies(trx, deps, key, p.copies);
      const newer = await newerOnCopies(st, locked, key);
      const mine: string[] = [];
      for (const c of p.copies) {
        if (newer.has(c.address)) continue;
        const res = await sql`UPDATE msgrcpt SET rs = 'D' WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)}
          AND rseqnum = ${c.rseqnum} AND rs = ${c.rs}`.execute(trx);
        const made = Number(res.numAffectedRows ?? 0) === 1;
        if (made || (!opts.live && before.get(c.rseqnum) === 'D')) mine.push(c.address);
      }
      const removed = await removeContentIfDone(trx, deps, key);
      return { deleted: mine, contentRemoved: removed };
    });
    opts.step?.('delete.amavisd');
    const result: DeleteResult = { id: publicItemId(deps.gateway, key), deleted, content_removed: contentRemoved };
    if (deleted.length === 0) return result;
    const lists = await listingIntents(deps, p.who, p.listing, deleted, 'block');
    for (const l of lists) listIds.push({ id: await writeIntent(st, deps, 'sender_list', NO_MAIL, l), payload: JSON.stringify(l) });
    // a copy whose release outcome was unknown, deleted by name, closes that attempt
    if (p.copies.some((c) => c.rs === 'p')) await closeResolvedAttempts(st, deps, key);
    await recordDeleted(st, deps, p.who, key, deleted, contentRemoved);
    return result;
  });
  await settleListings(deps, listIds);
  return out;
}

/**
 * An admin's mark-released (src/quarantine/resolve.ts): step 2 turns the copies from 'p' to 'R',
 * all or none (copies already 'R' count as done: the stopped run's own change); step 3 records it.
 * Returns 'conflict' when the copies are neither, or a newer change names one (changed meanwhile:
 * nothing is marked or recorded, and the intent goes), null when another settler recorded it first.
 */
export async function settleMark(
  deps: Deps,
  intent: { id: string },
  step?: (s: CrossWriteStep) => void,
): Promise<'conflict' | { marked: string[] } | null> {
  return withIntent(deps, intent.id, async (st, locked) => {
    const p = JSON.parse(locked.payload) as MarkPayload;
    const key: MailKey = { partitionTag: Number(locked.partition_tag), mailId: locked.mail_id };
    const rseqnums = p.copies.map((c) => c.rseqnum);
    const applied = await deps.db.transaction().execute(async (trx) => {
      const now = await lockCopies(trx, deps, key, p.copies);
      if (now.size !== rseqnums.length || [...now.values()].some((rs) => rs !== 'p' && rs !== 'R')) return false;
      const newer = await newerOnCopies(st, locked, key);
      if (p.copies.some((c) => newer.has(c.address))) return false;
      await sql`UPDATE msgrcpt SET rs = 'R' WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)}
        AND rseqnum IN (${sql.join(rseqnums)}) AND rs = 'p'`.execute(trx);
      return true;
    });
    if (!applied) return 'conflict' as const;
    step?.('mark.amavisd');
    const addresses = p.copies.map((c) => c.address);
    await closeResolvedAttempts(st, deps, key);
    await recordAudit(st, deps.clock, p.who, {
      action: 'mark_released',
      partitionTag: key.partitionTag,
      mailId: key.mailId,
      recipients: addresses,
      result: 'ok',
      detail: JSON.stringify({ note: p.note, delivered_by_this_action: false }),
    });
    await emitMailEvent(
      st,
      deps,
      p.who,
      'quarantine.released',
      key,
      addresses.map((address) => ({ address, released: true, reply: null })),
      { marked: true },
    );
    return { marked: addresses };
  });
}

export interface CrossWriteReport {
  settled: number;
  voided: number;
  failed: number;
}

/**
 * The recovery pass (minute job): every intent older than `graceSeconds` (a live request settles
 * its own within a second or two; settling it twice is harmless, the token decides) is settled;
 * every release attempt still 'pending' after RELEASE_UNKNOWN_AFTER_MINUTES whose copies were never
 * claimed is voided (nothing was sent: a live request sends only after fencing it as 'claimed'),
 * unless it was announced already (attempts.ts voidUnclaimed: one decision, whichever runs first).
 * Only with a state database apart; with one database there is nothing to recover.
 */
export async function settleCrossWrites(deps: Deps, opts: { graceSeconds?: number; limit?: number } = {}): Promise<CrossWriteReport> {
  const report: CrossWriteReport = { settled: 0, voided: 0, failed: 0 };
  if (!deps.stateApart) return report;
  const now = seconds(deps);
  const due = await deps.state
    .selectFrom('qe_cross_writes')
    .selectAll()
    // each gateway's intents by a pass with that gateway's Deps: step 2 is redone in its database
    .where('gateway_id', '=', deps.gateway)
    .where('created_at', '<=', now - (opts.graceSeconds ?? 60))
    .orderBy('created_at')
    .limit(opts.limit ?? 100)
    .execute();
  for (const intent of due) {
    try {
      const done =
        intent.kind === 'release'
          ? await settleRelease(deps, intent)
          : intent.kind === 'delete'
            ? await settleDelete(deps, intent)
            : intent.kind === 'mark_released'
              ? await settleMark(deps, intent)
              : intent.kind === 'sender_list'
                ? await settleSenderList(deps, intent)
                : await settlePolicy(deps, intent);
      if (done === true || (typeof done === 'object' && done !== null)) report.settled++;
    } catch (err) {
      report.failed++;
      deps.log.warn('cross-database write not settled yet', { id: intent.id, kind: intent.kind, message: (err as Error).message });
    }
  }
  const cutoff = now - deps.config.RELEASE_UNKNOWN_AFTER_MINUTES * 60;
  const stale = await deps.state
    .selectFrom('qe_release_attempts')
    .select(['audit_id', 'partition_tag', 'mail_id', 'plan', 'state'])
    .where('state', '=', 'pending')
    .where('notified_at', 'is', null)
    .where('gateway_id', '=', deps.gateway)
    .where('started_at', '<=', cutoff)
    .orderBy('started_at')
    .limit(opts.limit ?? 100)
    .execute();
  for (const a of stale) if (await voidUnclaimed(deps, a)) report.voided++;
  return report;
}
