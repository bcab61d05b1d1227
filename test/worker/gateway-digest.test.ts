// A registered gateway's digest page in workerd (issue 20 item 6; src/digest/job.ts): the queue
// consumer of functions/worker.ts enters the gateway a 'digest.batch' message names (the other
// project's database, opened by URL for the message and closed after it) and sends that database's
// digest, once however often the message is delivered; its links name the gateway. A message for a
// gateway no longer registered is acked (nothing to send), not retried for ever.
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import worker from '../../functions/worker.ts';
import { call, json, seed } from './support.ts';

const db = inject('workerDb');
const FROM = `digest-${db}-gateway@example.test`;
const qenv = { ...env, QUEUE: { async send() {} }, DIGEST_FROM: `Q <${FROM}>` };

let nextId = 0;
async function deliver(bodies: unknown[]) {
  const batch = createMessageBatch(
    'quarantine-edge-jobs',
    bodies.map((body) => ({ id: `g${++nextId}`, timestamp: new Date(), attempts: 1, body })),
  );
  const ctx = createExecutionContext();
  await worker.queue(batch, qenv as never);
  return getQueueResult(batch, ctx);
}

async function digestsTo(address: string): Promise<Array<{ subject: string; text?: string }>> {
  const res = await fetch(`${inject('resendUrl')}/emails`, { headers: { authorization: 'Bearer re_worker_test' } });
  const { data } = (await res.json()) as { data: Array<{ from: string; to: string[]; subject: string; text?: string }> };
  return data.filter((e) => e.from.includes(FROM) && e.to.includes(address));
}

describe("functions/worker.ts in workerd: a queued page of a registered gateway's digest", () => {
  const other = inject('workerSeeds')[db === 'mysql' ? 'pg' : 'mysql'];
  const tag = `${seed().variant.slice(0, 2)}${crypto.randomUUID().slice(0, 6)}`;
  const gid = `wk-dg-${tag}`;

  beforeAll(async () => {
    await json(
      await call('/v1/gateways', seed().adminKey, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ id: gid, name: 'digest', domains: [`dg-${tag}.example.test`], database: { url: other.url }, release: null }),
      }),
      201,
    );
  });
  afterAll(async () => {
    await call(`/v1/gateways/${gid}`, seed().adminKey, { method: 'DELETE' });
  });

  it("sends the gateway's own mail once, its links naming the gateway; a removed gateway's message is acked", async () => {
    const now = Math.floor(Date.now() / 1000);
    const page = {
      kind: 'digest.batch',
      recipients: ['erin@example.net'],
      mode: { forceAll: true, allTime: true, includeBackupMx: true },
      now,
      cutoff: now,
      gateway: gid,
    };
    const first = await deliver([page]);
    expect(first.explicitAcks).toHaveLength(1);
    expect(first.retryMessages).toEqual([]);
    const sent = await digestsTo('erin@example.net');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.text).toContain('Other domain spam');
    const tokens = [...(sent[0]!.text ?? '').matchAll(/https:\/\/quarantine\.test\/a\/([A-Za-z0-9_-]+)\./g)].map((m) => m[1]!);
    expect(tokens.length).toBeGreaterThan(0);
    for (const p of tokens)
      expect(new TextDecoder().decode(Uint8Array.from(atob(p.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0)))).toMatch(
        new RegExp(`\\|g:${gid}$`),
      );
    // delivered again (a retry): the send record says it went out
    expect((await deliver([page])).explicitAcks).toHaveLength(1);
    expect(await digestsTo('erin@example.net')).toHaveLength(1);
    // a gateway no longer registered: acked, nothing sent
    const gone = await deliver([{ ...page, gateway: `wk-none-${tag}` }]);
    expect(gone.explicitAcks).toHaveLength(1);
    expect(gone.retryMessages).toEqual([]);
  });
});
