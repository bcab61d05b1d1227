// A digest of mail a real amavisd-new quarantined: the digest goes to a Resend-compatible server,
// its release link is fetched with GET (as a mail scanner would: nothing may happen), then POSTed:
// amavisd delivers the message to the harness sink and msgrcpt.rs becomes 'R'.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createApp } from '../../src/api/app.ts';
import { directTransport } from '../../src/amavis/pdp-client.node.ts';
import { detectSchema } from '../../src/amavis/schema.ts';
import { parseConfig } from '../../src/config.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { loadMigrationFiles } from '../../src/db/drivers/files.ts';
import { migrate } from '../../src/db/migrations.ts';
import { sharedProvider } from '../../src/db/provider.ts';
import { resendMailer } from '../../src/mail/resend.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { blacklisted, gtube, startAmavisd, type Harness } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'e2e-admin-key-0123456789abcdef';
const PUBLIC = 'https://quarantine.e2e.test';
const quiet = { info() {}, warn() {}, error() {} };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.each(['mariadb', 'pg'] as const)('digest links with real amavisd-new on %s', (db) => {
  let h: Harness;
  let handle: DbHandle;
  let resend: ResendTwin;
  let app: ReturnType<typeof createApp>;

  beforeAll(async () => {
    h = await startAmavisd({ db });
    resend = await startResendTwin();
    handle = await openDatabase({ url: h.databaseUrl, runtime: 'node', poolSize: 4 });
    await migrate(handle.db, handle.dialect, await loadMigrationFiles(handle.dialect), () => Date.now());
    const variant = await detectSchema(handle.db, handle.dialect);
    const config = parseConfig({
      ADMIN_API_KEY: KEY,
      PUBLIC_URL: PUBLIC,
      LINK_SECRET: 'e2e-link-secret-0123456789abcdef0123',
      RESEND_API_KEY: 're_e2e_key',
      RESEND_BASE_URL: resend.url,
      DIGEST_FROM: 'Quarantine <quarantine@e2e.test>',
    });
    app = createApp({
      config,
      database: sharedProvider(handle, variant),
      log: quiet,
      release: directTransport(`127.0.0.1:${h.pdpPort}`),
      mailer: resendMailer({ apiKey: 're_e2e_key', baseUrl: resend.url }),
    });
  });
  afterAll(async () => {
    await resend?.close();
    await handle?.close();
    await h?.stop();
  });

  it('a scanner GET changes nothing; the POST releases through amavisd; the audit names the link', async () => {
    const rcpt = 'alice@e2e.test';
    const mail = h.spamAssassin ? gtube('sender@example.org', rcpt) : blacklisted(rcpt);
    await h.submit(mail);
    const row = await h.waitForMsg(mail.messageId);
    const rs = async () =>
      (await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ?', [row.mailId])).map((r) => r.rs.trim());

    const run = await app.request('/v1/digests/run', {
      method: 'POST',
      headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ force_all: true }),
    });
    expect(run.status, await run.clone().text()).toBe(200);
    const digest = resend.emails.find((e) => e.to.includes(rcpt));
    expect(digest, 'a digest for the recipient').toBeDefined();
    const body = `${digest!.html ?? ''}\n${digest!.text ?? ''}`;
    expect(body).toContain(mail.subject);
    const tokens = [...body.matchAll(/https:\/\/quarantine\.e2e\.test\/a\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((m) => m[1]!);
    expect(tokens.length).toBeGreaterThan(0);

    // Every link, fetched the way a link scanner does: pages only, no state change, no delivery.
    for (const token of new Set(tokens)) {
      const res = await app.request(`/a/${token}`);
      expect([200, 303]).toContain(res.status);
    }
    await sleep(1000);
    expect(await rs()).toEqual(['']);
    expect((await h.sink()).filter((s) => s.raw.includes(`Resent-Message-ID: <${row.mailId}-`))).toEqual([]);

    // The text digest labels each link: take the one named "Release:".
    const releaseToken = /^\s*Release:\s+https:\/\/quarantine\.e2e\.test\/a\/(\S+)$/m.exec(digest!.text ?? '')?.[1];
    expect(releaseToken, 'a release link').toBeDefined();
    const done = await app.request(`/a/${releaseToken}`, { method: 'POST' });
    expect(done.status).toBe(200);
    const got = await h.waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${row.mailId}-`));
    expect(got.to).toEqual([rcpt]);
    expect(await rs()).toEqual(['R']);
    const audit = (await (
      await app.request(`/v1/audit?mail_id=${row.mailId}`, { headers: { authorization: `Bearer ${KEY}` } })
    ).json()) as any;
    expect(audit.items[0]).toMatchObject({ action: 'release', result: 'ok', actor: `link:${rcpt}`, actor_role: 'user' });
  });
});
