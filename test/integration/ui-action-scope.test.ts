// A filtered list acts on what it shows: with "Recipient domain" (or "Recipient") set, the bulk and
// the message page's actions reach only the recipients the filter names, never the same message's
// copies for other domains. A confirmation says how many recipients in how many domains first, and a
// release of virus or banned mail needs its own explicit confirmation.
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { countQuarantine } from '../../src/quarantine/count.ts';
import { testApp, uniqueDomains, ADMIN_KEY, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { keySession, type PageClient } from '../support/ui-client.ts';

const NOW = Math.floor(Date.now() / 1000);

/** The hidden fields of the first form posting to `action`, as a browser would send them. */
function hiddenFields(html: string, action: string): Record<string, string[]> {
  const start = html.indexOf(`action="${action}"`);
  if (start < 0) throw new Error(`no form posting to ${action}`);
  const form = html.slice(start, html.indexOf('</form>', start));
  const out: Record<string, string[]> = {};
  for (const m of form.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
    const v = m[2]!
      .replace(/&amp;/g, '&')
      .replace(/&quot;/g, '"')
      .replace(/&lt;/g, '<')
      .replace(/&gt;/g, '>');
    (out[m[1]!] ??= []).push(v);
  }
  return out;
}

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('a filtered list acts on the filtered recipients only, on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let twin: ReleaseTwin;
  let dA: string, dB: string, sd: string;

  const message = (rcpts: string[], extra: Record<string, unknown> = {}) => ({
    timeNum: NOW - 100,
    content: 'S',
    sender: `spam@${sd}`,
    subject: 'scope test',
    spamLevel: 9,
    recipients: rcpts.map((address) => ({ address })),
    ...extra,
  });

  /** The list page's bulk form, as the browser submits it with these ids checked and this button. */
  async function submitBulk(b: PageClient, listPath: string, ids: string[], action: string) {
    const list = await b.page(listPath);
    expect(list.res.status).toBe(200);
    return b.post('/ui/quarantine/bulk', { ...hiddenFields(list.html, '/ui/quarantine/bulk'), ids, action });
  }

  beforeAll(async () => {
    twin = new ReleaseTwin();
    t = await testApp(variantName, { release: twin, env: { LINK_SECRET: 'ui-scope-link-secret-0123456789abcdefghij' } });
    f = new Fixtures(t);
    [dA, dB, sd] = uniqueDomains(3) as [string, string, string];
  });
  beforeEach(() => {
    twin.calls = [];
  });
  afterAll(async () => {
    await f?.cleanup();
    await t?.close();
  });

  it('a bulk release filtered by recipient domain confirms "N recipients in M domains", then releases only those', async () => {
    const [m1, m2] = await f.add(
      message([`a1@${dA}`, `a2@${dA}`, `b1@${dB}`], { subject: 'shared one' }),
      message([`b2@${dB}`, `a3@${dA}`], { subject: 'shared two' }),
    );
    const b = await keySession(t.app, ADMIN_KEY);
    const first = await submitBulk(b, `/ui/quarantine?domain=${dA}`, [m1!, m2!], 'release');
    // a confirmation first: nothing released yet
    expect(first.status).toBe(200);
    expect(twin.calls).toHaveLength(0);
    const confirm = await first.text();
    expect(confirm).toContain('<!DOCTYPE html>');
    expect(confirm).toContain('Releases to 3 recipients in 1 domain');
    expect(confirm).toContain(`a1@${dA}`);
    expect(confirm).not.toContain(`b1@${dB}`);
    expect(await f.rs(m1!)).toEqual([' ', ' ', ' ']);

    const done = await b.post('/ui/quarantine/bulk', hiddenFields(confirm, '/ui/quarantine/bulk'));
    expect(done.status).toBe(303);
    const calls = twin.calls.map((c) => [...c.recipients].sort()).sort((x, y) => x[0]!.localeCompare(y[0]!));
    expect(calls).toEqual([[`a1@${dA}`, `a2@${dA}`], [`a3@${dA}`]]);
    expect(await f.rs(m1!)).toEqual(['R', 'R', ' ']);
    expect(await f.rs(m2!)).toEqual([' ', 'R']);
    // back to the same filter
    expect(done.headers.get('location')).toMatch(new RegExp(`^/ui/quarantine\\?domain=${dA.replace(/\./g, '\\.')}&`));
  });

  it('a bulk delete filtered by one recipient deletes that copy only; unfiltered, it confirms every domain', async () => {
    const [m1] = await f.add(message([`x1@${dA}`, `x2@${dA}`, `y1@${dB}`], { subject: 'delete scope' }));
    const b = await keySession(t.app, ADMIN_KEY);
    const first = await submitBulk(b, `/ui/quarantine?recipient=${encodeURIComponent(`x2@${dA}`)}`, [m1!], 'delete');
    expect(first.status).toBe(200);
    const confirm = await first.text();
    expect(confirm).toContain('Deletes the copies of 1 recipient in 1 domain');
    expect(await f.rs(m1!)).toEqual([' ', ' ', ' ']);
    expect((await b.post('/ui/quarantine/bulk', hiddenFields(confirm, '/ui/quarantine/bulk'))).status).toBe(303);
    expect(await f.rs(m1!)).toEqual([' ', 'D', ' ']);

    // no recipient filter: the confirmation names all pending recipients and both domains
    const all = await (await submitBulk(b, '/ui/quarantine', [m1!], 'release')).text();
    expect(all).toContain('Releases to 2 recipients in 2 domains');
    expect(twin.calls).toHaveLength(0);
  });

  it('the message page opened from a filtered list releases the filtered recipients only', async () => {
    const [m1] = await f.add(message([`p1@${dA}`, `q1@${dB}`], { subject: 'row scope' }));
    const b = await keySession(t.app, ADMIN_KEY);
    const list = await b.page(`/ui/quarantine?domain=${dB}`);
    const href = new RegExp(`href="(/ui/quarantine/${m1!.replace('.', '\\.')}[^"]*)"`).exec(list.html)?.[1]?.replace(/&amp;/g, '&');
    expect(href).toContain(`domain=${dB}`);
    const detail = await b.page(href!);
    expect(detail.html).toContain(`Releases to 1 recipient in 1 domain`);
    const res = await b.post(`/ui/quarantine/${m1}/release`, hiddenFields(detail.html, `/ui/quarantine/${m1}/release`));
    expect(res.status).toBe(303);
    expect(twin.calls.map((c) => c.recipients)).toEqual([[`q1@${dB}`]]);
    expect(await f.rs(m1!)).toEqual([' ', 'R']);
    // a filter that does not parse is a 400 naming it, never a page whose buttons reach everyone
    const bad = await b.page(`/ui/quarantine/${m1}?domain=not_a_domain`);
    expect(bad.res.status).toBe(400);
    expect(bad.html).toContain('domain: not a domain name');
    expect(bad.html).not.toContain('action="/ui/quarantine/');
  });

  it('a bulk release of virus or banned mail needs an explicit confirmation naming it', async () => {
    const [v1, s1] = await f.add(
      message([`v@${dA}`], { content: 'V', subject: 'infected' }),
      message([`s@${dA}`], { subject: 'just spam' }),
    );
    const b = await keySession(t.app, ADMIN_KEY);
    const confirm = await (await submitBulk(b, `/ui/quarantine?domain=${dA}&status=pending`, [v1!, s1!], 'release')).text();
    expect(confirm).toContain('1 of these messages is virus-infected');
    expect(confirm).toMatch(/name="dangerous" value="1"/);
    // confirming without ticking it: the confirmation again, with an error, nothing released
    const again = await b.post('/ui/quarantine/bulk', hiddenFields(confirm, '/ui/quarantine/bulk'));
    expect(again.status).toBe(400);
    expect(await again.text()).toContain('role="alert"');
    expect(twin.calls).toHaveLength(0);
    const ok = await b.post('/ui/quarantine/bulk', { ...hiddenFields(confirm, '/ui/quarantine/bulk'), dangerous: '1' });
    expect(ok.status).toBe(303);
    expect(twin.calls.flatMap((c) => c.recipients).sort()).toEqual([`s@${dA}`, `v@${dA}`]);
  });

  it('after an action: the same filters and page, each failure with why, focus on the result; nothing selected re-shows the list', async () => {
    const [gone, ok] = await f.add(message([`r1@${dA}`], { subject: 'already gone' }), message([`r2@${dA}`], { subject: 'fine' }));
    await f.add(...Array.from({ length: 3 }, (_, i) => message([`r3@${dA}`], { subject: `filler ${i}`, timeNum: NOW - 1000 - i })));
    const b = await keySession(t.app, ADMIN_KEY);
    const list = await b.page(`/ui/quarantine?domain=${dA}&q=already`);
    expect(
      (
        await b.post('/ui/quarantine/bulk', {
          ...hiddenFields(list.html, '/ui/quarantine/bulk'),
          ids: [gone!],
          action: 'delete',
          confirmed: '1',
        })
      ).status,
    ).toBe(303);

    // a page further on (a cursor in the URL): the action returns to that page, not the first
    const cursor = 'AAAA';
    const fields = { ...hiddenFields((await b.page(`/ui/quarantine?domain=${dA}&q=e`)).html, '/ui/quarantine/bulk'), cursor };
    const res = await b.post('/ui/quarantine/bulk', { ...fields, ids: [gone!, ok!], action: 'delete', confirmed: '1' });
    const loc = res.headers.get('location')!;
    expect(loc).toBe(`/ui/quarantine?domain=${dA}&q=e&cursor=${cursor}&done=bulk-delete&ok=1&failed=1&fail=${gone}%7Enothing_to_delete`);
    const shown = await b.page(loc.replace(`cursor=${cursor}&`, ''));
    expect(shown.html).toMatch(/<section class="notice result" role="status"[^>]*tabindex="-1" autofocus/);
    expect(shown.html).toContain('Deleted: 1. Failed: 1.');
    expect(shown.html).toContain(`<a href="/ui/quarantine/${gone}">${gone}</a>: nothing left to delete`);
    expect(shown.html).toContain(`value="${dA}"`); // the filter form still holds the filter

    // nothing ticked: back to the list with the filter and a message, not a 400 page
    const none = await b.post('/ui/quarantine/bulk', { ...hiddenFields(list.html, '/ui/quarantine/bulk'), action: 'release' });
    expect(none.status).toBe(303);
    expect(none.headers.get('location')).toBe(`/ui/quarantine?domain=${dA}&q=already&done=none_selected`);
    const again = await b.page(none.headers.get('location')!);
    expect(again.res.status).toBe(200);
    expect(again.html).toContain('Nothing was selected');
    expect(again.html).toContain('role="alert"');
    expect(twin.calls).toHaveLength(0);
  });

  it('every page starts with <!DOCTYPE html>; an error page keeps the navigation, signed in or not', async () => {
    const b = await keySession(t.app, ADMIN_KEY);
    const [id] = await f.add(message([`d@${dA}`], { subject: 'doctype' }));
    for (const path of [
      '/ui/quarantine',
      `/ui/quarantine/${id}`,
      '/ui/senders',
      '/ui/audit',
      '/ui/gateways',
      '/ui/quarantine/0.nosuchmail1x',
      '/ui/nowhere',
    ]) {
      const page = await b.page(path);
      expect(page.html.startsWith('<!DOCTYPE html><html lang="en">'), path).toBe(true);
    }
    const missing = await b.page('/ui/quarantine/0.nosuchmail1x');
    expect(missing.res.status).toBe(404);
    // "Release requests (n)": the pending requests of every file sharing this database
    expect(missing.html).toMatch(
      /<nav class="main-nav" aria-label="Main"><a href="\/ui">Overview<\/a><a href="\/ui\/quarantine">Quarantine<\/a><a href="\/ui\/senders">Sender lists<\/a><a href="\/ui\/requests">Release requests( \(\d+\))?<\/a><a href="\/ui\/audit">Audit log<\/a><a href="\/ui\/gateways">Gateways<\/a><\/nav>/,
    );
    const anon = await t.app.request('/ui/portal/not-a-token');
    expect(anon.status).toBe(404);
    const html = await anon.text();
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(html).toContain(
      '<nav class="main-nav" aria-label="Main"><a href="/ui/quarantine">Quarantine</a><a href="/ui/sign-in">Sign in</a></nav>',
    );
  });

  it('the list: page size, score range, several types, and a bounded total for the filter', async () => {
    const sub = uniqueDomains(1)[0]!;
    const rc = `list@${sub}`;
    await f.add(
      ...Array.from({ length: 30 }, (_, i) => message([rc], { subject: `page ${i}`, spamLevel: i, timeNum: NOW - 2000 - i })),
      message([rc], { content: 'V', subject: 'a virus', spamLevel: 0, timeNum: NOW - 3000 }),
      message([rc], { content: 'B', subject: 'a banned one', spamLevel: 0, timeNum: NOW - 3001 }),
      message([rc], { content: 'C', subject: 'clean', spamLevel: 0, timeNum: NOW - 3002 }),
    );
    const b = await keySession(t.app, ADMIN_KEY);
    const subjects = (html: string) =>
      [...html.matchAll(/<td data-label="Subject" class="subject"><a [^>]*>([^<]*)<\/a>/g)].map((m) => m[1]);

    const p25 = await b.page(`/ui/quarantine?domain=${sub}&size=25`);
    expect(subjects(p25.html)).toHaveLength(25);
    expect(p25.html).toContain('33 messages match these filters.');
    expect(p25.html).toMatch(/<option value="25" selected="">25<\/option>/);
    const next = /href="([^"]*)" rel="next"/.exec(p25.html)![1]!.replace(/&amp;/g, '&');
    expect(next).toContain('size=25');
    expect(subjects((await b.page(next)).html)).toHaveLength(8);
    expect(subjects((await b.page(`/ui/quarantine?domain=${sub}&size=100`)).html)).toHaveLength(33);

    // score between 10 and 12.5: pages 10, 11, 12
    const scored = await b.page(`/ui/quarantine?domain=${sub}&min_score=10&max_score=12.5`);
    expect(subjects(scored.html).sort()).toEqual(['page 10', 'page 11', 'page 12']);
    expect(scored.html).toContain('3 messages match');
    // several types, as the boxes send them (type=virus&type=banned)
    const typed = await b.page(`/ui/quarantine?domain=${sub}&type=virus&type=banned`);
    expect(subjects(typed.html).sort()).toEqual(['a banned one', 'a virus']);
    expect(typed.html).toContain('Type: virus, banned');
    expect(typed.html).toMatch(/name="type" value="virus" checked=""/);
    // the bulk form carries them on as one comma list
    expect(hiddenFields(typed.html, '/ui/quarantine/bulk').type).toEqual(['virus,banned']);

    // bad input: a 400 naming the field
    for (const [q, field] of [
      ['size=7', 'size'],
      ['min_score=abc', 'min_score'],
      ['min_score=5&max_score=1', 'max_score'],
    ] as const) {
      const r = await b.page(`/ui/quarantine?domain=${sub}&${q}`);
      expect(r.res.status, q).toBe(400);
      expect(r.html).toContain(`${field}:`);
    }
  });

  it('the total is exact up to the cap, then "cap+" from a LIMIT cap+1 subquery', async () => {
    const sub = uniqueDomains(1)[0]!;
    await f.add(...Array.from({ length: 5 }, (_, i) => message([`c@${sub}`], { subject: `count ${i}`, timeNum: NOW - 4000 - i })));
    const who = { role: 'admin', actor: 'test', keyId: null } as const;
    const input = { status: 'pending', domain: sub, limit: 50 } as const;
    expect(await countQuarantine(t.deps, who, input, 5)).toEqual({ count: 5, more: false });
    expect(await countQuarantine(t.deps, who, input, 4)).toEqual({ count: 4, more: true });
    expect(await countQuarantine(t.deps, who, { ...input, q: 'count 3' }, 4)).toEqual({ count: 1, more: false });
    // a domain admin of another domain counts none of them
    expect(await countQuarantine(t.deps, { role: 'domain_admin', actor: 't', keyId: 'k', domains: [dB] }, input)).toEqual({
      count: 0,
      more: false,
    });
  });
});
