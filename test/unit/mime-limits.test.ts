import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DISPLAY_LIMITS, parseForDisplay, partLimitCut } from '../../src/quarantine/parse.ts';
import { MB, bigHeadersMessage, deepMessage, htmlMessage, manyPartsMessage } from '../support/hostile-mail.ts';

const enc = new TextEncoder();
const bytes = (s: string) => enc.encode(s);

const plain =
  'From: a@b.example\nSubject: hi\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="x"\n\n' +
  '--x\nContent-Type: text/plain\n\nhello\n-- \nsignature\n--x\nContent-Type: text/html\n\n<p>hello</p>\n' +
  '--x\nContent-Type: application/pdf; name="a.pdf"\nContent-Transfer-Encoding: base64\n\nJVBERi0=\n--x--\n';

// Timeouts: generous bounds for a loaded machine, not speed assertions (the speed is in the benchmark).
describe('parseForDisplay: a message as far as one view may parse it', { timeout: 30_000 }, () => {
  it('an ordinary message: every part, no flags', async () => {
    const v = await parseForDisplay(bytes(plain));
    expect(v).toMatchObject({ parse_error: false, truncated: false });
    expect(v.text).toMatch(/^hello\n-- \nsignature\n/);
    expect(v.html).toContain('<p>hello</p>');
    expect(v.attachments).toEqual([
      {
        filename: 'a.pdf',
        content_type: 'application/pdf',
        size: 5,
        sha256: '38523c087796e5d5dd1cf9bad1fb026781a838dd9dd2cf8af58b9f6502a46778',
      },
    ]);
    expect(v.headers.find((h) => h.name === 'Subject')?.value).toBe('hi');
  });

  it(`100k parts in 2.5 MB: parsed up to ${DISPLAY_LIMITS.parts} parts, flagged truncated`, async () => {
    const raw = bytes(manyPartsMessage(100_000));
    expect(raw.length).toBeGreaterThan(2.5e6);
    const v = await parseForDisplay(raw);
    expect(v.truncated).toBe(true);
    expect(v.parse_error).toBe(false);
    expect(v.text).toBe('first part\n');
    expect(v.attachments.length).toBeGreaterThan(900);
    expect(v.attachments.length).toBeLessThanOrEqual(DISPLAY_LIMITS.parts);
    // just under the limit nothing is cut
    const under = await parseForDisplay(bytes(manyPartsMessage(DISPLAY_LIMITS.parts - 1)));
    expect(under).toMatchObject({ truncated: false, parse_error: false });
    expect(under.attachments).toHaveLength(DISPLAY_LIMITS.parts - 2);
  });

  it('nesting deeper than allowed: a parse error with the top-level headers, never a throw', async () => {
    for (const depth of [DISPLAY_LIMITS.depth + 1, 300, 5000]) {
      const v = await parseForDisplay(bytes(deepMessage(depth)));
      expect(v, `depth ${depth}`).toMatchObject({ parse_error: true, text: null, html: null, attachments: [] });
      expect(v.headers.find((h) => h.name === 'Subject')?.value).toBe(`nested ${depth} deep`);
    }
    const ok = await parseForDisplay(bytes(deepMessage(DISPLAY_LIMITS.depth - 2)));
    expect(ok).toMatchObject({ parse_error: false, text: 'innermost\n' });
  });

  it('megabytes of headers: a parse error showing the first 64 KiB of them', async () => {
    const v = await parseForDisplay(bytes(bigHeadersMessage(3 * MB)));
    expect(v.parse_error).toBe(true);
    expect(v.truncated).toBe(true);
    expect(v.headers[2]).toEqual({ name: 'Subject', value: 'megabytes of headers' });
    expect(JSON.stringify(v.headers).length).toBeLessThan(70 * 1024);
    // under the limit it parses as usual
    expect(await parseForDisplay(bytes(bigHeadersMessage(200 * 1024)))).toMatchObject({ parse_error: false, text: 'the body\n' });
  });

  it('more than 4 MiB: the beginning is parsed and flagged truncated; a cut the caller made is flagged too', async () => {
    const big = htmlMessage('big', `<p>start</p>${'x'.repeat(5 * MB)}`);
    const v = await parseForDisplay(bytes(big));
    expect(v.truncated).toBe(true);
    expect(v.html!.startsWith('<p>start</p>')).toBe(true);
    expect(v.html!.length).toBeLessThanOrEqual(DISPLAY_LIMITS.bytes);
    expect((await parseForDisplay(bytes(plain), false)).truncated).toBe(true);
  });

  it('a message inside a message is an attachment, so base64 cannot hide a bomb from the part count', async () => {
    const inner = manyPartsMessage(100_000);
    const b64 = btoa(inner).replace(/.{76}/g, '$&\n');
    const outer =
      'Subject: wrapped\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="o"\n\n--o\nContent-Type: text/plain\n\nsee inside\n' +
      `--o\nContent-Type: message/rfc822\nContent-Transfer-Encoding: base64\n\n${b64}\n--o--\n`;
    const v = await parseForDisplay(bytes(outer));
    expect(v).toMatchObject({ text: 'see inside\n', parse_error: false, truncated: false });
    expect(v.attachments).toEqual([
      { filename: null, content_type: 'message/rfc822', size: inner.length, sha256: createHash('sha256').update(inner).digest('hex') },
    ]);
  });
});

describe('partLimitCut: where the parser must stop', () => {
  const cut = (s: string, n: number) => partLimitCut(bytes(s), n);

  it('counts only delimiters of declared boundaries (with "--" ends and trailing blanks), cuts before the one too many', () => {
    const m = 'Content-Type: multipart/mixed;\n\tBOUNDARY = "a b"\n\n--a b\n\n1\n--a b  \r\n\n2\n-- not a delimiter\n----\n--a b--\n';
    expect(cut(m, 3)).toBe(-1);
    expect(cut(m, 2)).toBe(m.indexOf('--a b--'));
    expect(cut(m, 1)).toBe(m.indexOf('--a b  \r'));
    expect(cut('Subject: no parts\n\n--x\n--x\n', 1)).toBe(-1);
  });

  it('counts every "--" line when the boundaries cannot be read (RFC 2231, overlong)', () => {
    const rfc2231 = 'Content-Type: multipart/mixed; boundary*0="a"; boundary*1="b"\n\n--ab\n\n1\n--ab\n\n2\n';
    expect(cut(rfc2231, 1)).toBe(rfc2231.lastIndexOf('--ab'));
    const long = `Content-Type: multipart/mixed; boundary="${'z'.repeat(500)}"\n\n--q\n--r\n`;
    expect(cut(long, 1)).toBe(long.indexOf('--r'));
  });
});
