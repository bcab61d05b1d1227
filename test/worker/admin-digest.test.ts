import { env } from 'cloudflare:workers';
import { describe, expect, inject, it } from 'vitest';
import worker from '../../functions/worker.ts';
import { call, json, seed } from './support.ts';

interface Sent {
  from: string;
  to: string[];
  subject: string;
  html?: string;
  text?: string;
}

/** What this project's Worker sent to the Resend twin (the two projects share it). */
async function sentTo(address: string): Promise<Sent[]> {
  const res = await fetch(`${inject('resendUrl')}/emails`, { headers: { authorization: 'Bearer re_worker_test' } });
  const { data } = (await res.json()) as { data: Sent[] };
  return data.filter((e) => e.from.includes(`digest-${inject('workerDb')}@`) && e.to.includes(address));
}

const subscribe = async (address: string) =>
  json<{ id: string; domains: string[] }>(
    await call('/v1/digests/admin', seed().domainAdminKey, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ address }),
    }),
    201,
  );

describe("functions/worker.ts in workerd: an admin's digest", () => {
  it('the cron sends it inline (each item with its recipient, only its reach); its links act as the key', async () => {
    const ops = `ops-inline-${inject('workerDb')}@admins.test`;
    expect((await subscribe(ops)).domains).toEqual(['example.com']);
    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, env as never);
    const [mail, ...more] = await sentTo(ops);
    expect(more).toEqual([]);
    expect(mail!.subject).toMatch(/^\d+ messages? (was|were) quarantined in example\.com$/);
    const tos = [...(mail!.text ?? '').matchAll(/^ {2}To: (\S+)$/gm)].map((m) => m[1]!);
    expect(tos.length).toBeGreaterThan(0);
    expect(tos.every((a) => a.endsWith('@example.com'))).toBe(true);
    // nothing new: the next tick sends nothing
    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, env as never);
    expect(await sentTo(ops)).toHaveLength(1);
    // a link's GET only shows the confirmation; the page says which key acts
    const release = /Release:\s+https:\/\/quarantine\.test(\/a\/\S+)/.exec(mail!.text ?? '')?.[1];
    const page = await call(release!);
    expect(page.status).toBe(200);
    expect(await page.text()).toMatch(/You act as your API key key_/);
  });

  it('with a QUEUE binding: the cron enqueues digest.admin, the consumer sends it once', async () => {
    const ops = `ops-queued-${inject('workerDb')}@admins.test`;
    await subscribe(ops);
    const queued: unknown[] = [];
    const QUEUE = { send: async (body: unknown) => void queued.push(body) };
    await worker.scheduled({ cron: '*/15 * * * *', scheduledTime: Date.now() }, { ...env, QUEUE } as never);
    const mine = queued.filter((b) => (b as { kind: string }).kind === 'digest.admin');
    expect(mine.length).toBeGreaterThan(0);
    expect(await sentTo(ops)).toHaveLength(0);
    const deliver = async () => {
      const acked: string[] = [];
      await worker.queue(
        { messages: mine.map((body, i) => ({ id: `a${i}`, body, ack: () => acked.push(`a${i}`), retry: () => {} })) },
        env as never,
      );
      return acked;
    };
    expect(await deliver()).toHaveLength(mine.length);
    expect(await sentTo(ops)).toHaveLength(1);
    await deliver(); // redelivered: already sent
    expect(await sentTo(ops)).toHaveLength(1);
  });
});
