// An admin's digest as a mail client shows it (README "An admin's digest"): the real composed HTML
// (default templates, the compose code the job runs) in Debian's Chromium at 390 and 600 px, as
// test/e2e/digest-browser.test.ts does for the owners' digest; and the confirmation page of one of
// its links for virus mail (the box to tick), with axe. Screenshots go to test-results/digest/.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parseConfig } from '../../src/config.ts';
import { composeDigest } from '../../src/digest/compose.ts';
import type { PlannedMessage } from '../../src/digest/plan.ts';
import { renderHtml, templatesWith } from '../../src/digest/render.ts';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const CHROMIUM = '/usr/bin/chromium';
const AXE = createRequire(import.meta.url).resolve('axe-core/axe.min.js');
const SHOTS = path.resolve('test-results/digest');
const NOW = 1_790_000_000;
const ACTIONS = ['release', 'release_allow', 'delete'] as const;

const message = (i: number, contentCode: string, recipient: string, extra: Partial<PlannedMessage> = {}): PlannedMessage => ({
  partitionTag: 0,
  mailId: `M${String(i).padStart(11, '0')}`,
  timeNum: NOW - 900 * i,
  contentCode,
  subject: `Your weekly offers, number ${i}`,
  sender: `offers${i}@shop.example`,
  score: contentCode === 'S' ? (81 + i) / 10 : null,
  reason: '',
  actions: [...ACTIONS],
  recipient,
  ...extra,
});

/** Several recipients of two domains, every kind, a null sender, a long recipient address, more than fit. */
const MESSAGES: PlannedMessage[] = [
  message(1, 'V', 'bob@example.com', {
    subject: 'Invoice 2026-0915 attached',
    sender: 'billing@suppl1er.example',
    reason: 'virus: Eicar-Signature',
  }),
  message(2, 'B', 'carol@example.net', {
    subject: 'Scan from the office printer',
    sender: 'scanner@printers.example',
    reason: 'banned: invoice.exe',
  }),
  message(3, 'S', 'alice@example.com', { subject: 'Undeliverable: returned mail', sender: '' }),
  message(4, 'S', `${'a.very.long.mailbox.name.'.repeat(3)}x@an-extremely-long-subdomain.of-a-mail-domain.example.net`),
  ...Array.from({ length: 20 }, (_, i) => message(5 + i, 'S', i % 2 ? 'alice@example.com' : 'dave@example.net')),
];

