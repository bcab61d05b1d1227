// Smoke test of the e2e harness on both backends: a real amavisd-new quarantines spam, banned,
// bad-header and virus mail into SQL, and a raw AM.PDP release delivers a quarantined message to
// the sink.
//   npx vitest run --config test/e2e/harness/vitest.config.ts   (as root, after install.sh)
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { badHeader, bannedAttachment, blacklisted, clean, eicar, gtube, startAmavisd, type Harness, type Mail } from './amavisd.ts';
import { rawPdpExchange } from './raw-pdp.ts';

// generous limits also when run without the harness's vitest.config.ts
vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const SENDER = 'bob@example.org';
const RCPT = 'alice@e2e.test';

/** A tiny raw AM.PDP client: name=value lines, CRLF, empty line; values %XX-encoded. */
async function ampdp(port: number, attrs: Array<[string, string]>): Promise<{ reply: Array<[string, string]>; ms: number }> {
  const enc = (v: string) =>
    [...Buffer.from(v, 'utf8')]
      .map((b) => (b > 0x20 && b < 0x7f && b !== 0x25 ? String.fromCharCode(b) : `%${b.toString(16).toUpperCase().padStart(2, '0')}`))
      .join('');
  const request = attrs.map(([k, v]) => `${k}=${enc(v)}\r\n`).join('') + '\r\n';
  const t0 = performance.now();
  const raw = await rawPdpExchange(port, request);
  const ms = performance.now() - t0;
  const reply = raw
    .split('\r\n')
    .filter((l) => l !== '')
    .map((l): [string, string] => {
      const eq = l.indexOf('=');
      return [l.slice(0, eq), decodeURIComponent(l.slice(eq + 1))];
    });
  return { reply, ms };
}

describe.each(['mariadb', 'pg'] as const)('amavisd-new e2e harness on %s', (dbKind) => {
  let h: Harness | undefined;
  const seen = new Set<unknown>();
  const harness = () => {
    if (!h) throw new Error('harness not started');
    return h;
  };
  const spam = (): Mail => (harness().spamAssassin ? gtube(SENDER, RCPT) : blacklisted(RCPT));

  beforeAll(async () => {
    h = await startAmavisd({ db: dbKind });
    console.log(
      `[${dbKind}] amavisd ready in ${h.startupMs} ms (SpamAssassin: ${h.spamAssassin}, ports smtp ${h.smtpPort} pdp ${h.pdpPort} sink ${h.sinkPort})`,
    );
  }, 180_000);

  afterAll(async () => {
    await h?.stop();
  }, 60_000);

  it('quarantines spam, banned, bad-header and virus mail in SQL and delivers clean mail', async () => {
    const mails = [spam(), bannedAttachment(SENDER, RCPT), badHeader(SENDER, RCPT), eicar(SENDER, RCPT)];
    for (const m of mails) {
      const reply = await harness().submit(m);
      expect(reply.code).toBe(250);
      const row = await harness().waitForMsg(m.messageId);
      expect(row.content, `${m.subject}: content`).toBe(m.expect);
      expect(row.quarType).toBe('Q');
      expect(row.quarLoc).toBe(row.mailId);
      expect(row.quarantineChunks).toBeGreaterThan(0);
      expect(row.mailId).toMatch(/^[A-Za-z0-9_+-]{12}$/);
      expect(row.secretId).toMatch(/^[A-Za-z0-9_+-]{12}$/);
      expect(row.recipients).toEqual([expect.objectContaining({ address: RCPT, content: m.expect, ds: 'D' })]);
      // amavisd writes rs = ' '; MariaDB returns CHAR(1) ' ' as '' (trailing pad stripped), PostgreSQL as ' '
      expect(row.recipients[0]?.rs.trim()).toBe('');
      // the lab's finding: rows and chunks are committed before the SMTP 250
      console.log(`[${dbKind}] ${row.content} ${row.mailId}: "${reply.text}", complete row at poll #${row.polls}`);
    }
    const ok = clean(SENDER, RCPT);
    await harness().submit(ok);
    const row = await harness().waitForMsg(ok.messageId);
    expect(row.content).toBe('C');
    const delivered = await harness().waitForSink((m) => m.raw.includes(ok.messageId));
    expect(delivered.to).toEqual([RCPT]);
  });

  it('releases a quarantined message over raw AM.PDP to the sink, again on repeat', async () => {
    const m = spam();
    await harness().submit(m);
    const row = await harness().waitForMsg(m.messageId);
    const release = [
      ['request', 'release'],
      ['mail_id', row.mailId],
      ['secret_id', row.secretId],
      ['partition_tag', String(row.partitionTag)],
      ['quar_type', 'Q'],
      ['recipient', RCPT],
    ] as Array<[string, string]>;
    for (const attempt of [1, 2]) {
      const { reply, ms } = await ampdp(harness().pdpPort, release);
      console.log(`[${dbKind}] raw AM.PDP release #${attempt} round trip ${ms.toFixed(1)} ms: ${JSON.stringify(reply)}`);
      const setreplies = reply.filter(([k]) => k === 'setreply').map(([, v]) => v);
      expect(setreplies).toHaveLength(1);
      // a release happened only if every setreply is 2xx and none is "250 2.5.0 No recipients"
      expect(setreplies[0]).toMatch(/^250 2\.0\.0 /);
      const released = await harness().waitForSink((s) => s.raw.includes(`Resent-Message-ID: <${row.mailId}-`) && !seen.has(s));
      seen.add(released);
      expect(released.to).toEqual([RCPT]);
      expect(released.raw).toContain(m.messageId);
    }
  });

  it('refuses a release without secret_id', async () => {
    const m = spam();
    await harness().submit(m);
    const row = await harness().waitForMsg(m.messageId);
    const { reply } = await ampdp(harness().pdpPort, [
      ['request', 'release'],
      ['mail_id', row.mailId],
      ['quar_type', 'Q'],
    ]);
    expect(reply).toContainEqual(['setreply', expect.stringMatching(/^450 4\.5\.0 Failure: Secret_id is required/)]);
    expect(reply).toContainEqual(['exit_code', '75']);
  });

  it('reports a sink tempfail as a 4xx setreply', async () => {
    const m = bannedAttachment(SENDER, RCPT);
    await harness().submit(m);
    const row = await harness().waitForMsg(m.messageId);
    harness().sinkMode('tempfail');
    try {
      const { reply } = await ampdp(harness().pdpPort, [
        ['request', 'release'],
        ['mail_id', row.mailId],
        ['secret_id', row.secretId],
        ['partition_tag', String(row.partitionTag)],
        ['quar_type', 'Q'],
        ['recipient', RCPT],
      ]);
      console.log(`[${dbKind}] release with the sink in tempfail mode: ${JSON.stringify(reply)}`);
      const setreplies = reply.filter(([k]) => k === 'setreply').map(([, v]) => v);
      expect(setreplies.length).toBeGreaterThan(0);
      expect(setreplies.every((r) => r.startsWith('4'))).toBe(true);
    } finally {
      harness().sinkMode('accept');
    }
    const sunk = await harness().sink();
    expect(sunk.some((s) => s.raw.includes(`Resent-Message-ID: <${row.mailId}-`))).toBe(false);
  });
});
