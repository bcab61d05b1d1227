import nodemailer from 'nodemailer';
import type { Config } from '../config.ts';
import { mailerFromConfig } from './from-config.ts';
import { backoff, DEFAULT_RETRY, sleep, type Mailer, type OutgoingEmail, type RetryPolicy, type SendOutcome } from './mailer.ts';

/**
 * SMTP (on-prem, the seed's settings): SMTP_URL such as smtp://user:pass@host:587 (STARTTLS when
 * the server offers it; ?requireTLS=true insists) or smtps://...:465. SMTP has no idempotency key:
 * the send record (qe_digest_sends) is what keeps a digest from going out twice. A 5xx reply is
 * final for that recipient; 4xx and connection failures are retried with backoff.
 */
export function smtpMailer(url: string, opts: { retry?: RetryPolicy; concurrency?: number } = {}): Mailer {
  const transport = nodemailer.createTransport(url);
  const retry = opts.retry ?? DEFAULT_RETRY;
  const concurrency = opts.concurrency ?? 4;

  async function one(e: OutgoingEmail): Promise<SendOutcome> {
    let last: SendOutcome = { ok: false, error: 'not sent', status: null, permanent: false };
    for (let attempt = 0; attempt < retry.attempts; attempt++) {
      try {
        const info = await transport.sendMail({
          from: e.from, to: { name: '', address: e.to }, subject: e.subject, html: e.html, text: e.text, headers: e.headers,
          // without one, nodemailer makes a random ID of its own (never the recipient)
          ...(e.messageId ? { messageId: e.messageId } : {}),
        });
        return { ok: true, id: info.messageId ?? null };
      } catch (err) {
        const code = (err as { responseCode?: number }).responseCode ?? null;
        const permanent = code !== null && code >= 500;
        last = { ok: false, error: (err as Error).message.slice(0, 500), status: code, permanent };
        if (permanent) break;
        if (attempt + 1 < retry.attempts) await sleep(backoff(retry, attempt));
      }
    }
    return last;
  }

  return {
    provider: 'smtp',
    idempotent: false,
    maxBatch: 100,
    async send(emails) {
      const out: SendOutcome[] = new Array(emails.length);
      let next = 0;
      const worker = async () => {
        while (next < emails.length) {
          const i = next++;
          out[i] = await one(emails[i]!);
        }
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, emails.length) }, worker));
      return out;
    },
    async close() {
      transport.close();
    },
  };
}

/** Node: Resend when RESEND_API_KEY is set, else SMTP_URL, else none. */
export function nodeMailer(config: Config): Mailer | null {
  return mailerFromConfig(config) ?? (config.SMTP_URL ? smtpMailer(config.SMTP_URL) : null);
}
