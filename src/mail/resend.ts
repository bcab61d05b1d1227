import { Resend } from 'resend';
import { backoff, DEFAULT_RETRY, sleep, type Mailer, type OutgoingEmail, type RetryPolicy, type SendOutcome } from './mailer.ts';

/**
 * Resend's batch API (the `resend` SDK, which runs in workerd: fetch only). The SDK returns
 * {data, error} and never throws, so every answer is inspected: 429, 5xx and network failures
 * are retried with backoff; any other 4xx is final and recorded per recipient. Batches are sent
 * with permissive validation, so one bad address fails alone, not its 99 neighbours.
 */
export interface ResendOptions {
  apiKey: string;
  /** RESEND_BASE_URL; tests point it at test/support/resend-server.ts */
  baseUrl?: string;
  retry?: RetryPolicy;
  /** fewer than 100 per call (tests) */
  maxBatch?: number;
}

const HEX = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, '0')).join('');

/**
 * The batch's Idempotency-Key, from its emails' own keys: a batch re-sent with the same emails
 * (a retry, or a restarted run that planned the same page) is answered once by Resend.
 */
export async function batchKey(emails: OutgoingEmail[]): Promise<string> {
  const joined = emails.map((e) => e.idempotencyKey).join('\n');
  return `digest-batch/${HEX(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(joined)))}`;
}

export function resendMailer(opts: ResendOptions): Mailer {
  const client = new Resend(opts.apiKey, opts.baseUrl ? { baseUrl: opts.baseUrl.replace(/\/+$/, '') } : undefined);
  const retry = opts.retry ?? DEFAULT_RETRY;
  return {
    provider: 'resend',
    maxBatch: Math.min(opts.maxBatch ?? 100, 100),
    async send(emails: OutgoingEmail[]): Promise<SendOutcome[]> {
      if (emails.length === 0) return [];
      const payload = emails.map((e) => ({ from: e.from, to: [e.to], subject: e.subject, html: e.html, text: e.text, headers: e.headers }));
      const idempotencyKey = await batchKey(emails);
      let last: SendOutcome = { ok: false, error: 'not sent', status: null, permanent: false };
      for (let attempt = 0; attempt < retry.attempts; attempt++) {
        const { data, error, headers } = await client.batch.send(payload, { idempotencyKey, batchValidation: 'permissive' });
        if (!error && data) {
          const failed = new Map((data.errors ?? []).map((e) => [e.index, e.message]));
          const ids = data.data ?? [];
          let next = 0;
          return emails.map((_, i) => {
            const msg = failed.get(i);
            if (msg !== undefined) return { ok: false as const, error: msg, status: 422, permanent: true };
            return { ok: true as const, id: ids[next++]?.id ?? null };
          });
        }
        const status = error?.statusCode ?? null;
        // 409: Resend is still working on a request with this key (concurrent runs); ask again.
        const transient = status === null || status === 409 || status === 429 || status >= 500;
        last = { ok: false, error: `${error?.name ?? 'error'}: ${error?.message ?? 'no answer'}`, status, permanent: !transient };
        if (!transient) break;
        if (attempt + 1 < retry.attempts) {
          const ra = Number((headers as Record<string, string> | null)?.['retry-after']);
          await sleep(backoff(retry, attempt, Number.isFinite(ra) ? ra : null));
        }
      }
      return emails.map(() => last);
    },
  };
}
