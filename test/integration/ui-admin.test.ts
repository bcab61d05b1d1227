// The sender-list and audit pages (/ui/senders, /ui/audit): the same verbs and scopes as
// /v1/sender-lists and /v1/audit, CSRF on every write, bad input a 400 page naming the field.
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bind, text } from '../../src/amavis/schema.ts';
import { recordAudit } from '../../src/audit/audit.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { PAGE_CSP } from '../../src/ui/routes.tsx';
import { testApp, uniqueDomains, ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { keySession, portalSession as openPortal } from '../support/ui-client.ts';

const SECRET = 'ui-admin-link-secret-0123456789abcdefghij';
const NOW = Math.floor(Date.now() / 1000);

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('admin pages (/ui/senders, /ui/audit) on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let dA: string, dB: string, sd: string;
  let alice: string, bob: string;

  /** wblist rows whose sender is in this file's sender domain, as amavisd reads them. */
  const listed = async () => {
    const _v = t.variant;
    const { rows } = await sql<{ re: unknown; se: unknown; wb: string }>`
      SELECT u.email AS re, m.email AS se, w.wb FROM wblist w JOIN users u ON u.id = w.rid JOIN mailaddr m ON m.id = w.sid
      ORDER BY u.email, m.email`.execute(t.handle.db);
    return rows.map((r) => ({ recipient: text(r.re), sender: text(r.se), wb: r.wb.trim() })).filter((r) => r.sender.endsWith(sd));
  };

  const portalSession = (mailbox: string) => openPortal(t.app, SECRET, mailbox, NOW + 3600);
  const signedIn = (key: string) => keySession(t.app, key);

  beforeAll(async () => {
    t = await testApp(variantName, { release: new ReleaseTwin(), env: { LINK_SECRET: SECRET } });
    f = new Fixtures(t);
    [dA, dB, sd] = uniqueDomains(3) as [string, string, string];
    alice = `alice@${dA}`;
    bob = `bob@${dB}`;
  });
  afterAll(async () => {
    await f?.cleanup();
    if (t) {
      const v = t.variant;
      const db = t.handle.db;
      const like = (col: string) => sql`${sql.ref(col)} LIKE ${`%${sd}`}`;
      await sql`DELETE FROM wblist WHERE sid IN (SELECT id FROM mailaddr m WHERE ${
        v.dialect === 'postgres' && v.binary.has('mailaddr.email') ? sql`encode(m.email, 'escape') LIKE ${`%${sd}`}` : like('m.email')
      })`.execute(db);
      await sql`DELETE FROM mailaddr WHERE ${
        v.dialect === 'postgres' && v.binary.has('mailaddr.email') ? sql`encode(email, 'escape') LIKE ${`%${sd}`}` : like('email')
      }`.execute(db);
      const users = [alice, bob, `@${dA}`, `@${dB}`].map((x) => bind(v, 'users.email', x));
      await sql`DELETE FROM users WHERE email IN (${sql.join(users)})`.execute(db);
      await t.close();
    }
  });

  it('an admin adds and removes entries through the page; nav, headers, CSRF, and a 400 naming the field', async () => {
    const b = await signedIn(ADMIN_KEY);
    const page = await b.page('/ui/senders');
    expect(page.res.status).toBe(200);
    expect(page.res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(page.res.headers.get('x-frame-options')).toBe('DENY');
    expect(page.html).toContain('<h1>Sender lists</h1>');
    expect(page.html).toContain('href="/ui/audit"');
    expect(page.html).toContain('<label for="a-sender">');

    // no form token: nothing written
    expect((await b.post('/ui/senders/add', { recipient: alice, sender: `news@${sd}`, list: 'allow' })).status).toBe(403);
    expect(await listed()).toEqual([]);

    const add = await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: alice.toUpperCase(), sender: `news@${sd}`, list: 'allow' });
    expect(add.status).toBe(303);
    expect(add.headers.get('location')).toBe('/ui/senders?done=created');
    await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: `@${dB}`, sender: `@${sd}`, list: 'block' });
    expect(await listed()).toEqual([
      { recipient: `@${dB}`, sender: `@${sd}`, wb: 'B' },
      { recipient: alice, sender: `news@${sd}`, wb: 'W' },
    ]);
    const shown = await b.page('/ui/senders?done=created');
    expect(shown.html).toContain('Added.');
    expect(shown.html).toContain(`news@${sd}`);
    expect(shown.html).toContain(`@${dB}`);
    // the filter narrows the list
    const filtered = await b.page(`/ui/senders?recipient=${encodeURIComponent(`@${dB}`)}`);
    expect(filtered.html).toContain(`@${sd}<`);
    expect(filtered.html).not.toContain(`news@${sd}`);

    // bad input: 400 page, the field named, the typed text escaped back into the form, nothing written
    const bad = await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: alice, sender: '<script>x</script>', list: 'allow' });
    expect(bad.status).toBe(400);
    const badHtml = await bad.text();
    expect(badHtml).toContain('role="alert"');
    expect(badHtml).toContain('sender: expected');
    expect(badHtml).toContain('value="&lt;script&gt;x&lt;/script&gt;"');
    expect(badHtml).not.toContain('<script>x');
    const badList = await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: alice, sender: `x@${sd}`, list: 'maybe' });
    expect(badList.status).toBe(400);
    expect(await badList.text()).toContain('list: choose allow or block');
    const badRcpt = await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: 'not an address', sender: `x@${sd}`, list: 'allow' });
    expect(badRcpt.status).toBe(400);
    expect(await badRcpt.text()).toContain('recipient: expected');
    expect(await listed()).toHaveLength(2);

    // remove: CSRF, then gone; a second remove says there was nothing
    expect((await b.post('/ui/senders/remove', { recipient: alice, sender: `news@${sd}`, list: 'allow' })).status).toBe(403);
    const rm = await b.post('/ui/senders/remove', { csrf: page.csrf!, recipient: alice, sender: `news@${sd}`, list: 'allow' });
    expect(rm.headers.get('location')).toBe('/ui/senders?done=removed');
    expect(await listed()).toEqual([{ recipient: `@${dB}`, sender: `@${sd}`, wb: 'B' }]);
    const again = await b.post('/ui/senders/remove', { csrf: page.csrf!, recipient: alice, sender: `news@${sd}`, list: 'allow' });
    expect(again.headers.get('location')).toBe('/ui/senders?done=not_removed');
    const badRm = await b.post('/ui/senders/remove', { csrf: page.csrf!, recipient: alice, sender: '', list: 'allow' });
    expect(badRm.status).toBe(400);
    expect(await badRm.text()).toContain('sender: expected');
  });

  it("a domain admin sees and changes only its domains' entries; others are 404 and unchanged", async () => {
    const admin = await signedIn(ADMIN_KEY);
    const ap = await admin.page('/ui/senders');
    await admin.post('/ui/senders/add', { csrf: ap.csrf!, recipient: bob, sender: `only-b@${sd}`, list: 'block' });
    const b = await signedIn(await t.key('domain_admin', { domains: [dA] }));
    const page = await b.page('/ui/senders');
    expect(page.html).toContain('href="/ui/audit"');
    expect(page.html).not.toContain(`only-b@${sd}`);
    expect(page.html).not.toContain(`@${dB}`);

    const mine = await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: `@${dA}`, sender: `a-ok@${sd}`, list: 'allow' });
    expect(mine.headers.get('location')).toBe('/ui/senders?done=created');
    expect((await b.page('/ui/senders')).html).toContain(`a-ok@${sd}`);
    const before = await listed();
    for (const [path, fields] of [
      ['/ui/senders/add', { recipient: bob, sender: `evil@${sd}`, list: 'allow' }],
      ['/ui/senders/add', { recipient: '@.', sender: `evil@${sd}`, list: 'allow' }],
      ['/ui/senders/remove', { recipient: bob, sender: `only-b@${sd}`, list: 'block' }],
      ['/ui/senders/remove', { recipient: `@${dB}`, sender: `@${sd}` }],
    ] as const) {
      const res = await b.post(path, { csrf: page.csrf!, ...fields });
      expect(res.status, `${path} ${JSON.stringify(fields)}`).toBe(404);
      expect(await res.text()).toContain('recipient: not a mailbox or domain you manage');
    }
    expect(await listed()).toEqual(before);
  });

  it('a mailbox session manages its own entries only; editing the recipient field is a 404; no audit page', async () => {
    const b = await portalSession(alice);
    const page = await b.page('/ui/senders');
    expect(page.res.status).toBe(200);
    expect(page.html).toContain(`value="${alice}" readonly`);
    expect(page.html).not.toContain('href="/ui/audit"');
    expect(page.html).not.toContain(`a-ok@${sd}`); // the domain's entry is the domain admin's
    const add = await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: alice, sender: `friend@${sd}`, list: 'allow' });
    expect(add.headers.get('location')).toBe('/ui/senders?done=created');
    expect((await b.page('/ui/senders')).html).toContain(`friend@${sd}`);
    const before = await listed();
    const tampered = await b.post('/ui/senders/add', { csrf: page.csrf!, recipient: `carol@${dA}`, sender: `x@${sd}`, list: 'allow' });
    expect(tampered.status).toBe(404);
    expect((await b.post('/ui/senders/remove', { csrf: page.csrf!, recipient: bob, sender: `only-b@${sd}` })).status).toBe(404);
    expect(await listed()).toEqual(before);
    expect((await b.request('/ui/audit')).status).toBe(404);
  });

  it('the audit page: scoped like the API, newest first, paged by its cursor; a bad filter is a 400 naming it', async () => {
    const actor = `test-audit-${crypto.randomUUID().slice(0, 8)}`;
    const who: Identity = { role: 'admin', actor, keyId: null };
    for (let i = 0; i < 55; i++) {
      await recordAudit(t.handle.db, t.deps.clock, who, {
        action: 'delete',
        result: 'ok',
        mailId: `m${i}x`,
        partitionTag: 0,
        recipients: i === 54 ? [alice, bob] : [alice],
        detail: JSON.stringify({ n: i, note: '<b>sender</b>' }),
      });
    }
    const b = await signedIn(await t.key('domain_admin', { domains: [dA] }));
    const first = await b.page(`/ui/audit?actor=${actor}`);
    expect(first.res.status).toBe(200);
    expect(first.res.headers.get('content-security-policy')).toBe(PAGE_CSP);
    expect(first.html).toContain('<h1>Audit log</h1>');
    const ids = (html: string) => [...html.matchAll(/>(m\d+x)<\/a>/g)].map((m) => m[1]);
    expect(ids(first.html)).toEqual(Array.from({ length: 50 }, (_, i) => `m${54 - i}x`));
    // the shared message shows this domain's recipient only; the detail is escaped text
    expect(first.html).toContain(alice);
    expect(first.html).not.toContain(bob);
    expect(first.html).toContain('&lt;b&gt;sender&lt;/b&gt;');
    expect(first.html).not.toContain('<b>sender');
    const next = /href="(\/ui\/audit\?[^"]*before=\d+)" rel="next"/.exec(first.html)?.[1]?.replace(/&amp;/g, '&');
    expect(next).toBeTruthy();
    const second = await b.page(next!);
    expect(ids(second.html)).toEqual(['m4x', 'm3x', 'm2x', 'm1x', 'm0x']);
    expect(second.html).not.toContain('rel="next"');
    expect(second.html).toContain('Newest entries');

    // another domain's admin sees none of them; a bad filter names the field
    const other = await signedIn(await t.key('domain_admin', { domains: [uniqueDomains(1)[0]!] }));
    expect(ids((await other.page(`/ui/audit?actor=${actor}`)).html)).toEqual([]);
    for (const [q, name] of [
      ['mail_id=bad!id', 'mail_id'],
      ['before=abc', 'before'],
      [`action=${'x'.repeat(41)}`, 'action'],
    ] as const) {
      const r = await b.page(`/ui/audit?${q}`);
      expect(r.res.status, q).toBe(400);
      expect(r.html).toContain('role="alert"');
      expect(r.html).toContain(`${name}:`);
    }
  });

  it('a delete done on the message page shows up on the audit page', async () => {
    const [id] = await f.add({
      timeNum: NOW - 50,
      content: 'S',
      sender: `spam@${sd}`,
      subject: 'audit me',
      spamLevel: 9,
      recipients: [{ address: alice }],
    });
    const b = await signedIn(ADMIN_KEY);
    const { csrf } = await b.page(`/ui/quarantine/${id}`);
    expect((await b.post(`/ui/quarantine/${id}/delete`, { csrf: csrf! })).status).toBe(303);
    const mailId = id!.split('.')[1]!;
    const audit = await b.page(`/ui/audit?mail_id=${mailId}`);
    expect(audit.html).toContain(`href="/ui/quarantine/${id}"`);
    expect(audit.html).toMatch(/>Deleted<\/td>/);
    expect(audit.html).toContain('>audit me</a>');
    expect(audit.html).toContain('bootstrap admin key (admin)');
  });
});
