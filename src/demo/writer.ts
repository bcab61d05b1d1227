import { sql, type Kysely } from 'kysely';
import { mailIdOfSecret, randomSecretId } from '../amavis/mail-id.ts';
import { domainOf, reverseDomain } from '../amavis/address.ts';
import { hasColumn, type SchemaVariant } from '../amavis/schema.ts';
import type { Database } from '../db/types.ts';

/**
 * Writes messages the way amavisd does (maddr with reversed domains, msgs, msgrcpt, quarantine
 * chunks of <= 16 KiB from 1, X-Envelope-* lines in front of the stored text). The demo, the tests'
 * fixtures and the benchmark generator all use it, so they exercise the same layout amavisd makes.
 */
export interface AmavisMessage {
  partitionTag?: number;
  secretId?: string;
  timeNum: number;
  /** null: still being processed (amavisd writes the row first with content NULL) */
  content: string | null;
  /** 'Q' for SQL quarantine; '' for a log-only row */
  quarType?: string;
  sender: string;
  recipients: Array<{ address: string; content?: string; rs?: string; ds?: string; score?: number | null; blocked?: boolean }>;
  subject: string;
  fromHeader?: string;
  spamLevel?: number | null;
  messageId?: string;
  clientAddr?: string;
  host?: string;
  policy?: string;
  /** the message as received; amavisd's header lines are prepended here */
  raw?: Uint8Array | string;
  /** msgs.size when it should differ from the stored text's length (the benchmark's large mail) */
  size?: number;
}

export interface Written {
  partitionTag: number;
  mailId: string;
  secretId: string;
}

const enc = new TextEncoder();
const CHUNK = 16 * 1024;

export function timeIso(v: SchemaVariant, t: number): string {
  const d = new Date(t * 1000).toISOString();
  return v.dialect === 'mysql' ? d.replace(/[-:]/g, '').slice(0, 15) + 'Z' : d;
}

/** A value for `table.column`: bytes where the column is bytea on PostgreSQL. */
function val(v: SchemaVariant, column: string, value: string): string | Uint8Array {
  return v.dialect === 'postgres' && v.binary.has(column) ? enc.encode(value) : value;
}

export function storedText(m: AmavisMessage, mailId: string): Uint8Array {
  const raw = typeof m.raw === 'string' ? enc.encode(m.raw) : (m.raw ?? enc.encode(`Subject: ${m.subject}\n\nbody\n`));
  const blocked = m.recipients.filter((r) => r.blocked !== false).map((r) => r.address);
  const head =
    `X-Envelope-From: <${m.sender}>\n` +
    `X-Envelope-To: ${m.recipients.map((r) => `<${r.address}>`).join(',\n ')}\n` +
    `X-Envelope-To-Blocked: ${blocked.map((a) => `<${a}>`).join(',\n ')}\n` +
    `X-Quarantine-ID: <${mailId}>\n`;
  const h = enc.encode(head);
  const out = new Uint8Array(h.length + raw.length);
  out.set(h);
  out.set(raw, h.length);
  return out;
}

async function addressIds(db: Kysely<Database>, v: SchemaVariant, partition: number, emails: string[]): Promise<Map<string, string>> {
  const ids = new Map<string, string>();
  const unique = [...new Set(emails)];
  const lookup = async (list: string[]) => {
    for (let i = 0; i < list.length; i += 500) {
      const part = list.slice(i, i + 500).map((e) => val(v, 'maddr.email', e));
      const { rows } = await sql<{ id: number | string; email: unknown }>`
        SELECT id, email FROM maddr WHERE partition_tag = ${partition} AND email IN (${sql.join(part)})`.execute(db);
      for (const r of rows) {
        const e = r.email instanceof Uint8Array ? new TextDecoder().decode(r.email) : String(r.email);
        ids.set(e, String(r.id));
      }
    }
  };
  await lookup(unique);
  const missing = unique.filter((e) => !ids.has(e));
  const raw = hasColumn(v, 'maddr', 'email_raw');
  for (let i = 0; i < missing.length; i += 500) {
    const rows = missing.slice(i, i + 500).map((e) => {
      const parts = [sql`${partition}`, sql`${val(v, 'maddr.email', e)}`, sql`${val(v, 'maddr.domain', reverseDomain(domainOf(e)))}`];
      if (raw) parts.push(sql`${val(v, 'maddr.email_raw', e.replace(/\+[^@]*@/, '@'))}`);
      return sql`(${sql.join(parts)})`;
    });
    const cols = raw ? sql`(partition_tag, email, domain, email_raw)` : sql`(partition_tag, email, domain)`;
    await sql`INSERT INTO maddr ${cols} VALUES ${sql.join(rows)}`.execute(db);
  }
  await lookup(missing);
  return ids;
}

