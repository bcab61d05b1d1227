// /ui/gateways in Chromium (playwright-core) over a real PostgreSQL: an admin registers a gateway
// through the form (the secrets in password fields), sees it listed without them, sees a refused
// field in an alert with what was typed kept, and removes it; axe finds nothing in light and dark
// mode at 1280 and 390 px. Screenshots go to test-results/ui/.
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import { AXE, launchChromium } from '../support/browser.ts';
import { createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'ui-gateways-browser-key-0123456789abcdef';
const SHOTS = path.resolve('test-results/ui');
const SECRET = 'browser-relay-secret-not-real-0123456789';
const DB_URL = 'postgres://gw_browser:browser-password-not-real@127.0.0.1:1/amavisd';
const suffix = runSuffix('gwb');

describe('the gateways page in Chromium', () => {
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    const url = await createVariantDatabase('pg-upstream', { suffix });
    runtime = await startRuntime(
      parseConfig({
        ADMIN_API_KEY: KEY,
        LINK_SECRET: 'ui-gateways-browser-link-secret-0123456789',
        DATABASE_URL: url,
        GATEWAY_SECRETS_KEY: Buffer.alloc(32, 6).toString('base64'),
      }),
    );
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: runtime.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => server?.close(r));
    await runtime?.close();
    await dropVariantDatabase('pg-upstream', { suffix });
  });

  /** A signed-in admin on /ui/gateways; bypassCSP only so that axe can be injected. */
  async function gatewaysPage(viewport = { width: 1280, height: 900 }, colorScheme: 'light' | 'dark' = 'light') {
    const context = await browser.newContext({ viewport, colorScheme, bypassCSP: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/status of 40[09]/.test(m.text())) errors.push(m.text());
    });
    await page.goto(`${base}/ui/sign-in`);
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/ui`);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Gateways' }).click();
    await page.waitForURL(`${base}/ui/gateways`);
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

  it('registers through the form, refuses a bad domain in an alert, lists without secrets, removes', async () => {
    const { page, errors, close } = await gatewaysPage();
    try {
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Gateways');
      await axe(page, 'empty registry');
      await page.getByLabel('Id').fill('mx-browser');
      await page.getByLabel('Name').fill('Browser MX');
      await page.getByLabel('Domains (one per line or comma-separated)').fill('example.test\nnot a domain');
      await page.getByLabel('Database URL (sealed; never shown again)').fill(DB_URL);
      await page.getByLabel('Relay URL').fill('https://relay.example.test');
      await page.getByLabel('Relay secret (sealed; never shown again)').fill(SECRET);
      await page.getByRole('button', { name: 'Register' }).click();
      await expect.poll(() => page.getByRole('alert').textContent()).toContain('domains.1: not a domain name');
      expect(await page.getByLabel('Name').inputValue()).toBe('Browser MX');
      expect(await page.getByLabel('Relay secret (sealed; never shown again)').inputValue()).toBe('');
      await axe(page, 'refused form');

      await page.getByLabel('Domains (one per line or comma-separated)').fill('Example.TEST, example.org');
      await page.getByLabel('Database URL (sealed; never shown again)').fill(DB_URL);
      await page.getByLabel('Relay secret (sealed; never shown again)').fill(SECRET);
      await page.getByRole('button', { name: 'Register' }).click();
      await page.waitForURL(`${base}/ui/gateways?done=added`);
      const row = page.locator('table.list tbody tr', { hasText: 'mx-browser' });
      expect(await row.locator('td[data-label="Domains"]').textContent()).toBe('example.org, example.test');
      expect(await row.locator('td[data-label="Database"]').textContent()).toMatch(/^URL \(sealed with key [0-9a-f]{8}\)$/);
      const html = await page.content();
      expect(html).not.toContain(SECRET);
      expect(html).not.toContain('browser-password-not-real');
      await axe(page, 'one gateway');
      await page.screenshot({ path: path.join(SHOTS, 'gateways-1280.png'), fullPage: true });

      await page.getByRole('button', { name: 'Remove gateway mx-browser' }).click();
      await page.waitForURL(`${base}/ui/gateways?done=removed`);
      expect(await page.getByText('No gateways are registered.').count()).toBe(1);
      expect(errors).toEqual([]);
    } finally {
      await close();
    }
  });

  it('axe finds nothing in dark mode at 390 px, and nothing is cut off', async () => {
    const { page, close } = await gatewaysPage({ width: 390, height: 800 }, 'dark');
    try {
      await axe(page, 'dark 390');
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'gateways-390-dark.png'), fullPage: true });
    } finally {
      await close();
    }
  });
});
