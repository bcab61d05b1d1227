// The pages in a real browser: Debian's Chromium driven by playwright-core against the Node server
// (embedded database, sandbox AM.PDP peer for releases). Screenshots go to test-results/ui/.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { chromium, type Browser, type ConsoleMessage, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { parseConfig } from '../../src/config.ts';
import { writeMessages } from '../../src/demo/writer.ts';
import { startSandboxPdp, type SandboxPdp } from '../../src/release/sandbox-pdp.node.ts';
import { signPortalToken } from '../../src/ui/portal-token.ts';
import { PAGE_CSP } from '../../src/ui/routes.tsx';

const CHROMIUM = '/usr/bin/chromium';
const KEY = 'ui-browser-admin-key-0123456789abcdef';
const SECRET = 'ui-browser-link-secret-0123456789abcdef';
const SHOTS = path.resolve('test-results/ui');
const NOW = Math.floor(Date.now() / 1000);
const quiet = { info() {}, warn() {}, error() {} };

const hostileHtml = [
  'From: Bulk <spammer@bulk.example>', 'To: alice@browser.example', 'Subject: hostile html', 'MIME-Version: 1.0',
  'Content-Type: text/html; charset=utf-8', '',
  '<html><body><h2>Hello from the HTML part</h2><script>alert("script ran")</script>'
    + '<img src="https://tracker.example/pixel.gif" onerror="alert(\'onerror ran\')" alt="tracker">'
    + '<a href="https://evil.example/phish">win a prize</a></body></html>', '',
].join('\n');

