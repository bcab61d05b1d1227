// Issue 18.2 with a real amavisd-new: a mailbox owner asks for their banned mail (the default release
// policy says `request`); the admin key with a notify_email is mailed approve / deny links; a GET of
// the approve link changes nothing; its POST releases through amavisd's AM.PDP, the harness sink
// receives the message, the audit names approver and requester, and the owner is told.
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
import { bannedAttachment, startAmavisd, type Harness } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const KEY = 'e2e-admin-key-0123456789abcdef';
const PUBLIC = 'https://quarantine.e2e.test';
const quiet = { info() {}, warn() {}, error() {} };

describe.each(['mariadb', 'pg'] as const)('release request approved through the emailed link with real amavisd-new on %s', (db) => {
  let h: Harness;
  let handle: DbHandle;
  let resend: ResendTwin;
  let app: ReturnType<typeof createApp>;
  const api = (path: string, key: string, init: { method?: string; body?: unknown } = {}) =>
    app.request(path, {
      method: init.method ?? 'GET',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
    });

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

  it('request → admin email → GET changes nothing → POST releases through amavisd → sink receives it, owner told', async () => {
    const owner = 'alice@e2e.test';
    const adminTo = 'postmaster@e2e.test';
    const admin = (await (
      await api('/v1/keys', KEY, { method: 'POST', body: { name: 'e2e decider', role: 'admin', notify_email: adminTo } })
    ).json()) as { id: string; key: string };
    const user = (await (await api('/v1/keys', KEY, { method: 'POST', body: { name: 'alice', role: 'user', mailbox: owner } })).json()) as {
      key: string;
    };
    try {
      const mail = bannedAttachment('sender@example.org', owner);
      await h.submit(mail);
      const row = await h.waitForMsg(mail.messageId);
      const id = `${row.partitionTag}.${row.mailId}`;
      const rs = async () =>
        (await h.query<{ rs: string }>('SELECT rs FROM msgrcpt WHERE mail_id = ?', [row.mailId])).map((r) => r.rs.trim());
      const delivered = (s: { raw: string }) => s.raw.includes(`Resent-Message-ID: <${row.mailId}-`);

      // the owner may not release banned mail: they ask
      expect((await api(`/v1/quarantine/${id}/release`, user.key, { method: 'POST', body: {} })).status).toBe(403);
      const asked = await api(`/v1/quarantine/${id}/release-requests`, user.key, { method: 'POST', body: { note: 'my invoice' } });
      expect(asked.status).toBe(201);
      const req = (await asked.json()) as { id: string; requested_by: string };

      const email = await vi.waitFor(
        () => {
          const e = resend.emails.find((x) => x.to[0] === adminTo && x.text?.includes(owner));
          if (!e) throw new Error('the admin was not mailed yet');
          return e;
        },
        { timeout: 15_000, interval: 100 },
      );
      const approve = /Approve \(release it to [^)]+\):\s+https:\/\/quarantine\.e2e\.test(\/a\/\S+)/.exec(email.text ?? '')?.[1];
      expect(approve, 'an approve link').toBeDefined();

      // a mail scanner's GET: a page, nothing else
      const shown = await app.request(approve!);
      expect(shown.status).toBe(200);
      expect(await shown.text()).toContain('Approve this release request?');
      expect(await rs()).toEqual(['']);
      expect((await h.sink()).filter(delivered)).toEqual([]);

      const done = await app.request(approve!, { method: 'POST' });
      expect(done.status, await done.clone().text()).toBe(200);
      expect(await done.text()).toContain('Approved and released');
      const got = await h.waitForSink(delivered);
      expect(got.to).toEqual([owner]);
      expect(await rs()).toEqual(['R']);

      const audit = (await (await api(`/v1/audit?mail_id=${row.mailId}`, KEY)).json()) as { items: any[] };
      expect(audit.items.find((a) => a.action === 'release_request_approve')).toMatchObject({
        actor: `key:${admin.id}`,
        actor_role: 'admin',
        detail: { request_id: req.id, requested_by: req.requested_by },
      });
      expect(audit.items.find((a) => a.action === 'release')).toMatchObject({
        actor: `key:${admin.id}`,
        result: 'ok',
        recipients: [owner],
      });
      await vi.waitFor(
        () => expect(resend.emails.some((e) => e.to[0] === owner && e.subject === 'Your release request was approved')).toBe(true),
        { timeout: 15_000, interval: 100 },
      );
    } finally {
      await api(`/v1/keys/${admin.id}`, KEY, { method: 'DELETE' });
    }
  });
});
