import { sha256Hex } from '../crypto/sha256.ts';
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
import { BatchBodies } from './batch-body.ts';

/**
 * Resend's batch API (POST /emails/batch), called with fetch, so it runs the same on Node and in
 * workerd. Every answer is inspected: 429, 409, 5xx and network failures are retried with backoff;
 * any other 4xx is final and recorded per recipient. Batches are sent with permissive validation,
 * so one bad address fails alone, not its 99 neighbours.
 *
 * Not the `resend` SDK: this one POST is all we use of it, and the SDK builds a client for every
 * Resend product (with a second copy of postal-mime for inbound mail): ~105 KB, 29 KB gzip, of the
 * Worker bundle. The request and the answers handled are the SDK's (resend 6.38 `batch.send`).
 */
export interface ResendOptions {
  apiKey: string;
  /** RESEND_BASE_URL; tests point it at test/support/resend-server.ts */
  baseUrl?: string;
  retry?: RetryPolicy;
  /** fewer than 100 per call (tests) */
  maxBatch?: number;
  /** RESEND_RATE_LIMIT: requests per second this mailer starts at most (Resend's default is 2); 0: unpaced */
  rateLimit?: number;
  /** how long 429s may hold one batch in all before it counts as a (retryable) failure */
  maxRateLimitWaitMs?: number;
  /** instead of one paced at rateLimit (tests: a pacer with its own clock) */
  pacer?: Pacer;
  /** how long one request may take, answer included (default 60 s: a batch can be megabytes) */
  timeoutMs?: number;
}

const RESEND_API = 'https://api.resend.com';

/** What POST /emails/batch answers: ids in order, and with permissive validation the rejects. */
interface BatchAnswer {
  data?: Array<{ id: string }>;
  errors?: Array<{ index: number; message: string }>;
}

/** Resend's error body; statusCode null: no HTTP answer at all. */
interface ResendError {
  statusCode: number | null;
  name?: string;
  message?: string;
}

