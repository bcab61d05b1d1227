/**
 * A release with a state database apart from amavisd's (src/quarantine/cross-writes.ts has the
 * design). The order, each step committed before the next:
 *  A. state: the attempt ('pending' audit row + qe_release_attempts row with the plan);
 *  B. amavisd: the claim (rs='p', compare-and-set, all or nothing);
 *  F. state: the fence, 'pending' → 'claimed'. The recovery pass voids a 'pending' attempt whose
 *     copies were never claimed; only one of the two succeeds, and only after this one is anything
 *     sent, so a voided attempt never reaches amavisd;
 *  send: AM.PDP;
 *  C. state: amavisd's answer as a cross-write intent, the attempt 'answered';
 *  D, E: settleRelease: rs in amavisd, then audit + events (+ the API's idempotent answer).
 * Killed after A: voided (audit 'failed', not sent). After B or F: the copies stay 'releasing' and
 * the attempt is announced as unknown, as with one database. After C or D: the recovery pass
 * settles it from the recorded answer, once.
 */
import { publicItemId, type MailKey } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { AnswerKey } from './release-answer.ts';
import type { ReleaseReply, ReleaseTransport } from '../release/transport.ts';
import { enabledSubscriptions, type Subscriptions } from '../webhooks/events.ts';
import { openAttempt } from './attempts.ts';
import { settleRelease, writeIntent, type Listing, type PlannedCopy, type ReleasePayload } from './cross-writes.ts';
import { outcomes, releaseFrom, unknownOutcome, type OnRecorded, type ReleaseResult, type SharedReads } from './release.ts';
import { claimForRelease, holdReleasing, unclaim, type ActionTarget } from './target.ts';

export interface ApartRelease {
  key: MailKey;
  target: ActionTarget;
  chosen: ActionTarget['recipients'];
  transport: ReleaseTransport;
  shared?: SharedReads;
  requestId?: string;
  /** allow_sender (src/quarantine/cross-writes.ts Listing) */
  listing?: Listing;
  answerKey?: AnswerKey;
}