describe("an admin's digest in Chromium at 390 and 600 px", () => {
  let browser: Browser;
  let html: string;
  let text: string;

  beforeAll(async () => {
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
        recipient: 'admin-digest:adg_e2e',
        total: 32,
        timeZone: 'Europe/Berlin',
        from: null,
        to: { time: NOW, mailId: 'M00000000001' },
        kinds: { spam: 28, virus: 1, banned: 1, other: 2 },
        messages: MESSAGES,
        admin: { id: 'adg_e2e', address: 'postmaster@example.com', keyId: 'key_e2eAdminKey01', domains: ['example.com', 'example.net'] },
      },
      'k'.repeat(64),
    );
    expect(mail.to).toBe('postmaster@example.com');
    expect(mail.subject).toBe('32 messages were quarantined in example.com, example.net');
    html = mail.html!;
    text = mail.text!;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
  });

  it('the text part: each item names its recipient, lines within 78 columns but for a URL or an address alone', () => {
    expect([...text.matchAll(/^ {2}To:\s+(\S+)$/gm)].map((m) => m[1])).toEqual(MESSAGES.slice(0, 20).map((m) => m.recipient));
    for (const line of text.split('\n')) if (/\s/.test(line.trim())) expect(line.length, line).toBeLessThanOrEqual(78);
  });

  for (const width of [390, 600]) {
    it(`${width} px: no horizontal scrolling; every item shows its recipient; every button visible, 44 px tall`, async () => {
      const context = await browser.newContext({ viewport: { width, height: 900 } });
      const page = await context.newPage();
      const requests: string[] = [];
      await page.route('**/*', (route) => {
        requests.push(route.request().url());
        return route.abort();
      });
      try {
        await page.setContent(html, { waitUntil: 'load' });
        const overflow = await page.evaluate(() => ({ scroll: document.documentElement.scrollWidth, inner: window.innerWidth }));
        expect(overflow.scroll, `scrollWidth ${overflow.scroll} > ${overflow.inner}`).toBeLessThanOrEqual(overflow.inner);
        const body = (await page.textContent('body'))!;
        for (const m of MESSAGES.slice(0, 20)) expect(body).toContain(`To ${m.recipient}`);
        expect(body).toContain('and 12 more messages');
        expect(body).toContain('Review them in the admin pages');
        const buttons = await page.$$eval('a[href*="/a/"]', (as) =>
          as.map((a) => {
            const r = a.getBoundingClientRect();
            return { text: a.textContent!.trim(), left: r.left, right: r.right, height: r.height, width: r.width };
          }),
        );
        const actions = buttons.filter((b) => /^(Release|Release and always allow sender|Delete)$/.test(b.text));
        // three each, less "always allow" for the null sender
        expect(actions).toHaveLength(20 * 3 - 1);
        for (const b of actions) {
          expect(b.width, b.text).toBeGreaterThan(0);
          expect(b.height, `${b.text} is ${b.height} px tall`).toBeGreaterThanOrEqual(44);
          expect(b.left, b.text).toBeGreaterThanOrEqual(0);
          expect(b.right, b.text).toBeLessThanOrEqual(width);
        }
        // the "review" and "more" links open the admin pages, not a signed portal link
        const admin = await page.$$eval('a[href*="/ui/quarantine"]', (as) => as.map((a) => a.getAttribute('href')));
        expect(admin).toEqual(['https://quarantine.example.com/ui/quarantine', 'https://quarantine.example.com/ui/quarantine']);
        await page.screenshot({ path: path.join(SHOTS, `admin-digest-${width}.png`) });
        await page.evaluate(() => document.querySelectorAll('table.qe-line')[3]!.scrollIntoView());
        await page.screenshot({ path: path.join(SHOTS, `admin-digest-${width}-long.png`) });
        expect(requests).toEqual([]);
      } finally {
        await context.close();
      }
    });
  }

  it("a link's confirmation for virus mail at 390 px: the box to tick, 44 px targets; axe finds nothing", async () => {
    const page0 = renderHtml(templatesWith({})['action.html'], {
      lang: 'en',
      title: 'Release this message?',
      heading: 'Release this message?',
      message: 'Nothing happens until you press the button. You act as your API key key_e2eAdminKey01.',
      kind: 'confirm',
      details: [
        { label: 'Subject', value: 'Invoice 2026-0915 attached' },
        { label: 'To', value: 'bob@example.com' },
      ],
      form: {
        button: 'Release to the recipient',
        note: 'The message is delivered to bob@example.com as it arrived.',
        danger: false,
        action_url: '/a/x',
        confirm: 'I understand this is mail with a virus and mean to release it',
      },
      links: [{ label: "Open this recipient's quarantine in the admin pages", url: '/ui/quarantine?recipient=bob%40example.com' }],
      items: [],
    });
    const context = await browser.newContext({ viewport: { width: 390, height: 700 } });
    const page = await context.newPage();
    try {
      await page.setContent(page0);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      const box = page.getByLabel('I understand this is mail with a virus and mean to release it');
      expect(await box.getAttribute('required')).not.toBeNull();
      const label = await page.$eval('label.confirm', (l) => l.getBoundingClientRect().height);
      expect(label).toBeGreaterThanOrEqual(44);
      await page.addScriptTag({ path: AXE });
      const violations = await page.evaluate(async () => {
        const res = await (globalThis as any).axe.run(document, {
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
        });
        return res.violations.map((v: any) => v.id);
      });
      expect(violations).toEqual([]);
      await page.screenshot({ path: path.join(SHOTS, 'admin-action-virus-390.png'), fullPage: true });
    } finally {
      await context.close();
    }
  });
});
