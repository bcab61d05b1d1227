import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signLink } from '../../src/digest/links.ts';
import { signPortalToken } from '../../src/ui/portal-token.ts';
import { PAGE_CSP } from '../../src/ui/routes.tsx';
import { testApp, uniqueDomains, ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { PageClient, portalSession as openPortal } from '../support/ui-client.ts';

const SECRET = 'ui-test-link-secret-0123456789abcdefghij';
const NOW = Math.floor(Date.now() / 1000);
const XSS = '<script>alert(1)</script>';

function htmlMail(subject: string, to: string): string {
  return [
    'From: Bulk <spammer@bulk.example>',
    `To: ${to}`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: multipart/alternative; boundary="b1"',
    '',
    '--b1',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'plain words here',
    '--b1',
    'Content-Type: text/html; charset=utf-8',
    '',
    '<html><body><p>Hello there</p><script>alert("html-part")</script>' +
      '<img src="https://tracker.example/p.gif" onerror="alert(2)"><a href="https://evil.example/go">click me</a></body></html>',
    '--b1--',
    '',
  ].join('\n');
}

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('pages (/ui) on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let dA: string, dB: string;
  let alice: string, bob: string;

  const message = (rcpts: string[], extra: Record<string, unknown> = {}) => ({
    timeNum: NOW - 100,
    content: 'S',
    sender: 'spammer@bulk.example',
    subject: 'buy now',
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
    ...extra,
  });

  const portalSession = (mailbox: string) => openPortal(t.app, SECRET, mailbox, NOW + 3600);

  beforeAll(async () => {
    twin = new ReleaseTwin();
    t = await testApp(variantName, { release: twin, env: { LINK_SECRET: SECRET } });
    f = new Fixtures(t);
    [dA, dB] = uniqueDomains(2) as [string, string];
    alice = `alice@${dA}`;
    bob = `bob@${dB}`;
  });
  beforeEach(() => {
    twin.calls = [];
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  it('without LINK_SECRET the pages answer 503 naming the variable, never a 500', async () => {
    const bare = await testApp(variantName, { release: twin, env: { LINK_SECRET: '' } });
    try {
      for (const path of ['/ui/sign-in', '/ui/quarantine']) {
        const r = await bare.app.request(path);
        expect(r.status, path).toBe(503);
        const html = await r.text();
        expect(html).toContain('LINK_SECRET');
        expect(html).not.toMatch(/Something went wrong/);
      }
    } finally {
      await bare.close();
    }
  });

  it('GET of a portal link changes nothing; POST with the form token starts a mailbox session', async () => {
    const [id] = await f.add(message([alice]));
    const b = new PageClient(t.app);
    const token = await signPortalToken(SECRET, alice, NOW + 3600);
    const before = await f.rs(id!);
    const { res, html, csrf } = await b.page(`/ui/portal/${token}`);
    expect(res.status).toBe(200);
    expect(html).toContain('Continue');
    expect(html).toContain(alice);
    expect(b.cookies.has('qe_session')).toBe(false);
    expect(await f.rs(id!)).toEqual(before);
    // without a session the list is not reachable
    expect((await b.request('/ui/quarantine')).headers.get('location')).toBe('/ui/sign-in');

    const post = await b.post(`/ui/portal/${token}`, { csrf: csrf! });
    expect(post.status).toBe(303);
    expect(post.headers.get('location')).toBe('/ui/quarantine');
    const cookie = b.setCookies.find((c) => c.startsWith('qe_session='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Path=\/ui/);
    expect(cookie).toMatch(/Max-Age=3600/);
    expect(cookie).not.toMatch(/Secure/i);
    const list = await b.page('/ui/quarantine');
    expect(list.res.status).toBe(200);
    expect(list.html).toContain(`/ui/quarantine/${id}`);
    expect(await f.rs(id!)).toEqual(before);

    // over https the cookie is Secure
    const s = new PageClient(t.app, 'https://quarantine.example');
    const p = await s.page(`/ui/portal/${token}`);
    await s.post(`/ui/portal/${token}`, { csrf: p.csrf! });
    expect(s.setCookies.find((c) => c.startsWith('qe_session='))).toMatch(/;\s*Secure/i);
  });

  it('refuses bad portal links: tampered, expired, or a one-message action link', async () => {
    const b = new PageClient(t.app);
    const good = await signPortalToken(SECRET, alice, NOW + 3600);
    const tampered = good.slice(0, -2) + (good.endsWith('AA') ? 'BB' : 'AA');
    expect((await b.request(`/ui/portal/${tampered}`)).status).toBe(404);
    expect((await b.request(`/ui/portal/${await signPortalToken(SECRET, alice, NOW - 1)}`)).status).toBe(403);
    const release = await signLink(SECRET, {
      action: 'release',
      partitionTag: 0,
      mailId: 'hZbBr1WxS3sy',
      recipient: alice,
      expires: NOW + 3600,
    });
    expect((await b.request(`/ui/portal/${release}`)).status).toBe(404);
    const other = await signPortalToken('another-secret-0123456789abcdefghijklmn', alice, NOW + 3600);
    expect((await b.request(`/ui/portal/${other}`)).status).toBe(404);
  });

  it('refuses every POST without the right CSRF token', async () => {
    const [id] = await f.add(message([alice]));
    const token = await signPortalToken(SECRET, alice, NOW + 3600);
    const anon = new PageClient(t.app);
    await anon.page(`/ui/portal/${token}`);
    expect((await anon.post(`/ui/portal/${token}`, {})).status).toBe(403);
    expect((await anon.post(`/ui/portal/${token}`, { csrf: 'x'.repeat(43) })).status).toBe(403);
    expect(anon.cookies.has('qe_session')).toBe(false);
    expect((await anon.post('/ui/sign-in', { key: ADMIN_KEY })).status).toBe(403);
    expect(anon.cookies.has('qe_session')).toBe(false);

    const b = await portalSession(alice);
    const other = await portalSession(alice); // another session's token is not this one's
    const otherToken = (await other.page('/ui/quarantine')).csrf!;
    const attempts: Array<[string, Record<string, string | string[]>]> = [
      ['/ui/quarantine/bulk', { action: 'delete', ids: [id!] }],
      ['/ui/quarantine/bulk', { action: 'delete', ids: [id!], csrf: otherToken }],
      [`/ui/quarantine/${id}/release`, {}],
      [`/ui/quarantine/${id}/delete`, { csrf: otherToken }],
      ['/ui/sign-out', {}],
    ];
    for (const [path, fields] of attempts) expect((await b.post(path, fields)).status, path).toBe(403);
    // a cross-site form post is refused even with a token
    const { csrf } = await b.page('/ui/quarantine');
    expect((await b.post(`/ui/quarantine/${id}/delete`, { csrf: csrf! }, { 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect(await f.rs(id!)).toEqual([' ']);
    expect(twin.calls).toHaveLength(0);
    expect(b.cookies.has('qe_session')).toBe(true);
  });

  it("a mailbox session sees and acts on only its own mail; another mailbox's message is 404", async () => {
    const [mine, shared, bobs] = await f.add(
      message([alice], { subject: 'for alice only' }),
      message([alice, bob], { subject: 'for both' }),
      message([bob], { subject: 'for bob only', raw: htmlMail('for bob only', bob) }),
    );
    const b = await portalSession(alice);
    const list = await b.page('/ui/quarantine?status=all');
    expect(list.html).toContain(`/ui/quarantine/${mine}`);
    expect(list.html).toContain(`/ui/quarantine/${shared}`);
    expect(list.html).not.toContain(bobs!);
    expect(list.html).not.toContain(bob); // not even as a co-recipient of the shared message
    // editing URLs and form fields does not widen the scope
    for (const q of [`recipient=${encodeURIComponent(bob)}`, `domain=${dB}`, 'status=all&q=bob']) {
      expect((await b.page(`/ui/quarantine?${q}`)).html).not.toContain(bobs!);
    }
    expect((await b.request(`/ui/quarantine/${bobs}`)).status).toBe(404);
    expect((await b.request(`/ui/quarantine/${bobs}/body`)).status).toBe(404);
    const detail = await b.page(`/ui/quarantine/${shared}`);
    expect(detail.html).not.toContain(bob);
    expect((await b.post(`/ui/quarantine/${bobs}/release`, { csrf: list.csrf! })).status).toBe(404);
    expect((await b.post(`/ui/quarantine/${bobs}/delete`, { csrf: list.csrf! })).status).toBe(404);
    const bulk = await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, action: 'delete', ids: [bobs!, mine!], confirmed: '1' });
    expect(bulk.status).toBe(303);
    expect(bulk.headers.get('location')).toContain('ok=1&failed=1');
    expect(await f.rs(bobs!)).toEqual([' ']);
    expect(await f.rs(mine!)).toEqual(['D']);
    // releasing the shared message releases alice's copy only
    const rel = await b.post(`/ui/quarantine/${shared}/release`, { csrf: list.csrf! });
    expect(rel.headers.get('location')).toBe(`/ui/quarantine/${shared}?done=released`);
    expect(twin.calls.map((c) => c.recipients)).toEqual([[alice]]);
    expect(await f.rs(shared!)).toEqual(['R', ' ']);
  });

  it('never puts the HTML body in the page: only the sandboxed frame, served with its own CSP', async () => {
    const [id] = await f.add(message([alice], { raw: htmlMail('html mail', alice), subject: 'html mail' }));
    const b = await portalSession(alice);
    const { res, html } = await b.page(`/ui/quarantine/${id}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(res.headers.get('x-frame-options')).toBe('DENY');
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    for (const s of ['html-part', 'tracker.example', 'evil.example', 'Hello there', 'srcdoc']) expect(html).not.toContain(s);
    expect(html).toMatch(new RegExp(`<iframe[^>]*sandbox=""[^>]*src="/ui/quarantine/${id!.replace('.', '\\.')}/body"`));
    expect(html).toContain('plain words here');
    expect(html).toContain('Load remote images');

    const body = await b.request(`/ui/quarantine/${id}/body`);
    expect(body.status).toBe(200);
    const csp = body.headers.get('content-security-policy')!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toMatch(/img-src data:;/);
    expect(csp).toMatch(/(^|; )sandbox($|;)/);
    expect(body.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    const inner = await body.text();
    expect(inner).toContain('Hello there');
    expect(inner).not.toMatch(/\shref=/i);
    expect(inner).toContain('data-qe-href="https://evil.example/go"');
    const withImages = await b.request(`/ui/quarantine/${id}/body?images=1`);
    expect(withImages.headers.get('content-security-policy')).toContain('img-src data: https:');
  });

  it("pages with the API's cursor, keeping the filters; a changed cursor falls back to the first page", async () => {
    const tag = `page-${crypto.randomUUID().slice(0, 8)}`;
    await f.add(...Array.from({ length: 51 }, (_, i) => message([alice], { subject: `${tag} ${i}`, timeNum: NOW - 1000 + i })));
    const b = await portalSession(alice);
    const first = await b.page(`/ui/quarantine?q=${tag}`);
    expect(first.html.match(/name="ids"/g)).toHaveLength(50);
    const next = /href="(\/ui\/quarantine\?q=[^"&]+&amp;cursor=[^"]+)"/.exec(first.html)?.[1]?.replace(/&amp;/g, '&');
    expect(next).toBeTruthy();
    const second = await b.page(next!);
    expect(second.html.match(/name="ids"/g)).toHaveLength(1);
    expect(second.html).toContain(`${tag} 0<`);
    expect(second.html).toContain('First page');
    expect(second.html).not.toContain('rel="next"');
    const bad = await b.page(next!.slice(0, -3) + (next!.endsWith('AAA') ? 'BBB' : 'AAA'));
    expect(bad.html).toContain('That page link no longer works, so the first page is shown.');
    expect(bad.html.match(/name="ids"/g)).toHaveLength(50);
    const invalid = await b.page('/ui/quarantine?since=yesterday');
    expect(invalid.res.status).toBe(400);
    expect(invalid.html).toContain('role="alert"');
  });

  it('escapes attacker-controlled subjects and senders', async () => {
    const [id] = await f.add(message([alice], { subject: XSS, sender: 'x"><img@evil.example', raw: `Subject: ${XSS}\n\nhi\n` }));
    const b = await portalSession(alice);
    for (const path of ['/ui/quarantine', `/ui/quarantine/${id}`]) {
      const { html } = await b.page(path);
      expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(html).not.toContain(XSS);
      expect(html).not.toContain('"><img');
    }
  });

  it('signs in with an API key without storing it, follows revocation, and signs out', async () => {
    const [id] = await f.add(message([`carol@${dA}`]));
    const key = await t.key('domain_admin', { domains: [dA] });
    const b = new PageClient(t.app);
    const { csrf } = await b.page('/ui/sign-in');
    expect((await b.post('/ui/sign-in', { csrf: csrf!, key: 'qe_not-a-real-key-0000000000' })).status).toBe(401);
    const ok = await b.post('/ui/sign-in', { csrf: csrf!, key });
    expect(ok.status).toBe(303);
    const session = b.cookies.get('qe_session')!;
    expect(session).not.toContain(key);
    expect(session).not.toContain(key.slice(3, 20));
    const list = await b.page('/ui/quarantine');
    expect(list.html).toContain(`/ui/quarantine/${id}`);
    expect(list.html).toContain('Domain admin');
    // revoking the key ends the session
    const keyId = (((await (await t.get('/v1/keys')).json()) as any).items ?? []).find((k: any) => key.startsWith(k.prefix))?.id;
    expect(keyId).toBeTruthy();
    expect((await t.get(`/v1/keys/${keyId}`, ADMIN_KEY, { method: 'DELETE' })).status).toBeLessThan(300);
    expect((await b.request('/ui/quarantine')).headers.get('location')).toBe('/ui/sign-in');

    const admin = new PageClient(t.app);
    const p = await admin.page('/ui/sign-in');
    await admin.post('/ui/sign-in', { csrf: p.csrf!, key: ADMIN_KEY });
    const page = await admin.page('/ui/quarantine');
    expect(page.res.status).toBe(200);
    const out = await admin.post('/ui/sign-out', { csrf: page.csrf! });
    expect(out.headers.get('location')).toBe('/ui/sign-in');
    expect(admin.cookies.has('qe_session')).toBe(false);
    expect((await admin.request('/ui/quarantine')).status).toBe(303);
  });
});
