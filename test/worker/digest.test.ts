import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import worker from '../../functions/worker.ts';
import { call, json, list, seed } from './support.ts';

interface Sent {
  from: string;
  to: string[];
  subject: string;
  html?: string;
  text?: string;
}

/** What this project's Worker sent to the Resend twin (the two projects share it). */
async function sentHere(): Promise<Sent[]> {
  const res = await fetch(`${inject('resendUrl')}/emails`, { headers: { authorization: 'Bearer re_worker_test' } });
  const { data } = (await res.json()) as { data: Sent[] };
  return data.filter((e) => e.from.includes(`digest-${inject('workerDb')}@`));
}

describe('functions/worker.ts in workerd: the digest cron', () => {
  it('sends one digest per subscribed recipient through Resend, then none; its links change nothing on GET', async () => {
    const key = seed().adminKey;
    await json(
      await call('/v1/digests/subscriptions/alice@example.com', key, {
        method: 'PUT',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ enabled: true, frequency: 'hourly' }),
      }),
    );
    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, env as never);
    const first = (await sentHere()).filter((e) => e.to.includes('alice@example.com'));
    expect(first).toHaveLength(1);
    expect(first[0]!.subject).toBe('1 message was held in quarantine for you');
    expect(first[0]!.html).toContain('Congratulations, you won');

    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, env as never);
    expect((await sentHere()).filter((e) => e.to.includes('alice@example.com'))).toHaveLength(1);

    const release = /Release:\s+https:\/\/quarantine\.test(\/a\/\S+)/.exec(first[0]!.text ?? '')?.[1];
    expect(release).toBeDefined();
    const page = await call(release!);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-security-policy')).toContain("default-src 'none'");
    const after = await list('?recipient=alice@example.com', key);
    expect(after.items.map((i) => i.recipients[0]!.status)).toEqual(['pending']);
  });
});
