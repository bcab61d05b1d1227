import type { Kysely } from 'kysely';
import type { Database } from '../db/types.ts';
import { emitDigestWebhook } from '../webhooks/digest-events.ts';

/**
 * The hook point for digest events (webhooks: 'digest.sent' / 'digest.failed'). A hook runs inside
 * the transaction that records the send's outcome, so an event exists exactly when the record
 * does; a hook that throws rolls the record back (the digest is then retried by the next run).
 */
export interface DigestEvent {
  type: 'digest.sent' | 'digest.failed';
  recipient: string;
  idempotency_key: string;
  provider: 'resend' | 'smtp';
  provider_id: string | null;
  messages: number;
  /** the newest message the digest covered */
  window_to: { time_num: number; mail_id: string };
  error: string | null;
  /** epoch seconds */
  at: number;
  /** a registered gateway's digest (its mail); absent: the deployment's own */
  gateway?: string;
}

export interface DigestHook {
  (trx: Kysely<Database>, event: DigestEvent): Promise<void>;
  /**
   * Optional, asked once per batch of digests (in the same transaction): false when the hook would
   * do nothing for any event of these types, so it is not called once per recipient.
   */
  wants?(trx: Kysely<Database>, types: ReadonlySet<DigestEvent['type']>): Promise<boolean>;
}

/**
 * digest.sent / digest.failed webhooks. emitEvent reads the subscriptions for every event; a run
 * sends tens of thousands of digests, mostly with no subscription that wants them, so the batch
 * first asks once whether any enabled subscription wants these event types at all.
 */
const webhookHook: DigestHook = Object.assign((trx: Kysely<Database>, e: DigestEvent) => emitDigestWebhook(trx, e), {
  async wants(trx: Kysely<Database>, types: ReadonlySet<DigestEvent['type']>) {
    const subs = await trx.selectFrom('qe_webhooks').select('events').where('disabled_at', 'is', null).execute();
    return subs.some((s) => (JSON.parse(s.events) as string[]).some((t) => types.has(t as DigestEvent['type'])));
  },
});

/** Registered at start (e.g. by the webhooks module); runDigest calls each in order. */
export const DIGEST_HOOKS: DigestHook[] = [webhookHook];
