/**
 * amavisd's X-Amavis-Alert text, made readable. Its header check writes every non-ASCII octet of
 * the offending header as a Perl escape `\x{E9}` (and a backslash before `x{` as `\x{5C}`), so a
 * Latin-1 "été" arrives as `\x{E9}t\x{E9}` and a UTF-8 one as `\x{C3}\x{A9}t\x{C3}\x{A9}`.
 */

const ESCAPE = /\\x\{([0-9A-Fa-f]{1,6})\}/g;
/** a run of octet escapes, or one wider escape (a code point) */
const TOKEN = /(?:\\x\{[0-9A-Fa-f]{1,2}\})+|\\x\{[0-9A-Fa-f]{3,6}\}/g;
const utf8 = new TextDecoder('utf-8', { fatal: true });
/**
 * windows-1252 (what a mail client shows for such octets; WHATWG's "latin1"), by hand: Node's
 * TextDecoder('latin1') decodes 0x80-0x9F as ISO-8859-1 controls (test/unit/digest.test.ts catches it). 0x80-0x9F are its own; the rest is ISO-8859-1, the code point itself.
 */
const CP1252 = '€\u0081‚ƒ„…†‡ˆ‰Š‹Œ\u008DŽ\u008F\u0090‘’“”•–—˜™š›œ\u009DžŸ';
const latin1 = {
  decode: (bytes: Uint8Array) => Array.from(bytes, (b) => (b >= 0x80 && b <= 0x9f ? CP1252[b - 0x80]! : String.fromCharCode(b))).join(''),
};

/**
 * Decode `\x{..}` escapes: each run of consecutive octet escapes as UTF-8 when it is valid UTF-8,
 * else as windows-1252; a wider escape (`\x{263A}`) is a code point. Control characters become
 * U+FFFD (tab a space): the text is shown in mail and pages.
 */
export function decodePerlEscapes(s: string): string {
  // one pass, so a decoded backslash never starts another escape
  const decoded = s.replace(TOKEN, (token) => {
    const values = [...token.matchAll(ESCAPE)].map((m) => parseInt(m[1]!, 16));
    if (values.length === 1 && values[0]! > 0xff) {
      const cp = values[0]!;
      return cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff) ? String.fromCodePoint(cp) : '\uFFFD';
    }
    const bytes = Uint8Array.from(values);
    try {
      return utf8.decode(bytes);
    } catch {
      return latin1.decode(bytes);
    }
  });
  return decoded.replace(/\t/g, ' ').replace(/[\u0000-\u001F\u007F-\u009F]/g, '\uFFFD');
}

const segmenter = typeof Intl !== 'undefined' && 'Segmenter' in Intl ? new Intl.Segmenter(undefined, { granularity: 'grapheme' }) : null;

/**
 * At most `max` UTF-16 units, cut between two characters (grapheme clusters where the runtime
 * knows them, else code points), at the last space when there is one near the end, with "…".
 */
export function cutText(s: string, max: number): string {
  if (s.length <= max) return s;
  // only the head is looked at (a header can be megabytes); a cluster cut by the slice is past max anyway
  const head = s.slice(0, max + 32);
  let out = '';
  for (const u of segmenter ? Array.from(segmenter.segment(head), (x) => x.segment) : Array.from(head)) {
    if (out.length + u.length > max - 1) break;
    out += u;
  }
  const space = out.lastIndexOf(' ');
  if (space >= out.length - 20 && space > 0) out = out.slice(0, space);
  return `${out.trimEnd()}…`;
}
