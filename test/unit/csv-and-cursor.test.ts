import { describe, expect, it } from 'vitest';
import { csvRow } from '../../src/csv.ts';
import { decodeCursor, encodeCursor } from '../../src/quarantine/cursor.ts';
import { base64url } from '../../src/crypto/hmac.ts';
import { sha256 } from '../../src/crypto/sha256.ts';

describe('csvRow', () => {
  it('quotes per RFC 4180 and ends in CRLF', () => {
    expect(csvRow(['a', 'b c', 1.5, null, ''])).toBe('a,b c,1.5,,\r\n');
    expect(csvRow(['say "hi"', 'a,b', 'two\nlines', 'cr\rx'])).toBe('"say ""hi""","a,b","two\nlines","cr\rx"\r\n');
  });
  it('defuses formulas in text cells, not numbers', () => {
    expect(csvRow(['=1+1', '+1', '-1', '@A1', '\tx', '\rx', 'a=b'])).toBe(`'=1+1,'+1,'-1,'@A1,'\tx,"'\rx",a=b\r\n`);
    expect(csvRow([-1.5, 0])).toBe('-1.5,0\r\n');
    expect(csvRow(['=HYPERLINK("x")'])).toBe(`"'=HYPERLINK(""x"")"\r\n`);
  });
});

describe('cursor per order', () => {
  const score = { key: 'score', order: 'asc' } as const;
  it('carries the value (null, bytes, text) and is refused in another order', async () => {
    for (const v of [null, 5.123000144958496, 'Ärger', new Uint8Array([0, 255, 65])]) {
      const key = typeof v === 'number' || v === null ? 'score' : 'subject';
      const sort = { key, order: 'desc' } as const;
      const c = await encodeCursor({ sort, p: 1, m: 'hZbBr1WxS3sy', v });
      expect((await decodeCursor(c, sort)).v).toEqual(v);
      await expect(decodeCursor(c, { key, order: 'asc' })).rejects.toMatchObject({
        code: 'invalid_cursor',
        message: expect.stringMatching(/another order/),
      });
      await expect(decodeCursor(c, { key: 'received', order: 'desc' })).rejects.toMatchObject({ code: 'invalid_cursor' });
    }
  });
  it('leaves out a subject too long to carry, and keeps the cursor short', async () => {
    const sort = { key: 'subject', order: 'asc' } as const;
    const c = await encodeCursor({ sort, p: 0, m: 'hZbBr1WxS3sy', v: 'x'.repeat(5000) });
    expect(c.length).toBeLessThan(100);
    expect((await decodeCursor(c, sort)).v).toBeUndefined();
    const near = await encodeCursor({ sort, p: 0, m: 'hZbBr1WxS3sy', v: new Uint8Array(1024).fill(255) });
    expect(near.length).toBeLessThanOrEqual(3000);
    expect((await decodeCursor(near, sort)).v).toHaveLength(1024);
  });
  it("reads the first release's cursors as the default order; refuses a checksummed but implausible value", async () => {
    const payload = base64url(new TextEncoder().encode(JSON.stringify([1790000000, 3, 'hZbBr1WxS3sy'])));
    const old = `${payload}.${base64url(sha256(`qe-cursor:${payload}`).subarray(0, 9))}`;
    expect(await decodeCursor(old, { key: 'received', order: 'desc' })).toMatchObject({ p: 3, m: 'hZbBr1WxS3sy', v: 1790000000 });
    const forged = base64url(new TextEncoder().encode(JSON.stringify(['score', 'asc', 3, 'hZbBr1WxS3sy', 'high'])));
    const f = `${forged}.${base64url(sha256(`qe-cursor:${forged}`).subarray(0, 9))}`;
    await expect(decodeCursor(f, score)).rejects.toMatchObject({ code: 'invalid_cursor' });
  });
});
