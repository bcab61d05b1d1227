import nodemailer from 'nodemailer';
import type { Config } from '../config.ts';
import { mailerFromConfig } from './from-config.ts';
import {
  backoff,
  DEFAULT_RETRY,
  sleep,
  type Mailer,
  type OutgoingEmail,
  type RetryPolicy,
  type SendOptions,
  type SendOutcome,
} from './mailer.ts';

/** Connections (so messages in flight) per mailer, across every send() at once. */
export const SMTP_POOL = 4;
/**
 * No new attempt at one message after this long: with the timeouts below one message holds its
 * slot (and its claim, src/digest/ledger.ts SMTP_CLAIM_LEASE = 10 min) for at most ~5.5 minutes.
 */
export const SMTP_SEND_BUDGET_MS = 4 * 60_000;
const TIMEOUTS = { connectionTimeout: 15_000, greetingTimeout: 15_000, socketTimeout: 60_000 };

/**
 * SMTP (on-prem, the seed's settings): SMTP_URL such as smtp://user:pass@host:587 (STARTTLS when
 * the server offers it; ?requireTLS=true insists) or smtps://...:465. SMTP has no idempotency key:
 * the send record (qe_digest_sends) is what keeps a digest from going out twice, written message
 * by message through SendOptions.afterEach. A 5xx reply is final for that recipient; 4xx and
 * connection failures are retried with backoff. At most `concurrency` messages are in flight per
 * mailer, whatever the number of send() calls at once (a run sends two pages at a time).
 */
export function smtpMailer(url: string, opts: { retry?: RetryPolicy; concurrency?: number; messagesPerConnection?: number } = {}): Mailer {
  // SMTP_URL's own parameters (e.g. ?socketTimeout=) win over these defaults
  const size = opts.concurrency ?? SMTP_POOL;
  // pooled connections (each reused for up to 100 messages): no TCP and EHLO/AUTH per message
  const transport = nodemailer.createTransport({
    url,
    pool: true,
    maxConnections: size,
    maxMessages: opts.messagesPerConnection ?? 100,
    ...TIMEOUTS,
  });
  const retry = opts.retry ?? DEFAULT_RETRY;
  const slots = semaphore(size);

  async function one(e: OutgoingEmail): Promise<SendOutcome> {
    let last: SendOutcome = { ok: false, error: 'not sent', status: null, permanent: false };
    const started = Date.now();
    for (let attempt = 0; attempt < retry.attempts; attempt++) {
      try {
        const info = await transport.sendMail({
          from: e.from,
          to: { name: '', address: e.to },
          subject: e.subject,
          html: e.html,
          text: e.text,
          headers: e.headers,
          // without one, nodemailer makes a random ID of its own (never the recipient)
          ...(e.messageId ? { messageId: e.messageId } : {}),
        });
        return { ok: true, id: info.messageId ?? null };
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode ?? null;
        const permanent = code !== null && code >= 500;
        last = { ok: false, error: (err as Error).message.slice(0, 500), status: code, permanent };
        if (permanent || Date.now() - started > SMTP_SEND_BUDGET_MS) break;
        if (attempt + 1 < retry.attempts) await sleep(backoff(retry, attempt));
      }
    }
    return last;
  }

  return {
    provider: 'smtp',
    idempotent: false,
    maxBatch: 100,
    async send(emails, sendOpts: SendOptions = {}) {
      const out: SendOutcome[] = emails.map(() => ({ ok: false, error: 'not sent', status: null, permanent: false }));
      let failure: { error: unknown } | null = null;
      await Promise.all(
        emails.map((e, i) =>
          slots.run(async () => {
            if (failure) return; // a hook failed: send nothing more
            try {
              if (sendOpts.beforeEach && !(await sendOpts.beforeEach(i))) return;
              out[i] = await one(e);
              await sendOpts.afterEach?.(i, out[i]!);
            } catch (error) {
              failure ??= { error };
            }
          }),
        ),
      );
      if (failure) throw (failure as { error: unknown }).error;
      return out;
    },
    async close() {
      transport.close();
    },
  };
}

/** At most `n` at once, first come first served. */
function semaphore(n: number) {
  let free = n;
  const waiting: Array<() => void> = [];
  return {
    async run<T>(fn: () => Promise<T>): Promise<T> {
      if (free > 0) free--;
      else await new Promise<void>((r) => waiting.push(r));
      try {
        return await fn();
      } finally {
        const next = waiting.shift();
        if (next) next();
        else free++;
      }
    },
  };
}

/** Node: Resend when RESEND_API_KEY is set, else SMTP_URL, else none. */
export function nodeMailer(config: Config): Mailer | null {
  return (
    mailerFromConfig(config) ??
    (config.SMTP_URL
      ? smtpMailer(config.SMTP_URL, { concurrency: config.SMTP_POOL_SIZE, messagesPerConnection: config.SMTP_MESSAGES_PER_CONNECTION })
      : null)
  );
}
