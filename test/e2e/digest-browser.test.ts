// The digest email as a mail client shows it: the real composed HTML (default templates, the
// compose code the digest job runs) rendered in Debian's Chromium at phone and desktop widths.
// Also in German, Japanese and Russian, and the "email me a link" (portal-link) email in four
// languages. Needs Chromium only (no amavisd): the emails are composed in-process. Screenshots go
// to test-results/digest/.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { composeDigest } from '../../src/digest/compose.ts';
import { DEFAULT_RULES, ownerActions, policyTypeOf } from '../../src/quarantine/release-policy.ts';
import { messageActions } from '../../src/digest/message-actions.ts';
import type { PlannedMessage } from '../../src/digest/plan.ts';
import { portalLinkEmail } from '../../src/digest/portal-mail.ts';
import { renderHtml, templatesWith } from '../../src/digest/render.ts';
import { wordsFor } from '../../src/digest/wording.ts';
import { CHROMIUM, launchChromium } from '../support/browser.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const SHOTS = path.resolve('test-results/digest');
const NOW = 1_790_000_000;

const message = (i: number, contentCode: string, extra: Partial<PlannedMessage> = {}): PlannedMessage => ({
  partitionTag: 0,
  mailId: `M${String(i).padStart(11, '0')}`,
  timeNum: NOW - 900 * i,
  contentCode,
  subject: `Your weekly offers, number ${i}`,
  sender: `offers${i}@shop.example`,
  score: contentCode === 'S' ? 8.1 + i / 10 : null,
  reason: '',
  ...extra,
});

/** What a real mailbox gets: every kind, a null sender, text that does not break on its own, and more than fit. */
const MESSAGES: PlannedMessage[] = [
  message(1, 'V', { subject: 'Invoice 2026-0915 attached', sender: 'billing@suppl1er.example', reason: 'virus: Eicar-Signature' }),
  message(2, 'B', { subject: 'Scan from the office printer', sender: 'scanner@printers.example', reason: 'banned: invoice.exe' }),
  message(3, 'S', { subject: 'Undeliverable: returned mail', sender: '' }),
  message(4, 'S', {
    subject: 'A'.repeat(120),
    sender: `${'very.long.local.part.'.repeat(5)}x@an-extremely-long-subdomain.of-a-mail-domain.example`,
  }),
  message(5, 'H', { subject: 'Newsletter: Umlaute ä ö ü and emoji 🎉 in the subject, which is long enough to wrap on a phone' }),
  ...Array.from({ length: 20 }, (_, i) => message(6 + i, 'S')),
];

