/**
 * How a digest leaves: a Mailer takes a batch of rendered emails and answers one outcome per email,
 * in order. It never throws for a refused email (that is an outcome); the caller records each one.
 */
export interface OutgoingEmail {
  from: string;
  to: string;
  subject: string;
  html: string;
  text: string;
  /** extra header lines, e.g. List-Unsubscribe; values never carry CR/LF */
  headers: Record<string, string>;
  /** stable per recipient and digest window: a retried send must not deliver twice */
  idempotencyKey: string;
  /**
   * RFC 5322 Message-ID (src/mail/message-id.ts), written by SMTP. Resend sets its own, equally
   * unique, so it is not sent there (a header Resend refuses would fail every digest).
   */
  messageId?: string;
}

export type SendOutcome =
  /** earlier: the service had already accepted a request under this batch key (with other content) */
  | { ok: true; id: string | null; earlier?: boolean }
  /** permanent: the mail service refused this email (4xx); retrying the same email will not help */
  | { ok: false; error: string; status: number | null; permanent: boolean };

export interface SendOptions {
  /** the batch's Idempotency-Key; the same key again is never delivered twice (idempotent mailers) */
  batchKey?: string;
  /**
   * Mailers that send one email at a time (SMTP) call these in the email's connection slot:
   * beforeEach right before it goes out (false: skip it; its outcome is then `not sent`), afterEach
   * with its outcome before the slot takes the next email. A hook that throws stops the send (the
   * promise rejects once the emails in flight are done). Batch mailers (Resend) do not call them.
   */
  beforeEach?(index: number): Promise<boolean>;
  afterEach?(index: number, outcome: SendOutcome): Promise<void>;
}

export interface Mailer {
  readonly provider: 'resend' | 'smtp';
  /**
   * The service keeps a batch key's first answer (Resend: 24 h), so a send whose answer was lost can
   * be repeated under its key without a second delivery. SMTP has nothing of the kind.
   */
  readonly idempotent: boolean;
  /** emails per send() call (Resend's batch endpoint takes at most 100) */
  readonly maxBatch: number;
  send(emails: OutgoingEmail[], opts?: SendOptions): Promise<SendOutcome[]>;
  close?(): Promise<void>;
}

export interface RetryPolicy {
  /** attempts in all, the first included */
  attempts: number;
  /** first wait; doubles each time, capped at 30 s; a Retry-After from the service wins */
  baseDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 500 };

export function backoff(policy: RetryPolicy, attempt: number, retryAfterSeconds?: number | null): number {
  if (retryAfterSeconds && retryAfterSeconds > 0) return Math.min(retryAfterSeconds * 1000, 30_000);
  return Math.min(policy.baseDelayMs * 2 ** attempt, 30_000);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
