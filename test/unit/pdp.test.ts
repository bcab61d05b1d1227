import { describe, expect, it } from 'vitest';
import {
  decodeReply,
  encodeRequest,
  endOfMessage,
  percentDecode,
  redactSecret,
  releaseAttributes,
  toReleaseReply,
  verdict,
  type PdpAttributes,
} from '../../src/amavis/pdp.ts';
import { AppError } from '../../src/errors.ts';

const dec = new TextDecoder();

/** The value bytes of every attribute line, as sent (between `=` and CRLF). */
function wireValues(bytes: Uint8Array): Uint8Array[] {
  expect(bytes.subarray(-4)).toEqual(new Uint8Array([0x0d, 0x0a, 0x0d, 0x0a]));
  const lines: Uint8Array[] = [];
  let start = 0;
  for (let i = 0; i + 1 < bytes.length; i++) {
    if (bytes[i] === 0x0d && bytes[i + 1] === 0x0a) {
      lines.push(bytes.subarray(start, i));
      start = i + 2;
      i++;
    }
  }
  expect(start).toBe(bytes.length);
  expect(lines.pop()).toEqual(new Uint8Array()); // the terminating empty line
  return lines.map((l) => {
    const eq = l.indexOf(0x3d);
    expect(eq).toBeGreaterThan(0);
    return l.subarray(eq + 1);
  });
}

const HOSTILE: Array<[string, string]> = [
  ['cr', 'a\rb'],
  ['lf', 'alice@example.com\nrecipient=mallory@evil.example'],
  ['crlf', 'alice@example.com\r\nrecipient=mallory@evil.example\r\n\r\n'],
  ['nul', 'a\u0000b'],
  ['percent', '100% %41 %%'],
  ['spaces', ' leading and trailing '],
  ['equals', 'a=b==c'],
  ['tab and del', 'a\tb\u007fc'],
  ['latin1', 'Jürgen Müller <jürgen@exämple.de>'],
  ['emoji', 'boxed 🎁 gift 👩‍👩‍👧'],
  ['only controls', '\r\n\r\n'],
  ['empty', ''],
  ['10 kB', 'x\r\n %🎁'.repeat(1700)],
];

describe('AM.PDP encodeRequest', () => {
  it.each(HOSTILE)('keeps %s on one line: no raw CR, LF, NUL, space or 8-bit byte in the value', (_name, value) => {
    const bytes = encodeRequest([
      ['request', 'release'],
      ['recipient', value],
      ['requested_by', value],
    ]);
    const values = wireValues(bytes);
    expect(values).toHaveLength(3);
    for (const v of values) {
      expect([...v].filter((b) => b < 0x21 || b > 0x7e).map((b) => `0x${b.toString(16)}`)).toEqual([]);
      // every % starts an escape: %XX with two hex digits
      expect(dec.decode(v)).toMatch(/^(?:[^%]|%[0-9A-F]{2})*$/);
    }
  });

  it.each(HOSTILE)('round-trips %s through decode(encode(x))', (_name, value) => {
    const attrs: PdpAttributes = [
      ['request', 'release'],
      ['recipient', value],
      ['recipient', 'second@example.com'],
      ['secret_id', 'AQIDBAUGBwgJ'],
    ];
    expect(decodeReply(encodeRequest(attrs))).toEqual(attrs);
  });

  it('writes printable ASCII other than % as is and the rest as %XX of UTF-8 bytes', () => {
    const bytes = encodeRequest([['recipient', 'a b%c\u00e9\r\n=!~']]);
    expect(dec.decode(bytes)).toBe('recipient=a%20b%25c%C3%A9%0D%0A=!~\r\n\r\n');
  });

  it('ends a request with an empty line even when it has no attributes', () => {
    expect(dec.decode(encodeRequest([]))).toBe('\r\n');
  });

  it.each(['Request', 'mail-id', 'a=b', 'recipient\r\n', '', 'name ', 'ré'])('refuses the attribute name %j', (name) => {
    expect(() => encodeRequest([[name, 'x']])).toThrow(AppError);
  });
});

describe('AM.PDP decodeReply', () => {
  it('decodes what amavisd writes (lowercase hex, CRLF, empty line)', () => {
    const wire =
      'setreply=250%202.0.0%20Ok,%20id=rel-abc,%20from%20MTA:%20250%202.0.0%20Ok:%20queued\r\n' +
      'setreply=450%204.5.0%20Failure:%20%c3%a9\r\n\r\n';
    expect(decodeReply(wire)).toEqual([
      ['setreply', '250 2.0.0 Ok, id=rel-abc, from MTA: 250 2.0.0 Ok: queued'],
      ['setreply', '450 4.5.0 Failure: \u00e9'],
    ]);
  });

  it('stops at the first empty line, accepts bare LF, skips lines without =', () => {
    const wire = new TextEncoder().encode('garbage line\nsetreply=250%202.0.0%20Ok\n\nsetreply=250%202.0.0%20later\r\n\r\n');
    expect(decodeReply(wire)).toEqual([['setreply', '250 2.0.0 Ok']]);
  });

  it('keeps a stray % and bad hex literally; invalid UTF-8 becomes U+FFFD', () => {
    expect(percentDecode(new TextEncoder().encode('50% %zz %4'))).toBe('50% %zz %4');
    expect(percentDecode(new TextEncoder().encode('%ff%41'))).toBe('\ufffdA');
  });

  it('decodes an empty reply (just the empty line) to no attributes', () => {
    expect(decodeReply('\r\n')).toEqual([]);
  });
});

