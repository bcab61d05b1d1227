// The admin list's sorting and CSV export in Chromium (playwright-core), over PostgreSQL with
// iRedMail's schema (bytea subjects and senders): each column header sorts (and sorts back), keeping
// the filter and page size, with aria-sort on the sorted column; the page shows what the API's
// verb returns for that order; "Download CSV" downloads exactly what the filter shows; axe finds
// nothing on the sorted list in light and dark mode at 1280 and 390 px. Screenshot:
// test-results/ui/admin-list-sorted-1280.png. No amavisd needed (nothing is released).
import { readFile, mkdir } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';
import { AXE, CHROMIUM, launchChromium } from '../support/browser.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'ui-admin-sort-key-0123456789abcdef';
const SHOTS = path.resolve('test-results/ui');
const VARIANT = 'pg-iredmail' as const;
const OPTS = { suffix: runSuffix('uisort') };
const A = 'sorted.example.com';
const B = 'other.example.net';
const NOW = Math.floor(Date.now() / 1000);

describe('sorting the admin list and downloading it as CSV, in Chromium (PostgreSQL, iRedMail schema)', () => {
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
    await mkdir(SHOTS, { recursive: true });
    const url = await createVariantDatabase(VARIANT, OPTS);
    runtime = await startRuntime(
      parseConfig({ ADMIN_API_KEY: KEY, LINK_SECRET: 'ui-admin-sort-link-secret-0123456789ab', DATABASE_URL: url }),
    );
    const subjects = [
      'Quarterly invoice',
      'annual report',
      'Zebra crossing',
      'Ärger im Büro',
      '=SUM(A1) injected',
      'Invoice',
      'Meeting, "urgent"',
    ];
    const senders = ['billing@shop.example', 'news@letters.example', 'alerts@bank.example', 'zed@last.example'];
    const scores = [7.5, null, 12.25, 7.5, 0, 3.1, 25];
    const mail: AmavisMessage[] = subjects.map((subject, i) => ({
      timeNum: NOW - 3600 * (i + 1) - (i % 2) * 60,
      content: scores[i] === null ? 'V' : 'S',
      sender: senders[i % senders.length]!,
      subject,
      spamLevel: scores[i],
      recipients: [{ address: `user${i}@${A}` }],
    }));
    mail.push({
      timeNum: NOW - 10,
      content: 'S',
      sender: 'x@y.example',
      subject: 'Other domain',
      spamLevel: 99,
      recipients: [{ address: `u@${B}` }],
    });
    await writeMessages(runtime.handle.db, runtime.variant, mail);
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
    await dropVariantDatabase(VARIANT, OPTS);
  });

  /** A signed-in admin page; bypassCSP only so that axe can be injected. */
  async function adminPage(viewport = { width: 1280, height: 900 }, colorScheme: 'light' | 'dark' = 'light') {
    const context = await browser.newContext({ viewport, colorScheme, bypassCSP: true, acceptDownloads: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    await page.goto(`${base}/ui/sign-in`);
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/ui`); // admins land on the overview
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

  /** The ids of the rows on the page, in order (from the selection boxes). */
  const pageIds = (page: Page) =>
    page.locator('table.list input[name="ids"]').evaluateAll((els) => els.map((e) => (e as HTMLInputElement).value));
  /** The same order from the API (the one list verb). */
  async function apiIds(query: string): Promise<string[]> {
    const res = await fetch(`${base}/v1/quarantine?${query}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status).toBe(200);
    return ((await res.json()) as { items: Array<{ id: string }> }).items.map((i) => i.id);
  }

  it('each column header sorts, then sorts back; filter and page size stay; aria-sort follows', async () => {
    const { page, errors, close } = await adminPage();
    await page.goto(`${base}/ui/quarantine?domain=${A}&size=25`);
    expect(await page.locator('th[aria-sort]').getAttribute('aria-sort')).toBe('descending');
    expect(await pageIds(page)).toEqual(await apiIds(`domain=${A}&sort=received&order=desc`));
    const columns: Array<[string, string, 'asc' | 'desc']> = [
      ['score', 'Score', 'desc'],
      ['subject', 'Subject', 'asc'],
      ['sender', 'Sender', 'asc'],
      ['received', 'Received', 'desc'],
    ];
    for (const [key, label, first] of columns) {
      // the first click sorts in the column's natural order, the second turns it around
      for (const order of [first, first === 'asc' ? 'desc' : 'asc']) {
        await page.locator(`#sort-${key}`).click();
        await page.waitForURL((u) => u.searchParams.get('sort') === key && u.searchParams.get('order') === order);
        const u = new URL(page.url());
        expect(u.searchParams.get('domain')).toBe(A);
        expect(u.searchParams.get('size')).toBe('25');
        const th = page.locator('th[aria-sort]');
        expect(await th.count()).toBe(1);
        expect(await th.getAttribute('aria-sort')).toBe(order === 'asc' ? 'ascending' : 'descending');
        expect(await th.locator('a').textContent()).toContain(label);
        expect(await page.getByLabel('Sort by').inputValue()).toBe(key);
        const ids = await pageIds(page);
        expect(ids).toHaveLength(7);
        expect(ids).toEqual(await apiIds(`domain=${A}&sort=${key}&order=${order}`));
      }
    }
    // what the reader sees: scores highest first with the missing one last; subjects by bytes (upper case first)
    await page.goto(`${base}/ui/quarantine?domain=${A}&sort=score&order=desc`);
    expect(await page.locator('table.list td[data-label="Score"]').allTextContents()).toEqual([
      '25',
      '12.25',
      '7.5',
      '7.5',
      '3.1',
      '0',
      '—',
    ]);
    await page.goto(`${base}/ui/quarantine?domain=${A}&sort=subject&order=asc`);
    expect(await page.locator('table.list td[data-label="Subject"] a').allTextContents()).toEqual([
      '=SUM(A1) injected',
      'Invoice',
      'Meeting, "urgent"',
      'Quarterly invoice',
      'Zebra crossing',
      'annual report',
      'Ärger im Büro',
    ]);
    // the filter bar keeps the order when the filters change
    await page.getByLabel('Score at least').fill('5');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/min_score=5/);
    expect(new URL(page.url()).searchParams.get('sort')).toBe('subject');
    expect(await page.locator('table.list td[data-label="Subject"] a').allTextContents()).toEqual([
      'Meeting, "urgent"',
      'Quarterly invoice',
      'Zebra crossing',
      'Ärger im Büro',
    ]);
    expect(errors).toEqual([]);
    await close();
  });

  it('"Download CSV" downloads what the filter shows, in its order, formula-safe', async () => {
    const { page, close } = await adminPage();
    await page.goto(`${base}/ui/quarantine?domain=${A}&sort=score&order=asc&min_score=0`);
    const shown = await pageIds(page);
    expect(shown).toHaveLength(6);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'Download CSV' }).click()]);
    expect(download.suggestedFilename()).toBe('quarantine.csv');
    const csv = await readFile((await download.path())!, 'utf8');
    const lines = csv.split('\r\n').filter(Boolean);
    expect(lines[0]).toBe('id,received_at,type,score,sender,from_header,subject,recipients,recipient_statuses,size,message_id,client_addr');
    expect(lines.slice(1).map((l) => l.split(',')[0])).toEqual(shown);
    expect(csv).toContain(",'=SUM(A1) injected,");
    expect(csv).toContain('"Meeting, ""urgent"""');
    expect(csv).not.toContain('Other domain');
    await close();
  });

  it('the sorted list is axe-clean at 1280 and 390 px, light and dark; screenshot', async () => {
    for (const width of [1280, 390]) {
      for (const scheme of ['light', 'dark'] as const) {
        const { page, errors, close } = await adminPage({ width, height: 900 }, scheme);
        await page.goto(`${base}/ui/quarantine?domain=${A}&sort=score&order=desc`);
        await axe(page, `sorted list ${width} ${scheme}`);
        if (width === 1280 && scheme === 'light') {
          await page.screenshot({ path: path.join(SHOTS, 'admin-list-sorted-1280.png'), fullPage: true });
        }
        if (width === 390 && scheme === 'light') {
          // on a phone the order is set from the filter panel, folded until opened
          await page.locator('#filter-panel > summary').click();
          await page.getByLabel('Sort by').selectOption('subject');
          await page.getByLabel('Order').selectOption('asc');
          await page.getByRole('button', { name: 'Apply filters' }).click();
          await page.waitForURL(/sort=subject&order=asc/);
          expect(await page.locator('table.list td[data-label="Subject"] a').first().textContent()).toBe('=SUM(A1) injected');
          await page.screenshot({ path: path.join(SHOTS, 'admin-list-sorted-390.png'), fullPage: true });
        }
        expect(errors).toEqual([]);
        await close();
      }
    }
  });
});
