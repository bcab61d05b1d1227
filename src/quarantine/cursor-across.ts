import { MAIL_ID_PATTERN } from '../amavis/mail-id.ts';
import { base64url } from '../crypto/hmac.ts';
import { sha256 } from '../crypto/sha256.ts';
import { AppError } from '../errors.ts';
import { ACROSS_TAG, LIST_TAG, openCursor, sealCursor } from './cursor.ts';
import type { ListInput } from './list.ts';
import type { SortOrder } from './sort.ts';

/**
 * A place in the list across gateways (src/quarantine/list-across.ts): the last row of a page, as
 * (received time, gateway, partition_tag, mail_id). Sealed as a list cursor is (src/quarantine/cursor.ts:
 * tamper-evident, not secret: a forged place still only reads what the caller may see), with its
 * order and a digest of the filters it was made for, so that it cannot continue another list.
 */
export interface AcrossPosition {
  t: number;
  /** '' the deployment's own database */
  g: string;
  p: number;
  m: string;
}

const GATEWAY = /^(?:|[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?)$/;

/** What makes two requests the same list (not the limit): the filters, in a fixed order. */
function filterDigest(input: ListInput): string {
  const f = [
    input.types ? [...input.types].sort() : null,
    input.recipient ?? null,
    input.sender ?? null,
    input.domain ?? null,
    input.q ?? null,
    input.since ?? null,
    input.until ?? null,
    input.min_score ?? null,
    input.max_score ?? null,
    input.status,
  ];
  return base64url(sha256(JSON.stringify(f)).subarray(0, 9));
}

export function encodeAcrossCursor(pos: AcrossPosition, order: SortOrder, input: ListInput): string {
  return sealCursor(ACROSS_TAG, ['across', order, pos.t, pos.g, pos.p, pos.m, filterDigest(input)]);
}

/** The position, if the cursor is one this server issued for this order and these filters; else 400 invalid_cursor. */
export function decodeAcrossCursor(cursor: string, order: SortOrder, input: ListInput): AcrossPosition {
  const bad = (why = 'cursor is not one this server issued') => new AppError('invalid_cursor', why, { field: 'cursor' });
  const x = openCursor(ACROSS_TAG, cursor);
  if (x === null) {
    // a cursor of one gateway's list is sealed under the list's own tag
    if (openCursor(LIST_TAG, cursor) !== null) throw bad("cursor belongs to one gateway's list: name that gateway (gateway=...)");
    throw bad();
  }
  if (!Array.isArray(x) || x.length !== 7 || x[0] !== 'across') throw bad();
  const [, o, t, g, p, m, digest] = x as unknown[];
  if (o !== order) throw bad(`cursor belongs to another order (order=${String(o)})`);
  if (digest !== filterDigest(input)) throw bad('cursor belongs to a list with other filters');
  const ok =
    Number.isSafeInteger(t) &&
    (t as number) >= 0 &&
    (t as number) <= 2 ** 32 - 1 &&
    typeof g === 'string' &&
    GATEWAY.test(g) &&
    Number.isSafeInteger(p) &&
    (p as number) >= 0 &&
    (p as number) <= 2 ** 31 - 1 &&
    typeof m === 'string' &&
    MAIL_ID_PATTERN.test(m);
  if (!ok) throw bad();
  return { t: t as number, g: g as string, p: p as number, m: m as string };
}
