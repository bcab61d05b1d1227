// Every address amavisd can store goes through links, digests, the pages, audit and webhooks:
// RFC 5321 allows a '|' in a local part, a quoted local part ("john doe"@...; amavisd stores the
// quoted form), and 254 characters in all. Before migration 0007 and the v2 link payload, a '|' made
// the link signer throw (POST /ui/email-link and preview answered 500, a digest run aborted
// mid-batch with its rows left 'sending'), and a 251-254 character recipient overflowed
// qe_audit.actor (`link:<address>`) after amavisd had delivered: 500, the copy stuck 'releasing'.
import { sql } from 'kysely';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { runDigest } from '../../src/digest/run.ts';
import { resendMailer } from '../../src/mail/resend.ts';
import { ADMIN_KEY, testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { ReleaseTwin } from '../support/release-twin.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';
import { PageClient } from '../support/ui-client.ts';

const NOW = Math.floor(Date.now() / 1000);
const SECRET = 'unusual-address-secret-0123456789abcdef';
const PUBLIC = 'https://q.example.test';

/** A 254-character address in `domain`: a 64-character local part and labels up to 63. */
function longAddress(domain: string): string {
  const local = `l${'x'.repeat(63)}`;
  let d = domain;
  while (local.length + 1 + d.length < 254) {
    const room = 254 - (local.length + 1 + d.length) - 1;
    d = `${'y'.repeat(Math.min(63, room))}.${d}`;
  }
  const a = `${local}@${d}`;
  if (a.length !== 254) throw new Error(`made ${a.length} characters`);
  return a;
}

describe.each(['mysql-iredmail', 'mysql-upstream', 'pg-upstream', 'pg-iredmail'] as const)(
  'unusual but legal addresses on %s',
  (variantName) => {
    let t: TestApp;
    let f: Fixtures;
    let twin: ResendTwin;
    let release: ReleaseTwin;
    let domain: string;
    let pipe: string, quoted: string, long: string, plain1: string, plain2: string;

    const msg = (to: string, subject = 'buy now') => ({
      timeNum: NOW - 3600,
      content: 'S',
      sender: 'spammer@bulk.example',
      subject,
      spamLevel: 9.5,
      recipients: [{ address: to }],
    });
    const linksIn = (text: string) =>
      [...text.matchAll(/https:\/\/q\.example\.test\/a\/([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)/g)].map((m) => m[1]!);
    /** the digest's release links: the action is the token's second field (src/digest/links.ts) */
    const releaseLinksIn = (text: string) =>
      linksIn(text).filter((t) => Buffer.from(t.split('.')[0]!, 'base64url').toString('utf8').split('|')[1] === 'release');
    const mailTo = (address: string) => twin.emails.filter((e) => e.to[0] === address);

    beforeAll(async () => {
      twin = await startResendTwin();
      release = new ReleaseTwin();
      t = await testApp(variantName, {
        release,
        env: {
          RESEND_API_KEY: 're_test_key',
          RESEND_BASE_URL: twin.url,
          PUBLIC_URL: PUBLIC,
          LINK_SECRET: SECRET,
          DIGEST_FROM: 'Quarantine <q@example.test>',
        },
      });
      // batches of 2: the unusual recipients sit between ordinary ones, in the same and in other batches
      t.deps.mailer = resendMailer({ apiKey: 're_test_key', baseUrl: twin.url, retry: { attempts: 2, baseDelayMs: 1 }, maxBatch: 2 });
      f = new Fixtures(t);
      [domain] = uniqueDomains(1) as [string];
      pipe = `a|b@${domain}`;
      quoted = `"john|doe smith"@${domain}`;
      long = longAddress(domain);
      plain1 = `aaron@${domain}`;
      plain2 = `zoe@${domain}`;
    });
    beforeEach(() => {
      twin.reset();
      release.calls = [];
    });
    afterAll(async () => {
      await f?.cleanup();
      for (const table of ['qe_digest_subscriptions', 'qe_digest_state', 'qe_digest_sends'] as const) {
        const col = table === 'qe_digest_subscriptions' ? 'address' : 'recipient';
        await sql`DELETE FROM ${sql.table(table)} WHERE ${sql.ref(col)} LIKE ${`%@${domain}`}`.execute(t.handle.db);
      }
      await t?.close();
      await twin?.close();
    });

    it('a digest run with such recipients completes for everyone; each link works for its own recipient', async () => {
      const everyone = [plain1, pipe, quoted, long, plain2];
      const ids = await f.add(...everyone.map((a) => msg(a, `for ${a.slice(0, 12)}`)));
      const report = await runDigest(
        t.deps,
        { role: 'admin', actor: 'test', keyId: null },
        {
          forceAll: true,
          allTime: false,
          includeBackupMx: false,
          inProgressHorizon: 0,
          recipients: everyone,
        },
      );
      expect(report).toMatchObject({ recipients: 5, sent: 5, failed: 0 });
      expect(twin.emails.map((e) => e.to[0]).sort()).toEqual([...everyone].sort());
      const rows = await t.handle.db
        .selectFrom('qe_digest_sends')
        .select(['recipient', 'status'])
        .where('recipient', 'in', everyone)
        .execute();
      expect(rows.map((r) => `${r.recipient} ${r.status.trim()}`).sort()).toEqual(everyone.map((a) => `${a} sent`).sort());

      for (const [i, address] of everyone.entries()) {
        const [releaseTok] = releaseLinksIn(mailTo(address)[0]!.text!);
        const page = await t.app.request(`/a/${releaseTok}`);
        expect(page.status, address).toBe(200);
        expect(await page.text()).toContain('Release this message?');
        if (address === pipe || address === long) {
          const done = await t.app.request(`/a/${releaseTok}`, { method: 'POST' });
          expect(done.status, address).toBe(200);
          expect(await done.text()).toContain('Released');
          expect(await f.rs(ids[i]!)).toEqual(['R']);
        }
      }
      expect(release.calls.map((c) => c.recipients)).toEqual([[pipe], [long]]);
      // the release by a 254-character recipient's link is audited under its full name
      const audit = await t.handle.db
        .selectFrom('qe_audit')
        .selectAll()
        .where('mail_id', 'in', [ids[1]!.slice(2), ids[3]!.slice(2)])
        .orderBy('id')
        .execute();
      expect(audit.map((a) => [a.actor, a.result, JSON.parse(a.recipients!)])).toEqual([
        [`link:${pipe}`, 'ok', [pipe]],
        [`link:${long}`, 'ok', [long]],
      ]);
      // the unsubscribe link writes `link:<address>` as the subscription's updated_by
      const unsubscribe = mailTo(long)[0]!.headers?.['List-Unsubscribe'] ?? '';
      const unsubTok = /\/a\/([\w-]+\.[\w-]+)>/.exec(unsubscribe)![1]!;
      const off = await t.app.request(`/a/${unsubTok}`, { method: 'POST' });
      expect(off.status).toBe(200);
      const sub = await t.handle.db.selectFrom('qe_digest_subscriptions').selectAll().where('address', '=', long).executeTakeFirst();
      expect(sub).toMatchObject({ enabled: 0, updated_by: `link:${long}` });
    });

    it('a release of a 254-character recipient through its link ends released and audited (API key and portal session too)', async () => {
      const [byLink, byKey, byPortal] = await f.add(msg(long, 'one'), msg(long, 'two'), msg(long, 'three'));
      // a webhook subscription (never delivered here: no delivery pass runs), so each release writes its event
      const hookRes = await t.get('/v1/webhooks', ADMIN_KEY, {
        method: 'POST',
        body: JSON.stringify({ url: 'https://hooks.unusual.example/in', events: ['quarantine.released'] }),
        headers: { 'content-type': 'application/json' },
      });
      expect(hookRes.status).toBe(201);
      const hook = (await hookRes.json()) as { id: string };
      // the API with an admin key
      const res = await t.get(`/v1/quarantine/${byKey}/release`, ADMIN_KEY, {
        method: 'POST',
        body: JSON.stringify({ recipients: [long] }),
        headers: { 'content-type': 'application/json' },
      });
      expect(res.status, await res.clone().text()).toBe(200);
      expect(await f.rs(byKey!)).toEqual(['R']);

      // a mailbox session from the digest's portal link (actor portal:<address>)
      const { signPortalToken } = await import('../../src/ui/portal-token.ts');
      const b = new PageClient(t.app);
      const token = await signPortalToken(SECRET, long, NOW + 3600);
      const { res: show, csrf } = await b.page(`/ui/portal/${token}`);
      expect(show.status).toBe(200);
      expect((await b.post(`/ui/portal/${token}`, { csrf: csrf! })).status).toBe(303);
      const list = await b.page('/ui/quarantine');
      expect(list.res.status).toBe(200);
      expect(list.html).toContain('three');
      const form = await b.page(`/ui/quarantine/${byPortal}`);
      expect(form.res.status).toBe(200);
      const done = await b.post(`/ui/quarantine/${byPortal}/release`, { csrf: form.csrf! });
      expect([200, 303]).toContain(done.status);
      expect(await f.rs(byPortal!)).toEqual(['R']);

      const { signLink } = await import('../../src/digest/links.ts');
      const link = await signLink(SECRET, {
        action: 'release',
        partitionTag: Number(byLink!.split('.')[0]),
        mailId: byLink!.slice(2),
        recipient: long,
        expires: NOW + 3600,
      });
      expect((await t.app.request(`/a/${link}`, { method: 'POST' })).status).toBe(200);
      expect(await f.rs(byLink!)).toEqual(['R']);

      const audit = await t.handle.db
        .selectFrom('qe_audit')
        .select(['actor', 'result', 'mail_id'])
        .where(
          'mail_id',
          'in',
          [byLink, byKey, byPortal].map((id) => id!.slice(2)),
        )
        .execute();
      const actorOf = (id: string) => audit.find((a) => a.mail_id!.trim() === id.slice(2));
      expect(actorOf(byLink!)).toMatchObject({ actor: `link:${long}`, result: 'ok' });
      expect(actorOf(byPortal!)).toMatchObject({ actor: `portal:${long}`, result: 'ok' });
      expect(actorOf(byKey!)).toMatchObject({ result: 'ok' });

      // and each release's webhook event names the recipient in full
      const deliveries = await t.handle.db
        .selectFrom('qe_webhook_deliveries')
        .select('event_id')
        .where('webhook_id', '=', hook.id)
        .execute();
      const events = await t.handle.db
        .selectFrom('qe_webhook_events')
        .select('payload')
        .where(
          'id',
          'in',
          deliveries.map((d) => d.event_id),
        )
        .execute();
      expect(events).toHaveLength(3);
      for (const e of events) expect(JSON.parse(e.payload).data.mail.recipients.map((r: { address: string }) => r.address)).toEqual([long]);
      expect((await t.get(`/v1/webhooks/${hook.id}`, ADMIN_KEY, { method: 'DELETE' })).status).toBe(204);
      await t.handle.db.deleteFrom('qe_webhook_deliveries').where('webhook_id', '=', hook.id).execute();
    });

    it('the audit write cannot fail for length: an over-long actor or detail is cut to fit, a recipient list by whole entries', async () => {
      const { recordAudit, AUDIT_ACTOR_MAX, AUDIT_TEXT_MAX } = await import('../../src/audit/audit.ts');
      const mailId = 'LongAudit000';
      const many = Array.from({ length: 300 }, (_, i) => `${i}${long.slice(String(i).length)}`);
      await t.handle.db.transaction().execute((trx) =>
        recordAudit(
          trx,
          t.deps.clock,
          { role: 'user', actor: `portal:${'p'.repeat(600)}`, keyId: null, mailbox: long },
          {
            action: 'release',
            result: 'ok',
            partitionTag: 0,
            mailId,
            recipients: many,
            detail: JSON.stringify(many.map((recipient) => ({ recipient, released: true, reply: '250 2.0.0 Ok' }))),
          },
        ),
      );
      const row = await t.handle.db.selectFrom('qe_audit').selectAll().where('mail_id', '=', mailId).executeTakeFirstOrThrow();
      expect(row.actor).toHaveLength(AUDIT_ACTOR_MAX);
      expect(row.actor.endsWith('…')).toBe(true);
      // 300 recipients of 254 characters: 77 KB, more than MySQL's text held before migration 0007
      expect(JSON.parse(row.recipients!)).toEqual(many);
      expect(JSON.parse(row.detail!)).toHaveLength(300);
      expect(AUDIT_TEXT_MAX).toBeGreaterThan(JSON.stringify(many).length);
      await t.handle.db.deleteFrom('qe_audit').where('mail_id', '=', mailId).execute();
    });

    it('"Email me a link" for a "|" address answers as for any address, and its link opens the portal; preview works', async () => {
      const [id] = await f.add(msg(pipe, 'piped'));
      const b = new PageClient(t.app);
      const { csrf } = await b.page('/ui/sign-in');
      const asked = await b.post('/ui/email-link', { csrf: csrf!, address: pipe });
      expect(asked.status).toBe(200);
      expect(await asked.text()).toContain('Check your email');
      await expect.poll(() => mailTo(pipe).length).toBe(1);
      const portal = /https:\/\/q\.example\.test(\/ui\/portal\/[\w-]+\.[\w-]+)/.exec(mailTo(pipe)[0]!.text!)![1]!;
      const { res, csrf: c2 } = await b.page(portal);
      expect(res.status).toBe(200);
      expect((await b.post(portal, { csrf: c2! })).status).toBe(303);
      expect((await b.page('/ui/quarantine')).html).toContain('piped');

      const preview = await t.get(`/v1/digests/preview?recipient=${encodeURIComponent(pipe)}&all_time=true`);
      expect(preview.status).toBe(200);
      const html = (await preview.text()).replaceAll('&#x2F;', '/');
      expect(html).toContain('piped');
      // its links are this recipient's: the release link opens the confirmation page
      const [first] = releaseLinksIn(html);
      const page = await t.app.request(`/a/${first}`);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain('piped');
      expect(await f.rs(id!)).toEqual([' ']);
    });
  },
);
