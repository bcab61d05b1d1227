import { AppError } from '../errors.ts';
import { MAIL_ID_PATTERN } from '../amavis/mail-id.ts';
import { base64url, base64urlDecode } from '../crypto/hmac.ts';
import { sha256 } from '../crypto/sha256.ts';
import { SORT_KEYS, type Sort } from './sort.ts';

/**
 * Keyset position of the last row of a page in one order (src/quarantine/sort.ts): the order, the
 * row's sort value and its unique key (partition_tag, mail_id). The checksum makes it
 * tamper-evident: a changed character is a 400, not a silently different page; so is a cursor of
 * another order. (It is not a secret: any position a caller forges is still filtered by the
 * caller's scope.)
 */
export type CursorValue = number | string | Uint8Array | null;
export interface Position {
  sort: Sort;
  p: number;
  m: string;
  /** the sort value; undefined: too long to carry (a subject over VALUE_MAX bytes), read back from the row */
  v: CursorValue | undefined;
}

/** Longer sort values (only subjects can be) are not carried: the cursor stays under CURSOR_MAX characters. */
const VALUE_MAX = 1024;
export const CURSOR_MAX = 3000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** SHA-256, synchronously (one per page: Web Crypto's async digest cost more than the hash, src/crypto/sha256.ts). */
function checksum(payload: string, tag = LIST_TAG): string {
  return base64url(sha256(`${tag}:${payload}`).subarray(0, 9));
}

/** One list's cursors (encodeCursor) and the list across gateways' cursors (src/quarantine/cursor-across.ts): a tag of their own, so neither kind passes for the other. */
export const LIST_TAG = 'qe-cursor';
export const ACROSS_TAG = 'qe-cursor-across';
const SHAPE = /^([A-Za-z0-9_-]{1,2800})\.([A-Za-z0-9_-]{12})$/;

/** `value` as JSON, base64url, with the checksum under `tag`: tamper-evident as a list cursor is. */
export function sealCursor(tag: string, value: unknown): string {
  const payload = base64url(enc.encode(JSON.stringify(value)));
  return `${payload}.${checksum(payload, tag)}`;
}

/** The JSON value of a cursor sealCursor made under `tag`, or null (changed, or another kind). */
export function openCursor(tag: string, cursor: string): unknown {
  const m = SHAPE.exec(cursor);
  if (!m || checksum(m[1]!, tag) !== m[2]) return null;
  try {
    const bytes = base64urlDecode(m[1]!);
    return bytes ? (JSON.parse(dec.decode(bytes)) as unknown) : null;
  } catch {
    return null;
  }
}

function packValue(v: CursorValue | undefined): unknown[] {
  if (v === undefined) return [];
  if (v instanceof Uint8Array) return v.length > VALUE_MAX ? [] : [['b', base64url(v)]];
  if (typeof v === 'string') return enc.encode(v).length > VALUE_MAX ? [] : [['s', v]];
  return [v];
}

export async function encodeCursor(pos: Position): Promise<string> {
  const payload = base64url(enc.encode(JSON.stringify([pos.sort.key, pos.sort.order, pos.p, pos.m, ...packValue(pos.v)])));
  return `${payload}.${checksum(payload)}`;
}

/** The position, if the cursor is one this server issued for the order `sort`; else 400 invalid_cursor. */
export async function decodeCursor(cursor: string, sort: Sort): Promise<Position> {
  const bad = (why = 'cursor is not one this server issued') => new AppError('invalid_cursor', why, { field: 'cursor' });
  const m = SHAPE.exec(cursor);
  if (m && checksum(m[1]!, ACROSS_TAG) === m[2]) throw bad('cursor belongs to the list across gateways: name no gateway to follow it');
  if (!m || checksum(m[1]!) !== m[2]) throw bad();
  let parsed: unknown[];
  try {
    const bytes = base64urlDecode(m[1]!);
    if (!bytes) throw bad();
    parsed = JSON.parse(dec.decode(bytes)) as unknown[];
    if (!Array.isArray(parsed)) throw bad();
  } catch {
    throw bad();
  }
  // a cursor of the first release ([time_num, partition_tag, mail_id]) is a place in the default order
  const [key, order, p, id, ...rest] =
    parsed.length === 3 && typeof parsed[0] === 'number' ? ['received', 'desc', parsed[1], parsed[2], parsed[0]] : parsed;
  if (!SORT_KEYS.includes(key as never) || (order !== 'asc' && order !== 'desc')) throw bad();
  if (key !== sort.key || order !== sort.order) throw bad(`cursor belongs to another order (sort=${String(key)}&order=${String(order)})`);
  // Forged positions are allowed (scope still applies) but must be plausible: partition_tag a signed
  // 32-bit integer, time_num at most 32-bit unsigned (MySQL; list.ts handles PostgreSQL's range).
  if (!Number.isSafeInteger(p) || (p as number) < 0 || (p as number) > 2 ** 31 - 1 || typeof id !== 'string' || !MAIL_ID_PATTERN.test(id))
    throw bad();
  if (rest.length > 1) throw bad();
  const v = rest.length === 0 ? undefined : unpackValue(rest[0]);
  if (v === false) throw bad();
  const ok =
    key === 'received'
      ? Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= 2 ** 32 - 1
      : key === 'score'
        ? v === null || (typeof v === 'number' && Number.isFinite(v))
        : v === null || typeof v === 'string' || v instanceof Uint8Array || (v === undefined && key === 'subject');
  if (!ok) throw bad();
  return { sort, p: p as number, m: id, v };
}

function unpackValue(x: unknown): CursorValue | undefined | false {
  if (x === null || typeof x === 'number') return x;
  if (Array.isArray(x) && x.length === 2 && typeof x[1] === 'string') {
    if (x[0] === 's') return x[1];
    if (x[0] === 'b') return base64urlDecode(x[1]) ?? false;
  }
  return false;
}
