// Every page a mailbox owner sees, in the owner's language, in Chromium (playwright-core) at 320,
// 390 and 1280 px: the portal list, a spam and a virus message, the digest settings, a digest's
// one-click release link (confirmation, then result, released through the harness's real
// amavisd-new over AM.PDP), the sender lists (an entry added, a malformed one refused) and the
// bulk confirmation. English, Japanese and Russian come from the subscription's language,
// German from the browser's Accept-Language. On each: no horizontal scrolling, the html lang, the
// actions the default release policy allows visible and inside the screen, the forbidden ones
// absent, axe clean (light; dark at 390 px for the list). Screenshots: test-results/owner/.
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser, Locator, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { signLinkSync } from '../../src/digest/links.ts';
import { putSubscription } from '../../src/digest/subscriptions.ts';
import { wordsFor, type Words } from '../../src/digest/wording.ts';
import { signPortalToken } from '../../src/ui/portal-token.ts';
import { AXE, CHROMIUM, launchChromium } from '../support/browser.ts';
import { BLACKLISTED_SENDER, eicar, startAmavisd, type Harness, type Mail } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 180_000, hookTimeout: 180_000 });

const SECRET = 'owner-pages-link-secret-0123456789abcdef';
const SHOTS = path.resolve('test-results/owner');
const NOW = Math.floor(Date.now() / 1000);
const WIDTHS = [320, 390, 1280] as const;

/** RFC 2047 encoded words, folded: a Subject in any script survives SMTP and amavisd as UTF-8. */
function encodedSubject(s: string): string {
  const chars = Array.from(s);
  const words: string[] = [];
  for (let i = 0; i < chars.length; i += 12) {
    words.push(`=?UTF-8?B?${Buffer.from(chars.slice(i, i + 12).join(''), 'utf8').toString('base64')}?=`);
  }
  return words.join('\r\n ');
}

