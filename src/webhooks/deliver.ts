import { KEY_REVOKED, keyIsLive } from '../auth/keys.ts';
import { disableWebhooks } from './disable.ts';
import type { Deps } from '../deps.ts';
import { payloadFor, subscriptionDomains } from './events.ts';
import { fetchPost } from './post.ts';
import { sign } from './sign.ts';
import { targetUrlProblem } from './url.ts';

/**
 * Seconds to wait after the n-th failed attempt; after the last, the delivery is failed. About
 * 23.6 h in all, so a receiver that is down for a night still gets its events.
 */
export const BACKOFF_SECONDS = [5, 60, 300, 1800, 7200, 18000, 28800, 28800];
/** A claimed delivery is not picked again for this long (a pass that died mid-attempt is retried). */
const LEASE_SECONDS = 120;
const DEFAULT_TIMEOUT_MS = 10_000;
const CONCURRENCY = 4;

export interface DeliveryOptions {
  limit?: number;
  /** per attempt; 10 s by default */
  timeoutMs?: number;
}

export type AttemptOutcome = 'delivered' | 'retrying' | 'failed' | 'disabled' | 'skipped';

export interface PassReport {
  job: 'webhooks';
  summary: string;
  attempted: number;
  delivered: number;
  retrying: number;
  failed: number;
}

const seconds = (deps: Deps) => Math.floor(deps.clock.now() / 1000);

/** One delivery pass: every pending delivery that is due, a few at a time. */
export async function deliverDue(deps: Deps, opts: DeliveryOptions = {}): Promise<PassReport> {
  const due = await dueDeliveries(deps, opts.limit ?? 100);
  const counts = { delivered: 0, retrying: 0, failed: 0, disabled: 0, skipped: 0 };
  let next = 0;
  const worker = async () => {
    while (next < due.length) {
      const id = due[next++]!;
      counts[await deliverOne(deps, id, opts)]++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, due.length) }, worker));
  const attempted = due.length - counts.skipped;
  const failed = counts.failed + counts.disabled;
  return {
    job: 'webhooks',
    summary: `${attempted} attempted: ${counts.delivered} delivered, ${counts.retrying} to retry, ${failed} failed`,
    attempted,
    delivered: counts.delivered,
    retrying: counts.retrying,
    failed,
  };
}

export async function dueDeliveries(deps: Deps, limit: number): Promise<string[]> {
  const rows = await deps.state
    .selectFrom('qe_webhook_deliveries')
    .select('id')
    .where('status', '=', 'pending')
    .where('next_attempt_at', '<=', seconds(deps))
    .orderBy('next_attempt_at')
    .limit(limit)
    .execute();
  return rows.map((r) => r.id);
}

/**
 * Attempt one delivery if it is due. It is claimed first (compare-and-set on next_attempt_at), so
 * two passes (cron and queue, two Node processes) never send it at the same moment; a pass that dies
 * after the claim leaves it to be sent again when the lease ends: at least once, same webhook-id.
 */
