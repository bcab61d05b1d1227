import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const require = createRequire(import.meta.url);
const iconv = require('../../src/db/drivers/worker-shims/iconv-lite.cjs') as {
  getDecoder(e: string): { write(b: Uint8Array): string; end(): string | undefined };
  encodingExists(e: string): boolean;
};

describe("the Worker bundle's iconv-lite stand-in", () => {
  it('decodes CESU-8 (MariaDB utf8mb3 metadata), surrogate pairs included', () => {
    const d = iconv.getDecoder('cesu8');
    expect(d.write(new Uint8Array([0x61, 0xc3, 0xa9]))).toBe('aé');
    // U+1F381 as CESU-8: two 3-byte surrogates D83C DF81
    expect(d.write(new Uint8Array([0xed, 0xa0, 0xbc, 0xed, 0xbe, 0x81]))).toBe('🎁');
  });
  it('refuses other character sets loudly instead of garbling them', () => {
    expect(() => iconv.getDecoder('koi8-r')).toThrow(/not supported in the Worker build/);
    expect(iconv.encodingExists('utf8')).toBe(true);
    expect(iconv.encodingExists('cesu8')).toBe(true);
  });
});

describe("the Worker bundle's zod locales stand-in", () => {
  it('keeps only English, the very function zod reports errors with', async () => {
    const path = '../../src/db/drivers/worker-shims/zod-locales.js';
    const shim = (await import(/* @vite-ignore */ path)) as Record<string, unknown>;
    const { z } = await import('zod');
    expect(Object.keys(shim)).toEqual(['en']);
    expect(shim.en).toBe(z.locales.en);
  });
});

describe("the Worker bundle's mysql2 error-code table", () => {
  it("is mysql2's own table, name to number and number to name (else re-run scripts/generate-mysql2-errors.ts)", async () => {
    const { mysql2ErrorTable } = await import('../../scripts/generate-mysql2-errors.ts');
    const shim = require('../../src/db/drivers/worker-shims/mysql2-errors.cjs') as Record<string, string | number>;
    const own = mysql2ErrorTable();
    expect({ ...shim }).toEqual({ ...own });
    expect(Object.keys(shim)).toHaveLength(Object.keys(own).length);
    // what an error's `code` is read from (mysql2 lib/packets/packet.js), and what pool.js uses
    expect(shim[1062]).toBe('ER_DUP_ENTRY');
    expect(shim.ER_LOCK_DEADLOCK).toBe(1213);
  });
});
