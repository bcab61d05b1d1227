// The admin's overview (/ui) and audit page in Chromium (playwright-core) over PostgreSQL filled by
// the demo generator: the charts are drawn and have their tables, the numbers are the API's
// (GET /v1/quarantine/stats with the page's window), axe finds nothing in light and dark mode at
// 1280 and 390 px, nothing overflows sideways; the audit page's filter goes into the URL and its
// CSV download holds the rows the page shows. Screenshots go to test-results/ui/.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { sql } from 'kysely';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { detectSchema, text } from '../../src/amavis/schema.ts';
import { recordAudit } from '../../src/audit/audit.ts';
import type { Identity } from '../../src/auth/identity.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { seedDemo } from '../../src/demo/seed.ts';
import { createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';
import { AXE, CHROMIUM, launchChromium } from '../support/browser.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'ui-dashboard-admin-key-0123456789abcdef';
const SHOTS = path.resolve('test-results/ui');
const NOW = Math.floor(Date.now() / 1000);
const DB = { suffix: runSuffix('dash') };

/** An RFC 4180 reader. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') (cell += '"'), i++;
      else if (ch === '"') quoted = false;
      else cell += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') row.push(cell), (cell = '');
    else if (ch === '\r' && text[i + 1] === '\n') row.push(cell), rows.push(row), (row = []), (cell = ''), i++;
    else cell += ch;
  }
  return rows;
}

describe('the overview and the audit page in Chromium (PostgreSQL, demo data)', () => {
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
    await mkdir(SHOTS, { recursive: true });
    const url = await createVariantDatabase('pg-iredmail', DB);
    const h = await openDatabase({ url, runtime: 'node', poolSize: 2 });
    try {
      const v = await detectSchema(h.db, h.dialect);
      await seedDemo(h.db, v, { messages: 1500, now: NOW, seed: 11, domains: 14, senders: 60, spanSeconds: 30 * 86400 });
      // a few released and deleted copies, and audit rows for them
      const { rows } = await sql<{ partition_tag: number; mail_id: unknown; email: unknown }>`
        SELECT mr.partition_tag, mr.mail_id, r.email FROM msgrcpt mr JOIN maddr r ON r.id = mr.rid ORDER BY mr.mail_id LIMIT 12`.execute(
        h.db,
      );
      const admin: Identity = { role: 'admin', actor: 'key:e2eops', keyId: null };
      for (const [i, r] of rows.entries()) {
        const rs = i % 3 === 0 ? 'D' : 'R';
        await sql`UPDATE msgrcpt SET rs = ${rs} WHERE partition_tag = ${r.partition_tag} AND mail_id = ${r.mail_id}`.execute(h.db);
        const address = text(r.email);
        await recordAudit(h.db, { now: () => (NOW - (rows.length - i) * 3600) * 1000 }, admin, {
          action: rs === 'D' ? 'delete' : 'release',
          result: rs === 'D' ? 'ok' : i % 2 ? 'ok' : 'failed',
          partitionTag: Number(r.partition_tag),
          mailId: text(r.mail_id),
          recipients: [address],
          detail:
            rs === 'D'
              ? JSON.stringify({ content_removed: true })
              : JSON.stringify([
                  { recipient: address, released: i % 2 === 1, reply: i % 2 ? '250 2.0.0 Ok, id=e2e' : '550 5.7.1 refused' },
                ]),
        });
      }
    } finally {
      await h.close();
    }
    runtime = await startRuntime(
      parseConfig({ ADMIN_API_KEY: KEY, LINK_SECRET: 'ui-dashboard-link-secret-0123456789abc', DATABASE_URL: url }),
    );
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
    await dropVariantDatabase('pg-iredmail', DB);
  });

  /** A signed-in admin; bypassCSP only so that axe can be injected (the CSP header is checked in the integration tests). */
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
    // admins land on the overview
    await page.waitForURL(`${base}/ui`);
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

  const api = async (p: string) => {
    const res = await fetch(`${base}${p}`, { headers: { authorization: `Bearer ${KEY}` } });
    expect(res.status, p).toBe(200);
    return (await res.json()) as any;
  };

  it("the overview draws the API's numbers: tiles, a bar per day stacked by type, top domains and senders, each with a table", async () => {
    const { page, errors, close } = await adminPage();
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Overview');
    // the window the page used, read off the page, asked of the API
    const note = (await page.locator('main > p.muted').last().textContent()) ?? '';
    const query = /GET (\/v1\/quarantine\/stats\?since=\S+&until=\S+&tz=UTC&status=all)$/.exec(note.trim())?.[1];
    expect(query, note).toBeTruthy();
    const stats = await api(query!);
    expect(stats.total).toBeGreaterThan(100);
    const tiles = await page
      .locator('ul.tiles li')
      .evaluateAll((lis) => lis.map((li) => [li.querySelector('.tile-label')!.textContent, li.querySelector('.tile-n')!.textContent]));
    expect(tiles).toEqual(
      (['pending', 'releasing', 'released', 'deleted'] as const).map((k) => [
        k[0]!.toUpperCase() + k.slice(1),
        stats.by_status[k].toLocaleString('en-US'),
      ]),
    );
    expect(stats.by_status.released + stats.by_status.deleted).toBeGreaterThan(0);
    // the chart: one named image with a bar segment per day and type
    const chart = page.getByRole('img', { name: /^Bar chart: messages quarantined per day/ });
    expect(await chart.isVisible()).toBe(true);
    const segments = stats.by_day.reduce((n: number, d: any) => n + Object.keys(d.by_type).length, 0);
    expect(await page.locator('svg.bars rect').count()).toBe(segments);
    // its table: 30 days, the API's count on each day that had mail
    await page.getByText('The numbers per day, as a table').click();
    const days = await page
      .locator('table.numbers tbody tr')
      .evaluateAll((trs) => trs.map((tr) => [tr.querySelector('th')!.textContent, tr.querySelector('td')!.textContent]));
    expect(days).toHaveLength(30);
    for (const d of stats.by_day) expect(days).toContainEqual([d.day, d.count.toLocaleString('en-US')]);
    // the top-10 tables
    const top = async (h: string) =>
      page
        .locator(`section[aria-labelledby="${h}"] table.bars tbody tr`)
        .evaluateAll((trs) => trs.map((tr) => [tr.querySelector('td.label')!.textContent, tr.querySelector('td.num')!.textContent]));
    expect(await top('h-domains')).toEqual(stats.by_domain.map((d: any) => [d.domain, d.count.toLocaleString('en-US')]));
    expect(await top('h-senders')).toEqual(
      stats.top_senders.map((s: any) => [s.sender || '(empty: bounces)', s.count.toLocaleString('en-US')]),
    );
    expect((await top('h-domains')).length).toBe(10);
    // a domain's row leads to its list
    await page.locator('section[aria-labelledby="h-domains"] td.label a').first().click();
    await page.waitForURL(/\/ui\/quarantine\?domain=/);
    expect(errors).toEqual([]);
    await close();
  });

  it('the overview in a time zone says so', async () => {
    const { page, close } = await adminPage();
    await page.getByLabel('Days in time zone').selectOption('Europe/Berlin');
    await page.getByRole('button', { name: 'Show' }).click();
    await page.waitForURL(`${base}/ui?tz=Europe%2FBerlin`);
    expect(await page.locator('main > p').first().textContent()).toContain('days in Europe/Berlin');
    await close();
  });

  for (const scheme of ['light', 'dark'] as const) {
    for (const width of [1280, 390]) {
      it(`axe finds nothing on the overview and the audit page, nothing overflows (${scheme}, ${width} px)`, async () => {
        const { page, errors, close } = await adminPage({ width, height: 900 }, scheme);
        await axe(page, `overview ${scheme} ${width}`);
        await page.getByText('The numbers per day, as a table').click();
        await axe(page, `overview with its table ${scheme} ${width}`);
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
        await page.getByText('The numbers per day, as a table').click();
        await page.screenshot({ path: path.join(SHOTS, `admin-dashboard-${width}-${scheme}.png`), fullPage: true });
        await page.goto(`${base}/ui/audit`);
        await axe(page, `audit ${scheme} ${width}`);
        expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(width);
        if (scheme === 'light') await page.screenshot({ path: path.join(SHOTS, `admin-audit-${width}.png`), fullPage: true });
        else await page.screenshot({ path: path.join(SHOTS, `admin-audit-${width}-dark.png`), fullPage: true });
        expect(errors).toEqual([]);
        await close();
      });
    }
  }

  it('the audit filter goes into the URL, and the CSV download holds the rows the page shows', async () => {
    const { page, errors, close } = await adminPage();
    await page.goto(`${base}/ui/audit`);
    await page.getByLabel('What').selectOption('release');
    await page.getByLabel('Outcome').selectOption('failed');
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/\/ui\/audit\?action=release&result=failed&/);
    const shown = await page
      .locator('table.audit tbody tr')
      .evaluateAll((trs) =>
        trs.map((tr) => [(tr as HTMLElement).dataset.action, (tr as HTMLElement).dataset.result, (tr as HTMLElement).dataset.mailId]),
      );
    expect(shown.length).toBeGreaterThan(0);
    expect(await page.locator('table.audit').textContent()).toContain('not released — amavisd: 550 5.7.1 refused');
    // the message column is the subject, linked
    const link = page.locator('table.audit td[data-label="Message"] a').first();
    expect(await link.getAttribute('href')).toMatch(/^\/ui\/quarantine\/\d+\.[A-Za-z0-9_+-]+$/);
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download these entries as CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toBe('audit.csv');
    const csv = await readFile((await download.path())!, 'utf8');
    expect(csv.slice(0, csv.indexOf('\r\n'))).toBe(
      'id,at (UTC),who,actor,role,key id,action,what,message,subject,recipients,result,outcome,detail (JSON)',
    );
    const cells = parseCsv(csv).slice(1);
    expect(cells.map((c) => [c[6], c[11]])).toEqual(shown.map((s) => [s[0], s[1]]));
    expect(cells.map((c) => c[8]!.split('.')[1])).toEqual(shown.map((s) => s[2]));
    await page.screenshot({ path: path.join(SHOTS, 'admin-audit-filtered-1280.png'), fullPage: true });
    expect(errors).toEqual([]);
    await close();
  });
});
