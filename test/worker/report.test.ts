import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import worker, { type WorkerEnv } from '../../functions/worker.ts';
import { BASE, problem, seed } from './support.ts';

const ctx = { waitUntil() {}, passThroughOnException() {}, props: {} };

// Issue 18.4 in workerd: a Worker cannot run sa-learn; it reports through the relay's signed
// POST /v1/learn/{kind}, and the relay runs the real sa-learn (test/worker/global-setup.ts).
describe('functions/worker.ts in workerd: report to the spam filter', () => {
  const s = seed();
  const report = (e: WorkerEnv, id: string, kind: string) =>
    worker.fetch(
      new Request(`${BASE}/v1/quarantine/${id}/report`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.adminKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ kind }),
      }),
      e,
      ctx,
    );

  it('through the relay, sa-learn learns the message once', async () => {
    const relay = inject('learnRelay');
    const withRelay: WorkerEnv = { ...env, RELAY_URL: relay[inject('workerDb')], RELAY_SECRET: relay.secret };
    const first = await report(withRelay, s.ids.spam, 'spam');
    expect(first.status, await first.clone().text()).toBe(200);
    expect(await first.json()).toMatchObject({
      id: s.ids.spam,
      kind: 'spam',
      learned: true,
      learner_output: expect.stringMatching(/Learned tokens from 1 message/),
    });
    const again = await report(withRelay, s.ids.spam, 'spam');
    expect(await again.json()).toMatchObject({ learned: false });
  });

  it('without a relay: 501 learner_not_configured', async () => {
    await problem(await report(env as WorkerEnv, s.ids.banned, 'ham'), 501, 'learner_not_configured');
  });
});
