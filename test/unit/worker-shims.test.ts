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
