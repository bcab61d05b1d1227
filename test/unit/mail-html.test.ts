import { describe, expect, it } from 'vitest';
import { HTML_RENDER_LIMIT, TRUNCATED_NOTE, inertHtml } from '../../src/ui/mail-html.ts';
import { HTML_BYPASSES, MB, hostileHtml } from '../support/hostile-mail.ts';
import { liveParts, tagsOf } from '../support/inspect-html.ts';

const body = (html: string) => html.replace(/^[\s\S]*?<body>|<\/body><\/html>$/g, '');

describe('inertHtml: the HTML part rebuilt from tokens', () => {
  it('leaves nothing live from the known bypasses (a ">" inside a quoted value, meta refresh, srcset, CSS url())', () => {
    const doc = inertHtml(HTML_BYPASSES, { loadImages: false });
    expect(liveParts(doc.html)).toEqual([]);
    expect(doc.html).not.toContain('script ran');
    expect(doc.html).toContain('<p>Hello from the HTML part</p>');
    expect(doc.remoteImages).toBe(true);
    expect(doc.truncated).toBe(false);
    // the link's address stays visible as a tooltip, not as the sender's title
    const links = tagsOf(doc.html).filter((t) => t.tag === 'a');
    expect(links[0]!.attrs).toEqual({ title: 'https://evil.example/quoted-gt', 'data-qe-href': 'https://evil.example/quoted-gt' });
    expect(links[1]!.attrs).toEqual({ title: 'javascript:alert(1)', 'data-qe-href': 'javascript:alert(1)' });
    // the refresh is gone with its meta; the only meta is our charset
    expect(tagsOf(doc.html).filter((t) => t.tag === 'meta')).toEqual([{ tag: 'meta', attrs: { charset: 'utf-8' } }]);
  });

  it('loads remote <img> only when the reader chose to, never CSS images, never srcset', () => {
    const off = tagsOf(inertHtml(HTML_BYPASSES, { loadImages: false }).html).filter((t) => t.tag === 'img');
    expect(off).toEqual([{ tag: 'img', attrs: { alt: 'pixel', 'data-qe-src': 'https://tracker.example/pixel.gif' } }]);
    const on = inertHtml(HTML_BYPASSES, { loadImages: true });
    expect(tagsOf(on.html).filter((t) => t.tag === 'img')).toEqual([
      { tag: 'img', attrs: { alt: 'pixel', src: 'https://tracker.example/pixel.gif' } },
    ]);
    expect(liveParts(on.html, (u) => u === 'https://tracker.example/pixel.gif')).toEqual([]);
    // inline images always show; a javascript: or cid: source never becomes a src
    const inline = inertHtml('<img src=" data:image/png;base64,AAAA"><img src="javascript:alert(1)"><img src="cid:x@y">', {
      loadImages: true,
    });
    expect(
      tagsOf(inline.html)
        .filter((t) => t.tag === 'img')
        .map((t) => t.attrs),
    ).toEqual([{ src: 'data:image/png;base64,AAAA' }, { 'data-qe-src': 'javascript:alert(1)' }, { 'data-qe-src': 'cid:x@y' }]);
    expect(inline.remoteImages).toBe(false);
    expect(inertHtml('<img src="//cdn.example/p.gif">', { loadImages: true }).html).toContain('src="https://cdn.example/p.gif"');
  });

  it('keeps the look (allow-listed tags and presentation attributes) and escapes all text again', () => {
    const doc = inertHtml(
      '<table border=1 bgcolor="#fff"><tr><td align=center style="color: red">a &lt;b&gt; &amp; &quot;c&quot;</td></tr></table>' +
        '<font face="Arial" color=blue>x</font><textarea><img src=x onerror=alert(1)></textarea><title>t</title><xmp><b>raw</b></xmp>',
      { loadImages: false },
    );
    expect(body(doc.html)).toBe(
      '<table border="1" bgcolor="#fff"><tr><td align="center" style="color: red">a &lt;b&gt; &amp; &quot;c&quot;</td></tr></table>' +
        '<font face="Arial" color="blue">x</font>&lt;img src=x onerror=alert(1)&gt;&lt;b&gt;raw&lt;/b&gt;',
    );
  });

  it('turns every CSS load into a declaration the browser drops, also when spelled with escapes or entities', () => {
    const doc = inertHtml(
      '<p style="background:u&#114;l(https://t.example/a)">a</p><p style="background:u\\72l(https://t.example/b)">b</p>' +
        '<style>p{background:image-set("https://t.example/c" 1x)}</style' +
        '><style>x{}</style >after',
      { loadImages: true },
    );
    expect(liveParts(doc.html)).toEqual([]);
    expect(doc.html).toContain('qe-blocked-url(https://t.example/a)');
    expect(doc.html).toContain('qe-blocked-image-set(');
    expect(doc.html).toContain('after');
    // a style element never closes early and is always closed
    const open = inertHtml('<style>a{color:red}</p><script>alert(1)</script>', { loadImages: false }).html;
    expect(tagsOf(open).map((t) => t.tag)).toEqual(['html', 'head', 'meta', 'body', 'style']);
    expect(open).toMatch(/<\/style><\/body><\/html>$/);
  });

  it(`renders at most ${HTML_RENDER_LIMIT} characters, then says it was cut`, () => {
    const long = `<p>${'word '.repeat(300_000)}</p><p>the end</p>`;
    const doc = inertHtml(long, { loadImages: false });
    expect(doc.truncated).toBe(true);
    expect(doc.html).toContain(TRUNCATED_NOTE);
    expect(doc.html).not.toContain('the end');
    expect(doc.html.length).toBeLessThan(HTML_RENDER_LIMIT + 2000);
    expect(inertHtml('<p>short</p>', { loadImages: false }).html).not.toContain(TRUNCATED_NOTE);
    // a cut never splits a character
    const emoji = inertHtml('😀'.repeat(10), { loadImages: false, limit: 5 });
    expect(body(emoji.html)).toBe(`😀😀<hr><p role="note"><strong>${TRUNCATED_NOTE}</strong></p>`);
  });

  for (const kind of ['unclosed', 'deep', 'attribute'] as const) {
    it(`a 5 MB hostile part (${kind}) comes out inert and bounded (its time is in BENCHMARKS.md)`, () => {
      const html = hostileHtml(kind);
      expect(html.length).toBeGreaterThanOrEqual(5 * MB);
      const doc = inertHtml(html, { loadImages: false });
      expect(doc.truncated).toBe(true);
      expect(doc.html).toContain(TRUNCATED_NOTE);
      expect(doc.html.length).toBeLessThan(2 * HTML_RENDER_LIMIT);
      expect(liveParts(doc.html)).toEqual([]);
      // and whole, without the limit (the tokenizer is linear; no cut hides a slow path): the same
      // markup back, or nothing for a tag that never closes
      const whole = inertHtml(html, { loadImages: false, limit: Infinity });
      expect(whole.truncated).toBe(false);
      expect(body(whole.html) === (kind === 'unclosed' ? '' : html)).toBe(true);
    }, 60_000); // a generous bound for a loaded machine, not a speed assertion (the speed is in the benchmark)
  }
});
