/**
 * Writes that span amavisd's database and a state database apart from it (STATE_DATABASE_URL;
 * README "State in its own database"). With one database, a change to msgrcpt, its audit row and
 * its outgoing event are one transaction (release.ts, delete.ts). Apart, they cannot be, so:
 *  1. intent: a qe_cross_writes row, committed in the state database, holding everything the
 *     settlement needs (who, which copies, their rs before, amavisd's answer for a release);
 *  2. amavisd's change, committed in amavisd's database; idempotent (compare-and-set on rs);
 *  3. settle: in one state transaction, the intent row deleted (exactly one settler wins: the
 *     deletion is the token), the audit row written or settled, the events in the outbox.
 * A process killed after 1 leaves the intent: the minute job (settleCrossWrites, run by the
 * webhook job before its delivery pass) redoes 2 (a no-op when it was done) and then 3, so no audit
 * row or event is lost, and none is written for a change that was not made: step 3 only ever
 * follows a committed step 2. A release's claim has its own intent and fence (releaseApart in
 * release.ts: the attempt row is 'pending' until the claim is made and fenced as 'claimed'; a
 * 'pending' one whose copies were never claimed is voided here, and nothing is sent for it).
 */
import { sql } from 'kysely';
import { bind } from '../amavis/schema.ts';
import { formatItemId, type MailKey } from '../amavis/mail-id.ts';
import { recordAudit } from '../audit/audit.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { emitMailEvent, emitReleaseEvents } from '../webhooks/mail-events.ts';
import { newId, type Subscriptions } from '../webhooks/events.ts';
import { closeResolvedAttempts, settleAttempt } from './attempts.ts';
import type { QeCrossWritesTable } from '../db/types.ts';
import { listIntent, settleSenderList, type SenderListPayload } from '../senders/lists-apart.ts';
import type { RecipientForm, SenderForm } from '../senders/forms.ts';
import type { ListName } from '../senders/lists.ts';
import { settlePolicy, type PolicyPayload } from '../policies/policies-apart.ts';
import { recordDeleted, removeContentIfDone, type DeleteResult } from './delete.ts';
import { decideRequest } from './release-requests.ts';
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
    await settleSenderList(deps, i).catch((e: Error) =>
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
  const id = newId('xw');
  await trx
    .insertInto('qe_cross_writes')
    .values({
      id,
      kind,
      audit_id: auditId,
      partition_tag: key.partitionTag,
      mail_id: key.mailId,
      payload: JSON.stringify(payload),
      created_at: seconds(deps),
    })
    .execute();
  return id;
}

/** a sender-list intent names no message */
const NO_MAIL: MailKey = { partitionTag: 0, mailId: '' };

const mailIdOf = (deps: Deps, key: MailKey) => bind(deps.variant, 'msgrcpt.mail_id', key.mailId);

/** The copies' rs now, by rseqnum. */
async function currentRs(db: Deps['db'], deps: Deps, key: MailKey, rseqnums: number[]): Promise<Map<number, string>> {
  if (rseqnums.length === 0) return new Map();
  const { rows } = await sql<{ rseqnum: number; rs: string }>`SELECT rseqnum, rs FROM msgrcpt
    WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)} AND rseqnum IN (${sql.join(rseqnums)})`.execute(db);
  return new Map(rows.map((r) => [Number(r.rseqnum), r.rs]));
}

/**
 * A release whose answer is recorded (the intent): step 2, released copies 'p' → 'R' and the rest
 * of its own claims back to their rs, then step 3. Returns the result, or null when another
 * settler recorded it first.
 */
