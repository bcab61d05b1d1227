import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { bind, text } from '../../src/amavis/schema.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { VARIANTS } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { PageClient, portalSession as openPortal } from '../support/ui-client.ts';

const SECRET = 'ui-more-link-secret-0123456789abcdefghij';
const PUBLIC_URL = 'https://quarantine.example';
const NOW = Math.floor(Date.now() / 1000);

describe.each(VARIANTS)('pages, self-service (/ui) on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let resend: ResendTwin;
  let dA: string, senderDomain: string;
  let alice: string, bob: string;
  const senders = () => [`good@${senderDomain}`, `bad@${senderDomain}`, `bulk1@${senderDomain}`, `bulk2@${senderDomain}`];

  const message = (rcpts: string[], extra: Record<string, unknown> = {}) => ({
    timeNum: NOW - 100,
    content: 'S',
    sender: `good@${senderDomain}`,
    subject: 'buy now',
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
    ...extra,
  });

  /** wblist rows (recipient, sender, W/B) for this file's senders, as amavisd reads them. */
  const listed = async () => {
    const v = t.variant;
    const { rows } = await sql<{ re: unknown; se: unknown; wb: string }>`
      SELECT u.email AS re, m.email AS se, w.wb FROM wblist w JOIN users u ON u.id = w.rid JOIN mailaddr m ON m.id = w.sid
      WHERE m.email IN (${sql.join(senders().map((s) => bind(v, 'mailaddr.email', s)))}) ORDER BY m.email`.execute(t.handle.db);
    return rows.map((r) => ({ recipient: text(r.re), sender: text(r.se), wb: r.wb.trim() }));
  };

  const portalSession = (mailbox: string) => openPortal(t.app, SECRET, mailbox, NOW + 3600);

  beforeAll(async () => {
    twin = new ReleaseTwin();
    resend = await startResendTwin();
    t = await testApp(variantName, {
      release: twin,
      env: {
        LINK_SECRET: SECRET,
        PUBLIC_URL,
        DIGEST_FROM: 'Quarantine <quarantine@example.com>',
        RESEND_API_KEY: 're_test_key',
        RESEND_BASE_URL: resend.url,
      },
    });
    f = new Fixtures(t);
    [dA, senderDomain] = uniqueDomains(2) as [string, string];
    alice = `alice@${dA}`;
    bob = `bob@${dA}`;
  });
  beforeEach(() => {
    twin.calls = [];
    resend.reset();
  });
  afterAll(async () => {
    await f?.cleanup();
    if (t) {
      const v = t.variant;
      const db = t.handle.db;
      const s = senders().map((x) => bind(v, 'mailaddr.email', x));
      await sql`DELETE FROM wblist WHERE sid IN (SELECT id FROM mailaddr WHERE email IN (${sql.join(s)}))`.execute(db);
      await sql`DELETE FROM mailaddr WHERE email IN (${sql.join(s)})`.execute(db);
      const users = [alice, bob, `carol@${dA}`].map((x) => bind(v, 'users.email', x));
      await sql`DELETE FROM users WHERE email IN (${sql.join(users)})`.execute(db);
      await db.deleteFrom('qe_digest_subscriptions').where('domain', '=', dA).execute();
      await t.close();
    }
    await resend?.close();
  });

  it('release + always allow, delete + block: the message page writes the wblist rows; CSRF still enforced', async () => {
    const [good, bad] = await f.add(message([alice]), message([alice], { sender: `bad@${senderDomain}` }));
    const b = await portalSession(alice);
    const page = await b.page(`/ui/quarantine/${good}`);
    expect(page.html).toContain('Release and always allow sender');
    expect(page.html).toContain('Delete and block sender');
    // without the form token nothing happens
    expect((await b.post(`/ui/quarantine/${good}/release`, { allow_sender: '1' })).status).toBe(403);
    expect((await b.post(`/ui/quarantine/${bad}/delete`, { block_sender: '1', csrf: 'x'.repeat(43) })).status).toBe(403);
    expect(twin.calls).toHaveLength(0);
    expect(await listed()).toEqual([]);

    const rel = await b.post(`/ui/quarantine/${good}/release`, { csrf: page.csrf!, allow_sender: '1' });
    expect(rel.status).toBe(303);
    expect(rel.headers.get('location')).toBe(`/ui/quarantine/${good}?done=released_allowed`);
    expect(twin.calls.map((c) => c.recipients)).toEqual([[alice]]);
    expect(await f.rs(good!)).toEqual(['R']);
    expect((await b.page(rel.headers.get('location')!)).html).toContain('Mail from this sender will no longer be quarantined for you.');

    const del = await b.post(`/ui/quarantine/${bad}/delete`, { csrf: page.csrf!, block_sender: '1' });
    expect(del.headers.get('location')).toBe('/ui/quarantine?done=deleted_blocked');
    expect(await f.rs(bad!)).toEqual(['D']);
    expect(await listed()).toEqual([
      { recipient: alice, sender: `bad@${senderDomain}`, wb: 'B' },
      { recipient: alice, sender: `good@${senderDomain}`, wb: 'W' },
    ]);
  });

  it('the null sender: no allow/block buttons, and a forced POST is a 400 page saying why, with nothing changed', async () => {
    const [id] = await f.add(message([alice], { sender: '', subject: 'a bounce' }));
    const b = await portalSession(alice);
    const page = await b.page(`/ui/quarantine/${id}`);
    expect(page.html).not.toContain('Release and always allow sender');
    expect(page.html).toContain('This message has no sender address');
    for (const [path, fields] of [
      [`/ui/quarantine/${id}/release`, { allow_sender: '1' }],
      [`/ui/quarantine/${id}/delete`, { block_sender: '1' }],
    ] as const) {
      const res = await b.post(path, { csrf: page.csrf!, ...fields });
      expect(res.status, path).toBe(400);
      const html = await res.text();
      expect(html).toContain('role="alert"');
      // the owner's words: no "null sender"
      expect(html).toContain('This message has no sender address (bounces and automatic replies have none)');
      expect(html).toContain('Nothing was changed');
      expect(html).not.toContain('null sender');
    }
    expect(twin.calls).toHaveLength(0);
    expect(await f.rs(id!)).toEqual([' ']);
  });

  it('bulk release + allow and delete + block, counting null-sender failures; CSRF enforced', async () => {
    const [r1, r2, nul, d1] = await f.add(
      message([bob], { sender: `bulk1@${senderDomain}` }),
      message([bob], { sender: `bulk2@${senderDomain}` }),
      message([bob], { sender: '' }),
      message([`carol@${dA}`], { sender: `bulk1@${senderDomain}` }),
    );
    const b = await portalSession(bob);
    const list = await b.page('/ui/quarantine');
    expect(list.html).toContain('value="release_allow"');
    expect(list.html).toContain('value="delete_block"');
    expect((await b.post('/ui/quarantine/bulk', { action: 'release_allow', ids: [r1!] })).status).toBe(403);
    expect(twin.calls).toHaveLength(0);

    const rel = await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, action: 'release_allow', ids: [r1!, nul!, d1!], confirmed: '1' });
    expect(rel.status).toBe(303);
    // carol's message is not bob's (404), the null sender is refused (400): each listed with why
    expect(rel.headers.get('location')).toBe(
      `/ui/quarantine?done=bulk-release_allow&ok=1&failed=2&null_sender=1&fail=${nul}%7Einvalid_field&fail=${d1}%7Enot_found`,
    );
    const result = (await b.page(rel.headers.get('location')!)).html;
    // an owner reads plain words: no "null sender", no "scope"
    expect(result).toContain('Released, sender always allowed: 1. Not done: 2.');
    expect(result).toContain('1 of them has no sender address');
    expect(result).toContain(`<a href="/ui/quarantine/${d1}">${d1}</a>: This message is no longer in the quarantine`);
    const said = /<section class="notice result"[\s\S]*?<\/section>/.exec(result)![0];
    expect(said).not.toMatch(/scope|null sender|amavisd/);
    expect(await f.rs(nul!)).toEqual([' ']);
    expect(await f.rs(d1!)).toEqual([' ']);
    const del = await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, action: 'delete_block', ids: [r2!], confirmed: '1' });
    expect(del.headers.get('location')).toBe('/ui/quarantine?done=bulk-delete_block&ok=1&failed=0');
    expect(await f.rs(r2!)).toEqual(['D']);
    expect((await listed()).filter((r) => r.recipient === bob)).toEqual([
      { recipient: bob, sender: `bulk1@${senderDomain}`, wb: 'W' },
      { recipient: bob, sender: `bulk2@${senderDomain}`, wb: 'B' },
    ]);
    expect((await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, action: 'nuke', ids: [r2!] })).status).toBe(400);
  });

  it('a mailbox session changes its own digest subscription only; bad values are a 400 page; CSRF', async () => {
    const b = await portalSession(alice);
    const page = await b.page('/ui/subscription');
    expect(page.res.status).toBe(200);
    expect(page.html).toContain(alice);
    expect((await b.post('/ui/subscription', { enabled: '1', frequency: 'weekly' })).status).toBe(403);
    const sub = (a: string) => t.handle.db.selectFrom('qe_digest_subscriptions').selectAll().where('address', '=', a).executeTakeFirst();
    expect(await sub(alice)).toBeUndefined();

    // an address field is ignored: the session's mailbox is the only one it can change
    const ok = await b.post('/ui/subscription', {
      csrf: page.csrf!,
      enabled: '1',
      frequency: 'weekly',
      time_zone: 'Europe/Berlin',
      address: bob,
    });
    expect(ok.status).toBe(303);
    expect(ok.headers.get('location')).toBe('/ui/subscription?done=saved');
    expect(await sub(bob)).toBeUndefined();
    expect(await sub(alice)).toMatchObject({ enabled: 1, frequency: 'weekly', time_zone: 'Europe/Berlin', updated_by: `portal:${alice}` });
    const saved = await b.page('/ui/subscription?done=saved');
    expect(saved.html).toContain('value="Europe/Berlin"');
    expect(saved.html).toMatch(/<option value="weekly" selected/);

    const badTz = await b.post('/ui/subscription', { csrf: page.csrf!, enabled: '1', frequency: 'daily', time_zone: 'Mars/Olympus_Mons' });
    expect(badTz.status).toBe(400);
    expect(await badTz.text()).toContain('not a time zone');
    expect((await b.post('/ui/subscription', { csrf: page.csrf!, frequency: 'yearly' })).status).toBe(400);
    expect(await sub(alice)).toMatchObject({ enabled: 1, frequency: 'weekly', time_zone: 'Europe/Berlin' });

    // off (unchecked box), UTC (empty zone)
    await b.post('/ui/subscription', { csrf: page.csrf!, frequency: 'hourly', time_zone: '' });
    expect(await sub(alice)).toMatchObject({ enabled: 0, frequency: 'hourly', time_zone: null });

    // an admin session has no digest settings page (the API manages any address)
    const admin = new PageClient(t.app);
    const si = await admin.page('/ui/sign-in');
    await admin.post('/ui/sign-in', { csrf: si.csrf!, key: 'test-admin-key-0123456789abcdef' });
    expect((await admin.request('/ui/subscription')).status).toBe(404);
  });

  it('"email me a link": one email with a working portal link, then nothing for 10 minutes; unknown addresses look the same', async () => {
    const known = `dave@${dA}`;
    const unknown = `nobody@${dA}`;
    await f.add(message([known]));
    const anon = new PageClient(t.app);
    const signIn = await anon.page('/ui/sign-in');
    expect(signIn.html).toContain('Email me a link');
    // CSRF on the form
    expect((await anon.post('/ui/email-link', { address: known })).status).toBe(403);

    const ask = async (address: string) => {
      const res = await anon.post('/ui/email-link', { csrf: signIn.csrf!, address });
      // the page names the address as normalized (lowercase)
      return { status: res.status, body: (await res.text()).replaceAll(address.toLowerCase(), 'ADDRESS') };
    };
    const first = await ask(known.toUpperCase());
    await expect.poll(() => resend.emails.length).toBe(1);
    const email = resend.emails[0]!;
    expect(email.to).toEqual([known]);
    const link = new RegExp(`${PUBLIC_URL.replace(/\./g, '\\.')}(/ui/portal/[A-Za-z0-9_.-]+)`).exec(email.text ?? '')?.[1];
    expect(link).toBeTruthy();
    // mustache escapes '/' in attributes as &#x2F; (the browser reads it back)
    expect(email.html!.replaceAll('&#x2F;', '/')).toContain(`href="${PUBLIC_URL}${link}"`);
    // the link works: GET shows Continue, POST opens the mailbox's list
    const b = new PageClient(t.app);
    const p = await b.page(link!);
    expect(p.html).toContain('Continue');
    expect((await b.post(link!, { csrf: p.csrf! })).headers.get('location')).toBe('/ui/quarantine');
    expect((await b.page('/ui/quarantine')).html).toContain('buy now');

    const second = await ask(known);
    const other = await ask(unknown);
    const otherAgain = await ask(unknown);
    // the same answer for all: status and text (the address itself aside)
    expect(new Set([first, second, other, otherAgain].map((r) => JSON.stringify(r))).size).toBe(1);
    expect(first.status).toBe(200);
    // a later known-good send proves the pipeline ran; nothing else was sent
    const marker = `erin@${dA}`;
    await f.add(message([marker]));
    await ask(marker);
    await expect.poll(() => resend.emails.length).toBe(2);
    await new Promise((r) => setTimeout(r, 200));
    expect(resend.emails.map((e) => e.to[0])).toEqual([known, marker]);

    // a subscriber without quarantined mail qualifies too; a malformed address is a plain 400
    const subscriber = `frank@${dA}`;
    await t.handle.db
      .insertInto('qe_digest_subscriptions')
      .values({
        address: subscriber,
        domain: dA,
        enabled: 0,
        frequency: 'daily',
        time_zone: null,
        updated_at: NOW,
        updated_by: 'test',
      })
      .execute();
    await ask(subscriber);
    await expect.poll(() => resend.emails.length).toBe(3);
    expect((await anon.post('/ui/email-link', { csrf: signIn.csrf!, address: 'not an address' })).status).toBe(400);
  });
});
