// STATE_DATABASE_URL on Workers (README "State in its own database"): the digest planned through the
// queue and sent with the state apart (amavisd's seed database, and a state database of the other
// server kind: both directions across the two projects). And whether the state is apart is
// decided on what was configured. A HYPERDRIVE binding hands the Worker a connection string of its
// own (Hyperdrive's host, credentials and parameters), never DATABASE_URL as written: comparing
// STATE_DATABASE_URL with that string took the same database for another one.
import { createExecutionContext, createMessageBatch, getQueueResult } from 'cloudflare:test';
import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import worker, { type WorkerEnv } from '../../functions/worker.ts';
import { BASE, BOOTSTRAP_KEY } from './support.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };

/**
 * The same database as `url` under another connection string, as a Hyperdrive binding's looks
 * (workerd appends ssl-mode to a MySQL one; a PostgreSQL one carries sslmode=disable).
 */
function hyperdriveFor(url: string): string {
  const u = new URL(url);
  if (u.protocol === 'mysql:' || u.protocol === 'mariadb:') u.searchParams.set('ssl-mode', 'DISABLED');
  else u.searchParams.set('sslmode', 'disable');
  return u.toString();
}

async function readyz(e: WorkerEnv): Promise<Record<string, unknown>> {
  const res = await worker.fetch(new Request('https://quarantine.test/readyz'), e, ctx);
  const body = (await res.json()) as Record<string, unknown>;
  expect(res.status, JSON.stringify(body)).toBe(200);
  expect(body).toMatchObject({ status: 'ready' });
  return body;
}

describe('functions/worker.ts in workerd: STATE_DATABASE_URL with a HYPERDRIVE binding', () => {
  it('STATE_DATABASE_URL equal to DATABASE_URL is one database, reached through Hyperdrive, not a state apart', async () => {
    const url = String(env.DATABASE_URL);
    const hyperdrive = hyperdriveFor(url);
    expect(hyperdrive).not.toBe(url);
    const same = await readyz({ ...env, HYPERDRIVE: { connectionString: hyperdrive }, STATE_DATABASE_URL: url });
    expect(same).not.toHaveProperty('state_database');
    // without the binding, DATABASE_URL alone: the same
    expect(await readyz({ ...env, STATE_DATABASE_URL: url })).not.toHaveProperty('state_database');
    // another URL than DATABASE_URL is apart (here it names the same database, which has our tables:
    // what tells the two apart is the configuration, as the README says)
    expect(await readyz({ ...env, STATE_DATABASE_URL: hyperdrive })).toMatchObject({ state_database: 'apart' });
  });
});

interface Body {
  kind: string;
  recipients?: string[];
}

describe('functions/worker.ts in workerd: a state database apart', () => {
  const db = inject('workerDb');
  const queued: Body[] = [];
  const recorder = {
    async send(body: unknown) {
      queued.push(structuredClone(body) as Body);
    },
    async sendBatch(messages: Array<{ body: unknown }>) {
      for (const m of messages) queued.push(structuredClone(m.body) as Body);
    },
  };
  // one recipient per page and per planning step; digests from this file carry their own From
  const apart: WorkerEnv = {
    ...env,
    STATE_DATABASE_URL: inject('workerStateUrls')[db],
    QUEUE: recorder,
    DIGEST_PAGE_SIZE: '1',
    DIGEST_PLAN_PAGES: '1',
    DIGEST_FROM: `Q <apart-${db}@example.test>`,
  };
  let nextId = 0;
  const deliver = async (bodies: Body[]) => {
    const batch = createMessageBatch(
      'quarantine-edge-jobs',
      bodies.map((body) => ({ id: `s${++nextId}`, timestamp: new Date(), attempts: 1, body })),
    );
    const ctx = createExecutionContext();
    await worker.queue(batch, apart as never);
    return getQueueResult(batch, ctx);
  };
  const sent = async () => {
    const res = await fetch(`${inject('resendUrl')}/emails`, { headers: { authorization: 'Bearer re_worker_test' } });
    const { data } = (await res.json()) as { data: Array<{ from: string; to: string[]; text?: string }> };
    return data.filter((e) => e.from.includes(`apart-${db}@`));
  };

  it('the cron plans through the queue, the consumer sends each digest once (redelivered: nothing more)', async () => {
    expect(await readyz(apart)).toMatchObject({ state_database: 'apart' });
    const people = ['alice@example.com', 'bob@example.com', 'erin@example.net'];
    for (const address of people) {
      const res = await worker.fetch(
        new Request(`${BASE}/v1/digests/subscriptions/${address}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${BOOTSTRAP_KEY}`, 'content-type': 'application/json' },
          body: JSON.stringify({ enabled: true, frequency: 'daily' }),
        }),
        apart,
        ctx,
      );
      expect(res.status, await res.text()).toBe(200);
    }
    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, apart);
    expect(queued.map((b) => b.kind)).toEqual(['digest.batch', 'digest.plan']);
    const batches: Body[] = [];
    while (queued.length > 0) {
      const bodies = queued.splice(0);
      batches.push(...bodies.filter((b) => b.kind === 'digest.batch'));
      const result = await deliver(bodies);
      expect(result.explicitAcks).toHaveLength(bodies.length);
      expect(result.retryMessages).toEqual([]);
    }
    expect(batches.map((b) => b.recipients)).toEqual(people.map((p) => [p]));
    const first = await sent();
    expect(first.map((e) => e.to[0]).sort()).toEqual(people);
    expect(first.find((e) => e.to[0] === 'alice@example.com')!.text).toContain('Congratulations, you won');
    // every batch delivered again (a queue retry): the ledger in the state database sends nothing twice
    await deliver(batches);
    expect(await sent()).toHaveLength(people.length);
    // the next tick: nobody is due
    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, apart);
    expect(queued).toEqual([]);
  });
});
