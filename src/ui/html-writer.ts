/**
 * The inert document's output, written as UTF-16 code units into one growing buffer. Hostile mail
 * is millions of tiny tokens (a `<` each, an entity each): building it from strings (replace(),
 * +=, push/join) costs one object per token and most of the time goes to the garbage collector.
 * Here each token costs a few array writes, and the string is made once at the end.
 */
export class HtmlWriter {
  private buf = new Uint16Array(4096);
  private n = 0;

  private room(k: number) {
    if (this.n + k <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.n + k) size *= 2;
    const next = new Uint16Array(size);
    next.set(this.buf.subarray(0, this.n));
    this.buf = next;
  }

  private put(s: string) {
    for (let i = 0; i < s.length; i++) this.buf[this.n++] = s.charCodeAt(i);
  }

  /** Markup we wrote ourselves (tag and attribute names from the allow-lists). */
  markup(s: string) {
    this.room(s.length);
    this.put(s);
  }

  /** Text or an attribute value (it goes between double quotes): & < > " escaped, NUL replaced. */
  text(s: string, start = 0, end = s.length) {
    for (let i = start; i < end; i++) {
      this.room(6);
      const c = s.charCodeAt(i);
      if (c === 0x26) this.put('&amp;');
      else if (c === 0x3c) this.put('&lt;');
      else if (c === 0x3e) this.put('&gt;');
      else if (c === 0x22) this.put('&quot;');
      else this.buf[this.n++] = c === 0 ? 0xfffd : c;
    }
  }

  /** One character the tokenizer decoded from an entity. */
  codePoint(cp: number) {
    if (cp <= 0xffff) this.text(String.fromCharCode(cp));
    else this.text(String.fromCodePoint(cp));
  }

  /**
   * CSS from a style attribute (`inAttribute`: also HTML-escaped) or a style element. Every way to
   * load something becomes an invalid declaration the browser drops: url(, image-set(, expression(
   * get a `qe-blocked-` prefix, @import becomes @qe-blocked-import. Backslashes go (so no CSS escape
   * can spell those words), and `<` (so a style element cannot be closed early).
   */
  css(s: string, inAttribute: boolean) {
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      const lower = c | 0x20;
      if ((lower === 0x75 || lower === 0x69 || lower === 0x65) && BLOCKED.some((f) => wordAt(s, i, f))) this.markup('qe-blocked-');
      else if (c === 0x40 && wordAt(s, i + 1, 'import')) {
        this.markup('@qe-blocked-');
        continue;
      }
      if (c === 0x5c || c === 0x3c || c === 0) this.markup(' ');
      else if (inAttribute) this.text(s, i, i + 1);
      else this.markup(s[i]!);
    }
  }

  toString(): string {
    let out = '';
    for (let i = 0; i < this.n; i += 8192) {
      out += String.fromCharCode.apply(null, this.buf.subarray(i, Math.min(i + 8192, this.n)) as unknown as number[]);
    }
    return out;
  }
}

const BLOCKED = ['url(', 'image-set(', 'expression('];

/** ASCII case-insensitive `word` at `i` (`| 0x20` lowers letters; it can only over-match, which over-blocks). */
function wordAt(s: string, i: number, word: string): boolean {
  if (i + word.length > s.length) return false;
  for (let k = 0; k < word.length; k++) if ((s.charCodeAt(i + k) | 0x20) !== word.charCodeAt(k)) return false;
  return true;
}
