import { describe, expect, inject, it, vi } from 'vitest';
import { call, json, seed } from './support.ts';

interface Sent {
  from: string;
  to: string[];
  subject: string;
  text?: string;
}

/** What this project's Worker sent to the Resend twin (the two projects share it). */
async function sentHere(): Promise<Sent[]> {
  const res = await fetch(`${inject('resendUrl')}/emails`, { headers: { authorization: 'Bearer re_worker_test' } });
  const { data } = (await res.json()) as { data: Sent[] };
  return data.filter((e) => e.from.includes(`digest-${inject('workerDb')}@`));
}

const post = (path: string, key: string, body: unknown) =>
  call(path, key, { method: 'POST', body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });

// Issue 18.2 in workerd: a new release request is mailed to the deciders (after the answer, through
// waitUntil) with signed approve / deny links; GET confirms and changes nothing, POST acts as the
// decider's key. This Worker has no release transport, so an approval stops at the transport
// (nothing changes, the request stays pending); a denial goes through and the owner is told.
describe('functions/worker.ts in workerd: release request links for deciders', () => {
  const s = seed();
  const db = inject('workerDb');

  it('the domain admin with notify_email gets approve / deny links; GET changes nothing; POST approve reaches the release verb; deny decides', async () => {
    const to = `deciders-${db}@example.org`;
    await json(
      await post('/v1/keys', s.adminKey, { name: 'decider', role: 'domain_admin', domains: ['example.com'], notify_email: to }),
      201,
    );
    const carol = await json<{ key: string }>(
      await post('/v1/keys', s.adminKey, { name: 'carol', role: 'user', mailbox: 'carol@example.com' }),
      201,
    );
    const req = await json<{ id: string; status: string }>(
      await post(`/v1/quarantine/${s.ids.banned}/release-requests`, carol.key, { note: 'my invoice' }),
      201,
    );
    const email = await vi.waitFor(
      async () => {
        const e = (await sentHere()).find((x) => x.to.includes(to) && x.text?.includes('carol@example.com'));
        if (!e) throw new Error('not mailed yet');
        return e;
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(email.subject).toBe('A release request is waiting for your decision');
    const [approve, deny] = [...(email.text ?? '').matchAll(/https:\/\/quarantine\.test(\/a\/\S+)/g)].map((m) => m[1]!);

    const status = async () =>
      (
        await json<{ items: Array<{ id: string; status: string; reason: string | null }> }>(
          await call('/v1/release-requests?status=all', s.adminKey),
        )
      ).items.find((r) => r.id === req.id);
    const shown = await call(approve!);
    expect(shown.status).toBe(200);
    expect(await shown.text()).toContain('Approve this release request?');
    expect((await status())?.status).toBe('pending');

    // POST: the release verb, as the decider; no transport here, so nothing is released and the request stays pending
    const tried = await call(approve!, undefined, { method: 'POST' });
    expect(tried.status).toBe(503);
    expect(await tried.text()).toContain('Nothing was changed');
    expect((await status())?.status).toBe('pending');
    const copy = await json<{ recipients: Array<{ address: string; status: string }> }>(
      await call(`/v1/quarantine/${s.ids.banned}`, s.adminKey),
    );
    expect(copy.recipients.find((r) => r.address === 'carol@example.com')?.status).toBe('pending');

    const denied = await call(deny!, undefined, {
      method: 'POST',
      body: new URLSearchParams({ reason: 'banned attachments stay' }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(denied.status).toBe(200);
    expect(await status()).toMatchObject({ status: 'denied', reason: 'banned attachments stay' });
    await vi.waitFor(
      async () =>
        expect((await sentHere()).some((e) => e.to.includes('carol@example.com') && e.subject === 'Your release request was denied')).toBe(
          true,
        ),
      { timeout: 15_000, interval: 100 },
    );
  });
});
