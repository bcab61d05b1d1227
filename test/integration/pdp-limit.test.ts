// One bound on concurrent AM.PDP connections per process (AMAVISD_PDP_CONCURRENCY, default 4),
// counted where it matters: at the AM.PDP peer. Five parallel bulk requests through the API (as
// `serve` builds its transport from the environment) and parallel requests through the relay
// never hold more; past the bounded wait a release is 503 amavisd_busy with Retry-After, and
// nothing of it was recorded or sent.
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { releaseTransportFor } from '../../functions/node.ts';
import { startRelay } from '../../functions/relay.ts';
import { parseConfig } from '../../src/config.ts';
import type { Logger } from '../../src/deps.ts';
import { relayTransport } from '../../src/release/relay-protocol.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';

const NOW = Math.floor(Date.now() / 1000);
const quiet: Logger = { info() {}, warn() {}, error() {} };
const message = (address: string) => ({
  timeNum: NOW - 100,
  content: 'S',
  sender: 'spammer@bulk.example',
  subject: 'buy now',
  spamLevel: 9,
  recipients: [{ address }],
});

describe.each(['mysql-upstream', 'pg-upstream'] as const)('AM.PDP concurrency on %s', (variantName) => {
  let peer: PdpPeer;
  const apps: TestApp[] = [];
  const fixtures: Fixtures[] = [];
  let domain: string;

  const app = async (env: Record<string, string>) => {
    const t = await testApp(variantName, { release: releaseTransportFor(parseConfig({ AMAVISD_PDP: peer.hostPort, ...env }))! });
    apps.push(t);
    const f = new Fixtures(t);
    fixtures.push(f);
    return { t, f };
  };
  const bulk = (t: TestApp, ids: string[]) =>
    t.get('/v1/quarantine/bulk', ADMIN_KEY, {
      method: 'POST',
      body: JSON.stringify({ action: 'release', ids }),
      headers: { 'content-type': 'application/json' },
    });

  beforeAll(async () => {
    // each release holds its connection for 80 ms, so parallel ones overlap
    peer = await startPdpPeer({ kind: 'reply', delayMs: 80 });
    [domain] = uniqueDomains(1) as [string];
  });
  afterEach(() => {
    peer.maxOpen = peer.open;
  });
  afterAll(async () => {
    for (const f of fixtures) await f.cleanup();
    for (const t of apps) await t.close();
    await peer?.close();
  });

  it('five parallel bulk releases never hold more than 4 connections (the default), and all are released', async () => {
    const { t, f } = await app({});
    const all = await f.add(...Array.from({ length: 30 }, (_, i) => message(`u${i}@${domain}`)));
    const batches = Array.from({ length: 5 }, (_, b) => all.slice(b * 6, b * 6 + 6));
    const before = peer.received.length;
    const answers = await Promise.all(batches.map((ids) => bulk(t, ids)));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(((await a.json()) as any).results.map((r: any) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    }
    expect(peer.received.length - before).toBe(30);
    expect(peer.maxOpen).toBeLessThanOrEqual(4);
  });

  it('past the bounded wait: 503 amavisd_busy with Retry-After; the copy untouched and nothing audited', async () => {
    const { t, f } = await app({ AMAVISD_PDP_CONCURRENCY: '1', AMAVISD_PDP_WAIT_SECONDS: '0' });
    const [a, b] = await f.add(message(`busy-a@${domain}`), message(`busy-b@${domain}`));
    const release = (id: string) => t.get(`/v1/quarantine/${id}/release`, ADMIN_KEY, { method: 'POST' });
    const [ra, rb] = await Promise.all([release(a!), release(b!)]);
    const busy = ra.status === 503 ? ra : rb;
    expect([ra.status, rb.status].sort()).toEqual([200, 503]);
    expect(busy.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
    expect(await busy.json()).toMatchObject({ code: 'amavisd_busy', detail: expect.stringContaining('AMAVISD_PDP_CONCURRENCY') });
    const busyId = busy === ra ? a! : b!;
    expect(await f.rs(busyId)).toEqual([' ']);
    const entries = ((await (await t.get(`/v1/audit?mail_id=${busyId.slice(2)}`)).json()) as any).items;
    expect(entries).toEqual([]);
    expect(peer.maxOpen).toBeLessThanOrEqual(1);
  });

  it('through a relay whose slots are full: 503 amavisd_busy, the copy back to pending, the attempt settled "not sent", no release_failed event', async () => {
    const SECRET = 'relay-busy-secret-0123456789abcdef0123';
    // its own peer, holding each release 3 s: the second request reaches the relay's one slot
    // while the first holds it, however slowly the machine runs the claims before them
    const slow = await startPdpPeer({ kind: 'reply', delayMs: 3000 });
    const tight = await startRelay({ secret: SECRET, pdp: slow.hostPort, log: quiet, limit: { max: 1, maxWaitMs: 0 } });
    try {
      const t = await testApp(variantName, { release: relayTransport(tight.url, SECRET) });
      apps.push(t);
      const f = new Fixtures(t);
      fixtures.push(f);
      // a subscriber for this test's domain only, so release_failed events would be written
      const [hookDomain] = uniqueDomains(1) as [string];
      await t.handle.db
        .insertInto('qe_webhooks')
        .values({
          id: `wh_busy_${variantName}`,
          url: 'https://hooks.example/busy',
          secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdA==',
          events: JSON.stringify(['quarantine.released', 'quarantine.release_failed']),
          domains: JSON.stringify([hookDomain]),
          description: null,
          created_at: NOW,
          disabled_at: null,
          created_by: 'test',
          disabled_reason: null,
        })
        .execute();
      const [a, b] = await f.add(message(`busy-a@${hookDomain}`), message(`busy-b@${hookDomain}`));
      const release = (id: string) => t.get(`/v1/quarantine/${id}/release`, ADMIN_KEY, { method: 'POST' });
      const [ra, rb] = await Promise.all([release(a!), release(b!)]);
      expect([ra.status, rb.status].sort(), `${await ra.clone().text()} ${await rb.clone().text()}`).toEqual([200, 503]);
      const busy = ra.status === 503 ? ra : rb;
      expect(busy.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      expect(await busy.json()).toMatchObject({ code: 'amavisd_busy' });
      const [busyId, doneId] = busy === ra ? [a!, b!] : [b!, a!];
      expect(await f.rs(busyId)).toEqual([' ']);
      const entries = ((await (await t.get(`/v1/audit?mail_id=${busyId.slice(2)}`)).json()) as any).items;
      expect(entries).toHaveLength(1);
      expect(entries[0]).toMatchObject({ action: 'release', result: 'failed' });
      expect(JSON.stringify(entries[0].detail)).toContain('not sent');
      const events = (
        await t.handle.db.selectFrom('qe_webhook_events').select(['type', 'payload']).where('domains', '=', `,${hookDomain},`).execute()
      ).map((e) => [e.type, JSON.parse(String(e.payload)).data.mail.id]);
      expect(events).toEqual([['quarantine.released', doneId]]);
    } finally {
      await tight.close();
      await slow.close();
    }
  });
});

describe('AM.PDP concurrency at the relay', () => {
  const SECRET = 'relay-limit-secret-0123456789abcdef0123';
  const req = (i: number) => ({
    partitionTag: 0,
    mailId: 'hZbBr1WxS3sy',
    secretId: 'AQIDBAUGBwgJ',
    recipients: [`r${i}@example.com`],
    requestedBy: 'postmaster@example.com',
  });

  it('holds at most its AMAVISD_PDP_CONCURRENCY connections; past the wait, a signed 503 the API maps to amavisd_busy', async () => {
    const peer = await startPdpPeer({ kind: 'reply', delayMs: 80 });
    const relay = await startRelay({ secret: SECRET, pdp: peer.hostPort, log: quiet, limit: { max: 2, maxWaitMs: 5000 } });
    const tight = await startRelay({ secret: SECRET, pdp: peer.hostPort, log: quiet, limit: { max: 1, maxWaitMs: 0 } });
    try {
      const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => relayTransport(relay.url, SECRET).release(req(i))));
      expect(replies.every((r) => r.released)).toBe(true);
      expect(peer.received).toHaveLength(8);
      expect(peer.maxOpen).toBeLessThanOrEqual(2);

      const outcomes = await Promise.allSettled([0, 1].map((i) => relayTransport(tight.url, SECRET).release(req(i))));
      const refused = outcomes.filter((o) => o.status === 'rejected');
      expect(refused).toHaveLength(1);
      expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({
        code: 'amavisd_busy',
        extra: { retryAfter: expect.any(Number) },
      });
      expect(peer.received).toHaveLength(9);
    } finally {
      await relay.close();
      await tight.close();
      await peer.close();
    }
  });
});