export async function deliverOne(deps: Deps, deliveryId: string, opts: DeliveryOptions = {}): Promise<AttemptOutcome> {
  const now = seconds(deps);
  const row = await deps.state
    .selectFrom('qe_webhook_deliveries as d')
    .innerJoin('qe_webhook_events as e', 'e.id', 'd.event_id')
    .leftJoin('qe_webhooks as w', 'w.id', 'd.webhook_id')
    .leftJoin('qe_api_keys as k', 'k.id', 'w.key_id')
    .select([
      'd.id',
      'd.status',
      'd.attempts',
      'd.next_attempt_at',
      'd.webhook_id',
      'e.payload',
      'w.url',
      'w.secret',
      'w.domains',
      'w.disabled_at',
      'w.key_id',
      'k.id as key_row',
      'k.revoked_at as key_revoked_at',
      'k.expires_at as key_expires_at',
    ])
    .where('d.id', '=', deliveryId)
    .executeTakeFirst();
  if (row?.status !== 'pending' || Number(row.next_attempt_at) > now) return 'skipped';
  const claimed = await deps.state
    .updateTable('qe_webhook_deliveries')
    .set({ next_attempt_at: now + LEASE_SECONDS })
    .where('id', '=', row.id)
    .where('status', '=', 'pending')
    .where('next_attempt_at', '=', row.next_attempt_at)
    .executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== 1) return 'skipped';

  // A subscription lives as long as the key that made it: revocation disables it at once
  // (auth/keys.ts); an expired key (no event marks that) is found here.
  const keyGone =
    row.key_id !== null && (row.key_row === null || !keyIsLive({ revoked_at: row.key_revoked_at, expires_at: row.key_expires_at }, now));
  if (keyGone && row.url && row.disabled_at === null) {
    await disableSubscription(deps, row.webhook_id, KEY_REVOKED);
    return 'disabled';
  }
  if (!row.url || !row.secret || row.disabled_at !== null) {
    await finish(deps, row.id, { status: 'failed', last_error: 'the subscription is disabled or deleted' });
    return 'failed';
  }
  const refused = targetUrlProblem(row.url, deps.config.WEBHOOK_ALLOW_PRIVATE);
  if (refused) {
    await finish(deps, row.id, { status: 'failed', last_error: `url ${refused}` });
    return 'failed';
  }

  const body = payloadFor(row.payload, subscriptionDomains(row.domains));
  const post = deps.webhookPost ?? fetchPost;
  const attempt = await post(
    row.url,
    body,
    {
      'content-type': 'application/json',
      'user-agent': 'quarantine-edge-webhooks',
      'webhook-id': row.id,
      'webhook-timestamp': String(now),
      'webhook-signature': sign(row.secret, row.id, now, body),
    },
    { timeoutMs: opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, allowPrivate: deps.config.WEBHOOK_ALLOW_PRIVATE },
  );
  const attempts = Number(row.attempts) + 1;
  const common = { attempts, last_attempt_at: now, last_status: attempt.status, last_duration_ms: attempt.ms, last_error: attempt.error };
  const made: AttemptRecord = { at: now, status: attempt.status, error: attempt.error, ms: attempt.ms };

  if (attempt.status !== null && attempt.status >= 200 && attempt.status < 300) {
    await finish(deps, row.id, { ...common, status: 'delivered', delivered_at: seconds(deps) }, made);
    return 'delivered';
  }
  if (attempt.status === 410) {
    await disableSubscription(deps, row.webhook_id, 'the receiver answered 410 Gone');
    await finish(deps, row.id, { ...common, status: 'failed' }, made);
    return 'disabled';
  }
  const wait = BACKOFF_SECONDS[attempts - 1];
  if (wait === undefined) {
    await finish(deps, row.id, { ...common, status: 'failed' }, made);
    return 'failed';
  }
  await finish(deps, row.id, { ...common, status: 'pending', next_attempt_at: now + wait }, made);
  return 'retrying';
}

interface AttemptRecord {
  at: number;
  status: number | null;
  error: string | null;
  ms: number;
}

type DeliveryUpdate = Partial<{
  status: string;
  attempts: number;
  next_attempt_at: number;
  last_attempt_at: number;
  last_status: number | null;
  last_error: string | null;
  last_duration_ms: number;
  delivered_at: number;
}>;

/**
 * The delivery's new state, and the attempt that led to it in its history (qe_webhook_attempts),
 * in one transaction: the list of attempts never disagrees with the delivery's counters.
 */
async function finish(deps: Deps, id: string, set: DeliveryUpdate, attempt?: AttemptRecord) {
  if (!attempt) {
    await deps.state.updateTable('qe_webhook_deliveries').set(set).where('id', '=', id).execute();
    return;
  }
  await deps.state.transaction().execute(async (trx) => {
    await trx.updateTable('qe_webhook_deliveries').set(set).where('id', '=', id).execute();
    await trx
      .insertInto('qe_webhook_attempts')
      .values({
        delivery_id: id,
        attempted_at: attempt.at,
        status_code: attempt.status,
        error: attempt.error === null ? null : attempt.error.slice(0, 500),
        duration_ms: Math.max(0, Math.round(attempt.ms)),
      })
      .execute();
  });
}

/** A subscription its receiver has given up on (410): off, and its pending deliveries failed. */
async function disableSubscription(deps: Deps, webhookId: string, reason: string) {
  await deps.state.transaction().execute((trx) => disableWebhooks(trx, [webhookId], reason, seconds(deps)));
}