export async function settleRelease(
  deps: Deps,
  intent: { id: string; audit_id: number | null; partition_tag: number; mail_id: string; payload: string },
  opts: { onRecorded?: OnRecorded; subs?: Subscriptions | null; step?: (s: CrossWriteStep) => void } = {},
): Promise<ReleaseResult | null> {
  const p = JSON.parse(intent.payload) as ReleasePayload;
  const key: MailKey = { partitionTag: Number(intent.partition_tag), mailId: intent.mail_id };
  const auditId = Number(intent.audit_id);
  const released = p.copies.filter((_, i) => p.results[i]?.released);
  const giveBack = p.copies.filter((c, i) => c.fresh !== false && !p.results[i]?.released);
  await deps.db.transaction().execute(async (trx) => {
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
  const result: ReleaseResult = { id: formatItemId(key), status: p.status, results: p.results, via: p.via };
  const forced = p.copies.some((c) => c.fresh === false);
  const lists = await listingIntents(
    deps,
    p.who,
    p.listing,
    released.map((c) => c.address),
    'allow',
  );
  const listIds: Array<{ id: string; payload: string }> = [];
  const settled = await deps.state.transaction().execute(async (trx) => {
    const token = await trx.deleteFrom('qe_cross_writes').where('id', '=', intent.id).executeTakeFirst();
    if (Number(token.numDeletedRows) !== 1) return false;
    for (const l of lists) listIds.push({ id: await writeIntent(trx, deps, 'sender_list', NO_MAIL, l), payload: JSON.stringify(l) });
    if (p.error !== undefined) {
      await settleAttempt(trx, auditId, 'failed', p.notSent ? `not sent: ${p.error}` : p.error);
      if (!p.notSent) await emitReleaseEvents(trx, deps, p.who, key, p.results, p.error, opts.subs);
      return true;
    }
    await settleAttempt(trx, auditId, p.status === 'released' ? 'ok' : p.status, JSON.stringify(p.results));
    if (forced) await closeResolvedAttempts(trx, deps, key);
    await emitReleaseEvents(trx, deps, p.who, key, p.results, undefined, opts.subs);
    if (opts.onRecorded) await opts.onRecorded(trx, result);
    else if (p.request && p.status === 'released') {
      // the recovery pass: the approval the stopped request would have recorded with the release
      const row = await trx.selectFrom('qe_release_requests').selectAll().where('id', '=', p.request).executeTakeFirst();
      if (row?.status === 'pending') await decideRequest(trx, deps, p.who, row, 'approved', null);
    }
    return true;
  });
  await settleListings(deps, listIds);
  return settled ? result : null;
}

/**
 * A delete's step 2 (copies → 'D' where they still have the rs read before; the stored text
 * removed when no copy is left pending) and step 3. Returns null when another settler recorded it.
 */
export async function settleDelete(
  deps: Deps,
  intent: { id: string; partition_tag: number; mail_id: string; payload: string },
  step?: (s: CrossWriteStep) => void,
): Promise<DeleteResult | null> {
  const p = JSON.parse(intent.payload) as DeletePayload;
  const key: MailKey = { partitionTag: Number(intent.partition_tag), mailId: intent.mail_id };
  const { deleted, contentRemoved } = await deps.db.transaction().execute(async (trx) => {
    for (const c of p.copies) {
      await sql`UPDATE msgrcpt SET rs = 'D' WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)}
        AND rseqnum = ${c.rseqnum} AND rs = ${c.rs}`.execute(trx);
    }
    // what is 'D' now: this change, whether made now or by the run that was stopped
    const now = await currentRs(
      trx,
      deps,
      key,
      p.copies.map((c) => c.rseqnum),
    );
    const removed = await removeContentIfDone(trx, deps, key);
    return { deleted: p.copies.filter((c) => now.get(c.rseqnum) === 'D').map((c) => c.address), contentRemoved: removed };
  });
  step?.('delete.amavisd');
  const lists = await listingIntents(deps, p.who, p.listing, deleted, 'block');
  const listIds: Array<{ id: string; payload: string }> = [];
  const settled = await deps.state.transaction().execute(async (trx) => {
    const token = await trx.deleteFrom('qe_cross_writes').where('id', '=', intent.id).executeTakeFirst();
    if (Number(token.numDeletedRows) !== 1) return false;
    for (const l of lists) listIds.push({ id: await writeIntent(trx, deps, 'sender_list', NO_MAIL, l), payload: JSON.stringify(l) });
    // a copy whose release outcome was unknown, deleted by name, closes that attempt
    if (p.copies.some((c) => c.rs === 'p')) await closeResolvedAttempts(trx, deps, key);
    await recordDeleted(trx, deps, p.who, key, deleted, contentRemoved);
    return true;
  });
  await settleListings(deps, listIds);
  return settled ? { id: formatItemId(key), deleted, content_removed: contentRemoved } : null;
}

/**
 * An admin's mark-released (src/quarantine/resolve.ts): step 2 turns the copies from 'p' to 'R',
 * all or none (copies already 'R' count as done: the stopped run's own change); step 3 records it.
 * Returns 'conflict' when the copies are neither (changed meanwhile: nothing is marked or
 * recorded, and the intent goes), null when another settler recorded it first.
 */
export async function settleMark(
  deps: Deps,
  intent: { id: string; partition_tag: number; mail_id: string; payload: string },
  step?: (s: CrossWriteStep) => void,
): Promise<'conflict' | { marked: string[] } | null> {
  const p = JSON.parse(intent.payload) as MarkPayload;
  const key: MailKey = { partitionTag: Number(intent.partition_tag), mailId: intent.mail_id };
  const rseqnums = p.copies.map((c) => c.rseqnum);
  const applied = await deps.db.transaction().execute(async (trx) => {
    const { rows } = await sql<{ rseqnum: number; rs: string }>`SELECT rseqnum, rs FROM msgrcpt
      WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)} AND rseqnum IN (${sql.join(rseqnums)})
      FOR UPDATE`.execute(trx);
    if (rows.length !== rseqnums.length || rows.some((r) => r.rs !== 'p' && r.rs !== 'R')) return false;
    await sql`UPDATE msgrcpt SET rs = 'R' WHERE partition_tag = ${key.partitionTag} AND mail_id = ${mailIdOf(deps, key)}
      AND rseqnum IN (${sql.join(rseqnums)}) AND rs = 'p'`.execute(trx);
    return true;
  });
  if (!applied) {
    await deps.state.deleteFrom('qe_cross_writes').where('id', '=', intent.id).execute();
    return 'conflict';
  }
  step?.('mark.amavisd');
  const addresses = p.copies.map((c) => c.address);
  const settled = await deps.state.transaction().execute(async (trx) => {
    const token = await trx.deleteFrom('qe_cross_writes').where('id', '=', intent.id).executeTakeFirst();
    if (Number(token.numDeletedRows) !== 1) return false;
    await closeResolvedAttempts(trx, deps, key);
    await recordAudit(trx, deps.clock, p.who, {
      action: 'mark_released',
      partitionTag: key.partitionTag,
      mailId: key.mailId,
      recipients: addresses,
      result: 'ok',
      detail: JSON.stringify({ note: p.note, delivered_by_this_action: false }),
    });
    await emitMailEvent(
      trx,
      deps,
      p.who,
      'quarantine.released',
      key,
      addresses.map((address) => ({ address, released: true, reply: null })),
      { marked: true },
    );
    return true;
  });
  return settled ? { marked: addresses } : null;
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
 * claimed is voided (nothing was sent: a live request sends only after fencing it as 'claimed').
 * Only with a state database apart; with one database there is nothing to recover.
 */
export async function settleCrossWrites(deps: Deps, opts: { graceSeconds?: number; limit?: number } = {}): Promise<CrossWriteReport> {
  const report: CrossWriteReport = { settled: 0, voided: 0, failed: 0 };
  if (!deps.stateApart) return report;
  const now = seconds(deps);
  const due = await deps.state
    .selectFrom('qe_cross_writes')
    .selectAll()
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
    .select(['audit_id', 'partition_tag', 'mail_id', 'plan'])
    .where('state', '=', 'pending')
    .where('started_at', '<=', cutoff)
    .orderBy('started_at')
    .limit(opts.limit ?? 100)
    .execute();
  for (const a of stale) {
    if (a.plan === null) continue; // recorded with one database (never apart): the announcement's
    const key: MailKey = { partitionTag: Number(a.partition_tag), mailId: a.mail_id };
    const copies = JSON.parse(a.plan) as PlannedCopy[];
    const rs = await currentRs(
      deps.db,
      deps,
      key,
      copies.map((c) => c.rseqnum),
    );
    // claimed but not fenced (the process stopped between the two): left to the admin, as unknown
    if (copies.some((c) => c.fresh !== false && rs.get(c.rseqnum) === 'p')) continue;
    await deps.state.transaction().execute(async (trx) => {
      const token = await trx
        .deleteFrom('qe_release_attempts')
        .where('audit_id', '=', a.audit_id)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      if (Number(token.numDeletedRows) !== 1) return; // fenced by the live request meanwhile
      await trx
        .updateTable('qe_audit')
        .set({ result: 'failed', detail: 'not sent: the process stopped before it claimed the copies' })
        .where('id', '=', a.audit_id)
        .execute();
      report.voided++;
    });
  }
  return report;
}
