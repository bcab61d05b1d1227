import PostalMime from 'postal-mime';
import { sha256Hex } from '../crypto/sha256.ts';

/**
 * How much of a quarantined message one view parses. Whatever the message (any size, any number of
 * parts, any depth, megabytes of headers), one view parses at most `bytes` bytes and `parts` MIME
 * parts, so its time and memory stay bounded; the raw download always has the whole message.
 */
export const DISPLAY_LIMITS = {
  /** bytes of the stored message handed to the MIME parser (read from the database: about as many) */
  bytes: 4 * 1024 * 1024,
  /** MIME part delimiters before the message is cut */
  parts: 1000,
  /** multipart nesting (postal-mime's maxNestingDepth; deeper is a parse error) */
  depth: 32,
  /** header bytes of all parts together (postal-mime's maxHeadersSize; more is a parse error) */
  headerBytes: 1024 * 1024,
  /** header bytes shown when the parser gave up (the top-level header block only) */
  fallbackHeaderBytes: 64 * 1024,
};
export type DisplayLimits = typeof DISPLAY_LIMITS;

export interface MessageView {
  headers: Array<{ name: string; value: string }>;
  text: string | null;
  html: string | null;
  /** sha256: of the decoded content, hex (to look the file up elsewhere without opening it) */
  attachments: Array<{ filename: string | null; content_type: string; size: number; sha256: string }>;
  /** the MIME parser gave up (a limit or malformed input): only the top-level headers are shown */
  parse_error: boolean;
  /** only the beginning of the message was parsed (size or part limit): parts or attachments may be missing or short */
  truncated: boolean;
}

/**
 * The message as the API and the pages show it, parsed within `limits`. `complete` is false when
 * the caller already read only a prefix of the stored message. Never throws on the message's content.
 */
export async function parseForDisplay(raw: Uint8Array, complete = true, limits: DisplayLimits = DISPLAY_LIMITS): Promise<MessageView> {
  let bytes = raw;
  let truncated = !complete;
  if (bytes.length > limits.bytes) {
    // At a line end when there is one near (a hostile message may have none for megabytes).
    const lf = bytes.lastIndexOf(0x0a, limits.bytes - 1);
    bytes = bytes.subarray(0, lf >= limits.bytes - 64 * 1024 ? lf + 1 : limits.bytes);
    truncated = true;
  }
  const cut = partLimitCut(bytes, limits.parts);
  if (cut >= 0) {
    bytes = bytes.subarray(0, cut);
    truncated = true;
  }
  try {
    const parsed = await PostalMime.parse(bytes, {
      attachmentEncoding: 'arraybuffer',
      maxNestingDepth: limits.depth,
      maxHeadersSize: limits.headerBytes,
      // A message inside a message (forwarded, bounced) is listed as an attachment, never parsed:
      // base64 or quoted-printable would hide its parts from partLimitCut.
      maxRfc822NestingDepth: 0,
    });
    return {
      headers: parsed.headers.map((h) => ({ name: h.originalKey ?? h.key, value: h.value })),
      text: parsed.text ?? null,
      html: parsed.html ?? null,
      attachments: parsed.attachments.map((a) => ({
        filename: a.filename ?? null,
        content_type: a.mimeType,
        size: typeof a.content === 'string' ? a.content.length : a.content.byteLength,
        sha256: sha256Hex(typeof a.content === 'string' ? a.content : new Uint8Array(a.content)),
      })),
      parse_error: false,
      truncated,
    };
  } catch {
    const top = topHeaders(bytes, limits.fallbackHeaderBytes);
    return { headers: top.headers, text: null, html: null, attachments: [], parse_error: true, truncated: truncated || top.cut };
  }
}

// One byte, one UTF-16 unit (windows-1252 maps all 256 bytes), so string offsets are byte offsets.
const bytesAsText = (b: Uint8Array) => new TextDecoder('latin1').decode(b);
const MAX_BOUNDARY = 200;

/**
 * Where to cut `bytes` so that the MIME parser sees at most `maxParts` part delimiters, or -1.
 * A delimiter is a line "--" + a boundary declared anywhere in the message (+ "--", spaces). When
 * the declarations cannot all be read (too many, too long, RFC 2231 continuations), every line that
 * starts with "--" counts, which can only cut too early. Linear: one pass for the declarations, one
 * over the lines.
 */
export function partLimitCut(bytes: Uint8Array, maxParts: number): number {
  const text = bytesAsText(bytes);
  const lower = text.toLowerCase();
  const boundaries = new Set<string>();
  let everyDashLine = false;
  for (let i = lower.indexOf('boundary'); i >= 0 && !everyDashLine; i = lower.indexOf('boundary', i + 8)) {
    const value = boundaryAt(text, i + 8);
    if (value === undefined) continue;
    if (value === null || boundaries.size >= 4 * maxParts) everyDashLine = true;
    else boundaries.add(value);
  }
  if (boundaries.size === 0 && !everyDashLine) return -1;
  let parts = 0;
  for (let pos = 0; pos < text.length; ) {
    let end = text.indexOf('\n', pos);
    if (end < 0) end = text.length;
    if (text.charCodeAt(pos) === 0x2d && text.charCodeAt(pos + 1) === 0x2d) {
      let e = end;
      while (e > pos + 2 && ' \t\r'.includes(text[e - 1]!)) e--;
      const v = text.slice(pos + 2, e);
      if (everyDashLine || boundaries.has(v) || (v.endsWith('--') && boundaries.has(v.slice(0, -2)))) {
        if (++parts > maxParts) return pos;
      }
    }
    pos = end + 1;
  }
  return -1;
}

/**
 * The value of a `boundary=` parameter whose name ends at `i`: the value; undefined when this is no
 * parameter (the word in prose); null when it cannot be read here (RFC 2231, or overlong).
 */
function boundaryAt(text: string, i: number): string | null | undefined {
  let j = i;
  while (text[j] === ' ' || text[j] === '\t') j++;
  if (text[j] === '*') return null;
  if (text[j] !== '=') return undefined;
  j++;
  while (text[j] === ' ' || text[j] === '\t') j++;
  const quoted = text[j] === '"';
  if (quoted) j++;
  const start = j;
  for (; j < text.length && j - start <= MAX_BOUNDARY; j++) {
    const c = text[j]!;
    if (quoted ? c === '"' || c === '\n' : c === ';' || c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === '"') break;
  }
  if (j - start > MAX_BOUNDARY) return null;
  return j > start ? text.slice(start, j) : undefined;
}

/** The message's own header block, unfolded, up to `maxBytes` (for when the MIME parser gave up). */
function topHeaders(bytes: Uint8Array, maxBytes: number): { headers: MessageView['headers']; cut: boolean } {
  const text = new TextDecoder().decode(bytes.subarray(0, maxBytes));
  const headers: MessageView['headers'] = [];
  let ended = false;
  for (const line of text.split('\n')) {
    const l = line.endsWith('\r') ? line.slice(0, -1) : line;
    if (l === '') {
      ended = true;
      break;
    }
    const last = headers[headers.length - 1];
    if ((l[0] === ' ' || l[0] === '\t') && last) {
      last.value += ` ${l.trim()}`;
      continue;
    }
    const colon = l.indexOf(':');
    if (colon > 0) headers.push({ name: l.slice(0, colon).trim(), value: l.slice(colon + 1).trim() });
  }
  return { headers, cut: !ended && bytes.length > maxBytes };
}