/** Mail from the sender the harness blacklists: amavisd quarantines it as spam. */
function spamMail(to: string, subject: string): Mail {
  const messageId = `<owner.${randomUUID()}@client.e2e.test>`;
  const raw = [
    `From: Bulk <${BLACKLISTED_SENDER}>`,
    `To: <${to}>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${messageId}`,
    `Subject: ${encodedSubject(subject)}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    subject,
    '',
  ].join('\r\n');
  return { from: BLACKLISTED_SENDER, to: [to], raw, messageId, subject, expect: 'S' };
}

interface Owner {
  lang: 'en' | 'ja' | 'ru';
  mailbox: string;
  timeZone: string | null;
  spamSubject: string;
}

// Subjects long enough to wrap on a phone, in each language's script (no spaces in Japanese).
const OWNERS: Owner[] = [
  { lang: 'en', mailbox: 'alice@e2e.test', timeZone: null, spamSubject: 'Your parcel is waiting: confirm the delivery address' },
  {
    lang: 'ja',
    mailbox: 'yuki@e2e.test',
    timeZone: 'Asia/Tokyo',
    spamSubject: '【重要】お客様のアカウント情報の確認が必要です。下記のリンクから至急お手続きを完了してください',
  },
  {
    lang: 'ru',
    mailbox: 'ivan@e2e.test',
    timeZone: 'Europe/Moscow',
    spamSubject: 'Ваш заказ №12345 готов к выдаче: подтвердите адрес доставки в течение двадцати четырёх часов',
  },
];
/** No subscription: the pages follow the browser's Accept-Language. */
const HANS = 'hans@e2e.test';

describe("the owner's pages in Chromium at 320, 390 and 1280 px, in the owner's language (MariaDB, real amavisd-new)", () => {
  let h: Harness;
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;
  /** item ids (`0.<mail_id>`) by mailbox, then kind */
  const ids: Record<string, { spam: string; virus: string }> = {};

  beforeAll(async () => {
    // Fail, never skip: CI installs Chromium (test/e2e/install-browser.sh) and amavisd-new (harness/install.sh).
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
    // without a CJK font the Japanese pages are empty boxes and their screenshots show nothing
    if (!execFileSync('fc-list', [':lang=ja'], { encoding: 'utf8' }).trim()) {
      throw new Error('no Japanese font: apt-get install -y --no-install-recommends fonts-noto-cjk (test/e2e/install-browser.sh)');
    }
    await mkdir(SHOTS, { recursive: true });
    h = await startAmavisd({ db: 'mariadb' });
    const migrator = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 1 });
    try {
      await migrate(migrator.db, migrator.dialect, await loadMigrationFiles(migrator.dialect), () => Date.now());
    } finally {
      await migrator.close();
    }
    runtime = await startRuntime(
      parseConfig({
        ADMIN_API_KEY: 'owner-pages-admin-key-0123456789abcdef',
        LINK_SECRET: SECRET,
        DATABASE_URL: h.databaseUrl,
        AMAVISD_PDP: `127.0.0.1:${h.pdpPort}`,
      }),
    );
    const admin = { role: 'admin', actor: 'test', keyId: null } as const;
    for (const o of OWNERS) {
      await putSubscription(runtime.deps, admin, o.mailbox, { language: o.lang, time_zone: o.timeZone });
    }
    for (const to of [...OWNERS.map((o) => o.mailbox), HANS]) {
      const spam = spamMail(to, OWNERS.find((o) => o.mailbox === to)?.spamSubject ?? 'Günstige Angebote nur heute');
      const virus = eicar('sender@example.org', to);
      const got: string[] = [];
      for (const m of [spam, virus]) {
        await h.submit(m);
        const row = await h.waitForMsg(m.messageId);
        expect(row.quarType, m.subject).toBe('Q');
        got.push(`0.${row.mailId}`);
      }
      ids[to] = { spam: got[0]!, virus: got[1]! };
    }
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: runtime.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await runtime?.close();
    await h?.stop();
  });

  /**
   * A signed-in owner (the portal link, as from the digest). bypassCSP only so that axe can be
   * injected (the pages' CSP is checked in ui-browser.test.ts). An English browser in New York:
   * the subscription's language wins over it, and an owner without a saved zone sees New York times.
   */
  async function ownerPage(mailbox: string, locale = 'en-US') {
    const context = await browser.newContext({
      viewport: { width: 1280, height: 900 },
      bypassCSP: true,
      locale,
      timezoneId: 'America/New_York',
    });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    const token = await signPortalToken(SECRET, mailbox, NOW + 3600);
    await page.goto(`${base}/ui/portal/${token}`);
    await page.locator('main button[type=submit]').click();
    await page.waitForURL(`${base}/ui/quarantine`);
    return { page, errors, close: () => context.close() };
  }

  async function axe(page: Page, what: string) {
    if (!(await page.evaluate(() => 'axe' in globalThis))) await page.addScriptTag({ path: AXE });
    const r = await page.evaluate(async () => {
      const res = await (globalThis as any).axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      });
      return res.violations.map((v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`);
    });
    expect(r, what).toEqual([]);
  }

  /** Fully on screen horizontally and shown: a button cut off at the right edge fails here. */
  async function expectOnScreen(l: Locator, width: number, what: string) {
    expect(await l.isVisible(), `${what} visible`).toBe(true);
    const box = (await l.boundingBox())!;
    expect(box.x, `${what} left edge`).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width, `${what} right edge at ${width} px`).toBeLessThanOrEqual(width + 0.5);
  }

  /**
   * The page at each width: no horizontal scrolling, html lang, `allowed` on screen, `forbidden`
   * nowhere, axe clean, a full-page screenshot test-results/owner/<name>-<lang>-<width>.png.
   */
  async function checkWidths(
    page: Page,
    name: string,
    lang: string,
    allowed: Array<[string, Locator]>,
    forbidden: Array<[string, Locator]> = [],
  ) {
    for (const width of WIDTHS) {
      await page.setViewportSize({ width, height: 900 });
      const what = `${name} ${lang} ${width} px`;
      expect(await page.evaluate(() => document.documentElement.lang), what).toBe(lang);
      // on failure the message names the elements that reach past the right edge
      const o = await page.evaluate(() => ({
        scroll: document.documentElement.scrollWidth,
        inner: window.innerWidth,
        wide: Array.from(document.querySelectorAll('body *'))
          .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 0.5)
          .slice(0, 5)
          .map((e) => `${e.tagName.toLowerCase()}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`),
      }));
      expect(o.scroll, `${what}: scrollWidth ${o.scroll} > ${o.inner}: ${o.wide.join('; ')}`).toBeLessThanOrEqual(o.inner);
      for (const [label, l] of allowed) await expectOnScreen(l, width, `${what}: ${label}`);
      for (const [label, l] of forbidden) expect(await l.count(), `${what}: ${label} must not be offered`).toBe(0);
      await axe(page, what);
      await page.screenshot({ path: path.join(SHOTS, `${name}-${lang}-${width}.png`), fullPage: true });
    }
  }

  const button = (page: Page, name: string) => page.getByRole('button', { name, exact: true });

  for (const o of OWNERS) {
    describe(`${o.lang} (the subscription's language)`, () => {
      const w: Words = wordsFor(o.lang);

      it('the portal list: the bulk bar once a row is ticked, its count in the language; dark mode at 390 px', async () => {
        const { page, errors, close } = await ownerPage(o.mailbox);
        try {
          const subjects = page.locator('table.list td[data-label] a[href^="/ui/quarantine/"]');
          expect((await subjects.allTextContents()).map((s) => s.trim())).toEqual(expect.arrayContaining([o.spamSubject]));
          // the script hides the bar until a row is ticked, then counts in the page's language
          const bar = page.locator('#bulkbar');
          expect(await bar.isHidden()).toBe(true);
          const boxes = page.locator('input[name=ids]');
          expect(await boxes.count()).toBe(2);
          await boxes.nth(0).check();
          expect(await page.locator('#sel-count').textContent()).toBe(w.t('page.list.selected', { n: 1 }));
          await boxes.nth(1).check();
          expect(await page.locator('#sel-count').textContent()).toBe(w.t('page.list.selected', { n: 2 }));
          // the footer's zone line: the saved zone as the server wrote it, else the browser's (the script)
          const footer = await page.locator('footer').textContent();
          expect(footer).toContain(o.timeZone ?? 'America/New_York');
          await checkWidths(page, 'list', o.lang, [
            [w.t('page.list.release_sel'), button(page, w.t('page.list.release_sel'))],
            [w.t('page.list.delete_sel'), button(page, w.t('page.list.delete_sel'))],
          ]);
          await page.setViewportSize({ width: 390, height: 900 });
          await page.emulateMedia({ colorScheme: 'dark' });
          await axe(page, `list ${o.lang} 390 px dark`);
          await page.screenshot({ path: path.join(SHOTS, `list-${o.lang}-390-dark.png`), fullPage: true });
          expect(errors).toEqual([]);
        } finally {
          await close();
        }
      });

      it('a spam message offers Release (and allow) and Delete; a virus only "Request release" and Delete', async () => {
        const { page, errors, close } = await ownerPage(o.mailbox);
        try {
          await page.goto(`${base}/ui/quarantine/${ids[o.mailbox]!.spam}`);
          expect((await page.getByRole('heading', { level: 1 }).textContent())?.trim()).toBe(o.spamSubject);
          await checkWidths(
            page,
            'message-spam',
            o.lang,
            [
              [w.t('action.release'), button(page, w.t('action.release'))],
              [w.t('action.release_allow'), button(page, w.t('action.release_allow'))],
              [w.t('action.delete'), button(page, w.t('action.delete'))],
            ],
            [[w.t('action.request'), button(page, w.t('action.request'))]],
          );
          await page.goto(`${base}/ui/quarantine/${ids[o.mailbox]!.virus}`);
          expect(await page.locator('body').textContent()).toContain(w.t('act.not_allowed.request'));
          await checkWidths(
            page,
            'message-virus',
            o.lang,
            [
              [w.t('action.request'), button(page, w.t('action.request'))],
              [w.t('action.delete'), button(page, w.t('action.delete'))],
            ],
            [
              [w.t('action.release'), button(page, w.t('action.release'))],
              [w.t('action.release_allow'), button(page, w.t('action.release_allow'))],
            ],
          );
          expect(errors).toEqual([]);
        } finally {
          await close();
        }
      });

      it('the digest settings page', async () => {
        const { page, errors, close } = await ownerPage(o.mailbox);
        try {
          await page.goto(`${base}/ui/subscription`);
          expect(await page.getByLabel(w.t('page.settings.enabled')).isChecked()).toBe(true);
          await checkWidths(page, 'settings', o.lang, [
            [w.t('page.settings.enabled'), page.getByLabel(w.t('page.settings.enabled'))],
            [w.t('page.settings.frequency'), page.getByLabel(w.t('page.settings.frequency'))],
            [w.t('page.settings.tz'), page.getByLabel(w.t('page.settings.tz'))],
            [w.t('page.settings.save'), button(page, w.t('page.settings.save'))],
          ]);
          expect(errors).toEqual([]);
        } finally {
          await close();
        }
      });

      it('the sender lists: an allowed sender added (its Remove button), a malformed one refused in the language', async () => {
        const { page, errors, close } = await ownerPage(o.mailbox);
        try {
          await page.goto(`${base}/ui/senders`);
          // long enough not to fit a phone's line: it must wrap, not widen the page
          const sender = `newsletter.${o.lang}@a-rather-long-subdomain.of-the-shop-that-sends-it.example`;
          await page.locator('#a-sender').fill(sender);
          await page.locator('#a-list').selectOption('allow');
          await button(page, w.t('page.senders.add_button')).click();
          await page.waitForURL(/done=created/);
          expect(await page.getByRole('status').textContent()).toBe(w.t('page.senders.done.created'));
          const remove = page.getByRole('button', {
            name: w.t('page.senders.remove_label', { sender, recipient: o.mailbox, list: w.t('page.senders.kind.allow') }),
            exact: true,
          });
          await checkWidths(page, 'senders', o.lang, [
            [w.t('page.senders.add_button'), button(page, w.t('page.senders.add_button'))],
            [w.t('page.senders.remove'), remove],
          ]);
          // a malformed sender: 400, said in the owner's words (not the verb's "expected a@b.example")
          await page.setViewportSize({ width: 1280, height: 900 });
          await page.locator('#a-sender').fill('not an address');
          await button(page, w.t('page.senders.add_button')).click();
          await expect.poll(() => page.getByRole('alert').textContent()).toBe(w.t('page.senders.err_sender'));
          // the browser logs the page's 400 status: that one is expected
          await expect.poll(() => errors.findIndex((e) => /status of 400/.test(e))).toBeGreaterThanOrEqual(0);
          errors.splice(
            errors.findIndex((e) => /status of 400/.test(e)),
            1,
          );
          await checkWidths(page, 'senders-refused', o.lang, [
            [w.t('page.senders.add_button'), button(page, w.t('page.senders.add_button'))],
            [w.t('page.senders.remove'), remove],
          ]);
          // leave the lists as they were
          await page.setViewportSize({ width: 1280, height: 900 });
          await remove.click();
          await page.waitForURL(/done=removed/);
          expect(errors).toEqual([]);
        } finally {
          await close();
        }
      });

      it('the bulk confirmations: "Delete selected" says what it reaches; "Release selected" skips the virus, no box to tick', async () => {
        const { page, errors, close } = await ownerPage(o.mailbox);
        try {
          const boxes = page.locator('input[name=ids]');
          await boxes.nth(0).check();
          await boxes.nth(1).check();
          await button(page, w.t('page.list.delete_sel')).click();
          await page.waitForURL(`${base}/ui/quarantine/bulk`);
          const label = w.t('page.bulk.action.delete');
          expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(w.n('page.bulk.heading', 2, { label }));
          // both messages are the owner's: two copies, one domain
          const summary = w.n('page.bulk.delete_of', 2, { where: w.n('page.bulk.in_domains', 1) });
          await checkWidths(page, 'bulk-confirm', o.lang, [
            [summary, button(page, summary)],
            [w.t('page.bulk.cancel'), page.getByRole('link', { name: w.t('page.bulk.cancel'), exact: true })],
          ]);
          await page.getByRole('link', { name: w.t('page.bulk.cancel'), exact: true }).click();
          await page.waitForURL(`${base}/ui/quarantine`);
          expect(await page.locator('input[name=ids]').count()).toBe(2);

          // "Release selected" with the virus among them: the policy keeps it from the owner, so the
          // page says it is skipped and offers no box to confirm releasing it
          await page.setViewportSize({ width: 1280, height: 900 });
          await page.locator('input[name=ids]').nth(0).check();
          await page.locator('input[name=ids]').nth(1).check();
          await button(page, w.t('page.list.release_sel')).click();
          await page.waitForURL(`${base}/ui/quarantine/bulk`);
          const release = w.t('page.bulk.action.release');
          expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(w.n('page.bulk.heading', 2, { label: release }));
          expect(await page.locator('#skipped').textContent()).toBe(w.n('page.bulk.not_releasable', 1));
          expect(await page.locator('input[name=dangerous]').count()).toBe(0);
          const releases = w.n('page.bulk.release_to', 1, { where: w.n('page.bulk.in_domains', 1) });
          await checkWidths(page, 'bulk-release-confirm', o.lang, [
            [releases, button(page, releases)],
            [w.t('page.bulk.cancel'), page.getByRole('link', { name: w.t('page.bulk.cancel'), exact: true })],
          ]);
          await page.getByRole('link', { name: w.t('page.bulk.cancel'), exact: true }).click();
          await page.waitForURL(`${base}/ui/quarantine`);
          expect(errors).toEqual([]);
        } finally {
          await close();
        }
      });

      it("a digest's release link: the confirmation (GET), then the result; amavisd delivers it", async () => {
        const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true, locale: 'en-US' });
        const page = await context.newPage();
        try {
          const [, mailId] = ids[o.mailbox]!.spam.split('.');
          const token = signLinkSync(SECRET, {
            action: 'release',
            partitionTag: 0,
            mailId: mailId!,
            recipient: o.mailbox,
            expires: NOW + 3600,
          });
          const res = await page.goto(`${base}/a/${token}`);
          expect(res?.status()).toBe(200);
          expect(await page.locator('h1').textContent()).toBe(w.t('act.release.heading'));
          expect(await page.locator('body').textContent()).toContain(o.spamSubject);
          await checkWidths(page, 'action-confirm', o.lang, [[w.t('act.release.button'), button(page, w.t('act.release.button'))]]);
          expect(await h.sink()).not.toEqual(expect.arrayContaining([expect.objectContaining({ to: [o.mailbox] })]));

          await page.setViewportSize({ width: 1280, height: 900 });
          await button(page, w.t('act.release.button')).click();
          await expect.poll(() => page.locator('h1').textContent()).toBe(w.t('act.released.heading'));
          await checkWidths(page, 'action-result', o.lang, [[w.t('act.see_rest'), page.getByRole('link', { name: w.t('act.see_rest') })]]);
          const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailId}-`));
          expect(got.to).toEqual([o.mailbox]);
        } finally {
          await context.close();
        }
      });
    });
  }

  it('without a saved language: the portal list and the settings in the Accept-Language (de) of the browser', async () => {
    const w = wordsFor('de');
    const { page, errors, close } = await ownerPage(HANS, 'de-DE');
    try {
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe(w.t('page.list.title'));
      await page.locator('input[name=ids]').first().check();
      expect(await page.locator('#sel-count').textContent()).toBe(w.t('page.list.selected', { n: 1 }));
      await checkWidths(page, 'list', 'de', [
        [w.t('page.list.release_sel'), button(page, w.t('page.list.release_sel'))],
        [w.t('page.list.delete_sel'), button(page, w.t('page.list.delete_sel'))],
      ]);
      // the settings: no language saved, so the menu's "Automatic" says what it gives (these pages
      // German by the browser, the digest English: no DIGEST_LANGUAGE here) and is the one selected
      await page.setViewportSize({ width: 1280, height: 900 });
      await page.goto(`${base}/ui/subscription`);
      const menu = page.getByLabel(w.t('page.settings.language'));
      expect(await menu.inputValue()).toBe('');
      expect((await menu.locator('option:checked').textContent())?.trim()).toBe(w.t('page.settings.lang_auto_plain'));
      expect(await page.locator('#s-language-help').textContent()).toContain(
        w.t('page.settings.lang_auto_split', { pages: 'Deutsch', digest: 'English' }),
      );
      // the selected option is read whole on a phone, not cut at the select's edge
      await page.setViewportSize({ width: 320, height: 900 });
      const fits = await menu.evaluate((s: HTMLSelectElement) => {
        // a select does not scroll: measure the selected text in its font against its box, less padding and the arrow
        const cs = getComputedStyle(s);
        const ctx = document.createElement('canvas').getContext('2d')!;
        ctx.font = `${cs.fontWeight} ${cs.fontSize} ${cs.fontFamily}`;
        const text = ctx.measureText(s.options[s.selectedIndex]!.text).width;
        return { text, room: s.clientWidth - Number.parseFloat(cs.paddingLeft) - Number.parseFloat(cs.paddingRight) - 20 };
      });
      expect(fits.text, `the selected language option is ${fits.text} px in ${fits.room} px`).toBeLessThanOrEqual(fits.room);
      await page.setViewportSize({ width: 1280, height: 900 });
      await checkWidths(page, 'settings', 'de', [
        [w.t('page.settings.language'), menu],
        [w.t('page.settings.save'), button(page, w.t('page.settings.save'))],
      ]);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });
});
