/**
 * A bulk release, pipelined in batches (BENCHMARKS.md "Bulk release against its floor"). One
 * release costs ~11 database round trips when each message is read, claimed and settled on its
 * own; here the messages are read and claimed a batch at a time (one statement for the targets,
 * one transaction for the claims), and the answers are settled a group at a time (group commit:
 * one transaction records several answers, each after its own reply).
 *
 * What stays as for one release (src/quarantine/release.ts): a message's claim is committed before
 * it is sent; its outcome is recorded only after amavisd's reply, in one transaction with its
 * audit result and events; an unknown outcome stays 'releasing' and is audited 'unknown'.
 *
 * What a crash leaves: at most 4 × AMAVISD_PDP_CONCURRENCY messages of one bulk claimed and not
 * settled ('releasing', their audit rows 'pending'; batchSizes below): up to
 * AMAVISD_PDP_CONCURRENCY with amavisd, the rest claimed and waiting for a slot (never sent) or
 * answered and waiting for the settling transaction (at most GROUP_WAIT_MS after the answer, or the
 * length of the transaction before). All are the unknown outcome an admin already resolves
 * (README "Releases whose outcome is unknown"); test/integration/release-kill.test.ts kills a
 * server mid-bulk.
 */
import { formatItemId, parseItemId, type MailKey } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import type { ReleaseReply } from '../release/transport.ts';
import type { Subscriptions } from '../webhooks/events.ts';
import type { BulkInput, BulkItemResult } from './bulk.ts';
import { claimBatch, settleBatch, type Answered } from './release-batch.ts';
import { outcomes, planRelease, releaseFrom, sendFailed, unknownOutcome, type ReleasePlan, type SharedReads } from './release.ts';
import { loadTargets, type ActionTarget } from './target.ts';

type Failure = (id: string, err: unknown) => BulkItemResult;

const NOT_AN_ID = 'not a quarantine id (<partition_tag>.<mail_id>, e.g. 0.hZbBr1WxS3sy)';

interface Claimed {
  index: number;
  id: string;
  key: MailKey;
  target: ActionTarget;
  plan: ReleasePlan;
  auditId: number;
}

/** At most `n` at once, the rest in arrival order; no time bound (the transport has its own). */
function slots(n: number) {
  let free = n;
  const waiting: Array<() => void> = [];
  return {
    async acquire(): Promise<() => void> {
      if (free > 0) free--;
      else await new Promise<void>((r) => waiting.push(r));
      return () => {
        const next = waiting.shift();
        if (next) next();
        else free++;
      };
    },
  };
}

/** The longest an answer waits for others to be recorded with (besides a transaction running then). */
const GROUP_WAIT_MS = 20;

/**
 * For AMAVISD_PDP_CONCURRENCY = n: at most 4n ids claimed and not yet settled (what a crash leaves
 * 'releasing'); claims in batches of at least 2n (the next batch is claimed while n are with
 * amavisd and n more wait for a slot); answers recorded n at a time. Measured against smaller
 * batches and one transaction per answer in BENCHMARKS.md ("Bulk release against its floor").
 */
export const batchSizes = (n: number) => ({ window: 4 * n, batch: 2 * n, group: n });

const httpStatus = (status: 'released' | 'partial' | 'failed') => (status === 'released' ? 200 : status === 'partial' ? 207 : 502);

type Planned = Omit<Claimed, 'auditId'>;

type Queued = { answer: Answered; claimed: Claimed; via: string; at: number; done: () => void };

