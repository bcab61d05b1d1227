import { cutText } from '../../src/amavis/alert-text.ts';
import { describe, expect, it } from 'vitest';
import { mailIdOfSecret, parseItemId, formatItemId, randomSecretId } from '../../src/amavis/mail-id.ts';
import { normalizeAddress, normalizeDomain, reverseDomain } from '../../src/amavis/address.ts';
import { codesOfTypes, statusOfRs, typeOfCode } from '../../src/amavis/codes.ts';
import { classifyColumns, hexBytes, text } from '../../src/amavis/schema.ts';

describe('mail_id and secret_id', () => {
  it('derives mail_id from secret_id as amavisd does', () => {
    expect(mailIdOfSecret('AQIDBAUGBwgJ')).toBe('hZbBr1WxS3sy');
  });
  it('makes secret_ids whose mail_id amavisd accepts (alphanumeric at both ends)', () => {
    for (let i = 0; i < 2000; i++) expect(mailIdOfSecret(randomSecretId())).toMatch(/^[A-Za-z0-9][A-Za-z0-9_-]{10}[A-Za-z0-9]$/);
  });
  it('round-trips API ids and refuses anything else', () => {
    expect(parseItemId('0.hZbBr1WxS3sy')).toEqual({ partitionTag: 0, mailId: 'hZbBr1WxS3sy' });
    expect(formatItemId({ partitionTag: 7, mailId: 'a-b_c' })).toBe('7.a-b_c');
    for (const bad of ['hZbBr1WxS3sy', '0.', '.abc', '0.abc/def', '0.abc\u0000', '-1.abc', '99999999999.abc', '0.abc.def']) {
      expect(parseItemId(bad), bad).toBeNull();
    }
  });
});

describe('addresses as amavisd stores them', () => {
  it('reverses domains for maddr.domain', () => {
    expect(reverseDomain('mail.example.com')).toBe('com.example.mail');
  });
  it('lowercases and turns IDN into A-labels', () => {
    expect(normalizeAddress(' Alice@Example.COM ')).toBe('alice@example.com');
    expect(normalizeAddress('user@bücher.example')).toBe('user@xn--bcher-kva.example');
    expect(normalizeDomain('Example.org.')).toBe('example.org');
  });
  it('refuses what is not an address', () => {
    for (const bad of [
      '',
      'no-at',
      '@example.com',
      'a@',
      'a b@example.com',
      'a@exa mple.com',
      'a@example.com\r\nx',
      'a@-bad.example',
      'a"b@example.com',
    ]) {
      expect(normalizeAddress(bad), JSON.stringify(bad)).toBeNull();
    }
  });
});

describe('content codes', () => {
  it('maps codes to names and back', () => {
    expect(typeOfCode('S')).toBe('spam');
    expect(typeOfCode('s')).toBe('spam');
    expect(typeOfCode('M')).toBe('bad-mime');
    expect(typeOfCode('Z')).toBe('other');
    expect(typeOfCode(null)).toBe('other');
    expect(codesOfTypes(['spam', 'virus'])).toEqual(['S', 's', 'V']);
  });
  it('reads msgrcpt.rs', () => {
    expect([' ', '', 'V', 'p', 'R', 'D'].map(statusOfRs)).toEqual(['pending', 'pending', 'pending', 'releasing', 'released', 'deleted']);
  });
});

describe('schema detection', () => {
  const base = (extra: Array<[string, string, string]>) =>
    [
      ['msgs', 'mail_id', 'varbinary'],
      ['msgs', 'subject', 'varchar'],
      ['msgrcpt', 'rs', 'char'],
      ['maddr', 'email', 'varbinary'],
      ['maddr', 'domain', 'varchar'],
      ['quarantine', 'mail_text', 'blob'],
      ...extra,
    ].map(([table_name, column_name, data_type]) => ({ table_name: table_name!, column_name: column_name!, data_type: data_type! }));

  it('tells the four variants apart', () => {
    expect(classifyColumns('mysql', base([])).name).toBe('mysql-upstream');
    expect(classifyColumns('mysql', base([['maddr', 'email_raw', 'varbinary']])).name).toBe('mysql-iredmail');
    expect(classifyColumns('postgres', base([])).name).toBe('pg-upstream');
    const ired = classifyColumns('postgres', base([['outbound_wblist', 'rid', 'integer']]));
    expect(ired.name).toBe('pg-iredmail');
    expect(ired.binary.has('msgs.mail_id')).toBe(true);
    expect(ired.binary.has('msgs.subject')).toBe(false);
  });
  it('names missing tables', () => {
    expect(() =>
      classifyColumns(
        'mysql',
        base([]).filter((r) => r.table_name !== 'quarantine'),
      ),
    ).toThrow(/quarantine/);
  });
  it("notes which of amavisd's lookup tables are missing (a quarantine-only amavisd) without refusing", () => {
    const quarantineOnly = classifyColumns('mysql', base([]));
    expect(quarantineOnly.lookup.missing).toEqual(['users', 'mailaddr', 'wblist', 'policy']);
    expect(quarantineOnly.lookup.detail).toMatch(/users, mailaddr, wblist, policy.*@lookup_sql_dsn/);
    const some = classifyColumns(
      'postgres',
      base([
        ['users', 'id', 'integer'],
        ['policy', 'id', 'integer'],
      ]),
    );
    expect(some.lookup.missing).toEqual(['mailaddr', 'wblist']);
    const all = classifyColumns(
      'postgres',
      base([
        ['users', 'id', 'integer'],
        ['mailaddr', 'id', 'integer'],
        ['wblist', 'rid', 'integer'],
        ['policy', 'id', 'integer'],
      ]),
    );
    expect(all.lookup).toEqual({ missing: [], detail: null });
  });
  it('decodes bytes leniently', () => {
    expect(text(new Uint8Array([0xf0, 0x9f, 0x8e, 0x81]))).toBe('🎁');
    expect(text(new Uint8Array([0x61, 0xff]))).toBe('a\ufffd');
    expect(text(null)).toBe('');
  });
});

describe('cutText (reasons shown to owners: from a header an attacker can make megabytes long)', () => {
  it('keeps short text, cuts long text at a grapheme boundary with an ellipsis, and reads only the head of a 5 MB one', () => {
    expect(cutText('virus: Eicar-Signature', 80)).toBe('virus: Eicar-Signature');
    const flags = '🇩🇪'.repeat(30);
    const cut = cutText(flags, 21);
    expect(cut.endsWith('…')).toBe(true);
    expect(cut.length).toBeLessThanOrEqual(21);
    expect(Array.from(new Intl.Segmenter().segment(cut.slice(0, -1)), (s) => s.segment).every((g) => g === '🇩🇪')).toBe(true);
    const huge = `banned: ${'a\u0301'.repeat(2_500_000)}`; // 5 MB of letters with combining accents
    const out = cutText(huge, 120);
    expect(out.length).toBeLessThanOrEqual(120);
    expect(out.startsWith('banned: a\u0301a\u0301')).toBe(true);
  });
});

describe('hexBytes (a bytea from encode(x, hex))', () => {
  it('gives every byte back, as Node decodes the same hex', () => {
    const all = Uint8Array.from({ length: 256 }, (_, i) => i);
    const hex = Buffer.from(all).toString('hex');
    expect(hexBytes(hex)).toEqual(all);
    expect(text(hexBytes(Buffer.from('ünï@例え.example', 'utf8').toString('hex')))).toBe('ünï@例え.example');
    expect(hexBytes('')).toEqual(new Uint8Array(0));
  });
});
