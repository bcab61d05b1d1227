// Releases whose outcome cannot be known (README: "Releases whose outcome is unknown"), on MariaDB
// and PostgreSQL, through the real AM.PDP client against a test peer that delivers (records the
// request) and then cuts the connection before its reply, or never answers. The copy must stay
// 'releasing', the attempt be audited (pending before the request, unknown after), a retry
// without force must answer 409 and never reach amavisd again, and an admin must be able to see
// it and resolve it both ways.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import type { PdpAttributes } from '../../src/amavis/pdp.ts';
import { announceUnsettledReleases } from '../../src/quarantine/attempts.ts';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer, type PeerBehaviour } from '../support/pdp-peer.ts';
import { keySession } from '../support/ui-client.ts';
import { refuseStatusWrite } from '../support/refuse.ts';

const NOW = Math.floor(Date.now() / 1000);

describe.each(VARIANTS)('unknown release outcomes on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let peer: PdpPeer;
  // changed between requests (the peer reads it at each one)
  const behaviour = { kind: 'reply' } as { kind: PeerBehaviour['kind']; reply?: (r: PdpAttributes) => PdpAttributes };
  let clockMs = Date.now();
  let dA: string;
  let adminA: string;

  const message = (rcpts: string[]) => ({
    timeNum: NOW - 100,
    content: 'S',
    sender: 'spammer@bulk.example',
    subject: 'buy now',
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
  });
  const post = (path: string, body?: unknown, key = ADMIN_KEY, headers: Record<string, string> = {}) =>
    t.get(path, key, {
      method: 'POST',
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    });
  const audit = async (mailId: string, query = '') =>
    ((await (await t.get(`/v1/audit?mail_id=${mailId}${query}`)).json()) as { items: any[] }).items;
  const deliveries = (mailId: string) => peer.requests().filter((r) => r.some(([k, v]) => k === 'mail_id' && v === mailId)).length;
  const attempts = (mailId: string) => t.handle.db.selectFrom('qe_release_attempts').selectAll().where('mail_id', '=', mailId).execute();

  beforeAll(async () => {
    peer = await startPdpPeer(behaviour as PeerBehaviour);
    t = await testApp(variantName, {
      release: directTransport(peer.hostPort, { replyTimeoutMs: 300 }),
      clock: { now: () => clockMs },
      env: { DIGEST_FROM: 'Quarantine <quarantine@gateway.example>', LINK_SECRET: 'release-unknown-link-secret-0123456789abcdef' },
    });
    f = new Fixtures(t);
    [dA] = uniqueDomains(1) as [string];
    adminA = await t.key('domain_admin', { domains: [dA] });
  });
  beforeEach(() => {
    behaviour.kind = 'reply';
    clockMs = Date.now();
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
    await peer?.close();
  });

  it('amavisd delivers, then the connection is cut before its reply: releasing, audited unknown, a retry is 409 and never reaches amavisd', async () => {
    const [id] = await f.add(message([`alice@${dA}`]));
    const mailId = id!.slice(2);
    behaviour.kind = 'close';
    const res = await post(`/v1/quarantine/${id}/release`);
    expect(res.status).toBe(502);
    const body = (await res.json()) as any;
    expect(body).toMatchObject({ code: 'release_outcome_unknown', id, recipients: [`alice@${dA}`] });
    expect(body.detail).toMatch(/may have delivered/);
    expect(deliveries(mailId)).toBe(1);
    expect(await f.rs(id!)).toEqual(['p']); // never set back to pending
    const [entry] = await audit(mailId);
    expect(entry).toMatchObject({ action: 'release', result: 'unknown', recipients: [`alice@${dA}`] });
    expect(entry.detail.error).toMatch(/connection closed before the reply was complete/);
    expect(await attempts(mailId)).toMatchObject([{ state: 'unknown', notified_at: null }]);

    // Retries without force, with or without an Idempotency-Key, by the admin or a domain admin: 409, nothing sent.
    behaviour.kind = 'reply';
    for (const [key, headers] of [
      [ADMIN_KEY, {}],
      [ADMIN_KEY, { 'idempotency-key': `retry-${mailId}` }],
      [adminA, {}],
    ] as const) {
      const again = await post(`/v1/quarantine/${id}/release`, undefined, key, headers);
      expect(again.status).toBe(409);
      expect(await again.json()).toMatchObject({ code: 'nothing_to_release', detail: expect.stringContaining('outcome is unknown') });
    }
    const named = await post(`/v1/quarantine/${id}/release`, { recipients: [`alice@${dA}`] });
    expect(named.status).toBe(409);
    const bulk = (await (await post('/v1/quarantine/bulk', { action: 'release', ids: [id] })).json()) as any;
    expect(bulk.results).toMatchObject([{ id, status: 409, error: { code: 'nothing_to_release' } }]);
    expect(deliveries(mailId)).toBe(1);
    expect(await f.rs(id!)).toEqual(['p']);

    // Seen by admins: the list's releasing filter and the audit's result filter.
    const listed = (await (await t.get(`/v1/quarantine?status=releasing&domain=${dA}`)).json()) as any;
    expect(listed.items.map((i: any) => i.id)).toContain(id);
    expect(listed.items.find((i: any) => i.id === id).recipients).toMatchObject([{ address: `alice@${dA}`, status: 'releasing' }]);
    expect((await audit(mailId, '&result=pending,unknown')).map((e) => e.result)).toEqual(['unknown']);

    // Way out 1: mark released (admins only; nothing delivered).
    expect((await post(`/v1/quarantine/${id}/mark-released`, { recipients: [`alice@${dA}`] }, adminA)).status).toBe(403);
    const marked = await post(`/v1/quarantine/${id}/mark-released`, { recipients: [`alice@${dA}`], note: 'seen in the mail log' });
    expect(marked.status).toBe(200);
    expect(await marked.json()).toEqual({ id, marked: [`alice@${dA}`] });
    expect(await f.rs(id!)).toEqual(['R']);
    expect(deliveries(mailId)).toBe(1);
    expect(await attempts(mailId)).toEqual([]);
    expect((await audit(mailId)).map((e) => [e.action, e.result])).toEqual([
      ['mark_released', 'ok'],
      ['release', 'unknown'],
    ]);
    expect((await post(`/v1/quarantine/${id}/mark-released`, { recipients: [`alice@${dA}`] })).status).toBe(409);
  });

  it('a timeout waiting for amavisd is unknown too; way out 2: release again with force, settled once', async () => {
    const [id] = await f.add(message([`bob@${dA}`]));
    const mailId = id!.slice(2);
    behaviour.kind = 'silent';
    const res = await post(`/v1/quarantine/${id}/release`);
    expect(res.status).toBe(502);
    expect(await res.json()).toMatchObject({
      code: 'release_outcome_unknown',
      detail: expect.stringContaining('no complete reply within 300 ms'),
    });
    expect(await f.rs(id!)).toEqual(['p']);
    expect((await audit(mailId))[0]).toMatchObject({ result: 'unknown' });

    // A forced attempt that amavisd refuses leaves the copy releasing: the first outcome is still unknown.
    behaviour.kind = 'reply';
    behaviour.reply = () => [['setreply', '450 4.5.0 Failure: sink said no']];
    const refused = await post(`/v1/quarantine/${id}/release`, { recipients: [`bob@${dA}`], force: true });
    expect(refused.status).toBe(502);
    expect(await f.rs(id!)).toEqual(['p']);
    behaviour.reply = undefined;
    const forced = await post(`/v1/quarantine/${id}/release`, { recipients: [`bob@${dA}`], force: true });
    expect(forced.status).toBe(200);
    expect(await f.rs(id!)).toEqual(['R']);
    expect(deliveries(mailId)).toBe(3);
    expect(await attempts(mailId)).toEqual([]);
    expect((await audit(mailId)).map((e) => e.result)).toEqual(['ok', 'failed', 'unknown']);
  });

  it('announces an unsettled attempt once, after RELEASE_UNKNOWN_AFTER_MINUTES, as quarantine.release_unknown', async () => {
    await t.handle.db
      .insertInto('qe_webhooks')
      .values({
        id: `wh_unknown_${variantName}`,
        url: 'https://hooks.example/unknown',
        secret: 'whsec_dGVzdHRlc3R0ZXN0dGVzdA==',
        events: JSON.stringify(['quarantine.release_unknown']),
        domains: null,
        description: null,
        created_at: NOW,
        disabled_at: null,
        created_by: 'test',
        disabled_reason: null,
      })
      .execute();
    const [id] = await f.add(message([`carol@${dA}`]));
    const mailId = id!.slice(2);
    behaviour.kind = 'reset';
    expect((await post(`/v1/quarantine/${id}/release`)).status).toBe(502);
    const events = async () =>
      (
        await t.handle.db
          .selectFrom('qe_webhook_events')
          .select(['type', 'payload'])
          .where('type', '=', 'quarantine.release_unknown')
          .execute()
      )
        .map((e) => JSON.parse(e.payload))
        .filter((p) => p.data.mail.id === id);
    clockMs += 14 * 60_000;
    await announceUnsettledReleases(t.deps);
    expect(await events()).toEqual([]);
    clockMs += 2 * 60_000;
    await announceUnsettledReleases(t.deps);
    await announceUnsettledReleases(t.deps);
    const sent = await events();
    expect(sent).toHaveLength(1);
    expect(sent[0].data).toMatchObject({
      mail: { id, recipients: [{ address: `carol@${dA}` }] },
      attempt: { state: 'unknown' },
      resolve: { mark_released: expect.stringContaining('mark-released'), release_again: expect.stringContaining('"force": true') },
    });
    expect(deliveries(mailId)).toBe(1);
  });

  it('the pages show it: the releasing filter, the box on the message, and the admin resolves it there', async () => {
    const [id] = await f.add(message([`ivan@${dA}`]));
    behaviour.kind = 'close';
    expect((await post(`/v1/quarantine/${id}/release`)).status).toBe(502);
    behaviour.kind = 'reply';
    const admin = await keySession(t.app, ADMIN_KEY);
    const list = await admin.page(`/ui/quarantine?status=releasing&domain=${dA}`);
    expect(list.res.status).toBe(200);
    expect(list.html).toContain(`/ui/quarantine/${id}`);
    const detail = await admin.page(`/ui/quarantine/${id}`);
    expect(detail.html).toContain('Release outcome unknown');
    expect(detail.html).toContain(`action="/ui/quarantine/${id}/mark-released"`);
    expect(detail.html).toMatch(/name="force" value="1"/);
    const domainAdmin = await keySession(t.app, adminA);
    const theirs = await domainAdmin.page(`/ui/quarantine/${id}`);
    expect(theirs.html).toContain('Release outcome unknown');
    expect(theirs.html).not.toContain('mark-released');
    const res = await admin.post(`/ui/quarantine/${id}/mark-released`, { csrf: detail.csrf!, recipients: [`ivan@${dA}`] });
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toContain('done=marked_released');
    expect(await f.rs(id!)).toEqual(['R']);
    expect(deliveries(id!.slice(2))).toBe(1);
  });

  it('the database refuses the status write after amavisd answered: the bulk answers per id, the audit keeps the attempt, the copy stays releasing', async () => {
    const ids = await f.add(message([`dave@${dA}`]), message([`erin@${dA}`]), message([`frank@${dA}`]));
    const refused = ids[1]!.slice(2);
    const drop = await refuseStatusWrite(t, refused);
    try {
      const res = await post('/v1/quarantine/bulk', { action: 'release', ids });
      expect(res.status).toBe(200);
      const { results } = (await res.json()) as any;
      expect(results.map((r: any) => [r.id, r.status])).toEqual([
        [ids[0], 200],
        [ids[1], 502],
        [ids[2], 200],
      ]);
      expect(results[1].error).toMatchObject({ code: 'release_outcome_unknown', results: [{ recipient: `erin@${dA}`, released: true }] });
      expect(await f.rs(ids[1]!)).toEqual(['p']);
      expect((await audit(refused))[0]).toMatchObject({ action: 'release', result: 'unknown', detail: { results: [{ released: true }] } });
      // A delete refused for one id: that id's own 500, the rest done.
      const more = await f.add(message([`gina@${dA}`]), message([`hank@${dA}`]));
      const drop2 = await refuseStatusWrite(t, more[0]!.slice(2), 'D');
      try {
        const del = await post('/v1/quarantine/bulk', { action: 'delete', ids: more });
        expect(del.status).toBe(200);
        expect(((await del.json()) as any).results.map((r: any) => [r.status, r.error?.code ?? null])).toEqual([
          [500, 'internal'],
          [200, null],
        ]);
      } finally {
        await drop2();
      }
    } finally {
      await drop();
    }
    expect(deliveries(refused)).toBe(1);
  });
});
