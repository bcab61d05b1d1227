// The deciders' pages and the message page's report buttons in Debian's Chromium (playwright-core),
// over the Node runtime next to a real amavisd-new (MariaDB): the admin's emailed approve / deny
// confirmation pages, and the message page with Report as spam / Not spam / Release and report as
// not spam, at 390 and 1280 px; axe finds nothing. Screenshots go to test-results/ui/.
import { mkdtempSync, rmSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { bannedAttachment, blacklisted, startAmavisd, type Harness } from './harness/amavisd.ts';
import { AXE, launchChromium } from '../support/browser.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'request-pages-admin-key-0123456789abcdef';
const SHOTS = path.resolve('test-results/ui');
const OWNER = 'dora@e2e.test';
const ADMIN_TO = 'hostmaster@e2e.test';
const WIDTHS = [390, 1280] as const;

describe('release request pages and report buttons in Chromium (real amavisd-new, MariaDB)', () => {
  let h: Harness;
  let resend: ResendTwin;
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;
  let bayes: string;
  let links: { approve: string; deny: string };
  let bannedId: string;
  let bannedMailId: string;
  let spamId: string;

  const api = async (p: string, key: string, body?: unknown) =>
    runtime.app.request(p, {
      method: body === undefined ? 'GET' : 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    h = await startAmavisd({ db: 'mariadb' });
    resend = await startResendTwin();
    bayes = mkdtempSync(path.join(tmpdir(), 'qe-pages-bayes-'));
    const migrator = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 1 });
    try {
      await migrate(migrator.db, migrator.dialect, await loadMigrationFiles(migrator.dialect), () => Date.now());
    } finally {
      await migrator.close();
    }
    runtime = await startRuntime(
      parseConfig({
        ADMIN_API_KEY: KEY,
        LINK_SECRET: 'request-pages-link-secret-0123456789abcdef',
        PUBLIC_URL: 'https://quarantine.e2e.test',
        DATABASE_URL: h.databaseUrl,
        AMAVISD_PDP: `127.0.0.1:${h.pdpPort}`,
        RESEND_API_KEY: 're_pages_key',
        RESEND_BASE_URL: resend.url,
        DIGEST_FROM: 'Quarantine <quarantine@e2e.test>',
        SA_LEARN_COMMAND: `sa-learn --dbpath ${bayes}/bayes --{kind} -`,
      }),
    );
    const admin = (await (await api('/v1/keys', KEY, { name: 'pages decider', role: 'admin', notify_email: ADMIN_TO })).json()) as {
      id: string;
    };
    const user = (await (await api('/v1/keys', KEY, { name: 'dora', role: 'user', mailbox: OWNER })).json()) as { key: string };
    const banned = bannedAttachment('sender@example.org', OWNER);
    const spam = blacklisted(OWNER);
    for (const m of [banned, spam]) await h.submit(m);
    const b = await h.waitForMsg(banned.messageId);
    const s = await h.waitForMsg(spam.messageId);
    bannedId = `${b.partitionTag}.${b.mailId}`;
    bannedMailId = b.mailId;
    spamId = `${s.partitionTag}.${s.mailId}`;
    expect((await api(`/v1/quarantine/${bannedId}/release-requests`, user.key, { note: 'The invoice from our supplier' })).status).toBe(
      201,
    );
    const email = await vi.waitFor(
      () => {
        const e = resend.emails.find((x) => x.to[0] === ADMIN_TO && x.text?.includes(OWNER));
        if (!e) throw new Error('the admin was not mailed yet');
        return e;
      },
      { timeout: 15_000, interval: 100 },
    );
    const [approve, deny] = [...(email.text ?? '').matchAll(/https:\/\/quarantine\.e2e\.test(\/a\/\S+)/g)].map((m) => m[1]!);
    links = { approve: approve!, deny: deny! };
    expect(admin.id).toMatch(/^key_/);
    server = await new Promise<ServerType>((resolve) => {
      const srv = serve({ fetch: runtime.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(srv));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await runtime?.close();
    await resend?.close();
    await h?.stop();
    if (bayes) rmSync(bayes, { recursive: true, force: true });
  });

  /** bypassCSP only so that axe can be injected (the pages' CSP is checked in the other tests) */
  async function open(width: number) {
    const context = await browser.newContext({ viewport: { width, height: 900 }, bypassCSP: true });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
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
  const noSideScroll = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);

  it("the admin's approve and deny confirmation pages (GET: nothing changes), at 390 and 1280 px", async () => {
    for (const width of WIDTHS) {
      const { page, errors, close } = await open(width);
      await page.goto(`${base}${links.approve}`);
      expect(await page.locator('h1').textContent()).toBe('Approve this release request?');
      expect(await page.locator('dl').textContent()).toContain('The invoice from our supplier');
      expect(await noSideScroll(page)).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, `request-approve-${width}.png`), fullPage: true });
      await axe(page, `approve page at ${width}`);
      await page.goto(`${base}${links.deny}`);
      expect(await page.getByLabel('Reason (the owner is told)').isVisible()).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, `request-deny-${width}.png`), fullPage: true });
      await axe(page, `deny page at ${width}`);
      expect(errors).toEqual([]);
      await close();
    }
    expect((await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ?', [bannedMailId])).map((r) => r.rs.trim())).toEqual([
      '',
    ]);
  });

  it('the message page: report buttons and Release and report as not spam; the navigation counts the request; at 390 and 1280 px', async () => {
    for (const width of WIDTHS) {
      const { page, errors, close } = await open(width);
      await page.goto(`${base}/ui/sign-in`);
      await page.getByLabel('API key').fill(KEY);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForURL(`${base}/ui`); // admins land on the overview
      await page.goto(`${base}/ui/quarantine`);
      expect(await page.getByRole('link', { name: 'Release requests (1)' }).isVisible()).toBe(true);
      await page.goto(`${base}/ui/quarantine/${spamId}`);
      for (const name of ['Report as spam', 'Not spam', 'Release and report as not spam'])
        expect(await page.getByRole('button', { name, exact: true }).isVisible(), name).toBe(true);
      expect(await noSideScroll(page)).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, `message-report-${width}.png`), fullPage: true });
      await axe(page, `message page at ${width}`);
      await page.getByRole('button', { name: 'Report as spam' }).click();
      await page.waitForLoadState();
      const said = await page.getByRole('status').textContent();
      expect(said).toMatch(/Reported as spam: the spam filter (learned it|had learned this message before)/);
      expect(said).toContain('It said:');
      // the page a form's POST answers with keeps the count too
      expect(await page.getByRole('link', { name: 'Release requests (1)' }).isVisible()).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, `message-reported-${width}.png`), fullPage: true });
      await axe(page, `reported at ${width}`);
      expect(errors).toEqual([]);
      await close();
    }
  });

  it('the Approve button releases through amavisd: the sink receives it, the owner is told', async () => {
    const { page, close } = await open(1280);
    await page.goto(`${base}${links.approve}`);
    await page.getByRole('button', { name: 'Approve and release' }).click();
    await page.waitForLoadState();
    expect(await page.locator('h1').textContent()).toBe('Approved and released');
    await page.screenshot({ path: path.join(SHOTS, 'request-approved-1280.png'), fullPage: true });
    const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${bannedMailId}-`));
    expect(got.to).toEqual([OWNER]);
    await vi.waitFor(
      () => expect(resend.emails.some((e) => e.to[0] === OWNER && e.subject === 'Your release request was approved')).toBe(true),
      { timeout: 15_000, interval: 100 },
    );
    await close();
  });
});
