import { parseFromValue } from '../mail/from-address.ts';
import type { AnswerKey } from './release-answer.ts';
import type { MailKey } from '../amavis/mail-id.ts';
import { publicItemId } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { ReleaseReply } from '../release/transport.ts';
import { writeEntry } from '../senders/lists.ts';
import { emitReleaseEvents } from '../webhooks/mail-events.ts';
import { enabledSubscriptions, type Subscriptions } from '../webhooks/events.ts';
import { assertMayRelease, type Rules } from './release-policy.ts';
import { releaseApart } from './release-apart.ts';
import { closeResolvedAttempts, markAttemptUnknown, openAttempt, settleAttempt } from './attempts.ts';
import { chooseRecipients, claimForRelease, loadTarget, senderListing, setRecipientStatus, unclaim, type ActionTarget } from './target.ts';

export interface ReleaseInput {
  key: MailKey;
  recipients?: string[];
  allowSender?: boolean;
  /**
   * Admins only, with explicit recipients: release copies stuck in 'releasing' (an attempt whose
   * outcome is unknown: amavisd's reply was cut or timed out, or the process died). Their earlier
   * release may have delivered, so this may deliver a second time: the admin decides.
   */
  force?: boolean;
  /** admins and domain admins: they mean to release virus or banned mail (src/quarantine/release-policy.ts) */
  confirmDangerous?: boolean;
  /** the message as loadTarget just read it for this caller and key (a filtered bulk); unset: read here */
  target?: ActionTarget;
  /** a bulk's shared readers of what is the same for all its ids (read at most once a second); unset: read here */
  shared?: SharedReads;
  /** the release request this release approves (with a state database apart, the recovery pass records the approval too) */
  requestId?: string;
  /** the API request's Idempotency-Key: with a state database apart, the recovery pass stores the answer under it too */
  answerKey?: AnswerKey;
}

