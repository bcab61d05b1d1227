// /ui/gateways in Chromium (playwright-core) over a real PostgreSQL: an admin registers a gateway
// through the form (the secrets in password fields), sees it listed without them, sees a refused
// field in an alert with what was typed kept, and removes it; axe finds nothing in light and dark
// mode at 1280 and 390 px. A gateway admin whose gateway's database cannot be reached reads a 503
// page naming the gateway at 390 px, and can sign out from it. Screenshots go to test-results/ui/.
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

  it('a gateway admin whose gateway cannot be reached reads a 503 page naming it at 390 px; axe clean, nothing cut off', async () => {
    const api = async (p: string, body: unknown) => {
      const res = await fetch(`${base}${p}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      expect(res.status, await res.clone().text()).toBe(201);
      return res.json() as Promise<{ key?: string }>;
    };
    // the database URL's port 1 answers nothing: every page of this gateway is a 503
    await api('/v1/gateways', {
      id: 'mx-down',
      name: 'Down MX',
      domains: ['down.example.test'],
      database: { url: DB_URL },
      release: { relay_url: 'https://relay.example.test', relay_secret: SECRET },
    });
    const { key } = await api('/v1/keys', { name: 'down gateway admin', role: 'admin', gateways: ['mx-down'] });
    const context = await browser.newContext({ viewport: { width: 390, height: 800 }, bypassCSP: true });
    const page = await context.newPage();
    try {
      await page.goto(`${base}/ui/sign-in`);
      await page.getByLabel('API key').fill(key!);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${base}/ui`);
      const text = (await page.locator('body').textContent()) ?? '';
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe("A mail gateway's database is not reachable");
      expect(text).toContain('Admin at gateway mx-down');
      expect(text).toContain('gateway mx-down:');
      expect(await page.content()).not.toContain('browser-password-not-real');
      await axe(page, 'gateway unavailable, 390');
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'gateway-unavailable-390.png'), fullPage: true });
      // the way out of a gateway that is down: Sign out, on this page, reads no gateway
      await page.getByRole('button', { name: 'Sign out' }).click();
      await page.waitForURL(`${base}/ui/sign-in`);
    } finally {
      await context.close();
    }
  });
});