/** One request, never throwing: the SDK's {data, error} contract. */
async function postBatch(
  url: string,
  apiKey: string,
  payload: Uint8Array<ArrayBuffer>,
  idempotencyKey: string,
  timeoutMs: number,
): Promise<{ data: BatchAnswer | null; error: ResendError | null; retryAfter: string | null; resetAfter: number | null }> {
  let res: Response;
  let text: string;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${apiKey}`,
        'content-type': 'application/json',
        'user-agent': 'quarantine-edge',
        'idempotency-key': idempotencyKey,
        'x-batch-validation': 'permissive',
      },
      body: payload,
      // a mail service that stops answering must not hold the run: it is "no answer", retried
      // with the same Idempotency-Key (Resend sends a key's batch once)
      signal: AbortSignal.timeout(timeoutMs),
    });
    text = await res.text();
  } catch (err) {
    return {
      data: null,
      error: { statusCode: null, name: 'application_error', message: `no answer from Resend (${(err as Error).message})` },
      retryAfter: null,
      resetAfter: null,
    };
  }
  const retryAfter = res.headers.get('retry-after');
  // Resend's rate-limit headers: with none left in this window, the next request waits for its reset.
  const remaining = res.headers.get('ratelimit-remaining');
  const reset = Number(res.headers.get('ratelimit-reset') ?? Number.NaN);
  const resetAfter = remaining === '0' && Number.isFinite(reset) && reset > 0 ? Math.min(reset, 60) * 1000 : null;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const json = body && typeof body === 'object' ? body : null;
  if (res.ok) {
    if (json) return { data: json as BatchAnswer, error: null, retryAfter, resetAfter };
    // Sent, but unreadable: asking again with the same Idempotency-Key is safe.
    return {
      data: null,
      error: { statusCode: null, name: 'application_error', message: `HTTP ${res.status} without a JSON answer` },
      retryAfter,
      resetAfter,
    };
  }
  // An error that is not Resend's JSON (a proxy's page) counts with its HTTP status.
  const e = (json ?? {}) as Partial<ResendError>;
  const statusCode = typeof e.statusCode === 'number' ? e.statusCode : res.status;
  return {
    data: null,
    error: { statusCode, name: e.name ?? 'application_error', message: e.message ?? `HTTP ${res.status}` },
    retryAfter,
    resetAfter,
  };
}

/**
 * Paces request starts to a rate shared by every send() of one mailer (batches sent at once queue
 * for their slots), and lets an answer push the next slot back (a 429's retry-after, no requests
 * left in Resend's window).
 */
export class Pacer {
  private next = 0;
  constructor(
    private readonly perSecond: number,
    private readonly now: () => number = Date.now,
    private readonly wait: (ms: number) => Promise<unknown> = sleep,
  ) {}
  /** resolves when this caller may start its request */
  async slot(): Promise<void> {
    const now = this.now();
    const at = Math.max(now, this.next);
    this.next = at + (this.perSecond > 0 ? 1000 / this.perSecond : 0);
    if (at > now) await this.wait(at - now);
  }
  /** no request starts before `ms` from now */
  holdFor(ms: number): void {
    this.next = Math.max(this.next, this.now() + ms);
  }
}

/**
 * The batch's Idempotency-Key, from its emails' own keys: a batch re-sent with the same emails
 * (a retry, or a restarted run that planned the same page) is answered once by Resend.
 */
export function batchKey(emails: OutgoingEmail[]): string {
  return `digest-batch/${sha256Hex(emails.map((e) => e.idempotencyKey).join('\n'))}`;
}

export function resendMailer(opts: ResendOptions): Mailer {
  const url = `${(opts.baseUrl ?? RESEND_API).replace(/\/+$/, '')}/emails/batch`;
  const retry = opts.retry ?? DEFAULT_RETRY;
  const pacer = opts.pacer ?? new Pacer(opts.rateLimit ?? 0);
  const maxRateLimitWait = opts.maxRateLimitWaitMs ?? 120_000;
  const timeoutMs = opts.timeoutMs ?? 60_000;
  // one buffer per batch in flight (src/digest/run.ts PAGES_IN_FLIGHT), reused batch after batch
  const bodies = new BatchBodies();
  return {
    provider: 'resend',
    idempotent: true,
    maxBatch: Math.min(opts.maxBatch ?? 100, 100),
    async send(emails: OutgoingEmail[], sendOpts: SendOptions = {}): Promise<SendOutcome[]> {
      if (emails.length === 0) return [];
      const payload = emails.map((e) => ({ from: e.from, to: [e.to], subject: e.subject, html: e.html, text: e.text, headers: e.headers }));
      const idempotencyKey = sendOpts.batchKey ?? batchKey(emails);
      // Encoded once for every attempt, as bytes (a string body is copied twice more by fetch),
      // into a reused buffer: src/mail/batch-body.ts. Given back when every attempt is over.
      const body = bodies.take(payload);
      try {
        return await sendBody(body.bytes, idempotencyKey, emails);
      } finally {
        body.give();
      }
    },
  };

  async function sendBody(body: Uint8Array<ArrayBuffer>, idempotencyKey: string, emails: OutgoingEmail[]): Promise<SendOutcome[]> {
    let last: SendOutcome = { ok: false, error: 'not sent', status: null, permanent: false };
    let limitedFor = 0;
    for (let attempt = 0; attempt < retry.attempts; attempt++) {
      await pacer.slot();
      const { data, error, retryAfter, resetAfter } = await postBatch(url, opts.apiKey, body, idempotencyKey, timeoutMs);
      if (resetAfter !== null) pacer.holdFor(resetAfter);
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
      // Rate limited: nothing was sent and nothing failed; wait as told and ask again without
      // spending an attempt, up to maxRateLimitWait in all for this batch.
      if (status === 429) {
        const ra = Number(retryAfter ?? Number.NaN);
        const wait = Number.isFinite(ra) && ra > 0 ? Math.min(ra * 1000, 60_000) : 1000;
        if (limitedFor + wait <= maxRateLimitWait) {
          limitedFor += wait;
          pacer.holdFor(wait);
          attempt--;
          continue;
        }
      }
      // The key was used before with another payload: Resend accepted that request (its digests
      // went out); this one is not sent. The caller records the earlier one as delivered.
      if (status === 409 && error?.name === 'invalid_idempotent_request')
        return emails.map(() => ({ ok: true as const, id: null, earlier: true }));
      // 409 concurrent_idempotent_requests: Resend is still working on a request with this key; ask again.
      const transient = status === null || status === 409 || status === 429 || status >= 500;
      last = { ok: false, error: `${error?.name ?? 'error'}: ${error?.message ?? 'no answer'}`, status, permanent: !transient };
      if (!transient) break;
      if (attempt + 1 < retry.attempts) {
        const ra = Number(retryAfter ?? undefined);
        await sleep(backoff(retry, attempt, Number.isFinite(ra) ? ra : null));
      }
    }
    return emails.map(() => last);
  }
}