export async function releaseApart(deps: Deps, who: Identity, r: ApartRelease, onRecorded?: OnRecorded): Promise<ReleaseResult> {
  const { key, chosen } = r;
  const step = deps.crossWriteStep;
  const addresses = chosen.map((c) => c.address);
  const fresh = chosen.filter((c) => c.status !== 'releasing');
  const copies: PlannedCopy[] = chosen.map((c) => ({ address: c.address, rseqnum: c.rseqnum, rs: c.rs, fresh: c.status !== 'releasing' }));
  let auditId = 0;
  const record = async () => {
    const opened = await deps.state.transaction().execute((trx) => openAttempt(trx, deps, who, key, addresses, JSON.stringify(copies)));
    step?.('release.intent');
    try {
      await deps.db.transaction().execute(async (trx) => {
        const forced = chosen.filter((c) => c.status === 'releasing');
        if (!(await holdReleasing(trx, deps, key, forced))) {
          throw new AppError(
            'nothing_to_release',
            'a copy taken over by force is no longer releasing (its earlier release was settled meanwhile)',
          );
        }
        const held = await claimForRelease(trx, deps, key, fresh);
        if (held.length !== fresh.length) throw new AppError('nothing_to_release', 'another release of this message is in progress');
      });
    } catch (err) {
      // Refused inside the transaction (another release holds a copy): rolled back, nothing claimed,
      // so the attempt never was. Any other failure (a connection lost at COMMIT) may have claimed:
      // the attempt stays 'pending' for the recovery pass, which voids it when nothing was claimed
      // and otherwise leaves it to be announced as unknown (cross-writes.ts settleCrossWrites).
      if (err instanceof AppError && err.code === 'nothing_to_release') await dropAttempt(deps, opened);
      throw err;
    }
    step?.('release.claimed');
    const fenced = await deps.state
      .updateTable('qe_release_attempts')
      .set({ state: 'claimed' })
      .where('audit_id', '=', opened)
      .where('state', '=', 'pending')
      .executeTakeFirst();
    if (Number(fenced.numUpdatedRows) !== 1) {
      await deps.db.transaction().execute((trx) => unclaim(trx, deps, key, fresh));
      throw new AppError('nothing_to_release', 'this release attempt was voided by the recovery pass before it was sent; try again');
    }
    step?.('release.fenced');
    auditId = opened;
  };
  const subs: Promise<Subscriptions | null> = (r.shared ? r.shared.subscriptions() : enabledSubscriptions(deps.state)).catch(() => null);
  // the id the caller sees (its answer, an unknown outcome's problem), with the gateway's prefix
  const id = publicItemId(deps.gateway, key);
  let reply: ReleaseReply;
  try {
    reply = await r.transport.release(
      {
        partitionTag: key.partitionTag,
        mailId: key.mailId,
        secretId: r.target.secretId,
        recipients: addresses,
        requestedBy: releaseFrom(deps.config, addresses),
        host: r.target.host,
      },
      record,
    );
  } catch (err) {
    if (auditId === 0) throw err;
    const known = err instanceof AppError && err.code !== 'release_outcome_unknown';
    if (!known) return unknownOutcome(deps, auditId, id, addresses, err);
    const notSent = err.code === 'amavisd_busy';
    const results = addresses.map((recipient) => ({ recipient, released: false, reply: null }));
    const payload: ReleasePayload = {
      who,
      copies,
      results,
      status: 'failed',
      via: '',
      error: err.message,
      notSent,
      ...(r.answerKey ? { answerKey: r.answerKey } : {}),
    };
    await answerAndSettle(deps, auditId, key, payload, { subs: await subs }).catch((e: Error) =>
      deps.log.error('release refused; its record is settled by the recovery pass', { id, audit_id: auditId, message: e.message }),
    );
    throw err;
  }
  if (auditId === 0) throw new Error(`release transport '${r.transport.kind}' sent without recording the attempt first`);
  const results = outcomes(addresses, reply);
  const releasedCount = results.filter((x) => x.released).length;
  const status = releasedCount === chosen.length ? 'released' : releasedCount ? 'partial' : 'failed';
  const payload: ReleasePayload = {
    who,
    copies,
    results,
    status,
    via: reply.via,
    ...(r.requestId ? { request: r.requestId } : {}),
    ...(r.answerKey ? { answerKey: r.answerKey } : {}),
    ...(r.listing ? { listing: r.listing } : {}),
  };
  let intentId: string;
  try {
    intentId = await deps.state.transaction().execute(async (trx) => {
      const written = await writeIntent(trx, deps, 'release', key, payload, auditId);
      await trx.updateTable('qe_release_attempts').set({ state: 'answered' }).where('audit_id', '=', auditId).execute();
      return written;
    });
  } catch (err) {
    return unknownOutcome(deps, auditId, id, addresses, err, results);
  }
  step?.('release.answered');
  try {
    const settled = await settleRelease(deps, { id: intentId }, { onRecorded, subs: await subs, step });
    // another settler (the recovery pass) recorded it first: the same answer
    return settled ?? { id, status, results, via: reply.via };
  } catch (err) {
    const cause = (err as Error).message;
    deps.log.error('release answered; recording it completes in the recovery pass', { id, audit_id: auditId, message: cause });
    throw new AppError(
      'release_outcome_unknown',
      `amavisd answered (${status}); recording it failed (${cause}) and is completed by the next recovery pass (README "State in its own database")`,
      { id, recipients: addresses, audit_id: auditId, results },
    );
  }
}

/** A refusal is an answer too: recorded as the intent, then settled (unclaim, 'failed', release_failed unless never sent). */
async function answerAndSettle(deps: Deps, auditId: number, key: MailKey, payload: ReleasePayload, opts: { subs: Subscriptions | null }) {
  const intentId = await deps.state.transaction().execute(async (trx) => {
    const written = await writeIntent(trx, deps, 'release', key, payload, auditId);
    await trx.updateTable('qe_release_attempts').set({ state: 'answered' }).where('audit_id', '=', auditId).execute();
    return written;
  });
  await settleRelease(deps, { id: intentId }, opts);
}

/** The claim failed: the attempt and its 'pending' audit row are removed (nothing was claimed or sent). */
async function dropAttempt(deps: Deps, auditId: number): Promise<void> {
  await deps.state
    .transaction()
    .execute(async (trx) => {
      const gone = await trx
        .deleteFrom('qe_release_attempts')
        .where('audit_id', '=', auditId)
        .where('state', '=', 'pending')
        .executeTakeFirst();
      if (Number(gone.numDeletedRows) === 1) await trx.deleteFrom('qe_audit').where('id', '=', auditId).execute();
    })
    .catch((e: Error) =>
      deps.log.warn('a release attempt that claimed nothing is left for the recovery pass', { audit_id: auditId, message: e.message }),
    );
}
