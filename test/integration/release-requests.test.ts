import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { releaseTransportFor } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import { signLink } from '../../src/digest/links.ts';
import { Problem } from '../../src/api/schemas.ts';
import { ReleaseAnswer } from '../../src/api/routes/quarantine-actions.ts';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { keySession, portalSession } from '../support/ui-client.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

const NOW = Math.floor(Date.now() / 1000);
const SECRET = 'release-requests-link-secret-0123456789abcdef';

// Issue 18.2: owners ask for what their release policy says `request` (virus, banned by default);
// admins and the domain's domain admins decide. Releases go over AM.PDP to the test peer.
describe.each(VARIANTS)('release requests on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let peer: PdpPeer;
  let mail: ResendTwin;
  let dA: string, dB: string;
  let adminA: string, adminB: string, userAlice: string, userBob: string;
  let alice: string;
  let hookId: string;

  const message = (rcpts: string[], content: string, subject = `${content} mail`) => ({
    timeNum: NOW - 100,
    content,
    sender: 'someone@sender.example',
    subject,
    spamLevel: 0,
    recipients: rcpts.map((address) => ({ address })),
  });
  const call = (method: string, path: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(path, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const ask = (id: string, key: string, body?: unknown) => call('POST', `/v1/quarantine/${id}/release-requests`, body, key);
  const events = async (requestId: string) => {
    const { rows } = await sql<{
      type: string;
      payload: string;
    }>`SELECT type, payload FROM qe_webhook_events ORDER BY created_at, id`.execute(t.handle.db);
    return rows
      .filter((r) => r.payload.includes(requestId))
      .map((r) => ({ type: r.type, data: (JSON.parse(r.payload) as { data: any }).data }));
  };

  beforeAll(async () => {
    peer = await startPdpPeer({ kind: 'reply' });
    mail = await startResendTwin();
    t = await testApp(variantName, {
      release: releaseTransportFor(parseConfig({ AMAVISD_PDP: peer.hostPort }))!,
      env: {
        LINK_SECRET: SECRET,
        WEBHOOK_ALLOW_PRIVATE: '1',
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: mail.url,
        DIGEST_FROM: 'Quarantine <q@example.test>',
      },
    });
    f = new Fixtures(t);
    [dA, dB] = uniqueDomains(2) as [string, string];
    alice = `alice@${dA}`;
    adminA = await t.key('domain_admin', { domains: [dA] });
    adminB = await t.key('domain_admin', { domains: [dB] });
    userAlice = await t.key('user', { mailbox: alice });
    userBob = await t.key('user', { mailbox: `bob@${dB}` });
    const hook = await call('POST', '/v1/webhooks', {
      url: 'http://127.0.0.1:9/hook',
      events: ['quarantine.release_requested', 'quarantine.release_request_decided'],
    });
    hookId = ((await hook.json()) as { id: string }).id;
  });
  afterAll(async () => {
    if (hookId) await call('DELETE', `/v1/webhooks/${hookId}`);
    await f?.cleanup();
    await t?.close();
    await peer?.close();
    await mail?.close();
  });
  const mailTo = (address: string, subject: string) => mail.emails.filter((e) => e.to[0] === address && e.subject === subject);

  it('an owner asks once (201, then 200 with the same request); an admin approves: released over AM.PDP, audit names both', async () => {
    const [id] = await f.add(message([alice, `bob@${dB}`], 'V', 'invoice virus'));
    const first = await ask(id!, userAlice, { note: 'I expect this invoice' });
    expect(first.status).toBe(201);
    const req = (await first.json()) as any;
    expect(req).toMatchObject({
      mail_id: id,
      recipient: alice,
      status: 'pending',
      note: 'I expect this invoice',
      requested_by: expect.stringMatching(/^key:/),
    });
    const again = await ask(id!, userAlice);
    expect(again.status).toBe(200);
    expect(((await again.json()) as any).id).toBe(req.id);
    expect(
      Number(
        (await sql<{ n: number }>`SELECT count(*) AS n FROM qe_release_requests WHERE id = ${req.id}`.execute(t.handle.db)).rows[0]!.n,
      ),
    ).toBe(1);

    // listed for the owner, the domain admin of dA, admins; not for dB's domain admin
    const listed = async (key: string) =>
      ((await (await call('GET', '/v1/release-requests', undefined, key)).json()) as any).items.map((x: any) => x.id);
    expect(await listed(userAlice)).toContain(req.id);
    expect(await listed(adminA)).toContain(req.id);
    expect(await listed(ADMIN_KEY)).toContain(req.id);
    expect(await listed(adminB)).not.toContain(req.id);
    expect(await listed(userBob)).not.toContain(req.id);
    // an owner cannot approve their own request
    expect((await call('POST', `/v1/release-requests/${req.id}/approve`, undefined, userAlice)).status).toBe(404);

    const before = peer.received.length;
    const approved = await call('POST', `/v1/release-requests/${req.id}/approve`, undefined, adminA);
    expect(approved.status).toBe(200);
    expect(ReleaseAnswer.parse(await approved.json())).toMatchObject({
      status: 'released',
      results: [{ recipient: alice, released: true }],
    });
    const sent = peer.requests().slice(before);
    expect(sent).toHaveLength(1);
    expect(sent[0]!.filter(([k]) => k === 'recipient').map(([, v]) => v)).toEqual([alice]); // the requester's copy only
    expect(await f.rs(id!)).toEqual(['R', ' ']);

    const decided = ((await (await call('GET', '/v1/release-requests?status=approved', undefined, userAlice)).json()) as any).items;
    expect(decided.find((x: any) => x.id === req.id)).toMatchObject({ status: 'approved', decided_by: expect.stringMatching(/^key:/) });
    const audit = ((await (await t.get(`/v1/audit?mail_id=${id!.slice(2)}`)).json()) as any).items;
    const approval = audit.find((a: any) => a.action === 'release_request_approve');
    expect(approval).toMatchObject({ actor_role: 'domain_admin', result: 'ok' });
    expect(approval.detail).toMatchObject({ request_id: req.id, requested_by: req.requested_by });
    expect(audit.find((a: any) => a.action === 'release')).toMatchObject({ actor_role: 'domain_admin', result: 'ok', recipients: [alice] });
    expect(audit.find((a: any) => a.action === 'release_request')).toMatchObject({ actor_role: 'user' });
    // the owner hears of it (after the answer, through the configured mailer)
    await vi.waitFor(() => expect(mailTo(alice, 'Your release request was approved')).toHaveLength(1), { timeout: 15_000, interval: 50 });
    expect(mailTo(alice, 'Your release request was approved')[0]!.text).toContain('invoice virus');

    expect((await events(req.id)).map((e) => e.type).sort()).toEqual([
      'quarantine.release_request_decided',
      'quarantine.release_requested',
    ]);
    // decided once
    expect(Problem.parse(await (await call('POST', `/v1/release-requests/${req.id}/approve`, undefined, ADMIN_KEY)).json())).toMatchObject({
      code: 'conflict',
    });
  });

  it("the admins' Release requests page: lists its scope's pending requests, approves (released) and denies with a reason", async () => {
    // its own owner, so the decision emails do not mix with the other tests' (they count alice's)
    const carol = `carol@${dA}`;
    const userCarol = await t.key('user', { mailbox: carol });
    const [approveMe] = await f.add(message([carol], 'V', 'page approve'));
    const [denyMe] = await f.add(message([carol], 'B', 'page deny'));
    for (const id of [approveMe!, denyMe!]) expect((await ask(id, userCarol)).status).toBe(201);
    const listed = async (key: string) => {
      const b = await keySession(t.app, key);
      const { csrf } = await b.page('/ui/quarantine'); // the session's form token
      return { b, ...(await b.page('/ui/requests')), csrf };
    };
    // another domain's domain admin sees neither, and cannot approve them
    const other = await listed(adminB);
    expect(other.res.status).toBe(200);
    expect(other.html).not.toContain(approveMe!);
    const pending = (await call('GET', '/v1/release-requests?limit=200', undefined, adminA).then((r) => r.json())) as {
      items: Array<{ id: string; mail_id: string }>;
    };
    const reqOf = (id: string) => pending.items.find((r) => r.mail_id === id)!.id;
    expect((await other.b.post(`/ui/requests/${reqOf(approveMe!)}/approve`, { csrf: other.csrf! })).status).toBe(404);
    // the domain's admin: listed with a link to the message; approve releases it
    const mine = await listed(adminA);
    expect(mine.html).toContain(`/ui/quarantine/${approveMe}`);
    expect(mine.html).toMatch(/href="\/ui\/requests"/); // in the navigation
    const before = peer.requests().length;
    const approved = await mine.b.post(`/ui/requests/${reqOf(approveMe!)}/approve`, { csrf: mine.csrf! });
    expect(approved.status).toBe(303);
    expect(approved.headers.get('location')).toBe('/ui/requests?done=approved');
    expect(peer.requests().length).toBe(before + 1);
    expect(await f.rs(approveMe!)).toEqual(['R']);
    // deny needs a reason
    expect((await mine.b.post(`/ui/requests/${reqOf(denyMe!)}/deny`, { csrf: mine.csrf!, reason: ' ' })).status).toBe(400);
    const denied = await mine.b.post(`/ui/requests/${reqOf(denyMe!)}/deny`, { csrf: mine.csrf!, reason: 'not a real invoice' });
    expect(denied.status).toBe(303);
    const after = (await call('GET', '/v1/release-requests?status=all&limit=200', undefined, adminA).then((r) => r.json())) as {
      items: Array<{ mail_id: string; status: string; reason: string | null }>;
    };
    expect(after.items.find((r) => r.mail_id === denyMe)).toMatchObject({ status: 'denied', reason: 'not a real invoice' });
    expect(await f.rs(denyMe!)).toEqual([' ']);
    // a mailbox owner has no such page
    const owner = await portalSession(t.app, SECRET, carol, NOW + 3600);
    expect((await owner.page('/ui/requests')).res.status).toBe(404);
  });

  it('deny records the reason; a domain admin of another domain gets 404; bad input names the field', async () => {
    const [id] = await f.add(message([alice], 'B', '<b>payroll</b> banned'));
    const req = (await (await ask(id!, userAlice)).json()) as any;
    expect((await call('POST', `/v1/release-requests/${req.id}/deny`, { reason: 'no' }, adminB)).status).toBe(404);
    expect((await call('POST', `/v1/release-requests/${req.id}/approve`, undefined, adminB)).status).toBe(404);
    const empty = await call('POST', `/v1/release-requests/${req.id}/deny`, { reason: '' }, adminA);
    expect(empty.status).toBe(400);
    expect(((await empty.json()) as any).field).toMatch(/reason/);
    expect((await ask(id!, userAlice, { note: 'x'.repeat(1001) })).status).toBe(400);

    const denied = await call('POST', `/v1/release-requests/${req.id}/deny`, { reason: 'payroll files are never released' }, adminA);
    expect(denied.status).toBe(200);
    expect(await denied.json()).toMatchObject({ id: req.id, status: 'denied', reason: 'payroll files are never released' });
    const row = await t.handle.db.selectFrom('qe_release_requests').selectAll().where('id', '=', req.id).executeTakeFirstOrThrow();
    expect(row).toMatchObject({ status: 'denied', reason: 'payroll files are never released' });
    expect(await f.rs(id!)).toEqual([' ']); // nothing released
    const decided = (await events(req.id)).find((e) => e.type === 'quarantine.release_request_decided');
    expect(decided?.data.request).toMatchObject({ decision: 'denied', reason: 'payroll files are never released' });
    await vi.waitFor(() => expect(mailTo(alice, 'Your release request was denied')).toHaveLength(1), { timeout: 15_000, interval: 50 });
    const told = mailTo(alice, 'Your release request was denied')[0]!;
    expect(told.text).toContain('Reason:  payroll files are never released');
    expect(told.html).toContain('&lt;b&gt;payroll&lt;&#x2F;b&gt; banned');
    expect(told.html).not.toContain('<b>payroll');
    // asking again answers the denied request
    const again = await ask(id!, userAlice);
    expect(again.status).toBe(200);
    expect(await again.json()).toMatchObject({ id: req.id, status: 'denied' });
  });

  it('only where the policy says request: spam is released by the owner, admins do not ask; the digest link records a request on POST only', async () => {
    const [spam, virus] = await f.add(message([alice], 'S'), message([alice], 'V', 'linked virus'));
    expect(Problem.parse(await (await ask(spam!, userAlice)).json())).toMatchObject({ code: 'conflict' });
    expect((await ask(virus!, adminA)).status).toBe(403);

    const tok = await signLink(SECRET, {
      action: 'request',
      partitionTag: 0,
      mailId: virus!.slice(2),
      recipient: alice,
      expires: NOW + 3600,
    });
    const shown = await t.app.request(`/a/${tok}`);
    expect(shown.status).toBe(200);
    expect(await shown.text()).toContain('Ask for its release');
    const count = async () =>
      Number(
        (
          await sql<{ n: number }>`SELECT count(*) AS n FROM qe_release_requests
      WHERE recipient = ${alice} AND mail_id = ${virus!.slice(2)}`.execute(t.handle.db)
        ).rows[0]!.n,
      );
    expect(await count()).toBe(0); // GET changed nothing
    const posted = await t.app.request(`/a/${tok}`, { method: 'POST' });
    expect(posted.status).toBe(200);
    expect(await posted.text()).toContain('Release requested');
    expect(await count()).toBe(1);
    expect(await (await t.app.request(`/a/${tok}`, { method: 'POST' })).text()).toContain('Already requested');
    expect(await count()).toBe(1);

    // the owner's page offers Request release instead of Release, and records one
    const [banned] = await f.add(message([alice], 'B', 'page banned'));
    const b = await portalSession(t.app, SECRET, alice, NOW + 3600);
    const page = await b.page(`/ui/quarantine/${banned}`);
    expect(page.html).toContain('>Request release</button>');
    expect(page.html).not.toContain('>Release</button>');
    const res = await b.post(`/ui/quarantine/${banned}/release-request`, { csrf: page.csrf! });
    expect(res.headers.get('location')).toContain('done=requested');
    const mine = ((await (await call('GET', '/v1/release-requests', undefined, userAlice)).json()) as any).items;
    expect(mine.find((x: any) => x.mail_id === banned)).toMatchObject({ status: 'pending', requested_by: `portal:${alice}` });
  });
});
