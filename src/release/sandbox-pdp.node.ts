/**
 * The demo's stand-in for amavisd's release port: a real AM.PDP peer on 127.0.0.1 that checks a
 * release the way amavisd does (secret_id required, mail_id = mailIdOfSecret(secret_id), the stored
 * X-Quarantine-ID must match) and, instead of SMTP, writes each released copy to an outbox folder.
 * Its replies have amavisd's shape, and say where the message went.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { sql, type Kysely } from 'kysely';
import { mailIdOfSecret } from '../amavis/mail-id.ts';
import { limitedPdpRequest } from '../amavis/pdp-client.node.ts';
import { decodeReply, encodeRequest, endOfMessage, releaseAttributes, toReleaseReply, type PdpAttributes } from '../amavis/pdp.ts';
import { bind, text, type SchemaVariant } from '../amavis/schema.ts';
import type { Database } from '../db/types.ts';
import type { Logger } from '../deps.ts';
import type { ReleaseTransport } from './transport.ts';

export interface SandboxPdpOptions {
  db: Kysely<Database>;
  variant: SchemaVariant;
  /** where released copies are written (created if missing); default .demo/outbox */
  outbox?: string;
  /** default 0: a free port */
  port?: number;
  log?: Logger;
}

export interface SandboxPdp {
  /** 127.0.0.1:<port>, for a direct transport */
  hostPort: string;
  outbox: string;
  /** a release transport (kind 'sandbox') that talks AM.PDP to this peer */
  transport: ReleaseTransport;
  close(): Promise<void>;
}

class ReleaseFailure extends Error {}

const enc = new TextEncoder();
/** The header lines amavisd puts in front of a quarantined message, and skips when releasing. */
const AMAVISD_PREFIX =
  /^(?:X-Envelope-From|Return-Path|X-Envelope-To|X-Envelope-To-Blocked|X-Quarantine-ID|Delivered-To|X-Amavis-(?:Hold|Alert|Modified|PenPals|PolicyBank|OS-Fingerprint)|X-Spam-[^:]+|X-CRM114-[^:]+):/i;

function one(attrs: PdpAttributes, name: string): string | undefined {
  return attrs.find(([k]) => k === name)?.[1];
}

/** Splits amavisd's prefixed header fields (unfolded) from the original message. */
export function splitQuarantined(stored: Uint8Array): { fields: Array<[string, string]>; message: Uint8Array } {
  const fields: Array<[string, string]> = [];
  const latin1 = new TextDecoder('latin1');
  let pos = 0;
  while (pos < stored.length) {
    let end = pos;
    // one field: its first line plus continuation lines (starting with space or tab)
    for (;;) {
      const nl = stored.indexOf(0x0a, end);
      end = nl < 0 ? stored.length : nl + 1;
      if (end >= stored.length || (stored[end] !== 0x20 && stored[end] !== 0x09)) break;
    }
    const field = latin1.decode(stored.subarray(pos, end));
    if (!AMAVISD_PREFIX.test(field)) break;
    const colon = field.indexOf(':');
    fields.push([
      field.slice(0, colon).toLowerCase(),
      field
        .slice(colon + 1)
        .replace(/\r?\n[ \t]*/g, ' ')
        .trim(),
    ]);
    pos = end;
  }
  return { fields, message: stored.subarray(pos) };
}

const addresses = (v: string) => [...v.matchAll(/<([^>]*)>/g)].map((m) => m[1]!);
const fileSafe = (s: string) => s.replace(/[^A-Za-z0-9@._+-]/g, '_').slice(0, 120);

