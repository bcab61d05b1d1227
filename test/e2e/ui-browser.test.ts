// The pages in a real browser: Debian's Chromium driven by playwright-core against the Node server
// over the e2e harness's database, with releases going to the harness's real amavisd-new over
// AM.PDP (AMAVISD_PDP): every message here was quarantined by amavisd itself, and a release is
// proven by the harness's SMTP sink receiving it. Screenshots go to test-results/ui/.
//
// The tests run in order and build on each other (one harness start): the admin's release and
// bulk delete are what the audit page shows at the end.
import { randomUUID } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { serve, type ServerType } from '@hono/node-server';
import { sql } from 'kysely';
import type { Browser, ConsoleMessage, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRuntime, type NodeRuntime } from '../../functions/node.ts';
import { bind, text } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { getSubscription } from '../../src/digest/subscriptions.ts';
import { signPortalToken } from '../../src/ui/portal-token.ts';
import { PAGE_CSP } from '../../src/ui/routes.tsx';
import { BLACKLISTED_SENDER, eicar, startAmavisd, type Harness, type Mail } from './harness/amavisd.ts';
import { launchChromium } from '../support/browser.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'ui-browser-admin-key-0123456789abcdef';
const SECRET = 'ui-browser-link-secret-0123456789abcdef';
const SHOTS = path.resolve('test-results/ui');
const NOW = Math.floor(Date.now() / 1000);
// The harness's local domain: amavisd quarantines mail for it.
const ALICE = 'alice@e2e.test';
const BOB = 'bob@e2e.test';
const CAROL = 'carol@e2e.test';

/** Mail from the sender the harness blacklists: amavisd quarantines it as spam, with or without SpamAssassin. */
function spamMail(to: string, subject: string, body: string, contentType = 'text/plain; charset=utf-8'): Mail {
  const messageId = `<ui.${randomUUID()}@client.e2e.test>`;
  const raw = [
    `From: Bulk <${BLACKLISTED_SENDER}>`,
    `To: <${to}>`,
    `Date: ${new Date().toUTCString().replace('GMT', '+0000')}`,
    `Message-ID: ${messageId}`,
    `Subject: ${subject}`,
    'MIME-Version: 1.0',
    `Content-Type: ${contentType}`,
    '',
    body,
    '',
  ].join('\r\n');
  return { from: BLACKLISTED_SENDER, to: [to], raw, messageId, subject, expect: 'S' };
}

const hostileHtml =
  '<html><body><h2>Hello from the HTML part</h2><script>alert("script ran")</script>' +
  '<img src="https://tracker.example/pixel.gif" onerror="alert(\'onerror ran\')" alt="tracker">' +
  '<a href="https://evil.example/phish">win a prize</a></body></html>';