describe('the pages in Chromium', () => {
  let runtime: NodeRuntime;
  let sandbox: SandboxPdp;
  let server: ServerType;
  let browser: Browser;
  let base: string;
  let outbox: string;

  beforeAll(async () => {
    // Fail, never skip: CI installs Chromium (.ci/run); a missing one is a broken setup.
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y --no-install-recommends chromium`);
    outbox = await mkdtemp(path.join(tmpdir(), 'qe-ui-outbox-'));
    await mkdir(SHOTS, { recursive: true });
    runtime = await startRuntime(parseConfig({ ADMIN_API_KEY: KEY, LINK_SECRET: SECRET }), {
      release: async (handle, variant) => (sandbox = await startSandboxPdp({ db: handle.db, variant, outbox, log: quiet })).transport,
    });
    await writeMessages(runtime.handle.db, runtime.variant, [
      { timeNum: NOW - 300, content: 'S', sender: 'offers@bulk.example', subject: 'Weekly offer for alice', spamLevel: 8.5,
        recipients: [{ address: 'alice@browser.example' }], raw: 'From: offers@bulk.example\nSubject: Weekly offer for alice\n\nBuy now.\n' },
      { timeNum: NOW - 200, content: 'V', sender: 'virus@bad.example', subject: 'Invoice for bob', spamLevel: 0,
        recipients: [{ address: 'bob@browser.example' }] },
      { timeNum: NOW - 100, content: 'S', sender: 'spammer@bulk.example', subject: 'hostile html', spamLevel: 12,
        recipients: [{ address: 'alice@browser.example' }], raw: hostileHtml },
    ]);
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: runtime.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      // site-per-process off: headless screenshots otherwise leave the sandboxed (out-of-process)
      // iframe blank. The frame's sandbox and CSP apply the same either way (checked both ways).
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', '--disable-features=site-per-process,IsolateOrigins'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await sandbox?.close();
    await runtime?.close();
    if (outbox) await rm(outbox, { recursive: true, force: true });
  });

  /** A fresh page that records console errors, dialogs and every request that leaves this server. */
  async function newPage(viewport = { width: 1200, height: 900 }) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const errors: string[] = [];
    const dialogs: string[] = [];
    const foreign: string[] = [];
    page.on('console', (m: ConsoleMessage) => { if (m.type() === 'error') errors.push(m.text()); });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('dialog', (d) => { dialogs.push(d.message()); void d.dismiss(); });
    // Chromium announces a request that CSP then blocks; only how it ended tells whether it went out.
    const isForeign = (url: string) => !url.startsWith(base) && !url.startsWith('data:');
    page.on('requestfinished', (r) => { if (isForeign(r.url())) foreign.push(`${r.url()} finished`); });
    page.on('requestfailed', (r) => { if (isForeign(r.url())) foreign.push(`${r.url()} ${r.failure()?.errorText}`); });
    return { page, errors, dialogs, foreign, close: () => context.close() };
  }

  async function expectPageHeaders(page: Page, url: string) {
    const res = await page.goto(url);
    expect(res?.status()).toBe(200);
    const h = res!.headers();
    expect(h['content-security-policy']).toBe(PAGE_CSP);
    expect(h['x-frame-options']).toBe('DENY');
    expect(h['referrer-policy']).toBe('no-referrer');
  }

  it('an admin signs in with a key, sees the list, opens a message and releases it', async () => {
    const { page, errors, dialogs, foreign, close } = await newPage();
    await expectPageHeaders(page, `${base}/ui/sign-in`);
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForURL(`${base}/ui/quarantine`);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Quarantined mail');
    expect(await page.getByRole('link', { name: 'Weekly offer for alice' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Invoice for bob' }).count()).toBe(1);
    // the script turned UTC labels into the reader's zone
    expect(await page.locator('footer').textContent()).toContain('your time zone');
    await page.screenshot({ path: path.join(SHOTS, 'list-admin.png'), fullPage: true });

    await page.getByRole('link', { name: 'Weekly offer for alice' }).click();
    await page.waitForURL(/\/ui\/quarantine\/0\.[A-Za-z0-9_-]+$/);
    const detailUrl = page.url();
    await expectPageHeaders(page, detailUrl);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Weekly offer for alice');
    expect(await page.locator('pre.text').textContent()).toContain('Buy now.');
    await page.screenshot({ path: path.join(SHOTS, 'message-admin.png'), fullPage: true });

    await page.getByRole('button', { name: 'Release', exact: true }).click();
    await page.waitForURL(/\?done=released$/);
    expect(await page.getByRole('status').first().textContent()).toContain('Released');
    expect((await readdir(outbox)).length).toBe(1);
    expect(await page.locator('dl.meta').textContent()).toContain('alice@browser.example (released)');
    await page.screenshot({ path: path.join(SHOTS, 'message-released.png'), fullPage: true });

    expect(errors).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(foreign).toEqual([]);
    await close();
  });

  it('a mailbox owner opens a portal link on a phone, sees only their mail; hostile HTML runs nothing and loads nothing', async () => {
    const { page, errors, dialogs, foreign, close } = await newPage({ width: 375, height: 800 });
    const token = await signPortalToken(SECRET, 'alice@browser.example', NOW + 3600);
    await expectPageHeaders(page, `${base}/ui/portal/${token}`);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${base}/ui/quarantine`);
    expect(await page.getByRole('link', { name: 'hostile html' }).count()).toBe(1);
    expect(await page.getByRole('link', { name: 'Invoice for bob' }).count()).toBe(0);
    // readable at 375px: nothing wider than the screen
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.screenshot({ path: path.join(SHOTS, 'list-mailbox-375px.png'), fullPage: true });
    expect(errors).toEqual([]);

    await page.getByRole('link', { name: 'hostile html' }).click();
    await page.waitForURL(/\/ui\/quarantine\/0\./);
    const frame = page.frameLocator('iframe.body');
    await expect.poll(() => frame.locator('h2').textContent()).toBe('Hello from the HTML part');
    expect(await frame.locator('a').getAttribute('href')).toBeNull();
    await page.locator('iframe.body').scrollIntoViewIfNeeded();
    await page.screenshot({ path: path.join(SHOTS, 'message-hostile-html-375px.png') });
    expect(dialogs).toEqual([]);
    // the remote image was asked for by the page and refused by the frame's CSP, never fetched
    for (const f of foreign) expect(f).toMatch(/^https:\/\/tracker\.example\/pixel\.gif (csp|net::ERR_BLOCKED_BY_CSP)$/);
    // what the browser reports here is only what it blocked, never anything that ran
    for (const e of errors) expect(e).toMatch(/Content Security Policy|sandboxed|Blocked script execution/i);
    await close();
  });
});
