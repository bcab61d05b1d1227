import { Tokenizer } from 'htmlparser2';
import { HtmlWriter } from './html-writer.ts';

/**
 * A quarantined message's HTML part, rebuilt as an inert document. It is never put into a page: it
 * is served alone from /ui/quarantine/{id}/body with a CSP that forbids scripts, frames, fonts,
 * connections and (unless the reader asks) remote images, inside an `<iframe sandbox>` without
 * allow-scripts. The body route can also be opened on its own, so the document must be inert by
 * itself: it is written from htmlparser2's tokens (a linear state machine, the same one in workerd
 * and Node), never by pattern-matching the sender's markup. Only allow-listed tags and attributes
 * are written, every text and attribute value is escaped again, and nothing that navigates, submits,
 * refreshes or loads is written live: a link keeps its address only as a tooltip (`title`) and
 * `data-qe-href`; remote images keep theirs in `data-qe-src` unless the reader chose to load them.
 */

/** How much of the HTML part is rendered (UTF-16 code units, so at most ~1 MiB of ASCII markup). */
export const HTML_RENDER_LIMIT = 1024 * 1024;

export const TRUNCATED_NOTE =
  'Truncated: this HTML part is longer than 1 MiB and only its beginning is shown. ' + 'Download the original to see all of it.';

/** Written as they are (their attributes checked one by one). Everything else: the tag goes, its text stays. */
const TAGS = new Set([
  'a',
  'abbr',
  'acronym',
  'address',
  'article',
  'aside',
  'b',
  'bdi',
  'bdo',
  'big',
  'blockquote',
  'br',
  'caption',
  'center',
  'cite',
  'code',
  'col',
  'colgroup',
  'dd',
  'del',
  'details',
  'dfn',
  'div',
  'dl',
  'dt',
  'em',
  'figcaption',
  'figure',
  'font',
  'footer',
  'h1',
  'h2',
  'h3',
  'h4',
  'h5',
  'h6',
  'header',
  'hr',
  'i',
  'img',
  'ins',
  'kbd',
  'li',
  'main',
  'mark',
  'nav',
  'ol',
  'p',
  'pre',
  'q',
  's',
  'samp',
  'section',
  'small',
  'span',
  'strike',
  'strong',
  'style',
  'sub',
  'summary',
  'sup',
  'table',
  'tbody',
  'td',
  'tfoot',
  'th',
  'thead',
  'time',
  'tr',
  'tt',
  'u',
  'ul',
  'var',
  'wbr',
]);
const VOID = new Set(['br', 'col', 'hr', 'img', 'wbr']);

/** Presentation only: none of these takes a URL or runs anything. `style` is rewritten (cleanCss). */
const ATTRS = new Set([
  'abbr',
  'align',
  'alt',
  'bgcolor',
  'border',
  'cellpadding',
  'cellspacing',
  'char',
  'charoff',
  'class',
  'clear',
  'color',
  'cols',
  'colspan',
  'compact',
  'datetime',
  'dir',
  'face',
  'frame',
  'headers',
  'height',
  'hspace',
  'id',
  'lang',
  'noshade',
  'nowrap',
  'open',
  'reversed',
  'role',
  'rows',
  'rowspan',
  'rules',
  'scope',
  'size',
  'span',
  'start',
  'style',
  'summary',
  'title',
  'type',
  'valign',
  'value',
  'vspace',
  'width',
]);

/**
 * The tokenizer reads these tags' content as raw text, as browsers do (script, style, ...). What
 * becomes of that text: dropped, cleaned CSS, or shown as text.
 */
const RAW_TEXT: Record<string, 'drop' | 'css' | 'text'> = {
  script: 'drop',
  style: 'css',
  title: 'drop',
  iframe: 'drop',
  noembed: 'drop',
  noframes: 'drop',
  textarea: 'text',
  xmp: 'text',
  plaintext: 'text',
};

