// The admin's list in Chromium (playwright-core), releasing through the harness's real amavisd-new:
// a list filtered by recipient domain releases to that domain's recipients only (the sink gets one
// copy, the other domain's stays quarantined), after a confirmation; the filters survive the action;
// page size, score range and shift-click range select; axe finds nothing in light and dark mode at
// 1280 and 390 px. Screenshots go to test-results/ui/.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { BLACKLISTED_SENDER, eicar, startAmavisd, type Harness, type Mail } from './harness/amavisd.ts';
import { AXE, launchChromium } from '../support/browser.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'ui-admin-list-key-0123456789abcdef';
const SHOTS = path.resolve('test-results/ui');
// Two domains amavisd treats as local (.e2e.test): one message to a recipient in each.
const A = 'a.e2e.test';
const B = 'b.e2e.test';

function spamMail(to: string[], subject: string): Mail {
  const messageId = `<list.${randomUUID()}@client.e2e.test>`;
  const raw = [
    `From: Bulk <${BLACKLISTED_SENDER}>`,
    `To: ${to.map((x) => `<${x}>`).join(', ')}`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${messageId}`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    'Content-Type: text/plain; charset=utf-8',
    '',
    'Cheap things.',
    '',
  ].join('\r\n');
  return { from: BLACKLISTED_SENDER, to, raw, messageId, subject, expect: 'S' };
}

describe('the admin list in Chromium, releasing through a real amavisd-new (MariaDB)', () => {
  let h: Harness;
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;
  const ids: Record<string, string> = {};
  const mailIdOf = (subject: string) => ids[subject]!.split('.')[1]!;
  const rs = async (subject: string) =>
    (await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ? ORDER BY rseqnum', [mailIdOf(subject)])).map(
      (r) => r.rs.trim() || ' ',
    );

  beforeAll(async () => {
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
        ADMIN_API_KEY: KEY,
        LINK_SECRET: 'ui-admin-list-link-secret-0123456789abc',
        DATABASE_URL: h.databaseUrl,
        AMAVISD_PDP: `127.0.0.1:${h.pdpPort}`,
      }),
    );
    const mails = [
      spamMail([`ann@${A}`, `xavier@${B}`], 'Shared across two domains'),
      eicar('sender@example.org', `ann@${A}`),
      ...Array.from({ length: 6 }, (_, i) => spamMail([`row${i}@${A}`], `Row ${i}`)),
    ];
    for (const m of mails) {
      await h.submit(m);
      const row = await h.waitForMsg(m.messageId);
      expect(row.quarType, m.subject).toBe('Q');
      ids[m.subject] = `0.${row.mailId}`;
    }
    // scores the score filter can tell apart (amavisd's own depend on SpamAssassin being there)
    for (let i = 0; i < 6; i++) await h.query('UPDATE msgs SET spam_level = ? WHERE mail_id = ?', [20 + i, mailIdOf(`Row ${i}`)]);
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

  /** A signed-in admin page; bypassCSP only so that axe can be injected (the app's CSP is checked elsewhere). */
  async function adminPage(viewport = { width: 1280, height: 900 }, colorScheme: 'light' | 'dark' = 'light') {
    const context = await browser.newContext({ viewport, colorScheme, bypassCSP: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${base}/ui/sign-in`);
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // admins land on the overview
    await page.waitForURL(`${base}/ui`);
    await page.goto(`${base}/ui/quarantine`);
    return { page, errors, close: () => context.close() };
  }

  async function axe(page: Page, what: string) {
    await page.addScriptTag({ path: AXE });
    const r = await page.evaluate(async () => {
      const res = await (globalThis as any).axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
      });
      return res.violations.map((v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`);
    });
    expect(r, what).toEqual([]);
  }

  const subjects = (page: Page) => page.locator('table.list td[data-label="Subject"] a').allTextContents();

  it('filtered by recipient domain, a bulk release confirms "1 recipient in 1 domain" and releases that copy only; the filter stays', async () => {
    const { page, errors, close } = await adminPage();
    await page.getByLabel('Recipient domain').fill(A);
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/domain=a\.e2e\.test/);
    // the action bar appears once a row is ticked
    expect(await page.locator('#bulkbar').isVisible()).toBe(false);
    await page.getByLabel('Select: Shared across two domains').check();
    expect(await page.locator('#bulkbar').isVisible()).toBe(true);
    expect(await page.locator('#sel-count').textContent()).toBe('1 selected');
    await page.getByRole('button', { name: 'Release selected' }).click();
    await page.waitForURL(`${base}/ui/quarantine/bulk`);
    expect(await page.getByRole('status').textContent()).toContain('Releases to 1 recipient in 1 domain.');
    expect(await page.locator('table.list').textContent()).not.toContain(`xavier@${B}`);
    await page.screenshot({ path: path.join(SHOTS, 'admin-confirm-scope-1280.png'), fullPage: true });
    expect(await rs('Shared across two domains')).toEqual([' ', ' ']);

    await page.getByRole('button', { name: 'Releases to 1 recipient in 1 domain' }).click();
    await page.waitForURL(/\/ui\/quarantine\?(.*&)?domain=a\.e2e\.test&(.*&)?done=bulk-release&ok=1&failed=0$/);
    const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailIdOf('Shared across two domains')}-`));
    expect(got.to).toEqual([`ann@${A}`]);
    expect(await rs('Shared across two domains')).toEqual(['R', ' ']);
    // back on the same filter, the result focused
    expect(await page.getByLabel('Recipient domain').inputValue()).toBe(A);
    expect(
      await page.evaluate(() => document.activeElement?.id === 'h-result' || document.activeElement?.classList.contains('result')),
    ).toBe(true);
    expect(await page.locator('.result h2').textContent()).toBe('Released: 1. Failed: 0.');
    await page.screenshot({ path: path.join(SHOTS, 'admin-after-release-1280.png'), fullPage: true });
    expect(errors).toEqual([]);
    await close();
  });

  it('releasing virus mail in bulk needs the box naming it ticked', async () => {
    const { page, close } = await adminPage();
    await page.goto(`${base}/ui/quarantine?type=virus`);
    await page.getByLabel('Select: e2e eicar').check();
    await page.getByRole('button', { name: 'Release selected' }).click();
    await page.waitForURL(`${base}/ui/quarantine/bulk`);
    expect(await page.locator('fieldset.danger-box').textContent()).toContain('1 of these messages is virus-infected');
    await page.screenshot({ path: path.join(SHOTS, 'admin-confirm-virus-1280.png'), fullPage: true });
    // the browser will not submit without the box (required); nothing was released
    await page.getByRole('button', { name: /^Releases to/ }).click();
    expect(page.url()).toBe(`${base}/ui/quarantine/bulk`);
    expect(await rs('e2e eicar')).toEqual([' ']);
    await page.getByRole('link', { name: 'Cancel' }).click();
    await page.waitForURL(`${base}/ui/quarantine?type=virus`);

    // its page says why: the virus amavisd named, the attachment with its SHA-256, the original
    await page.getByRole('link', { name: 'e2e eicar' }).click();
    const verdict = page.locator('section[aria-labelledby="h-verdict"]');
    expect(await verdict.textContent()).toMatch(/virus found: \S+/);
    expect(await page.locator('table.attachments').textContent()).toContain('eicar.com.txt');
    expect(await page.locator('table.attachments code.hash').textContent()).toMatch(/^[0-9a-f]{64}$/);
    expect(await page.getByRole('link', { name: 'Download the original (.eml)' }).getAttribute('href')).toBe(
      `/ui/quarantine/${ids['e2e eicar']}/raw`,
    );
    await axe(page, 'virus message page');
    await page.screenshot({ path: path.join(SHOTS, 'admin-message-virus-1280.png'), fullPage: true });
    await close();
  });

  it('page size, score range, and shift-click selecting a range of rows', async () => {
    const { page, errors, close } = await adminPage();
    await page.getByLabel('Score at least').fill('21');
    await page.getByLabel('Score at most').fill('24.5');
    await page.getByLabel('Per page').selectOption('25');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/min_score=21&max_score=24\.5&size=25/);
    expect((await subjects(page)).sort()).toEqual(['Row 1', 'Row 2', 'Row 3', 'Row 4']);
    expect(await page.locator('#total').textContent()).toBe('4 messages match these filters.');
    expect(await page.getByLabel('Per page').inputValue()).toBe('25');

    const boxes = page.locator('input[name=ids]');
    await boxes.nth(0).click();
    await boxes.nth(3).click({ modifiers: ['Shift'] });
    expect(await boxes.evaluateAll((bs) => bs.map((b) => (b as HTMLInputElement).checked))).toEqual([true, true, true, true]);
    expect(await page.locator('#sel-count').textContent()).toBe('4 selected');
    await boxes.nth(2).click();
    await boxes.nth(1).click({ modifiers: ['Shift'] });
    expect(await boxes.evaluateAll((bs) => bs.map((b) => (b as HTMLInputElement).checked))).toEqual([true, false, false, true]);
    await page.screenshot({ path: path.join(SHOTS, 'admin-range-select-1280.png'), fullPage: true });

    // deleting two of them returns to the same filters, page size included
    await page.getByRole('button', { name: 'Delete selected' }).click();
    await page.getByRole('button', { name: /^Deletes the copies of 2 recipients in 1 domain$/ }).click();
    await page.waitForURL(/min_score=21&max_score=24\.5&size=25&done=bulk-delete&ok=2&failed=0/);
    expect((await subjects(page)).length).toBe(2);
    expect(await page.getByLabel('Score at least').inputValue()).toBe('21');
    // nothing ticked: back to the list with a message
    await page.evaluate(() => {
      document.getElementById('bulkbar')!.hidden = false;
    });
    await page.getByRole('button', { name: 'Release selected' }).click();
    await page.waitForURL(/done=none_selected/);
    expect(await page.getByRole('alert').textContent()).toContain('Nothing was selected');
    expect(errors).toEqual([]);
    await close();
  });

  for (const scheme of ['light', 'dark'] as const) {
    for (const width of [1280, 390]) {
      it(`axe finds nothing on the list, the confirmation and the message page (${scheme}, ${width} px)`, async () => {
        const { page, errors, close } = await adminPage({ width, height: 900 }, scheme);
        await page.goto(`${base}/ui/quarantine?domain=${A}`);
        // on a phone the filters fold to one line naming how many are set, and the first message is on
        // the first screen; on a wide screen they are open with no fold line
        const panel = page.locator('#filter-panel');
        const fold = page.locator('#filter-panel > summary');
        if (width === 390) {
          expect(await panel.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(false);
          expect(await fold.textContent()).toBe('Filter quarantined mail (1)');
          expect(await page.getByLabel('Recipient domain').isVisible()).toBe(false);
          const firstRow = await page.locator('input[name=ids]').first().boundingBox();
          expect(firstRow!.y + firstRow!.height).toBeLessThan(900);
          await fold.click();
          expect(await page.getByLabel('Recipient domain').inputValue()).toBe(A);
          await fold.click();
        } else {
          expect(await panel.evaluate((d) => (d as HTMLDetailsElement).open)).toBe(true);
          expect(await fold.isVisible()).toBe(false);
          expect(await page.getByLabel('Recipient domain').isVisible()).toBe(true);
        }
        await axe(page, `list ${scheme} ${width}`);
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
        await page.screenshot({ path: path.join(SHOTS, `admin-list-${width}-${scheme}.png`), fullPage: true });
        await page.locator('input[name=ids]').first().check();
        await axe(page, `list with the bar ${scheme} ${width}`);
        await page.getByRole('button', { name: 'Release selected' }).click();
        await page.waitForURL(`${base}/ui/quarantine/bulk`);
        await axe(page, `confirmation ${scheme} ${width}`);
        if (width === 390) await page.screenshot({ path: path.join(SHOTS, `admin-confirm-390-${scheme}.png`), fullPage: true });
        await page.goto(`${base}/ui/quarantine/${ids['Shared across two domains']}?domain=${B}`);
        await axe(page, `message ${scheme} ${width}`);
        await page.screenshot({ path: path.join(SHOTS, `admin-message-filtered-${width}-${scheme}.png`), fullPage: true });
        await page.goto(`${base}/ui/quarantine/0.nosuchmail1x`);
        await axe(page, `error page ${scheme} ${width}`);
        expect(errors.filter((e) => !/status of 404/.test(e))).toEqual([]);
        await close();
      });
    }
  }
});