export async function releaseInBatches(
  deps: Deps,
  who: Identity,
  input: BulkInput,
  ids: string[],
  shared: SharedReads,
  /** the recipients a filtered bulk releases to for a message (throws when none) */
  recipientsOf: ((target: ActionTarget) => string[]) | undefined,
  failure: Failure,
): Promise<BulkItemResult[]> {
  const pdp = deps.config.AMAVISD_PDP_CONCURRENCY;
  const { window, batch: claimSize, group } = batchSizes(pdp);
  const out: BulkItemResult[] = new Array(ids.length);
  const sending = slots(pdp);
  /** claimed and not yet settled (never more than `window`) */
  let unsettled = 0;
  let roomMade: (() => void) | null = null;
  const settled = () => {
    unsettled--;
    const wake = roomMade;
    roomMade = null;
    wake?.();
    maySettle();
  };

  /** null: recorded; else the database's error */
  const record = (items: Queued[], subs: Subscriptions | null): Promise<unknown> =>
    settleBatch(
      deps,
      who,
      items.map((q) => q.answer),
      subs,
    ).then(
      () => null,
      (err: unknown) => err ?? new Error('the settling transaction failed'),
    );
  const answer = async ({ answer, claimed, via }: Queued, err: unknown) => {
    if (err === null) {
      const result = { id: claimed.id, status: answer.status, results: answer.results, via };
      out[claimed.index] = { id: claimed.id, status: httpStatus(answer.status), result };
      return;
    }
    // amavisd answered, but its answer could not be recorded: the copies stay 'releasing', unknown
    out[claimed.index] = await unknownOutcome(deps, claimed.auditId, claimed.id, claimed.plan.addresses, err, answer.results).catch(
      (e: unknown) => failure(claimed.id, e),
    );
  };
  // Group commit: answers queue here, and one settling transaction at a time takes all that are
  // queued: once `group` are, or no other answer can come (the rest are settled or settling), or
  // the first has waited GROUP_WAIT_MS.
  const queue: Queued[] = [];
  let settling = 0;
  let timer: ReturnType<typeof setTimeout> | null = null;
  const due = () => queue.length >= group || queue.length + settling === unsettled || Date.now() - queue[0]!.at >= GROUP_WAIT_MS;
  const maySettle = () => {
    if (queue.length === 0) return;
    if (settling === 0 && due()) void settleQueued();
    else timer ??= setTimeout(() => void settleQueued(), Math.max(1, GROUP_WAIT_MS - (Date.now() - queue[0]!.at)));
  };
  const settleQueued = async () => {
    if (timer) clearTimeout(timer);
    timer = null;
    if (settling > 0 || queue.length === 0) return; // the running one takes them after it
    const batch = queue.splice(0);
    settling = batch.length;
    try {
      const subs = await shared.subscriptions().catch(() => null);
      const err = await record(batch, subs);
      if (err === null || batch.length === 1) for (const q of batch) await answer(q, err);
      // A batch the database refuses is settled again one message at a time, so that only the
      // message it refuses (or all, when it is gone) ends unknown, as a single release would.
      else for (const q of batch) await answer(q, await record([q], subs));
    } finally {
      settling = 0;
      for (const q of batch) q.done();
      maySettle();
    }
  };

  const sendAndSettle = async (c: Claimed) => {
    const give = await sending.acquire();
    let reply: ReleaseReply;
    try {
      reply = await c.plan.transport.release({
        partitionTag: c.key.partitionTag,
        mailId: c.key.mailId,
        secretId: c.target.secretId,
        recipients: c.plan.addresses,
        requestedBy: releaseFrom(deps.config, c.plan.addresses),
        host: c.target.host,
      });
    } catch (err) {
      give();
      const subs = shared.subscriptions().catch(() => null);
      out[c.index] = await sendFailed(deps, who, c.key, c.plan, c.auditId, err, subs).catch((e: unknown) => failure(c.id, e));
      return;
    }
    give();
    const results = outcomes(c.plan.addresses, reply);
    const released = results.filter((r) => r.released).length;
    const status = released === results.length ? 'released' : released ? 'partial' : 'failed';
    await new Promise<void>((done) => {
      queue.push({
        answer: { key: c.key, plan: c.plan, auditId: c.auditId, results, status },
        claimed: c,
        via: reply.via,
        at: Date.now(),
        done,
      });
      maySettle();
    });
  };

  /** Each message's audit id, or why it was not claimed. */
  const claim = async (planned: Planned[]): Promise<Array<number | AppError | { err: unknown }>> => {
    if (planned.length === 0) return [];
    const alone = (p: Planned) =>
      claimBatch(deps, who, [p]).then(
        (a) => a[0]!,
        (err: unknown) => ({ err }),
      );
    if (planned.length === 1) return [await alone(planned[0]!)];
    try {
      return await claimBatch(deps, who, planned);
    } catch {
      // A batch the database refuses is claimed again one message at a time: only the message
      // it refuses (or all, when it is gone) fails, as a single release would.
      const each = [];
      for (const p of planned) each.push(await alone(p));
      return each;
    }
  };

  /** Read, check and claim the messages at `indexes`; start sending each one claimed. */
  const claimChunk = async (indexes: number[]): Promise<Array<Promise<void>>> => {
    const keyed: Array<{ index: number; id: string; key: MailKey }> = [];
    for (const index of indexes) {
      const id = ids[index]!;
      const key = parseItemId(id, deps.gateway);
      if (key) keyed.push({ index, id, key });
      else out[index] = failure(id, new AppError('invalid_field', NOT_AN_ID, { field: 'ids' }));
    }
    let targets: Map<string, ActionTarget>;
    try {
      targets = await loadTargets(
        deps,
        who,
        keyed.map((k) => k.key),
      );
    } catch (err) {
      for (const k of keyed) out[k.index] = failure(k.id, err);
      return [];
    }
    const planned: Planned[] = [];
    for (const k of keyed) {
      try {
        const target = targets.get(formatItemId(k.key));
        if (!target) throw new AppError('not_found', 'no quarantined message with this id');
        const recipients = recipientsOf?.(target);
        const plan = await planRelease(
          deps,
          who,
          { key: k.key, allowSender: input.allowSender, confirmDangerous: input.confirmDangerous, recipients, shared },
          target,
        );
        planned.push({ ...k, target, plan });
      } catch (err) {
        out[k.index] = failure(k.id, err);
      }
    }
    const audits = await claim(planned);
    const started: Array<Promise<void>> = [];
    planned.forEach((p, i) => {
      const audit = audits[i]!;
      if (typeof audit !== 'number') {
        out[p.index] = failure(p.id, audit instanceof AppError ? audit : audit.err);
        return;
      }
      unsettled++;
      started.push(sendAndSettle({ ...p, auditId: audit }).finally(settled));
    });
    return started;
  };

  const running: Array<Promise<void>> = [];
  let next = 0;
  while (next < ids.length) {
    // the next batch is read and claimed while AMAVISD_PDP_CONCURRENCY are with amavisd and as
    // many wait for a slot, so the slots do not idle meanwhile
    while (unsettled > window - claimSize) await new Promise<void>((r) => (roomMade = r));
    const take = Math.min(window - unsettled, ids.length - next);
    const indexes = Array.from({ length: take }, (_, i) => next + i);
    next += take;
    running.push(...(await claimChunk(indexes)));
  }
  await Promise.all(running);
  return out;
}
