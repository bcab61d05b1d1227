import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import worker from '../../functions/worker.ts';
import { call, json, seed } from './support.ts';

interface Body {
  kind: string;
  recipients?: string[];
  after?: string;
}

/**
 * Issue 19.3 in workerd: with a QUEUE binding no invocation plans every recipient. The QUEUE here
 * records what the Worker enqueues (send and sendBatch, structured-cloned as a queue would), and
 * the test is the queue's delivery: each recorded message goes to the real queue() handler in a
 * real MessageBatch (cloudflare:test), whose explicit acks and retries are read back.
 */
const queued: Body[] = [];
const recorder = {
  async send(body: unknown) {
    queued.push(structuredClone(body) as Body);
  },
  async sendBatch(messages: Array<{ body: unknown }>) {
    for (const m of messages) queued.push(structuredClone(m.body) as Body);
  },
};
const db = inject('workerDb');
// One page of one recipient per planning step; digests from this file carry their own From.
const qenv = { ...env, QUEUE: recorder, DIGEST_PAGE_SIZE: '1', DIGEST_PLAN_PAGES: '1', DIGEST_FROM: `Q <digest-${db}-queue@example.test>` };

let nextId = 0;
async function deliver(bodies: Body[], attempts = 1) {
  const batch = createMessageBatch(
    'quarantine-edge-jobs',
    bodies.map((body) => ({ id: `m${++nextId}`, timestamp: new Date(), attempts, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, qenv as never);
  return getQueueResult(batch, ctx);
}

/**
 * Digests this project's Worker sent to the Resend twin (both From addresses: the cron of digest.test.ts
 * too); digests only, by their subject: other files' mail to the same owners (a release request's
 * decision, test/worker/gateway-scope.test.ts) comes from the same From.
 */
async function digestsTo(address: string): Promise<number> {
  const res = await fetch(`${inject('resendUrl')}/emails`, { headers: { authorization: 'Bearer re_worker_test' } });
  const { data } = (await res.json()) as { data: Array<{ from: string; to: string[]; subject: string }> };
  return data.filter((e) => e.from.includes(`digest-${db}`) && e.to.includes(address) && / held in quarantine for you$/.test(e.subject))
    .length;
}

describe('functions/worker.ts in workerd: the digest planned across queue invocations', () => {
  it('plans one page per invocation, carries the cursor through the queue, sends each digest once even when steps and batches are retried', async () => {
    const people = ['bob@example.com', 'carol@example.com', 'dave@example.net'];
    for (const address of people) {
      await json(
        await call(`/v1/digests/subscriptions/${address}`, seed().adminKey, {
          method: 'PUT',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ enabled: true, frequency: 'daily' }),
        }),
      );
    }
    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, qenv as never);
    // the scheduled invocation planned one page and enqueued the rest as a continuation
    expect(queued.map((b) => b.kind)).toEqual(['digest.batch', 'digest.plan']);
    expect(queued[0]!.recipients).toHaveLength(1);
    expect(queued[1]!.after).toBe(queued[0]!.recipients![0]);

    const pages: string[][] = [queued[0]!.recipients!];
    let planSteps = 1;
    let retriedOnce = false;
    while (queued.length > 0) {
      const bodies = queued.splice(0);
      const result = await deliver(bodies);
      // every message acked explicitly, none retried, no whole-batch ack or retry
      expect(result.explicitAcks).toHaveLength(bodies.length);
      expect(result.retryMessages).toEqual([]);
      expect(result.ackAll).toBe(false);
      const plans = bodies.filter((b) => b.kind === 'digest.plan');
      planSteps += plans.length;
      if (!retriedOnce && plans.length > 0) {
        // the queue delivers this batch again (its invocation died after the work, before the acks):
        // the continuation enqueues its page and the next step a second time, the batch sends again
        retriedOnce = true;
        const again = await deliver(bodies, 2);
        expect(again.explicitAcks).toHaveLength(bodies.length);
      }
      for (const b of queued) if (b.kind === 'digest.batch') pages.push(b.recipients!);
    }
    // one recipient a page: each of ours in its own page, in address order, across ≥ 3 planning invocations
    expect(pages.every((p) => p.length === 1)).toBe(true);
    const ours = [...new Set(pages.flat().filter((a) => people.includes(a)))];
    expect(ours).toEqual(people);
    expect(planSteps).toBeGreaterThanOrEqual(3);
    expect(retriedOnce).toBe(true);
    for (const address of people) expect(await digestsTo(address), address).toBe(1);
  });
});