describe('the digest email in Chromium at 320, 390 and 600 px', () => {
  let browser: Browser;
  let html: string;

  beforeAll(async () => {
    // Fail, never skip: CI installs Chromium (test/e2e/install-browser.sh).
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
    await mkdir(SHOTS, { recursive: true });
    const config = parseConfig({
      PUBLIC_URL: 'https://quarantine.example.com',
      LINK_SECRET: 'digest-browser-secret-0123456789abcdef',
      DIGEST_FROM: 'Quarantine <q@example.com>',
    });
    const mail = await composeDigest(
      { config, templates: templatesWith({}), now: NOW },
      {
        recipient: 'alice@example.com',
        total: 32,
        timeZone: 'Europe/Berlin',
        from: null,
        to: { time: NOW, mailId: 'M00000000001' },
        kinds: { spam: 28, virus: 1, banned: 1, other: 2 },
        messages: MESSAGES,
      },
      'k'.repeat(64),
    );
    html = mail.html!;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
  });

  for (const width of [320, 390, 600]) {
    for (const scheme of ['light', 'dark'] as const) {
      it(`${width} px, ${scheme}: no horizontal scrolling; every button visible and at least 44 px tall`, async () => {
        const context = await browser.newContext({ viewport: { width, height: 900 }, colorScheme: scheme });
        const page = await context.newPage();
        // a mail client loads nothing for the email: any request it makes is a failure here
        const requests: string[] = [];
        await page.route('**/*', (route) => {
          requests.push(route.request().url());
          return route.abort();
        });
        try {
          await page.setContent(html, { waitUntil: 'load' });
          const overflow = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
          expect(overflow.scroll, `scrollWidth ${overflow.scroll} > ${overflow.inner}`).toBeLessThanOrEqual(overflow.inner);

          // the buttons: "Review all", then each listed message's Release / (allow) / Delete
          const buttons = await page.$$eval('a[href*="/a/"]', (as) =>
            as.map((a) => {
              const r = a.getBoundingClientRect();
              const cs = getComputedStyle(a);
              return {
                text: a.textContent!.trim(),
                top: r.top + window.scrollY,
                left: r.left,
                right: r.right,
                height: r.height,
                visible: cs.visibility !== 'hidden' && cs.display !== 'none' && r.width > 0,
              };
            }),
          );
          const actions = buttons.filter((b) =>
            /^(Release|Release and always allow sender|Request release|Delete|Review all in your quarantine)$/.test(b.text),
          );
          // the 20 listed messages' buttons as the default release policy allows them (virus and
          // banned: request, not release; no "always allow" for the null sender), plus "Review all"
          const allowed = (m: PlannedMessage) => new Set<string>(ownerActions(DEFAULT_RULES, policyTypeOf(m.contentCode)));
          const expected = MESSAGES.slice(0, 20).reduce((n, m) => n + messageActions(m, allowed(m)).length, 1);
          // three each, less one for the virus, the banned, the null sender and the unlistable long sender
          expect(expected).toBe(20 * 3 - 4 + 1);
          expect(actions).toHaveLength(expected);
          for (const b of actions) {
            expect(b.visible, b.text).toBe(true);
            expect(b.height, `${b.text} is ${b.height} px tall`).toBeGreaterThanOrEqual(44);
            expect(b.left, b.text).toBeGreaterThanOrEqual(0);
            expect(b.right, b.text).toBeLessThanOrEqual(width);
          }
          // the card is at most 600 px wide, fluid below
          const card = await page.$eval('table.qe-card', (t) => t.getBoundingClientRect().width);
          expect(card).toBeLessThanOrEqual(600);
          expect(card).toBeGreaterThan(width - 40);
          expect(await page.textContent('body')).toContain('and 12 more messages');
          await page.screenshot({ path: path.join(SHOTS, `digest-${width}-${scheme}.png`), fullPage: false });
          if (scheme === 'light') {
            await page.screenshot({ path: path.join(SHOTS, `digest-${width}-full.png`), fullPage: true });
            // the long unbreakable subject and sender, and the end ("and M more", the footer)
            await page.evaluate(() => document.querySelectorAll('table.qe-line')[3]!.scrollIntoView());
            await page.screenshot({ path: path.join(SHOTS, `digest-${width}-long.png`) });
            await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
            await page.screenshot({ path: path.join(SHOTS, `digest-${width}-end.png`) });
          }
          expect(requests).toEqual([]);
        } finally {
          await context.close();
        }
      });
    }
  }

  /** The digest's and the portal email's buttons (not the text links, a.qe-link) as a phone shows them. */
  async function buttonsIn(page: Page, names: string[]) {
    const found = await page.$$eval('a[href]:not(.qe-link)', (as) =>
      as.map((a) => {
        const r = a.getBoundingClientRect();
        return { text: a.textContent!.trim(), left: r.left, right: r.right, height: r.height, shown: r.width > 0 };
      }),
    );
    return found.filter((b) => names.includes(b.text));
  }

  // The owner's language (the subscription's): German, and two scripts that wrap differently
  // (Japanese has no spaces, Russian has long words). Same layout, same buttons, in their words.
  for (const lang of ['de', 'ja', 'ru'] as const) {
    it(`in ${lang} (the subscription's language): its words, no overflow, every button on screen and 44 px tall at 320, 390 and 600 px`, async () => {
      const w = wordsFor(lang);
      const config = parseConfig({
        PUBLIC_URL: 'https://quarantine.example.com',
        LINK_SECRET: 'digest-browser-secret-0123456789abcdef',
        DIGEST_FROM: 'Quarantine <q@example.com>',
      });
      const mail = await composeDigest(
        { config, templates: templatesWith({}), now: NOW },
        {
          recipient: 'alice@example.com',
          total: 32,
          timeZone: lang === 'ja' ? 'Asia/Tokyo' : 'Europe/Berlin',
          language: lang,
          from: null,
          to: { time: NOW, mailId: 'M00000000001' },
          kinds: { spam: 28, virus: 1, banned: 1, other: 2 },
          messages: MESSAGES,
        },
        'k'.repeat(64),
      );
      expect(mail.html).toContain(`<html lang="${lang}">`);
      expect(mail.subject).toBe(w.n('subject', 32, { total: 32 }));
      expect(mail.text).toContain(w.t('action.request'));
      const names = ['action.release', 'action.release_allow', 'action.request', 'action.delete', 'review_all'].map((k) => w.t(k));
      const allowed = (m: PlannedMessage) => new Set<string>(ownerActions(DEFAULT_RULES, policyTypeOf(m.contentCode)));
      const expected = MESSAGES.slice(0, 20).reduce((n, m) => n + messageActions(m, allowed(m)).length, 1);
      for (const width of [320, 390, 600]) {
        const context = await browser.newContext({ viewport: { width, height: 900 } });
        const page = await context.newPage();
        await page.route('**/*', (route) => route.abort());
        try {
          await page.setContent(mail.html!, { waitUntil: 'load' });
          const o = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
          expect(o.scroll, `${lang} ${width} px: scrollWidth ${o.scroll} > ${o.inner}`).toBeLessThanOrEqual(o.inner);
          const buttons = await buttonsIn(page, names);
          expect(buttons, `${lang} ${width} px`).toHaveLength(expected);
          for (const b of buttons) {
            expect(b.shown, b.text).toBe(true);
            expect(b.height, `${lang} ${width} px: ${b.text} is ${b.height} px tall`).toBeGreaterThanOrEqual(44);
            expect(b.left, b.text).toBeGreaterThanOrEqual(0);
            expect(b.right, `${lang} ${width} px: ${b.text}`).toBeLessThanOrEqual(width);
          }
          expect(await page.textContent('body')).toContain(w.n('more', 12));
          await page.screenshot({ path: path.join(SHOTS, `digest-${width}-${lang}.png`) });
          if (width === 390) {
            // the long unbreakable subject and sender in this language's layout
            await page.evaluate(() => document.querySelectorAll('table.qe-line')[3]!.scrollIntoView());
            await page.screenshot({ path: path.join(SHOTS, `digest-${width}-${lang}-long.png`) });
          }
        } finally {
          await context.close();
        }
      }
    });
  }

  // "Email me a link": the portal-link email as composed for the sign-in page's request.
  for (const lang of ['en', 'de', 'ja', 'ru'] as const) {
    it(`the portal-link email in ${lang}: its words, no overflow, the open button on screen and 44 px tall at 320, 390 and 600 px; dark too`, async () => {
      const w = wordsFor(lang);
      // a long address that does not break on its own: it must wrap, not widen the email
      const mailbox = `${'firstname.middlename.lastname.'.repeat(2)}x@an-extremely-long-subdomain.of-a-mail-domain.example`;
      const mail = portalLinkEmail(templatesWith({}), w, {
        mailbox,
        portalUrl: `https://quarantine.example.com/ui/portal/${'t'.repeat(120)}`,
        expires: NOW + 3600,
        timeZone: lang === 'ja' ? 'Asia/Tokyo' : lang === 'ru' ? 'Europe/Moscow' : null,
      });
      expect(mail.subject).toBe(w.t('portal.subject'));
      expect(mail.html).toContain(`<html lang="${lang}">`);
      expect(mail.text).toContain('https://quarantine.example.com/ui/portal/');
      for (const width of [320, 390, 600]) {
        for (const scheme of ['light', 'dark'] as const) {
          const context = await browser.newContext({ viewport: { width, height: 700 }, colorScheme: scheme });
          const page = await context.newPage();
          const requests: string[] = [];
          await page.route('**/*', (route) => {
            requests.push(route.request().url());
            return route.abort();
          });
          try {
            await page.setContent(mail.html, { waitUntil: 'load' });
            const o = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
            expect(o.scroll, `${lang} ${width} px ${scheme}: scrollWidth ${o.scroll} > ${o.inner}`).toBeLessThanOrEqual(o.inner);
            const [open] = await buttonsIn(page, [w.t('portal.open')]);
            expect(open, `${lang} ${width} px: the open button`).toBeDefined();
            expect(open!.shown).toBe(true);
            expect(open!.height).toBeGreaterThanOrEqual(44);
            expect(open!.left).toBeGreaterThanOrEqual(0);
            expect(open!.right).toBeLessThanOrEqual(width);
            const body = await page.textContent('body');
            expect(body).toContain(w.t('portal.heading'));
            expect(body).toContain(w.t('portal.ignore'));
            await page.screenshot({ path: path.join(SHOTS, `portal-link-${lang}-${width}${scheme === 'dark' ? '-dark' : ''}.png`) });
            expect(requests).toEqual([]);
          } finally {
            await context.close();
          }
        }
      }
    });
  }

  it('the one-click pages at 320 px: delete set apart in danger style, 44 px buttons, the way on', async () => {
    const action = templatesWith({})['action.html'];
    const details = [
      { label: 'Subject', value: 'Invoice 2026-0915 attached' },
      { label: 'From', value: 'billing@suppl1er.example' },
    ];
    const pages = {
      delete: renderHtml(action, {
        title: 'Delete this message?',
        heading: 'Delete this message?',
        message: 'Nothing happens until you press the button.',
        kind: 'confirm',
        details,
        form: { button: 'Delete this message', note: 'Deleted messages cannot be recovered.', danger: true, action_url: '/a/x' },
        links: [{ label: 'Open your quarantine', url: '/a/p' }],
        items: [],
      }),
      release: renderHtml(action, {
        title: 'Release this message?',
        heading: 'Release this message?',
        message: 'Nothing happens until you press the button.',
        kind: 'confirm',
        details,
        form: {
          button: 'Release to my mailbox',
          note: 'The message is delivered to your mailbox as it arrived.',
          danger: false,
          action_url: '/a/x',
        },
        links: [{ label: 'Open your quarantine', url: '/a/p' }],
        items: [],
      }),
    };
    const colours: Record<string, string> = {};
    for (const [name, html] of Object.entries(pages)) {
      const context = await browser.newContext({ viewport: { width: 320, height: 640 } });
      const page = await context.newPage();
      try {
        await page.setContent(html);
        expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
        const button = await page.$eval('button', (b) => ({
          height: b.getBoundingClientRect().height,
          bg: getComputedStyle(b).backgroundColor,
          color: getComputedStyle(b).color,
        }));
        expect(button.height).toBeGreaterThanOrEqual(44);
        colours[name] = `${button.bg} ${button.color}`;
        expect(await page.textContent('ul.next')).toContain('Open your quarantine');
        await page.screenshot({ path: path.join(SHOTS, `action-${name}-320.png`), fullPage: true });
      } finally {
        await context.close();
      }
    }
    expect(colours.delete).not.toBe(colours.release);
  });
});
