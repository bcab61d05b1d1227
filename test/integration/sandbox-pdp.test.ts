import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import net from 'node:net';
import { directTransport, pdpRequest } from '../../src/amavis/pdp-client.node.ts';
import { decodeReply, encodeRequest, endOfMessage, releaseAttributes } from '../../src/amavis/pdp.ts';
import { bind, detectSchema, type SchemaVariant } from '../../src/amavis/schema.ts';
import { openDatabase, type DbHandle } from '../../src/db/connect.ts';
import { writeMessages, type Written } from '../../src/demo/writer.ts';
import { startSandboxPdp, splitQuarantined, type SandboxPdp } from '../../src/release/sandbox-pdp.node.ts';
import { VARIANTS } from '../support/databases.ts';

const NOW = Math.floor(Date.now() / 1000);
const dec = new TextDecoder();

describe.each(VARIANTS)('sandbox AM.PDP peer on %s', (variantName) => {
  let handle: DbHandle;
  let variant: SchemaVariant;
  let sandbox: SandboxPdp;
  let outbox: string;
  let msg: Written;
  const tag = crypto.randomUUID().slice(0, 8);
  const alice = `alice@sb-${tag}.example.com`;
  const bob = `bob@sb-${tag}.example.net`;
  const raw = `From: <news@sender.example>\nTo: <${alice}>, <${bob}>\nSubject: sandbox\nMessage-ID: <sb-${tag}@sender.example>\n\nbody line\n`;

  beforeAll(async () => {
    handle = await openDatabase({ url: inject('variantUrls')[variantName]!, runtime: 'node', poolSize: 2 });
    variant = await detectSchema(handle.db, handle.dialect);
    outbox = await mkdtemp(path.join(os.tmpdir(), 'qe-outbox-'));
    sandbox = await startSandboxPdp({ db: handle.db, variant, outbox });
    [msg] = (await writeMessages(handle.db, variant, [
      {
        timeNum: NOW,
        content: 'S',
        sender: 'news@sender.example',
        subject: 'sandbox',
        spamLevel: 9,
        recipients: [{ address: alice }, { address: bob }],
        raw,
      },
    ])) as [Written];
  });

  afterAll(async () => {
    await sandbox?.close();
    if (msg) {
      for (const table of ['quarantine', 'msgrcpt', 'msgs'] as const) {
        await sql`DELETE FROM ${sql.table(table)} WHERE partition_tag = ${msg.partitionTag} AND mail_id = ${bind(variant, `${table}.mail_id`, msg.mailId)}`.execute(
          handle.db,
        );
      }
    }
    await handle?.close();
    await rm(outbox, { recursive: true, force: true });
  });

  const req = () => ({
    partitionTag: msg.partitionTag,
    mailId: msg.mailId,
    secretId: msg.secretId,
    recipients: [alice],
    requestedBy: 'admin@example.com',
  });

  it('releases like amavisd: 250 per recipient, the message in the outbox without X-Envelope lines', async () => {
    const reply = await directTransport(sandbox.hostPort).release({ ...req(), recipients: [alice, bob] });
    expect(reply.released).toBe(true);
    expect(reply.setreplies).toHaveLength(2);
    expect(reply.setreplies[0]).toMatch(/^250 2\.0\.0 Ok, id=\w+, from MTA: 250 queued \(sandbox: written to .+\.eml\)$/);
    const files = (await readdir(outbox)).filter((f) => f.startsWith(msg.mailId)).sort();
    expect(files).toEqual([`${msg.mailId}-${alice}.eml`, `${msg.mailId}-${bob}.eml`].sort());
    const text = await readFile(path.join(outbox, `${msg.mailId}-${alice}.eml`), 'utf8');
    expect(text).toMatch(/^Resent-From: <admin@example\.com>\nResent-To: <alice@[^>]+>\nResent-Date: .+\nResent-Message-ID: <[^>]+>\n/);
    expect(text).not.toMatch(/X-Envelope|X-Quarantine-ID/);
    expect(text.endsWith(raw)).toBe(true);
  });

  it('releases to the blocked recipients when none is named, and again on repeat (a new file)', async () => {
    const before = (await readdir(outbox)).length;
    const reply = await sandbox.transport.release({ ...req(), recipients: [] });
    expect(reply.via).toBe('sandbox');
    expect(reply.setreplies).toHaveLength(2);
    expect(reply.released).toBe(true);
    expect((await readdir(outbox)).length).toBe(before + 2);
  });

  it('refuses a secret_id that does not derive the mail_id, as amavisd does (450, tempfail, 75)', async () => {
    const reply = await directTransport(sandbox.hostPort).release({ ...req(), secretId: 'AQIDBAUGBwgJ' });
    expect(reply.released).toBe(false);
    expect(reply.attributes).toEqual([
      ['setreply', `450 4.5.0 Failure: Secret_id does not match mail_id ${msg.mailId}`],
      ['return_value', 'tempfail'],
      ['exit_code', '75'],
    ]);
  });

  it('refuses a release without secret_id and an unknown message', async () => {
    const noSecret = await pdpRequest(sandbox.hostPort, [
      ['request', 'release'],
      ['mail_id', msg.mailId],
      ['quar_type', 'Q'],
    ]);
    expect(noSecret[0]).toEqual(['setreply', '450 4.5.0 Failure: Secret_id is required, but missing']);
    const unknown = await directTransport(sandbox.hostPort).release({ ...req(), mailId: 'hZbBr1WxS3sy', secretId: 'AQIDBAUGBwgJ' });
    expect(unknown.released).toBe(false);
    expect(unknown.setreplies[0]).toMatch(/^450 4\.5\.0 Failure: no quarantined message/);
  });

  it('answers several requests on one connection, in order, like amavisd', async () => {
    const good = encodeRequest(releaseAttributes(req()));
    const bad = encodeRequest(releaseAttributes({ ...req(), secretId: 'AQIDBAUGBwgJ' }));
    const socket = net.connect(Number(sandbox.hostPort.split(':')[1]), '127.0.0.1');
    let buf = Buffer.alloc(0);
    const replies = await new Promise<Buffer>((resolve, reject) => {
      socket.on('error', reject);
      socket.on('data', (c: Buffer) => {
        buf = Buffer.concat([buf, c]);
        const first = endOfMessage(buf);
        if (first >= 0 && endOfMessage(buf.subarray(first)) >= 0) resolve(buf);
      });
      socket.write(Buffer.concat([good, bad]));
    });
    socket.destroy();
    const first = endOfMessage(replies);
    expect(decodeReply(replies.subarray(0, first))[0]![1]).toMatch(/^250 2\.0\.0 /);
    expect(decodeReply(replies.subarray(first))[0]![1]).toMatch(/^450 4\.5\.0 /);
  });
});

describe('splitQuarantined', () => {
  it('strips amavisd header lines (folded too) and keeps the original message byte for byte', () => {
    const stored = new TextEncoder().encode(
      'X-Envelope-From: <a@b>\nX-Envelope-To: <c@d>,\n <e@f>\nX-Envelope-To-Blocked: <c@d>\nX-Quarantine-ID: <abc>\n' +
        'X-Spam-Flag: YES\nReceived: from x\nSubject: s\n\nbody\n',
    );
    const { fields, message } = splitQuarantined(stored);
    expect(fields.map(([k]) => k)).toEqual(['x-envelope-from', 'x-envelope-to', 'x-envelope-to-blocked', 'x-quarantine-id', 'x-spam-flag']);
    expect(fields[1]![1]).toBe('<c@d>, <e@f>');
    expect(dec.decode(message)).toBe('Received: from x\nSubject: s\n\nbody\n');
  });
});
