// The HTML sanitizer (htmlparser2's tokenizer) and the limited MIME parse (postal-mime) inside
// workerd, as the Worker runs them: same answers as on Node (test/unit/mail-html.test.ts,
// test/unit/mime-limits.test.ts). Timing is in BENCHMARKS.md, not here.
import { describe, expect, it } from 'vitest';
import { DISPLAY_LIMITS, parseForDisplay } from '../../src/quarantine/parse.ts';
import { TRUNCATED_NOTE, inertHtml, noteDocument } from '../../src/ui/mail-html.ts';
import { HTML_BYPASSES, MB, bigHeadersMessage, deepMessage, hostileHtml, manyPartsMessage } from '../support/hostile-mail.ts';
import { liveParts, tagsOf } from '../support/inspect-html.ts';

const enc = new TextEncoder();

describe('hostile mail inside workerd', () => {
  it('runs in workerd', () => {
    expect(navigator.userAgent).toBe('Cloudflare-Workers');
  });

  it('the known bypasses come out inert; remote images only when chosen', () => {
    const off = inertHtml(HTML_BYPASSES, { loadImages: false });
    expect(liveParts(off.html)).toEqual([]);
    expect(off.remoteImages).toBe(true);
    expect(tagsOf(off.html).find((t) => t.tag === 'a')!.attrs).toEqual({
      title: 'https://evil.example/quoted-gt',
      'data-qe-href': 'https://evil.example/quoted-gt',
    });
    const on = inertHtml(HTML_BYPASSES, { loadImages: true });
    expect(liveParts(on.html, (u) => u === 'https://tracker.example/pixel.gif')).toEqual([]);
    expect(noteDocument('a <b> note')).toContain('a &lt;b&gt; note');
  });

  for (const kind of ['unclosed', 'deep', 'attribute'] as const) {
    it(`a 5 MB hostile HTML part (${kind}) is cut at 1 MiB and inert`, () => {
      const doc = inertHtml(hostileHtml(kind), { loadImages: false });
      expect(doc.truncated).toBe(true);
      expect(doc.html).toContain(TRUNCATED_NOTE);
      expect(doc.html.length).toBeLessThan(2 * MB);
      expect(liveParts(doc.html)).toEqual([]);
    });
  }

  it('100k parts, nesting too deep, megabytes of headers: bounded answers with flags, never a throw', async () => {
    const parts = await parseForDisplay(enc.encode(manyPartsMessage(100_000)));
    expect(parts).toMatchObject({ truncated: true, parse_error: false });
    expect(parts.attachments.length).toBeLessThanOrEqual(DISPLAY_LIMITS.parts);
    const deep = await parseForDisplay(enc.encode(deepMessage(300)));
    expect(deep).toMatchObject({ parse_error: true, text: null });
    expect(deep.headers.find((h) => h.name === 'Subject')?.value).toBe('nested 300 deep');
    const headers = await parseForDisplay(enc.encode(bigHeadersMessage(3 * MB)));
    expect(headers).toMatchObject({ parse_error: true, truncated: true });
  });
});
