/**
 * amavisd's AM.PDP codec (the release protocol on port 9998), runtime-neutral.
 *
 * A request is `name=value` lines ending in CRLF and one empty line. amavisd reads lines up to LF
 * and %XX-decodes names and values, so a raw CR or LF inside a value would split it into a second
 * attribute line: every byte outside `!`..`~` (and `%` itself) is therefore written as %XX of its
 * UTF-8 bytes. The reply uses the same format (amavisd writes lowercase hex) and also ends with an
 * empty line.
 */
import type { ReleaseReply, ReleaseRequest } from '../release/transport.ts';
import { AppError } from '../errors.ts';

/** Attributes in wire order; names repeat (one `recipient=` per recipient, one `setreply=` each). */
export type PdpAttributes = Array<[string, string]>;

const NAME = /^[a-z_]+$/;
/** amavisd >= 2.7 writes base64url ids; older ones used `+` and `-`. Both stay 16 chars at most. */
const ID = /^[A-Za-z0-9+_-]{1,16}$/;
const HEX = '0123456789ABCDEF';
const encoder = new TextEncoder();

function pushEncoded(out: number[], value: string): void {
  for (const b of encoder.encode(value)) {
    if (b >= 0x21 && b <= 0x7e && b !== 0x25) out.push(b);
    else out.push(0x25, HEX.charCodeAt(b >> 4), HEX.charCodeAt(b & 15));
  }
}

export function encodeRequest(attrs: PdpAttributes): Uint8Array {
  const out: number[] = [];
  for (const [name, value] of attrs) {
    if (!NAME.test(name)) throw new AppError('bad_request', `AM.PDP attribute name must match [a-z_]+: ${JSON.stringify(name)}`);
    if (typeof value !== 'string') throw new AppError('bad_request', `AM.PDP attribute ${name} must be a string`);
    for (let i = 0; i < name.length; i++) out.push(name.charCodeAt(i));
    out.push(0x3d);
    pushEncoded(out, value);
    out.push(0x0d, 0x0a);
  }
  out.push(0x0d, 0x0a);
  return Uint8Array.from(out);
}

const hexValue = (c: number): number =>
  c >= 0x30 && c <= 0x39 ? c - 0x30 : c >= 0x41 && c <= 0x46 ? c - 0x37 : c >= 0x61 && c <= 0x66 ? c - 0x57 : -1;

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** %XX-decodes to bytes, then reads them as UTF-8 (bad sequences become U+FFFD). A stray `%` stays. */
export function percentDecode(bytes: Uint8Array): string {
  const out = new Uint8Array(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x25 && i + 2 < bytes.length) {
      const hi = hexValue(bytes[i + 1]!);
      const lo = hexValue(bytes[i + 2]!);
      if (hi >= 0 && lo >= 0) {
        out[n++] = (hi << 4) | lo;
        i += 2;
        continue;
      }
    }
    out[n++] = b;
  }
  return utf8.decode(out.subarray(0, n));
}

/**
 * Decodes a reply (or a request: the format is the same). Lines end in LF (a CR before it is
 * dropped); the first empty line ends the message and anything after it is ignored. A line without
 * `=` is not an attribute and is skipped: it can never add a `setreply`.
 */
export function decodeReply(input: Uint8Array | string): PdpAttributes {
  const bytes = typeof input === 'string' ? encoder.encode(input) : input;
  const attrs: PdpAttributes = [];
  let start = 0;
  while (start < bytes.length) {
    let end = bytes.indexOf(0x0a, start);
    const next = end < 0 ? bytes.length : end + 1;
    if (end < 0) end = bytes.length;
    let line = bytes.subarray(start, end);
    if (line.length > 0 && line[line.length - 1] === 0x0d) line = line.subarray(0, line.length - 1);
    start = next;
    if (line.length === 0) break;
    const eq = line.indexOf(0x3d);
    if (eq < 0) continue;
    attrs.push([percentDecode(line.subarray(0, eq)), percentDecode(line.subarray(eq + 1))]);
  }
  return attrs;
}

/** Index just past the empty line that ends an AM.PDP message, or -1 while it is incomplete. */
export function endOfMessage(bytes: Uint8Array): number {
  let lineStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] !== 0x0a) continue;
    const len = i - lineStart;
    if (len === 0 || (len === 1 && bytes[lineStart] === 0x0d)) return i + 1;
    lineStart = i + 1;
  }
  return -1;
}

const TWO_XX = /^2\d\d(?:\s|$)/;
/** `250 2.5.0 No recipients, nothing to do`: a 250 for a release that did not happen. */
const NOTHING_DONE = /^\d\d\d\s+2\.5\.0(?:\s|$)/;

/** Released only when there is a setreply, every one is 2xx, and none is the 2.5.0 "nothing to do". */
export function verdict(setreplies: string[]): boolean {
  return setreplies.length > 0 && setreplies.every((r) => TWO_XX.test(r) && !NOTHING_DONE.test(r));
}

/** C0 controls and DEL: never part of an address amavisd could deliver to. */
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * The release request amavisd expects. Ids are checked here (they are the only part amavisd
 * treats as a credential and a lookup key); addresses with control characters are refused outright
 * rather than sent, even though the encoding would keep them on one line: amavisd decodes them and
 * would hand them to its SMTP client as they are.
 */
export function releaseAttributes(req: ReleaseRequest): PdpAttributes {
  if (!ID.test(req.mailId)) throw new AppError('bad_request', 'mail_id is not an amavisd mail_id', { field: 'mail_id' });
  if (!ID.test(req.secretId)) throw new AppError('bad_request', 'secret_id is not an amavisd secret_id', { field: 'secret_id' });
  if (!Number.isSafeInteger(req.partitionTag) || req.partitionTag < 0) {
    throw new AppError('bad_request', 'partition_tag must be a non-negative integer', { field: 'partition_tag' });
  }
  for (const r of req.recipients) {
    if (r === '' || CONTROL.test(r))
      throw new AppError('bad_request', 'a recipient is empty or contains control characters', { field: 'recipients' });
  }
  if (CONTROL.test(req.requestedBy))
    throw new AppError('bad_request', 'requested_by contains control characters', { field: 'requested_by' });
  const attrs: PdpAttributes = [
    ['request', 'release'],
    ['mail_id', req.mailId],
    ['secret_id', req.secretId],
    ['partition_tag', String(req.partitionTag)],
    ['quar_type', 'Q'],
  ];
  for (const r of req.recipients) attrs.push(['recipient', r]);
  if (req.requestedBy !== '') attrs.push(['requested_by', req.requestedBy]);
  return attrs;
}

/**
 * amavisd echoes a secret_id it refuses in its failure text ("Secret_id X does not match mail_id
 * Y"); the reply travels on to API clients and logs, so the secret is cut out first.
 */
export function redactSecret(attrs: PdpAttributes, secretId: string): PdpAttributes {
  if (secretId === '') return attrs;
  return attrs.map(([k, v]): [string, string] => [k, v.split(secretId).join('[secret_id]')]);
}

export function setrepliesOf(attrs: PdpAttributes): string[] {
  return attrs.filter(([k]) => k === 'setreply').map(([, v]) => v);
}

/** A decoded AM.PDP reply as the transports hand it to the release verb. */
export function toReleaseReply(reply: PdpAttributes, via: ReleaseReply['via'], secretId = ''): ReleaseReply {
  const attributes = redactSecret(reply, secretId);
  const setreplies = setrepliesOf(attributes);
  return { setreplies, attributes, released: verdict(setreplies), via };
}
