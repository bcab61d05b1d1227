import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signLink, type LinkAction } from '../../src/digest/links.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { VARIANTS } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

// Links that match the message (issue 16.2): no "always allow" for the null sender, and every page a
// one-click link opens leads on (the quarantine, the next step), never a dead end.
const SECRET = 'owner-links-secret-0123456789abcdefghijkl';
const PUBLIC = 'https://q.example.test';
const NOW = Math.floor(Date.now() / 1000);

describe.each(VARIANTS)('one-click links that match the message on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let resend: ResendTwin;
  let domain: string;
  const token = (action: LinkAction, id: string | null, recipient: string) => {
    const [p, mailId] = id ? (id.split('.') as [string, string]) : [null, null];
    return signLink(SECRET, { action, partitionTag: p === null ? null : Number(p), mailId, recipient, expires: NOW + 3600 });
  };
  const open = async (path: string, method: 'GET' | 'POST' = 'GET') => {
    const res = await t.app.request(path.startsWith('/') ? path : `/a/${path}`, { method });
    return { res, html: await res.text() };
  };
  // mustache writes "/" as &#x2F; in attributes
  const unentity = (s: string) => s.replaceAll('&#x2F;', '/').replaceAll('&#x3D;', '=').replaceAll('&amp;', '&');
  const formAction = (html: string) => unentity(/<form method="post" action="([^"]+)"/.exec(html)?.[1] ?? '');
  const linksOf = (html: string) =>
    [...html.matchAll(/<li><a href="([^"]+)">([^<]+)<\/a><\/li>/g)].map((m) => ({ url: unentity(m[1]!), label: m[2]! }));
  const mail = (to: string, extra: Record<string, unknown> = {}) =>
    f.add({
      timeNum: NOW - 3600,
      content: 'S',
      sender: `news@${domain}`,
      subject: 'buy now',
      spamLevel: 9,
      recipients: [{ address: to }],
      ...extra,
    });

  beforeAll(async () => {
    twin = new ReleaseTwin();
    resend = await startResendTwin();
    t = await testApp(variantName, {
      release: twin,
      env: {
        DIGEST_MAX_ITEMS: '2',
        LINK_SECRET: SECRET,
        PUBLIC_URL: PUBLIC,
        DIGEST_FROM: 'Quarantine <q@example.test>',
        RESEND_API_KEY: 're_test',
        RESEND_BASE_URL: resend.url,
      },
    });
    f = new Fixtures(t);
    [domain] = uniqueDomains(1) as [string];
  });
  beforeEach(() => {
    twin.calls = [];
    resend.reset();
  });
  afterAll(async () => {
    await f?.cleanup();
    if (t) {
      await t.handle.db.deleteFrom('qe_digest_subscriptions').where('domain', '=', domain).execute();
      await t.handle.db.deleteFrom('qe_digest_state').where('recipient', 'like', `%@${domain}`).execute();
      await t.handle.db.deleteFrom('qe_digest_sends').where('recipient', 'like', `%@${domain}`).execute();
      await t.close();
    }
    await resend?.close();
  });

  it('the digest offers "always allow sender" only for a message with a sender address', async () => {
    const ann = `ann@${domain}`;
    await mail(ann, { subject: 'a bounce', sender: '', timeNum: NOW - 3000 });
    await mail(ann, { subject: 'a newsletter', timeNum: NOW - 3600 });
    // the oldest: not listed (DIGEST_MAX_ITEMS 2), still counted
    await mail(ann, { subject: 'an infected invoice', content: 'V', spamLevel: null, timeNum: NOW - 4000 });
    const run = await t.get('/v1/digests/run', ADMIN_KEY, {
      method: 'POST',
      body: JSON.stringify({ force_all: true, recipients: [ann] }),
      headers: { 'content-type': 'application/json' },
    });
    expect(run.status).toBe(200);
    const [email] = resend.emails.filter((e) => e.to[0] === ann);
    // the text part: each message's block, and its "always allow" line only for the newsletter
    const blocks = email!.text!.split(/\n(?=- )/);
    const bounce = blocks.find((b) => b.includes('a bounce'))!;
    const news = blocks.find((b) => b.includes('a newsletter'))!;
    expect(bounce).not.toContain('always allow');
    expect(news).toContain('Release and always allow sender');
    expect(email!.html!.match(/always allow sender/g)).toHaveLength(1);
    expect(email!.html).not.toContain('an infected invoice');
    expect(email!.html).toContain('and 1 more message');
    // the counts by kind come from the database (every waiting message, not only the listed ones)
    expect(email!.html).toContain('What was held: 2 probably spam and 1 with a virus.');
    expect(email!.subject).toBe('3 messages were held in quarantine for you');
  });

  it('"release and allow" for the null sender: a 409 page that changes nothing and offers the release alone, which works', async () => {
    const ben = `ben@${domain}`;
    const [id] = await mail(ben, { sender: '' });
    const link = await token('release_allow', id!, ben);
    for (const method of ['GET', 'POST'] as const) {
      const page = await open(link, method);
      expect(page.res.status).toBe(409);
      expect(page.html).toContain('no sender address');
      expect(page.html).toContain('Release to my mailbox');
      expect(linksOf(page.html).map((l) => l.label)).toEqual(['Open your quarantine']);
    }
    expect(twin.calls).toHaveLength(0);
    expect(await f.rs(id!)).toEqual([' ']);

    // the offered button is a release link of its own, for the same message and mailbox
    const page = await open(link);
    const releaseOnly = formAction(page.html)!;
    expect(releaseOnly).toMatch(/^\/a\/[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/);
    expect(releaseOnly).not.toBe(`/a/${link}`);
    const done = await open(releaseOnly, 'POST');
    expect(done.res.status).toBe(200);
    expect(done.html).toContain('released to your mailbox');
    expect(twin.calls.map((c) => c.recipients)).toEqual([[ben]]);
    expect(await f.rs(id!)).toEqual(['R']);
  });

  it('after a release: "See the rest of your quarantine", a portal link for the same mailbox', async () => {
    const cy = `cy@${domain}`;
    const [id] = await mail(cy);
    const done = await open(await token('release', id!, cy), 'POST');
    expect(done.res.status).toBe(200);
    const [rest] = linksOf(done.html);
    expect(rest?.label).toBe('See the rest of your quarantine');
    const portal = await t.app.request(rest!.url);
    expect(portal.status).toBe(303);
    expect(portal.headers.get('location')).toMatch(/^\/ui\/portal\//);
  });

  it('a release the mail server refuses: plain words, no machinery, the way to the quarantine', async () => {
    const fay = `fay@${domain}`;
    const [id] = await mail(fay);
    twin.mode = 'unreachable';
    try {
      const page = await open(await token('release', id!, fay), 'POST');
      expect(page.res.status).toBe(502);
      expect(page.html).toContain('nothing was changed');
      expect(page.html).not.toMatch(/amavis|AM\.PDP|127\.0\.0\.1|scope/i);
      expect(linksOf(page.html).map((l) => l.label)).toEqual(['Open your quarantine']);
    } finally {
      twin.mode = 'answer';
    }
    expect(await f.rs(id!)).toEqual([' ']);
  });

  it("the confirmation page shows the time in the owner's saved zone", async () => {
    const gil = `gil@${domain}`;
    const [id] = await mail(gil);
    const put = await t.get(`/v1/digests/subscriptions/${gil}`, ADMIN_KEY, {
      method: 'PUT',
      body: JSON.stringify({ time_zone: 'Asia/Tokyo' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(put.status).toBe(200);
    const page = await open(await token('release', id!, gil));
    // the locale's date and time (Intl, en: "Jul 3, 2026, 11:05 PM") in the saved zone
    expect(unentity(page.html)).toMatch(/<dt>Received<\/dt><dd>[A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d [AP]M \(Asia\/Tokyo\)<\/dd>/);
  });

  it("the action page in the owner's saved language: each catalog's words and lang attribute", async () => {
    const { CATALOGS } = await import('../../src/digest/templates.generated.ts');
    for (const lang of Object.keys(CATALOGS)) {
      const who = `lang-${lang.toLowerCase()}@${domain}`;
      const [id] = await mail(who);
      const put = await t.get(`/v1/digests/subscriptions/${who}`, ADMIN_KEY, {
        method: 'PUT',
        body: JSON.stringify({ language: lang }),
        headers: { 'content-type': 'application/json' },
      });
      expect(put.status).toBe(200);
      const page = await open(await token('release', id!, who));
      expect(page.html).toContain(`<html lang="${lang}">`);
      expect(unentity(page.html)).toContain(CATALOGS[lang]!['act.release.heading']!);
      expect(unentity(page.html)).toContain(CATALOGS[lang]!['act.release.button']!);
    }
    const bad = await t.get(`/v1/digests/subscriptions/lang-x@${domain}`, ADMIN_KEY, {
      method: 'PUT',
      body: JSON.stringify({ language: 'xx' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { field?: string }).field).toBe('language');
  });

  it('delete is set apart from release (danger style)', async () => {
    const dee = `dee@${domain}`;
    const [id] = await mail(dee);
    expect((await open(await token('delete', id!, dee))).html).toMatch(
      /<button type="submit" class="danger">Delete this message<\/button>/,
    );
    expect((await open(await token('release', id!, dee))).html).toMatch(/<button type="submit">Release to my mailbox<\/button>/);
  });

  it('after unsubscribing: "Turn digests back on" as a POST form (its GET changes nothing), and the way to the quarantine', async () => {
    const eve = `eve@${domain}`;
    const enabled = async () =>
      Number(
        (await t.handle.db.selectFrom('qe_digest_subscriptions').select('enabled').where('address', '=', eve).executeTakeFirst())?.enabled,
      );
    const off = await open(await token('unsubscribe', null, eve), 'POST');
    expect(off.res.status).toBe(200);
    expect(await enabled()).toBe(0);
    expect(off.html).toContain('Turn digests back on');
    expect(linksOf(off.html)).toEqual([{ label: 'Open your quarantine', url: '/ui/quarantine' }]);
    const back = formAction(off.html)!;
    expect(back).toMatch(/^\/a\//);
    // a scanner fetching it changes nothing
    const confirm = await open(back);
    expect(confirm.res.status).toBe(200);
    expect(await enabled()).toBe(0);
    const on = await open(back, 'POST');
    expect(on.html).toContain('are on again');
    expect(await enabled()).toBe(1);
  });
});
