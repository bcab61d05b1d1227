import { sql } from 'kysely';
import { bind } from '../amavis/schema.ts';
import type { MailKey } from '../amavis/mail-id.ts';
import type { Identity } from '../auth/identity.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors.ts';
import { toItem, type MsgRow, type QuarantineItem } from './item.ts';
import { recipientsOf } from './list.ts';
import { ownerVisibleFor } from './release-policy.ts';
import { DISPLAY_LIMITS, parseForDisplay, type MessageView } from './parse.ts';

/**
 * One quarantined message as `who` may see it, or not_found: a message none of whose recipients is
 * in scope does not exist for this caller (404, never 403).
 */
export async function getItem(deps: Deps, who: Identity, key: MailKey): Promise<QuarantineItem> {
  const v = deps.variant;
  const { rows } = await sql<MsgRow>`
    SELECT m.partition_tag, m.mail_id, m.time_num, m.content, m.spam_level, m.size, m.subject,
      m.from_addr, m.message_id, m.client_addr, m.host, s.email AS sender
    FROM msgs m LEFT JOIN maddr s ON s.id = m.sid
    WHERE m.partition_tag = ${key.partitionTag} AND m.mail_id = ${bind(v, 'msgs.mail_id', key.mailId)}
      AND m.quar_type = 'Q' AND m.content IS NOT NULL AND ${await ownerVisibleFor(deps, who)}`.execute(deps.db);
  const msg = rows[0];
  if (!msg) throw notFound();
  const rcpts = (await recipientsOf(deps, who, [msg])).get(`${key.partitionTag}.${key.mailId}`) ?? [];
  if (rcpts.length === 0) throw notFound();
  return toItem(msg, rcpts, deps.gateway);
}

const notFound = () => new AppError('not_found', 'no quarantined message with this id');

/** The stored message: amavisd's chunks in order, concatenated byte for byte. */
export async function readStoredMessage(deps: Deps, key: MailKey): Promise<Uint8Array> {
  const { rows } = await sql<{ mail_text: unknown }>`
    SELECT mail_text FROM quarantine
    WHERE partition_tag = ${key.partitionTag} AND mail_id = ${bind(deps.variant, 'quarantine.mail_id', key.mailId)}
    ORDER BY chunk_ind`.execute(deps.db);
  if (rows.length === 0) throw new AppError('not_found', 'the message text is no longer in the quarantine');
  return concat(rows.map((r) => chunkBytes(r.mail_text)));
}

const CHUNK = 16 * 1024; // amavisd's largest chunk
const enc = new TextEncoder();
const chunkBytes = (v: unknown) => (v instanceof Uint8Array ? v : enc.encode(String(v)));

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) {
    out.set(p, off);
    off += p.length;
  }
  return out;
}

/**
 * The first `maxBytes` (or a little more) of the stored message, for display: a message of any size
 * costs one view at most about that much memory. `complete`: nothing was left unread.
 */
export async function readStoredPrefix(deps: Deps, key: MailKey, maxBytes: number): Promise<{ bytes: Uint8Array; complete: boolean }> {
  const batch = Math.ceil(maxBytes / CHUNK) + 1;
  const parts: Uint8Array[] = [];
  let size = 0;
  let last = -1;
  // Chunks are usually full, so this is one query; smaller chunks take a few more, at most 8.
  for (let round = 0; round < 8; round++) {
    const { rows } = await sql<{ mail_text: unknown; chunk_ind: number | string }>`
      SELECT mail_text, chunk_ind FROM quarantine
      WHERE partition_tag = ${key.partitionTag} AND mail_id = ${bind(deps.variant, 'quarantine.mail_id', key.mailId)}
        AND chunk_ind > ${last}
      ORDER BY chunk_ind LIMIT ${batch}`.execute(deps.db);
    if (round === 0 && rows.length === 0) throw new AppError('not_found', 'the message text is no longer in the quarantine');
    for (const r of rows) {
      const b = chunkBytes(r.mail_text);
      parts.push(b);
      size += b.length;
    }
    if (rows.length < batch) return { bytes: concat(parts), complete: true };
    last = Number(rows[rows.length - 1]!.chunk_ind);
    if (size > maxBytes) break;
  }
  return { bytes: concat(parts), complete: false };
}

const AMAVIS_FIELDS = /^(x-envelope-from|x-envelope-to|x-envelope-to-blocked|x-quarantine-id):/i;

/**
 * The original message: amavisd prepends X-Envelope-From/-To/-To-Blocked and X-Quarantine-ID.
 * They are removed (they also list every envelope recipient, which a domain admin may not see).
 * Only the leading block amavisd wrote is touched; the rest stays byte-exact.
 */
export function stripAmavisHeaders(message: Uint8Array): Uint8Array {
  let off = 0;
  const dec = new TextDecoder('latin1');
  let skipping = false;
  while (off < message.length) {
    let end = message.indexOf(0x0a, off);
    if (end < 0) end = message.length - 1;
    const line = dec.decode(message.subarray(off, Math.min(end + 1, off + 40)));
    const continuation = line.startsWith(' ') || line.startsWith('\t');
    if (AMAVIS_FIELDS.test(line) || (skipping && continuation)) {
      skipping = true;
      off = end + 1;
      continue;
    }
    break;
  }
  return message.subarray(off);
}

export async function getRawMessage(deps: Deps, who: Identity, key: MailKey): Promise<Uint8Array> {
  await getItem(deps, who, key);
  return stripAmavisHeaders(await readStoredMessage(deps, key));
}

export type ItemDetail = QuarantineItem & MessageView;

/** One message for display: the item and its parts, parsed within DISPLAY_LIMITS (never a 500 for its content). */
export async function getItemDetail(deps: Deps, who: Identity, key: MailKey): Promise<ItemDetail> {
  return detailOf(deps, await getItem(deps, who, key), key);
}

/** The stored message of an item the caller already read through getItem (its scope checked there). */
export async function detailOf(deps: Deps, item: QuarantineItem, key: MailKey): Promise<ItemDetail> {
  const { bytes, complete } = await readStoredPrefix(deps, key, DISPLAY_LIMITS.bytes);
  return { ...item, ...(await parseForDisplay(stripAmavisHeaders(bytes), complete)) };
}
