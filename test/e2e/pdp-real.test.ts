// Release over AM.PDP against a real amavisd-new (test/e2e/harness), on MariaDB and PostgreSQL:
// straight to its AM.PDP port (directTransport) and through a real relay listener
// (relayTransport -> functions/relay.ts -> AM.PDP). Also measures raw AM.PDP vs both transports.
//   npx vitest run --project e2e test/e2e/pdp-real.test.ts   (as root, after harness/install.sh)
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startRelay, type RunningRelay } from '../../functions/relay.ts';
import { directTransport, pdpRequest } from '../../src/amavis/pdp-client.node.ts';
import { encodeRequest, releaseAttributes, setrepliesOf, verdict } from '../../src/amavis/pdp.ts';
import { randomSecretId } from '../../src/amavis/mail-id.ts';
import type { Logger } from '../../src/deps.ts';
import { relayTransport } from '../../src/release/relay-protocol.ts';
import type { ReleaseRequest, ReleaseTransport } from '../../src/release/transport.ts';
import { blacklisted, gtube, startAmavisd, type Harness, type Mail, type MsgRow, type SinkMessage } from './harness/amavisd.ts';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 180_000 });

const SENDER = 'bob@example.org';
const RCPT = 'alice@e2e.test';
const SECRET = 'e2e-relay-secret-0123456789abcdef0123';
const quiet: Logger = { info() {}, warn() {}, error() {} };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const released = (row: MsgRow) => (s: SinkMessage) => s.raw.includes(`Resent-Message-ID: <${row.mailId}-`);

describe.each(['mariadb', 'pg'] as const)('AM.PDP release against real amavisd-new on %s', (dbKind) => {
  let h: Harness | undefined;
  let relay: RunningRelay | undefined;
  let direct: ReleaseTransport;
  let viaRelay: ReleaseTransport;
  const harness = () => {
    if (!h) throw new Error('harness not started');
    return h;
  };
  const spam = (): Mail => (harness().spamAssassin ? gtube(SENDER, RCPT) : blacklisted(RCPT));
  const quarantine = async (): Promise<MsgRow> => {
    const m = spam();
    await harness().submit(m);
    const row = await harness().waitForMsg(m.messageId);
    expect(row.quarType).toBe('Q');
    return row;
  };
  const requestOf = (row: MsgRow, over: Partial<ReleaseRequest> = {}): ReleaseRequest => ({
    partitionTag: row.partitionTag,
    mailId: row.mailId,
    secretId: row.secretId,
    recipients: [RCPT],
    requestedBy: 'admin@e2e.test',
    ...over,
  });

  beforeAll(async () => {
    h = await startAmavisd({ db: dbKind });
    relay = await startRelay({ secret: SECRET, pdp: `127.0.0.1:${h.pdpPort}`, port: 0, log: quiet });
    direct = directTransport(`127.0.0.1:${h.pdpPort}`);
    viaRelay = relayTransport(relay.url, SECRET);
    console.log(
      `[${dbKind}] amavisd ready in ${h.startupMs} ms (SpamAssassin: ${h.spamAssassin}); relay ${relay.url} -> AM.PDP ${h.pdpPort}`,
    );
  }, 180_000);

  afterAll(async () => {
    await relay?.close();
    await h?.stop();
  }, 60_000);

  it.each(['direct', 'relay'] as const)('releases quarantined spam %s: the sink gets it for the right recipient', async (via) => {
    const row = await quarantine();
    const reply = await (via === 'direct' ? direct : viaRelay).release(requestOf(row));
    console.log(`[${dbKind}] release ${via}: ${JSON.stringify(reply.setreplies)}`);
    expect(reply.via).toBe(via);
    expect(reply.setreplies).toHaveLength(1);
    expect(reply.setreplies[0]).toMatch(/^250 2\.0\.0 /);
    expect(reply.released).toBe(true);
    const delivered = await harness().waitForSink(released(row));
    expect(delivered.to).toEqual([RCPT]);
    expect(delivered.raw).toContain('Resent-From: <admin@e2e.test>');
    expect(delivered.raw).toContain(row.messageId);
    expect(delivered.raw).not.toMatch(/^X-Envelope-To:/m);
  });

  it.each(['direct', 'relay'] as const)('a wrong secret_id is refused %s: released false, 450, nothing delivered', async (via) => {
    const row = await quarantine();
    let wrong = randomSecretId();
    while (wrong === row.secretId) wrong = randomSecretId();
    const reply = await (via === 'direct' ? direct : viaRelay).release(requestOf(row, { secretId: wrong }));
    console.log(`[${dbKind}] wrong secret ${via}: ${JSON.stringify(reply.attributes)}`);
    expect(reply.released).toBe(false);
    expect(reply.setreplies).toHaveLength(1);
    expect(reply.setreplies[0]).toMatch(/^450 4\.5\.0 Failure: Secret_id \[secret_id\] does not match mail_id /);
    expect(reply.attributes).toContainEqual(['return_value', 'tempfail']);
    expect(reply.attributes).toContainEqual(['exit_code', '75']);
    expect(JSON.stringify(reply)).not.toContain(wrong);
    await sleep(500);
    expect((await harness().sink()).some(released(row))).toBe(false);
  });

  it('reports a sink tempfail as released false with the 4xx reply', async () => {
    const row = await quarantine();
    harness().sinkMode('tempfail');
    try {
      const reply = await direct.release(requestOf(row));
      expect(reply.released).toBe(false);
      expect(reply.setreplies[0]).toMatch(/^4\d\d /);
    } finally {
      harness().sinkMode('accept');
    }
  });

  it('a recipient with CR/LF never reaches amavisd raw', async () => {
    const row = await quarantine();
    const hostile = `${RCPT}\r\nRCPT TO:<mallory@e2e.test>`;
    // the transports refuse it before connecting
    await expect(direct.release(requestOf(row, { recipients: [hostile] }))).rejects.toMatchObject({ code: 'bad_request' });
    await expect(viaRelay.release(requestOf(row, { recipients: [hostile] }))).rejects.toMatchObject({ code: 'bad_request' });

    // and the codec keeps it on one line when it is sent anyway: amavisd sees one recipient.
    // (amavisd then decodes it and writes it into its SMTP RCPT TO as is: the sink answers 501
    // and the session desyncs. That is why the transports refuse control characters outright.)
    const attrs = releaseAttributes(requestOf(row));
    attrs.splice(
      attrs.findIndex(([k]) => k === 'recipient'),
      1,
      ['recipient', hostile],
    );
    const wire = new TextDecoder().decode(encodeRequest(attrs));
    expect(wire).toContain('recipient=alice@e2e.test%0D%0ARCPT%20TO:<mallory@e2e.test>\r\n');
    expect(wire.replace(/\r\n/g, '')).not.toMatch(/[\r\n]/);
    const before = (await harness().sink()).length;
    const reply = await pdpRequest(`127.0.0.1:${harness().pdpPort}`, attrs);
    console.log(`[${dbKind}] CR/LF recipient, encoded: amavisd replied ${JSON.stringify(reply)}`);
    expect(setrepliesOf(reply).length).toBeGreaterThan(0);
    await sleep(1000);
    const after = (await harness().sink()).slice(before);
    expect(after.filter((s) => s.to.some((t) => /mallory/i.test(t)))).toEqual([]);
    expect(after.filter((s) => s.to.includes(RCPT) && released(row)(s))).toEqual([]);
    expect(verdict(setrepliesOf(reply))).toBe(false);
  });
});