/** Where an <img src> points, without the leading and trailing spaces and controls a browser ignores. */
function imageSource(src: string): { kind: 'inline' | 'remote' | 'other'; url: string } {
  let a = 0,
    b = src.length;
  while (a < b && src.charCodeAt(a) <= 0x20) a++;
  while (b > a && src.charCodeAt(b - 1) <= 0x20) b--;
  const url = src.slice(a, b);
  if (/^data:image\//i.test(url)) return { kind: 'inline', url };
  if (/^https?:\/\//i.test(url)) return { kind: 'remote', url };
  if (url.startsWith('//')) return { kind: 'remote', url: `https:${url}` };
  return { kind: 'other', url };
}

export interface InertDocument {
  /** the whole document to serve */
  html: string;
  /** the rendered part refers to images that are not inline (offer "Load remote images" only then) */
  remoteImages: boolean;
  /** only the first HTML_RENDER_LIMIT characters were rendered */
  truncated: boolean;
}

export function inertHtml(source: string, opts: { loadImages: boolean; limit?: number }): InertDocument {
  const limit = opts.limit ?? HTML_RENDER_LIMIT;
  let input = source;
  const truncated = input.length > limit;
  // Cut before a lone high surrogate, so the cut never splits a character.
  if (truncated) input = input.slice(0, (input.charCodeAt(limit - 1) & 0xfc00) === 0xd800 ? limit - 1 : limit);

  const out = new HtmlWriter();
  // Text arrives in pieces (every stray `<` ends one); adjacent pieces are written as one.
  let textStart = 0,
    textEnd = 0;
  const flush = () => {
    if (textEnd > textStart) out.text(input, textStart, textEnd);
    textStart = textEnd = 0;
  };
  let remoteImages = false;
  let raw: 'drop' | 'css' | 'text' | null = null;
  let rawTag = '';
  let tag = '';
  const attrs = new Map<string, string>();
  let attrName = '';
  let attrValue = '';

  const attr = (name: string, value: string) => {
    out.markup(` ${name}="`);
    out.text(value);
    out.markup('"');
  };
  const openTag = () => {
    flush();
    const name = tag;
    tag = '';
    if (Object.hasOwn(RAW_TEXT, name)) {
      raw = RAW_TEXT[name]!;
      rawTag = name;
      if (raw === 'css') out.markup('<style>');
      return;
    }
    if (!TAGS.has(name)) return;
    out.markup(`<${name}`);
    const link = name === 'a' && attrs.has('href');
    for (const [k, v] of attrs) {
      if (!ATTRS.has(k) || (link && k === 'title')) continue;
      if (k !== 'style') attr(k, v);
      else {
        out.markup(' style="');
        out.css(v, true);
        out.markup('"');
      }
    }
    if (link) {
      // The address the sender wrote, as a tooltip only (never the sender's own title, which could hide it).
      const href = attrs.get('href')!.trim();
      attr('title', href);
      attr('data-qe-href', href);
    }
    if (name === 'img' && attrs.has('src')) {
      const src = imageSource(attrs.get('src')!);
      if (src.kind === 'remote') remoteImages = true;
      attr(src.kind === 'inline' || (src.kind === 'remote' && opts.loadImages) ? 'src' : 'data-qe-src', src.url);
    }
    out.markup('>');
  };

  // Offsets are into `input`; every callback the tokenizer can make is here (unused ones do nothing).
  const tokenizer = new Tokenizer(
    { decodeEntities: true },
    {
      onopentagname(start, end) {
        tag = input.slice(start, end).toLowerCase();
        attrs.clear();
      },
      onattribname(start, end) {
        attrName = input.slice(start, end).toLowerCase();
        attrValue = '';
      },
      onattribdata(start, end) {
        attrValue += input.slice(start, end);
      },
      onattribentity(codepoint) {
        attrValue += String.fromCodePoint(codepoint);
      },
      onattribend() {
        // The first of two equal names counts, as in browsers.
        if (!attrs.has(attrName)) attrs.set(attrName, attrValue);
      },
      onopentagend: openTag,
      onselfclosingtag: openTag, // `<div/>` opens a div in HTML
      onclosetag(start, end) {
        flush();
        const name = input.slice(start, end).toLowerCase();
        if (raw) {
          if (name !== rawTag) return;
          if (raw === 'css') out.markup('</style>');
          raw = null;
          return;
        }
        if (TAGS.has(name) && !VOID.has(name) && name !== 'style') out.markup(`</${name}>`);
      },
      ontext(start, end) {
        if (raw === 'css') out.css(input.slice(start, end), false);
        else if (raw === 'drop') return;
        else if (start === textEnd) textEnd = end;
        else {
          flush();
          textStart = start;
          textEnd = end;
        }
      },
      ontextentity(codepoint) {
        if (raw !== null && raw !== 'text') return;
        flush();
        out.codePoint(codepoint);
      },
      oncomment() {},
      oncdata() {},
      ondeclaration() {},
      onprocessinginstruction() {},
      onend() {
        flush();
        if (raw === 'css') out.markup('</style>');
      },
    },
  );
  tokenizer.write(input);
  tokenizer.end();

  const note = truncated ? `<hr><p role="note"><strong>${TRUNCATED_NOTE}</strong></p>` : '';
  return {
    html: documentOf(`${out.toString()}${note}`),
    remoteImages,
    truncated,
  };
}

const documentOf = (body: string) => `<!DOCTYPE html><html><head><meta charset="utf-8"></head><body>${body}</body></html>`;

/** A document that only says `text` (ours, not the sender's): for a message whose HTML could not be read. */
export function noteDocument(text: string): string {
  const out = new HtmlWriter();
  out.text(text);
  return documentOf(`<p role="note"><strong>${out.toString()}</strong></p>`);
}

/** The CSP of the body route: images only inline (data:) unless the reader chose to load them. */
export function bodyCsp(loadImages: boolean): string {
  return [
    "default-src 'none'",
    loadImages ? 'img-src data: https: http:' : 'img-src data:',
    "style-src 'unsafe-inline'",
    "frame-ancestors 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    'sandbox',
  ].join('; ');
}