/** What a release reads that does not depend on the message: the webhook subscriptions, a user's release policy. */
export interface SharedReads {
  subscriptions(): Promise<Subscriptions>;
  ownerRules?(): Promise<Rules>;
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
 * amavisd's requested_by, which becomes the Resent-From of the released copy: what the recipient
 * sees must be an address of the gateway, never our actor name ("key:...", "link:..."): the actor
 * stays in our audit. RELEASE_FROM, else the address in DIGEST_FROM, else postmaster@ the domain of
 * the (first) recipient.
 */
export function releaseFrom(config: Deps['config'], recipients: string[]): string {
  if (config.RELEASE_FROM) return config.RELEASE_FROM;
  const digest = config.DIGEST_FROM ? parseFromValue(config.DIGEST_FROM).address : '';
  if (/^[^\s<>@"]+@[^\s<>@"]+$/.test(digest)) return digest;
  const first = recipients[0] ?? '';
  return `postmaster@${first.slice(first.lastIndexOf('@') + 1)}`;
}

const UNSETTLED = 'a release is in progress or its outcome is unknown (an admin resolves it: mark-released, or release with force)';

/** What one release will do, checked before anything is claimed or sent. */
export interface ReleasePlan {
  id: string;
  transport: NonNullable<Deps['release']>;
  /** the recipients released to, in the order asked for */
  chosen: ActionTarget['recipients'];
  /** those of `chosen` that are claimed now (not already 'releasing', taken over by force) */
  fresh: ActionTarget['recipients'];
  addresses: string[];
  listing: ReturnType<typeof senderListing> | null;
}

/**
 * No release path here: for the deployment's own database, the settings to set; for a registered
 * gateway, that gateway (its AM.PDP address is out of this runtime's reach: a Worker needs a relay).
 */
export function releaseNotConfigured(deps: Pick<Deps, 'gateway'>): AppError {
  if (deps.gateway) {
    return new AppError(
      'release_not_configured',
      `gateway ${deps.gateway}: its release path cannot be reached from here (an AM.PDP address needs Node beside amavisd; elsewhere give it a relay: PATCH /v1/gateways/${deps.gateway} release.relay_url)`,
    );
  }
  return new AppError(
    'release_not_configured',
    'set AMAVISD_PDP=127.0.0.1:9998 (Node beside amavisd) or RELAY_URL and RELAY_SECRET (through the relay)',
  );
}

/**
 * Every check of a release on the message as read (the release policy, the transport, the
 * recipients and their states, the sender listing): an AppError, or the plan. Reads nothing but
 * the caller's release rules (a user's).
 */
export async function planRelease(deps: Deps, who: Identity, input: ReleaseInput, target: ActionTarget): Promise<ReleasePlan> {
  // the release policy, before anything is claimed or sent: every way in (API, bulk, pages, links)
  // comes here; who may not release is told so whatever the server's configuration
  await assertMayRelease(
    deps,
    who,
    publicItemId(deps.gateway, input.key),
    target.contentCode,
    input.confirmDangerous,
    input.shared?.ownerRules,
  );
  const transport = deps.release;
  if (!transport) throw releaseNotConfigured(deps);
  const chosen = chooseRecipients(target, input.recipients);
  if (input.force && (who.role !== 'admin' || !input.recipients?.length)) {
    throw new AppError('invalid_field', 'force: only for admins, with explicit recipients', { field: 'force' });
  }
  const blocked = chosen.find((r) => r.status === 'deleted' || (r.status === 'releasing' && !input.force));
  if (blocked) {
    const why = blocked.status === 'deleted' ? 'this copy was deleted' : UNSETTLED;
    throw new AppError('nothing_to_release', `${blocked.address}: ${why}`, { field: 'recipients' });
  }
  if (chosen.length === 0) {
    const stuck = target.recipients.filter((r) => r.status === 'releasing').map((r) => r.address);
    throw new AppError(
      'nothing_to_release',
      stuck.length
        ? `nothing pending in your scope; ${stuck.join(', ')}: ${UNSETTLED}`
        : 'every recipient in your scope was already released or deleted',
    );
  }
  const listing = input.allowSender ? senderListing(deps.variant, target, chosen, 'allow_sender') : null;
  // Copies taken over by force are already 'p': they are not claimed again, and whatever this
  // attempt's fate, they never go back to pending (their earlier attempt's outcome is still unknown).
  const fresh = chosen.filter((r) => r.status !== 'releasing');
  return { id: publicItemId(deps.gateway, input.key), transport, chosen, fresh, addresses: chosen.map((r) => r.address), listing };
}

/**
 * Release a quarantined message through amavisd. Before anything is sent, the recipients are
 * claimed (rs='p', so a concurrent release cannot deliver them a second time) in one transaction
 * with the attempt's 'pending' audit row (src/quarantine/attempts.ts). Only after amavisd has
 * answered do they become rs='R' (or get their status back), in one transaction with the settled
 * audit row and the events. When amavisd's answer cannot be known, they stay 'releasing'.
 */
export async function releaseMessage(deps: Deps, who: Identity, input: ReleaseInput, onRecorded?: OnRecorded): Promise<ReleaseResult> {
  const target = input.target ?? (await loadTarget(deps, who, input.key));
  const { transport, chosen, fresh, addresses, listing, id } = await planRelease(deps, who, input, target);
  if (deps.stateApart) {
    // allow_sender: the released recipients' entries are sender-list cross-writes of their own, their intents in the release's settlement
    return releaseApart(
      deps,
      who,
      {
        key: input.key,
        target,
        chosen,
        transport,
        shared: input.shared,
        requestId: input.requestId,
        answerKey: input.answerKey,
        ...(listing ? { listing: { sender: listing.sender, recipients: Object.fromEntries(listing.recipients) } } : {}),
      },
      onRecorded,
    );
  }
  let auditId = 0;
  const record = async () => {
    // All or nothing: the request that goes out names exactly the claimed recipients.
    const opened = await deps.db.transaction().execute(async (trx) => {
      const held = await claimForRelease(trx, deps, input.key, fresh);
      if (held.length !== fresh.length) throw new AppError('nothing_to_release', 'another release of this message is in progress');
      return openAttempt(trx, deps, who, input.key, addresses);
    });
    auditId = opened;
  };
  // The webhook subscriptions are read while amavisd delivers (a round trip hidden behind the
  // AM.PDP exchange instead of one more inside the transaction below); null: read them there.
  const subs = (input.shared ? input.shared.subscriptions() : enabledSubscriptions(deps.state)).catch(() => null);
  let reply: ReleaseReply;
  try {
    reply = await transport.release(
      {
        partitionTag: input.key.partitionTag,
        mailId: input.key.mailId,
        secretId: target.secretId,
        recipients: addresses,
        requestedBy: releaseFrom(deps.config, addresses),
        host: target.host,
      },
      record,
    );
  } catch (err) {
    if (auditId === 0) throw err; // nothing claimed, nothing sent (busy, invalid, or the claim failed)
    return sendFailed(deps, who, input.key, { id, fresh, addresses }, auditId, err, subs);
  }

  // Every transport runs `record` before sending; one that did not would have released unclaimed.
  if (auditId === 0) throw new Error(`release transport '${transport.kind}' sent without recording the attempt first`);
  const results = outcomes(addresses, reply);
  const released = chosen.filter((_, i) => results[i]!.released);
  const status = released.length === chosen.length ? 'released' : released.length ? 'partial' : 'failed';
  const result: ReleaseResult = { id, status, results, via: reply.via };
  try {
    await deps.db.transaction().execute(async (trx) => {
      if (released.length)
        await setRecipientStatus(
          trx,
          deps,
          input.key,
          released.map((r) => r.rseqnum),
          'R',
        );
      if (listing) {
        for (const r of released) await writeEntry(trx, deps, who, listing.recipients.get(r.address)!, listing.sender, 'allow');
      }
      await unclaim(
        trx,
        deps,
        input.key,
        fresh.filter((r) => !results[chosen.indexOf(r)]!.released),
      );
      await settleAttempt(trx, auditId, status === 'released' ? 'ok' : status, JSON.stringify(results));
      // a forced release settles the earlier, unknown attempts of the copies it took over
      if (fresh.length !== chosen.length) await closeResolvedAttempts(trx, deps, input.key);
      await emitReleaseEvents(trx, deps, who, input.key, results, undefined, await subs);
      if (onRecorded) await onRecorded(trx, result);
    });
  } catch (err) {
    // amavisd answered, but its answer could not be recorded: the copies stay 'releasing', the
    // 'pending' audit row (and, if the database still takes it, its 'unknown' with the reply) remains.
    return unknownOutcome(deps, auditId, id, addresses, err, results);
  }
  return result;
}

/**
 * The exchange failed after the attempt was recorded. An unknown outcome stays 'releasing'
 * (unknownOutcome). A known one (amavisd refused, or amavisd_busy: the relay's AM.PDP slots were
 * full and the request never reached amavisd) gives the copies back, settles the attempt
 * 'failed' and, unless nothing was sent, announces the refusal: in one transaction. Always throws.
 */
export async function sendFailed(
  deps: Deps,
  who: Identity,
  key: MailKey,
  plan: Pick<ReleasePlan, 'id' | 'fresh' | 'addresses'>,
  auditId: number,
  err: unknown,
  subs: Promise<Subscriptions | null>,
): Promise<never> {
  const { id, fresh, addresses } = plan;
  const known = err instanceof AppError && err.code !== 'release_outcome_unknown';
  if (!known) return unknownOutcome(deps, auditId, id, addresses, err);
  const detail = err.message;
  // nothing reached amavisd: busy, or no release path for the message's host (RELEASE_ROUTES)
  const notSent = err.code === 'amavisd_busy' || err.code === 'release_not_configured';
  await deps.db.transaction().execute(async (trx) => {
    await unclaim(trx, deps, key, fresh);
    await settleAttempt(trx, auditId, 'failed', notSent ? `not sent: ${detail}` : detail);
    if (notSent) return;
    await emitReleaseEvents(
      trx,
      deps,
      who,
      key,
      addresses.map((recipient) => ({ recipient, released: false, reply: null })),
      detail,
      await subs,
    );
  });
  throw err;
}

export async function unknownOutcome(
  deps: Deps,
  auditId: number,
  id: string,
  recipients: string[],
  err: unknown,
  results?: RecipientOutcome[],
): Promise<never> {
  const cause = err instanceof AppError ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
  const detail = results
    ? `amavisd answered, but recording its answer failed (${cause}); the copies stay 'releasing'`
    : `${cause}; the copies stay 'releasing'`;
  deps.log.error('release outcome unknown', { id, audit_id: auditId, recipients, detail });
  await markAttemptUnknown(deps.state, auditId, JSON.stringify({ error: detail, ...(results ? { results } : {}) })).catch((e: Error) =>
    deps.log.error('release outcome unknown: the audit row stays pending', { id, audit_id: auditId, message: e.message }),
  );
  throw new AppError(
    'release_outcome_unknown',
    `${detail}. amavisd may have delivered: it is not released again without force. An admin resolves it (README: releases whose outcome is unknown).`,
    { id, recipients, audit_id: auditId, ...(results ? { results } : {}) },
  );
}
