// Pacing to Resend's rate limit (RESEND_RATE_LIMIT): the twin limits like Resend (2 requests/s,
// 429 with retry-after and ratelimit-* headers); a 429 is waited out, never counted as a failure.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { OutgoingEmail } from '../../src/mail/mailer.ts';
import { Pacer, resendMailer } from '../../src/mail/resend.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

const email = (i: number): OutgoingEmail => ({
  from: 'Quarantine <q@example.test>',
  to: `user${i}@example.test`,
  subject: `digest ${i}`,
  html: '<p>x</p>',
  text: 'x',
  headers: {},
  idempotencyKey: `pace/${i}`,
});

describe('Pacer', () => {
  it('spaces request starts by 1/rate, and an answer can push the next start back', async () => {
    let now = 1_000;
    const waits: number[] = [];
    const pacer = new Pacer(
      2,
      () => now,
      async (ms) => void waits.push(ms),
    );
    await pacer.slot();
    await pacer.slot();
    await pacer.slot();
    expect(waits).toEqual([500, 1000]);
    now = 3_000;
    pacer.holdFor(2_000);
    await pacer.slot();
    expect(waits).toEqual([500, 1000, 2000]);
  });
});

describe('the Resend mailer against a rate-limited Resend', () => {
  let twin: ResendTwin;
  beforeAll(async () => {
    twin = await startResendTwin();
  });
  afterAll(() => twin.close());
  beforeEach(() => {
    twin.reset();
    twin.rateLimit(2);
  });

  it('every request waits for its slot: six batches sent at once start 500 ms apart at 2/s', async () => {
    twin.rateLimit(null);
    const now = 0;
    const waits: number[] = [];
    // the pacer's clock is the test's: what is checked is the schedule, not the machine's timing
    const pacer = new Pacer(
      2,
      () => now,
      async (ms) => void waits.push(ms),
    );
    const mailer = resendMailer({ apiKey: 're_test', baseUrl: twin.url, pacer, maxBatch: 1 });
    const outcomes = (await Promise.all([0, 1, 2, 3, 4, 5].map((i) => mailer.send([email(i)])))).flat();
    expect(outcomes.every((o) => o.ok)).toBe(true);
    expect(waits).toEqual([500, 1000, 1500, 2000, 2500]);
    expect(twin.emails.map((e) => e.to[0]).sort()).toEqual([0, 1, 2, 3, 4, 5].map((i) => `user${i}@example.test`).sort());
  });

  it('unpaced, the 429s are waited out as Resend says, spend no attempt, and deliver each email once', async () => {
    const mailer = resendMailer({
      apiKey: 're_test',
      baseUrl: twin.url,
      rateLimit: 0,
      maxBatch: 1,
      retry: { attempts: 1, baseDelayMs: 1 },
    });
    const outcomes = (await Promise.all([0, 1, 2, 3, 4, 5].map((i) => mailer.send([email(i)])))).flat();
    expect(twin.limited).toBeGreaterThan(0);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(twin.emails).toHaveLength(6);
  });

  it('a 429 that lasts past the bound is a retryable failure, not a permanent one', async () => {
    const mailer = resendMailer({
      apiKey: 're_test',
      baseUrl: twin.url,
      maxBatch: 1,
      retry: { attempts: 1, baseDelayMs: 1 },
      maxRateLimitWaitMs: 0,
    });
    twin.failNext(429, 5);
    const [o] = await mailer.send([email(9)]);
    expect(o).toMatchObject({ ok: false, status: 429, permanent: false });
    expect(twin.emails).toHaveLength(0);
  });
});

describe('the Resend mailer against a Resend that stops answering', () => {
  let twin: ResendTwin;
  beforeAll(async () => {
    twin = await startResendTwin();
  });
  afterAll(() => twin.close());

  it('gives up on a request after its time bound, retries it with the same key, and reports no answer', async () => {
    twin.reset();
    const hold = twin.hold({ accept: false }); // held before anything is looked at: nothing is sent
    const mailer = resendMailer({
      apiKey: 're_test_key',
      baseUrl: twin.url,
      timeoutMs: 300,
      retry: { attempts: 2, baseDelayMs: 10 },
    });
    const outcomes = await mailer.send([email(1), email(2)]);
    expect(outcomes).toHaveLength(2);
    for (const o of outcomes) {
      expect(o.ok).toBe(false);
      if (!o.ok) {
        expect(o.error).toMatch(/no answer from Resend/);
        expect(o.permanent).toBe(false); // asked again on the next run, with the same Idempotency-Key
      }
    }
    await hold.reached(2);
    expect(hold.count).toBe(2); // both attempts reached the service, each cut off by the bound
    hold.stop();
    // the mailer is usable afterwards: its buffer was given back, the next batch goes out whole
    twin.healthy();
    const next = await mailer.send([email(3)]);
    expect(next[0]?.ok).toBe(true);
    expect(twin.emails.map((e) => e.to[0])).toContain('user3@example.test');
  });
});