export async function startSandboxPdp(opts: SandboxPdpOptions): Promise<SandboxPdp> {
  const outbox = path.resolve(opts.outbox ?? '.demo/outbox');
  await mkdir(outbox, { recursive: true });
  const { db, variant } = opts;

  async function load(partition: number | undefined, mailId: string) {
    const byPartition = partition === undefined ? sql`` : sql` AND partition_tag = ${partition}`;
    const { rows } = await sql<{ partition_tag: number; secret_id: unknown }>`
      SELECT partition_tag, secret_id FROM msgs
      WHERE mail_id = ${bind(variant, 'msgs.mail_id', mailId)}${byPartition} AND quar_type = 'Q'`.execute(db);
    const msg = rows[0];
    if (!msg) throw new ReleaseFailure(`no quarantined message with mail_id=${mailId}`);
    const chunks = await sql<{ mail_text: unknown }>`
      SELECT mail_text FROM quarantine
      WHERE partition_tag = ${msg.partition_tag} AND mail_id = ${bind(variant, 'quarantine.mail_id', mailId)}
      ORDER BY chunk_ind`.execute(db);
    const parts = chunks.rows.map((r) => (typeof r.mail_text === 'string' ? enc.encode(r.mail_text) : (r.mail_text as Uint8Array)));
    if (parts.length === 0) throw new ReleaseFailure(`the quarantined text of ${mailId} is missing`);
    const stored = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let off = 0;
    for (const p of parts) {
      stored.set(p, off);
      off += p.length;
    }
    return { secretId: text(msg.secret_id), stored };
  }

  async function deliver(file: string, data: Uint8Array): Promise<string> {
    for (let n = 1; ; n++) {
      const name = n === 1 ? `${file}.eml` : `${file}-${n}.eml`;
      try {
        await writeFile(path.join(outbox, name), data, { flag: 'wx' });
        return path.join(outbox, name);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || n > 1000) throw err;
      }
    }
  }

  async function release(attrs: PdpAttributes): Promise<PdpAttributes> {
    const request = one(attrs, 'request');
    if (request !== 'release') throw new ReleaseFailure(`sandbox: only request=release is supported, got ${request ?? 'none'}`);
    const mailId = one(attrs, 'mail_id') ?? '';
    if (!/^[A-Za-z0-9][A-Za-z0-9_+-]*={0,2}$/.test(mailId)) throw new ReleaseFailure(`Invalid mail_id '${mailId}'`);
    const secretId = one(attrs, 'secret_id') ?? '';
    if (secretId === '') throw new ReleaseFailure('Secret_id is required, but missing');
    if (!/^[A-Za-z0-9_-]+$/.test(secretId) || mailIdOfSecret(secretId) !== mailId) {
      throw new ReleaseFailure(`Secret_id does not match mail_id ${mailId}`);
    }
    const tag = one(attrs, 'partition_tag');
    const partition = tag === undefined || tag === '' ? undefined : Number(tag);
    if (partition !== undefined && !Number.isSafeInteger(partition)) throw new ReleaseFailure(`Invalid partition_tag '${tag}'`);
    const msg = await load(partition, mailId);
    if (msg.secretId !== secretId) throw new ReleaseFailure(`Secret_id does not match the stored message ${mailId}`);
    const { fields, message } = splitQuarantined(msg.stored);
    const qid = fields.find(([k]) => k === 'x-quarantine-id')?.[1].replace(/^<|>$/g, '');
    if (qid !== mailId) throw new ReleaseFailure(`Stored quarantine ID '${qid ?? ''}' does not match requested ID '${mailId}'`);

    const requested = attrs.filter(([k]) => k === 'recipient').map(([, v]) => v.replace(/^<(.*)>$/, '$1'));
    const blocked = fields.filter(([k]) => k === 'x-envelope-to-blocked').flatMap(([, v]) => addresses(v));
    const recipients = requested.length > 0 ? requested : blocked;
    if (recipients.length === 0) return [['setreply', '250 2.5.0 No recipients, nothing to do']];

    const requestedBy = one(attrs, 'requested_by')?.replace(/^<(.*)>$/, '$1') ?? '';
    const replies: PdpAttributes = [];
    for (const rcpt of recipients) {
      const newId = crypto.randomUUID().replace(/-/g, '').slice(0, 12);
      const head =
        `Resent-From: ${requestedBy ? `<${requestedBy}>` : '<postmaster@sandbox.invalid>'}\n` +
        `Resent-To: <${rcpt}>\n` +
        `Resent-Date: ${new Date().toUTCString().replace('GMT', '+0000')}\n` +
        `Resent-Message-ID: <${mailId}-${newId}@sandbox.invalid>\n` +
        `X-Quarantine-Edge-Sandbox: released by the demo sandbox; not delivered by amavisd\n`;
      const h = enc.encode(head);
      const out = new Uint8Array(h.length + message.length);
      out.set(h);
      out.set(message, h.length);
      const file = await deliver(`${mailId}-${fileSafe(rcpt)}`, out);
      replies.push(['setreply', `250 2.0.0 Ok, id=${newId}, from MTA: 250 queued (sandbox: written to ${file})`]);
      opts.log?.info('sandbox AM.PDP: released', { mail_id: mailId, recipient: rcpt, file });
    }
    return replies;
  }

  async function answer(attrs: PdpAttributes): Promise<PdpAttributes> {
    try {
      return await release(attrs);
    } catch (err) {
      const detail = err instanceof ReleaseFailure ? err.message : `sandbox error: ${(err as Error).message}`;
      opts.log?.warn('sandbox AM.PDP: release failed', { mail_id: one(attrs, 'mail_id'), detail });
      return [
        ['setreply', `450 4.5.0 Failure: ${detail}`],
        ['return_value', 'tempfail'],
        ['exit_code', '75'],
      ];
    }
  }

  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    let buf = Buffer.alloc(0);
    let busy = false;
    socket.on('error', () => {});
    socket.setTimeout(60_000, () => socket.destroy());
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        // like amavisd: several requests may follow one another on a connection
        for (let end = endOfMessage(buf); end >= 0; end = endOfMessage(buf)) {
          const request = buf.subarray(0, end);
          buf = buf.subarray(end);
          const reply = await answer(decodeReply(request));
          if (socket.destroyed) return;
          // a reply is attribute lines and one empty line: encodeRequest writes exactly that format
          socket.write(encodeRequest(reply));
        }
      } finally {
        busy = false;
      }
    };
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 1024 * 1024) socket.destroy();
      else void pump();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as net.AddressInfo).port;
  const hostPort = `127.0.0.1:${port}`;
  return {
    hostPort,
    outbox,
    transport: {
      kind: 'sandbox',
      async release(req, beforeSend) {
        return toReleaseReply(await limitedPdpRequest(hostPort, releaseAttributes(req), {}, beforeSend), 'sandbox', req.secretId);
      },
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
