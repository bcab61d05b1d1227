// A registered gateway's mailbox owner in Chromium (playwright-core) at 390 px: the portal link of
// that gateway's digest opens its list (home on PostgreSQL, the gateway on MariaDB, one message each
// for the same mailbox): the gateway's message with its prefixed id, not home's; axe finds nothing
// and nothing is cut off. Screenshot: test-results/ui/gateway-list-390.png.
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { writeMessages, type AmavisMessage } from '../../src/demo/writer.ts';
import { signLink } from '../../src/digest/links.ts';
import { AXE, launchChromium } from '../support/browser.ts';
import { createVariantDatabase, dropVariantDatabase, runSuffix } from '../support/databases.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'gateway-ui-browser-key-0123456789abcdef';
const SECRET = 'gateway-ui-browser-link-secret-0123456789';
const SHOTS = path.resolve('test-results/ui');
const NOW = Math.floor(Date.now() / 1000);
const GW = 'mx-browser';
const MAILBOX = 'owner@gw-browser.example';
const homeOpts = { suffix: runSuffix('gub') };
const gwOpts = { suffix: runSuffix('gug') };

const message = (subject: string): AmavisMessage => ({
  timeNum: NOW - 600,
  content: 'S',
  sender: 'offers@bulk.example',
  subject,
  spamLevel: 8.5,
  recipients: [{ address: MAILBOX }],
  raw: `Subject: ${subject}\n\n${subject}\n`,
});

describe("a gateway's owner list in Chromium at 390 px", () => {
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;
  let homeDb: DbHandle;
  let gwDb: DbHandle;
  let gwId: string;

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    const homeUrl = await createVariantDatabase('pg-upstream', homeOpts);
    const gwUrl = await createVariantDatabase('mysql-iredmail', { ...gwOpts, migrate: false });
    homeDb = await openDatabase({ url: homeUrl, runtime: 'node', poolSize: 1 });
    gwDb = await openDatabase({ url: gwUrl, runtime: 'node', poolSize: 1 });
    await writeMessages(homeDb.db, await detectSchema(homeDb.db, homeDb.dialect), [message('Home copy: never on this list')]);
    const [w] = await writeMessages(gwDb.db, await detectSchema(gwDb.db, gwDb.dialect), [message('Your parcel is waiting')]);
    gwId = `${GW}:${w!.partitionTag}.${w!.mailId}`;
    runtime = await startRuntime(
      parseConfig({
        ADMIN_API_KEY: KEY,
        LINK_SECRET: SECRET,
        DATABASE_URL: homeUrl,
        GATEWAY_SECRETS_KEY: Buffer.alloc(32, 7).toString('base64'),
      }),
    );
    const registered = await runtime.app.request('/v1/gateways', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        id: GW,
        name: 'Browser MX',
        domains: ['gw-browser.example'],
        database: { url: gwUrl },
        release: { pdp: '127.0.0.1:9' },
      }),
    });
    expect(registered.status, await registered.clone().text()).toBe(201);
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
    await homeDb?.close();
    await gwDb?.close();
    await dropVariantDatabase('pg-upstream', homeOpts);
    await dropVariantDatabase('mysql-iredmail', gwOpts);
  });

  it("the digest's portal link opens the gateway's list: its message and id only; axe clean, nothing cut off", async () => {
    // bypassCSP only so that axe can be injected (the pages' CSP is checked in ui-browser.test.ts)
    const context = await browser.newContext({ viewport: { width: 390, height: 800 }, bypassCSP: true, locale: 'en-US' });
    try {
      const page = await context.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(String(e)));
      page.on('console', (m) => {
        if (m.type() === 'error') errors.push(m.text());
      });
      const token = await signLink(SECRET, {
        action: 'portal',
        partitionTag: null,
        mailId: null,
        recipient: MAILBOX,
        expires: NOW + 3600,
        gateway: GW,
      });
      await page.goto(`${base}/a/${token}`); // as from the digest: on to the pages' portal
      await page.waitForURL(`${base}/ui/portal/${token}`);
      await page.locator('main button[type=submit]').click();
      await page.waitForURL(`${base}/ui/quarantine`);
      const html = await page.content();
      expect(html).toContain('Your parcel is waiting');
      expect(html).not.toContain('Home copy');
      expect(html).toContain(gwId);
      if (!(await page.evaluate(() => 'axe' in globalThis))) await page.addScriptTag({ path: AXE });
      const violations = await page.evaluate(async () => {
        const res = await (globalThis as any).axe.run(document, {
          runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice'] },
        });
        return res.violations.map((v: any) => `${v.id}: ${v.nodes.map((n: any) => n.target.join(' ')).join(', ')}`);
      });
      expect(violations).toEqual([]);
      expect(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth)).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'gateway-list-390.png'), fullPage: true });

      // the message page from the list: the gateway's message under its prefixed id
      await page.getByRole('link', { name: 'Your parcel is waiting' }).first().click();
      await page.waitForURL((url) => decodeURIComponent(url.pathname) === `/ui/quarantine/${gwId}`);
      expect(await page.getByRole('heading', { level: 1 }).textContent()).toContain('Your parcel is waiting');
      expect(errors).toEqual([]);
    } finally {
      await context.close();
    }
  });
});
