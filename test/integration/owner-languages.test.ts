import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadCustomTemplates } from '../../src/digest/templates.node.ts';
import { CATALOGS } from '../../src/digest/templates.generated.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { VARIANTS } from '../support/databases.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { portalSession } from '../support/ui-client.ts';

// The owner's language (issue 16.4, README: Languages): the digest and the owner's pages in every
// catalog's words; the subscription's language, then DIGEST_LANGUAGE, then (pages only)
// Accept-Language; per-language .custom templates; date filters as days in the owner's zone.
const SECRET = 'owner-languages-secret-0123456789abcdefgh';
const NOW = Math.floor(Date.now() / 1000);
const LANGS = Object.keys(CATALOGS);

/** Text as a reader sees it: mustache's and hono's entities undone. */
const plain = (html: string) =>
  html
    .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCodePoint(Number.parseInt(h, 16)))
    .replace(/&#(\d+);/g, (_, d: string) => String.fromCodePoint(Number(d)))
    .replaceAll('&quot;', '"')
    .replaceAll('&lt;', '<')
    .replaceAll('&gt;', '>')
    .replaceAll('&amp;', '&');
const langOf = (html: string) => /<html lang="([^"]+)"/.exec(html)?.[1];
/** The default subject for `n` messages in that language (its plural rule, its catalog). */
const subjectIn = (lang: string, n: number) =>
  CATALOGS[lang]![`subject.${new Intl.PluralRules(lang).select(n)}`]!.replace('{total}', String(n));