describe('endOfMessage', () => {
  const e = (s: string) => endOfMessage(new TextEncoder().encode(s));
  it.each([
    ['', -1],
    ['a=b\r\n', -1],
    ['a=b\r\n\r', -1],
    ['a=b\r\n\r\n', 7],
    ['\r\n', 2],
    ['\n', 1],
    ['a=b\n\nrest', 5],
    ['a=b\r\n\r\nc=d', 7],
  ])('%j -> %d', (s, n) => expect(e(s)).toBe(n));
});

describe('verdict', () => {
  it.each([
    [['250 2.0.0 Ok, id=rel-x, from MTA: 250 2.0.0 Ok: queued as X'], true],
    [['250 2.0.0 Ok, id=a', '250 2.0.0 Ok, id=b'], true],
    [['251 2.1.5 forwarded'], true],
    [['250 2.5.0 No recipients, nothing to do'], false],
    [['250 2.0.0 Ok', '250 2.5.0 No recipients, nothing to do'], false],
    [['450 4.5.0 Failure: Secret_id is required, but missing'], false],
    [['250 2.0.0 Ok, id=a', '450 4.3.0 sink refused'], false],
    [['250 2.0.0 Ok', '550 5.7.1 rejected'], false],
    [[], false],
    [[''], false],
    [['2'], false],
    [['2500 nonsense'], false],
    [[' 250 2.0.0 leading space'], false],
  ])('%j -> %s', (setreplies, expected) => {
    expect(verdict(setreplies)).toBe(expected);
  });
});

describe('releaseAttributes', () => {
  const base = {
    partitionTag: 0,
    mailId: 'hZbBr1WxS3sy',
    secretId: 'AQIDBAUGBwgJ',
    recipients: ['alice@example.com', 'bob@example.net'],
    requestedBy: 'admin@example.com',
  };

  it('builds the release request in amavisd order, one recipient line each', () => {
    expect(releaseAttributes(base)).toEqual([
      ['request', 'release'],
      ['mail_id', 'hZbBr1WxS3sy'],
      ['secret_id', 'AQIDBAUGBwgJ'],
      ['partition_tag', '0'],
      ['quar_type', 'Q'],
      ['recipient', 'alice@example.com'],
      ['recipient', 'bob@example.net'],
      ['requested_by', 'admin@example.com'],
    ]);
  });

  it('leaves requested_by out when empty', () => {
    expect(releaseAttributes({ ...base, requestedBy: '' }).map(([k]) => k)).not.toContain('requested_by');
  });

  it.each(['', 'has space', 'a/b', 'x'.repeat(17), 'id\r\n', 'é'])('refuses mail_id %j and secret_id %j', (bad) => {
    expect(() => releaseAttributes({ ...base, mailId: bad })).toThrow(
      expect.objectContaining({ code: 'bad_request', extra: { field: 'mail_id' } }),
    );
    expect(() => releaseAttributes({ ...base, secretId: bad })).toThrow(
      expect.objectContaining({ code: 'bad_request', extra: { field: 'secret_id' } }),
    );
  });

  it('accepts old-style ids with + and -', () => {
    expect(() => releaseAttributes({ ...base, mailId: 'ab+cd-ef_gh', secretId: 'a+b-c_d' })).not.toThrow();
  });

  it.each(['alice@example.com\r\nRCPT TO:<x@y>', 'a\u0000@b', 'a\n', ''])('refuses recipient %j before anything is sent', (r) => {
    expect(() => releaseAttributes({ ...base, recipients: ['ok@example.com', r] })).toThrow(
      expect.objectContaining({ code: 'bad_request' }),
    );
  });

  it('refuses a negative or fractional partition_tag and a requested_by with CR/LF', () => {
    expect(() => releaseAttributes({ ...base, partitionTag: -1 })).toThrow(AppError);
    expect(() => releaseAttributes({ ...base, partitionTag: 1.5 })).toThrow(AppError);
    expect(() => releaseAttributes({ ...base, requestedBy: 'a@b\r\nx' })).toThrow(AppError);
  });
});

describe('toReleaseReply', () => {
  it('collects setreplies, computes the verdict and cuts a secret_id that amavisd echoed', () => {
    const r = toReleaseReply(
      [
        ['setreply', '450 4.5.0 Failure: Secret_id AQIDBAUGBwgJ does not match mail_id hZbBr1WxS3sy'],
        ['return_value', 'tempfail'],
        ['exit_code', '75'],
      ],
      'direct',
      'AQIDBAUGBwgJ',
    );
    expect(r).toEqual({
      setreplies: ['450 4.5.0 Failure: Secret_id [secret_id] does not match mail_id hZbBr1WxS3sy'],
      attributes: [
        ['setreply', '450 4.5.0 Failure: Secret_id [secret_id] does not match mail_id hZbBr1WxS3sy'],
        ['return_value', 'tempfail'],
        ['exit_code', '75'],
      ],
      released: false,
      via: 'direct',
    });
    expect(redactSecret([['a', 'x']], '')).toEqual([['a', 'x']]);
  });
});
