// Reading what amavisd wrote for one submitted message, found by its Message-ID.
// amavisd inserts the msgs row with content NULL first and completes it at the end; quarantine
// chunks and the completed row are committed before the SMTP 250 (the lab showed it; `polls`
// lets a test check that it still holds: 1 = complete at the first look).
import type { Db } from './db.ts';

export interface MsgRcptRow {
  address: string;
  content: string;
  ds: string;
  rs: string;
  bl: string | null;
  wl: string | null;
  bspamLevel: number | null;
}

export interface MsgRow {
  partitionTag: number;
  mailId: string;
  secretId: string;
  content: string;
  quarType: string | null;
  quarLoc: string;
  spamLevel: number | null;
  messageId: string;
  subject: string;
  fromAddr: string;
  timeNum: number;
  sender: string;
  recipients: MsgRcptRow[];
  quarantineChunks: number;
  /** how many looks it took until the row was complete (1 = already complete) */
  polls: number;
}

const text = (v: unknown): string => (v == null ? '' : Buffer.isBuffer(v) ? v.toString('utf8') : String(v));
const num = (v: unknown): number | null => (v == null ? null : Number(v));

/**
 * Waits until the msgs row for `messageId` has content NOT NULL and, when quarantined in SQL
 * (quar_type 'Q'), its quarantine chunks exist. `messageId` with angle brackets, as in the header.
 */
export async function waitForMsg(conn: Db, messageId: string, timeoutMs = 15_000): Promise<MsgRow> {
  const t0 = Date.now();
  for (let polls = 1; ; polls++) {
    const rows = await conn.query<Record<string, unknown>>(
      `SELECT m.partition_tag, m.mail_id, m.secret_id, m.content, m.quar_type, m.quar_loc, m.spam_level,
              m.message_id, m.subject, m.from_addr, m.time_num, s.email AS sender,
              (SELECT count(*) FROM quarantine q
                WHERE q.partition_tag = m.partition_tag AND q.mail_id = m.mail_id) AS chunks
         FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
        WHERE m.message_id = ? AND m.content IS NOT NULL`,
      [messageId],
    );
    const r = rows[0];
    if (r && (r.quar_type !== 'Q' || Number(r.chunks) > 0)) {
      const rcpts = await conn.query<Record<string, unknown>>(
        `SELECT a.email, r.content, r.ds, r.rs, r.bl, r.wl, r.bspam_level
           FROM msgrcpt r JOIN maddr a ON a.id = r.rid
          WHERE r.partition_tag = ? AND r.mail_id = ? ORDER BY r.rseqnum`,
        [r.partition_tag, r.mail_id],
      );
      return {
        partitionTag: Number(r.partition_tag ?? 0),
        mailId: text(r.mail_id),
        secretId: text(r.secret_id),
        content: text(r.content),
        quarType: r.quar_type == null ? null : text(r.quar_type),
        quarLoc: text(r.quar_loc),
        spamLevel: num(r.spam_level),
        messageId: text(r.message_id),
        subject: text(r.subject),
        fromAddr: text(r.from_addr),
        timeNum: Number(r.time_num),
        sender: text(r.sender),
        recipients: rcpts.map((x) => ({
          address: text(x.email),
          content: text(x.content),
          ds: text(x.ds),
          rs: text(x.rs),
          bl: x.bl == null ? null : text(x.bl),
          wl: x.wl == null ? null : text(x.wl),
          bspamLevel: num(x.bspam_level),
        })),
        quarantineChunks: Number(r.chunks),
        polls,
      };
    }
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`no complete msgs row for Message-ID ${messageId} within ${timeoutMs} ms`);
    }
    await new Promise((res) => setTimeout(res, 50));
  }
}