describe.each(VARIANTS)("the owner's language on %s", (variantName) => {
  let t: TestApp; // no DIGEST_LANGUAGE
  let tDe: TestApp; // DIGEST_LANGUAGE=de
  let tCustom: TestApp; // digest.custom.html and digest.de.custom.html
  let f: Fixtures;
  let resend: ResendTwin;
  let domain: string;
  let templateDir: string;
  const env = (extra: Record<string, string> = {}) => ({
    LINK_SECRET: SECRET,
    PUBLIC_URL: 'https://q.example.test',
    DIGEST_FROM: 'Quarantine <q@example.test>',
    RESEND_API_KEY: 're_test',
    RESEND_BASE_URL: resend.url,
    ...extra,
  });
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
  const setSub = async (app: TestApp, address: string, body: Record<string, string>) => {
    const res = await app.get(`/v1/digests/subscriptions/${address}`, ADMIN_KEY, {
      method: 'PUT',
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
  };
  const runDigests = async (app: TestApp, recipients: string[]) => {
    const res = await app.get('/v1/digests/run', ADMIN_KEY, {
      method: 'POST',
      body: JSON.stringify({ force_all: true, recipients }),
      headers: { 'content-type': 'application/json' },
    });
    expect(res.status).toBe(200);
    return (to: string) => {
      const sent = resend.emails.filter((e) => e.to[0] === to);
      expect(sent, `one digest to ${to}`).toHaveLength(1);
      return sent[0]!;
    };
  };
  /** The owner's quarantine page, signed in through a portal link, with these request headers. */
  const ownerPage = async (app: TestApp, mailbox: string, path = '/ui/quarantine', headers: Record<string, string> = {}) => {
    const b = await portalSession(app.app, SECRET, mailbox, NOW + 3600);
    const res = await b.request(path, { headers });
    expect(res.status).toBe(200);
    return res.text();
  };

  beforeAll(async () => {
    resend = await startResendTwin();
    templateDir = mkdtempSync(join(tmpdir(), 'qe-lang-templates-'));
    writeFileSync(
      join(templateDir, 'digest.custom.html'),
      '<!doctype html><html lang="{{language}}"><body><p>GENERIC CUSTOM</p></body></html>\n',
    );
    writeFileSync(
      join(templateDir, 'digest.de.custom.html'),
      '<!doctype html><html lang="{{language}}"><body><p>GERMAN CUSTOM</p></body></html>\n',
    );
    t = await testApp(variantName, { env: env() });
    tDe = await testApp(variantName, { env: env({ DIGEST_LANGUAGE: 'de' }) });
    tCustom = await testApp(variantName, { env: env(), templates: loadCustomTemplates(templateDir) });
    f = new Fixtures(t);
    [domain] = uniqueDomains(1) as [string];
  });
  beforeEach(() => resend.reset());
  afterAll(async () => {
    await f?.cleanup();
    if (t) {
      await t.handle.db.deleteFrom('qe_digest_subscriptions').where('domain', '=', domain).execute();
      await t.handle.db.deleteFrom('qe_digest_state').where('recipient', 'like', `%@${domain}`).execute();
      await t.handle.db.deleteFrom('qe_digest_sends').where('recipient', 'like', `%@${domain}`).execute();
    }
    await Promise.all([t?.close(), tDe?.close(), tCustom?.close()]);
    await resend?.close();
    if (templateDir) rmSync(templateDir, { recursive: true, force: true });
  });

  it("a digest and the owner's quarantine page in each catalog's language (lang attribute, its words, its subject)", async () => {
    expect(LANGS.length).toBeGreaterThanOrEqual(7);
    const who = (lang: string) => `all-${lang.toLowerCase()}@${domain}`;
    for (const lang of LANGS) {
      await mail(who(lang), { subject: 'first', timeNum: NOW - 3600 });
      await mail(who(lang), { subject: 'second', timeNum: NOW - 3000 });
      await setSub(t, who(lang), { language: lang });
    }
    const emailTo = await runDigests(
      t,
      LANGS.map((l) => who(l)),
    );
    for (const lang of LANGS) {
      const cat = CATALOGS[lang]!;
      const email = emailTo(who(lang));
      expect(email.subject, lang).toBe(subjectIn(lang, 2));
      expect(langOf(email.html!), lang).toBe(lang);
      expect(plain(email.html!), lang).toContain(cat.review_all);
      expect(plain(email.html!), lang).toContain(cat['reason.spam']);
      expect(email.text, lang).toContain(cat.review_all);

      const page = await ownerPage(t, who(lang));
      expect(langOf(page), lang).toBe(lang);
      expect(plain(page), lang).toContain(cat['page.list.title']);
      expect(plain(page), lang).toContain(cat['page.nav.settings']);
      if (lang !== 'en') expect(page, lang).not.toContain(CATALOGS.en!['page.nav.settings']);
    }
  });

  it("DIGEST_LANGUAGE is the default for emails and pages; a subscription's language wins over it", async () => {
    const dora = `dora@${domain}`; // nothing chosen
    const ivan = `ivan@${domain}`; // chose Russian
    await mail(dora);
    await mail(ivan);
    await setSub(tDe, ivan, { language: 'ru' });
    const emailTo = await runDigests(tDe, [dora, ivan]);
    expect(emailTo(dora).subject).toBe(subjectIn('de', 1));
    expect(langOf(emailTo(dora).html!)).toBe('de');
    expect(emailTo(ivan).subject).toBe(subjectIn('ru', 1));
    expect(langOf(emailTo(ivan).html!)).toBe('ru');

    // pages: DIGEST_LANGUAGE comes before the browser's Accept-Language; the saved language before both
    const doraPage = await ownerPage(tDe, dora, '/ui/quarantine', { 'accept-language': 'ja' });
    expect(langOf(doraPage)).toBe('de');
    expect(plain(doraPage)).toContain(CATALOGS.de!['page.list.title']);
    const ivanPage = await ownerPage(tDe, ivan, '/ui/quarantine', { 'accept-language': 'ja' });
    expect(langOf(ivanPage)).toBe('ru');
    // not signed in: DIGEST_LANGUAGE
    const signIn = await tDe.app.request('/ui/sign-in', { headers: { 'accept-language': 'ja' } });
    expect(langOf(await signIn.text())).toBe('de');
    // without DIGEST_LANGUAGE the same owner's next digest (the new message only) is English
    await mail(dora, { timeNum: NOW - 60 });
    resend.reset();
    const plainRun = await runDigests(t, [dora]);
    expect(plainRun(dora).subject).toBe(subjectIn('en', 1));
    expect(langOf(plainRun(dora).html!)).toBe('en');
  });

  it('Accept-Language picks the page language when nothing is saved: q-values, primary language, no Traditional → Simplified', async () => {
    const noa = `noa@${domain}`; // no subscription row at all
    const ptCatalog = 'pt-BR' in CATALOGS ? 'pt-BR' : 'en';
    const cases: Array<[string, string]> = [
      // the highest q wins, not the first named
      ['en;q=0.5, de;q=0.9', 'de'],
      ['ru;q=0.3, nl, ja;q=0.8', 'nl'],
      ['xx-YY, ru;q=0.1', 'ru'],
      ['de;q=0, ja', 'ja'],
      ['zh, en;q=0.5', 'zh-CN'],
      ['zh-Hans-CN', 'zh-CN'],
      ['zh-TW, ja;q=0.3', 'ja'],
      ['NL-be', 'nl'],
      ['pl-PL;q=1.0, de;q=0.8', 'pl'],
      // Portuguese of any region is the Brazilian catalog (English until that catalog exists)
      ['pt-PT, en;q=0.1', ptCatalog],
      ['*', 'en'],
    ];
    const b = await portalSession(t.app, SECRET, noa, NOW + 3600);
    for (const [header, lang] of cases) {
      const res = await b.request('/ui/quarantine', { headers: { 'accept-language': header } });
      expect(res.status).toBe(200);
      const html = await res.text();
      expect(langOf(html), header).toBe(lang);
      expect(plain(html), header).toContain(CATALOGS[lang]!['page.list.title']);
      // the sign-in page too, for someone not signed in
      const signIn = await t.app.request('/ui/sign-in', { headers: { 'accept-language': header } });
      expect(langOf(await signIn.text()), header).toBe(lang);
    }
    // once a language is saved, the browser's no longer decides
    await setSub(t, noa, { language: 'nl' });
    const res = await b.request('/ui/quarantine', { headers: { 'accept-language': 'ja' } });
    expect(langOf(await res.text())).toBe('nl');
  });

  it('a per-language custom template (digest.de.custom.html) wins over digest.custom.html for German readers only', async () => {
    const greta = `greta@${domain}`;
    const emma = `emma@${domain}`;
    const olga = `olga@${domain}`;
    for (const a of [greta, emma, olga]) await mail(a);
    await setSub(tCustom, greta, { language: 'de' });
    await setSub(tCustom, olga, { language: 'ru' });
    const emailTo = await runDigests(tCustom, [greta, emma, olga]);
    expect(emailTo(greta).html).toContain('GERMAN CUSTOM');
    expect(emailTo(greta).html).not.toContain('GENERIC CUSTOM');
    expect(langOf(emailTo(greta).html!)).toBe('de');
    expect(emailTo(greta).subject).toBe(subjectIn('de', 1));
    for (const [who, lang] of [
      [emma, 'en'],
      [olga, 'ru'],
    ] as const) {
      expect(emailTo(who).html).toContain('GENERIC CUSTOM');
      expect(emailTo(who).html).not.toContain('GERMAN CUSTOM');
      expect(langOf(emailTo(who).html!)).toBe(lang);
    }
    // the text part has no custom template: the default, in each reader's words
    expect(emailTo(greta).text).toContain(CATALOGS.de!.review_all);
    expect(emailTo(olga).text).toContain(CATALOGS.ru!.review_all);
  });

  it("date filters on the owner's quarantine are whole days in the owner's saved zone (a DST day included)", async () => {
    // 2026-03-29 in Europe/Berlin: 23 hours, from 2026-03-28T23:00Z (CET) to 2026-03-29T22:00Z (CEST)
    const at = (iso: string) => Date.parse(iso) / 1000;
    const add = async (to: string) => {
      await mail(to, { subject: 'before the day', timeNum: at('2026-03-28T22:59:59Z') });
      await mail(to, { subject: 'first second', timeNum: at('2026-03-28T23:00:00Z') });
      await mail(to, { subject: 'last second', timeNum: at('2026-03-29T21:59:59Z') });
      await mail(to, { subject: 'next day in Berlin', timeNum: at('2026-03-29T22:00:00Z') });
      await mail(to, { subject: 'late UTC evening', timeNum: at('2026-03-29T23:30:00Z') });
    };
    const subjects = ['before the day', 'first second', 'last second', 'next day in Berlin', 'late UTC evening'];
    const shown = (html: string) => subjects.filter((s) => html.includes(s));
    const day = '/ui/quarantine?since=2026-03-29&until=2026-03-29';

    const bea = `bea@${domain}`;
    await add(bea);
    await setSub(t, bea, { time_zone: 'Europe/Berlin' });
    const inBerlin = await ownerPage(t, bea, day);
    expect(inBerlin).toContain('(Europe/Berlin)');
    expect(shown(inBerlin).sort()).toEqual(['first second', 'last second']);

    // without a saved zone the same day is UTC's
    const uli = `uli@${domain}`;
    await add(uli);
    const inUtc = await ownerPage(t, uli, day);
    expect(shown(inUtc).sort()).toEqual(['late UTC evening', 'last second', 'next day in Berlin'].sort());
  });

  it("the sender lists, the bulk confirmation and the message notices read in the owner's language too", async () => {
    const gerd = `gerd@${domain}`;
    await setSub(t, gerd, { language: 'de' });
    const [id] = await mail(gerd, { subject: 'sammeln' });
    const de = CATALOGS.de!;
    const b = await portalSession(t.app, SECRET, gerd, NOW + 3600);

    const senders = await b.page('/ui/senders');
    expect(senders.res.status).toBe(200);
    expect(langOf(senders.html)).toBe('de');
    expect(plain(senders.html)).toContain(de['page.senders.intro']!);

    const list = await b.page('/ui/quarantine');
    const confirm = await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, ids: [id!], action: 'delete' });
    expect(confirm.status).toBe(200);
    const page = plain(await confirm.text());
    expect(page).toContain(de['page.bulk.heading.one']!.replace('{label}', de['page.bulk.action.delete']!).replace('{n}', '1'));
    expect(page).not.toContain('Cancel');
  });

  it("an owner's action results, report buttons and sender-list errors in German and Japanese: their catalog's words, no amavisd, no scope", async () => {
    for (const lang of ['de', 'ja']) {
      const cat = CATALOGS[lang]!;
      const fill = (key: string, vars: Record<string, string | number>) =>
        Object.entries(vars).reduce((s, [k, v]) => s.replaceAll(`{${k}}`, String(v)), cat[key]!);
      const owner = `act-${lang}@${domain}`;
      await setSub(t, owner, { language: lang });
      const [one, nul, other] = [
        (await mail(owner, { subject: `eins ${lang}` }))[0]!,
        (await mail(owner, { subject: `null ${lang}`, sender: '' }))[0]!,
        (await mail(owner, { subject: `two ${lang}` }))[0]!,
      ];
      const [foreign] = await mail(`someone-else-${lang}@${domain}`, { subject: 'not theirs' });
      const b = await portalSession(t.app, SECRET, owner, NOW + 3600);
      /** what the page says about the action: its notices and alerts, as text */
      const said = (html: string) =>
        [...html.matchAll(/<(p|section) class="notice[^"]*"[^>]*>([\s\S]*?)<\/\1>/g)]
          .map((m) => plain(m[2]!.replace(/<[^>]*>/g, ' ')))
          .join(' ')
          .replace(/\s+/g, ' ')
          .trim();
      const admin = /amavisd|scope|null sender|\(S\)|Failed|Teach the spam/i;

      // the message page: report buttons and "release and report" in the owner's words
      const detail = await b.page(`/ui/quarantine/${one}`);
      const text = plain(detail.html);
      for (const key of ['page.report.heading', 'page.report.spam', 'page.report.ham', 'page.report.release_ham'])
        expect(text, `${lang} ${key}`).toContain(cat[key]);
      expect(text).not.toContain('Teach the spam filter');

      // a release this server cannot do (no AMAVISD_PDP): plain words, not the operator's setting
      const rel = await b.post(`/ui/quarantine/${one}/release`, { csrf: detail.csrf! });
      expect(rel.status).toBe(303);
      const relPage = await b.page(rel.headers.get('location')!);
      expect(said(relPage.html), lang).toContain(cat['act.failed.other']);
      expect(said(relPage.html), lang).not.toMatch(admin);

      // a report with no learner set up: 501, said in the owner's language
      const rep = await b.post(`/ui/quarantine/${one}/report`, { csrf: detail.csrf!, kind: 'spam' });
      expect(rep.status).toBe(501);
      const repSaid = said(await rep.text());
      expect(repSaid, lang).toContain(cat['page.report.err.learner_not_configured']);
      expect(repSaid, lang).not.toMatch(admin);

      // a bulk delete-and-block: one blocked is refused (no sender), one is another mailbox's
      const list = await b.page('/ui/quarantine');
      const bulk = await b.post('/ui/quarantine/bulk', {
        csrf: list.csrf!,
        action: 'delete_block',
        ids: [other, nul, foreign!],
        confirmed: '1',
      });
      expect(bulk.status).toBe(303);
      const result = said((await b.page(bulk.headers.get('location')!)).html);
      expect(result, lang).toContain(fill('page.result.bulk.delete_block', { ok: 1, failed: 2 }));
      expect(result, lang).toContain(cat[`page.result.no_sender.${new Intl.PluralRules(lang).select(1)}`]!.replace('{n}', '1'));
      expect(result, lang).toContain(cat['page.result.no_sender_this']);
      expect(result, lang).toContain(cat['act.gone.message']);
      expect(result, lang).not.toMatch(admin);
      // a release of a virus the owner may not release (default policy: request): no box to tick,
      // the confirmation says it is skipped; confirmed without the box it is refused by the policy alone
      const [virus] = await mail(owner, { subject: `virus ${lang}`, content: 'V' });
      const [spam] = await mail(owner, { subject: `spam ${lang}` });
      const relConfirm = await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, action: 'release', ids: [spam!, virus!] });
      expect(relConfirm.status).toBe(200);
      const relHtml = await relConfirm.text();
      expect(relHtml).not.toContain('name="dangerous"');
      expect(plain(relHtml), lang).toContain(cat[`page.bulk.not_releasable.${new Intl.PluralRules(lang).select(1)}`]!.replace('{n}', '1'));
      const relDone = await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, action: 'release', ids: [spam!, virus!], confirmed: '1' });
      expect(relDone.status).toBe(303);
      const relSaid = said((await b.page(relDone.headers.get('location')!)).html);
      expect(relSaid, lang).toContain(cat['page.reason.not_allowed']);
      expect(relSaid, lang).not.toMatch(admin);
      expect(await f.rs(virus!)).toEqual([' ']);
      // nothing ticked
      const none = await b.post('/ui/quarantine/bulk', { csrf: list.csrf!, action: 'delete' });
      expect(said((await b.page(none.headers.get('location')!)).html), lang).toBe(cat['page.result.none_selected']);
      // a plain delete
      const del = await b.post(`/ui/quarantine/${one}/delete`, { csrf: detail.csrf! });
      expect(said((await b.page(del.headers.get('location')!)).html), lang).toBe(cat['act.deleted.message']);

      // another mailbox's message (or one gone): a 404 in the owner's words, not the verb's
      const theirs = await b.page(`/ui/quarantine/${foreign}`);
      expect(theirs.res.status).toBe(404);
      expect(plain(theirs.html), lang).toContain(`<h1>${cat['page.error.not_found_title']}</h1>`);
      expect(plain(theirs.html), lang).toContain(cat['page.error.not_found']);
      expect(theirs.html).not.toContain('no quarantined message with this id');

      // the sender list refuses a malformed sender in the owner's words, not the verb's
      const senders = await b.page('/ui/senders');
      const bad = await b.post('/ui/senders/add', { csrf: senders.csrf!, recipient: owner, sender: 'not an address', list: 'allow' });
      expect(bad.status).toBe(400);
      expect(said(await bad.text()), lang).toBe(cat['page.senders.err_sender']);
      const filtered = await b.page('/ui/senders?sender=not%20an%20address');
      expect(filtered.res.status).toBe(400);
      expect(said(filtered.html), lang).toBe(cat['page.senders.err_filter_sender']);
    }
  });
});