export async function writeMessages(db: Kysely<Database>, v: SchemaVariant, messages: AmavisMessage[]): Promise<Written[]> {
  const written: Written[] = [];
  const byPartition = new Map<number, AmavisMessage[]>();
  for (const m of messages) {
    const p = m.partitionTag ?? 0;
    if (!byPartition.has(p)) byPartition.set(p, []);
    byPartition.get(p)!.push(m);
  }
  for (const [partition, group] of byPartition) {
    const ids = await addressIds(
      db,
      v,
      partition,
      group.flatMap((m) => [m.sender, ...m.recipients.map((r) => r.address)]),
    );
    type Row = ReturnType<typeof sql>;
    const msgRows: Row[] = [];
    const rcptRows: Row[] = [];
    const chunkRows: Row[] = [];
    for (const m of group) {
      const secretId = m.secretId ?? randomSecretId();
      const mailId = mailIdOfSecret(secretId);
      written.push({ partitionTag: partition, mailId, secretId });
      const text = storedText(m, mailId);
      msgRows.push(
        sql`(${sql.join([
          partition,
          val(v, 'msgs.mail_id', mailId),
          val(v, 'msgs.secret_id', secretId),
          mailId.slice(0, 10),
          m.timeNum,
          timeIso(v, m.timeNum),
          ids.get(m.sender)!,
          m.policy ?? '',
          m.clientAddr ?? '192.0.2.10',
          m.size ?? text.length,
          'N',
          m.content,
          m.quarType ?? 'Q',
          m.quarType === '' ? '' : val(v, 'msgs.quar_loc', mailId),
          null,
          m.spamLevel ?? null,
          m.messageId ?? `<${mailId}@mx.example.net>`,
          val(v, 'msgs.from_addr', m.fromHeader ?? m.sender),
          val(v, 'msgs.subject', m.subject),
          m.host ?? 'mx1.example.net',
        ])})`,
      );
      m.recipients.forEach((r, i) => {
        rcptRows.push(
          sql`(${sql.join([
            partition,
            val(v, 'msgrcpt.mail_id', mailId),
            i,
            ids.get(r.address)!,
            'Y',
            r.content ?? m.content ?? ' ',
            r.ds ?? 'D',
            r.rs ?? ' ',
            ' ',
            ' ',
            r.score === undefined ? (m.spamLevel ?? null) : r.score,
            '250 2.7.0 Ok, discarded',
          ])})`,
        );
      });
      if (m.content !== null && (m.quarType ?? 'Q') === 'Q') {
        for (let off = 0, n = 1; off < text.length; off += CHUNK, n++) {
          chunkRows.push(sql`(${sql.join([partition, val(v, 'quarantine.mail_id', mailId), n, text.subarray(off, off + CHUNK)])})`);
        }
      }
    }
    const insert = async (head: ReturnType<typeof sql>, rows: ReturnType<typeof sql>[], per: number) => {
      for (let i = 0; i < rows.length; i += per) {
        await sql`${head} VALUES ${sql.join(rows.slice(i, i + per))}`.execute(db);
      }
    };
    await insert(
      sql`INSERT INTO msgs (partition_tag, mail_id, secret_id, am_id, time_num, time_iso, sid, policy,
      client_addr, size, originating, content, quar_type, quar_loc, dsn_sent, spam_level, message_id, from_addr,
      subject, host)`,
      msgRows,
      200,
    );
    await insert(
      sql`INSERT INTO msgrcpt (partition_tag, mail_id, rseqnum, rid, is_local, content, ds, rs, bl, wl,
      bspam_level, smtp_resp)`,
      rcptRows,
      500,
    );
    await insert(sql`INSERT INTO quarantine (partition_tag, mail_id, chunk_ind, mail_text)`, chunkRows, 50);
  }
  return written;
}
