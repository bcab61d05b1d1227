// The SMTP path to a real SMTP server (npm smtp-server) with AUTH, and a 10k-recipient run against
// the Resend twin: exactly one digest each (its time is printed; speed is the benchmark's job).
import { sql } from 'kysely';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Identity } from '../../src/auth/identity.ts';
import { requestPortalLink } from '../../src/digest/portal-mail.ts';
import { windowLimiter } from '../../src/digest/rate-limit.ts';
import { runDigest } from '../../src/digest/run.ts';
import { resendMailer } from '../../src/mail/resend.ts';
import { smtpMailer } from '../../src/mail/smtp.node.ts';
import { testApp, uniqueDomains, type TestApp } from '../support/app.ts';
import { Fixtures } from '../support/fixtures.ts';
import { startResendTwin, type ResendTwin } from '../support/resend-server.ts';

const NOW = Math.floor(Date.now() / 1000);
const ENV = {
  PUBLIC_URL: 'https://q.example.test',
  LINK_SECRET: 'digest-link-secret-0123456789abcdef0123',
  DIGEST_FROM: 'Quarantäne <q@example.test>',
  DIGEST_SUBJECT: 'Quarantäne: {{total}} Nachrichten',
};

describe.each(['mysql-iredmail', 'pg-upstream'] as const)('digest delivery on %s', (variantName) => {
  let t: TestApp;
  let f: Fixtures;
  let d: string;
  let scope: Identity;
  const received: Array<{ from: string; to: string[]; raw: string; user?: string }> = [];
  let smtp: SMTPServer;
  let port = 0;
  let twin: ResendTwin;

  beforeAll(async () => {
    t = await testApp(variantName, { env: ENV });
    f = new Fixtures(t);
    [d] = uniqueDomains(1) as [string];
    scope = { role: 'domain_admin', actor: 'test', keyId: 'k', domains: [d] };
    smtp = new SMTPServer({
      disabledCommands: ['STARTTLS'],
      allowInsecureAuth: true,
      logger: false,
      onAuth: (auth, _s, cb) =>
        auth.username === 'digest' && auth.password === 's3cret' ? cb(null, { user: 'digest' }) : cb(new Error('bad auth')),
      onData: (stream, session, cb) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          received.push({
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks).toString('utf8'),
            user: session.user as string | undefined,
          });
          cb();
        });
      },
    });
    await new Promise<void>((r) => smtp.listen(0, '127.0.0.1', () => r()));
    port = (smtp.server.address() as { port: number }).port;
    twin = await startResendTwin();
  });
  afterAll(async () => {
    await f?.cleanup();
    for (const table of ['qe_digest_state', 'qe_digest_sends'] as const) {
      await sql`DELETE FROM ${sql.table(table)} WHERE recipient LIKE ${`%@${d}`}`.execute(t.handle.db);
    }
    await new Promise<void>((r) => smtp.close(() => r()));
    await twin?.close();
    await t?.close();
  });

  it('sends through SMTP with AUTH: RFC 2047 subject, one-click unsubscribe headers, sent once', async () => {
    const to = `smtp-user@${d}`;
    await f.add({
      timeNum: NOW - 4000,
      content: 'S',
      sender: 'x@bulk.example',
      subject: '<script>x</script> {{total}}',
      spamLevel: 7,
      recipients: [{ address: to }],
    });
    const deps = { ...t.deps, mailer: smtpMailer(`smtp://digest:s3cret@127.0.0.1:${port}`, { retry: { attempts: 2, baseDelayMs: 1 } }) };
    const report = await runDigest(deps, scope, {
      forceAll: true,
      allTime: false,
      includeBackupMx: false,
      recipients: [to],
      inProgressHorizon: 0,
    });
    expect(report).toMatchObject({ sent: 1, failed: 0 });
    const mail = received.find((m) => m.to.includes(to))!;
    const head = mail.raw.slice(0, mail.raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
    expect(mail.user).toBe('digest');
    expect(head).toMatch(/^Subject: =\?UTF-8\?[BQ]\?/m);
    expect(head).not.toMatch(/^Subject: .*ä/m);
    expect(head).toMatch(/^List-Unsubscribe: <https:\/\/q\.example\.test\/a\/[A-Za-z0-9_.-]+>/m);
    expect(head).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click/m);
    expect(
      await runDigest(deps, scope, { forceAll: true, allTime: false, includeBackupMx: false, recipients: [to], inProgressHorizon: 0 }),
    ).toMatchObject({ sent: 0 });
    expect(received.filter((m) => m.to.includes(to))).toHaveLength(1);
  });

  // RFC 5322 msg-id as we write it: dot-atom-text "@" (dot-atom-text or a bracketed literal)
  const ATOM = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+";
  const MSG_ID = new RegExp(`^<${ATOM}(\\.${ATOM})*@(${ATOM}(\\.${ATOM})*|\\[[^\\[\\]\\\\\\s]*\\])>$`);
  const messageIdOf = (raw: string) => {
    const head = raw.slice(0, raw.indexOf('\r\n\r\n')).replace(/\r\n[ \t]+/g, ' ');
    const ids = [...head.matchAll(/^Message-ID:[ \t]*(.*)$/gim)].map((m) => m[1]!.trim());
    expect(ids).toHaveLength(1);
    return ids[0]!;
  };

  it('every "Email me a link" mail and every digest has its own valid Message-ID that does not name the recipient', async () => {
    const who = `link-me.person@${d}`;
    const other = `other.person@${d}`;
    await f.add(
      { timeNum: NOW - 4000, content: 'S', sender: 'x@bulk.example', subject: 'one', spamLevel: 7, recipients: [{ address: who }] },
      { timeNum: NOW - 4000, content: 'S', sender: 'x@bulk.example', subject: 'two', spamLevel: 7, recipients: [{ address: other }] },
    );
    const deps = { ...t.deps, mailer: smtpMailer(`smtp://digest:s3cret@127.0.0.1:${port}`, { retry: { attempts: 2, baseDelayMs: 1 } }) };
    const limiter = windowLimiter(10, 60_000);
    for (let i = 0; i < 3; i++) await (await requestPortalLink(deps, who, { limiter, ip: null })).delivery;
    await runDigest(deps, scope, {
      forceAll: true,
      allTime: false,
      includeBackupMx: false,
      recipients: [who, other],
      inProgressHorizon: 0,
    });
    const mails = received.filter((m) => m.to.includes(who) || m.to.includes(other));
    expect(mails).toHaveLength(5); // three links, two digests
    const ids = mails.map((m) => messageIdOf(m.raw));
    expect(new Set(ids).size).toBe(5);
    for (const id of ids) {
      expect(id).toMatch(MSG_ID);
      expect(id.endsWith('@q.example.test>'), id).toBe(true); // the host of PUBLIC_URL
      for (const part of ['link-me', 'person', 'other', d.split('.')[0]!]) expect(id.toLowerCase()).not.toContain(part);
    }
  });

  it('a 10k-recipient run sends exactly one digest to each through the Resend twin', async () => {
    const n = 10_000;
    const people = Array.from({ length: n }, (_, i) => `r${String(i).padStart(5, '0')}@${d}`);
    const t0 = performance.now();
    for (let i = 0; i < n; i += 1000) {
      await f.add(
        ...people.slice(i, i + 1000).map((address, j) => ({
          timeNum: NOW - 5000 - j,
          content: 'S',
          sender: 'bulk@spam.example',
          subject: `offer ${i + j}`,
          spamLevel: 8,
          recipients: [{ address }],
        })),
      );
    }
    const seeded = performance.now() - t0;
    const deps = { ...t.deps, mailer: resendMailer({ apiKey: 're_test', baseUrl: twin.url, retry: { attempts: 2, baseDelayMs: 1 } }) };
    const t1 = performance.now();
    const report = await runDigest(deps, scope, { forceAll: true, allTime: false, includeBackupMx: false, inProgressHorizon: 0 });
    const ms = performance.now() - t1;
    expect(report.sent).toBe(n);
    expect(twin.emails).toHaveLength(n);
    expect(twin.emails.flatMap((e) => e.to).sort()).toEqual(people);
    const heap = process.memoryUsage().heapUsed / 1e6;
    // Bulk cleanup (Fixtures removes row by row: too slow for 10k).
    const bulk = f.written.splice(f.written.length - n, n);
    for (let i = 0; i < bulk.length; i += 500) {
      const ids = bulk.slice(i, i + 500).map((w) => (t.variant.dialect === 'postgres' ? new TextEncoder().encode(w.mailId) : w.mailId));
      for (const table of ['quarantine', 'msgrcpt', 'msgs'] as const) {
        await sql`DELETE FROM ${sql.table(table)} WHERE partition_tag = 0 AND mail_id IN (${sql.join(ids)})`.execute(t.handle.db);
      }
    }
    console.log(
      `[${variantName}] digest run: ${n} recipients, ${report.pages} pages, ${twin.requests.length} batch calls: ${(ms / 1000).toFixed(1)} s (${(n / (ms / 1000)).toFixed(0)}/s); seeding took ${(seeded / 1000).toFixed(1)} s; heap ${heap.toFixed(0)} MB`,
    );
  }, 600_000);
});
