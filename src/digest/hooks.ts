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
}

export type DigestHook = (trx: Kysely<Database>, event: DigestEvent) => Promise<void>;

/** Registered at start (e.g. by the webhooks module); runDigest calls each in order. */
export const DIGEST_HOOKS: DigestHook[] = [emitDigestWebhook];
