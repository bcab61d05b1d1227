import { AppError } from '../errors.ts';
import { MAIL_ID_PATTERN } from '../amavis/mail-id.ts';
import { base64url, base64urlDecode } from '../crypto/hmac.ts';
import { sha256 } from '../crypto/sha256.ts';

/**
 * Keyset position (time_num, partition_tag, mail_id) of the last row of a page. The checksum makes
 * it tamper-evident: a changed character is a 400, not a silently different page. (It is not a
 * secret: any position a caller forges is still filtered by the caller's scope.)
 */
export interface Position {
  t: number;
  p: number;
  m: string;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** SHA-256, synchronously (one per page: Web Crypto's async digest cost more than the hash, src/crypto/sha256.ts). */
function checksum(payload: string): string {
  return base64url(sha256(`qe-cursor:${payload}`).subarray(0, 9));
}

export async function encodeCursor(pos: Position): Promise<string> {
  const payload = base64url(enc.encode(JSON.stringify([pos.t, pos.p, pos.m])));
  return `${payload}.${checksum(payload)}`;
}

export async function decodeCursor(cursor: string): Promise<Position> {
  const bad = () => new AppError('invalid_cursor', 'cursor is not one this server issued', { field: 'cursor' });
  const m = /^([A-Za-z0-9_-]{1,200})\.([A-Za-z0-9_-]{12})$/.exec(cursor);
  if (!m || checksum(m[1]!) !== m[2]) throw bad();
  try {
    const bytes = base64urlDecode(m[1]!);
    if (!bytes) throw bad();
    const [t, p, id] = JSON.parse(dec.decode(bytes)) as unknown[];
    // Forged positions are allowed (scope still applies) but must be plausible: time_num is at most
    // 32-bit unsigned (MySQL), partition_tag a signed 32-bit integer (list.ts handles PostgreSQL's range).
    if (!Number.isSafeInteger(t) || !Number.isSafeInteger(p) || typeof id !== 'string') throw bad();
    if ((t as number) < 0 || (t as number) > 2 ** 32 - 1 || (p as number) < 0 || (p as number) > 2 ** 31 - 1 || !MAIL_ID_PATTERN.test(id))
      throw bad();
    return { t: t as number, p: p as number, m: id };
  } catch {
    throw bad();
  }
}