describe('the pages in Chromium, releasing through a real amavisd-new (MariaDB)', () => {
  let h: Harness;
  let runtime: NodeRuntime;
  let server: ServerType;
  let browser: Browser;
  let base: string;
  /** item ids (`0.<mail_id>`) by subject */
  const ids: Record<string, string> = {};

  const mailIdOf = (subject: string) => ids[subject]!.split('.')[1]!;
  const rs = async (subject: string) =>
    (await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ? ORDER BY rseqnum', [mailIdOf(subject)])).map(
      (r) => r.rs.trim() || ' ',
    );
  const sunk = async (subject: string) => (await h.sink()).filter((s) => s.raw.includes(`Resent-Message-ID: <${mailIdOf(subject)}-`));

  beforeAll(async () => {
    await mkdir(SHOTS, { recursive: true });
    h = await startAmavisd({ db: 'mariadb' });
    const migrator = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 1 });
    try {
      await migrate(migrator.db, migrator.dialect, await loadMigrationFiles(migrator.dialect), () => Date.now());
    } finally {
      await migrator.close();
    }
    // The Node runtime as deployed next to amavisd: DATABASE_URL and AMAVISD_PDP, nothing injected.
    runtime = await startRuntime(
      parseConfig({
        ADMIN_API_KEY: KEY,
        LINK_SECRET: SECRET,
        DATABASE_URL: h.databaseUrl,
        AMAVISD_PDP: `127.0.0.1:${h.pdpPort}`,
      }),
    );
    const mails = [
      spamMail(ALICE, 'Weekly offer for alice', 'Buy now.'),
      eicar('sender@example.org', BOB),
      spamMail(BOB, 'Bulk one', 'Cheap things.'),
      spamMail(BOB, 'Bulk two', 'More cheap things.'),
      spamMail(ALICE, 'Portal release for alice', 'A message alice wants after all.'),
      spamMail(CAROL, 'For carol only', 'Not for alice.'),
      spamMail(ALICE, 'hostile html', hostileHtml, 'text/html; charset=utf-8'),
    ];
    for (const m of mails) {
      await h.submit(m);
      const row = await h.waitForMsg(m.messageId);
      expect(row.quarType, m.subject).toBe('Q');
      ids[m.subject] = `0.${row.mailId}`;
    }
    server = await new Promise<ServerType>((resolve) => {
      const s = serve({ fetch: runtime.app.fetch, port: 0, hostname: '127.0.0.1' }, () => resolve(s));
    });
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    // site-per-process off: headless screenshots otherwise leave the sandboxed (out-of-process)
    // iframe blank. The frame's sandbox and CSP apply the same either way (checked both ways).
    browser = await launchChromium(['--disable-features=site-per-process,IsolateOrigins']);
  });
  afterAll(async () => {
    await browser?.close();
    await new Promise((r) => (server ? server.close(r) : r(undefined)));
    await runtime?.close();
    await h?.stop();
  });

  /** A fresh page that records console errors, dialogs and every request that leaves this server. */
  async function newPage(viewport = { width: 1200, height: 900 }) {
    const context = await browser.newContext({ viewport });
    const page = await context.newPage();
    const errors: string[] = [];
    const dialogs: string[] = [];
    const foreign: string[] = [];
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error') errors.push(m.text());
    });
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('dialog', (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    // Chromium announces a request that CSP then blocks; only how it ended tells whether it went out.
    const isForeign = (url: string) => !url.startsWith(base) && !url.startsWith('data:');
    page.on('requestfinished', (r) => {
      if (isForeign(r.url())) foreign.push(`${r.url()} finished`);
    });
    page.on('requestfailed', (r) => {
      if (isForeign(r.url())) foreign.push(`${r.url()} ${r.failure()?.errorText}`);
    });
    return { page, errors, dialogs, foreign, close: () => context.close() };
  }

  async function expectPageHeaders(page: Page, url: string, status = 200) {
    const res = await page.goto(url);
    expect(res?.status()).toBe(status);
    const h = res!.headers();
    expect(h['content-security-policy']).toBe(PAGE_CSP);
    expect(h['x-frame-options']).toBe('DENY');
    expect(h['referrer-policy']).toBe('no-referrer');
  }

  async function signInAdmin(page: Page) {
    await expectPageHeaders(page, `${base}/ui/sign-in`);
    await page.getByLabel('API key').fill(KEY);
    await page.getByRole('button', { name: 'Sign in' }).click();
    // admins land on the overview
    await page.waitForURL(`${base}/ui`);
    await page.goto(`${base}/ui/quarantine`);
  }

  async function portal(page: Page, mailbox: string) {
    const token = await signPortalToken(SECRET, mailbox, NOW + 3600);
    await expectPageHeaders(page, `${base}/ui/portal/${token}`);
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(`${base}/ui/quarantine`);
  }

  /** What Chromium logs for a page answered with an error status (the tests provoke some on purpose). */
  const http = (status: number) =>
    `Failed to load resource: the server responded with a status of ${status} (${status === 404 ? 'Not Found' : 'Bad Request'})`;
  const subjectsOnPage = async (page: Page) => page.locator('table.list td[data-label="Subject"] a').allTextContents();

  it('an admin signs in with a key, sees the list, opens a message and releases it: amavisd delivers it to the sink', async () => {
    const { page, errors, dialogs, foreign, close } = await newPage();
    await signInAdmin(page);
    await expect.poll(() => page.getByRole('heading', { level: 1 }).textContent()).toBe('Quarantined mail');
    expect(await subjectsOnPage(page)).toEqual(expect.arrayContaining(['Weekly offer for alice', 'e2e eicar', 'For carol only']));
    // the nav offers what an admin may use
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Overview',
      'Quarantine',
      'Sender lists',
      'Release requests',
      'Audit log',
      'Gateways',
    ]);
    // the script turned UTC labels into the reader's zone
    expect(await page.locator('footer').textContent()).toContain('your time zone');
    await page.screenshot({ path: path.join(SHOTS, 'list-admin.png'), fullPage: true });

    await page.getByRole('link', { name: 'Weekly offer for alice' }).click();
    await page.waitForURL(`${base}/ui/quarantine/${ids['Weekly offer for alice']}`);
    await expectPageHeaders(page, page.url());
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Weekly offer for alice');
    expect(await page.locator('pre.text').textContent()).toContain('Buy now.');
    await page.screenshot({ path: path.join(SHOTS, 'message-admin.png'), fullPage: true });

    expect(await sunk('Weekly offer for alice')).toEqual([]);
    await page.getByRole('button', { name: 'Release', exact: true }).click();
    await page.waitForURL(/\?done=released$/);
    expect(await page.getByRole('status').first().textContent()).toContain('Released');
    const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailIdOf('Weekly offer for alice')}-`));
    expect(got.to).toEqual([ALICE]);
    expect(got.raw).toContain('Subject: Weekly offer for alice');
    expect(await rs('Weekly offer for alice')).toEqual(['R']);
    expect(await page.locator('dl.meta').textContent()).toContain(`${ALICE} (released)`);
    await page.screenshot({ path: path.join(SHOTS, 'message-released.png'), fullPage: true });

    expect(errors).toEqual([]);
    expect(dialogs).toEqual([]);
    expect(foreign).toEqual([]);
    await close();
  });

  it('a mailbox owner opens a portal link on a phone, sees only their mail; hostile HTML runs nothing and loads nothing', async () => {
    const { page, errors, dialogs, foreign, close } = await newPage({ width: 375, height: 800 });
    await portal(page, ALICE);
    // exactly alice's pending mail (two arrived within one second: no order asserted between them)
    expect((await subjectsOnPage(page)).sort()).toEqual(['Portal release for alice', 'hostile html']);
    // readable at 375px: nothing wider than the screen
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.screenshot({ path: path.join(SHOTS, 'list-mailbox-375px.png'), fullPage: true });
    expect(errors).toEqual([]);

    await page.getByRole('link', { name: 'hostile html' }).click();
    await page.waitForURL(`${base}/ui/quarantine/${ids['hostile html']}`);
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

  it("the mailbox owner releases through the portal (the sink gets it); another mailbox's message is a 404, by URL and by form", async () => {
    const { page, errors, dialogs, foreign, close } = await newPage();
    await portal(page, ALICE);
    await page.getByRole('link', { name: 'Portal release for alice' }).click();
    await page.waitForURL(`${base}/ui/quarantine/${ids['Portal release for alice']}`);
    await page.getByRole('button', { name: 'Release', exact: true }).click();
    await page.waitForURL(/\?done=released$/);
    expect(await page.getByRole('status').first().textContent()).toBe('The message was released to your mailbox.');
    const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${mailIdOf('Portal release for alice')}-`));
    expect(got.to).toEqual([ALICE]);
    expect(got.raw).toContain('A message alice wants after all.');
    expect(await rs('Portal release for alice')).toEqual(['R']);
    await page.screenshot({ path: path.join(SHOTS, 'portal-released.png'), fullPage: true });

    // editing the URL to carol's message: the same 404 page as for a message that does not exist
    for (const url of [`/ui/quarantine/${ids['For carol only']}`, `/ui/quarantine/${ids['For carol only']}/body`]) {
      const res = await page.goto(`${base}${url}`);
      expect(res?.status(), url).toBe(404);
      if (!url.endsWith('/body')) expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Not found');
      expect(await page.content()).not.toContain('For carol only');
    }
    // a bulk form carrying carol's id (a field edited in the page): that id fails, nothing changes
    await page.goto(`${base}/ui/quarantine`);
    await page.evaluate((id) => {
      const box = document.querySelector<HTMLInputElement>('input[name=ids]')!;
      box.value = id;
      box.checked = true;
      box.dispatchEvent(new Event('change'));
    }, ids['For carol only']!);
    await page.getByRole('button', { name: 'Delete selected' }).click();
    // the confirmation reaches no one: carol's message is not in this mailbox's scope
    expect(await page.getByRole('status').first().textContent()).toContain('Deletes the copies of 0 recipients in 0 domains');
    await page.getByRole('button', { name: /^Deletes the copies of/ }).click();
    await page.waitForURL(/done=bulk-delete/);
    expect(await page.locator('.result h2').textContent()).toBe('Deleted: 0. Not done: 1.');
    expect(await page.locator('.result li').textContent()).toBe(
      `${ids['For carol only']}: This message is no longer in the quarantine (it may have expired).`,
    );
    expect(await rs('For carol only')).toEqual([' ']);
    expect(await rs('hostile html')).toEqual([' ']);
    expect(await sunk('For carol only')).toEqual([]);

    // the only console output: Chromium noting the two 404 answers asked for above
    expect(errors).toEqual([http(404), http(404)]);
    expect(dialogs).toEqual([]);
    expect(foreign).toEqual([]);
    await close();
  });

  it('the mailbox owner changes the digest subscription: frequency, time zone, then off; read back from the page and the verb', async () => {
    const { page, errors, close } = await newPage();
    await portal(page, ALICE);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Digest settings' }).click();
    await page.waitForURL(`${base}/ui/subscription`);
    await expectPageHeaders(page, page.url());
    const enabled = page.getByLabel('Send me the digest');
    const frequency = page.getByLabel('How often');
    const zone = page.getByLabel('Time zone (for the times in the email');
    const browserZone = await page.evaluate(() => Intl.DateTimeFormat().resolvedOptions().timeZone);
    expect(await enabled.isChecked()).toBe(false);
    expect(await page.locator('#s-state').textContent()).toContain('You do not receive a digest');
    // nothing saved yet: the script preselects the browser's zone (saved only with the form)
    expect(await zone.inputValue()).toBe(browserZone);

    await enabled.check();
    await frequency.selectOption('weekly');
    await zone.selectOption('Europe/Berlin');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(`${base}/ui/subscription?done=saved`);
    expect(await page.getByRole('status').first().textContent()).toBe(
      'Saved. You receive a digest once a week when mail was quarantined. Times are shown in Europe/Berlin.',
    );
    await page.goto(`${base}/ui/subscription`);
    expect(await enabled.isChecked()).toBe(true);
    expect(await frequency.inputValue()).toBe('weekly');
    expect(await zone.inputValue()).toBe('Europe/Berlin');
    await page.screenshot({ path: path.join(SHOTS, 'subscription.png'), fullPage: true });
    const admin = { role: 'admin', actor: 'test', keyId: null } as const;
    expect(await getSubscription(runtime.deps, admin, ALICE)).toMatchObject({
      enabled: true,
      frequency: 'weekly',
      time_zone: 'Europe/Berlin',
      updated_by: `portal:${ALICE}`,
    });

    // a zone that is not in the list (a crafted form): a 400 page saying so, nothing saved
    await page.evaluate(() => {
      const s = document.querySelector<HTMLSelectElement>('#s-tz')!;
      s.add(new Option('Mars', 'Mars/Olympus_Mons'));
      s.value = 'Mars/Olympus_Mons';
    });
    const [bad] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/ui/subscription') && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Save' }).click(),
    ]);
    expect(bad.status()).toBe(400);
    expect(await page.getByRole('alert').textContent()).toContain('not a time zone in the list');
    expect((await getSubscription(runtime.deps, admin, ALICE)).time_zone).toBe('Europe/Berlin');

    // off, hourly, no zone
    await page.goto(`${base}/ui/subscription`);
    await enabled.uncheck();
    await frequency.selectOption('hourly');
    await zone.selectOption('');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.waitForURL(`${base}/ui/subscription?done=saved`);
    expect(await page.getByRole('status').first().textContent()).toMatch(
      /^Saved\. You turned digests off on [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d\s[AP]M UTC\./,
    );
    await page.reload();
    expect(await enabled.isChecked()).toBe(false);
    expect(await frequency.inputValue()).toBe('hourly');
    // none saved again: the browser's zone is preselected, not stored
    expect(await zone.inputValue()).toBe(browserZone);
    expect(await getSubscription(runtime.deps, admin, ALICE)).toMatchObject({ enabled: false, frequency: 'hourly', time_zone: null });
    expect(errors).toEqual([http(400)]); // the bad zone's answer
    await close();
  });

  it('an admin filters by type and bulk-deletes the selected messages; they leave the pending list', async () => {
    const { page, errors, close } = await newPage();
    await signInAdmin(page);
    await page.locator('details.types summary').click();
    await page.getByLabel('spam', { exact: true }).check();
    await page.getByRole('button', { name: 'Apply filters' }).click();
    await page.waitForURL(/type=spam/);
    const spam = await subjectsOnPage(page);
    expect(spam).toEqual(expect.arrayContaining(['Bulk one', 'Bulk two', 'For carol only', 'hostile html']));
    expect(spam).not.toContain('e2e eicar');
    expect(spam).not.toContain('Weekly offer for alice'); // released: not pending
    await page.getByLabel('Select: Bulk one').check();
    await page.getByLabel('Select: Bulk two').check();
    await page.getByRole('button', { name: 'Delete selected' }).click();
    await page.getByRole('button', { name: 'Deletes the copies of 2 recipients in 1 domain' }).click();
    await page.waitForURL(/type=spam&.*done=bulk-delete&ok=2&failed=0/);
    expect(await page.getByRole('status').first().textContent()).toBe('Deleted: 2. Failed: 0.');
    const after = await subjectsOnPage(page);
    expect(after).not.toContain('Bulk one');
    expect(after).not.toContain('Bulk two');
    // back on the same filter (type=spam): the virus is not listed
    expect(after).toEqual(expect.arrayContaining(['For carol only', 'hostile html']));
    expect(after).not.toContain('e2e eicar');
    expect(await page.getByLabel('spam', { exact: true }).isChecked()).toBe(true);
    await page.screenshot({ path: path.join(SHOTS, 'bulk-deleted.png'), fullPage: true });
    expect(await rs('Bulk one')).toEqual(['D']);
    expect(await rs('Bulk two')).toEqual(['D']);
    expect(await rs('e2e eicar')).toEqual([' ']);
    // shown again under "deleted"
    await page.goto(`${base}/ui/quarantine?status=deleted`);
    expect(await subjectsOnPage(page)).toEqual(expect.arrayContaining(['Bulk one', 'Bulk two']));
    expect(errors).toEqual([]);
    await close();
  });

  it("the sender-list page: an admin adds an entry, sees it, removes it (in amavisd's wblist)", async () => {
    const { page, errors, close } = await newPage();
    await signInAdmin(page);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Sender lists' }).click();
    await page.waitForURL(`${base}/ui/senders`);
    await expectPageHeaders(page, page.url());
    const wblist = async () => {
      const { rows } = await sql<{ re: unknown; se: unknown; wb: string }>`SELECT u.email AS re, m.email AS se, w.wb
        FROM wblist w JOIN users u ON u.id = w.rid JOIN mailaddr m ON m.id = w.sid
        WHERE m.email = ${bind(runtime.variant, 'mailaddr.email', 'news@shop.example')}`.execute(runtime.handle.db);
      return rows.map((r) => [text(r.re), text(r.se), r.wb.trim()]);
    };
    expect(await wblist()).toEqual([]);

    // a bad sender first: a 400 page naming the field, nothing written
    await page.locator('#a-recipient').fill(ALICE);
    await page.locator('#a-sender').fill('not a sender');
    const [bad] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/ui/senders/add')),
      page.getByRole('button', { name: 'Add', exact: true }).click(),
    ]);
    expect(bad.status()).toBe(400);
    expect(await page.getByRole('alert').textContent()).toContain('sender: expected');
    expect(await page.locator('#a-sender').inputValue()).toBe('not a sender');

    await page.locator('#a-sender').fill('news@shop.example');
    await page.locator('#a-list').selectOption('allow');
    await page.getByRole('button', { name: 'Add', exact: true }).click();
    await page.waitForURL(`${base}/ui/senders?done=created`);
    expect(await page.getByRole('status').first().textContent()).toBe('Added.');
    const row = page.locator('table.list tbody tr', { hasText: 'news@shop.example' });
    expect(await row.locator('td[data-label="Recipient"]').textContent()).toBe(ALICE);
    expect(await row.locator('td[data-label="List"] .badge').textContent()).toBe('allow');
    expect(await wblist()).toEqual([[ALICE, 'news@shop.example', 'W']]);
    await page.screenshot({ path: path.join(SHOTS, 'sender-lists.png'), fullPage: true });

    await page.getByRole('button', { name: `Remove news@shop.example from ${ALICE}'s allow list` }).click();
    await page.waitForURL(`${base}/ui/senders?done=removed`);
    expect(await page.getByRole('status').first().textContent()).toBe('Removed.');
    expect(await page.locator('table.list tbody tr', { hasText: 'news@shop.example' }).count()).toBe(0);
    expect(await wblist()).toEqual([]);
    // readable on a phone: nothing wider than the screen
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    expect(errors).toEqual([http(400)]); // the bad sender's answer
    await close();
  });

  it('the audit page shows the release, the bulk delete and the sender-list changes done above, newest first', async () => {
    const { page, errors, close } = await newPage();
    await signInAdmin(page);
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Audit log' }).click();
    await page.waitForURL(`${base}/ui/audit`);
    await expectPageHeaders(page, page.url());
    const rows = await page.locator('table.list tbody tr').evaluateAll((trs) =>
      trs.map((tr) => ({
        action: (tr as HTMLElement).dataset.action,
        message: (tr as HTMLElement).dataset.mailId,
        who: (tr as HTMLElement).dataset.actor,
        result: (tr as HTMLElement).dataset.result,
      })),
    );
    const find = (action: string, subject?: string) =>
      rows.findIndex((r) => r.action === action && (subject === undefined || r.message === mailIdOf(subject)));
    const i = {
      adminRelease: find('release', 'Weekly offer for alice'),
      portalRelease: find('release', 'Portal release for alice'),
      bulk1: find('delete', 'Bulk one'),
      bulk2: find('delete', 'Bulk two'),
      add: find('sender_list.add'),
      remove: find('sender_list.remove'),
    };
    for (const [k, v] of Object.entries(i)) expect(v, k).toBeGreaterThanOrEqual(0);
    expect(rows[i.portalRelease]!.who).toContain(`portal:${ALICE}`);
    expect(rows[i.adminRelease]!.who).toContain('bootstrap-admin');
    expect(rows[i.adminRelease]!.result).toBe('ok');
    // newest first: the sender-list removal was the last thing done, the admin's release the first
    expect(i.remove).toBeLessThan(i.add);
    expect(i.add).toBeLessThan(Math.min(i.bulk1, i.bulk2));
    expect(Math.max(i.bulk1, i.bulk2)).toBeLessThan(i.portalRelease);
    expect(i.portalRelease).toBeLessThan(i.adminRelease);
    // carol's message was never touched by alice's forged form
    expect(find('delete', 'For carol only')).toBe(-1);
    await page.screenshot({ path: path.join(SHOTS, 'audit.png'), fullPage: true });
    await page.setViewportSize({ width: 375, height: 800 });
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(375);
    await page.screenshot({ path: path.join(SHOTS, 'audit-375px.png'), fullPage: true });
    await page.setViewportSize({ width: 1200, height: 900 });

    // the message link leads to the message
    // (the message is named by its subject)
    await page.locator('table.audit').getByRole('link', { name: 'Weekly offer for alice' }).first().click();
    await page.waitForURL(`${base}/ui/quarantine/${ids['Weekly offer for alice']}`);
    expect(await page.getByRole('heading', { level: 1 }).textContent()).toBe('Weekly offer for alice');
    expect(errors).toEqual([]);
    await close();
  });
});
