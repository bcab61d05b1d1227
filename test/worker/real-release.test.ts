import { env } from 'cloudflare:workers';
import { describe, expect, inject, it, vi } from 'vitest';
import worker, { type WorkerEnv } from '../../functions/worker.ts';
import { BASE } from './support.ts';

interface Sent {
  from: string;
  to: string[];
  subject: string;
  text?: string;
}

// Issue 18.2 in workerd, to the end: the Worker, bound to the database a real amavisd-new quarantines
// into and to a relay in front of its AM.PDP port (test/worker/real-amavisd.ts), mails the decider
// approve / deny links for an owner's request; the link's GET changes nothing, its POST releases
// through the relay and amavisd, amavisd's sink receives the copy for the owner, the owner is told.
describe('functions/worker.ts in workerd: an emailed approve link releases through the relay to a real amavisd-new', () => {
  const db = inject('workerDb');
  const real = inject('realAmavisd')[db];
  const realEnv: WorkerEnv = { ...env, DATABASE_URL: real.url, RELAY_URL: real.relayUrl, RELAY_SECRET: real.relaySecret };
  // work after the answer (the emails) runs through waitUntil: kept, so the test can wait for it
  const background: Promise<unknown>[] = [];
  const ctx = { waitUntil: (p: Promise<unknown>) => void background.push(p), passThroughOnException() {}, props: {} };
  const settled = async () => {
    await Promise.all(background.splice(0));
  };
  const fetchWorker = (path: string, init: RequestInit & { key?: string } = {}) => {
    const headers = new Headers(init.headers);
    if (init.key) headers.set('authorization', `Bearer ${init.key}`);
    return worker.fetch(new Request(`${BASE}${path}`, { ...init, headers }), realEnv, ctx);
  };
  const postJson = (path: string, key: string, body: unknown) =>
    fetchWorker(path, { method: 'POST', key, body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
  const sent = async (): Promise<Sent[]> => {
    const res = await fetch(`${inject('resendUrl')}/emails`, { headers: { authorization: 'Bearer re_worker_test' } });
    return ((await res.json()) as { data: Sent[] }).data.filter((e) => e.from.includes(`digest-${db}@`));
  };
  const delivered = async (): Promise<Array<{ to: string[] }>> =>
    ((await (await fetch(`${real.sinkUrl}?mail_id=${real.mailId}`)).json()) as { delivered: Array<{ to: string[] }> }).delivered;
  const ownerStatus = async () => {
    const res = await fetchWorker(`/v1/quarantine/${real.id}`, { key: real.adminKey });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { recipients: Array<{ address: string; status: string }> };
    return body.recipients.find((r) => r.address === real.owner)?.status;
  };

  it('owner asks, decider GETs (nothing changes) then POSTs: amavisd delivers to the owner, who is told', async () => {
    // banned mail: the default policy lets the owner ask, not release
    const refused = await postJson(`/v1/quarantine/${real.id}/release`, real.ownerKey, {});
    expect(refused.status).toBe(403);
    const asked = await postJson(`/v1/quarantine/${real.id}/release-requests`, real.ownerKey, { note: 'my invoice' });
    expect(asked.status, await asked.clone().text()).toBe(201);
    await settled();

    const email = (await sent()).find((e) => e.to.includes(real.decider) && e.text?.includes(real.owner));
    expect(email?.subject).toBe('A release request is waiting for your decision');
    const approve = /Approve \(release it to [^)]+\):\s+https:\/\/quarantine\.test(\/a\/\S+)/.exec(email?.text ?? '')?.[1];
    expect(approve, 'an approve link in the email').toBeDefined();

    // a mail scanner's prefetch: a confirmation page, nothing released
    const shown = await fetchWorker(approve!);
    expect(shown.status).toBe(200);
    expect(await shown.text()).toContain('Approve this release request?');
    expect(await ownerStatus()).toBe('pending');
    expect(await delivered()).toEqual([]);

    const done = await fetchWorker(approve!, { method: 'POST' });
    expect(done.status, await done.clone().text()).toBe(200);
    expect(await done.text()).toContain('Approved and released');
    const copies = await vi.waitFor(
      async () => {
        const d = await delivered();
        if (d.length === 0) throw new Error('amavisd has not delivered yet');
        return d;
      },
      { timeout: 20_000, interval: 200 },
    );
    expect(copies).toEqual([{ to: [real.owner] }]);
    expect(await ownerStatus()).toBe('released');

    await settled();
    expect((await sent()).some((e) => e.to.includes(real.owner) && e.subject === 'Your release request was approved')).toBe(true);
  });
});
