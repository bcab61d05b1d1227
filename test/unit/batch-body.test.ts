// Resend batch bodies written into reused buffers (src/mail/batch-body.ts): the same bytes as the
// whole array's JSON, whatever the characters and however often the buffer has to grow.
import { describe, expect, it } from 'vitest';
import { BatchBodies } from '../../src/mail/batch-body.ts';

const utf8 = new TextEncoder();
const whole = (items: unknown[]) => utf8.encode(JSON.stringify(items));

describe('BatchBodies', () => {
  it('writes the bytes of JSON.stringify(items), growing a small buffer across multi-byte characters', () => {
    const items = [
      { to: ['a@example.test'], subject: 'Grüße 😀 日本語', html: '<p>"quoted" \\ back\nslash</p>' },
      { to: ['b@example.test'], subject: '\u2028 line sep', text: 'x'.repeat(5000) },
      { subject: '😀'.repeat(3000) }, // four UTF-8 bytes each, split across every buffer boundary
      [],
      {},
    ];
    const bodies = new BatchBodies(2, 7); // 7 bytes: every item makes it grow
    const body = bodies.take(items);
    expect(body.bytes).toEqual(whole(items));
    expect(JSON.parse(new TextDecoder().decode(body.bytes))).toEqual(items);
    body.give();
    expect(bodies.take([]).bytes).toEqual(whole([]));
  });

  it('reuses a buffer given back, and never hands out one still taken', () => {
    const bodies = new BatchBodies(1);
    const first = bodies.take([{ a: 1 }]);
    const second = bodies.take([{ b: 2 }]); // first is still the caller's: a buffer of its own
    expect(second.bytes.buffer).not.toBe(first.bytes.buffer);
    expect(new TextDecoder().decode(first.bytes)).toBe('[{"a":1}]');
    const buffer = first.bytes.buffer;
    first.give();
    first.give(); // twice is once
    second.give(); // the pool keeps one: this one is dropped
    const third = bodies.take([{ c: 3 }]);
    expect(third.bytes.buffer).toBe(buffer);
    expect(new TextDecoder().decode(third.bytes)).toBe('[{"c":3}]');
    const fourth = bodies.take([{ d: 4 }]);
    expect(fourth.bytes.buffer).not.toBe(buffer);
  });

  it('encodes a multi-megabyte batch of hostile text byte for byte', () => {
    const nasty = '\uD83D\uDE00<script>'.repeat(200_000) + '"\\'.repeat(100_000); // ~2.6 MB of JSON
    const items = Array.from({ length: 3 }, (_, i) => ({ to: [`u${i}@example.test`], html: nasty }));
    const body = new BatchBodies().take(items);
    const expected = Buffer.from(whole(items));
    expect(body.bytes.length).toBe(expected.length);
    expect(Buffer.from(body.bytes.buffer, 0, body.bytes.length).equals(expected)).toBe(true);
  });

  it("writes long strings slice by slice with JSON.stringify's bytes: pairs and lone surrogates at every slice edge", () => {
    const at = (n: number, s: string) => `${'a'.repeat(n)}${s}${'b'.repeat(5000)}`;
    const items = [
      // a pair across the 4,096th code unit, a lone high one there, a lone low one just after
      { html: at(4095, '\uD83D\uDE00'), text: at(4095, '\uD800x'), subject: at(4096, '\uDC00') },
      { html: `${'\uD83D\uDE00'.repeat(6000)}\uD83D`, text: '"\\\u0000\u001f\u2028'.repeat(3000) },
      // what JSON.stringify leaves out, or writes its own way
      { to: ['x@example.test'], skipped: undefined, fn: () => 1, headers: { 'X-A': '1' }, n: 1.5, ok: true, none: null },
      { toJSON: () => 'replaced' },
      new (class Email {
        html = 'c'.repeat(9000);
      })(),
      ['e'.repeat(9000)],
      'f'.repeat(9000),
    ];
    const body = new BatchBodies(2, 64).take(items);
    expect(Buffer.from(body.bytes).equals(Buffer.from(whole(items)))).toBe(true);
  });
});
