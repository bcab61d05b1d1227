import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { releaseTransportFor } from '../../functions/node.ts';
import { bind } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { VARIANTS } from '../support/databases.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { withStateApart } from '../support/state-apart.ts';
import { startPdpPeer, type PdpPeer } from '../support/pdp-peer.ts';
import { keySession, portalSession } from '../support/ui-client.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

// sa-learn (the message page's report buttons) takes about a second per message
vi.setConfig({ testTimeout: 60_000 });

const NOW = Math.floor(Date.now() / 1000);
const SECRET = 'request-decider-links-secret-0123456789abcdef';
const PUBLIC = 'http://qe.test';

// Issue 18.2: the deciders (keys with notify_email) are mailed each new release request with signed
// approve / deny links: GET confirms and changes nothing, POST acts as that key; a revoked key's
// links are dead; a request for mail no longer in the quarantine cannot be approved. The pages:
// "Release requests (n)" in the navigation, report buttons on the message page.
// every variant with our tables in amavisd's database, then the state apart both ways
describe.each(withStateApart(VARIANTS, 'rl'))('release request links for deciders on $name', ({ variantName, stateApart }) => {
  let t: TestApp;
  let f: Fixtures;
  let peer: PdpPeer;
  let mail: ResendTwin;
  let dir: string;
  let dA: string, dB: string;
  let alice: string, bob: string;
  let userAlice: string;
  const keys: Record<string, { id: string; key: string; to: string }> = {};

  const call = (method: string, p: string, body?: unknown, key = ADMIN_KEY) =>
    t.get(p, key, {
      method,
      body: body === undefined ? undefined : JSON.stringify(body),
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
    });
  const message = (rcpts: string[], content: string, subject: string) => ({
    timeNum: NOW - 100,
    content,
    sender: 'someone@sender.example',
    subject,
    spamLevel: 0,
    recipients: rcpts.map((address) => ({ address })),
    raw: `From: someone@sender.example\r\nSubject: ${subject}\r\nMessage-ID: <${crypto.randomUUID()}@sender.example>\r\n\r\nThe quarterly figures you asked for, ${subject}, attached as discussed in our meeting.\r\n`,
  });
  const ask = async (id: string) => {
    const r = await call('POST', `/v1/quarantine/${id}/release-requests`, {}, userAlice);
    expect(r.status).toBe(201);
    return (await r.json()) as { id: string };
  };
  const requestRow = (id: string) =>
    t.state.db.selectFrom('qe_release_requests').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  /** the approve and deny links of the email `to` got about the message with this subject */
  const linksIn = async (to: string, subject: string) => {
    const email = await vi.waitFor(
      () => {
        const e = mail.emails.find((x) => x.to[0] === to && x.text?.includes(subject));
        if (!e) throw new Error(`no email to ${to} about ${subject}`);
        return e;
      },
      { timeout: 15_000, interval: 50 },
    );
    const urls = [...(email.text ?? '').matchAll(/http:\/\/qe\.test(\/a\/\S+)/g)].map((m) => m[1]!);
    return { email, approve: urls[0]!, deny: urls[1]! };
  };
  const auditOf = async (id: string) => ((await (await t.get(`/v1/audit?mail_id=${id.slice(2)}`)).json()) as { items: any[] }).items;

  beforeAll(async () => {
    peer = await startPdpPeer({ kind: 'reply' });
    mail = await startResendTwin();
    dir = mkdtempSync(path.join(tmpdir(), 'qe-decider-bayes-'));
    t = await testApp(variantName, {
      stateApart,
      release: releaseTransportFor(parseConfig({ AMAVISD_PDP: peer.hostPort }))!,
      env: {
        LINK_SECRET: SECRET,
        PUBLIC_URL: PUBLIC,
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: mail.url,
        DIGEST_FROM: 'Quarantine <q@example.test>',
        SA_LEARN_COMMAND: `sa-learn --dbpath ${dir}/bayes --{kind} -`,
      },
    });
    f = new Fixtures(t);
    [dA, dB] = uniqueDomains(2) as [string, string];
    alice = `alice@${dA}`;
    bob = `bob@${dB}`;
    userAlice = await t.key('user', { mailbox: alice });
    const make = async (name: string, body: Record<string, unknown>) => {
      const to = `${name.toLowerCase()}@deciders-${dA}`;
      const r = await call('POST', '/v1/keys', { name, ...body, notify_email: to });
      expect(r.status).toBe(201);
      const k = (await r.json()) as { id: string; key: string; notify_email: string };
      expect(k.notify_email).toBe(to);
      keys[name] = { id: k.id, key: k.key, to };
    };
    await make('admin', { role: 'admin' });
    await make('adminA', { role: 'domain_admin', domains: [dA] });
    await make('adminA2', { role: 'domain_admin', domains: [dA] });
    await make('adminB', { role: 'domain_admin', domains: [dB] });
  });
  afterAll(async () => {
    // an admin key with notify_email hears of every request: revoked, so other files' apps never mail it
    for (const k of Object.values(keys)) await call('DELETE', `/v1/keys/${k.id}`);
    await f?.cleanup();
    await t?.close();
    await peer?.close();
    await mail?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("admins and the domain's admins are mailed approve / deny links; GET changes nothing; POST approves: released, audit names both, owner told", async () => {
    const [id] = await f.add(message([alice], 'V', 'links approve <i>virus</i>'));
    const req = await ask(id!);
    const { email, approve, deny } = await linksIn(keys.adminA!.to, 'links approve');
    expect(email.subject).toBe('A release request is waiting for your decision');
    expect(email.html).toContain('links approve &lt;i&gt;virus&lt;&#x2F;i&gt;'); // the sender's subject, escaped
    expect(approve).toMatch(/^\/a\//);
    expect(deny).toMatch(/^\/a\//);
    await linksIn(keys.admin!.to, 'links approve');
    // another domain's domain admin is not told
    expect(mail.emails.some((e) => e.to[0] === keys.adminB!.to && e.text?.includes('links approve'))).toBe(false);

    const before = peer.requests().length;
    const shown = await t.app.request(approve);
    expect(shown.status).toBe(200);
    const html = await shown.text();
    expect(html).toContain('Approve this release request?');
    expect(html).toContain(alice);
    expect(html).toContain('Approve and release');
    expect(html).not.toContain('<i>virus'); // escaped here too
    // GET changed nothing: no release, no audit row, still pending
    expect(peer.requests().length).toBe(before);
    expect(await f.rs(id!)).toEqual([' ']);
    expect((await requestRow(req.id)).status).toBe('pending');
    expect((await auditOf(id!)).some((a) => a.action === 'release_request_approve')).toBe(false);

    const done = await t.app.request(approve, { method: 'POST' });
    expect(done.status).toBe(200);
    expect(await done.text()).toContain('Approved and released');
    expect(peer.requests().length).toBe(before + 1);
    expect(await f.rs(id!)).toEqual(['R']);
    expect(await requestRow(req.id)).toMatchObject({ status: 'approved', decided_by: `key:${keys.adminA!.id}` });
    const audit = await auditOf(id!);
    expect(audit.find((a) => a.action === 'release_request_approve')).toMatchObject({
      actor: `key:${keys.adminA!.id}`,
      actor_role: 'domain_admin',
      detail: { request_id: req.id, requested_by: expect.stringMatching(/^key:/) },
    });
    expect(audit.find((a) => a.action === 'release')).toMatchObject({ actor: `key:${keys.adminA!.id}`, result: 'ok', recipients: [alice] });
    await vi.waitFor(
      () => expect(mail.emails.filter((e) => e.to[0] === alice && e.subject === 'Your release request was approved')).toHaveLength(1),
      { timeout: 15_000, interval: 50 },
    );
    // the other decider's link now says so, and changes nothing
    const late = await linksIn(keys.admin!.to, 'links approve');
    const again = await t.app.request(late.approve, { method: 'POST' });
    expect(again.status).toBe(409);
    expect(await again.text()).toContain('already approved');
    expect(peer.requests().length).toBe(before + 1);
  });

  it('deny through the link records the reason (a reason is required); the owner is told', async () => {
    const [id] = await f.add(message([alice], 'B', 'links deny'));
    const req = await ask(id!);
    const { deny } = await linksIn(keys.adminA2!.to, 'links deny');
    const shown = await (await t.app.request(deny)).text();
    expect(shown).toContain('Deny this release request?');
    expect(shown).toMatch(/<textarea id="reason" name="reason" required/);
    const form = (reason: string) => ({
      method: 'POST',
      body: new URLSearchParams({ reason }),
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    const empty = await t.app.request(deny, form('  '));
    expect(empty.status).toBe(400);
    expect((await requestRow(req.id)).status).toBe('pending');
    const denied = await t.app.request(deny, form('we never release banned attachments'));
    expect(denied.status).toBe(200);
    expect(await requestRow(req.id)).toMatchObject({
      status: 'denied',
      reason: 'we never release banned attachments',
      decided_by: `key:${keys.adminA2!.id}`,
    });
    expect(await f.rs(id!)).toEqual([' ']);
    await vi.waitFor(
      () =>
        expect(
          mail.emails.find((e) => e.to[0] === alice && e.subject === 'Your release request was denied' && e.text?.includes('links deny'))
            ?.text,
        ).toContain('we never release banned attachments'),
      { timeout: 15_000, interval: 50 },
    );
  });

  it("a revoked key's links are dead: GET and POST refuse, nothing changes", async () => {
    const name = `revoked${Date.now()}`;
    const to = `${name}@deciders-${dA}`;
    const k = (await (await call('POST', '/v1/keys', { name, role: 'domain_admin', domains: [dA], notify_email: to })).json()) as {
      id: string;
    };
    const [id] = await f.add(message([alice], 'V', 'links revoked'));
    const req = await ask(id!);
    const { approve } = await linksIn(to, 'links revoked');
    expect((await t.app.request(approve)).status).toBe(200);
    expect((await call('DELETE', `/v1/keys/${k.id}`)).status).toBe(204);
    const before = peer.requests().length;
    for (const method of ['GET', 'POST']) {
      const r = await t.app.request(approve, { method });
      expect(r.status).toBe(403);
      expect(await r.text()).toContain('the API key it acts as was revoked');
    }
    expect(peer.requests().length).toBe(before);
    expect((await requestRow(req.id)).status).toBe('pending');
  });

  it('a request whose message left the quarantine cannot be approved: 409, expired (link and API)', async () => {
    const [one, two] = await f.add(message([alice], 'V', 'links gone one'), message([alice], 'V', 'links gone two'));
    const r1 = await ask(one!);
    const r2 = await ask(two!);
    const { approve } = await linksIn(keys.adminA!.to, 'links gone one');
    // amavisd's own cleanup (or another purge) removed both
    for (const id of [one!, two!]) {
      await sql`DELETE FROM msgs WHERE partition_tag = 0 AND mail_id = ${bind(t.variant, 'msgs.mail_id', id.slice(2))}`.execute(
        t.handle.db,
      );
    }
    const before = peer.requests().length;
    const page = await t.app.request(approve, { method: 'POST' });
    expect(page.status).toBe(409);
    expect(await page.text()).toContain('expired');
    expect((await requestRow(r1.id)).status).toBe('expired');
    const api = await call('POST', `/v1/release-requests/${r2.id}/approve`, undefined, keys.adminA!.key);
    expect(api.status).toBe(409);
    expect(await api.json()).toMatchObject({ code: 'conflict', detail: expect.stringContaining('no longer in the quarantine') });
    expect(await requestRow(r2.id)).toMatchObject({ status: 'expired', reason: 'the message was removed from the quarantine' });
    expect(peer.requests().length).toBe(before);
    // recorded as the decider's doing: an audit row each, naming the request and its requester
    const expiries = await t.state.db
      .selectFrom('qe_audit')
      .select(['actor', 'detail'])
      .where('action', '=', 'release_request_expire')
      .where('actor', '=', `key:${keys.adminA!.id}`)
      .execute();
    const expiredIds = expiries.map((e) => JSON.parse(String(e.detail)).request_id);
    expect(expiredIds).toEqual(expect.arrayContaining([r1.id, r2.id]));
  });

  it("the navigation counts pending requests in the reader's scope", async () => {
    const [id] = await f.add(message([alice], 'V', 'links count'));
    await ask(id!);
    const pendingIn = async (domain: string) =>
      Number(
        (
          await sql<{ n: number }>`SELECT count(*) AS n FROM qe_release_requests WHERE domain = ${domain} AND status = 'pending'`.execute(
            t.state.db,
          )
        ).rows[0]!.n,
      );
    const n = await pendingIn(dA);
    expect(n).toBeGreaterThan(0);
    const a = await keySession(t.app, keys.adminA!.key);
    expect((await a.page('/ui/quarantine')).html).toContain(`>Release requests (${n})</a>`);
    // dB has none: no count
    expect(await pendingIn(dB)).toBe(0);
    const b = await keySession(t.app, keys.adminB!.key);
    expect((await b.page('/ui/quarantine')).html).toContain('>Release requests</a>');
    // admins: every pending request
    const all = Number(
      (await sql<{ n: number }>`SELECT count(*) AS n FROM qe_release_requests WHERE status = 'pending'`.execute(t.state.db)).rows[0]!.n,
    );
    const admin = await keySession(t.app, keys.admin!.key);
    expect((await admin.page('/ui/requests')).html).toMatch(new RegExp(`>Release requests \\((${all}|${all + 1}|${all + 2})\\)</a>`));
  });

  it("notify_email: set and cleared with PATCH; a user key has none (400 naming the field); not admins' business: 404", async () => {
    const patch = (id: string, body: unknown, key = ADMIN_KEY) => call('PATCH', `/v1/keys/${id}`, body, key);
    expect(await (await patch(keys.adminB!.id, { notify_email: null })).json()).toMatchObject({ notify_email: null });
    expect(await (await patch(keys.adminB!.id, { notify_email: `Mixed@${dB}` })).json()).toMatchObject({ notify_email: `mixed@${dB}` });
    const bad = await patch(keys.adminB!.id, { notify_email: 'not an address' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { field: string }).field).toBe('notify_email');
    const user = (await (await call('POST', '/v1/keys', { name: 'u', role: 'user', mailbox: bob })).json()) as { id: string };
    const refused = await patch(user.id, { notify_email: bob });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { field: string }).field).toBe('notify_email');
    const created = await call('POST', '/v1/keys', { name: 'u2', role: 'user', mailbox: bob, notify_email: bob });
    expect(created.status).toBe(400);
    expect(((await created.json()) as { field: string }).field).toBe('notify_email');
    expect((await patch(keys.adminB!.id, { notify_email: null }, keys.adminA!.key)).status).toBe(404);
    await call('DELETE', `/v1/keys/${user.id}`);
  });

  it("the message page: Report as spam / Not spam say whether the filter learned it (the owner's words, not sa-learn's); Release and report as not spam", async () => {
    const [spam, ham] = await f.add(message([bob], 'S', 'links report spam'), message([bob], 'S', 'links report ham'));
    const owner = await portalSession(t.app, SECRET, bob, NOW + 3600);
    const { html, csrf } = await owner.page(`/ui/quarantine/${spam}`);
    expect(html).toContain('Report as spam');
    expect(html).toContain('Not spam');
    expect(html).toContain('Release and report as not spam');
    const reported = await owner.post(`/ui/quarantine/${spam}/report`, { csrf: csrf!, kind: 'spam' });
    expect(reported.status).toBe(200);
    const said = await reported.text();
    expect(said).toContain('Reported as spam: the spam filter has learned from it.');
    expect(said).not.toContain('Learned tokens'); // sa-learn's own output is for admins
    const twice = await owner.post(`/ui/quarantine/${spam}/report`, { csrf: csrf!, kind: 'spam' });
    expect(await twice.text()).toContain('had already learned from this message');
    const bad = await owner.post(`/ui/quarantine/${spam}/report`, { csrf: csrf!, kind: 'eggs' });
    expect(bad.status).toBe(400);
    expect((await owner.post(`/ui/quarantine/${spam}/report`, { kind: 'spam' })).status).toBe(403); // no CSRF token

    const released = await owner.post(`/ui/quarantine/${ham}/release`, { csrf: csrf!, report_ham: '1' });
    expect(released.status).toBe(200);
    const text = await released.text();
    expect(text).toContain('The message was released to your mailbox. Reported as not spam: the spam filter has learned from it.');
    expect(text).not.toContain('amavisd');
    expect(await f.rs(ham!)).toEqual(['R']);
    expect((await auditOf(ham!)).map((a) => a.action)).toEqual(expect.arrayContaining(['release', 'report_ham']));
  });
});

describe('report buttons without a learner', () => {
  it('say reporting is not set up (501), nothing reported', async () => {
    const t = await testApp('pg-upstream', { env: { LINK_SECRET: SECRET } });
    const f = new Fixtures(t);
    try {
      const [d] = uniqueDomains(1) as [string];
      const [id] = await f.add({
        timeNum: NOW - 50,
        content: 'S',
        sender: 's@x.example',
        subject: 'no learner',
        recipients: [{ address: `c@${d}` }],
      });
      const owner = await portalSession(t.app, SECRET, `c@${d}`, NOW + 3600);
      const { csrf } = await owner.page(`/ui/quarantine/${id}`);
      const r = await owner.post(`/ui/quarantine/${id}/report`, { csrf: csrf!, kind: 'ham' });
      expect(r.status).toBe(501);
      expect(await r.text()).toContain('Reporting to the spam filter is not set up on this server; nothing was reported.');
    } finally {
      await f.cleanup();
      await t.close();
    }
  });
});
