import { statusOfRs, typeOfCode, type ContentType, type RecipientStatus } from '../amavis/codes.ts';
import { publicItemId } from '../amavis/mail-id.ts';
import { text } from '../amavis/schema.ts';

/** The API's view of one quarantined message, limited to the recipients the caller may see. */
export interface QuarantineItem {
  id: string;
  partition_tag: number;
  mail_id: string;
  type: ContentType;
  content_code: string;
  subject: string;
  sender: string;
  from_header: string;
  recipients: Array<{ address: string; status: RecipientStatus; score: number | null; content_code: string }>;
  score: number | null;
  size: number;
  received_at: string;
  message_id: string;
  client_addr: string;
  host: string;
}

export interface MsgRow {
  partition_tag: number;
  mail_id: unknown;
  time_num: number | string;
  content: string | null;
  spam_level: number | string | null;
  size: number | string;
  subject: unknown;
  from_addr: unknown;
  message_id: unknown;
  client_addr: unknown;
  host: unknown;
  sender: unknown;
}

export interface RcptRow {
  partition_tag: number;
  mail_id: unknown;
  rseqnum: number;
  rs: string;
  content: string;
  bspam_level: number | string | null;
  email: unknown;
}

/** Scores are JSON numbers; PostgreSQL's `real` can arrive as a string from some drivers. */
export function score(v: number | string | null): number | null {
  if (v === null || v === undefined) return null;
  const n = Number(v);
  return Number.isFinite(n) ? Math.round(n * 1000) / 1000 : null;
}

/** `gateway`: the database the rows are from ('' the deployment's own), for the id a caller sees. */
export function toItem(m: MsgRow, rcpts: RcptRow[], gateway = ''): QuarantineItem {
  const mailId = text(m.mail_id);
  const partitionTag = Number(m.partition_tag);
  const content = (m.content ?? '?').trim() || '?';
  return {
    id: publicItemId(gateway, { partitionTag, mailId }),
    partition_tag: partitionTag,
    mail_id: mailId,
    type: typeOfCode(content),
    content_code: content,
    subject: text(m.subject),
    sender: text(m.sender),
    from_header: text(m.from_addr),
    recipients: rcpts.map((r) => ({
      address: text(r.email),
      status: statusOfRs(r.rs),
      score: score(r.bspam_level),
      content_code: (r.content ?? '').trim(),
    })),
    score: score(m.spam_level),
    size: Number(m.size),
    received_at: new Date(Number(m.time_num) * 1000).toISOString(),
    message_id: text(m.message_id),
    client_addr: text(m.client_addr),
    host: text(m.host),
  };
}
